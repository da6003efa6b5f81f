"""Process attacks: signals and ptrace against the host, child processes, raw syscalls, identity, PID namespace."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeagent.sandbox.host.manager import SandboxKernel
from codeagent.testing.messages_server import MessagesServer, code_turn, text_turn
from tests.security.attack import (
    MODE,
    NET_DENIED,
    OPT_IN_TRAITS,
    READ_DENIED,
    SIGNAL_DENIED,
    SYSCALL_DENIED,
    WRITE_DENIED,
    AttackRunner,
    HostTools,
    socket_locked,
    tight_policy,
)
from tests.security.hostside import (
    HostGuard,
    NotebookKernel,
    descendants,
    is_running,
    pids_with_marker,
    status_fields,
)
from tests.security.listeners import Listeners
from tests.security.probes import PRELUDE

# x86_64 syscall numbers; arguments chosen so that an *unlocked* kernel answers with a different errno (or
# harmlessly succeeds), never with a side effect: bad magic for reboot, invalid flags for kexec, and so on.
SYSCALL_GROUPS: dict[str, list[tuple[str, str]]] = {
    "mount_family": [
        ("mount", "syscall(165, b'none', b'/nonexistent-codeagent', b'tmpfs', 0, None)"),
        ("umount2", "syscall(166, b'/nonexistent-codeagent', 0)"),
        ("pivot_root", "syscall(155, b'/nonexistent-codeagent', b'/nonexistent-codeagent')"),
        ("open_tree", "syscall(428, -100, b'/nonexistent-codeagent', 0)"),
        ("fsopen", "os.close(syscall(430, b'tmpfs', 0))"),
        ("move_mount", "syscall(429, -1, b'', -1, b'', 0)"),
    ],
    "namespaces": [
        ("unshare_user", "syscall(272, 0x10000000)"),
        ("unshare_mount", "syscall(272, 0x00020000)"),
        ("unshare_net_vm", "syscall(272, 0x40000100)"),  # CLONE_VM too: EINVAL if it ever reached the kernel
        ("setns", "syscall(308, -1, 0)"),
    ],
    "keys": [
        ("keyctl", "syscall(250, 0, -3, 0)"),
        ("add_key", "syscall(248, b'codeagent_none', b'codeagent', b'x', 1, -3)"),  # unknown type: ENODEV
        ("request_key", "syscall(249, b'user', b'codeagent-none', None, 0)"),
    ],
    "kernel_interfaces": [
        ("bpf", "syscall(321, -1, None, 0)"),
        ("perf_event_open", "syscall(298, None, 0, -1, -1, 0)"),
        ("userfaultfd", "syscall(323, 0x7fff0000)"),
        ("io_uring_setup", "syscall(425, 0, None)"),
    ],
    "modules_kexec_reboot": [
        ("init_module", "syscall(175, None, 0, b'')"),
        ("finit_module", "syscall(313, -1, b'', 0)"),
        ("delete_module", "syscall(176, b'codeagent_none', 0)"),
        ("kexec_load", "syscall(246, 0, 0, None, 0x7fff0000)"),
        ("kexec_file_load", "syscall(320, -1, -1, 0, None, 0x7fff0000)"),
        ("reboot", "syscall(169, 0, 0, 0, None)"),  # bad magic: EINVAL if it reached the checks
    ],
    "raw_sockets": [
        ("socket_inet", "os.close(syscall(41, 2, 1, 0))"),
        ("socket_inet6", "os.close(syscall(41, 10, 1, 0))"),
        ("socket_udp", "os.close(syscall(41, 2, 2, 0))"),
        ("socket_netlink", "os.close(syscall(41, 16, 3, 0))"),
        ("socket_packet", "os.close(syscall(41, 17, 3, 0))"),
    ],
}


@pytest.fixture
def own_sandbox(host_secrets: object) -> Iterator[SandboxKernel]:
    """A sandbox of the test's own, for attacks that end by shutting it down."""
    sb = SandboxKernel(tight_policy()).start()
    yield sb
    sb.shutdown()


