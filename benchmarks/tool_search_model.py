"""Tool search as the model uses it: the model reads the request and writes the ``search_tools`` query itself.

    python benchmarks/tool_search_model.py --base-url http://127.0.0.1:8080 [--set paraphrase_blind] [--limit N]

``benchmarks/tool_search.py`` ranks the user's request as typed. In a real call the model gets the search-mode
system prompt (the 1,050 catalog tools are past the budget, so it lists only the sources) and the request, and
writes a script that calls ``search_tools(...)``. This sends each request of a query set through the real
``anthropic`` SDK to a Messages API server (a local model for trials: ``../shared/tools/local-llm start``),
reads the reply as the agent loop does (``codeagent.agent.actions.read_reply``: tool_use, fenced Python or a
JSON call), takes the first ``search_tools`` query in the script, and ranks it with the same index. Reported
in the same run: recall@5 of the request as typed (the baseline), of the model's first query, and of any of its
queries (a script can print several searches); how many replies made no search at all. A small model often
calls a tool name it made up instead of searching: for those, how often the closest tools that the agent's
correction names (``MAX_NAMED_TOOLS``, found by searching the made-up name) include the intended one. The first
step only: no tool runs, nothing is sent back to the model.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anthropic

from benchmarks.tool_search import BUDGET, DATA, QUERY_SETS, catalog_tools
from codeagent.agent.actions import MAX_NAMED_TOOLS, json_tool_calls, read_reply
from codeagent.agent.prompt import EXECUTE_PYTHON, EXECUTE_PYTHON_TOOL, system_prompt
from codeagent.tools.search import ToolIndex, name_as_query


def search_queries(code: str) -> list[str]:
    """The string literals passed first to ``search_tools(...)`` in a script, in order (none if it does not
    parse)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "search_tools"
    ]
    calls.sort(key=lambda node: (node.lineno, node.col_offset))
    found = []
    for call in calls:
        first = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "query"), None)
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.append(first.value)
    return found


def guessed_tools(code: str, known: set[str], namespaces: set[str]) -> list[str]:
    """Calls in a script to tools that do not exist: ``server.name(...)`` of a known server, or a bare
    ``some_name(...)`` with an underscore that is neither a tool nor a built-in."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in namespaces:
            name = f"{func.value.id}.{func.attr}"
        elif isinstance(func, ast.Name) and "_" in func.id and func.id not in dir(builtins):
            name = func.id
        else:
            continue
        if name not in known and name not in ("search_tools", "describe_tool", "set_result"):
            found.append(name)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="a server that speaks the Messages API")
    parser.add_argument("--model", default="local")
    parser.add_argument("--set", default="paraphrase_blind", choices=sorted(QUERY_SETS))
    parser.add_argument("--limit", type=int, default=0, help="only the first N queries of the set")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    queries = json.loads((DATA / QUERY_SETS[args.set][0]).read_text())
    if args.limit:
        queries = queries[: args.limit]
    tools = catalog_tools(json.loads((DATA / "tool_catalog.json").read_text()))
    index = ToolIndex(tools)
    system = system_prompt(tools, "", "", BUDGET)
    known = {t.name for t in tools} | {EXECUTE_PYTHON}
    namespaces = {t.namespace for t in tools}
    client = anthropic.Anthropic(base_url=args.base_url, api_key="unused-by-a-local-server", max_retries=0)

    records: list[dict[str, Any]] = []
    for n, q in enumerate(queries, 1):
        started = time.perf_counter()
        reply = client.messages.create(
            model=args.model,
            system=system,
            tools=[EXECUTE_PYTHON_TOOL],
            messages=[{"role": "user", "content": q["query"]}],
            max_tokens=400,
            extra_body={"temperature": 0},  # this SDK has no temperature argument; local servers read it
        )
        seconds = time.perf_counter() - started
        read = read_reply(reply.content, known)
        searches = [s for script in read.scripts for s in search_queries(script.code)]
        unknown = json_tool_calls(read.text, known)[1] if read.correction else None
        guesses = [use.name for use in read.tool_uses if use.name not in known] + ([unknown] if unknown else [])
        guesses += [g for script in read.scripts for g in guessed_tools(script.code, known, namespaces)]

        def found(text: str, wanted: str = q["tool"]) -> bool:
            return wanted in [t.name for t in index.search(text, 5)]

        records.append(
            {
                "request": q["query"],
                "tool": q["tool"],
                "searches": searches,
                "request_hit": found(q["query"]),
                "first_search_hit": bool(searches) and found(searches[0]),
                "any_search_hit": any(found(s) for s in searches),
                "guessed_tools": guesses,
                "closest_to_guess_hit": bool(guesses)
                and q["tool"] in [t.name for t in index.search(name_as_query(guesses[0]), MAX_NAMED_TOOLS)],
                "seconds": round(seconds, 2),
            }
        )
        r = records[-1]
        print(f"{n}/{len(queries)} {r['request_hit']:d}{r['first_search_hit']:d} {searches[:1]}", flush=True)

    def share(key: str) -> float:
        return round(sum(r[key] for r in records) / len(records), 4)

    result = {
        "set": args.set,
        "model": args.model,
        "queries": len(records),
        "recall_at_5_request_as_typed": share("request_hit"),
        "recall_at_5_models_first_search": share("first_search_hit"),
        "recall_at_5_any_of_its_searches": share("any_search_hit"),
        "replies_without_a_search": sum(not r["searches"] for r in records),
        "replies_calling_a_made_up_tool": sum(bool(r["guessed_tools"]) for r in records),
        "correction_names_the_tool": share("closest_to_guess_hit"),
        "seconds_per_reply_median": statistics.median(r["seconds"] for r in records),
        "records": records,
    }
    print(
        f"{args.set}, {len(records)} requests, model {args.model}: recall@5 as typed "
        f"{result['recall_at_5_request_as_typed']:.3f}, the model's first search "
        f"{result['recall_at_5_models_first_search']:.3f}, any of its searches "
        f"{result['recall_at_5_any_of_its_searches']:.3f}; {result['replies_without_a_search']} replies made no "
        f"search, {result['replies_calling_a_made_up_tool']} called a made-up tool; the correction's closest "
        f"{MAX_NAMED_TOOLS} tools include the intended one for {result['correction_names_the_tool']:.3f} of all "
        f"requests; {result['seconds_per_reply_median']:.1f} s per reply (median)"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"tool_search_model_{args.set}.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
