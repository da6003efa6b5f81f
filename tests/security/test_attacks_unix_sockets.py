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
