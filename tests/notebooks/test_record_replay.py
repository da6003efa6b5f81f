"""``%codeagent --record`` / ``--replay`` and ``CodeAgent.cassette`` in a shell: the real SDK, sandbox and tools."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from codeagent.agent.cassette import Cassette
from codeagent.agent.trace import CodeAgentResult
from codeagent.examples.expenses import expense_tools as example_tools
from codeagent.examples.expenses import make_expense_data
from codeagent.examples.runner import closed_port_url
from codeagent.kernel_ext.magic import final_view
from codeagent.testing.messages_server import MessagesServer, Turn, code_turn, text_turn
from codeagent.tools import tool

QUESTION = 'Who on team "platform" went over budget in 2026-10?'
SCRIPT = """
over = []
for m in get_team_members("platform"):
    total = sum(e["amount"] for e in get_expenses(m["id"], "2026-10"))
    if total > m["budget"]:
        over.append(f"{m['name']}: {total - m['budget']:.2f}")
print("\\n".join(sorted(over)))
"""


def answer_from_output(body: dict[str, Any]) -> Turn:
    output = body["messages"][-1]["content"][0]["content"]
    return text_turn("Over budget:\n" + "\n".join(f"- {line}" for line in output.splitlines()))


@pytest.fixture
def expense_tools(registry: Any) -> Any:
    data = make_expense_data(members=20, per_member=10, month="2026-10")
    for func in example_tools(data):
        tool(func)
    return data


@pytest.fixture
def go_offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Call to drop the API key and point the API at a closed port."""

    def offline() -> None:
        monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", closed_port_url())

    yield offline


@pytest.fixture
def configured(shell: Any) -> Iterator[Any]:
    """Restore CodeAgent.cassette / cassette_mode after the test."""
    yield shell
    shell.run_line_magic("config", 'CodeAgent.cassette = ""')
    shell.run_line_magic("config", 'CodeAgent.cassette_mode = "auto"')


def ask(shell: Any, line: str) -> tuple[CodeAgentResult, str]:
    shell.run_line_magic("codeagent", "--new")
    with capture_output():
        result = shell.run_line_magic("codeagent", line)
    return result, final_view(result)["text/plain"]


def over_budget_lines(answer: str) -> dict[str, float]:
    return {name: float(v) for name, v in re.findall(r"- (Member \d{4}): ([\d.]+)", answer)}


def test_record_then_replay_reproduces_the_answer_with_no_key_and_no_server(
    shell: Any, model_server: MessagesServer, expense_tools: Any, tmp_path: Path, go_offline: Any
) -> None:
    path = tmp_path / "expenses.cassette.json"
    model_server.add_turns(code_turn(SCRIPT), answer_from_output)
    recorded, recorded_view = ask(shell, f"--record {path} {QUESTION}")
    assert recorded.status == "done" and not recorded.replayed
    assert over_budget_lines(recorded.answer) == expense_tools.over_budget("2026-10")
    assert "replayed" not in recorded_view
    assert len(json.loads(path.read_text())["turns"]) == 2

    requests_before = len(model_server.requests)
    go_offline()
    replayed, replayed_view = ask(shell, f"--replay {path} {QUESTION}")
    assert replayed.status == "done", replayed.error
    assert replayed.replayed and replayed_view.rstrip().endswith("replayed from cassette")
    assert replayed.answer == recorded.answer
    assert len(replayed.tool_calls) == len(recorded.tool_calls) == 21  # the script really ran again
    assert len(model_server.requests) == requests_before


def test_replay_stops_with_a_message_when_the_tools_return_other_data(
    shell: Any, model_server: MessagesServer, expense_tools: Any, tmp_path: Path, go_offline: Any
) -> None:
    path = tmp_path / "c.json"
    model_server.add_turns(code_turn(SCRIPT), answer_from_output)
    ask(shell, f"--record {path} {QUESTION}")
    go_offline()
    member = expense_tools.members[0]
    expense_tools.expenses[(member["id"], "2026-10")].append({"amount": 99_999.0, "merchant": "Yacht", "date": "x"})
    result, view = ask(shell, f"--replay {path} {QUESTION}")
    assert result.status == "error"
    assert result.error.startswith(f'turn 2 (question "{QUESTION}"): the tool_result differs from the recording')
    expected, got = re.search(r"expected '(.*)' got '(.*)' \(first difference", result.error).groups()
    assert "Member 0000" in got and "Member 0000" not in expected
    assert view.startswith("[error] turn 2")


def test_config_selects_the_cassette_and_replay_needs_no_key(
    configured: Any,
    model_server: MessagesServer,
    expense_tools: Any,
    tmp_path: Path,
    go_offline: Any,
    monkeypatch: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    shell = configured
    monkeypatch.chdir(tmp_path)
    shell.run_line_magic("config", 'CodeAgent.cassette = "configured.cassette.json"')
    model_server.add_turns(code_turn(SCRIPT), answer_from_output)
    first, _ = ask(shell, QUESTION)  # auto: no file yet, so it records
    assert first.status == "done" and not first.replayed
    assert Cassette.load(tmp_path / "configured.cassette.json").turns

    go_offline()
    shell.run_line_magic("config", 'CodeAgent.cassette_mode = "replay"')
    again, _ = ask(shell, QUESTION)
    assert again.replayed and again.answer == first.answer

    shell.run_line_magic("config", 'CodeAgent.cassette_mode = "off"')
    monkeypatch.delenv("ANTHROPIC_BASE_URL")  # the live Anthropic API needs a key (a local server would not)
    with pytest.raises(UsageError, match="No Anthropic API key found"):
        shell.run_line_magic("codeagent", QUESTION)
    with caplog.at_level(logging.ERROR):  # %config reports the refusal as an error, when it is set
        shell.run_line_magic("config", 'CodeAgent.cassette_mode = "sometimes"')
    assert "cassette_mode' trait of a CodeAgent instance expected any of ['auto', 'record', 'replay', 'off']" in (
        caplog.text
    )
    assert shell.run_line_magic("config", "CodeAgent.cassette_mode") == "off"
    with pytest.raises(UsageError, match="No Anthropic API key found"):
        shell.run_line_magic("codeagent", QUESTION)


def test_replaying_a_missing_cassette_is_a_usage_error(shell: Any, registry: Any, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"No cassette at .*nothing\.json: record one first with --record"):
        shell.run_line_magic("codeagent", f"--replay {tmp_path / 'nothing.json'} hello")
