"""Sandboxes through a Jupyter Kernel Gateway vs on this machine, measured in the same run.

    python benchmarks/gateway.py [-n 5] [--calls 300]

Starts a real jupyter-kernel-gateway on 127.0.0.1 (``$CODEAGENT_TEST_KG`` or one on PATH; see .ci/run for its
venv) and reports medians: sandbox cold start (local vs gateway), a warm pool hand-out, and the round trip of a
no-op tool call from a script (local AF_UNIX bridge vs the gateway's stdin channel). Results go to
benchmarks/results/gateway.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codeagent.sandbox.host.gateway.sandbox import GatewaySandbox
from codeagent.sandbox.host.gateway.settings import GatewaySettings
from codeagent.sandbox.host.manager import SandboxKernel
from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.sandbox.host.pool import SandboxPool
from codeagent.testing.gateway import start_gateway, stop_gateway
from codeagent.tools.dispatch import ToolDispatcher
from codeagent.tools.registry import ToolRegistry, make_tool

RESULTS = Path(__file__).parent / "results" / "gateway.json"

CALLS = """
import time
ts = []
for _ in range({n}):
    t = time.perf_counter()
    noop()
    ts.append(time.perf_counter() - t)
ts.sort()
print(ts[len(ts) // 2] * 1e6, ts[int(len(ts) * 0.99)] * 1e6)
"""


def registry() -> ToolRegistry:
    reg = ToolRegistry()

    def noop() -> None:
        """Does nothing."""

    reg.add(make_tool(noop))
    return reg


def call_latency(sandbox: Any, reg: ToolRegistry, n: int) -> tuple[float, float]:
    sandbox.set_tools([t.spec() for t in reg])
    dispatcher = ToolDispatcher(reg)
    sandbox.execute(CALLS.format(n=20), dispatcher)  # warm-up
    result = sandbox.execute(CALLS.format(n=n), dispatcher)
    median, p99 = (float(x) for x in result.output.split()[:2])
    return median, p99


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=5, help="cold starts of each kind")
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    gateway = start_gateway()
    settings = GatewaySettings(gateway.url, gateway.token)
    policy = SandboxPolicy()
    reg = registry()
    local_starts, gateway_starts = [], []
    try:
        for _ in range(args.n):  # interleaved, so machine load hits both alike
            t = time.perf_counter()
            local = SandboxKernel(policy).start()
            local_starts.append(time.perf_counter() - t)
            t = time.perf_counter()
            remote = GatewaySandbox(policy, settings).start()
            gateway_starts.append(time.perf_counter() - t)
            local.shutdown()
            remote.shutdown()
        pool = SandboxPool(policy, factory=lambda p: GatewaySandbox(p, settings).start()).fill()
        time.sleep(0.1)
        pool.acquire().shutdown()  # waits for the first; the replacement starts now
        time.sleep(max(gateway_starts) + 2)
        t = time.perf_counter()
        warm = pool.acquire()
        handout = time.perf_counter() - t
        pool.close()
        with SandboxKernel(policy) as local:
            local_call = call_latency(local, reg, args.calls)
        gateway_call = call_latency(warm, reg, args.calls)
        warm.shutdown()
    finally:
        stop_gateway(gateway)
    figures = {
        "date": time.strftime("%Y-%m-%d"),
        "local_cold_start_ms": statistics.median(local_starts) * 1e3,
        "gateway_cold_start_ms": statistics.median(gateway_starts) * 1e3,
        "gateway_pool_handout_ms": handout * 1e3,
        "local_noop_call_us": {"median": local_call[0], "p99": local_call[1]},
        "gateway_noop_call_us": {"median": gateway_call[0], "p99": gateway_call[1]},
        "ratio_gateway_to_local_call": gateway_call[0] / local_call[0],
        "n_starts": args.n,
        "n_calls": args.calls,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"| measure (medians; starts n={args.n}, calls n={args.calls}) | local | gateway |")
    print("|---|---:|---:|")
    local_ms, gateway_ms = figures["local_cold_start_ms"], figures["gateway_cold_start_ms"]
    print(f"| sandbox cold start | {local_ms:,.0f} ms | {gateway_ms:,.0f} ms |")
    print(f"| warm pool hand-out | – | {handout * 1e3:.2f} ms |")
    print(
        f"| no-op tool call (median / p99) | {local_call[0]:,.0f} / {local_call[1]:,.0f} µs | "
        f"{gateway_call[0]:,.0f} / {gateway_call[1]:,.0f} µs |"
    )


if __name__ == "__main__":
    main()
