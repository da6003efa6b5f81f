"""MCP servers die with the notebook kernel: on shutdown, on exit and when the kernel is SIGKILLed."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import pytest
from jupyter_client.manager import start_new_kernel

from tests.mcp_servers.conftest import HOSTILE, TIME_SERVER
from tests.security.hostside import descendants, is_running, wait_until

START_SERVERS = f"""
from codeagent import add_mcp_server
add_mcp_server("time", command={TIME_SERVER[0]!r}, args={TIME_SERVER[1:]!r}, start=True)
add_mcp_server("spawner", command={sys.executable!r}, args=[{HOSTILE!r}, "spawn"], start=True)
import os
print(os.getpid())
"""


def run_cell(kc: Any, code: str) -> str:
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))

    reply = kc.execute_interactive(code, timeout=90, output_hook=hook)
    assert reply["content"]["status"] == "ok", "".join(out)
    return "".join(out)


def sleepers() -> list[int]:
    """The `sleep 600/601` children the spawning server started (wherever they were reparented)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read() in (b"sleep\x00600\x00", b"sleep\x00601\x00"):
                        found.append(int(pid))
            except OSError:
                pass
    return found


@pytest.mark.slow
def test_servers_die_when_the_kernel_is_killed() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    try:
        kernel_pid = int(run_cell(kc, START_SERVERS).split()[-1])
        tree = descendants(kernel_pid)
        assert len(tree) >= 4  # two leashes, two servers (and the spawner's children)
        assert len(sleepers()) == 2
        os.kill(kernel_pid, signal.SIGKILL)  # no atexit, no shutdown: only the leash's watch can act
        wait_until(lambda: not any(is_running(p) for p in tree) and not sleepers(), timeout=15)
        assert [p for p in tree if is_running(p)] == [] and sleepers() == []
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_servers_stop_with_the_kernel_shutdown() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    try:
        kernel_pid = int(run_cell(kc, START_SERVERS).split()[-1])
        tree = descendants(kernel_pid)
        assert len(tree) >= 4
    finally:
        kc.stop_channels()
        km.shutdown_kernel()
    wait_until(lambda: not any(is_running(p) for p in tree) and not sleepers(), timeout=20)
    assert [p for p in tree if is_running(p)] == [] and sleepers() == []
