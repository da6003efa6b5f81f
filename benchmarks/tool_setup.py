"""What 1,000 MCP tools cost a run before the script starts: the host building their specs, and the sandbox
installing them (``SandboxKernel.set_tools``), then the first call of one tool from a script.

    python benchmarks/tool_setup.py [-n 5] [--tools 1000] [--out benchmarks/results]

The tools are the catalog of ``benchmarks/tool_search.py`` (as MCP tool objects). Each install gets a changed
set (one tool renamed), so the sandbox installs every time instead of keeping what it has; the figure with an
unchanged set (what #13's caching gives every later run) is measured as well. A real locked-down sandbox.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.tool_search import DATA, catalog_tools
from codeagent.sandbox.host.manager import SandboxKernel
from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.tools.dispatch import ToolDispatcher
from codeagent.tools.registry import ToolRegistry


def ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5)
    parser.add_argument("--tools", type=int, default=1_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    tools = catalog_tools(json.loads((DATA / "tool_catalog.json").read_text()))[: args.tools]

    host: list[float] = []
    for _ in range(args.n):
        started = time.perf_counter()
        specs = [t.spec() for t in tools]
        host.append(time.perf_counter() - started)

    kernel = SandboxKernel(SandboxPolicy()).start()
    handler = ToolDispatcher(ToolRegistry())
    install: list[float] = []
    unchanged: list[float] = []
    first_touch: list[float] = []
    try:
        for i in range(args.n):
            changed: list[dict[str, Any]] = [dict(s) for s in specs]
            changed[0]["name"] = f"renamed_{i}"
            started = time.perf_counter()
            kernel.set_tools(changed)
            install.append(time.perf_counter() - started)
            started = time.perf_counter()
            kernel.set_tools(changed)
            unchanged.append(time.perf_counter() - started)
            # the script's first touch of one tool (attribute access, signature); no call leaves the sandbox
            last = changed[-1]
            code = f"import inspect; inspect.signature({last['namespace']}.{last['name']})"
            started = time.perf_counter()
            result = kernel.execute(code, handler)
            first_touch.append(time.perf_counter() - started)
            assert result.error_name is None, result.output
    finally:
        kernel.shutdown()

    figures = {
        "tools": len(tools),
        "spec_json_bytes": len(json.dumps(specs)),
        "host_specs_ms_median": ms(host),
        "sandbox_install_ms_median": ms(install),
        "sandbox_unchanged_ms_median": ms(unchanged),
        "first_touch_script_ms_median": ms(first_touch),
        "n": args.n,
    }
    print(json.dumps(figures, indent=1))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tool_setup.json").write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
