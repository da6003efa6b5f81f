"""The budget arithmetic and the approval rules, without a kernel."""

from __future__ import annotations

import pytest

from codeagent.agent.budget import CHARS_PER_TOKEN, MIN_OUTPUT_TOKENS, Budget, Limits, UnknownPrice
from codeagent.agent.trace import Usage
from codeagent.tools.approval import Approvals, Decision, NoOneToAsk, Question, check_rules, parse_answer, rule_for


def usage(**fields: int) -> Usage:
    u = Usage()
    u.add(type("U", (), fields)())
    return u


def test_answers() -> None:
    assert [parse_answer(a) for a in ("y", " YES ", "a", "all", "n", "", "maybe")] == [
        "once",
        "once",
        "rest",
        "rest",
        "deny",
        "deny",
        "deny",
    ]


def test_rules_exact_name_before_patterns() -> None:
    rules = check_rules({"github_*": "allow", "github_delete_repo": "deny"})
    assert rule_for("github_delete_repo", rules) == "deny"
    assert rule_for("github_create_issue", rules) == "allow"
    assert rule_for("send_email", rules) is None
    with pytest.raises(ValueError, match="allow / deny / ask"):
        check_rules({"send_email": "yes"})


class Scripted:
    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.settled: list[Decision] = []

    def ask(self, question: Question, prompt: str) -> str:
        if not self.answers:
            raise NoOneToAsk
        return self.answers.pop(0)

    def settle(self, question: Question, decision: Decision) -> None:
        self.settled.append(decision)


def test_unmarked_tools_are_not_asked_about_unless_configured() -> None:
    asker = Scripted()
    approvals = Approvals(asker, {"lookup": "ask"})
    assert approvals.for_tool("other", {}, marked=False) is None
    decision = approvals.for_tool("lookup", {}, marked=False)
    assert decision is not None and not decision.allowed and "no stdin" in decision.note


def test_allow_for_the_rest_is_per_tool() -> None:
    approvals = Approvals(Scripted("a", "n"))
    first = approvals.for_tool("send_email", {"to": "x"}, marked=True)
    again = approvals.for_tool("send_email", {"to": "y"}, marked=True)
    other = approvals.for_tool("delete_file", {}, marked=True)
    assert first and first.allowed and again and again.allowed and other and not other.allowed


def test_first_request_estimated_from_its_size_then_from_reported_usage() -> None:
    budget = Budget(Limits(max_input_tokens=10_000), "claude-sonnet-5-5")
    assert budget.before_request(Usage(), 3 * 9_000, 8192) == 8192  # ≈9,000 tokens fit
    assert budget.before_request(Usage(), 3 * 10_001, 8192) is None
    assert budget.stopped_by == "--max-input-tokens 10,000"


def test_cost_limit_lowers_max_tokens_to_what_is_left() -> None:
    budget = Budget(Limits(max_cost=0.05), "claude-sonnet-5-5")
    chars = 3 * 1_000  # ≈1,000 tokens, priced as cache writes: $0.00375
    room = budget.before_request(Usage(), chars, 8192)
    assert room == int((0.05 - 1_000 * 3e-6 * 1.25) / 15e-6)
    budget.after_request(usage(input_tokens=1_000, output_tokens=room or 0), chars)
    spent = usage(input_tokens=1_000, output_tokens=room or 0)
    # what is left cannot pay for another request's input and the least output
    assert budget.before_request(spent, chars + 30, 8192) is None
    assert budget.stopped_by == "--max-cost $0.05"
    assert f"at least {MIN_OUTPUT_TOKENS} output tokens" in budget.why


def test_dollar_limits_need_a_known_price() -> None:
    with pytest.raises(UnknownPrice, match="--max-input-tokens"):
        Budget(Limits(max_cost=1.0), "qwen2.5-coder")
    with pytest.raises(UnknownPrice, match="session_budget_usd"):
        Budget(Limits(session_budget_usd=1.0), "qwen2.5-coder")
    assert Budget(Limits(max_input_tokens=5), "qwen2.5-coder").prices is None
    assert CHARS_PER_TOKEN <= 4
