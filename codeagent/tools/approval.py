"""Who may let a tool call (or a whole script) run: the person in the notebook, the configuration, or no one.

A tool marked ``approve=True`` (``@tool(approve=True)``, or an MCP server's tools added with ``approve=...``)
pauses the script on every call and asks; ``c.CodeAgent.approve = {"send_email": "allow"}`` decides ahead of
time (``"allow"``, ``"deny"`` or ``"ask"``; keys may be shell-style patterns such as ``"github_*"``). With
``--confirm`` each script is shown and asked about before it runs. Every decision says who made it, for the
trace.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from codeagent.sandbox.protocol.errors import ToolDenied

__all__ = ["Approvals", "Decision", "NoOneToAsk", "Question", "ToolDenied"]

Rule = Literal["allow", "deny", "ask"]
RULES: tuple[Rule, ...] = ("allow", "deny", "ask")
Subject = Literal["tool", "script"]

TOOL_PROMPT = "Allow this call? [y] once · [a] for the rest of this call · [n] deny (default): "
SCRIPT_PROMPT = "Run this script? [y] yes · [a] this and every script of this call · [n] no (default): "
REASON_PROMPT = "Why not? (sent to the model; Enter for no reason): "
INTERRUPTED_NOTE = "denied: interrupted (Ctrl-C) while asking; the call was stopped"


class NoOneToAsk(Exception):
    """The notebook cannot ask anyone (no stdin: nbclient, papermill, ``allow_stdin=False``)."""


@dataclass
class Question:
    """What the person is asked about: a tool call (name and arguments) or a script (its code)."""

    subject: Subject
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    code: str = ""

    @property
    def prompt(self) -> str:
        return TOOL_PROMPT if self.subject == "tool" else SCRIPT_PROMPT


@dataclass
class Decision:
    """The outcome of a question; ``note`` is the trace's record of who decided what."""

    allowed: bool
    note: str
    reason: str = ""  # the person's words (a denied script), for the model
    waited_s: float = 0.0  # time spent waiting for the person


class Asker(Protocol):
    """Asks the person (``codeagent.kernel_ext.asking.NotebookAsker``). Raises NoOneToAsk or KeyboardInterrupt."""

    def ask(self, question: Question, prompt: str) -> str: ...

    def settle(self, question: Question, decision: Decision) -> None: ...


def parse_answer(text: str) -> Literal["once", "rest", "deny"]:
    """``y``/``yes`` → once, ``a``/``all`` → rest of this call, anything else (``n``, empty) → deny."""
    word = text.strip().lower()
    if word in ("y", "yes"):
        return "once"
    if word in ("a", "all", "always"):
        return "rest"
    return "deny"


def rule_for(name: str, rules: Mapping[str, str]) -> str | None:
    """The configured rule for a tool: an exact key first, then the first matching pattern."""
    if name in rules:
        return rules[name]
    return next((rule for pattern, rule in rules.items() if fnmatch.fnmatchcase(name, pattern)), None)


def check_rules(rules: Mapping[str, Any]) -> dict[str, str]:
    """``rules`` as a validated dict, or ValueError saying what is wrong."""
    bad = {k: v for k, v in rules.items() if not isinstance(k, str) or v not in RULES}
    if bad:
        raise ValueError(f"CodeAgent.approve maps tool names to {' / '.join(RULES)}; not {bad!r}")
    return dict(rules)


class Approvals:
    """The approval decisions of one ``%codeagent`` call (answers of ``a`` hold until the call ends)."""

    def __init__(
        self,
        asker: Asker | None = None,
        rules: Mapping[str, str] | None = None,
        *,
        confirm: bool = False,
        on_asked: Any = None,
    ) -> None:
        self.asker = asker
        self.rules = dict(rules or {})
        self.confirm = confirm
        self.on_asked = on_asked  # called with the Question while the person is asked (the live view)
        self._allowed_for_call: set[str] = set()
        self._scripts_allowed = False

    def for_tool(self, name: str, arguments: dict[str, Any], marked: bool) -> Decision | None:
        """None when the call needs no approval; else the decision (may raise KeyboardInterrupt)."""
        rule = rule_for(name, self.rules)
        if rule == "allow":
            return Decision(True, "allowed by c.CodeAgent.approve") if marked else None
        if rule == "deny":
            return Decision(False, "denied by c.CodeAgent.approve")
        if not marked and rule != "ask":
            return None
        if name in self._allowed_for_call:
            return Decision(True, "allowed by you (for the rest of this call)")
        return self._ask(Question("tool", name, arguments=arguments))

    def for_script(self, code: str) -> Decision | None:
        """None without ``--confirm``; else whether the person lets the script run."""
        if not self.confirm:
            return None
        if self._scripts_allowed:
            return Decision(True, "run: you confirmed every script of this call")
        return self._ask(Question("script", "execute_python", code=code))

    def _ask(self, question: Question) -> Decision:
        started = time.perf_counter()
        if self.asker is None:
            decision = self._nobody(question)
        else:
            if self.on_asked is not None:
                self.on_asked(question)
            try:
                decision = self._put(question, self.asker)
            except NoOneToAsk:
                decision = self._nobody(question)
            except KeyboardInterrupt:
                decision = Decision(False, INTERRUPTED_NOTE)
                decision.waited_s = time.perf_counter() - started
                self.asker.settle(question, decision)
                raise
            self.asker.settle(question, decision)
        decision.waited_s = time.perf_counter() - started
        return decision

    def _put(self, question: Question, asker: Asker) -> Decision:
        answer = parse_answer(asker.ask(question, question.prompt))
        if question.subject == "tool":
            if answer == "rest":
                self._allowed_for_call.add(question.name)
                return Decision(True, "allowed by you (a: for the rest of this call)")
            if answer == "once":
                return Decision(True, "allowed by you (once)")
            return Decision(False, "denied by you")
        if answer == "rest":
            self._scripts_allowed = True
            return Decision(True, "run: you confirmed this and every later script of this call")
        if answer == "once":
            return Decision(True, "run: you confirmed it")
        reason = asker.ask(question, REASON_PROMPT).strip()
        return Decision(False, "not run: you declined it", reason=reason)

    def _nobody(self, question: Question) -> Decision:
        if question.subject == "tool":
            return Decision(False, "denied: no one could answer (this notebook has no stdin)")
        return Decision(False, "not run: no one could confirm it (this notebook has no stdin)")


def denial_message(name: str, decision: Decision) -> str:
    """The ToolDenied message the script (and so the model) sees."""
    if "no stdin" in decision.note:
        return (
            f"{name}() needs approval, but no one can answer here (the notebook runs without stdin, e.g. under "
            f"nbclient or papermill), so the call was denied. To let it run, pre-approve it: "
            f'%config CodeAgent.approve = {{"{name}": "allow"}}'
        )
    if "c.CodeAgent.approve" in decision.note:
        return f"{name}() is denied by the notebook's configuration (c.CodeAgent.approve); do not call it."
    return f"The user denied this call of {name}(). Do not retry it; continue without it or explain what you needed."


def script_denial_message(decision: Decision) -> str:
    """The tool_result the model gets for a script the person did not let run."""
    if "no stdin" in decision.note:
        return (
            "The script was not run: --confirm is on, but no one can confirm here (the notebook runs without "
            "stdin). Run the call without --confirm (c.CodeAgent.confirm = False) to let scripts run."
        )
    reason = decision.reason or "(no reason given)"
    return f"The user did not let this script run. Their reason: {reason}"
