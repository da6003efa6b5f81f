"""The context-economy benchmark on its smallest task: its figures come from the requests actually sent."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anthropic
import pytest

from benchmarks import context_economy
from benchmarks._runners import api_counter, offline_counts, run_direct
from benchmarks._tasks import expense_task, lookup_task
from codeagent.sandbox.host.manager import SandboxKernel
from codeagent.testing.messages_server import MessagesServer, model_visible_parts


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxKernel]:
    with SandboxKernel() as kernel:
        yield kernel


def chars(body: dict[str, Any]) -> int:
    return len(json.dumps(model_visible_parts(body)))


def test_reduction_is_computed_from_the_recorded_requests(sandbox: SandboxKernel) -> None:
    given: list[list[dict[str, Any]]] = []

    def counter(bodies: Sequence[dict[str, Any]]) -> list[int]:
        """A different count (characters), to see that the figures come from the bodies passed here."""
        given.append(list(bodies))
        return [chars(b) for b in bodies]

    task = expense_task(10)
    comparison = context_economy.compare(task, sandbox, counter)

    direct_bodies, codeagent_bodies = given
    assert len(direct_bodies) == comparison.direct.turns == 12  # members, 10 × expenses, the answer
    assert len(codeagent_bodies) == comparison.codeagent.turns == 2  # the script, the answer
    assert comparison.direct.input_tokens == sum(chars(b) for b in direct_bodies)
    assert comparison.codeagent.input_tokens == sum(chars(b) for b in codeagent_bodies)
    expected = 100 * (1 - comparison.codeagent.input_tokens / comparison.direct.input_tokens)
    assert comparison.reduction_pct == pytest.approx(expected)

    # These are the requests as sent: every expense record reached the direct model, none reached codeagent's.
    tool = next(t for t in task.tools if t.name == "get_expenses")
    merchants = {row["merchant"] for m in range(10) for row in tool.func(f"m{m:04d}", "2026-10")}
    last_direct = json.dumps(direct_bodies[-1])
    assert merchants and all(m in last_direct for m in merchants)
    assert not any(m in json.dumps(codeagent_bodies) for m in merchants)
    assert "def get_expenses(member_id: str, month: str) -> list[dict]:" in codeagent_bodies[0]["system"][0]["text"]

    # The offline estimate is kept beside the counter's figures and agrees with the server's usage.
    assert comparison.direct.estimated_tokens == offline_counts(direct_bodies) == comparison.direct.usage_input_tokens
    assert comparison.codeagent.estimated_tokens == offline_counts(codeagent_bodies)
    assert comparison.reduction_pct > 90


def test_live_counter_sends_each_recorded_request_to_the_counting_endpoint() -> None:
    with MessagesServer() as counting:
        client = anthropic.Anthropic(base_url=counting.url, api_key="test-key", max_retries=0)
        record = run_direct(lookup_task(), api_counter(client, "claude-test"))
        paths, sent = counting.request_paths, counting.requests

    assert paths == ["/v1/messages/count_tokens"] * record.turns == ["/v1/messages/count_tokens"] * 2
    assert all(set(body) <= {"model", "system", "messages", "tools"} for body in sent)
    assert [body["model"] for body in sent] == ["claude-test", "claude-test"]
    # the local endpoint counts with the offline estimate, so the two must agree request by request
    assert record.request_tokens == record.estimated_tokens


def test_script_writes_the_table_json_markdown_and_chart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = context_economy.main(["--members", "10", "--rows", "300", "--tools", "10", "--out", str(tmp_path)])
    assert code == 0

    data = json.loads((tmp_path / "context_economy.json").read_text())
    assert [t["kind"] for t in data["tasks"]] == ["expenses", "analysis", "lookup", "mcp"]
    for task in data["tasks"]:
        for approach in ("direct", "codeagent"):
            run = task[approach]
            assert run["input_tokens"] == sum(run["request_tokens"]) and run["turns"] == len(run["request_tokens"])
        expected = 100 * (1 - task["codeagent"]["input_tokens"] / task["direct"]["input_tokens"])
        assert task["reduction_pct"] == pytest.approx(expected, abs=0.01)
    assert data["live"] is False and "4 characters per token" in data["method"]
    assert [d["tools"] for d in data["tool_definitions"]] == [10]

    markdown = (tmp_path / "context_economy.md").read_text()
    assert "| expenses, 10 members |" in markdown and "not been run here" in markdown
    assert "| MCP server, 300 orders in 5 calls |" in markdown  # a real MCP server's results, both ways
    assert (tmp_path / "context_economy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert f"{data['tasks'][0]['direct']['input_tokens']:,}" in printed


def test_live_without_a_key_says_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert context_economy.main(["--live", "--out", str(tmp_path)]) == 2
    assert not list(tmp_path.iterdir())
