"""Evaluate a model on the tasks of ``tasks.py``: as codeagent (the real ``%%codeagent`` magic) and as direct
tool calling, both in one real notebook kernel; report solved, model turns, tokens and wall time.

    python benchmarks/eval/run.py --base-url http://127.0.0.1:8080 --model qwen2.5-coder-1.5b
    python benchmarks/eval/run.py --model claude-sonnet-5-5          # Anthropic's API; needs ANTHROPIC_API_KEY
    python benchmarks/eval/run.py ... --tasks shares_total,sales_revenue --modes codeagent

Results go to ``benchmarks/results/eval-<model>-<date>.json`` and ``.md`` (written after every task, so an
interrupted run keeps what it measured). Tokens are the usage the server reported.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import queue
import re
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.eval.tasks import TASKS, TASKS_BY_NAME, Task  # noqa: E402

MODES = ("codeagent", "direct")
RESULTS = ROOT / "benchmarks" / "results"


class NotebookKernel:
    """A real ipykernel (jupyter_client) with codeagent loaded, as a notebook has it."""

    def __init__(self, workdir: str) -> None:
        from jupyter_client.manager import KernelManager

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=workdir, env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def run(self, code: str, timeout: float) -> tuple[str, str | None]:
        """Execute ``code``; returns (stdout, error). On timeout the kernel is interrupted."""
        out: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                out.append(msg["content"]["text"])

        try:
            reply = self.kc.execute_interactive(code, output_hook=hook, timeout=timeout, allow_stdin=False)
        except (TimeoutError, queue.Empty):
            self.km.interrupt_kernel()
            self._drain()
            return "".join(out), f"timed out after {timeout:.0f} s"
        content = reply["content"]
        if content["status"] != "ok":
            return "".join(out), f"{content.get('ename')}: {content.get('evalue')}"
        return "".join(out), None

    def _drain(self) -> None:
        """Wait until the interrupted cell has ended (its reply arrives)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_shell_msg(timeout=1)
            except queue.Empty:
                continue
            if msg["msg_type"] == "execute_reply":
                return

    def close(self) -> None:
        """Shut the kernel down gracefully: its codeagent session stops its sandboxes and removes their run
        folders at exit (a SIGKILL, ``now=True``, would leave both behind); killed only if it does not end."""
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)


def setup_code(max_tokens: int) -> str:
    return (
        "%load_ext codeagent\n"
        "%config CodeAgent.live = False\n"
        f"%config CodeAgent.max_tokens = {max_tokens}\n"
        "from benchmarks.eval import harness\n"
    )


def codeagent_cell(task: Task, args: argparse.Namespace) -> str:
    options = f"--new --max-steps {args.max_steps} --model {args.model} -o _eval_result"
    if args.base_url:
        options += f" --base-url {args.base_url}"
    if task.data:
        options += " --data sales"
    return (
        f"harness.prepare({task.name!r}, get_ipython().user_ns)\n"
        f"_eval_result = None\n"
        f"get_ipython().run_cell_magic('codeagent', {options!r}, {task.question!r})\n"
        f"harness.emit(harness.summary(_eval_result, {task.name!r}))\n"
    )


def direct_cell(task: Task, args: argparse.Namespace) -> str:
    return (
        f"harness.emit(harness.direct({task.name!r}, {args.base_url!r}, {args.model!r}, "
        f"{args.max_tokens}, {args.direct_turns}))\n"
    )


def parse_record(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith("EVAL-RECORD "):
            return json.loads(line[len("EVAL-RECORD ") :])
    return None


def run(args: argparse.Namespace) -> Path:
    tasks = [TASKS_BY_NAME[n] for n in args.tasks.split(",")] if args.tasks else TASKS
    modes = args.modes.split(",")
    date = dt.datetime.now(dt.UTC)
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", args.model).strip("-")
    out = Path(args.out) / f"eval-{slug}-{date:%Y-%m-%d-%H%M}"
    meta = {
        "model": args.model,
        "base_url": args.base_url or "Anthropic API",
        "date": date.isoformat(timespec="seconds"),
        "max_tokens": args.max_tokens,
        "max_steps": args.max_steps,
        "direct_turns": args.direct_turns,
        "task_timeout_s": args.task_timeout,
        "command": " ".join(sys.argv),
    }
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="codeagent-eval-") as workdir:
        kernel = NotebookKernel(workdir)
        try:
            _, error = kernel.run(setup_code(args.max_tokens), timeout=300)
            if error:
                raise SystemExit(f"setting up the notebook kernel failed: {error}")
            for task in tasks:
                for mode in modes:
                    if mode == "direct" and task.chart:
                        records.append({"task": task.name, "mode": mode, "skipped": "direct tool calling cannot draw"})
                        continue
                    cell = codeagent_cell(task, args) if mode == "codeagent" else direct_cell(task, args)
                    started = time.perf_counter()
                    stdout, error = kernel.run(cell, timeout=args.task_timeout)
                    record = parse_record(stdout) or {
                        "solved": False,
                        "status": "timeout" if error and "timed out" in error else "error",
                        "error": error or "no record printed",
                        "wall_s": round(time.perf_counter() - started, 2),
                    }
                    record.update(task=task.name, category=task.category, mode=mode, expected=task.expected)
                    records.append(record)
                    print(_progress(record), flush=True)
                    write(out, meta, records)
        finally:
            kernel.close()
    return out


