"""What a call reports about its data: how much the tools returned versus how much reached the model."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from IPython.utils.capture import capture_output

from codeagent.agent.loop import Agent, AgentSettings
from codeagent.kernel_ext.magic import final_view
from codeagent.sandbox.host.manager import SandboxKernel
from codeagent.testing.messages_server import MessagesServer, Turn, code_turn, text_turn
from codeagent.tools import tool
from codeagent.tools.registry import ToolRegistry, make_tool
from codeagent.widgets.render import render_html, render_text

SCRIPT = """\
for region in ("north", "south"):
    rows = list_orders(region)
    print(region, len(rows), round(sum(r["amount"] for r in rows), 2))
"""


def make_orders(region: str) -> list[dict[str, Any]]:
    """300 rows; the notes hold non-ASCII text, so characters and bytes differ."""
    return [{"id": i, "region": region, "amount": round(10 + i * 1.5, 2), "note": "é" * (i % 4)} for i in range(300)]


def expected_output() -> str:
    return "".join(f"{r} 300 {round(sum(o['amount'] for o in make_orders(r)), 2)}\n" for r in ("north", "south"))


def shown(chars: int) -> str:
    """How the view writes a size in the ranges this test produces."""
    return f"{chars / 1000:.1f}k chars" if chars >= 1000 else f"{chars} chars"


def usage_row(html: str, label: str) -> str:
    found = re.search(rf"<td[^>]*>{re.escape(label)}</td><td[^>]*>([^<]*)</td>", html)
    assert found, f"no {label!r} row in the view"
    return found.group(1)


def tool_results_sent(body: dict[str, Any]) -> list[str]:
    """The content of every tool_result block in one request body."""
    return [
        block["content"]
        for message in body["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]


def answer_turn(body: dict[str, Any]) -> Turn:
    return text_turn("Totals: " + tool_results_sent(body)[-1].replace("\n", "; "))


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxKernel]:
    with SandboxKernel() as kernel:
        yield kernel


def test_result_counts_what_tools_returned_and_what_the_model_was_sent(sandbox: SandboxKernel) -> None:
    returned: list[str] = []

    def list_orders(region: str) -> list[dict]:
        """Orders of one region: [{"id", "region", "amount", "note"}]."""
        rows = make_orders(region)
        returned.append(json.dumps(rows, ensure_ascii=False))
        return rows

    registry = ToolRegistry()
    registry.add(make_tool(list_orders))
    with MessagesServer([code_turn(SCRIPT), answer_turn]) as server:
        client = anthropic.Anthropic(base_url=server.url, api_key="test-key", max_retries=0)
        result = Agent(client, sandbox, registry, AgentSettings(model="claude-test")).run("Order totals by region?")
        bodies = server.message_requests
        assert not server.errors

    assert result.status == "done", result.error
    assert len(returned) == 2 and len(bodies) == 2
    data_chars = sum(len(text) for text in returned)
    assert result.tool_result_chars == data_chars
    sent = tool_results_sent(bodies[-1])
    assert sent == [expected_output()]
    assert result.model_saw_chars == len(expected_output()) == sum(len(text) for text in sent)
    assert data_chars > 50 * result.model_saw_chars  # the rows stayed in the sandbox

    html = render_html(result)
    assert usage_row(html, "data returned by tools") == shown(data_chars)
    assert usage_row(html, "script output sent to the model") == shown(result.model_saw_chars)
    text = render_text(result)
    assert f"tools returned {shown(data_chars)}, the model saw {shown(result.model_saw_chars)}" in text


def test_final_view_of_the_magic_shows_both_figures(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None
) -> None:
    @tool
    def list_orders(region: str) -> list[dict]:
        """Orders of one region: [{"id", "region", "amount", "note"}]."""
        return make_orders(region)

    model_server.add_turns(code_turn(SCRIPT), answer_turn)
    with capture_output():
        result = shell.run_line_magic("codeagent", "Order totals by region?")

    assert result.status == "done", result.error
    data_chars = len(json.dumps(make_orders("north"), ensure_ascii=False)) * 2
    assert result.tool_result_chars == data_chars
    assert result.model_saw_chars == len(expected_output())
    html = final_view(result)["text/html"]
    assert usage_row(html, "data returned by tools") == shown(data_chars)
    assert usage_row(html, "script output sent to the model") == shown(len(expected_output()))
