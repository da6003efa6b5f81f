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
    """An ipywidgets box that follows :class:`TraceEvent` s; call it with each event."""

    def __init__(self, max_steps: int) -> None:
        import ipywidgets as widgets

        self.progress = Progress(max_steps)
        self.throttle = Throttle()
        self._text = ""
        self._shown = {"status": "", "text": "", "calls": "", "errors": ""}
        self._style = "font-family:sans-serif;font-size:12px"
        self.status = widgets.HTML(layout={"margin": "0"})
        self.text = widgets.HTML(layout={"margin": "0", "max_height": "16em", "overflow": "auto"})
        self.calls = widgets.HTML(layout={"margin": "0"})
        self.errors = widgets.HTML(layout={"margin": "0"})
        self.box = widgets.VBox([self.status, self.text, self.calls, self.errors])
        self._redraw()

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
        """Send only the parts that changed since the last redraw (each is one message to the frontend)."""
        p = self.progress
        latest = f" — latest: <code>{html.escape(p.latest_call)}</code>" if p.latest_call else ""
        tail = self._text[-TEXT_TAIL_CHARS:]
        parts = {
            "status": f"<div style='{self._style};color:#57606a'>⏳ {html.escape(p.status_line())}</div>",
            "text": f"<div style='{self._style};white-space:pre-wrap;color:#24292f'>{html.escape(tail)}</div>"
            if tail
            else "",
            "calls": f"<div style='{self._style}'>tool calls: <b>{p.tool_calls}</b>{latest}</div>",
            "errors": "".join(
                f"<div style='{self._style};color:#cf222e'>{html.escape(message)}</div>" for message in p.errors
            ),
        }
        for name, value in parts.items():
            if value != self._shown[name]:
                self._shown[name] = value
                getattr(self, name).value = value

    def close(self) -> None:
        """Close the widgets' comms (the final static view replaces them)."""
        for w in (self.status, self.text, self.calls, self.errors, self.box):
            w.close()
