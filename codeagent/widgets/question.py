"""How an approval question looks in the notebook: the tool call (pretty, truncated) or the script (highlighted).

Inline styles only, like the final view; ``text/plain`` for terminal IPython and other plain frontends.
"""

from __future__ import annotations

import html
import json
from typing import Any

from codeagent.tools.approval import Decision, Question
from codeagent.widgets.render import BOX, PRE, code_html

ARGUMENT_CHARS = 2_000
SCRIPT_CHARS = 20_000


def pretty_arguments(arguments: dict[str, Any], limit: int = ARGUMENT_CHARS) -> str:
    """The arguments as indented JSON (repr for what JSON cannot show), cut visibly at ``limit`` characters."""
    text = json.dumps(arguments, indent=2, ensure_ascii=False, default=repr)
    return text if len(text) <= limit else f"{text[:limit]}\n… truncated {len(text) - limit:,} chars"


def _cut(code: str) -> str:
    return (
        code
        if len(code) <= SCRIPT_CHARS
        else f"{code[:SCRIPT_CHARS]}\n# … truncated {len(code) - SCRIPT_CHARS:,} chars"
    )


def question_bundle(question: Question) -> dict[str, str]:
    """The mime bundle shown while the person is asked."""
    if question.subject == "tool":
        args = pretty_arguments(question.arguments)
        title = f"codeagent: the script wants to call {question.name}() — approve?"
        return {
            "text/plain": f"{title}\n{args}",
            "text/html": (
                f"<div style='{BOX}'><b>{html.escape(title)}</b><pre style='{PRE}'>{html.escape(args)}</pre></div>"
            ),
        }
    code = _cut(question.code)
    title = "codeagent: the model wants to run this script — run it?"
    return {
        "text/plain": f"{title}\n{code}",
        "text/html": f"<div style='{BOX}'><b>{html.escape(title)}</b>{code_html(code)}</div>",
    }


def decision_bundle(question: Question, decision: Decision) -> dict[str, str]:
    """What the question turns into once answered: one line saying what was decided."""
    mark = "✓" if decision.allowed else "✗"
    what = f"{question.name}({_one_line(question.arguments)})" if question.subject == "tool" else "script"
    reason = f" — {decision.reason}" if decision.reason else ""
    if "no stdin" in decision.note:
        reason = (
            f' — to let it run, pre-approve it: %config CodeAgent.approve = {{"{question.name}": "allow"}}'
            if question.subject == "tool"
            else " — run without --confirm (c.CodeAgent.confirm = False) to let scripts run here"
        )
    line = f"{mark} codeagent: {what}: {decision.note}{reason}"
    colour = "#1a7f37" if decision.allowed else "#cf222e"
    return {
        "text/plain": line,
        "text/html": f"<div style='font-family:sans-serif;font-size:12px;color:{colour}'>{html.escape(line)}</div>",
    }


def _one_line(arguments: dict[str, Any], limit: int = 80) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"
