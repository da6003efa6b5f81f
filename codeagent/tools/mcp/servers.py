"""MCP servers as tool sources: ``add_mcp_server`` and the per-kernel set of servers."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from codeagent.tools.mcp.connection import LoopThread, McpServerError, ServerConnection, ServerSpec, require_mcp
from codeagent.tools.mcp.naming import identifier, namespace_name, unique_names
from codeagent.tools.mcp.results import result_value
from codeagent.tools.mcp.schema_types import TypeWriter
from codeagent.tools.mcp.tool import BadToolSchema, McpTool, make_mcp_tool

Approve = bool | Sequence[str]


def show_in_notebook(mime: str, data: str) -> bool:
    """Display an image a tool returned, when called on the notebook's main thread inside IPython."""
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return False
    if get_ipython() is None:
        return False
    display({mime: data}, raw=True)
    return True


class McpServer:
    """One MCP server added with :func:`add_mcp_server`: its name, status and tools.

    It starts on first use (``start=True`` or :meth:`start` starts it now), is restarted once if it dies, and
    stops with the notebook kernel.
    """

    def __init__(self, spec: ServerSpec, loop: LoopThread, approve: Approve = False) -> None:
        self.spec = spec
        self.approve = approve
        self.connection = ServerConnection(spec, loop)
        self.skipped: list[str] = []  # tools left out, with the reason
        self._tools: list[McpTool] = []
        self._built_for: tuple[int, str] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def status(self) -> str:
        """``not started``, ``running``, ``failed`` or ``stopped``."""
        return self.connection.status

    @property
    def error(self) -> str:
        return self.connection.error

    def start(self) -> McpServer:
        """Start the server now (and list its tools); raises McpServerError with a one-line reason."""
        self.connection.ensure_running()
        return self

    def restart(self) -> McpServer:
        """Stop and start again (also after it failed)."""
        self.connection.stop()
        self.connection.status = "not started"
        self.connection._fresh_restart = False
        return self.start()

    def stop(self) -> None:
        self.connection.stop()

    def tools(self, taken: Iterable[str] = ()) -> list[McpTool]:
        """The server's tools (starting it if needed), in the namespace that avoids ``taken`` names."""
        self.connection.ensure_running()
        namespace = namespace_name(self.name, taken)
        key = (id(self.connection.tools), namespace)
        if self._built_for != key:
            self._tools, self.skipped = self._build(namespace)
            self._built_for = key
        return list(self._tools)

    @property
    def namespace(self) -> str:
        return self._tools[0].namespace if self._tools else namespace_name(self.name)

    def _build(self, namespace: str) -> tuple[list[McpTool], list[str]]:
        listed = [t for t in self.connection.tools if isinstance(getattr(t, "name", None), str)]
        attrs = unique_names([t.name for t in listed])
        writer = TypeWriter({})
        tools: list[McpTool] = []
        skipped: list[str] = []
        seen: set[str] = set()
        for item in listed:
            if item.name in seen:
                skipped.append(f"{item.name[:60]!r}: listed twice")
                continue
            seen.add(item.name)
            try:
                tools.append(
                    make_mcp_tool(
                        item,
                        server=self.name,
                        namespace=namespace,
                        attr=attrs[item.name],
                        invoke=self._invoke,
                        approve=self._approves(item.name, attrs[item.name]),
                        writer=writer,
                    )
                )
            except BadToolSchema as e:
                skipped.append(f"{item.name[:60]!r}: {e}")
        return tools, skipped

    def _approves(self, remote: str, attr: str) -> bool:
        if isinstance(self.approve, bool):
            return self.approve
        return remote in self.approve or attr in self.approve

    def _invoke(self, remote: str, arguments: dict[str, Any]) -> Any:
        return result_value(self.connection.call(remote, arguments), remote, show_in_notebook)

    def __repr__(self) -> str:
        count = f", {len(self._tools)} tools" if self._tools else ""
        return f"<McpServer {self.name!r} ({self.spec.transport}) {self.status}{count}>"


