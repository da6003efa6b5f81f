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
import tempfile
import threading
from contextlib import AsyncExitStack
from typing import Any

from codeagent.tools.mcp.loop import LoopThread
from codeagent.tools.mcp.transports import HttpStatus, ServerSpec, http_transport, stdio_transport, watched, where

__all__ = ["LoopThread", "McpServerError", "McpUnavailable", "ServerConnection", "ServerSpec", "require_mcp"]

REQUEST_TIMEOUT = -32001  # JSON-RPC error code of a request that timed out (mcp_types.REQUEST_TIMEOUT)
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


def _one_line(text: str, limit: int = STDERR_TAIL_CHARS) -> str:
    lines = [_ANSI.sub("", line).strip() for line in text.splitlines()]
    joined = " | ".join(line for line in lines if line)
    return joined if len(joined) <= limit else "…" + joined[-limit:]


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
        self._http: HttpStatus | None = None
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
        if self.spec.url:  # an HTTP server has no stderr of ours: name where it is and what it answered
            answered = self._http.last_error if self._http else ""
            return f"MCP server {self.spec.name!r} at {where(self.spec.url)} {what}" + (
                f" (it answered {answered})" if answered and answered not in what else ""
            )
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

        if self.spec.url:
            self._http = HttpStatus()
            transport = http_transport(self.spec.url, self.spec.headers, self._http)
        else:
            assert self.spec.command
            errlog = stack.enter_context(open(self.log_path or os.devnull, "a", encoding="utf-8"))  # noqa: SIM115
            transport = stdio_transport(self.spec, self._log_dir or "", errlog)
        return Client(watched(transport, ended), read_timeout_seconds=self.spec.call_timeout)

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
