"""The MCP task of context_economy.py: a real MCP server (``data/sales_mcp_server.py``, stdio) whose tool returns
every order of a region, summarised per region. Direct tool calling offers the server's tool as it is listed
(as an MCP client such as Claude Desktop does), and each call's result enters the conversation; codeagent
calls ``sales.list_orders`` from one script, and the rows stay in the sandbox."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks._tasks import (
    REGIONS,
    THRESHOLD,
    BenchTask,
    _summary_answer,
    make_sales_rows,
    region_summary,
    summary_check,
    summary_from_output,
    tool_exchanges,
)
from codeagent.testing.messages_server import Turn, text_turn, tool_turn
from codeagent.tools.registry import ToolRegistry
from codeagent.tools.toolbox import ToolBox

SERVER = str(Path(__file__).with_name("data") / "sales_mcp_server.py")

MCP_SCRIPT = f"""\
import statistics
for region in {list(REGIONS)!r}:
    amounts = [r["amount"] for r in sales.list_orders(region=region)["result"]]
    share = 100 * sum(a > {THRESHOLD} for a in amounts) / len(amounts)
    print(f"{{region}} {{len(amounts)}} {{round(statistics.median(amounts), 2):.2f}} {{round(share, 1):.1f}}")
"""


@contextmanager
def mcp_sales_task(rows: int = 10_000) -> Iterator[BenchTask]:
    """The task, with its server running for as long as the ``with`` lasts."""
    from codeagent.tools.mcp.connection import ServerSpec
    from codeagent.tools.mcp.servers import McpServers

    truth = region_summary([(r["region"], r["amount"]) for r in make_sales_rows(rows)])
    servers = McpServers()
    try:
        servers.add(ServerSpec("sales", command=sys.executable, args=[SERVER, str(rows)]), start=True)
        toolbox = ToolBox(ToolRegistry(), servers)
        toolbox.refresh()
        tools = list(toolbox)

        def direct_model(body: dict[str, Any]) -> Turn:
            exchanges = tool_exchanges(body)
            if len(exchanges) < len(REGIONS):
                return tool_turn("list_orders", {"region": REGIONS[len(exchanges)]})
            pairs = []
            for _, arguments, result in exchanges:
                pairs += [(arguments["region"], r["amount"]) for r in json.loads(result or "{}")["result"]]
            return text_turn(_summary_answer(region_summary(pairs)))

        check = summary_check(truth)

        yield BenchTask(
            name=f"MCP server, {rows:,} orders in 5 calls",
            kind="mcp",
            size=rows,
            question="For each region, what were the median order amount and the share of orders over 500 in 2026?",
            tools=tools,
            direct_model=direct_model,
            script=MCP_SCRIPT,
            answer_from_output=summary_from_output,
            check=check,
            registry=toolbox,
            direct_names={t.remote_name: t.name for t in tools},
        )
    finally:
        servers.close()
