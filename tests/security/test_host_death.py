"""A sandbox never outlives the notebook kernel that started it, however that kernel ends."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap

import pytest

from tests.security.hostside import descendants, is_running, wait_until

HOST = textwrap.dedent(
    """
    import os, sys, time
    from codeagent.sandbox.host.manager import SandboxKernel
    from codeagent.sandbox.host.pool import SandboxPool
    from codeagent.sandbox.host.policy import SandboxPolicy
    mode = sys.argv[1]
    opt_ins = {name: os.environ.get(f"CODEAGENT_SECURITY_{name.upper()}") == "1"
               for name in ("allow_root", "allow_no_seccomp")}  # the platform matrix's opt-in modes
    pool = SandboxPool(SandboxPolicy(mode=mode, **opt_ins), size=1).fill()   # started from a pool thread that ends
    kernel = pool.acquire()
    for t in list(pool._starting):
        t.join()
    pids = [kernel.km.provisioner.process.pid] + [k.km.provisioner.process.pid for k in pool._ready]
    print(" ".join(map(str, pids)), flush=True)
    time.sleep(600)
    """
)


@pytest.mark.parametrize("mode", ["auto", "unsandboxed"])
def test_sandboxes_die_when_the_host_is_killed(mode: str) -> None:
    # A killed host cannot remove its sandboxes' run folders: they go to a folder of their own, removed below
    # (short: the bridge socket's path must fit in sun_path).
    folder = tempfile.mkdtemp(prefix="killed-")
    os.chmod(folder, 0o755)  # a root host's sandbox uid must reach its run folder when there is no mount namespace
    env = {**os.environ, "TMPDIR": folder}
    host = subprocess.Popen([sys.executable, "-c", HOST, mode], stdout=subprocess.PIPE, text=True, env=env)
    try:
        launchers = [int(p) for p in host.stdout.readline().split()]  # type: ignore[union-attr]
        assert len(launchers) == 2
        tree = [p for launcher in launchers for p in [launcher, *descendants(launcher)]]
        assert all(is_running(p) for p in tree)
        os.kill(host.pid, signal.SIGKILL)  # no atexit, no shutdown: only the sandbox's own watch can act
        host.wait()
        wait_until(lambda: not any(is_running(p) for p in tree), timeout=15)
        assert [p for p in tree if is_running(p)] == []
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        shutil.rmtree(folder, ignore_errors=True)


def test_sandboxes_are_shut_down_when_the_host_exits_normally() -> None:
    code = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance(); ip.run_line_magic('load_ext', 'codeagent')\n"
        "m = ip.magics_manager.registry['CodeAgent']\n"
        "import os\n"
        "m.sandbox_allow_root = os.environ.get('CODEAGENT_SECURITY_ALLOW_ROOT') == '1'\n"
        "m.sandbox_allow_no_seccomp = os.environ.get('CODEAGENT_SECURITY_ALLOW_NO_SECCOMP') == '1'\n"
        "k = m.session.sandbox(m.policy())\n"
        "print(k.km.provisioner.process.pid, flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    launcher = int(out.stdout.split()[-1])
    wait_until(lambda: not is_running(launcher), timeout=10)
    assert not is_running(launcher)
