"""Resource attacks: fork and memory bombs, endless loops, huge numbers, output floods, stray threads."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator

import pytest

from codeagent.sandbox.host.manager import SandboxKernel
from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.testing.messages_server import MessagesServer
from tests.security.attack import AttackRunner, HostTools, tight_policy
from tests.security.hostside import HostGuard, descendants, is_running, rss_kib, wait_until

NEXT_CALL = "print(6 * 7)"


def assert_next_call_works(attack: AttackRunner) -> None:
    a = attack(NEXT_CALL, prelude=False)
    assert a.status == "ok" and a.output.strip() == "42", f"the sandbox did not recover: {a.status} {a.output}"


@pytest.fixture
def bomb_sandbox(host_secrets: object) -> Iterator[SandboxKernel]:
    sb = SandboxKernel(tight_policy()).start()
    yield sb
    sb.shutdown()


def strays(sandbox: SandboxKernel) -> list[int]:
    """Processes of the sandbox other than its launcher, init and kernel (what a script left behind)."""
    return [p for p in descendants(sandbox.launcher_pid()) if p not in sandbox._trusted and is_running(p)]


#: Children that would outlive any test (sleeping 60 s) unless the end of their script kills them.
FORK_BOMB = (
    "import time\n"
    "forked = []\n"
    "def bomb():\n"
    "    while len(forked) < 400:\n"
    "        pid = os.fork()\n"
    "        if pid == 0:\n"
    "            os.setsid()  # out of the kernel's process group and session\n"
    "            time.sleep(60)\n"
    "            os._exit(0)\n"
    "        forked.append(pid)\n"
    "probe('fork_bomb', bomb)\n"
    "print('FORKED', len(forked))\n"
)


@pytest.mark.slow
def test_fork_bomb(bomb_sandbox: SandboxKernel, host: HostGuard) -> None:
    policy: SandboxPolicy = bomb_sandbox.policy
    with MessagesServer() as server:
        attack = AttackRunner(bomb_sandbox, server, HostTools())
        a = attack(FORK_BOMB)
        a.assert_denied("fork_bomb", {"EAGAIN"}, excs={"BlockingIOError"})
        forked = int(a.output.split("FORKED ", 1)[1].split()[0])
        assert forked < policy.max_processes, f"{forked} processes forked with max_processes={policy.max_processes}"
        assert strays(bomb_sandbox) == [], "the script ended but the processes it started live on"
        # The host stays responsive: it can start processes, and the notebook answers.
        assert subprocess.run(["true"], timeout=10).returncode == 0
        host.assert_unaffected()
        assert_next_call_works(attack)
    launcher = bomb_sandbox.launcher_pid()
    tree = [launcher, *descendants(launcher)]
    bomb_sandbox.shutdown()
    assert wait_until(lambda: not any(is_running(p) for p in tree), timeout=10), "bomb processes outlived it"


def test_fork_bomb_then_a_working_call_at_once(bomb_sandbox: SandboxKernel, host: HostGuard) -> None:
    """Regression: the bomb's children (and their zombies) used to eat the process budget of the next call."""
    with MessagesServer() as server:
        attack = AttackRunner(bomb_sandbox, server, HostTools())
        for _ in range(2):
            a = attack(FORK_BOMB)
            a.assert_denied("fork_bomb", {"EAGAIN"}, excs={"BlockingIOError"})
            # at once, while the children would still be sleeping: the next call can start threads and processes
            after = attack(
                "import subprocess, threading\n"
                "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
                "print(subprocess.run(['true']).returncode, 6 * 7)\n",
                prelude=False,
            )
            assert after.status == "ok" and after.output.split() == ["0", "42"], after.output
    assert bomb_sandbox.restarts == 0, "cleaning up after a fork bomb should not need a restart"
    host.assert_unaffected()


def test_a_fork_leaves_no_thread_for_the_next_script(bomb_sandbox: SandboxKernel) -> None:
    """Regression: IPython >= 9 stops its history-saving thread before every fork and starts a new one in the
    next script, which the end-of-script check took for a thread left running (a restart after any fork).
    The sandbox keeps its history in memory: no such thread at all."""
    with MessagesServer() as server:
        attack = AttackRunner(bomb_sandbox, server, HostTools())
        forked = attack("pid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)\nprint('forked')\n")
        assert forked.output.strip().endswith("forked"), forked.output
        after = attack("import threading\nprint(sorted(t.name for t in threading.enumerate()))\n", prelude=False)
        assert after.status == "ok" and "IPythonHistorySavingThread" not in after.output, after.output
    assert bomb_sandbox.restarts == 0


