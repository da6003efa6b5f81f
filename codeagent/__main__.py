"""``python -m codeagent demo``: the quickstart notebook, run offline on its cassette in a real kernel."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from codeagent.testing import serve

NOTEBOOK = "quickstart.ipynb"
CASSETTE = "quickstart.cassette.json"
MARKER = "codeagent-demo-summary:"
#: Run after the notebook's last cell (not saved): the quickstart keeps its result in ``result``.
PROBE = f"""
import json as _json
print({MARKER!r} + _json.dumps({{
    "question": result.prompt, "answer": result.answer, "status": result.status, "error": result.error,
    "replayed": result.replayed, "scripts": len(result.scripts), "tool_calls": len(result.tool_calls),
    "tool_result_chars": result.tool_result_chars, "model_saw_chars": result.model_saw_chars,
}}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=program_name(), description="codeagent: programmatic tool calling for Jupyter."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo_parser = commands.add_parser(
        "demo",
        help="run the quickstart notebook offline on its recorded model turns",
        description=(
            "Run the quickstart notebook in a real kernel with nbclient, replaying the model's turns from its "
            "cassette (no API key, no network; the scripts really run in the sandbox against the real tools). "
            "Prints the answer and a one-line summary, and writes the executed notebook and an HTML export."
        ),
    )
    demo_parser.add_argument("--out", help=f"output directory (default: {default_demo_dir()}, printed at the end)")
    demo_parser.add_argument("--timeout", type=int, default=600, help="seconds one cell may run (default: 600)")
    serve_parser = commands.add_parser(
        "serve",
        help="serve the scripted Messages API on 127.0.0.1 (try %%codeagent with no key and no model)",
        description=serve.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_arguments(serve_parser)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(Path(args.out) if args.out else default_demo_dir(), timeout=args.timeout)
    if args.command == "serve":
        return serve.run(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


def program_name() -> str:
    """``codeagent`` when run as the installed command, else ``python -m codeagent``."""
    return "codeagent" if Path(sys.argv[0]).name == "codeagent" else "python -m codeagent"


def default_demo_dir() -> Path:
    """Where the demo writes by default: the user's cache folder (never the current directory, which may be a
    checkout)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codeagent" / "demo"


def demo(out: Path, *, timeout: int = 600) -> int:
    """Run the packaged quickstart in ``out``; print the answer and summary. Returns the exit status."""
    import nbformat
    from nbclient.exceptions import CellExecutionError

    from codeagent.agent.cassette import Cassette
    from codeagent.examples.runner import run_notebook

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    examples = resources.files("codeagent.examples")
    with resources.as_file(examples / NOTEBOOK) as notebook, resources.as_file(examples / CASSETTE) as cassette:
        shutil.copyfile(cassette, out / CASSETTE)
        source = Cassette.load(out / CASSETTE).source
        print(
            f"codeagent demo: {NOTEBOOK}, model turns replayed from {CASSETTE} ({source}); writing to {out}; running…",
            flush=True,
        )
        with tempfile.TemporaryFile("w+") as kernel_log:  # the kernel's start-up chatter, shown on failure
            try:
                executed, probe_outputs = run_notebook(
                    notebook, workdir=out, timeout=timeout, extra_code=PROBE, kernel_stderr=kernel_log
                )
            except (CellExecutionError, RuntimeError) as e:
                kernel_log.seek(0)
                print(f"codeagent demo: the notebook failed:\n{e}\n{kernel_log.read()}", file=sys.stderr)
                return 1
    nbformat.write(executed, out / NOTEBOOK)
    summary = _probe_summary(probe_outputs)
    if summary is None:
        print("codeagent demo: the notebook ran but left no result to report.", file=sys.stderr)
        return 1
    print(f"\nQ: {summary['question']}\n")
    print(summary["answer"] or f"[{summary['status']}] {summary['error']}")
    print("\n" + summary_line(summary))
    html_path = out / NOTEBOOK.replace(".ipynb", ".html")
    try:
        html_path.write_text(export_html(executed), encoding="utf-8")
    except Exception as e:  # nbconvert's templates missing or broken: the notebook itself is written
        print(f"\nwrote {out / NOTEBOOK}; the HTML export failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"\nwrote {out / NOTEBOOK} and {html_path}")
    return 0 if summary["status"] == "done" else 1


def export_html(notebook: Any) -> str:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(notebook)
    return body


def _probe_summary(outputs: list[Any]) -> dict[str, Any] | None:
    for output in outputs:
        for line in str(output.get("text", "")).splitlines():
            if line.startswith(MARKER):
                return json.loads(line[len(MARKER) :])
    return None


def summary_line(s: dict[str, Any]) -> str:
    """One line: tool calls, and what the tools returned vs what the model saw (characters and tokens)."""
    from codeagent.agent.tokens import CHARS_PER_TOKEN, tokens_for_chars

    returned, saw = s["tool_result_chars"], s["model_saw_chars"]
    ratio = f", {returned / saw:,.0f}x less" if saw else ""
    return (
        f"{s['tool_calls']} tool calls in {s['scripts']} script(s) · the tools returned {returned:,} chars "
        f"(~{tokens_for_chars(returned):,} tokens) · the model saw {saw:,} chars (~{tokens_for_chars(saw):,} tokens)"
        f"{ratio}"
        f"{' · replayed from cassette' if s['replayed'] else ''} · tokens estimated at {CHARS_PER_TOKEN} chars/token"
    )


if __name__ == "__main__":
    sys.exit(main())