def _progress(r: dict[str, Any]) -> str:
    mark = "✓" if r.get("solved") else "✗"
    return (
        f"{mark} {r['task']:<20} {r['mode']:<9} {r.get('status', '?'):<10} turns {r.get('turns', '-')} "
        f"in {r.get('input_tokens', '-')} out {r.get('output_tokens', '-')} {r.get('wall_s', 0):.0f} s "
        f"| {str(r.get('answer') or r.get('error') or '')[:80]!r}"
    )


def write(out: Path, meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    # not with_suffix: model names have dots ("qwen2.5-coder-1.5b")
    out.parent.joinpath(out.name + ".json").write_text(
        json.dumps({"meta": meta, "records": records}, indent=1, default=str)
    )
    out.parent.joinpath(out.name + ".md").write_text(report(meta, records))


def report(meta: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """The per-task table and the totals, as Markdown."""
    by_task: dict[str, dict[str, dict[str, Any]]] = {}
    for r in records:
        by_task.setdefault(r["task"], {})[r["mode"]] = r
    lines = [
        f"# Evaluation: {meta['model']} ({meta['base_url']}), {meta['date']}",
        "",
        f"`{meta['command']}` — max_tokens {meta['max_tokens']}, codeagent --max-steps {meta['max_steps']}, "
        f"direct up to {meta['direct_turns']} turns, {meta['task_timeout_s']} s per task.",
        "",
        "| task | kind | expected | codeagent | turns | in / out tokens | time | direct | turns | in / out tokens "
        "| time |",
        "|---|---|---|:-:|--:|--:|--:|:-:|--:|--:|--:|",
    ]
    for name, modes in by_task.items():
        task = TASKS_BY_NAME[name]
        cells = [name, task.category, task.expected]
        for mode in MODES:
            r = modes.get(mode)
            cells += _cells(r)
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", "| total | solved | model turns | input tokens | output tokens | wall time |"]
    lines += ["|---|--:|--:|--:|--:|--:|"]
    for mode in MODES:
        rs = [r for r in records if r["mode"] == mode and "skipped" not in r]
        if not rs:
            continue
        solved = sum(1 for r in rs if r.get("solved"))
        lines.append(
            f"| {mode} | {solved} / {len(rs)} | {sum(r.get('turns') or 0 for r in rs)} | "
            f"{sum(r.get('input_tokens') or 0 for r in rs):,} | {sum(r.get('output_tokens') or 0 for r in rs):,} | "
            f"{sum(r.get('wall_s') or 0 for r in rs):.0f} s |"
        )
    return "\n".join(lines) + "\n"


def _cells(r: dict[str, Any] | None) -> list[str]:
    if r is None:
        return ["", "", "", ""]
    if "skipped" in r:
        return ["n/a", "", "", ""]
    mark = "✓" if r.get("solved") else f"✗ {r.get('status', '')}"
    return [
        mark,
        str(r.get("turns", "–")),
        f"{r.get('input_tokens', 0):,} / {r.get('output_tokens', 0):,}",
        f"{r.get('wall_s', 0):.0f} s",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="Messages API base URL (default: Anthropic's API)")
    parser.add_argument("--model", required=True, help="model name sent to the server")
    parser.add_argument("--tasks", help=f"comma-separated task names (default: all {len(TASKS)})")
    parser.add_argument("--modes", default=",".join(MODES), help="codeagent,direct (default: both)")
    parser.add_argument("--max-tokens", type=int, default=1024, help="max_tokens of each request")
    parser.add_argument("--max-steps", type=int, default=6, help="codeagent: model requests per task")
    parser.add_argument("--direct-turns", type=int, default=12, help="direct: model requests per task")
    parser.add_argument("--task-timeout", type=float, default=600, help="seconds per task and mode")
    parser.add_argument("--out", default=str(RESULTS), help="folder for the results")
    args = parser.parse_args(argv)
    # SIGTERM (``kill``, a CI timeout) unwinds like Ctrl-C, so the kernel and its sandboxes are shut down
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    unknown = [n for n in (args.tasks or "").split(",") if n and n not in TASKS_BY_NAME]
    if unknown:
        parser.error(f"unknown task(s): {', '.join(unknown)}; known: {', '.join(TASKS_BY_NAME)}")
    if any(m not in MODES for m in args.modes.split(",")):
        parser.error(f"--modes takes {', '.join(MODES)}")
    out = run(args)
    print(f"\nwrote {out}.md and .json")
    print(out.parent.joinpath(out.name + ".md").read_text())


if __name__ == "__main__":
    main()
