"""Unix sockets of the host's user, and the tool bridge under the lock that keeps the sandbox from them.

Without a user namespace the sandbox sees the host's file system; a socket is reachable by path whenever its
file mode lets the sandbox's uid write it, so the kernel refuses ``socket()`` once its bridge connections are
open (``seccomp_filter.lock_shared_host``). These tests hold in every mode; the platform matrix runs them in
the modes without user namespaces.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator

import pytest

from tests.security.attack import UNIX_DENIED, AttackRunner, HostTools
from tests.security.hostside import HostGuard
from tests.security.listeners import Listener


@pytest.fixture
def private_socket() -> Iterator[Listener]:
    """A 0600 socket in a 0700 directory of the notebook's own user (like ``$XDG_RUNTIME_DIR/bus``)."""
    directory = tempfile.mkdtemp(prefix="ca-private-", dir="/tmp")  # 0700
    listener = Listener("private", socket.AF_UNIX, socket.SOCK_STREAM, os.path.join(directory, "bus")).start()
    os.chmod(str(listener.address), 0o600)
    yield listener
    listener.stop()
    os.rmdir(directory)


def test_private_socket_of_the_same_user(attack: AttackRunner, host: HostGuard, private_socket: Listener) -> None:
    a = attack(
        "import socket\n"
        "def connect():\n"
        "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "    s.settimeout(1)\n"
        f"    s.connect({private_socket.address!r})\n"
        "    return s.recv(100)\n"
        "probe('private_socket', connect)\n"
        "def datagram():\n"
        "    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        f"    s.sendto(b'x', {private_socket.address!r})\n"
        "probe('private_datagram', datagram)\n"
    )
    a.assert_denied("private_socket", UNIX_DENIED)
    a.assert_denied("private_datagram", UNIX_DENIED | {"EPROTOTYPE"})
    assert private_socket.hits == 0, "a connection reached the user's private socket"
    host.assert_unaffected()


def test_sockets_the_kernel_holds_reach_nothing_else(
    attack: AttackRunner, host: HostGuard, private_socket: Listener
) -> None:
    """A script may pick up the sandbox's own sockets (the bridge's pool, zmq's): none connects elsewhere."""
    a = attack(
        "import os, socket, stat\n"
        "tried = 0\n"
        "for fd in map(int, os.listdir('/proc/self/fd')):\n"
        "    try:\n"
        "        if not stat.S_ISSOCK(os.fstat(fd).st_mode):\n"
        "            continue\n"
        "        s = socket.socket(fileno=os.dup(fd))\n"
        "    except OSError:\n"
        "        continue\n"
        "    tried += 1\n"
        "    try:\n"
        "        if s.family == socket.AF_UNIX:\n"
        f"            s.connect({private_socket.address!r}) if s.type == socket.SOCK_STREAM else "
        f"s.sendto(b'x', {private_socket.address!r})\n"
        "            print(f'@@ reconnect_{fd} ALLOWED', s.family, s.type)\n"
        "    except OSError:\n"
        "        pass\n"
        "    finally:\n"
        "        s.close()\n"
        "print('@@ sockets_tried ALLOWED', tried)\n"
    )
    assert int(a.probe("sockets_tried").value) > 0, a.output  # the bridge's connections at least
    assert not [label for label in a.probes if label.startswith("reconnect_")], a.output
    assert private_socket.hits == 0, "one of the sandbox's own sockets reached the user's private socket"
    host.assert_unaffected()


