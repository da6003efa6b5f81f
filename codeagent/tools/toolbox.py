"""Every tool source of a call in one place: the ``@tool`` registry and the MCP servers.

The agent and the dispatcher use a ToolBox the way they use a ToolRegistry (``get``, iteration,
``direct_tools``); it also answers ``search_tools`` / ``describe_tool`` from the sandbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from codeagent.tools.registry import Tool, ToolRegistry


@dataclass
class SourceInfo:
    """One tool source as ``%codeagent --tools`` and the search-mode prompt describe it."""

    name: str  # "@tool" or the MCP server's name
    kind: str  # "registry" | "mcp"
    status: str
    tools: list[Any] = field(default_factory=list)
    error: str = ""
    namespace: str = ""


class ToolBox:
    """The tools one call can use. ``refresh()`` starts MCP servers on first use and collects their tools."""

    def __init__(self, registry: ToolRegistry, servers: Any = None) -> None:
        self.registry = registry
        self.servers = servers
        self.sources: list[SourceInfo] = []
        self._mcp: dict[str, Any] = {}
        self._index: Any = None
        self._indexed: tuple[str, ...] = ()

    def refresh(self) -> list[str]:
        """Collect every source's tools; returns one line per MCP server that could not be used."""
        registry_tools = list(self.registry)
        self.sources = [SourceInfo("@tool", "registry", "ready", registry_tools)]
        self._mcp = {}
        problems: list[str] = []
        taken = {t.name for t in registry_tools}
        for server in self.servers or []:
            try:
                tools = server.tools(taken)
            except Exception as e:
                problems.append(str(e))
                failed = SourceInfo(server.name, "mcp", server.status, error=str(e), namespace=server.namespace)
                self.sources.append(failed)
                continue
            for skipped in getattr(server, "skipped", []):
                problems.append(f"MCP server {server.name!r}: left out tool {skipped}")
            self.sources.append(
                SourceInfo(server.name, "mcp", server.status, tools, namespace=tools[0].namespace if tools else "")
            )
            self._mcp.update((t.name, t) for t in tools)
        return problems

    # -- the registry's interface --------------------------------------------------------------------

    def get(self, name: str) -> Any:
        return self.registry.get(name) or self._mcp.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[Any]:
        yield from self.registry
        yield from list(self._mcp.values())

    def __len__(self) -> int:
        return len(self.registry) + len(self._mcp)

    def direct_tools(self) -> list[Tool]:
        return self.registry.direct_tools()

    def namespaces(self) -> list[str]:
        return sorted({t.namespace for t in self._mcp.values()})

    # -- search_tools / describe_tool ----------------------------------------------------------------

    def index(self) -> Any:
        from codeagent.tools.search import ToolIndex

        names = tuple(t.name for t in self)
        if self._index is None or self._indexed != names:
            self._index = ToolIndex(list(self))
            self._indexed = names
        return self._index

    def search_text(self, query: str = "", k: int = 5) -> str:
        if not isinstance(query, str) or not query.strip():
            raise ValueError("search_tools needs a query, e.g. search_tools('create an invoice')")
        k = max(1, min(int(k), 20))
        found = self.index().search(query, k)
        if not found:
            return f"No tool matches {query[:80]!r}. Try other words."
        from codeagent.tools.render import render_tools

        return f"# {len(found)} tool(s) for {query[:80]!r}, best first; all are callable as shown.\n\n" + render_tools(
            found
        )

    def closest(self, name: str, k: int = 5) -> list[str]:
        """The tools that best match a name that does not exist (``ledgerly.delete_bill`` → its words)."""
        from codeagent.tools.search import name_as_query

        return [t.name for t in self.index().search(name_as_query(name), k)]

    def describe_text(self, name: str = "") -> str:
        tool = self.get(name) if isinstance(name, str) else None
        if tool is None:
            close = self.closest(name, 3) if isinstance(name, str) else []
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ValueError(f"no tool named {str(name)[:80]!r}.{hint}")
        from codeagent.tools.render import render_tools

        return render_tools([tool])
