"""Tool search: recall of the host's index on natural-language requests, its speed, and what the first request
costs with many tools.

    python benchmarks/tool_search.py [--out benchmarks/results]

The catalog (``benchmarks/data/tool_catalog.json``, 1,050 tools of ten fictional SaaS APIs with overlapping
vocabularies) becomes real MCP tool objects, as a server's listing would (stubs, namespaces, TypedDict
returns). Each query names its intended tool without repeating the tool's name; recall@k is the share of
queries whose tool is among the first k results. Two query sets: ``tool_queries.json``, the tuning set (the
index's weights and verb list were chosen on it, so its figure is optimistic), and
``tool_queries_heldout.json``, written with other phrasings and another seed before any tuning and never tuned
on: its figure is the honest one. Misses are printed for the tuning set only. Both rankings are measured: BM25
alone, and BM25 fused with WordLlama embeddings of whole texts and of words (what ``search_tools`` uses when
``codeagent[search]`` is installed). The first request's tokens are
counted from the system prompt and the tool definitions as sent (4 characters per token), for 10 to 10,000
tools (the catalog repeated under more server names past 1,050), with the default budget of 1,500 tokens of
stubs, against listing every stub.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codeagent.agent.prompt import EXECUTE_PYTHON_TOOL, system_prompt
from codeagent.tools.mcp.schema_types import TypeWriter
from codeagent.tools.mcp.tool import McpTool, make_mcp_tool
from codeagent.tools.render import estimate_tokens
from codeagent.tools.search import ToolIndex

DATA = Path(__file__).parent / "data"
BUDGET = 1_500


def catalog_tools(entries: list[dict[str, Any]], copies: int = 1) -> list[McpTool]:
    tools: list[McpTool] = []
    for copy in range(copies):
        writers: dict[str, TypeWriter] = {}
        for e in entries:
            server = e["server"] if copy == 0 else f"{e['server']}{copy + 1}"
            listed = SimpleNamespace(
                name=e["name"],
                description=e["description"],
                input_schema=e["input_schema"],
                output_schema=e["output_schema"],
                annotations=None,
            )
            writer = writers.setdefault(server, TypeWriter({}))
            tools.append(
                make_mcp_tool(listed, server=server, namespace=server, attr=e["name"], invoke=_never, writer=writer)
            )
    return tools


def _never(name: str, arguments: dict[str, Any]) -> Any:
    raise RuntimeError("the benchmark never calls a tool")


def first_request_tokens(tools: list[McpTool], budget: int | None) -> int:
    system = system_prompt(tools, "", "", budget)
    return estimate_tokens(system) + estimate_tokens(json.dumps(EXECUTE_PYTHON_TOOL))


def recall(index: ToolIndex, queries: list[dict[str, str]]) -> tuple[float, float, list[float], list[str]]:
    hits1 = hits5 = 0
    times: list[float] = []
    misses: list[str] = []
    for q in queries:
        started = time.perf_counter()
        found = [t.name for t in index.search(q["query"], 5)]
        times.append(time.perf_counter() - started)
        hits1 += bool(found) and found[0] == q["tool"]
        hits5 += q["tool"] in found
        if q["tool"] not in found:
            misses.append(f"{q['query']!r} → wanted {q['tool']}, got {found[:3]}")
    return hits1 / len(queries), hits5 / len(queries), times, misses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    entries = json.loads((DATA / "tool_catalog.json").read_text())
    queries = json.loads((DATA / "tool_queries.json").read_text())
    heldout = json.loads((DATA / "tool_queries_heldout.json").read_text())
    tools = catalog_tools(entries)

    builds = []
    for _ in range(5):
        started = time.perf_counter()
        index = ToolIndex(tools)
        builds.append(time.perf_counter() - started)
    lexical = ToolIndex(tools, semantic=False)
    r1, r5, times, misses = recall(index, queries)
    h1, h5, heldout_times, heldout_misses = recall(index, heldout)
    # what the hand-written everyday-verb list (written while looking at the tuning set) adds
    no_verbs = ToolIndex(tools, everyday_verbs=False)
    v1, v5, _, _ = recall(no_verbs, queries)
    hv1, hv5, _, _ = recall(no_verbs, heldout)
    heldout_at_10 = sum(q["tool"] in [t.name for t in index.search(q["query"], 10)] for q in heldout) / len(heldout)
    b1, b5, _, _ = recall(lexical, queries)
    bh1, bh5, _, _ = recall(lexical, heldout)
    big = catalog_tools(entries, copies=10)
    started = time.perf_counter()
    big_index = ToolIndex(big)
    big_build = time.perf_counter() - started
    big_times = [recall(big_index, queries[:50])[2]]

    rows = []
    for n in (10, 100, 1_000, 10_000):
        subset = (tools if n <= len(tools) else big)[:n]
        rows.append((n, first_request_tokens(subset, BUDGET), first_request_tokens(subset, None)))

    result = {
        "tools": len(tools),
        "queries": len(queries),
        "recall_at_1": round(r1, 4),
        "recall_at_5": round(r5, 4),
        "heldout_queries": len(heldout),
        "heldout_recall_at_1": round(h1, 4),
        "heldout_recall_at_5": round(h5, 4),
        "heldout_recall_at_10": round(heldout_at_10, 4),
        "ranking": index.ranking,
        "without_everyday_verbs": {
            "recall_at_1": round(v1, 4),
            "recall_at_5": round(v5, 4),
            "heldout_recall_at_1": round(hv1, 4),
            "heldout_recall_at_5": round(hv5, 4),
        },
        "bm25_only": {
            "recall_at_1": round(b1, 4),
            "recall_at_5": round(b5, 4),
            "heldout_recall_at_1": round(bh1, 4),
            "heldout_recall_at_5": round(bh5, 4),
        },
        "index_build_ms_median": round(statistics.median(builds) * 1000, 2),
        "query_ms_median": round(statistics.median(times + heldout_times) * 1000, 3),
        "index_build_ms_10k": round(big_build * 1000, 1),
        "query_ms_median_10k": round(statistics.median(big_times[0]) * 1000, 3),
        "first_request_tokens": [
            {"tools": n, "with_search": searched, "all_stubs_listed": listed} for n, searched, listed in rows
        ],
        "misses": misses,
    }
    lines = [
        f"tool search over {len(tools):,} tools, ranked by {index.ranking}; target recall@5 ≥ 0.95",
        f"  held-out, {len(heldout)} queries:  recall@1 {h1:.3f}   recall@5 {h5:.3f}   "
        f"({len(heldout_misses)} misses at 5)   BM25 alone: {bh1:.3f} / {bh5:.3f}",
        f"  tuning,   {len(queries)} queries:  recall@1 {r1:.3f}   recall@5 {r5:.3f}   "
        f"(in-sample, optimistic)   BM25 alone: {b1:.3f} / {b5:.3f}",
        f"  held-out recall@10 {heldout_at_10:.3f} (a search with k=10);  without the everyday-verb list: "
        f"held-out {hv1:.3f} / {hv5:.3f}, tuning {v1:.3f} / {v5:.3f}",
        f"  index build {result['index_build_ms_median']} ms (median of 5); "
        f"query {result['query_ms_median']} ms median",
        f"  10,500 tools: index build {result['index_build_ms_10k']} ms; "
        f"query {result['query_ms_median_10k']} ms median",
        "",
        "| tools | first request, tokens (budget 1,500) | all stubs listed | reduction |",
        "|---:|---:|---:|---:|",
        *[f"| {n:,} | {s:,} | {a:,} | {100 * (1 - s / a):.1f}% |" for n, s, a in rows],
    ]
    if misses:
        lines += ["", f"tuning-set misses at 5 ({len(misses)}):", *[f"  {m}" for m in misses[:20]]]
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tool_search.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