def test_tools_work_from_threads_and_event_loops(attack: AttackRunner, host: HostGuard, tools: HostTools) -> None:
    """Under the socket lock the bridge's connections are a fixed pool: more threads and loops than
    connections still get their calls answered, and asyncio (which needs a socketpair) still runs."""
    before = len(tools.calls)
    a = attack(
        "import asyncio, threading\n"
        "out = []\n"
        "def work(i):\n"
        "    out.append(sum(lookup(i) for _ in range(3)))\n"
        "threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print('@@ threads ALLOWED', sorted(out) == [6 * i for i in range(12)])\n"
        "async def many():\n"
        "    return await asyncio.gather(*[lookup.aio(i) for i in range(10)])\n"
        "print('@@ gather ALLOWED', await many() == [2 * i for i in range(10)])\n"
        "looped = []\n"
        "t = threading.Thread(target=lambda: looped.extend(asyncio.run(lookup.aio(i)) for i in range(12)))\n"
        "t.start(); t.join()\n"
        "print('@@ loops ALLOWED', looped == [2 * i for i in range(12)])\n"
    )
    assert a.status == "ok", a.output
    for label in ("threads", "gather", "loops"):
        assert a.probe(label).value == "True", a.output
    assert len(tools.calls) - before == 36 + 10 + 12
    host.assert_unaffected()


#: Eight tool calls, each cut short by an interrupt while it waits for a reply (the connection's stream is
#: then at an unknown position: the pool loses it), then one more call.
CUT_CALLS = (
    "import signal, threading\n"
    "main, cut = threading.get_ident(), 0\n"
    "for _ in range({n}):\n"
    "    timer = threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT))\n"
    "    timer.start()\n"
    "    try:\n"
    "        slow()\n"
    "    except KeyboardInterrupt:\n"
    "        cut += 1\n"
    "    timer.join()\n"
    "print('cut', cut)\n"
    "try:\n"
    "    print('then', lookup(1))\n"
    "except Exception as e:\n"
    "    print('then', type(e).__name__, e)\n"
)


def test_interrupted_calls_that_cut_the_whole_pool_restart_the_sandbox(host: HostGuard) -> None:
    """Under the socket lock an interrupted call costs its pooled connection and no new one can be made: when
    a script has cut the last one, the host restarts the sandbox (a SandboxRestarted notice), and the next
    script's tools work. Mode 'landlock' forces the lock (and the pool) on any Linux."""
    from codeagent.sandbox.guest.bridge_pool import POOL_SIZE
    from codeagent.sandbox.host.manager import SandboxError, SandboxKernel
    from codeagent.testing.messages_server import MessagesServer
    from tests.security.attack import socket_locked, tight_policy

    tools = HostTools()

    async def slow() -> int:
        """Waits a long time (its callers are interrupted first)."""
        import asyncio

        await asyncio.sleep(30)
        return 0

    tools.add(slow)
    policy = tight_policy(mode="landlock", allow_root=os.geteuid() == 0, wall_seconds=30)
    try:
        sandbox = SandboxKernel(policy).start()
    except SandboxError as e:
        pytest.skip(f"no Landlock + seccomp sandbox here: {e}")
    try:
        assert socket_locked(sandbox)
        with MessagesServer() as server:
            attack = AttackRunner(sandbox, server, tools)
            a = attack(CUT_CALLS.format(n=1), prelude=False)
            assert "cut 1" in a.output and "then 2" in a.output, a.output  # one lost: the others carry on
            assert sandbox.restarts == 0 and "SandboxRestarted" not in a.output, a.output
            a = attack(CUT_CALLS.format(n=POOL_SIZE - 1), prelude=False)
            assert f"cut {POOL_SIZE - 1}" in a.output, a.output
            assert "then BridgeError" in a.output and "restarts the sandbox" in a.output, a.output
            assert "SandboxRestarted" in a.output and "tool-bridge connections" in a.output, a.output
            assert sandbox.restarts == 1
            a = attack("print('then', lookup(21))", prelude=False)
            assert a.output.strip() == "then 42", a.output
        sandbox.restart()  # e.g. after a timeout: the fresh kernel's pool counts before any script accepted it
        assert sandbox.bridge is not None and sandbox.bridge.open_connections() == POOL_SIZE
    finally:
        sandbox.shutdown()
    host.assert_unaffected()
