"""Network attacks: the internet, the host's loopback listeners, DNS, Unix sockets, the notebook's own kernel."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from codeagent.sandbox.host.manager import SandboxKernel
from codeagent.sandbox.host.policy import SandboxPolicy
from tests.security.attack import NET_DENIED, READ_DENIED, UNIX_DENIED, AttackRunner, tight_policy
from tests.security.hostside import HostGuard, NotebookKernel
from tests.security.listeners import Listeners

#: a connection refused inside the sandbox's own network namespace also never reached the host
LOOPBACK_DENIED = NET_DENIED | {"ECONNREFUSED"}


@pytest.fixture(scope="module")
def policy() -> SandboxPolicy:
    return tight_policy(wall_seconds=6)


@pytest.fixture(scope="module")
def other_sandbox(host_secrets: object) -> Iterator[SandboxKernel]:
    """Another session's sandbox: its run directory holds a connection file, ipc sockets and a bridge."""
    sb = SandboxKernel(tight_policy()).start()
    yield sb
    sb.shutdown()


def test_tcp_to_the_internet_fails_before_any_packet_leaves(attack: AttackRunner, host: HostGuard) -> None:
    # 192.0.2.1 is TEST-NET-1: never routed. A timeout here would mean a SYN was sent; the lockdown must refuse
    # at socket()/connect() with no route, not time out.
    a = attack(
        "import socket\n"
        "def connect():\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
        "    s.settimeout(1.0)\n"
        "    s.connect(('192.0.2.1', 80))\n"
        "probe('internet_tcp', connect)\n"
        "probe('internet_http', lambda: __import__('urllib.request').request.urlopen('http://192.0.2.1/', timeout=1))\n"
    )
    a.assert_denied("internet_tcp", NET_DENIED)
    assert a.probe("internet_http").denied
    host.assert_unaffected()


def test_tcp_to_a_host_loopback_listener(attack: AttackRunner, host: HostGuard, listeners: Listeners) -> None:
    port = listeners.tcp.address[1]
    a = attack(
        "import socket\n"
        f"probe('loopback_tcp', lambda: socket.create_connection(('127.0.0.1', {port}), timeout=1).recv(100))\n"
        f"probe('localhost_tcp', lambda: socket.create_connection(('localhost', {port}), timeout=1).recv(100))\n"
    )
    a.assert_denied("loopback_tcp", LOOPBACK_DENIED)
    a.assert_denied("localhost_tcp", LOOPBACK_DENIED | {"-"})  # "-": getaddrinfo gave no usable address
    assert "host-listener-reached" not in a.output
    host.assert_unaffected()


def test_udp_to_a_host_listener(attack: AttackRunner, host: HostGuard, listeners: Listeners) -> None:
    port = listeners.udp.address[1]
    a = attack(
        "import socket\n"
        "def send():\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"    return [s.sendto(b'exfiltrated', ('127.0.0.1', {port})) for _ in range(5)]\n"
        "probe('loopback_udp', send)\n"
    )
    a.assert_denied("loopback_udp", NET_DENIED)
    host.assert_unaffected()


def test_dns_resolution(attack: AttackRunner, host: HostGuard) -> None:
    # Guard: connect() on a UDP socket sends nothing but needs a route. Only when there is none (or no AF_INET
    # at all) does the script try a real lookup, so an unlocked sandbox never sends a query off the machine.
    a = attack(
        "import socket\n"
        "def route():\n"
        "    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).connect(('192.0.2.53', 53))\n"
        "if probe('udp_route', route):\n"
        "    print('@@ dns SKIPPED unsafe: this sandbox has a route off the machine')\n"
        "else:\n"
        "    probe('dns', lambda: socket.getaddrinfo('example.com', 443))\n"
    )
    a.assert_denied("udp_route", NET_DENIED)
    a.assert_denied("dns", excs={"gaierror"})
    host.assert_unaffected()


def test_other_socket_families_and_listening(attack: AttackRunner, host: HostGuard) -> None:
    a = attack(
        "import socket\n"
        "probe('ipv6_loopback', lambda: socket.create_connection(('::1', 22), timeout=1))\n"
        "probe('netlink', lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))\n"
        "probe('packet', lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0))\n"
        "def serve():\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
        "    s.bind(('0.0.0.0', 0))\n"
        "    s.listen()\n"
        "    return s.getsockname()\n"
        "probe('tcp_listen', serve)\n"
    )
    a.assert_denied("ipv6_loopback", LOOPBACK_DENIED | {"EADDRNOTAVAIL"})
    a.assert_denied("netlink", NET_DENIED)
    a.assert_denied("packet", NET_DENIED)
    a.assert_denied("tcp_listen", NET_DENIED)
    host.assert_unaffected()


def test_ssh_agent_socket(attack: AttackRunner, host: HostGuard, listeners: Listeners) -> None:
    path = listeners.agent.address
    a = attack(
        "import socket\n"
        "print('@@ ssh_auth_sock', 'ALLOWED' if os.environ.get('SSH_AUTH_SOCK') else 'DENIED KeyError -')\n"
        "def connect():\n"
        "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "    s.settimeout(1)\n"
        f"    s.connect({path!r})\n"
        "    return s.recv(100)\n"
        "probe('agent_socket', connect)\n"
        f"probe('agent_dir', lambda: os.listdir({os.path.dirname(str(path))!r}))\n"
    )
    assert a.probe("ssh_auth_sock").denied, "SSH_AUTH_SOCK reached the sandbox's environment"
    a.assert_denied("agent_socket", UNIX_DENIED)
    a.assert_denied("agent_dir", READ_DENIED)
    host.assert_unaffected()


