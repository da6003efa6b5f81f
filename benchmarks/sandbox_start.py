"""Sandbox start-up: locked-down cold start vs a plain ipykernel, warm-pool time to first execute, idle RSS.

    python benchmarks/sandbox_start.py [-n 20]

Cold starts are interleaved (plain, locked, plain, locked, …) so both see the same machine state. Each start is
timed to the same point: the kernel answered kernel_info and ran one silent statement.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client import KernelManager

from codeagent.sandbox.host.manager import SandboxKernel
from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.sandbox.host.pool import SandboxPool
from codeagent.tools.dispatch import ToolDispatcher
from codeagent.tools.registry import ToolRegistry

RESULTS = Path(__file__).parent / "results"


def plain_start() -> float:
    """`python -m ipykernel_launcher` over ipc, to kernel_info + one silent execute."""
    run_dir = tempfile.mkdtemp(prefix="plain-")
    km = KernelManager(transport="ipc", kernel_name="python3")
    km.ip = os.path.join(run_dir, "k")
    km.connection_file = os.path.join(run_dir, "kernel.json")
    started = time.perf_counter()
    km.start_kernel(stdout=open(os.devnull, "wb"), stderr=open(os.devnull, "wb"))  # noqa: SIM115
    kc = km.blocking_client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    kc.execute_interactive("pass", silent=True, timeout=30, output_hook=lambda m: None)
    elapsed = time.perf_counter() - started
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    km.cleanup_resources()
    return elapsed


def locked_start() -> tuple[float, SandboxKernel]:
    started = time.perf_counter()
    kernel = SandboxKernel(SandboxPolicy()).start()
    return time.perf_counter() - started, kernel


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _field_kib(path: str, name: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def sandbox_memory_mib(launcher_pid: int) -> tuple[float, float]:
    """(RSS of the ipykernel process, PSS of the whole sandbox tree: launcher, init, kernel, children), MiB."""
    tree, stack = [], [launcher_pid]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(_children(pid))
    kernel = tree[-1] if len(tree) > 1 else launcher_pid  # the deepest process is ipykernel
    rss = _field_kib(f"/proc/{kernel}/status", "VmRSS:")
    pss = sum(_field_kib(f"/proc/{pid}/smaps_rollup", "Pss:") for pid in tree)
    return rss / 1024, pss / 1024


def warm_first_execute(n: int) -> tuple[list[float], list[float]]:
    """From asking the pool for a sandbox: to having it, and to the reply of its first (trivial) execute."""
    pool = SandboxPool(SandboxPolicy(), size=1).fill()
    handler = ToolDispatcher(ToolRegistry())
    acquire, first_execute = [], []
    try:
        for _ in range(n):
            for thread in list(pool._starting):  # wait until the pool's sandbox is warm
                thread.join()
            started = time.perf_counter()
            kernel = pool.acquire()
            got = time.perf_counter()
            kernel.execute("1", handler)
            done = time.perf_counter()
            acquire.append(got - started)
            first_execute.append(done - started)
            kernel.shutdown()
    finally:
        pool.close()
    return acquire, first_execute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="starts of each kind (default 20)")
    args = parser.parse_args()

    probe = SandboxKernel(SandboxPolicy()).start()
    layers = probe.layers
    probe.shutdown()
    plain, locked, rss, pss = [], [], [], []
    for _ in range(args.n):
        plain.append(plain_start())
        seconds, kernel = locked_start()
        locked.append(seconds)
        time.sleep(0.5)  # idle
        kernel_rss, tree_pss = sandbox_memory_mib(kernel.km.provisioner.process.pid)  # type: ignore[union-attr]
        rss.append(kernel_rss)
        pss.append(tree_pss)
        kernel.shutdown()
    warm_acquire, warm_execute = warm_first_execute(max(5, args.n // 2))

    result = {
        "n": args.n,
        "layers": layers,
        "plain_start_ms_median": statistics.median(plain) * 1000,
        "locked_start_ms_median": statistics.median(locked) * 1000,
        "ratio_locked_over_plain": statistics.median(locked) / statistics.median(plain),
        "warm_acquire_ms_median": statistics.median(warm_acquire) * 1000,
        "warm_first_execute_ms_median": statistics.median(warm_execute) * 1000,
        "idle_kernel_rss_mib_median": statistics.median(rss),
        "idle_tree_pss_mib_median": statistics.median(pss),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sandbox_start.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"layers: {', '.join(layers) or 'none'}")
    print(f"{'measure':<42}{'median':>12}")
    print(f"{'plain ipykernel cold start':<42}{result['plain_start_ms_median']:>9.0f} ms")
    print(f"{'locked-down sandbox cold start':<42}{result['locked_start_ms_median']:>9.0f} ms")
    print(f"{'ratio locked / plain (target ≤ 1.10)':<42}{result['ratio_locked_over_plain']:>12.2f}")
    print(f"{'warm pool: acquire a started sandbox':<42}{result['warm_acquire_ms_median']:>9.2f} ms")
    print(f"{'warm pool: acquire → first execute done':<42}{result['warm_first_execute_ms_median']:>9.1f} ms")
    print(f"{'idle RSS of the sandbox ipykernel':<42}{result['idle_kernel_rss_mib_median']:>8.1f} MiB")
    print(f"{'idle PSS of the whole sandbox tree':<42}{result['idle_tree_pss_mib_median']:>8.1f} MiB")


if __name__ == "__main__":
    main()
