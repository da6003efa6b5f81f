"""A hostile MCP server: what it names, describes and declares cannot inject code, shadow names or hang us."""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path
from typing import Any

import pytest

from codeagent.agent.prompt import system_prompt
from codeagent.tools.mcp import McpServerError, add_mcp_server
from codeagent.tools.registry import ToolArgumentError, ToolRegistry
from codeagent.tools.toolbox import ToolBox
from tests.mcp_servers.conftest import hostile


def toolbox(servers: Any, registry: ToolRegistry | None = None) -> tuple[ToolBox, list[str]]:
    box = ToolBox(registry or ToolRegistry(), servers)
    return box, box.refresh()


def test_injected_names_descriptions_and_schemas_stay_inert(servers: Any) -> None:
    add_mcp_server("hostile", **hostile("inject"), servers=servers)
    box, problems = toolbox(servers)
    names = sorted(t.name for t in box)
    # Every name is a plain identifier inside the server's namespace; dunders and shadowing are renamed.
    assert all(n.startswith("hostile.") and n.split(".", 1)[1].isidentifier() for n in names)
    attrs = {n.split(".", 1)[1] for n in names}
    assert "t__class__" in attrs and "__class__" not in attrs
    assert {"get_item", "get_item_2", "set_result", "print", "evil____import_os__"} <= attrs
    assert any("bad_schema" in p and "invalid inputSchema" in p for p in problems)

    # The prompt's stubs are valid Python whose only statements are class and def bodies with docstrings.
    stubs = system_prompt(list(box)).split("```python\n", 1)[1].split("\n```", 1)[0]
    tree = ast.parse(stubs)
    statements = [type(node).__name__ for node in ast.walk(tree) if isinstance(node, ast.stmt)]
    assert set(statements) <= {"ClassDef", "FunctionDef", "Expr", "AnnAssign", "Assign", "Pass"}
    assert not [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom | ast.Call)
        and not (isinstance(n, ast.Call) and getattr(n.func, "id", "") == "TypedDict")
    ]
    (cls,) = tree.body
    assert isinstance(cls, ast.ClassDef) and cls.name == "hostile"
    evil = next(t for t in box if t.attr.startswith("evil"))
    # The parameters the server declared, renamed to identifiers, and mapped back for the server.
    assert [p.name for p in evil.params][:2] == ["x____pass_import_os_def_f_", "from_"]
    assert evil.param_keys["from_"] == "from"
    # Annotations are stored as the server's hints and change nothing.
    assert evil.annotations["read_only_hint"] is True and evil.approve is False


def test_the_sandbox_builds_stubs_from_json_only(servers: Any, tmp_path: Path) -> None:
    """The specs sent to the sandbox carry names and text as JSON data, never as source to execute."""
    from codeagent.sandbox.guest import runtime

    add_mcp_server("hostile", **hostile("inject"), servers=servers)
    box, _ = toolbox(servers)
    namespace: dict[str, Any] = {}
    runtime.install(str(tmp_path / "no-bridge.sock"), "token", [t.spec() for t in box], namespace)
    assert {"set_result", "ToolError", "search_tools", "describe_tool", "hostile"} <= set(namespace)
    assert not [name for name in namespace if name.startswith(("evil", "t__", "get_item", "echo", "print"))]
    assert callable(namespace["set_result"]) and namespace["set_result"].__module__ == "tools"
    ns = namespace["hostile"]
    assert "set_result" in dir(ns) and "print" in dir(ns)
    with pytest.raises(AttributeError):
        ns.echo = None
    assert not Path("/tmp/pwned").exists()


def test_arguments_are_checked_on_the_host_before_the_server_sees_them(servers: Any, tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    add_mcp_server("counting", **hostile("counting", str(log)), servers=servers)
    box, _ = toolbox(servers)
    echo = box.get("counting.echo")
    with pytest.raises(ToolArgumentError, match="-1 is less than the minimum of 0"):
        echo.validate({"n": -1})
    with pytest.raises(ToolArgumentError, match="'n' is a required property"):
        echo.validate({"tag": "x"})
    with pytest.raises(ToolArgumentError, match="'five' is not of type 'integer'"):
        echo.validate({"n": "five"})
    assert not log.exists()
    assert echo.func(**echo.validate({"n": 2, "tag": None})) == {"ok": True, "args": {"n": 2}}
    assert [json.loads(line)["arguments"] for line in log.read_text().splitlines()] == [{"n": 2}]


def test_is_error_raises_with_the_servers_message(servers: Any) -> None:
    from codeagent.tools.mcp.results import McpToolError

    add_mcp_server("counting", **hostile("counting"), servers=servers)
    box, _ = toolbox(servers)
    echo = box.get("counting.echo")
    with pytest.raises(McpToolError, match="unlucky number"):
        echo.func(n=13)


def test_a_server_that_crashes_at_start_names_itself_and_its_stderr(servers: Any) -> None:
    add_mcp_server("db", **hostile("crash-start"), servers=servers)
    add_mcp_server("fine", **hostile("counting"), servers=servers)
    box, problems = toolbox(servers)
    (line,) = problems
    assert line.startswith("MCP server 'db' ") and "\n" not in line
    assert "cannot open the database /nonexistent/db.sqlite" in line
    assert [t.name for t in box] == ["fine.echo"]  # the other source keeps working


def test_a_server_that_hangs_at_start_times_out_in_one_line(servers: Any) -> None:
    add_mcp_server("stuck", **hostile("hang-start"), start_timeout=2, servers=servers)
    started = time.monotonic()
    with pytest.raises(McpServerError, match=r"^MCP server 'stuck' did not start within 2 s"):
        servers.get("stuck").start()
    assert time.monotonic() - started < 15
    assert servers.get("stuck").status == "failed"


def test_a_call_that_hangs_times_out(servers: Any) -> None:
    add_mcp_server("slow", **hostile("hang-call"), timeout=1.5, servers=servers)
    box, _ = toolbox(servers)
    with pytest.raises(McpServerError, match=r"MCP server 'slow': echo did not answer within 1.5 s"):
        box.get("slow.echo").func(n=1)


def test_a_server_that_dies_is_restarted_once(servers: Any) -> None:
    add_mcp_server("fragile", **hostile("crash-call"), servers=servers)
    box, _ = toolbox(servers)
    echo = box.get("fragile.echo")
    with pytest.raises(McpServerError, match="stopped during the call to echo; it was restarted"):
        echo.func(n=1)
    server = servers.get("fragile")
    assert server.status == "running" and server.connection.restarts == 1
    with pytest.raises(McpServerError, match=r"stopped during a call to echo again after a restart.*crashing"):
        echo.func(n=1)
    assert server.status == "failed"


def test_huge_results_arrive_whole(servers: Any) -> None:
    add_mcp_server("big", **hostile("huge"), servers=servers)
    box, _ = toolbox(servers)
    assert len(box.get("big.echo").func(n=1)) == 3_000_000


def test_images_become_placeholders(servers: Any) -> None:
    add_mcp_server("pics", **hostile("image"), servers=servers)
    box, _ = toolbox(servers)
    value = box.get("pics.echo").func(n=1)
    assert value.startswith("[image 1: image/png, 70 bytes, ") and value.endswith("\na dot")
