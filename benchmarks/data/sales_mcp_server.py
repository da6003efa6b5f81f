"""A real MCP server (the mcp SDK's MCPServer over stdio) serving the sales orders of benchmarks/_tasks.py.

python benchmarks/data/sales_mcp_server.py [ROWS]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mcp.server.mcpserver import MCPServer

from benchmarks._tasks import REGIONS, make_sales_rows

ROWS = make_sales_rows(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
server = MCPServer("sales")


@server.tool()
def list_orders(region: str) -> list[dict[str, Any]]:
    """Every order of 2026 in one region (north, south, east, west or central): id, day, product, amount."""
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}")
    return [{k: r[k] for k in ("id", "day", "product", "amount")} for r in ROWS if r["region"] == region]


if __name__ == "__main__":
    server.run()