class McpServers:
    """Every MCP server of this notebook kernel, by name; all share one event-loop thread."""

    def __init__(self) -> None:
        self._servers: dict[str, McpServer] = {}
        self.loop = LoopThread()
        atexit.register(self.close)

    def add(self, server_spec: ServerSpec, approve: Approve = False, start: bool = False) -> McpServer:
        namespace = namespace_name(server_spec.name)
        for other in self._servers.values():
            if other.name != server_spec.name and namespace_name(other.name) == namespace:
                raise ValueError(
                    f"MCP server names {other.name!r} and {server_spec.name!r} both become the namespace "
                    f"{namespace!r} in the sandbox; choose another name"
                )
        self.remove(server_spec.name)
        server = self._servers[server_spec.name] = McpServer(server_spec, self.loop, approve)
        if start:
            server.start()
        return server

    def remove(self, name: str) -> None:
        old = self._servers.pop(name, None)
        if old is not None:
            old.stop()

    def get(self, name: str) -> McpServer | None:
        return self._servers.get(name)

    def __iter__(self) -> Iterator[McpServer]:
        return iter(list(self._servers.values()))

    def __len__(self) -> int:
        return len(self._servers)

    def close(self) -> None:
        for server in list(self._servers.values()):
            server.connection.remove_log()
        for server in list(self._servers.values()):
            server.stop()
        self.loop.close()


default_servers = McpServers()


def add_mcp_server(
    name: str,
    command: str | None = None,
    args: Sequence[str] | None = None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    *,
    url: str | None = None,
    headers: dict[str, str] | None = None,
    approve: Approve = False,
    start: bool = False,
    timeout: float = 60.0,
    start_timeout: float = 30.0,
    servers: McpServers | None = None,
) -> McpServer:
    """Add an MCP server as a tool source; inside the sandbox its tools are ``name.tool(...)``.

    Stdio: ``add_mcp_server("git", command="python", args=["-m", "mcp_server_git"], env={...}, cwd=None)``.
    Streamable HTTP: ``add_mcp_server("docs", url="http://127.0.0.1:8000/mcp", headers={...})``.
    The command, URL, headers and env stay in the notebook kernel. Adding a server twice under one name replaces
    it. ``start=True`` starts it now (else on first use); ``timeout`` caps each call, ``start_timeout`` the start.
    ``approve=True`` (or a list of tool names) marks tools whose calls need the user's approval.
    """
    require_mcp()
    if not isinstance(name, str) or not name.strip():
        raise ValueError("add_mcp_server needs a name, e.g. add_mcp_server('git', command='uvx', ...)")
    if (command is None) == (url is None):
        raise ValueError(f"MCP server {name!r}: give either command=... (stdio) or url=... (Streamable HTTP)")
    if url is not None and not url.startswith(("http://", "https://")):
        raise ValueError(f"MCP server {name!r}: url must start with http:// or https://, not {url[:40]!r}")
    if isinstance(args, str):
        raise TypeError(f"MCP server {name!r}: args must be a list of strings, e.g. args=['-m', 'server']")
    if not isinstance(approve, bool) and not all(isinstance(a, str) for a in approve):
        raise TypeError(f"MCP server {name!r}: approve must be True, False or a list of tool names")
    identifier(name)  # always succeeds; the namespace is checked against the other servers in add()
    spec = ServerSpec(
        name=name,
        command=command,
        args=[str(a) for a in args or []],
        env={str(k): str(v) for k, v in (env or {}).items()},
        cwd=str(cwd) if cwd is not None else None,
        url=url,
        headers={str(k): str(v) for k, v in (headers or {}).items()},
        start_timeout=float(start_timeout),
        call_timeout=float(timeout),
    )
    return (servers if servers is not None else default_servers).add(
        spec, approve=approve if isinstance(approve, bool) else list(approve), start=start
    )


__all__ = ["McpServer", "McpServerError", "McpServers", "add_mcp_server", "default_servers"]