def sandbox_pids(sb: SandboxKernel) -> list[int]:
    """Host pids of the sandbox's processes: the launcher and everything below it."""
    assert sb.km is not None and sb.km.provisioner is not None
    launcher = int(sb.km.provisioner.process.pid)  # type: ignore[attr-defined]
    return [launcher, *descendants(launcher)]


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers are x86_64")
@pytest.mark.parametrize("group", sorted(SYSCALL_GROUPS))
def test_ctypes_syscalls_are_refused(attack: AttackRunner, host: HostGuard, group: str) -> None:
    calls = SYSCALL_GROUPS[group]
    code = "".join(f"probe({label!r}, lambda: {expr})\n" for label, expr in calls)
    code += "probe('control_unix_socket', lambda: os.close(syscall(41, 1, 1, 0)))\n"  # AF_UNIX stays allowed
    a = attack(code)
    if socket_locked(attack.sandbox):  # then no socket at all: the filter's own answer
        assert a.probe("control_unix_socket").err == "EPERM", a.output
    else:
        assert a.probe("control_unix_socket").outcome == "ALLOWED", a.output
    for label, _ in calls:
        a.assert_denied(label, SYSCALL_DENIED | ({"EAFNOSUPPORT"} if group == "raw_sockets" else set()))
    host.assert_unaffected()


def test_ctypes_connect_to_the_host_listener(attack: AttackRunner, host: HostGuard, listeners: Listeners) -> None:
    """socket(AF_INET) straight through libc, bypassing Python's socket module, then connect."""
    port = listeners.tcp.address[1]
    a = attack(
        "import socket, struct\n"
        "def raw_connect():\n"
        "    fd = _libc.socket(2, 1, 0)\n"
        "    if fd < 0:\n"
        "        n = _ct.get_errno(); raise OSError(n, os.strerror(n))\n"
        f"    addr = struct.pack('!HH4s8x', 2, {port}, bytes([127, 0, 0, 1]))\n"
        "    addr = struct.pack('=H', 2) + addr[2:]\n"
        "    if _libc.connect(fd, addr, len(addr)) != 0:\n"
        "        n = _ct.get_errno(); raise OSError(n, os.strerror(n))\n"
        "    return os.read(fd, 100)\n"
        "probe('libc_connect', raw_connect)\n"
    )
    a.assert_denied("libc_connect", NET_DENIED | {"ECONNREFUSED"})
    host.assert_unaffected()


def test_kill_host_processes(
    attack: AttackRunner, host: HostGuard, notebook: NotebookKernel, victim_process: subprocess.Popen[bytes]
) -> None:
    me, nb, victim = os.getpid(), notebook.pid, victim_process.pid
    a = attack(
        "import signal\n"
        f"probe('kill_victim', lambda: os.kill({victim}, signal.SIGKILL))\n"
        f"probe('probe_host', lambda: os.kill({me}, 0))\n"
        f"probe('probe_notebook', lambda: os.kill({nb}, 0))\n"
        f"probe('killpg_victim', lambda: os.killpg({victim}, signal.SIGKILL))\n"  # its own process group
        f"probe('pidfd_victim', lambda: os.pidfd_open({victim}))\n"
    )
    for label in ("kill_victim", "probe_host", "probe_notebook", "killpg_victim", "pidfd_victim"):
        a.assert_denied(label, SIGNAL_DENIED)
    time.sleep(0.2)
    assert is_running(victim), "the host process was killed"
    assert victim_process.poll() is None
    host.assert_unaffected()


def test_ptrace_a_host_process(attack: AttackRunner, host: HostGuard, victim_process: subprocess.Popen[bytes]) -> None:
    victim = victim_process.pid
    mapped = int(Path(f"/proc/{victim}/maps").read_text().split("-", 1)[0], 16)  # an address the victim has
    a = attack(
        "def attach():\n"
        f"    r = syscall(101, 16, {victim}, 0, 0)  # PTRACE_ATTACH\n"
        f"    os.waitpid({victim}, 0x40000000)\n"
        f"    syscall(101, 17, {victim}, 0, 0)  # PTRACE_DETACH\n"
        "    return r\n"
        "probe('ptrace_attach', attach)\n"
        "def vm_read():\n"
        "    buf = _ct.create_string_buffer(64)\n"
        "    local = (_ct.c_void_p * 2)(_ct.cast(buf, _ct.c_void_p), 64)\n"
        f"    remote = (_ct.c_void_p * 2)({mapped}, 64)\n"
        f"    return syscall(310, {victim}, local, 1, remote, 1, 0)\n"
        "probe('process_vm_readv', vm_read)\n"
    )
    for label in ("ptrace_attach", "process_vm_readv"):
        a.assert_denied(label, SYSCALL_DENIED | {"ESRCH"})
    assert status_fields(victim).get("State", "")[:1] in ("S", "R", "D"), "the host process is stopped or gone"
    assert status_fields(victim).get("TracerPid") == "0"
    host.assert_unaffected()


