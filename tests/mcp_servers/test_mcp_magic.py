"""MCP servers through the real path: %codeagent → real SDK → local Messages API → sandbox → bridge → server."""

from __future__ import annotations

import json
import sys
from typing import Any

from IPython.utils.capture import capture_output

from codeagent import add_mcp_server
from codeagent.testing.messages_server import MessagesServer, code_turn, last_tool_result, text_turn
from tests.mcp_servers.conftest import TIME_SERVER, hostile

TIME_SCRIPT = """\
now = time_mcp.get_current_time("Europe/Berlin")
print(now["timezone"], type(now).__name__, sorted(now))
both = time_mcp.convert_time(source_timezone="UTC", time="12:00", target_timezone="Asia/Tokyo")
print(both["target"]["datetime"][11:16])
try:
    time_mcp.get_current_time("Nowhere/Atlantis")
except ToolError as e:
    print("error:", type(e).__name__, "Invalid timezone" in str(e))
try:
    time_mcp.get_current_time(timezone=5)
except TypeError as e:
    print("rejected:", e)
"""


def echo_output(body: dict[str, Any]) -> Any:
    return text_turn(last_tool_result(body))


def run(shell: Any, line: str) -> tuple[Any, Any]:
    with capture_output() as captured:
        result = shell.run_line_magic("codeagent", line)
    return result, captured


def test_time_server_tools_are_a_namespace_with_typed_stubs(
    shell: Any, model_server: MessagesServer, notebook_servers: Any, registry: Any, fresh_conversation: None
) -> None:
    server = add_mcp_server("time", command=TIME_SERVER[0], args=TIME_SERVER[1:])
    assert server.status == "not started"  # started on first use
    model_server.add_turns(code_turn(TIME_SCRIPT), echo_output)

    result, _ = run(shell, "What time is it in Berlin, and 12:00 UTC in Tokyo?")

    assert result.status == "done", result.error
    lines = result.answer.splitlines()
    assert lines[0] == "Europe/Berlin dict ['datetime', 'day_of_week', 'is_dst', 'timezone']"
    assert lines[1] == "21:00"
    assert lines[2] == "error: McpToolError True"
    assert lines[3] == "rejected: time_mcp.get_current_time(): timezone: 5 is not of type 'string'"
    # The host refused the bad call: the server saw three calls, the trace shows all four.
    assert [c.name for c in result.tool_calls] == ["time_mcp.get_current_time", "time_mcp.convert_time"] + [
        "time_mcp.get_current_time"
    ] * 2
    assert result.tool_calls[3].error.startswith("TypeError: ")
    system = model_server.requests[0]["system"][0]["text"]
    assert "class time_mcp:" in system
    assert "    def get_current_time(timezone: str) -> GetCurrentTimeResult:" in system
    assert "        is_dst: bool" in system
    # Nothing about how the server runs reaches the model or the sandbox.
    assert "mcp_server_time" not in json.dumps(model_server.requests)
    assert server.status == "running" and len(server.connection.tools) == 2


def test_tools_table_lists_every_source(shell: Any, notebook_servers: Any, registry: Any) -> None:
    from codeagent import tool

    @tool
    def lookup(key: str) -> str:
        """Look a key up in the notebook's table."""
        return key

    add_mcp_server("time", command=TIME_SERVER[0], args=TIME_SERVER[1:])
    add_mcp_server("broken", **hostile("crash-start"))
    with capture_output() as captured:
        shell.run_line_magic("codeagent", "--tools")
    table = captured.stdout
    assert table.splitlines()[0].split() == ["source", "status", "tools"]
    assert "@tool" in table and "time (MCP time_mcp)  running  2" in table
    assert "broken (MCP broken)" in table and "failed" in table
    assert "time_mcp.get_current_time  Get current time in a specific timezone" in table
    assert "lookup" in table and "Look a key up in the notebook's table." in table
    assert "cannot open the database" in table


def test_a_failing_server_leaves_the_others_working(
    shell: Any, model_server: MessagesServer, notebook_servers: Any, registry: Any, fresh_conversation: None
) -> None:
    add_mcp_server("broken", **hostile("crash-start"))
    add_mcp_server("counting", **hostile("counting"))
    model_server.add_turns(code_turn("print(counting.echo(n=4))"), echo_output)
    result, captured = run(shell, "echo 4")
    assert result.status == "done", result.error
    assert result.answer == "{'ok': True, 'args': {'n': 4}}"
    assert "codeagent: MCP server 'broken' " in captured.stderr and "cannot open the database" in captured.stderr
    assert "broken" not in model_server.requests[0]["system"][0]["text"]


def test_a_huge_result_stays_in_the_sandbox(
    shell: Any, model_server: MessagesServer, notebook_servers: Any, registry: Any, fresh_conversation: None
) -> None:
    add_mcp_server("big", **hostile("huge"))
    model_server.add_turns(code_turn("r = big.echo(n=1)\nprint(len(r), r.count('x'))"), echo_output)
    result, _ = run(shell, "how big?")
    assert result.answer == "3000000 3000000"
    assert result.tool_calls[0].result_chars > 3_000_000
    assert max(len(json.dumps(body)) for body in model_server.requests) < 20_000


def test_an_image_is_shown_in_the_notebook_and_the_model_gets_a_placeholder(
    shell: Any, model_server: MessagesServer, notebook_servers: Any, registry: Any, fresh_conversation: None
) -> None:
    add_mcp_server("pics", **hostile("image"))
    model_server.add_turns(code_turn("print(pics.echo(n=1))"), echo_output)
    result, captured = run(shell, "draw")
    # the script printed the placeholder it got, so #12 tags the line as the script's (it cannot pose as the host's)
    assert result.answer.splitlines()[0].endswith("[image 1: image/png, 70 bytes, shown in the notebook]")
    assert any("image/png" in out.data for out in captured.outputs)
    assert "iVBOR" not in json.dumps(model_server.requests)


def test_the_sandbox_cannot_name_a_server_it_was_not_given(
    shell: Any, model_server: MessagesServer, notebook_servers: Any, registry: Any, fresh_conversation: None
) -> None:
    """Only (server, tool, arguments) cross the bridge, and only for tools the host listed."""
    add_mcp_server("counting", **hostile("counting"))
    script = (
        "from codeagent.sandbox.guest import runtime\n"
        "for name in ['counting.nope', 'other.echo', 'counting.echo.__class__']:\n"
        "    try:\n"
        "        runtime._client.call(name, {})\n"
        "    except NameError as e:\n"
        "        print(e)\n"
    )
    model_server.add_turns(code_turn(script), echo_output)
    result, _ = run(shell, "probe")
    assert result.answer.splitlines() == [
        "no tool named 'counting.nope' is registered",
        "no tool named 'other.echo' is registered",
        "no tool named 'counting.echo.__class__' is registered",
    ]
    assert sys.executable not in json.dumps(model_server.requests)
