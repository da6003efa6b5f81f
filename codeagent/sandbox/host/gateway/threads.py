"""Threads a script leaves in a kernel behind a gateway, as that kernel reports them.

The host cannot read the remote machine's ``/proc``, so after each script it asks the kernel for its threads'
names (``guest/leftovers.report``, a silent execute) and restarts it when there are more than before any script
ran. That is the kernel's own word: a script that replaces ``report`` (or the reply) hides its threads, so this
catches honest leftovers (an executor, a library pool, a forgotten thread), not a hostile script.
"""

from __future__ import annotations

import ast
import json
from collections import Counter
from typing import Any

from codeagent.sandbox.host.threads import summarize

#: A silent execute whose user expression is the kernel's thread names (JSON, see guest/leftovers.report).
THREADS_REQUEST: dict[str, Any] = {
    "code": "",
    "silent": True,
    "store_history": False,
    "user_expressions": {"threads": "__import__('codeagent.sandbox.guest.leftovers', fromlist=['_']).report()"},
    "allow_stdin": False,
}


def reported_threads(reply: dict[str, Any]) -> list[str] | None:
    """The thread names in the kernel's execute_reply to THREADS_REQUEST, or None if it has none readable."""
    try:
        value = reply["content"]["user_expressions"]["threads"]["data"]["text/plain"]
        names = json.loads(ast.literal_eval(value)) if isinstance(value, str) and len(value) < 1 << 20 else None
    except (KeyError, TypeError, ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    return names


def left_threads_problem(threads: list[str] | None, own: list[str]) -> str:
    """What the notice says: the threads beyond the kernel's own, or that it did not say."""
    if threads is None:
        return "the sandbox kernel at the gateway did not report its threads after the script"
    new = list((Counter(threads) - Counter(own)).elements())
    return (
        f"{len(threads) - len(own)} threads it started were still running after it returned "
        f"({summarize(new) or 'unnamed'}, as the kernel at the gateway reports)"
    )