def test_subprocess_inherits_the_lockdown(attack: AttackRunner, host: HostGuard, listeners: Listeners) -> None:
    ssh = str(host.canaries.ssh_key.path)
    outside = str(host.canaries.forbidden["package_source"])
    child = (
        PRELUDE
        + f"probe('child_read_key', lambda: open({ssh!r}).read())\n"
        + f"probe('child_write_outside', lambda: open({outside!r}, 'x').write('x'))\n"
        + "import socket\n"
        + f"probe('child_tcp', lambda: socket.create_connection(('127.0.0.1', {listeners.tcp.address[1]}), 1))\n"
        + "probe('child_unshare', lambda: syscall(272, 0x10000000))\n"
    )
    a = attack(
        "import subprocess, sys\n"
        f"r = subprocess.run([sys.executable, '-c', {child!r}], capture_output=True, text=True, timeout=20)\n"
        "print(r.stdout, r.stderr[-500:])\n"
        "print('@@ child_ran ALLOWED', r.returncode)\n"
    )
    assert a.probe("child_ran").outcome == "ALLOWED", a.output  # the child did run: the denials are its own
    a.assert_denied("child_read_key", READ_DENIED)
    a.assert_denied("child_write_outside", WRITE_DENIED)
    a.assert_denied("child_tcp", NET_DENIED | {"ECONNREFUSED"})
    a.assert_denied("child_unshare", SYSCALL_DENIED)
    a.assert_no_secret(host.all_secrets())
    host.assert_unaffected()


def test_os_system_and_shell(attack: AttackRunner, host: HostGuard, listeners: Listeners) -> None:
    ssh = str(host.canaries.ssh_key.path)
    outside = str(host.canaries.forbidden["package_source"])
    agent = str(listeners.agent.address)
    a = attack(
        "import subprocess\n"
        f"rc = os.system('echo pwned > {outside} 2>/dev/null')\n"
        "print('SYSTEM_RC', rc)\n"
        f"r = subprocess.run(['sh', '-c', 'cat {ssh}; cat /proc/1/environ | tr \"\\\\0\" \" \"; ls {agent}'],\n"
        "                   capture_output=True, text=True, timeout=20)\n"
        "print('SHELL_RC', r.returncode)\n"
        "print('SHELL_OUT', r.stdout)\n"
        "print('SHELL_ERR', r.stderr)\n"
    )
    assert a.status == "ok", a.output
    assert "SYSTEM_RC 0" not in a.output, "os.system wrote outside the workspace"
    if "mounts" in attack.sandbox.layers:  # else the agent socket's path exists for ls (connecting is refused)
        assert "SHELL_RC 0" not in a.output, a.output
    assert "No such file or directory" in a.output or "Permission denied" in a.output, a.output
    a.assert_no_secret(host.all_secrets())
    host.assert_unaffected()


def test_pty_and_terminal_injection(attack: AttackRunner, host: HostGuard) -> None:
    """TIOCSTI pushes keystrokes into a terminal's input; a pty would give a child a terminal of its own."""
    ssh = str(host.canaries.ssh_key.path)
    a = attack(
        "import fcntl, pty, termios\n"
        "probe('tiocsti_stdin', lambda: fcntl.ioctl(0, termios.TIOCSTI, b'x'))\n"
        "probe('dev_tty', lambda: open('/dev/tty', 'rb'))\n"
        "if probe('openpty', os.openpty):\n"
        "    master, slave = os.openpty()\n"
        "    probe('tiocsti_pty', lambda: fcntl.ioctl(slave, termios.TIOCSTI, b'x'))\n"
        "def pty_cat():\n"
        "    pid, fd = pty.fork()\n"
        "    if pid == 0:\n"
        f"        os.execvp('cat', ['cat', {ssh!r}])\n"
        "    out = b''\n"
        "    while True:\n"
        "        try:\n"
        "            chunk = os.read(fd, 1024)\n"
        "        except OSError:\n"
        "            break\n"
        "        if not chunk:\n"
        "            break\n"
        "        out += chunk\n"
        "    os.waitpid(pid, 0)\n"
        "    if b'No such file' in out or b'Permission denied' in out:\n"
        "        raise PermissionError(13, out.decode(errors='replace').strip())\n"
        "    return out\n"
        "probe('pty_cat', pty_cat)\n"
    )
    a.assert_denied("tiocsti_stdin", SYSCALL_DENIED)  # seccomp refuses it on any fd; unlocked: ENOTTY
    a.assert_denied("dev_tty", READ_DENIED | {"ENXIO"})
    if not a.probe("openpty").denied:
        a.assert_denied("tiocsti_pty", SYSCALL_DENIED)
    a.assert_denied("pty_cat", READ_DENIED | {"ENXIO", "ENODEV", "-"})
    a.assert_no_secret(host.all_secrets())
    host.assert_unaffected()


