"""What a running call has done so far, as the live views show it; and how often they may redraw."""

from __future__ import annotations

import time
from typing import Any

from codeagent.agent.trace import TraceEvent

#: Redraws of a live view per second at most: tool calls can come 30,000 a second, and each redraw costs the
#: notebook kernel a signed message to the frontend while the script waits.
MAX_REDRAWS_PER_S = 10
PHASES = {
    "model_started": "asking the model",
    "model_finished": "model answered",
    "script_started": "running the script",
    "script_finished": "script finished",
    "approval_asked": "waiting for your answer (below)",
    "tool_call": "running the script",
}
#: Events after which a view redraws at once: the ones a wait may follow (for the model, the script, a person).
#: The others are soon followed by one of these (a finished script by the next request, an error by the end)
#: and are drawn with it; a fast call makes 3 redraws, not 8 (each costs a signed message per changed widget).
PROMPT_EVENTS = frozenset({"model_started", "script_started", "approval_asked"})


class Progress:
    """Step, phase and tool-call count of a running call, fed with :class:`TraceEvent` s."""

    def __init__(self, max_steps: int) -> None:
        self.max_steps = max_steps
        self.started = time.perf_counter()
        self.step = 0
        self.phase = "starting"
        self.tool_calls = 0
        self._latest: Any = None  # the last tool call's record, formatted only when a view is drawn
        self.errors: list[str] = []

    def update(self, event: TraceEvent) -> None:
        kind = event.kind
        if kind == "model_started":
            self.step = int(event.data)
        if kind in PHASES:
            self.phase = PHASES[kind]
        if kind == "tool_call":
            self.tool_calls += 1
            self._latest = event.data
        elif kind == "script_finished" and event.data.status != "ok":
            self.errors.append(f"script {event.data.status}: {event.data.error_name or ''}")
        elif kind == "error":
            self.errors.append(str(event.data))

    @property
    def latest_call(self) -> str:
        call = self._latest
        if call is None:
            return ""
        return f"{call.name}({short_args(call.arguments)})" + (" ✗" if call.error else "")

    def status_line(self) -> str:
        elapsed = time.perf_counter() - self.started
        return (
            f"codeagent · {self.phase} · step {max(self.step, 1)} of {self.max_steps} · "
            f"{self.tool_calls} tool calls · {elapsed:.1f} s"
        )


class Throttle:
    """Says whether a redraw is due: at once for prompt events, else at most ``per_second`` times a second."""

    def __init__(self, per_second: float = MAX_REDRAWS_PER_S) -> None:
        self.interval = 1.0 / per_second
        self.last = 0.0

    def due(self, kind: str) -> bool:
        now = time.perf_counter()
        if kind in PROMPT_EVENTS or now - self.last >= self.interval:
            self.last = now
            return True
        return False


def short_args(arguments: dict[str, Any], limit: int = 60) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"
