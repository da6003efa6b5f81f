"""MCP fixtures: a private set of servers per test (all stopped afterwards), the hostile server's command."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
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


HTTP_SERVER = str(Path(__file__).with_name("http_server.py"))


@contextlib.contextmanager
def http_server(tmp_path: Path, *args: str) -> Iterator[str]:
    """A real Streamable HTTP MCP server (http_server.py) in a subprocess on 127.0.0.1; yields its URL."""
    port_file = tmp_path / f"port-{len(list(tmp_path.iterdir()))}"
    process = subprocess.Popen([sys.executable, HTTP_SERVER, str(port_file), *args], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP MCP server did not start: {process.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.05)
        port = int(port_file.read_text())
        while True:  # the port file is written just before uvicorn listens on the socket
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()  # type: ignore[union-attr]