def test_privileges_and_identity(attack: AttackRunner, host: HostGuard) -> None:
    a = attack(
        "probe('setuid_root', lambda: os.setuid(0))\n"
        "probe('setgid_root', lambda: os.setgid(0))\n"
        "probe('chroot', lambda: os.chroot('/'))\n"
        # the same name again: refused in a locked sandbox, and a no-op should the host ever run this
        "probe('sethostname', lambda: __import__('socket').sethostname(__import__('socket').gethostname()))\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())\n"
        "for key in ('CapEff', 'CapPrm', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp'):\n"
        "    print('STATUS', key, status[key].strip())\n"
    )
    for label in ("setuid_root", "setgid_root"):
        a.assert_denied(label, SYSCALL_DENIED | {"EINVAL"})  # EINVAL: no uid 0 is mapped in the namespace
    for label in ("chroot", "sethostname"):
        a.assert_denied(label, SYSCALL_DENIED)
    status = dict(line.split()[1:3] for line in a.output.splitlines() if line.startswith("STATUS "))
    assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0, status
    assert int(status["CapAmb"], 16) == 0, status
    if "capabilities" in sandbox_layers(attack):  # an unprivileged uid without a user namespace cannot empty
        assert int(status["CapBnd"], 16) == 0, status  # it (it has no capability; no_new_privs keeps it so)
    assert status["NoNewPrivs"] == "1", status
    assert status["Seccomp"] == "2", status
    host.assert_unaffected()


def test_sandbox_runs_as_an_unprivileged_uid(sandbox: SandboxKernel, host: HostGuard) -> None:
    """From the host's side: every process of the sandbox has non-zero real, effective, saved and fs uids."""
    pids = sandbox_pids(sandbox)
    assert len(pids) >= 1
    uids = {pid: status_fields(pid).get("Uid", "") for pid in pids}
    if os.geteuid() != 0:
        assert all(u.split() == [str(os.geteuid())] * 4 for u in uids.values()), uids
    else:
        rooted = {pid: u for pid, u in uids.items() if u and "0" in u.split()}
        assert not rooted, f"sandbox processes running with uid 0 on the host: {rooted}"
    host.assert_unaffected()


def test_sandbox_cannot_see_other_processes(
    attack: AttackRunner, host: HostGuard, sandbox: SandboxKernel, notebook: NotebookKernel
) -> None:
    a = attack(
        "try:\n"
        "    visible = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        "except PermissionError:  # Landlock without a PID namespace: /proc cannot be listed\n"
        "    visible = [os.getpid()]\n"
        "print('COUNT', len(visible))\n"
        "print('VISIBLE', visible[:100])\n"
        "def cmdline(pid):\n"
        "    try:\n"
        "        return open(f'/proc/{pid}/cmdline', 'rb').read()[:60]\n"
        "    except OSError as e:\n"
        "        return type(e).__name__\n"
        "print('CMDLINES', [cmdline(p) for p in visible[:100] if p != os.getpid()])\n"
    )
    count = int(a.output.split("COUNT ", 1)[1].split()[0])
    assert count <= 100, f"the sandbox sees {count} processes"
    visible = {int(x) for x in a.output.split("VISIBLE [", 1)[1].split("]", 1)[0].split(",") if x.strip()}
    inside: set[int] = set()
    for pid in sandbox_pids(sandbox):
        nspid = status_fields(pid).get("NSpid", "").split()
        if nspid:
            inside.add(int(nspid[-1]))
    outsiders = visible - inside
    assert not outsiders, f"the sandbox sees {len(outsiders)} processes outside its own PID namespace"
    assert os.getpid() not in visible or os.getpid() in inside
    assert "pytest" not in a.output and "ipykernel_launcher" not in a.output, "the host's processes are visible"
    host.assert_unaffected()


