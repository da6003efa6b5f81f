"""The live view of a running call: status line, streaming model text, tool-call counter, errors.

Every update happens on the thread that runs the call (the notebook's main thread), through trait
assignment only; nothing here starts threads.
"""

from __future__ import annotations

import html
import time
from typing import Any

from codeagent.agent.trace import TraceEvent

TEXT_TAIL_CHARS = 4_000
MIN_TEXT_INTERVAL_S = 0.05

PHASES = {
    "model_started": "asking the model",
    "model_finished": "model answered",
    "script_started": "running the script",
    "script_finished": "script finished",
    "approval_asked": "waiting for your answer (below)",
    "tool_call": "running the script",
}


class LiveView:
    """An ipywidgets box that follows :class:`TraceEvent` s; call it with each event."""

    def __init__(self, max_steps: int) -> None:
        import ipywidgets as widgets

        self.max_steps = max_steps
        self.started = time.perf_counter()
        self.step = 0
        self.phase = "starting"
        self.tool_calls = 0
        self.latest_call = ""
        self._text = ""
        self._text_flushed_at = 0.0
        style = "font-family:sans-serif;font-size:12px"
        self.status = widgets.HTML(layout={"margin": "0"})
        self.text = widgets.HTML(layout={"margin": "0", "max_height": "16em", "overflow": "auto"})
        self.calls = widgets.HTML(layout={"margin": "0"})
        self.errors = widgets.HTML(layout={"margin": "0"})
        self._style = style
        self.box = widgets.VBox([self.status, self.text, self.calls, self.errors])
        self._render_status()
        self._render_calls()

    # The view's own mime bundle, so `display(view)` shows the widget (text/plain elsewhere).
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.box._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = self.status_line()
        return bundle

    def status_line(self) -> str:
        elapsed = time.perf_counter() - self.started
        return (
            f"codeagent · {self.phase} · step {max(self.step, 1)} of {self.max_steps} · "
            f"{self.tool_calls} tool calls · {elapsed:.1f} s"
        )

    def __call__(self, event: TraceEvent) -> None:
        kind = event.kind
        if kind == "model_started":
            self.step = int(event.data)
        if kind in PHASES:
            self.phase = PHASES[kind]
        if kind == "model_text":
            self._text += str(event.data)
            now = time.perf_counter()
            if now - self._text_flushed_at >= MIN_TEXT_INTERVAL_S:
                self._flush_text(now)
        elif kind == "tool_call":
            self.tool_calls += 1
            call = event.data
            self.latest_call = f"{call.name}({_short_args(call.arguments)})" + (" ✗" if call.error else "")
            self._render_calls()
        elif kind == "script_finished" and event.data.status != "ok":
            self._add_error(f"script {event.data.status}: {event.data.error_name or ''}")
        elif kind == "error":
            self._add_error(str(event.data))
        elif kind == "model_finished":
            self._flush_text(time.perf_counter())
            self._text += "\n"
        self._render_status()

    def _flush_text(self, now: float) -> None:
        self._text_flushed_at = now
        tail = self._text[-TEXT_TAIL_CHARS:]
        self.text.value = f"<div style='{self._style};white-space:pre-wrap;color:#24292f'>{html.escape(tail)}</div>"

    def _render_status(self) -> None:
        self.status.value = f"<div style='{self._style};color:#57606a'>⏳ {html.escape(self.status_line())}</div>"

    def _render_calls(self) -> None:
        latest = f" — latest: <code>{html.escape(self.latest_call)}</code>" if self.latest_call else ""
        self.calls.value = f"<div style='{self._style}'>tool calls: <b>{self.tool_calls}</b>{latest}</div>"

    def _add_error(self, message: str) -> None:
        self.errors.value += f"<div style='{self._style};color:#cf222e'>{html.escape(message)}</div>"

    def close(self) -> None:
        """Close the widgets' comms (the final static view replaces them)."""
        for w in (self.status, self.text, self.calls, self.errors, self.box):
            w.close()


def _short_args(arguments: dict[str, Any], limit: int = 60) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"
