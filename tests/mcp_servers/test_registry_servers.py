"""@modelcontextprotocol/server-everything (npm, run by node): every content type through our stubs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from codeagent.tools.mcp import add_mcp_server
from codeagent.tools.mcp.results import McpToolError
from codeagent.tools.registry import ToolRegistry
from codeagent.tools.toolbox import ToolBox

EVERYTHING = Path(__file__).resolve().parents[2] / ".ci" / "node" / "node_modules" / ".bin" / "mcp-server-everything"


@pytest.fixture
def everything(servers: Any, tmp_path: Path) -> ToolBox:
    if not EVERYTHING.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{EVERYTHING} is missing: .ci/run installs it with npm")
        pytest.skip("npm install --prefix .ci/node @modelcontextprotocol/server-everything (as .ci/run does)")
    add_mcp_server("everything", command=str(EVERYTHING), args=["stdio"], env={"HOME": str(tmp_path)}, servers=servers)
    box = ToolBox(ToolRegistry(), servers)
    assert box.refresh() == []
    return box


def test_everything_server_tools_and_results(everything: ToolBox) -> None:
    names = {t.name for t in everything}
    assert {"everything.echo", "everything.get_sum", "everything.get_tiny_image"} <= names
    echo = everything.get("everything.echo")
    assert echo.remote_name == "echo" and echo.func(**echo.validate({"message": "hi"})) == "Echo: hi"
    get_sum = everything.get("everything.get_sum")
    assert get_sum.remote_name == "get-sum"  # a dash in the server's name: called by its own name
    assert "The sum of 2 and 3 is 5" in get_sum.func(a=2, b=3)
    image = everything.get("everything.get_tiny_image").func()
    assert "[image 1: image/png, " in image and "iVBOR" not in image
    structured = everything.get("everything.get_structured_content")
    assert "GetStructuredContentResult" in structured.stub and "temperature" in structured.stub
    value = structured.func(**structured.validate({"location": "Chicago"}))
    assert set(value) == {"temperature", "conditions", "humidity"}
    with pytest.raises(Exception, match="location"):
        structured.validate({"location": "Atlantis"})  # outside the enum: refused on the host


def test_everything_server_rejects_what_our_validation_would_have(everything: ToolBox) -> None:
    """Sent unchecked (bypassing the host's validation), bad arguments come back as is_error: an exception."""
    get_sum = everything.get("everything.get_sum")
    with pytest.raises(McpToolError):
        get_sum.func(a="two", b=3)
    with pytest.raises(ValueError, match="get_sum\\(\\): a: 'two' is not of type 'number'"):
        get_sum.validate({"a": "two", "b": 3})