def sandbox_layers(attack: AttackRunner) -> list[str]:
    return list(attack.sandbox.layers)


@pytest.mark.slow
def test_processes_the_script_started_die_with_the_script(own_sandbox: SandboxKernel, token: str) -> None:
    """A child, a child in its own session and a double-forked daemon, all ignoring SIGTERM and SIGHUP:
    alive while the script runs, gone (killed and reaped) as soon as it ends."""
    marker = f"codeagent-orphan-{token}"
    tools = HostTools()
    with MessagesServer() as server:
        runner = AttackRunner(own_sandbox, server, tools)
        a = runner(
            "import subprocess, sys, time\n"
            'sleeper = f\'import os, time, signal; open(f"alive-{{os.getpid()}}", "w").close(); '
            "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "signal.signal(signal.SIGHUP, signal.SIG_IGN); time.sleep(600)  # MARKER'\n"
            "child = subprocess.Popen([sys.executable, '-c', sleeper.replace('MARKER', 'child-" + marker + "')])\n"
            "session = subprocess.Popen([sys.executable, '-c', sleeper.replace('MARKER', 'session-" + marker + "')],\n"
            "                           start_new_session=True)\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        os.execv(sys.executable, [sys.executable, '-c', sleeper.replace('MARKER', 'daemon-"
            + marker
            + "')])\n"
            "    os._exit(0)\n"
            "def running():  # each sleeper leaves a file (without a PID namespace /proc may not be listable)\n"
            "    return len([name for name in os.listdir('.') if name.startswith('alive-')])\n"
            "for _ in range(50):\n"
            "    if running() >= 3:\n"
            "        break\n"
            "    time.sleep(0.1)\n"
            "print('@@ started ALLOWED', running())\n"
        )
        assert a.probe("started").outcome == "ALLOWED", a.output
        assert a.probe("started").value.split()[-1] == "3", a.output
        try:
            survivors = pids_with_marker(marker)
        finally:
            for pid in pids_with_marker(marker):  # clean up what an unlocked sandbox left behind
                os.kill(pid, signal.SIGKILL)
        assert survivors == [], f"{len(survivors)} of 3 processes outlived their script: {survivors}"
        again = runner("print('@@ next ALLOWED')")
        assert again.probe("next").outcome == "ALLOWED"
    assert own_sandbox.restarts == 0


@pytest.mark.slow
def test_kill_the_notebook_kernel_from_its_sandbox(notebook_dir: Path, host_secrets: object) -> None:
    """The real path in a real notebook kernel: %codeagent in an ipykernel whose sandbox is its own child."""
    with MessagesServer() as server:
        env = dict(os.environ, ANTHROPIC_BASE_URL=server.url, ANTHROPIC_API_KEY="test-key-not-secret")
        nb = NotebookKernel(notebook_dir, env=env)
        try:
            server.add_turns(
                code_turn(
                    "import os, signal\n"
                    "for pid in [os.getppid()]:\n"
                    "    try:\n"
                    "        os.kill(pid, signal.SIGKILL)\n"
                    "        print('killed', pid)\n"
                    "    except OSError as e:\n"
                    "        print('refused', pid, type(e).__name__)\n"
                    "print('still here')\n"
                ),
                text_turn("done"),
                code_turn("print(6 * 7)"),
                text_turn("42"),
            )
            nb.run(
                "%load_ext codeagent\nm = get_ipython().magics_manager.registry['CodeAgent']\n"
                f"m.sandbox_mode = {MODE!r}\n" + "".join(f"m.{k} = {v}\n" for k, v in OPT_IN_TRAITS.items())
            )
            out = nb.run(
                "r = get_ipython().run_line_magic('codeagent', '--timeout 10 stop your parent')\n"
                "print('STATUS', r.status, r.scripts[0].status if r.scripts else None)"
            )
            assert nb.km.is_alive(), "the sandbox killed the notebook kernel"
            assert nb.problems() == [], nb.problems()
            assert "STATUS done" in out, out
            again = nb.run("print(get_ipython().run_line_magic('codeagent', 'and now?').scripts[0].output)")
            assert "42" in again, again
        finally:
            nb.shutdown()
