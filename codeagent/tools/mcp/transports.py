"""How the notebook kernel reaches an MCP server: its spec, and the SDK transports for stdio and Streamable HTTP.

Stdio servers run under :mod:`codeagent.tools.mcp.leash`, so they die with the kernel. The read stream is
watched, so a server that dies or hangs up is noticed at once rather than at the next call's timeout.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

LEASH = str(Path(__file__).with_name("leash.py"))


@dataclass
class ServerSpec:
    """How to reach one server. Lives only in the notebook kernel: never sent to the sandbox."""

    name: str
    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    start_timeout: float = 30.0
    call_timeout: float = 60.0

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"

    def __repr__(self) -> str:  # env and headers may hold secrets
        target = where(self.url) if self.url else " ".join([self.command or "", *self.args])
        return f"ServerSpec({self.name!r}, {self.transport}: {target[:80]!r})"


def stdio_transport(spec: ServerSpec, log_dir: str, errlog: TextIO) -> Any:
    from mcp import StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-I", "-S", LEASH, "--remove-when-orphaned", log_dir, "--", spec.command or "", *spec.args],
        env=dict(spec.env),
        cwd=spec.cwd,
        encoding_error_handler="replace",
    )
    return stdio_client(params, errlog=errlog)


class HttpStatus:
    """The last HTTP error status a Streamable HTTP server answered (the SDK reports only "an error response")."""

    def __init__(self) -> None:
        self.last_error = ""

    async def __call__(self, response: Any) -> None:
        if response.status_code >= 400:
            self.last_error = f"HTTP {response.status_code} {getattr(response, 'reason_phrase', '')}".strip()


def where(url: str) -> str:
    """The URL without credentials, query or fragment (fit for an error line)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"[:120]


def http_transport(url: str, headers: dict[str, str], status: HttpStatus) -> Any:
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    http = create_mcp_http_client(headers=dict(headers))
    http.event_hooks["response"].append(status)
    return streamable_http_client(url, http_client=http)


class WatchedStream:
    """The transport's read stream, noting when the server side ends (the server died or hung up)."""

    def __init__(self, inner: Any, on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end

    async def receive(self) -> Any:
        import anyio

        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._on_end()
            raise

    def __aiter__(self) -> WatchedStream:
        return self

    async def __anext__(self) -> Any:
        import anyio

        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> WatchedStream:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@asynccontextmanager
async def watched(transport: Any, on_end: Callable[[], None]) -> AsyncIterator[Any]:
    async with transport as (read, write):
        yield WatchedStream(read, on_end), write
