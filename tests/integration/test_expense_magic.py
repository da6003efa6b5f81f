"""The expense example end to end: magic → real SDK → local Messages API → sandbox kernel → tools."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from codeagent.agent.trace import CodeAgentResult
from codeagent.examples.expenses import expense_tools as example_tools
from codeagent.examples.expenses import make_expense_data, over_budget_script
from codeagent.kernel_ext.magic import final_view
from codeagent.testing.messages_server import MessagesServer, Turn, code_turn, last_tool_result, text_turn
from codeagent.tools import tool
from tests.conftest import user_variables

MONTH = "2026-10"

OVER_BUDGET_SCRIPT = over_budget_script(month=MONTH)


def answer_from_output(body: dict[str, Any]) -> Turn:
    """A scripted model that answers with the lines the script printed."""
    output = last_tool_result(body)
    lines = [line for line in output.splitlines() if re.match(r"Member \d{4}: ", line)]
    return text_turn("Over budget in 2026-10:\n" + "\n".join(f"- {line}" for line in lines))


@pytest.fixture
def expense_tools(registry: Any) -> Any:
    data = make_expense_data(members=50, per_member=40, month=MONTH)
    for func in example_tools(data):
        tool(func)
    return data


def run_magic(shell: Any, line: str) -> tuple[CodeAgentResult, Any]:
    with capture_output() as captured:
        result = shell.run_line_magic("codeagent", line)
    return result, captured


def test_expense_answer_is_right_and_no_record_reaches_the_model(
    shell: Any, model_server: MessagesServer, expense_tools: Any, fresh_conversation: None
) -> None:
    before = user_variables(shell)
    model_server.add_turns(code_turn(OVER_BUDGET_SCRIPT, text="I'll compute it in one script."), answer_from_output)

    result, _captured = run_magic(shell, 'Who on team "platform" went over budget in 2026-10, and by how much?')

    truth = expense_tools.over_budget(MONTH)
    assert result.status == "done", result.error
    answer_lines = dict(re.findall(r"- (Member \d{4}): ([\d.]+)", result.answer))
    assert {k: float(v) for k, v in answer_lines.items()} == truth
    assert len(result.tool_calls) == 51
    assert result.tool_calls[0].name == "get_team_members"
    assert {c.name for c in result.tool_calls[1:]} == {"get_expenses"}
    assert result.usage.input_tokens > 0 and result.usage.requests == 2

    # The model saw the printed summary only: no expense record in any request it received.
    requests = json.dumps(model_server.requests)
    merchants = {e["merchant"] for rows in expense_tools.expenses.values() for e in rows}
    assert not [m for m in merchants if m in requests]
    assert '"merchant"' not in requests.replace('\\"merchant\\": str', "")
    assert "members checked: 50" in last_tool_result(model_server.requests[1])
    # The model's first request shows the tools as Python stubs.
    system = model_server.requests[0]["system"][0]["text"]
    assert "def get_expenses(member_id: str, month: str) -> list[dict]:" in system

    html = final_view(result)["text/html"]
    assert "Member" in html and "<details" in html and "<script" not in html and "<style" not in html
    assert user_variables(shell) == before


def test_syntax_error_and_tool_error_go_back_to_the_model(
    shell: Any, model_server: MessagesServer, expense_tools: Any, fresh_conversation: None
) -> None:
    before = user_variables(shell)
    seen: dict[str, str] = {}

    def after_syntax_error(body: dict[str, Any]) -> Turn:
        seen["syntax"] = last_tool_result(body)
        return code_turn('get_team_members("no-such-team")')

    def after_tool_error(body: dict[str, Any]) -> Turn:
        seen["tool"] = last_tool_result(body)
        return code_turn(
            'try:\n    get_team_members("nope")\nexcept ValueError as e:\n    print("caught:", e)\n'
            'print(len(get_team_members("platform")))'
        )

    model_server.add_turns(
        code_turn("for m in get_team_members('platform')\n    print(m)"),
        after_syntax_error,
        after_tool_error,
        answer_from_output,
    )
    result, _ = run_magic(shell, "How many members?")

    assert "SyntaxError" in seen["syntax"]
    assert "ValueError" in seen["tool"] and "unknown team 'no-such-team'" in seen["tool"]
    assert model_server.requests[1]["messages"][-1]["content"][0].get("is_error") is True
    assert [s.status for s in result.scripts] == ["error", "error", "ok"]
    assert result.scripts[-1].output.strip() == "caught: unknown team 'nope'\n50".strip()
    assert result.status == "done"
    assert user_variables(shell) == before


def test_step_limit_ends_a_looping_conversation(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    # a different script each time (the same script re-sent would end the call with its output)
    model_server.add_turns(*[code_turn(f"print('again {i}')") for i in range(3)])
    result, _captured = run_magic(shell, "--max-steps 3 Loop forever")
    assert result.status == "max_steps"
    assert "Stopped after 3 model steps" in (result.error or "")
    assert len(model_server.requests) == 3 and len(result.scripts) == 2
    assert "Stopped after 3 model steps" in final_view(result)["text/plain"]


def test_missing_key_gives_one_short_message(
    shell: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, registry: Any
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)  # Anthropic's API needs a key; a local server would not
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=r"^No Anthropic API key found\. Set ANTHROPIC_API_KEY") as err:
        shell.run_line_magic("codeagent", "hello?")
    assert "\n" not in str(err.value)


def test_output_option_stores_the_result(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    model_server.add_turns(text_turn("42"))
    result, _ = run_magic(shell, "-o answer_obj --model claude-test What is 6*7?")
    try:
        assert shell.user_ns["answer_obj"] is result
        assert result.answer == "42"
        assert model_server.requests[0]["model"] == "claude-test"
    finally:
        shell.user_ns.pop("answer_obj", None)
