"""What 1,000 MCP tools cost a run before the script starts: the host building their specs, and the sandbox
installing them (``SandboxKernel.set_tools``), then the first call of one tool from a script.

    python benchmarks/tool_setup.py [-n 5] [--tools 1000] [--gateway] [--out benchmarks/results]

The tools are the catalog of ``benchmarks/tool_search.py`` (as MCP tool objects). Each install gets a changed
set (one tool renamed), so the sandbox installs every time instead of keeping what it has; the figure with an
unchanged set (what #13's caching gives every later run) is measured as well, and so is the former install with
the specs as a plain JSON literal (the baseline, in the same run). A real locked-down sandbox; ``--gateway``: a
sandbox kernel behind a real Jupyter Kernel Gateway on 127.0.0.1 (``codeagent.testing.gateway``, which needs
``$CODEAGENT_TEST_KG``), with tool calls on the kernel's stdin channel.
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
from codeagent.sandbox.host.gateway.sandbox import STDIN_ADDRESS, GatewaySandbox
from codeagent.sandbox.host.gateway.settings import GatewaySettings
from codeagent.sandbox.host.manager import SandboxKernel
from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.testing.gateway import start_gateway, stop_gateway
from codeagent.tools.dispatch import ToolDispatcher
from codeagent.tools.registry import ToolRegistry

Sandbox = SandboxKernel | GatewaySandbox


def ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 2)


def json_install(kernel: Sandbox, specs: list[dict[str, Any]]) -> None:
    """The install as it was before packing: the specs as one JSON string literal in the setup code."""
    address = STDIN_ADDRESS if isinstance(kernel, GatewaySandbox) else kernel.bridge.address
    kernel._run_silent(
        "import codeagent.sandbox.guest.runtime as _ca_runtime\n"
        f"_ca_runtime.install({address!r}, {kernel._token!r}, "
        f"__import__('json').loads({json.dumps(json.dumps(specs))}), globals(), "
        f"max_request_bytes={kernel.bridge.max_request_bytes})\n"
        "del _ca_runtime\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5)
    parser.add_argument("--tools", type=int, default=1_000)
    parser.add_argument("--gateway", action="store_true", help="a sandbox behind a real Jupyter Kernel Gateway")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    tools = catalog_tools(json.loads((DATA / "tool_catalog.json").read_text()))[: args.tools]

    host: list[float] = []
    for _ in range(args.n):
        started = time.perf_counter()
        specs = [t.spec() for t in tools]
        host.append(time.perf_counter() - started)

    gateway = start_gateway() if args.gateway else None
    kernel: Sandbox = (
        GatewaySandbox(SandboxPolicy(), GatewaySettings(gateway.url, gateway.token))
        if gateway
        else SandboxKernel(SandboxPolicy())
    )
    handler = ToolDispatcher(ToolRegistry())
    install: list[float] = []
    plain_json: list[float] = []
    unchanged: list[float] = []
    first_touch: list[float] = []
    try:
        kernel.start()
        for i in range(args.n):
            changed: list[dict[str, Any]] = [dict(s) for s in specs]
            changed[0]["name"] = f"renamed_{i}"
            started = time.perf_counter()
            kernel.set_tools(changed)
            install.append(time.perf_counter() - started)
            started = time.perf_counter()
            json_install(kernel, changed)
            plain_json.append(time.perf_counter() - started)
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
        if gateway:
            stop_gateway(gateway)

    figures = {
        "sandbox": "behind a Jupyter Kernel Gateway" if args.gateway else "local",
        "tools": len(tools),
        "spec_json_bytes": len(json.dumps(specs)),
        "host_specs_ms_median": ms(host),
        "sandbox_install_ms_median": ms(install),
        "sandbox_unchanged_ms_median": ms(unchanged),
        "sandbox_install_plain_json_ms_median": ms(plain_json),
        "first_touch_script_ms_median": ms(first_touch),
        "n": args.n,
    }
    print(json.dumps(figures, indent=1))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / ("tool_setup_gateway.json" if args.gateway else "tool_setup.json")).write_text(
        json.dumps(figures, indent=1) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
