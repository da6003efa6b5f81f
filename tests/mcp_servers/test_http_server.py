"""Streamable HTTP MCP servers (``add_mcp_server(name, url=..., headers=...)``): a real SDK server under uvicorn on
127.0.0.1, reached by the real SDK client; a wrong token, a refused port and a server that never answers each end
in one line naming the server, within the start timeout."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from IPython.utils.capture import capture_output

from codeagent import add_mcp_server
from codeagent.testing.messages_server import MessagesServer, code_turn, last_tool_result, text_turn
from codeagent.tools.mcp.connection import McpServerError, ServerSpec
from codeagent.tools.mcp.results import McpToolError
from tests.mcp_servers.conftest import http_server

TOKEN = "s3cret-token-for-the-test"


def test_tools_calls_and_errors_over_streamable_http(servers: Any, tmp_path: Path) -> None:
    with http_server(tmp_path, "--token", TOKEN) as url:
        server = servers.add(ServerSpec("docs", url=url, headers={"Authorization": f"Bearer {TOKEN}"}), start=True)
        assert server.status == "running"
        tools = {t.attr: t for t in server.tools()}
        assert sorted(tools) == ["add_numbers", "big_table", "fail"]
        assert "def add_numbers(a: int, b: int) -> AddNumbersResult:" in tools["add_numbers"].stub
        assert tools["add_numbers"].invoke("add_numbers", {"a": 2, "b": 40}) == {"total": 42, "terms": 2}
        rows = tools["big_table"].invoke("big_table", {"rows": 3})
        assert rows == {
            "result": [{"id": i, "name": f"item {i}", "price": i * 1.25, "in_stock": i % 3 != 0} for i in range(3)]
        }
        with pytest.raises(McpToolError, match="no such luck"):
            tools["fail"].invoke("fail", {"message": "no such luck"})
        assert TOKEN not in repr(server) and TOKEN not in repr(server.connection.spec)


def test_a_wrong_token_names_the_server_and_the_http_status(servers: Any, tmp_path: Path) -> None:
    with http_server(tmp_path, "--token", TOKEN) as url:
        spec = ServerSpec("docs", url=url + "?key=leaky", headers={"Authorization": "Bearer wrong"}, start_timeout=30)
        with pytest.raises(McpServerError) as raised:
            servers.add(spec, start=True)
    message = str(raised.value)
    assert message.startswith(f"MCP server 'docs' at {url} failed to start") and "HTTP 401" in message
    assert "leaky" not in message and "wrong" not in message and "\n" not in message


def test_a_refused_port_fails_at_once(servers: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(McpServerError, match=rf"^MCP server 'gone' at http://127.0.0.1:{port}/mcp failed to start: "):
        servers.add(ServerSpec("gone", url=f"http://127.0.0.1:{port}/mcp"), start=True)
    assert servers.get("gone").status == "failed"


def test_a_server_that_never_answers_times_out_in_one_line(servers: Any, tmp_path: Path) -> None:
    with http_server(tmp_path, "--hang") as url, pytest.raises(McpServerError) as raised:
        servers.add(ServerSpec("mute", url=url, start_timeout=3, call_timeout=2), start=True)
    message = str(raised.value)
    assert message.startswith(f"MCP server 'mute' at {url} ") and "\n" not in message
    assert "did not start within 3 s" in message or "timed out" in message


def test_an_http_server_through_the_magic(
    shell: Any,
    model_server: MessagesServer,
    notebook_servers: Any,
    registry: Any,
    fresh_conversation: None,
    tmp_path: Path,
) -> None:
    with http_server(tmp_path, "--token", TOKEN) as url:
        add_mcp_server("docs", url=url, headers={"Authorization": f"Bearer {TOKEN}"})
        script = (
            "r = docs.add_numbers(a=1, b=2)\nprint(r['total'], type(r).__name__)\n"
            "print(len(docs.big_table(rows=500)['result']))"
        )
        model_server.add_turns(code_turn(script), lambda body: text_turn(last_tool_result(body)))
        with capture_output():
            result = shell.run_line_magic("codeagent", "add 1 and 2")
    assert result.status == "done", result.error
    assert result.answer.splitlines() == ["3 dict", "500"]
    assert [c.name for c in result.tool_calls] == ["docs.add_numbers", "docs.big_table"]
    sent = json.dumps(model_server.requests)
    assert TOKEN not in sent and url not in sent and "item 499" not in sent
