"""A sandbox never outlives the notebook kernel that started it, however that kernel ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

HOST = textwrap.dedent(
    """
    import sys, time
    from codeagent.sandbox.kernel import SandboxKernel
    from codeagent.sandbox.pool import SandboxPool
    from codeagent.sandbox.policy import SandboxPolicy
    mode = sys.argv[1]
    pool = SandboxPool(SandboxPolicy(mode=mode), size=1).fill()   # started from a pool thread that ends
    kernel = pool.acquire()
    for t in list(pool._starting):
        t.join()
    pids = [kernel.km.provisioner.process.pid] + [k.km.provisioner.process.pid for k in pool._ready]
    print(" ".join(map(str, pids)), flush=True)
    time.sleep(600)
    """
)


def _descendants(pid: int) -> list[int]:
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        out.extend(int(c) for c in children)
        stack.extend(int(c) for c in children)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("mode", ["auto", "unsandboxed"])
def test_sandboxes_die_when_the_host_is_killed(mode: str) -> None:
    host = subprocess.Popen([sys.executable, "-c", HOST, mode], stdout=subprocess.PIPE, text=True)
    try:
        launchers = [int(p) for p in host.stdout.readline().split()]  # type: ignore[union-attr]
        assert len(launchers) == 2
        tree = [p for launcher in launchers for p in [launcher, *_descendants(launcher)]]
        assert all(_alive(p) for p in tree)
        os.kill(host.pid, signal.SIGKILL)  # no atexit, no shutdown: only the sandbox's own watch can act
        host.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(p) for p in tree):
            time.sleep(0.1)
        assert [p for p in tree if _alive(p)] == []
    finally:
        if host.poll() is None:
            host.kill()


def test_sandboxes_are_shut_down_when_the_host_exits_normally() -> None:
    code = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance(); ip.run_line_magic('load_ext', 'codeagent')\n"
        "m = ip.magics_manager.registry['CodeAgent']\n"
        "k = m.session.sandbox(m.policy())\n"
        "print(k.km.provisioner.process.pid, flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    launcher = int(out.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(launcher):
        time.sleep(0.1)
    assert not _alive(launcher)
