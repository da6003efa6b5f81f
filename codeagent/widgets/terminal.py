"""The live view in a terminal (IPython without widgets): one status line, redrawn in place."""

from __future__ import annotations

import sys
from typing import TextIO

from codeagent.agent.trace import TraceEvent
from codeagent.widgets.progress import Progress, Throttle


class TerminalView:
    """Writes the status line to ``stream`` with ``\\r`` (coalesced), and erases it when the call ends."""

    def __init__(self, max_steps: int, stream: TextIO | None = None) -> None:
        self.progress = Progress(max_steps)
        self.throttle = Throttle()
        self.stream = stream or sys.stdout
        self._width = 0
        self._errors_shown = 0
        self._draw()

    def __call__(self, event: TraceEvent) -> None:
        self.progress.update(event)
        if event.kind != "model_text" and self.throttle.due(event.kind):
            self._draw()

    def status_line(self) -> str:
        return self.progress.status_line()

    def _draw(self) -> None:
        errors = self.progress.errors[self._errors_shown :]
        if errors:  # errors stay on their own lines above the status line
            self._write("\r" + " " * self._width + "\r" + "".join(f"codeagent: {e}\n" for e in errors))
            self._errors_shown += len(errors)
            self._width = 0
        line = self.status_line()
        self._write("\r" + line + " " * max(0, self._width - len(line)))
        self._width = len(line)

    def close(self) -> None:
        """Erase the status line (the answer follows as the cell's result), after any error not shown yet."""
        if self.progress.errors[self._errors_shown :]:
            self._draw()
        self._write("\r" + " " * self._width + "\r")
        self._width = 0

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
