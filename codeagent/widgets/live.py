"""The live view of a running call in a notebook: status line, streaming model text, tool-call counter, errors.

Every update happens on the thread that runs the call (the notebook's main thread), through trait
assignment only; nothing here starts threads. Redraws are coalesced (:class:`~codeagent.widgets.progress.Throttle`).
"""

from __future__ import annotations

import html
from typing import Any

from codeagent.agent.trace import TraceEvent
from codeagent.widgets.progress import Progress, Throttle

TEXT_TAIL_CHARS = 4_000


class LiveView:
    """An ipywidgets HTML widget that follows :class:`TraceEvent` s; call it with each event.

    One widget, not a box of four: a fast call's whole live view is one comm_open, a few updates and one
    comm_close (each a signed message the notebook kernel sends while the call waits)."""

    def __init__(self, max_steps: int) -> None:
        import ipywidgets as widgets

        self.progress = Progress(max_steps)
        self.throttle = Throttle()
        self._text = ""
        self._style = "font-family:sans-serif;font-size:12px"
        self._shown = self._html()  # the first value travels with the widget's comm_open, not as an update
        self.box = widgets.HTML(self._shown, layout={"margin": "0"})

    # The view's own mime bundle, so `display(view)` shows the widget. Its text/plain is empty: the view shrinks
    # to nothing when the call ends (the answer is the cell's result), and a frontend without widgets or display
    # updates then records the same thing a full one does.
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.box._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = ""
        return bundle

    def status_line(self) -> str:
        return self.progress.status_line()

    def __call__(self, event: TraceEvent) -> None:
        self.progress.update(event)
        if event.kind == "model_text":
            self._text += str(event.data)
        elif event.kind == "model_finished":
            self._text += "\n"
        if self.throttle.due(event.kind):
            self._redraw()

    def _redraw(self) -> None:
        """Send the view again if it changed since the last redraw (one message to the frontend)."""
        value = self._html()
        if value != self._shown:
            self._shown = value
            self.box.value = value

    def _html(self) -> str:
        p = self.progress
        latest = f" — latest: <code>{html.escape(p.latest_call)}</code>" if p.latest_call else ""
        tail = self._text[-TEXT_TAIL_CHARS:]
        style = self._style
        text = (
            f"<div style='{style};white-space:pre-wrap;color:#24292f;max-height:16em;overflow:auto'>"
            f"{html.escape(tail)}</div>"
            if tail
            else ""
        )
        errors = "".join(f"<div style='{style};color:#cf222e'>{html.escape(m)}</div>" for m in p.errors)
        return (
            f"<div style='{style};color:#57606a'>⏳ {html.escape(p.status_line())}</div>{text}"
            f"<div style='{style}'>tool calls: <b>{p.tool_calls}</b>{latest}</div>{errors}"
        )

    def close(self) -> None:
        """Close the widget's comm (the final static view replaces it)."""
        self.box.close()
