"""How many input tokens codeagent saves against direct tool calling, on the same tasks, tools and data.

    python benchmarks/context_economy.py [--live] [--out benchmarks/results]

Every task runs twice through the real ``anthropic`` SDK against the local Messages API server (scripted
models, see ``benchmarks/_tasks.py``): once as direct tool calling, once through codeagent's Agent with a real
sandbox kernel. Input tokens are counted from the request bodies as sent: offline with a 4-characters-per-token
estimate; with ``--live`` and ``ANTHROPIC_API_KEY``, by Anthropic's token counting endpoint on the same
recorded requests. Every answer is checked against ground truth. Writes ``context_economy.json``, ``.md`` and
``.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anthropic

from benchmarks._mcp_task import mcp_sales_task
from benchmarks._report import (
    DEFINITION_HEADERS,
    TASK_HEADERS,
    Comparison,
    definition_rows,
    notes,
    percent,
    task_rows,
    text_table,
    to_json,
    to_markdown,
    write_chart,
    write_outputs,
)
from benchmarks._runners import (
    LIVE_METHOD,
    MODEL,
    OFFLINE_METHOD,
    Counter,
    DefinitionRecord,
    api_counter,
    measure_definitions,
    offline_counts,
    run_codeagent,
    run_direct,
)
from benchmarks._tasks import BenchTask, all_tasks, synthetic_tools
from codeagent.sandbox.host.manager import SandboxKernel

TARGETS = (("expenses", 100, 98.0), ("analysis", None, 40.0), ("mcp", None, 40.0))


def compare(task: BenchTask, sandbox: SandboxKernel, counter: Counter = offline_counts) -> Comparison:
    """Run ``task`` both ways; assert both answers are right and the counts match the server's usage."""
    direct = run_direct(task, counter)
    codeagent = run_codeagent(task, sandbox, counter)
    assert direct.tool_data_chars == codeagent.tool_data_chars, f"{task.name}: the tools returned different data"
    for run in (direct, codeagent):
        try:
            task.check(run.answer)
        except AssertionError as e:
            raise AssertionError(f"{task.name}, {run.approach}: wrong answer: {e}\n{run.answer[:500]}") from None
        # the server answered each request with usage.input_tokens estimated from the body it received
        assert run.usage_input_tokens == run.estimated_tokens, f"{task.name}, {run.approach}: counts disagree"
    return Comparison(kind=task.kind, size=task.size, direct=direct, codeagent=codeagent)


def target_lines(comparisons: list[Comparison]) -> list[str]:
    out = []
    for kind, size, goal in TARGETS:
        found = [c for c in comparisons if c.kind == kind and (size is None or c.size == size)]
        for c in found:
            verdict = "met" if c.reduction_pct >= goal else "MISSED"
            out.append(f"≥ {goal:g}% fewer input tokens on {c.task}: {percent(c.reduction_pct)} ({verdict})")
    return out


def run_benchmark(
    members: Sequence[int] = (10, 100, 1_000),
    rows: int = 10_000,
    tool_counts: Sequence[int] = (10, 100, 1_000),
    counter: Counter = offline_counts,
    progress: bool = True,
    mcp: bool = True,
) -> tuple[list[Comparison], list[DefinitionRecord]]:
    """All tasks both ways and the tool-definition comparison, on one sandbox kernel."""
    comparisons = []
    definitions = []
    with SandboxKernel() as sandbox:
        for task in all_tasks(tuple(members), rows):
            if progress:
                print(f"… {task.name}", file=sys.stderr, flush=True)
            comparisons.append(compare(task, sandbox, counter))
        if mcp:
            if progress:
                print("… MCP server task", file=sys.stderr, flush=True)
            with mcp_sales_task(rows) as task:
                comparisons.append(compare(task, sandbox, counter))
        for n in tool_counts:
            if progress:
                print(f"… tool definitions, {n:,} tools", file=sys.stderr, flush=True)
            definitions.append(measure_definitions(synthetic_tools(n), sandbox, counter))
    return comparisons, definitions


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--live", action="store_true", help="count tokens with Anthropic's API (needs a key)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--model", default=os.environ.get("ANTHROPIC_MODEL", MODEL), help="model for --live")
    parser.add_argument("--members", default="10,100,1000", help="team sizes of the expense task")
    parser.add_argument("--rows", type=int, default=10_000, help="rows the data-analysis query returns")
    parser.add_argument("--tools", default="10,100,1000", help="toolbox sizes for the definitions comparison")
    return parser.parse_args(argv)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    counter: Counter = offline_counts
    method = OFFLINE_METHOD
    if args.live:
        key = os.environ.get("ANTHROPIC_API_KEY", "").strip()
        if not key:
            print("--live needs ANTHROPIC_API_KEY in the environment.", file=sys.stderr)
            return 2
        counter = api_counter(anthropic.Anthropic(api_key=key, max_retries=8), args.model)
        method = f"{LIVE_METHOD}, model {args.model}"
    comparisons, definitions = run_benchmark(_ints(args.members), args.rows, _ints(args.tools), counter)

    command = "python benchmarks/context_economy.py" + (" --live" if args.live else "")
    note_lines = notes(method, args.live, comparisons, definitions)
    targets = target_lines(comparisons)
    print(text_table(TASK_HEADERS, task_rows(comparisons)))
    print()
    print(text_table(DEFINITION_HEADERS, definition_rows(definitions)))
    print()
    for line in [*targets, *note_lines]:
        print(f"- {line}")
    meta = {
        "method": method,
        "live": args.live,
        "model": args.model if args.live else None,
        "command": command,
        "python": platform.python_version(),
        "anthropic_sdk": anthropic.__version__,
        "targets": targets,
        "notes": note_lines,
    }
    paths = write_outputs(
        args.out,
        to_json(comparisons, definitions, meta),
        to_markdown(comparisons, definitions, note_lines, targets, command),
        lambda path: write_chart(path, comparisons, definitions, "live count" if args.live else "offline estimate"),
    )
    print("\nwrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