def test_thread_bomb_then_a_working_call(bomb_sandbox: SandboxKernel, host: HostGuard) -> None:
    """Threads cannot be killed one by one: a script that leaves the process budget full of threads gets
    its kernel restarted, and the next call works."""
    with MessagesServer() as server:
        attack = AttackRunner(bomb_sandbox, server, HostTools())
        a = attack(
            "import threading, time\n"
            "started = []\n"
            "def bomb():\n"
            "    while len(started) < 400:\n"
            "        t = threading.Thread(target=time.sleep, args=(60,), daemon=True)\n"
            "        t.start()\n"
            "        started.append(t)\n"
            "probe('thread_bomb', bomb)\n"
        )
        a.assert_denied("thread_bomb", excs={"RuntimeError"})
        assert "SandboxRestarted" in a.output, a.output
        assert_next_call_works(attack)
    host.assert_unaffected()


@pytest.mark.slow
def test_memory_bomb(host: HostGuard) -> None:
    """Touched memory until MemoryError: the address-space limit stops it (a small one: page faults are slow)."""
    policy = tight_policy(memory_mb=512, cpu_seconds=5, wall_seconds=8)
    with SandboxKernel(policy) as sb, MessagesServer() as server:
        attack = AttackRunner(sb, server, HostTools())
        a = attack(
            "import mmap\n"
            "chunks = []\n"
            "def bomb():\n"
            "    while len(chunks) < 64:  # stops at 2 GiB even if nothing else does\n"
            "        chunks.append(bytearray(32 << 20))\n"
            "    return len(chunks)\n"
            "probe('memory_bomb', bomb)\n"
            "print('ALLOCATED_MB', len(chunks) * 32)\n"
            "chunks.clear()\n"
            "probe('huge_mmap', lambda: mmap.mmap(-1, 8 << 30).close())  # address space only, never touched\n"
        )
        a.assert_denied("memory_bomb", excs={"MemoryError"})
        allocated = int(a.output.split("ALLOCATED_MB ", 1)[1].split()[0])
        assert allocated < policy.memory_mb, f"{allocated} MiB allocated with memory_mb={policy.memory_mb}"
        a.assert_denied("huge_mmap", {"ENOMEM"})
        assert_next_call_works(attack)
    host.assert_unaffected()


def test_endless_loop_hits_the_cpu_budget(attack: AttackRunner, host: HostGuard) -> None:
    a = attack("while True:\n    pass\n", prelude=False)
    assert a.status in ("error", "timeout"), a.status
    assert "CPUBudgetExceeded" in a.output or "TimeoutError" in a.output, a.output
    assert_next_call_works(attack)
    host.assert_unaffected()


def test_huge_power_is_stopped(attack: AttackRunner, host: HostGuard) -> None:
    """10**10**8 would take hours; CPython's long power checks for signals, so the CPU budget stops it."""
    a = attack("x = 10**10**8\nprint('computed', x % 7)\n", prelude=False)
    assert not re.search(r"^computed \d", a.output, re.MULTILINE), "the number was computed"
    assert a.status in ("error", "timeout", "crashed"), a.status
    assert any(w in a.output for w in ("CPUBudgetExceeded", "TimeoutError", "restarted")), a.output
    assert_next_call_works(attack)
    host.assert_unaffected()


@pytest.mark.slow
def test_uninterruptible_c_call_is_killed(attack: AttackRunner, host: HostGuard, sandbox: SandboxKernel) -> None:
    """A long call into C (OpenSSL's PBKDF2) defers every Python signal handler: the host must kill the kernel."""
    restarts = sandbox.restarts
    a = attack(
        "import hashlib\nsecret_state = 1\nhashlib.pbkdf2_hmac('sha256', b'x', b'y', 10**9)\nprint('finished')\n",
        prelude=False,
    )
    assert "finished" not in a.output.replace("print('finished')", "")
    assert a.status == "timeout", a.status
    assert "killed and restarted" in a.output, a.output
    assert sandbox.restarts == restarts + 1
    after = attack("print('secret_state' in globals())", prelude=False)
    assert after.status == "ok" and after.output.strip() == "False", after.output
    host.assert_unaffected()


@pytest.mark.slow
def test_ignoring_sigint_and_sigxcpu(attack: AttackRunner, host: HostGuard, sandbox: SandboxKernel) -> None:
    restarts = sandbox.restarts
    a = attack(
        "import signal\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGXCPU, signal.SIG_IGN)\n"
        "secret_state = 'set before the loop'\n"
        "while True:\n"
        "    pass\n",
        prelude=False,
    )
    assert a.status == "timeout", a.status
    assert "killed and restarted" in a.output, a.output
    assert sandbox.restarts == restarts + 1
    after = attack("print('secret_state' in globals())", prelude=False)
    assert after.status == "ok" and after.output.strip() == "False", after.output
    host.assert_unaffected()


def test_output_flood_in_one_message(attack: AttackRunner, host: HostGuard, policy: SandboxPolicy) -> None:
    before = rss_kib()
    a = attack("import sys\nsys.stdout.write('A' * 40_000_000)\nsys.stdout.flush()\n", prelude=False)
    grown_mib = (rss_kib() - before) / 1024
    assert len(a.output) <= policy.output_chars + 200, len(a.output)
    assert "truncated" in a.output or "dropped" in a.output
    run = a.result.scripts[0]
    assert run.output_chars >= 40_000_000, "the host should count what it dropped"
    assert grown_mib < 200, f"the host kept {grown_mib:.0f} MiB after a 40 MB flood"
    host.assert_unaffected()


