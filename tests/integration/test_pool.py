"""The warm pool hands out started sandboxes and replaces them in the background."""

from __future__ import annotations

from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.sandbox.host.pool import SandboxPool
from codeagent.tools.dispatch import ToolDispatcher
from codeagent.tools.registry import ToolRegistry


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


def test_closed_pool_shuts_down_what_it_started() -> None:
    pool = SandboxPool(SandboxPolicy(), size=2).fill()
    pool.close()
    assert pool._ready == type(pool._ready)()