def test_abstract_unix_socket(attack: AttackRunner, host: HostGuard, listeners: Listeners) -> None:
    name = str(listeners.abstract.address)
    a = attack(
        "import socket\n"
        "def connect():\n"
        "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "    s.settimeout(1)\n"
        f"    s.connect({name!r})\n"
        "    return s.recv(100)\n"
        "probe('abstract_socket', connect)\n"
        "probe('abstract_list', lambda: [l for l in open('/proc/net/unix') if '@codeagent' in l])\n"
    )
    a.assert_denied("abstract_socket", UNIX_DENIED)
    listing = a.probe("abstract_list")
    assert listing.denied or name[1:] not in listing.value, "the host's abstract sockets are listed in the sandbox"
    host.assert_unaffected()


def test_notebook_kernel_connection_file_and_ports(
    attack: AttackRunner, host: HostGuard, notebook: NotebookKernel
) -> None:
    info = notebook.connection_info()
    ports = {k: info[k] for k in ("shell_port", "control_port", "hb_port", "iopub_port", "stdin_port")}
    a = attack(
        "import socket\n"
        f"probe('connection_file', lambda: open({notebook.connection_file!r}).read())\n"
        f"probe('runtime_dir', lambda: {os.path.basename(notebook.connection_file)!r} in "
        f"os.listdir({os.path.dirname(notebook.connection_file)!r}))\n"
        f"for name, port in {ports!r}.items():\n"
        "    probe(name, lambda: socket.create_connection(('127.0.0.1', port), timeout=1))\n"
    )
    a.assert_denied("connection_file", READ_DENIED)
    runtime_dir = a.probe("runtime_dir")  # hidden, or at least without the notebook's connection file
    assert runtime_dir.denied or runtime_dir.value == "False", runtime_dir
    for name in ports:
        a.assert_denied(name, LOOPBACK_DENIED)
    assert info["key"] not in a.output
    host.assert_unaffected()


def test_notebook_kernel_execute_with_a_leaked_key(
    attack: AttackRunner, host: HostGuard, notebook: NotebookKernel
) -> None:
    """Even knowing the notebook's connection info and HMAC key, the script cannot run code in the notebook."""
    info = notebook.connection_info()
    target = str(host.canaries.forbidden["victim"])
    payload = f"pwned = 1\n{NotebookKernel.SENTINEL} = 0\nopen({target!r}, 'w').write('ran')"
    a = attack(
        "from jupyter_client import BlockingKernelClient\n"
        f"INFO = {json.dumps(info)!r}\n"
        "def pwn():\n"
        "    kc = BlockingKernelClient()\n"
        "    kc.load_connection_info(__import__('json').loads(INFO))\n"
        "    kc.start_channels()\n"
        "    try:\n"
        f"        return kc.execute_interactive({payload!r}, timeout=2)['content']['status']\n"
        "    finally:\n"
        "        kc.stop_channels()\n"
        "probe('notebook_execute', pwn)\n"
    )
    a.assert_denied("notebook_execute", excs={"TimeoutError", "ZMQError", "PermissionError", "OSError"})
    host.assert_unaffected()


def test_another_sandboxs_run_dir_and_bridge(
    attack: AttackRunner, host: HostGuard, other_sandbox: SandboxKernel
) -> None:
    """Another session's run directory: its connection file, kernel sockets and tool bridge (token leaked)."""
    run_dir = str(other_sandbox.run_dir)
    sockets = sorted(os.path.join(run_dir, n) for n in os.listdir(run_dir) if n.startswith("k-") or n == "bridge")
    assert any(s.endswith("bridge") for s in sockets) and len(sockets) >= 5
    bridge = other_sandbox.bridge
    assert bridge is not None
    head = json.dumps({"id": 1, "op": "call", "tool": "lookup"})
    a = attack(
        "import socket\n"
        "from codeagent.sandbox.protocol import codec\n"
        f"probe('other_connection_file', lambda: open({run_dir + '/kernel.json'!r}).read())\n"
        f"probe('other_launch_spec', lambda: open({run_dir + '/launch.json'!r}).read())\n"
        f"for i, path in enumerate({sockets!r}):\n"
        "    probe(f'other_socket_{i}', lambda: socket.socket(socket.AF_UNIX).connect(path))\n"
        "def forge():\n"
        "    s = socket.socket(socket.AF_UNIX)\n"
        "    s.settimeout(1)\n"
        f"    s.connect({bridge.address!r})\n"
        f"    parts = [{other_sandbox._token!r}.encode(), {head!r}.encode(), b'{{\"n\": 1}}']\n"
        "    s.sendall(b''.join(bytes(b) for b in codec.wire_buffers(parts)))\n"
        "    return s.recv(1000)\n"
        "probe('other_bridge', forge)\n"
    )
    a.assert_denied("other_connection_file", READ_DENIED)
    a.assert_denied("other_launch_spec", READ_DENIED)
    for i in range(len(sockets)):
        a.assert_denied(f"other_socket_{i}", UNIX_DENIED)
    a.assert_denied("other_bridge", UNIX_DENIED)
    served = bridge.serve_pending(lambda request: {"id": request.get("id"), "ok": False, "error": {}}, timeout=0.2)
    assert served == 0 and bridge.refused == 0, "a forged request reached the other session's bridge"
    assert other_sandbox.execute("print(6 * 7)", lambda r: r).output.strip() == "42"
    host.assert_unaffected()
