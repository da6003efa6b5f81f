"""The exceptions codeagent itself raises inside a script, one class on both sides. Standard library only.

The host raises them for a tool call it refuses; the guest runtime raises the same class in the script, so
``except ToolDenied`` works with the predefined name and with ``from codeagent import ToolDenied``.
"""

from __future__ import annotations


class ToolDenied(PermissionError):
    """A tool call was not allowed: the person said no, the notebook's configuration denies it, or no one could
    answer. The message says what to do instead."""


class BudgetExceeded(RuntimeError):
    """A limit of the call was reached (``--max-tool-calls``, ``--max-cost``, ``--max-input-tokens``,
    ``c.CodeAgent.session_budget_usd``); a tool call over the limit raises it in the script, then the call
    stops."""


#: By name, as they travel in an error reply.
NAMED_ERRORS: dict[str, type[Exception]] = {"ToolDenied": ToolDenied, "BudgetExceeded": BudgetExceeded}
for _error in NAMED_ERRORS.values():
    _error.__module__ = "codeagent"  # shown as codeagent.ToolDenied, where it is importable from
