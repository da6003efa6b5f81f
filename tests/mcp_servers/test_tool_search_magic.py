"""Past the token budget the prompt lists sources, and the model finds tools with search_tools."""

from __future__ import annotations

from typing import Any

from IPython.utils.capture import capture_output

from codeagent import add_mcp_server
from codeagent.testing.messages_server import MessagesServer, code_turn, last_tool_result, text_turn
from codeagent.tools import make_tool
from tests.mcp_servers.conftest import TIME_SERVER

SCRIPT = """\
found = search_tools("what time is it now in some timezone", k=3)
print(found.splitlines()[0])
print("def get_current_time(timezone: str) -> GetCurrentTimeResult:" in found)
print(time_mcp.get_current_time("UTC")["timezone"])
print(describe_tool("ledger_entry_17").splitlines()[0])
try:
    describe_tool("ledger_entry_999")
except ValueError as e:
    print(str(e)[:71])
try:
    time_mcp.current_time_in_zone("UTC")
except AttributeError as e:
    print(str(e).split(", ")[0])
"""


def ledger_tools(n: int) -> list[Any]:
    tools = []
    for i in range(n):

        def f(account: str, month: str, limit: int = 100) -> list[dict]:
            return []

        f.__doc__ = f"Ledger entries of kind {i} for an account in a month (YYYY-MM), newest first."
        tools.append(make_tool(f, name=f"ledger_entry_{i}"))
    return tools


def test_search_mode_prompt_and_search_tools_in_a_script(
    shell: Any, model_server: MessagesServer, notebook_servers: Any, registry: Any, fresh_conversation: None
) -> None:
    for t in ledger_tools(60):
        registry.add(t)
    add_mcp_server("time", command=TIME_SERVER[0], args=TIME_SERVER[1:])
    model_server.add_turns(code_turn(SCRIPT), lambda body: text_turn(last_tool_result(body)))
    with capture_output():
        result = shell.run_line_magic("codeagent", "what time is it?")
    assert result.status == "done", result.error
    assert result.answer.splitlines() == [
        "# 3 tool(s) for 'what time is it now in some timezone', best first; all are callable as shown.",
        "True",
        "UTC",
        "def ledger_entry_17(account: str, month: str, limit: int = 100) -> list[dict]:",
        "describe_tool(): no tool named 'ledger_entry_999'. Did you mean: ledger",
        "MCP server time_mcp has no tool 'current_time_in_zone'; the closest: time_mcp.get_current_time",
    ]
    system = model_server.requests[0]["system"][0]["text"]
    assert "62 tools are already defined" in system and "search_tools(query, k=5)" in system
    assert "- functions: 60 tools" in system
    assert "- `time_mcp` (an MCP server; call as `time_mcp.<name>(...)`): 2 tools" in system
    assert "def ledger_entry_" not in system and "def get_current_time" not in system
    assert len(system) < 1_500 * 4
