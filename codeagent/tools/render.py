"""The tools as the model reads them: ``@tool`` stubs as functions, each MCP server's tools as a class."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def render_tools(tools: Iterable[Any]) -> str:
    """Stubs of ``tools`` in order; MCP tools are grouped into one ``class namespace:`` per server."""
    from codeagent.tools.mcp.tool import render_namespace

    plain: list[str] = []
    grouped: dict[str, list[Any]] = {}
    for t in tools:
        if getattr(t, "namespace", None):
            grouped.setdefault(t.namespace, []).append(t)
        else:
            plain.append(t.stub)
    blocks = plain + [render_namespace(ns, members) for ns, members in grouped.items()]
    return "\n".join(blocks)


def estimate_tokens(text: str) -> int:
    """The offline estimate the benchmarks use: four characters per token."""
    return (len(text) + 3) // 4


def _one_line(text: str, limit: int = 80) -> str:
    first = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
    first = "".join(ch if ch >= " " else " " for ch in first)
    return first if len(first) <= limit else first[: limit - 1] + "…"


def sources_table(sources: Iterable[Any]) -> str:
    """``%codeagent --tools``: every tool source, its status and tool count, then each tool's name and one
    line of its description."""
    sources = list(sources)
    rows = [("source", "status", "tools")]
    for s in sources:
        label = s.name if s.kind == "registry" else f"{s.name} (MCP {s.namespace or ''})".replace(" )", ")")
        rows.append((label, s.status, str(len(s.tools))))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    for s in sources:
        if not s.tools and not s.error:
            continue
        lines.append("")
        lines.append(f"{s.name}:")
        if s.error:
            lines.append(f"  {_one_line(s.error, 300)}")
        names = [t.name for t in s.tools]
        width = min(max((len(n) for n in names), default=0), 40)
        for t in s.tools:
            lines.append(f"  {t.name.ljust(width)}  {_one_line(t.description)}".rstrip())
    return "\n".join(lines)
