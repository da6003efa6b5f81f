"""MCP sessions, owned by one background thread running an event loop; blocking calls for the notebook side.

Each server's ``mcp.Client`` is entered and left by one long-lived task on that loop (the SDK's task groups
need that); calls from the notebook's thread are submitted through an anyio blocking portal and waited on with
a timeout. Stdio servers run under :mod:`codeagent.tools.mcp.leash`, so they die with the kernel.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REQUEST_TIMEOUT = -32001  # JSON-RPC error code of a request that timed out (mcp_types.REQUEST_TIMEOUT)
LEASH = str(Path(__file__).with_name("leash.py"))
STDERR_TAIL_CHARS = 400
MAX_TOOLS = 20_000
MAX_PAGES = 200
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


class McpServerError(RuntimeError):
    """An MCP server could not be started or reached; the message is one line naming the server."""


class McpUnavailable(ImportError):
    """The ``mcp`` package is not installed."""


def require_mcp() -> None:
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise McpUnavailable(
            "MCP servers need the mcp package: pip install 'codeagent[mcp]' (or pip install mcp)"
        ) from None


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
        where = self.url if self.url else " ".join([self.command or "", *self.args])
        return f"ServerSpec({self.name!r}, {self.transport}: {where[:80]!r})"


class LoopThread:
    """A daemon thread running one event loop, shared by every MCP session of the kernel."""

    def __init__(self) -> None:
        self._portal: Any = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def portal(self) -> Any:
        with self._lock:
            if self._portal is None:
                import anyio
                from anyio.from_thread import BlockingPortal

                ready = threading.Event()
                box: dict[str, Any] = {}

                async def serve() -> None:
                    async with BlockingPortal() as portal:
                        box["portal"] = portal
                        ready.set()
                        await portal.sleep_until_stopped()

                def run() -> None:
                    try:
                        anyio.run(serve)
                    finally:
                        ready.set()

                self._thread = threading.Thread(target=run, name="codeagent-mcp", daemon=True)
                self._thread.start()
                ready.wait()
                self._portal = box["portal"]
            return self._portal

    def close(self) -> None:
        with self._lock:
            portal, self._portal = self._portal, None
        if portal is not None:
            with contextlib.suppress(Exception):
                portal.call(portal.stop, True)
            if self._thread is not None:
                self._thread.join(timeout=5)


def _one_line(text: str, limit: int = STDERR_TAIL_CHARS) -> str:
    lines = [_ANSI.sub("", line).strip() for line in text.splitlines()]
    joined = " | ".join(line for line in lines if line)
    return joined if len(joined) <= limit else "…" + joined[-limit:]


class _WatchedStream:
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

    def __aiter__(self) -> _WatchedStream:
        return self

    async def __anext__(self) -> Any:
        import anyio

        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _WatchedStream:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@asynccontextmanager
async def _watched(transport: Any, on_end: Callable[[], None]) -> AsyncIterator[Any]:
    async with transport as (read, write):
        yield _WatchedStream(read, on_end), write


class ServerConnection:
    """One MCP server: start, list tools, call, stop; restarted once when it dies."""

    def __init__(self, spec: ServerSpec, loop: LoopThread) -> None:
        self.spec = spec
        self.loop = loop
        self.status = "not started"  # running | failed | stopped
        self.error = ""
        self.tools: list[Any] = []  # mcp_types.Tool, as listed
        self.restarts = 0
        self._client: Any = None
        self._stop: Any = None
        self._owner: concurrent.futures.Future[Any] | None = None
        self._connected = False
        self._fresh_restart = False  # restarted and not yet answered a call: a second death is final
        self._log_dir: str | None = None
        self._lock = threading.RLock()

    # -- diagnostics ---------------------------------------------------------------------------------

    @property
    def log_path(self) -> str | None:
        return os.path.join(self._log_dir, "stderr.log") if self._log_dir else None

    def stderr_tail(self) -> str:
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 4 * STDERR_TAIL_CHARS))
                return _one_line(f.read().decode(errors="replace"))
        except OSError:
            return ""

    def _fail_line(self, what: str) -> str:
        tail = self.stderr_tail()
        return f"MCP server {self.spec.name!r} {what}" + (f"; stderr: {tail}" if tail else "")

    @property
    def alive(self) -> bool:
        return self.status == "running" and self._connected

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect and list the tools; raises McpServerError (one line) on failure or timeout."""
        with self._lock:
            if self.alive:
                return
            self._teardown()
            portal = self.loop.portal()
            if self._log_dir is None:
                self._log_dir = tempfile.mkdtemp(prefix="codeagent-mcp-")
            ready: concurrent.futures.Future[Any] = concurrent.futures.Future()
            self._owner = portal.start_task_soon(self._own, ready)
            try:
                self.tools = ready.result(timeout=self.spec.start_timeout)
            except concurrent.futures.TimeoutError:
                self._abandon(f"did not start within {self.spec.start_timeout:g} s")
            except McpServerError as e:
                self._abandon(str(e))
            except BaseException as e:
                if isinstance(e, KeyboardInterrupt):
                    self._teardown()
                    self.status = "not started"
                    raise
                self._abandon(f"failed to start: {_describe(e)}")
            self.status = "running"
            self.error = ""

    def _abandon(self, what: str) -> None:
        self._teardown()
        self.status = "failed"
        self.error = self._fail_line(what)
        raise McpServerError(self.error) from None

    async def _own(self, ready: concurrent.futures.Future[Any]) -> None:
        import anyio

        self._stop = anyio.Event()
        try:
            async with AsyncExitStack() as stack:
                client = await stack.enter_async_context(self._client_for(stack))
                tools = await _list_all(client)
                self._client = client
                self._connected = True
                if not ready.done():
                    ready.set_result(tools)
                await self._stop.wait()
        except BaseException as e:
            if not ready.done():
                ready.set_exception(e if isinstance(e, Exception) else McpServerError("stopped while starting"))
            if not isinstance(e, Exception):
                raise
        finally:
            self._client = None
            self._connected = False

    def _client_for(self, stack: AsyncExitStack) -> Any:
        from mcp import Client

        def ended() -> None:
            self._connected = False

        spec = self.spec
        if spec.url:
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            http = create_mcp_http_client(headers=dict(spec.headers))
            transport: Any = streamable_http_client(spec.url, http_client=http)
        else:
            from mcp import StdioServerParameters
            from mcp.client.stdio import stdio_client

            assert spec.command
            errlog = stack.enter_context(open(self.log_path or os.devnull, "a", encoding="utf-8"))  # noqa: SIM115
            params = StdioServerParameters(
                command=sys.executable,
                args=["-I", "-S", LEASH, "--remove-when-orphaned", self._log_dir or "", "--", spec.command, *spec.args],
                env=dict(spec.env),
                cwd=spec.cwd,
                encoding_error_handler="replace",
            )
            transport = stdio_client(params, errlog=errlog)
        return Client(_watched(transport, ended), read_timeout_seconds=spec.call_timeout)

    def _teardown(self) -> None:
        owner, self._owner = self._owner, None
        stop = self._stop
        if owner is None:
            return
        if self._client is not None and stop is not None and not owner.done():
            with contextlib.suppress(Exception):
                self.loop.portal().call(stop.set)  # a clean shutdown (the SDK closes stdin, then signals)
            try:
                owner.result(timeout=8)
            except BaseException:
                owner.cancel()
        else:
            owner.cancel()  # still starting (or hung there): cancelling runs the same shutdown
        self._connected = False

    def remove_log(self) -> None:
        """Remove the stderr log's folder (an open log file lives on until the server is gone)."""
        if self._log_dir:
            import shutil

            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None

    def stop(self) -> None:
        with self._lock:
            self.remove_log()  # first: a kernel that exits may be killed before the shutdown below ends
            self._teardown()
            self.status = "stopped"

    def ensure_running(self) -> None:
        """Start on first use; restart once when the server died since the last call."""
        with self._lock:
            if self.alive:
                return
            if self.status == "failed":
                raise McpServerError(self.error)
            if self.status == "running":  # it died while idle
                self._restart_after_death("stopped")
                return
            self.start()

    def _restart_after_death(self, what: str) -> None:
        line = self._fail_line(what)
        if self._fresh_restart:
            self._teardown()
            self.status = "failed"
            self.error = line.replace(what, f"{what} again after a restart", 1)
            raise McpServerError(self.error)
        self.restarts += 1
        self._fresh_restart = True
        self.start()

    # -- calls -----------------------------------------------------------------------------------------

    def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """``tools/call``; returns the SDK's CallToolResult, or raises McpServerError / the SDK's error."""
        self.ensure_running()
        portal = self.loop.portal()
        client = self._client
        future = portal.start_task_soon(self._call, client, tool, arguments)
        try:
            result = future.result(timeout=self.spec.call_timeout + 5)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise McpServerError(
                f"MCP server {self.spec.name!r}: {tool} did not answer within {self.spec.call_timeout:g} s"
            ) from None
        except BaseException as e:
            future.cancel()
            if isinstance(e, Exception) and not self._connected:
                with self._lock:
                    if self._client is None or self._client is client:
                        self._restart_after_death(f"stopped during a call to {tool}")
                raise McpServerError(
                    f"MCP server {self.spec.name!r} stopped during the call to {tool}; it was restarted, "
                    "so the call may be retried (it may or may not have taken effect)"
                ) from None
            if getattr(getattr(e, "error", None), "code", None) == REQUEST_TIMEOUT:
                raise McpServerError(
                    f"MCP server {self.spec.name!r}: {tool} did not answer within {self.spec.call_timeout:g} s"
                ) from None
            if isinstance(e, Exception) and not isinstance(e, McpServerError):
                raise McpServerError(f"MCP server {self.spec.name!r}: {tool} failed: {_describe(e)}") from None
            raise
        self._fresh_restart = False
        return result

    async def _call(self, client: Any, tool: str, arguments: dict[str, Any]) -> Any:
        if client is None:
            raise McpServerError(f"MCP server {self.spec.name!r} is not running")
        return await client.call_tool(tool, arguments)


async def _list_all(client: Any) -> list[Any]:
    tools: list[Any] = []
    cursor = None
    for _ in range(MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor or len(tools) >= MAX_TOOLS:
            break
    return tools[:MAX_TOOLS]


def _describe(e: BaseException) -> str:
    """One line for an exception from the SDK (exception groups: their first leaf)."""
    inner = getattr(e, "exceptions", None)
    while isinstance(inner, tuple) and inner:  # exception groups: their first leaf
        e = inner[0]
        inner = getattr(e, "exceptions", None)
    text = str(e) or type(e).__name__
    return _one_line(f"{type(e).__name__}: {text}" if type(e).__name__ not in text else text, 300)
