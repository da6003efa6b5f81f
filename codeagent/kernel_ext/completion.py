"""Tab completion of ``@name`` mentions in ``%codeagent`` questions (IPython's matcher API, v2)."""

from __future__ import annotations

import re
from typing import Any

from IPython.core.completer import SimpleCompletion, context_matcher

from codeagent.kernel_ext.mentions import mention_completions

_MENTION_AT_CURSOR = re.compile(r"(?<![\w.@])@([A-Za-z_][A-Za-z0-9_]*)?$")


def is_codeagent_question(full_text: str, line_until_cursor: str) -> bool:
    """The cursor is in a ``%%codeagent`` cell or after ``%codeagent`` on its line."""
    return full_text.lstrip().startswith("%%codeagent") or "%codeagent" in line_until_cursor


def make_mention_matcher(shell: Any) -> Any:
    """A matcher offering the notebook's data variables after ``@`` in a codeagent question, and nothing else."""

    @context_matcher(identifier="codeagent.mentions")
    def mention_matcher(context: Any) -> dict[str, Any]:
        before = context.text_until_cursor
        match = _MENTION_AT_CURSOR.search(before)
        if match is None or not is_codeagent_question(context.full_text, before):
            return {"completions": []}
        prefix = match.group(1) or ""
        names = [m[1:] for m in mention_completions(prefix, shell.user_ns)]
        completions = [SimpleCompletion(text=name, type="variable") for name in names]
        # other matchers would offer every global after "@": only data variables make sense here
        return {"completions": completions, "suppress": bool(completions)}

    return mention_matcher


def install(shell: Any) -> None:
    """Add the ``@`` matcher to the shell's completer (once)."""
    matchers = shell.Completer.custom_matchers
    if not any(getattr(m, "matcher_identifier", None) == "codeagent.mentions" for m in matchers):
        matchers.append(make_mention_matcher(shell))


def uninstall(shell: Any) -> None:
    matchers = shell.Completer.custom_matchers
    matchers[:] = [m for m in matchers if getattr(m, "matcher_identifier", None) != "codeagent.mentions"]
