"""``%codeagent --cell`` with a real MCP server (mcp-server-time): the cell calls the server from the notebook
kernel through ``notebook_tools("time_mcp")`` and prints what the sandbox printed, without a model call."""

from __future__ import annotations

from typing import Any

from IPython.utils.capture import capture_output

from codeagent import add_mcp_server
from codeagent.testing.messages_server import MessagesServer, code_turn, text_turn
from tests.mcp_servers.conftest import TIME_SERVER
from tests.mcp_servers.test_mcp_magic import TIME_SCRIPT


def test_cell_calls_the_mcp_server_from_the_notebook(
    shell: Any, model_server: MessagesServer, notebook_servers: Any, registry: Any, fresh_conversation: None
) -> None:
    from codeagent.tools.local import LocalNamespace

    add_mcp_server("time", command=TIME_SERVER[0], args=TIME_SERVER[1:])
    model_server.add_turns(code_turn(TIME_SCRIPT), text_turn("ok"))
    shell.rl_next_input = None
    with capture_output():
        result = shell.run_line_magic("codeagent", "--cell What time is it in Berlin, and 12:00 UTC in Tokyo?")
    assert result.status == "done", result.error
    printed = result.scripts[0].output
    assert printed.splitlines()[1:3] == ["21:00", "error: McpToolError True"]
    source = shell.rl_next_input
    assert "time_mcp = notebook_tools('time_mcp')" in source
    assert "MCP tools are called from this kernel on the server(s) time: time_mcp.get_current_time" in source
    assert "from codeagent.tools import notebook_tools, ToolError" in source  # raised as the stubs raised it

    asked = len(model_server.requests)
    try:
        with capture_output() as ran:
            shell.run_cell(source, store_history=False).raise_error()
        assert ran.stdout == printed  # the host-side MCP calls answer as they did for the sandbox
        assert len(model_server.requests) == asked
        assert isinstance(shell.user_ns["time_mcp"], LocalNamespace)

        # a notebook variable of that name is left alone: the cell binds the namespace under an alias
        shell.user_ns["time_mcp"] = "mine"
        other = result.cell_source(namespace=shell.user_ns)
        assert "time_mcp_tools = notebook_tools('time_mcp')" in other
        assert 'now = time_mcp_tools.get_current_time("Europe/Berlin")' in other
        with capture_output() as again:
            shell.run_cell(other, store_history=False).raise_error()
        assert again.stdout == printed and shell.user_ns["time_mcp"] == "mine"
    finally:
        for name in ("time_mcp", "time_mcp_tools", "now", "both"):
            shell.user_ns.pop(name, None)
