"""A Streamable HTTP MCP server on 127.0.0.1, built with the mcp SDK's MCPServer and run by uvicorn.

    python http_server.py PORT_FILE [--token TOKEN] [--hang]

Binds port 0 and writes the port it got to PORT_FILE. With ``--token`` every request must carry
``Authorization: Bearer TOKEN`` (401 otherwise); ``--hang`` accepts connections and never answers.
"""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path
from typing import Any, TypedDict

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError


class Sum(TypedDict):
    total: int
    terms: int


def build() -> MCPServer:
    server = MCPServer("http-demo")

    @server.tool()
    def add_numbers(a: int, b: int) -> Sum:
        """Add two integers."""
        return {"total": a + b, "terms": 2}

    @server.tool()
    def big_table(rows: int) -> list[dict[str, Any]]:
        """A table of `rows` rows (to measure results that stay in the sandbox)."""
        return [
            {"id": i, "name": f"item {i}", "price": round(i * 1.25, 2), "in_stock": i % 3 != 0} for i in range(rows)
        ]

    @server.tool()
    def fail(message: str) -> str:
        """Always fails, with `message`."""
        raise ToolError(message)

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port_file")
    parser.add_argument("--token")
    parser.add_argument("--hang", action="store_true")
    args = parser.parse_args()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if args.hang:
        sock.listen()
        Path(args.port_file).write_text(str(port))
        held = []
        while True:  # accept, read nothing, answer nothing
            held.append(sock.accept()[0])
            time.sleep(0.01)

    import uvicorn

    app: Any = build().streamable_http_app(host="127.0.0.1")
    if args.token:
        inner, expected = app, f"Bearer {args.token}".encode()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != expected:
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
            await inner(scope, receive, send)

    config = uvicorn.Config(app, log_level="warning")
    server = uvicorn.Server(config)
    Path(args.port_file).write_text(str(port))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
