"""The per-call tool-call limit (``--max-tool-calls``) and the exception a script gets past any limit."""

from __future__ import annotations

from codeagent.sandbox.protocol.errors import BudgetExceeded

__all__ = ["BudgetExceeded", "ToolCallLimit"]


class ToolCallLimit:
    """Counts the tool calls of one ``%codeagent`` call, across its scripts and direct calls."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0
        self.refused = 0

    def check(self, name: str) -> BudgetExceeded | None:
        """The BudgetExceeded to raise instead of calling ``name`` when the limit is reached, else None."""
        if self.limit is not None and self.used >= self.limit:
            self.refused += 1
            return BudgetExceeded(
                f"{name}() was not called: this call may make at most {self.limit} tool call(s) "
                f"(--max-tool-calls {self.limit}) and all were used. Stop and report what you have."
            )
        return None

    def count(self) -> None:
        """One call is going ahead (a denied one is not counted)."""
        self.used += 1

    @property
    def reached(self) -> bool:
        """True once a call was refused: the %codeagent call stops after this script."""
        return self.refused > 0