def test_output_flood_many_lines(attack: AttackRunner, host: HostGuard, policy: SandboxPolicy) -> None:
    a = attack("for i in range(50_000):\n    print('line', i)\n", prelude=False)
    assert a.status == "ok", a.output
    assert len(a.output) <= policy.output_chars + 200
    assert "line 0\n" in a.output, "the head of the output is kept"
    assert a.result.scripts[0].output_chars > policy.output_hard_bytes, "the host counts what it dropped"
    host.assert_unaffected()


def test_display_flood(attack: AttackRunner, host: HostGuard, policy: SandboxPolicy) -> None:
    """Rich outputs are output too: 50 displays of 4 MB each must not all be kept on the host."""
    a = attack(
        "from IPython.display import display\n"
        "for i in range(50):\n"
        "    display({'text/plain': 'x', 'text/html': '<b>' + 'A' * 4_000_000 + '</b>'}, raw=True)\n",
        prelude=False,
    )
    kept = sum(len(json.dumps(d)) for d in a.result.scripts[0].displays)
    assert kept <= policy.output_hard_bytes * 1.1, f"the host kept {kept:,} bytes of display data"
    assert len(a.output) <= policy.output_chars + 200
    host.assert_unaffected()


def test_file_size_limit(attack: AttackRunner, host: HostGuard, policy: SandboxPolicy, sandbox: SandboxKernel) -> None:
    size = (policy.max_file_mb + 1) << 20
    a = attack(
        f"probe('big_file', lambda: open('big.bin', 'wb').write(b'x' * {size}))\n"
        "print('SIZE', os.path.getsize('big.bin'))\n"
        "os.remove('big.bin')\n"
    )
    a.assert_denied("big_file", {"EFBIG"})
    assert int(a.output.split("SIZE ", 1)[1].split()[0]) <= policy.max_file_mb << 20
    host.assert_unaffected()


def test_descriptor_exhaustion(attack: AttackRunner, host: HostGuard, policy: SandboxPolicy) -> None:
    a = attack(
        "held = []\n"
        "def exhaust():\n"
        "    while len(held) < 5000:\n"
        "        held.append(open('/dev/null'))\n"
        "probe('fd_exhaustion', exhaust)\n"
        "print('HELD', len(held))\n"
        "for f in held:\n"
        "    f.close()\n"
    )
    a.assert_denied("fd_exhaustion", {"EMFILE"})
    assert int(a.output.split("HELD ", 1)[1].split()[0]) < policy.max_open_files
    assert_next_call_works(attack)
    host.assert_unaffected()


def test_thread_outliving_its_script(attack: AttackRunner, host: HostGuard, sandbox: SandboxKernel) -> None:
    target = str(host.canaries.forbidden["thread"])
    try:
        a = attack(
            "import threading, time\n"
            "def chatter():\n"
            "    while True:\n"
            "        print('THREAD-LEAK', flush=True)\n"
            "        try:\n"
            f"            open({target!r}, 'w').write('x')\n"
            "        except OSError:\n"
            "            pass\n"
            "        time.sleep(0.05)\n"
            "threading.Thread(target=chatter, daemon=True).start()\n"
            "time.sleep(0.2)\n"
            "print('@@ started ALLOWED')\n"
        )
        assert a.probe("started").outcome == "ALLOWED"
        second = attack("import time\ntime.sleep(1)\nprint('second run')\n", prelude=False)
        assert second.status == "ok"
        assert second.output.strip() == "second run", f"a stray thread wrote into the next run: {second.output!r}"
        host.assert_unaffected()
    finally:
        sandbox.restart()  # stop the thread for the other tests


def test_thread_calling_tools_after_its_script(attack: AttackRunner, host: HostGuard, sandbox: SandboxKernel) -> None:
    """A thread left behind keeps calling a host tool: the host must not run those calls in a later script."""
    tools = attack.tools
    try:
        a = attack(
            "import threading, time\n"
            "def caller():\n"
            "    while True:\n"
            "        try:\n"
            "            lookup(1)\n"
            "        except Exception:\n"
            "            pass\n"
            "        time.sleep(0.05)\n"
            "threading.Thread(target=caller, daemon=True).start()\n"
            "time.sleep(0.2)\n",
        )
        assert a.status == "ok", a.output
        during_first = len(tools.calls)
        assert during_first > 0, "the thread never reached the tool: the test would prove nothing"
        second = attack("import time\ntime.sleep(1)\nprint('second run')\n", prelude=False)
        assert second.output.strip() == "second run"
        stray = len(tools.calls) - during_first
        assert stray == 0, f"the host ran {stray} tool calls from a thread of a finished script"
        assert second.result.scripts[0].tool_calls == []
        host.assert_unaffected()
    finally:
        sandbox.restart()
