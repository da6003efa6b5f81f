"""The warm pool hands out started sandboxes and replaces them in the background."""

from __future__ import annotations

import tempfile
from pathlib import Path

from codeagent.sandbox.host.jupyter import process_id
from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.sandbox.host.pool import SandboxPool
from codeagent.tools.dispatch import ToolDispatcher
from codeagent.tools.registry import ToolRegistry
from tests.isolation import alive, command_line, stray_processes


def test_pool_hands_out_warm_sandboxes_and_refills() -> None:
    pool = SandboxPool(SandboxPolicy(), size=1).fill()
    handed: list = []
    try:
        first = pool.acquire()
        handed.append(first)
        assert first.is_alive()
        out = first.execute("print(40 + 2)", ToolDispatcher(ToolRegistry()))
        assert out.output.strip() == "42"
        second = pool.acquire()  # the replacement started in the background while the first was in use
        handed.append(second)
        assert second is not first and second.is_alive() and second.run_dir != first.run_dir
    finally:
        for kernel in handed:
            kernel.shutdown()
        pool.close()
    assert not first.is_alive() and not second.is_alive()


def _sandboxes() -> tuple[set[str], set[int]]:
    """Run folders in the temporary directory, and launcher processes below this one."""
    folders = {str(p) for p in Path(tempfile.gettempdir()).glob("codeagent-*")}
    return folders, {p for p in stray_processes(Path("/nonexistent")) if "codeagent.sandbox.guest" in command_line(p)}


def test_closed_pool_shuts_down_what_it_started() -> None:
    before = _sandboxes()
    pool = SandboxPool(SandboxPolicy(), size=2).fill()
    pool.close()  # while both are still starting: close waits for them, then shuts them down
    assert _sandboxes() == before

    pool = SandboxPool(SandboxPolicy(), size=2).fill()
    for thread in list(pool._starting):
        thread.join()
    started = list(pool._ready)
    assert len(started) == 2 and all(k.is_alive() for k in started)
    pids = [process_id(k.km) for k in started]
    assert _sandboxes() != before
    pool.close()
    assert _sandboxes() == before
    assert not any(k.is_alive() for k in started)
    assert None not in pids and not any(alive(pid) for pid in pids if pid is not None)
