"""MCP fixtures: a private set of servers per test (all stopped afterwards), the hostile server's command."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the MCP tests need the mcp extra: pip install -e '.[mcp,test]'")

HOSTILE = str(Path(__file__).with_name("hostile_server.py"))
TIME_SERVER = [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]


@pytest.fixture
def servers() -> Iterator[Any]:
    from codeagent.tools.mcp.servers import McpServers

    own = McpServers()
    yield own
    own.close()


@pytest.fixture
def notebook_servers() -> Iterator[Any]:
    """The notebook kernel's own servers (what add_mcp_server and %codeagent use), emptied afterwards."""
    from codeagent.tools.mcp.servers import default_servers

    for server in default_servers:
        default_servers.remove(server.name)
    yield default_servers
    for server in default_servers:
        default_servers.remove(server.name)


def hostile(mode: str, *extra: str) -> dict[str, Any]:
    return {"command": sys.executable, "args": [HOSTILE, mode, *extra]}
