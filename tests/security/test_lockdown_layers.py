"""The launcher's lockdown layers, checked from inside a real locked-down process.

Each test writes a LaunchSpec by hand (0700 run directory, workspace, the Python prefix readable, a minimal
environment), runs ``python -m codeagent.sandbox.guest.launcher`` on a small probe script that prints JSON facts,
and asserts on what the probe could and could not do. One test drives a real ipykernel through
jupyter_client with every layer on.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from codeagent.sandbox.guest.launcher import EXIT_LOCKDOWN_FAILED
from codeagent.sandbox.guest.lockdown import LayerStatus, probe
from codeagent.sandbox.guest.lockdown.fs_view import FsView
from codeagent.sandbox.guest.lockdown.fs_view import build as build_view
from codeagent.sandbox.guest.lockdown.mounts import plan
from codeagent.sandbox.host.layers import FALLBACK_LAYERS, SandboxUnavailable, choose_layers, weakness
from codeagent.sandbox.protocol.launch_spec import ALL_LAYERS
from tests.security.hostside import is_running

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the lockdown layers are Linux-only")

PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
SANDBOX_UID = 65534
IS_ROOT = sys.platform.startswith("linux") and os.geteuid() == 0
EXPECTED_UID = SANDBOX_UID if IS_ROOT else (os.geteuid() if sys.platform.startswith("linux") else -1)
NAMESPACE_LAYERS = list(ALL_LAYERS)


def _have(*layers: str) -> bool:
    return sys.platform.startswith("linux") and set(layers) <= {s.name for s in probe() if s.available}


needs_namespaces = pytest.mark.skipif(
    not _have("namespaces", "mounts", "pidns", "landlock", "seccomp"),
    reason="user namespaces, Landlock or seccomp unavailable here",
)
needs_fallback = pytest.mark.skipif(
    not _have("landlock", "seccomp", "no_new_privs"), reason="Landlock or seccomp unavailable here"
)

# The probe: everything it tries is recorded as a value or as "ExceptionName: message".
PROBE = r"""
import ctypes, json, os, socket, subprocess, sys, threading
facts = {"uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid(), "cwd": os.getcwd(), "groups": os.getgroups()}
cfg = json.loads(sys.argv[1])

def attempt(name, fn):
    try:
        value = fn()
        facts[name] = True if value is None else value
    except BaseException as e:
        facts[name] = f"{type(e).__name__}: {e}"

def tcp():
    s = socket.create_connection(("127.0.0.1", cfg["tcp_port"]), timeout=2); s.close(); return "connected"
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"x", ("127.0.0.1", 9)); return "sent"
def unix_path():
    s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(cfg["unix_path"]); return "connected"
def unix_abstract():
    s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect("\0" + cfg["abstract"]); return "connected"
def write(path):
    with open(path, "w") as f: f.write("x")
def status():
    keep = ("Uid", "Gid", "CapEff", "CapBnd", "CapPrm", "CapInh", "CapAmb", "NoNewPrivs", "Seccomp")
    return dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if line.startswith(keep))
def threads():
    started = []
    try:
        while len(started) < 500:
            t = threading.Thread(target=threading.Event().wait, args=(5,), daemon=True); t.start(); started.append(t)
    except RuntimeError:
        pass
    return len(started)
def memory():
    block = bytearray(cfg["alloc_mb"] * 1024 * 1024); return len(block)
libc = ctypes.CDLL(None, use_errno=True)

attempt("tcp", tcp)
attempt("udp", udp)
attempt("unix_path", unix_path)
attempt("unix_abstract", unix_abstract)
attempt("read_secret", lambda: open(cfg["secret_file"]).read())
attempt("read_bashrc", lambda: open(os.path.expanduser("~root/.bashrc")).read(5))
attempt("write_etc", lambda: write("/etc/codeagent-probe"))
attempt("write_usr", lambda: write(sys.base_prefix + "/codeagent-probe"))
attempt("write_workspace", lambda: write("probe.txt"))
attempt("write_run_dir", lambda: write(cfg["run_dir"] + "/planted.json"))
attempt("symlink_run_dir", lambda: os.symlink("/etc/passwd", cfg["run_dir"] + "/link"))
attempt("rewrite_spec", lambda: write(cfg["run_dir"] + "/launch.json"))
attempt("unlink_spec", lambda: os.unlink(cfg["run_dir"] + "/launch.json"))
attempt("tmp_entries", lambda: sorted(os.listdir("/tmp")))
attempt("write_tmp", lambda: write("/tmp/probe.txt"))
attempt("kill_host", lambda: os.kill(cfg["host_pid"], 0))
attempt("status", status)
attempt("unshare_user", lambda: libc.unshare(0x10000000) == 0 or os.strerror(ctypes.get_errno()))
attempt("procs", lambda: sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
attempt("subprocess", lambda: subprocess.run(["echo", "hi"], capture_output=True, text=True).stdout.strip())
attempt("threads", threads)
attempt("memory", memory)
print(json.dumps(facts), flush=True)
"""


@dataclass
class Sandbox:
    """A hand-written launch: run directory, workspace, launch spec."""

    root: Path
    run_dir: Path
    workspace: Path
    spec_file: Path

    def spec(self, argv: list[str], layers: list[str], **limits: int) -> dict[str, Any]:
        allow_root = bool(limits.pop("allow_root", True))
        readable = {sys.base_prefix, sys.prefix, PACKAGE_ROOT}
        readable.update(p for p in sys.path if p and os.path.isdir(p))
        return {
            "argv": argv,
            "env": {
                "PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin",
                "LANG": "C.UTF-8",
                "PYTHONPATH": PACKAGE_ROOT,
                "HOME": str(self.workspace),
            },
            "workspace": str(self.workspace),
            "run_dir": str(self.run_dir),
            "readable_paths": sorted(readable),
            "layers": layers,
            "limits": {
                "memory_mb": 1024,
                "cpu_seconds": 20,
                "max_processes": 32,
                "max_file_mb": 8,
                "max_open_files": 128,
                **limits,
            },
            "uid": SANDBOX_UID if IS_ROOT else None,
            "allow_root": allow_root,
        }

    def write_spec(self, spec: dict[str, Any]) -> Path:
        self.spec_file.write_text(json.dumps(spec))
        return self.spec_file

    def launcher_argv(self) -> list[str]:
        return [sys.executable, "-m", "codeagent.sandbox.guest.launcher", str(self.spec_file)]

    def launch(
        self, argv: list[str], layers: list[str], timeout: float = 60, **limits: int
    ) -> subprocess.CompletedProcess[str]:
        self.write_spec(self.spec(argv, layers, **limits))
        return subprocess.run(
            self.launcher_argv(), capture_output=True, text=True, timeout=timeout, cwd=PACKAGE_ROOT, env={}
        )


def make_sandbox(base: str | None = None) -> Sandbox:
    root = Path(tempfile.mkdtemp(prefix="ca-lockdown-", dir=base))
    run_dir, workspace = root / "run", root / "ws"
    run_dir.mkdir(mode=0o700)
    workspace.mkdir()
    return Sandbox(root, run_dir, workspace, run_dir / "launch.json")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    box = make_sandbox()
    yield box
    subprocess.run(["rm", "-rf", str(box.root)], check=False)


@dataclass
class HostTargets:
    """Things on the host the probe must not reach."""

    tcp_port: int
    unix_path: str
    abstract: str
    secret_file: str
    tmp_marker: str


@pytest.fixture
def host_targets() -> Iterator[HostTargets]:
    tcp = socket.create_server(("127.0.0.1", 0))
    unix_dir = tempfile.mkdtemp(prefix="ca-host-")
    os.chmod(unix_dir, 0o755)
    unix_path = os.path.join(unix_dir, "agent.sock")
    path_sock = socket.socket(socket.AF_UNIX)
    path_sock.bind(unix_path)
    os.chmod(unix_path, 0o777)  # reachable by anyone who can see it: only the mount namespace hides it
    path_sock.listen()
    abstract = f"codeagent-test-{secrets.token_hex(4)}"
    abstract_sock = socket.socket(socket.AF_UNIX)
    abstract_sock.bind("\0" + abstract)
    abstract_sock.listen()
    secret_dir = tempfile.mkdtemp(prefix="ca-secret-")
    os.chmod(secret_dir, 0o755)
    secret_file = os.path.join(secret_dir, "token.txt")
    Path(secret_file).write_text("s3cret")
    os.chmod(secret_file, 0o644)  # world-readable: only Landlock / the mount namespace keep it out
    try:
        yield HostTargets(tcp.getsockname()[1], unix_path, abstract, secret_file, os.path.basename(unix_dir))
    finally:
        for s in (tcp, path_sock, abstract_sock):
            s.close()
        subprocess.run(["rm", "-rf", unix_dir, secret_dir], check=False)


def run_probe(box: Sandbox, targets: HostTargets, layers: list[str], **limits: int) -> dict[str, Any]:
    cfg = {
        "tcp_port": targets.tcp_port,
        "unix_path": targets.unix_path,
        "abstract": targets.abstract,
        "secret_file": targets.secret_file,
        "run_dir": str(box.run_dir),
        "host_pid": os.getpid(),
        "alloc_mb": limits.pop("alloc_mb", 64),
    }
    done = box.launch([sys.executable, "-c", PROBE, json.dumps(cfg)], layers, **limits)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def denied(value: object) -> bool:
    return isinstance(value, str) and value.startswith(
        ("PermissionError", "OSError", "FileNotFoundError", "ConnectionRefusedError", "ProcessLookupError")
    )


# --------------------------------------------------------------------------- probe and choose_layers


def test_probe_reports_every_layer_with_a_reason() -> None:
    statuses = probe()
    assert [s.name for s in statuses] == list(ALL_LAYERS)
    for s in statuses:
        assert isinstance(s.available, bool)
        assert s.detail


def _statuses(available: set[str]) -> list[LayerStatus]:
    return [LayerStatus(name, name in available, "ok" if name in available else "missing") for name in ALL_LAYERS]


def test_choose_layers_auto_uses_everything_with_namespaces() -> None:
    layers, notes = choose_layers("auto", _statuses(set(ALL_LAYERS)))
    assert layers == list(ALL_LAYERS)
    assert notes == []


def test_choose_layers_auto_falls_back_to_landlock_and_seccomp() -> None:
    available = set(ALL_LAYERS) - {"namespaces", "mounts", "pidns"}
    layers, notes = choose_layers("auto", _statuses(available), allow_root=True)
    assert layers == [name for name in FALLBACK_LAYERS]
    assert any("fallback" in n for n in notes)
    assert choose_layers("landlock", _statuses(set(ALL_LAYERS)), allow_root=True)[0] == list(FALLBACK_LAYERS)


def test_root_without_namespaces_refuses_to_stay_uid_0(monkeypatch: pytest.MonkeyPatch) -> None:
    """A root host whose Python the sandbox uid cannot reach (under a 0700 /root): refuse, naming the remedy,
    unless the user opted in; then every run carries the warning."""
    import codeagent.sandbox.host.layers as layers_module

    monkeypatch.setattr(layers_module.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        layers_module,
        "closed_directories",
        lambda paths=None: [("/root", "/root/.pyenv/versions/3.11")] if paths is None else [],
    )
    no_namespaces = _statuses(set(ALL_LAYERS) - {"namespaces", "mounts", "pidns"})
    with pytest.raises(SandboxUnavailable, match=r"refusing to run generated code as root.*venv /opt/venv"):
        choose_layers("auto", no_namespaces)
    layers, notes = choose_layers("auto", no_namespaces, allow_root=True)
    assert layers == list(FALLBACK_LAYERS)
    assert any(n.startswith("WARNING the sandbox stays uid 0") for n in notes)
    monkeypatch.setattr(layers_module, "closed_directories", lambda paths=None: [])
    assert choose_layers("auto", no_namespaces)[0] == list(FALLBACK_LAYERS)


@pytest.fixture
def closed_tmpdir() -> Iterator[Path]:
    """A TMPDIR inside a 0700 directory (like ``mktemp -d``) under /tmp."""
    closed = Path(tempfile.mkdtemp(prefix="ca-closed-", dir="/tmp"))
    (closed / "tmp").mkdir()
    yield closed / "tmp"
    shutil.rmtree(closed, ignore_errors=True)


def test_sandbox_info_predicts_a_closed_tmpdir_on_a_root_host_without_namespaces(
    monkeypatch: pytest.MonkeyPatch, closed_tmpdir: Path
) -> None:
    """Regression: a 0700 TMPDIR (where the run folder and workspace are made) stopped the launcher's uid drop
    at start, but --sandbox-info said the sandbox runs. Now both refuse first, naming TMPDIR and the remedy."""
    import codeagent.sandbox.host.launch as launch_module
    import codeagent.sandbox.host.layers as layers_module
    from codeagent.sandbox.host.info import sandbox_info
    from codeagent.sandbox.host.manager import SandboxError, SandboxKernel
    from codeagent.sandbox.host.policy import SandboxPolicy

    closed = closed_tmpdir.parent
    monkeypatch.setattr(layers_module.os, "geteuid", lambda: 0)
    monkeypatch.setattr(launch_module, "python_prefix_paths", lambda: ["/usr/lib"])  # a Python all may reach
    no_namespaces = _statuses(set(ALL_LAYERS) - {"namespaces", "mounts", "pidns"})
    monkeypatch.setattr(layers_module, "probe", lambda: no_namespaces)
    monkeypatch.setattr(tempfile, "tempdir", "/tmp")
    assert choose_layers("auto")[0] == list(FALLBACK_LAYERS)  # an open TMPDIR: it runs
    monkeypatch.setattr(tempfile, "tempdir", str(closed_tmpdir))
    info = sandbox_info(SandboxPolicy())
    assert "refuses to run generated code here" in info, info
    assert f"it cannot enter {closed}, where its run folder and workspace are made" in info, info
    assert "TMPDIR=/tmp" in info and f"chmod o+x {closed};" in info, info
    with pytest.raises(SandboxError, match="TMPDIR=/tmp"):  # and the start refuses the same way, first
        SandboxKernel(SandboxPolicy()).start()
    assert os.listdir(closed_tmpdir) == []  # (nothing left behind)
    _, notes = choose_layers("auto", allow_root=True)  # the explicit opt-in: stays uid 0, warned
    assert any(n.startswith("WARNING the sandbox stays uid 0") for n in notes)


def test_no_seccomp_is_refused_unless_opted_in() -> None:
    """A kernel that cannot load seccomp filters: the namespaces alone leave ptrace, io_uring, bpf, keyctl and
    new namespaces callable, so auto refuses (naming the remedy and the opt-in); opted in, every run warns."""
    no_seccomp = _statuses(set(ALL_LAYERS) - {"seccomp"})
    for mode in ("auto", "namespaces"):
        with pytest.raises(SandboxUnavailable, match=r"without seccomp.*Remedy: .*sandbox_allow_no_seccomp = True"):
            choose_layers(mode, no_seccomp)
    layers, notes = choose_layers("auto", no_seccomp, allow_no_seccomp=True)
    assert layers == [name for name in ALL_LAYERS if name != "seccomp"]
    assert any(n.startswith("WARNING no seccomp filter") for n in notes)
    assert weakness(layers, notes).startswith("weaker sandbox: no seccomp: dangerous kernel interfaces")
    with pytest.raises(SandboxUnavailable, match="'landlock' needs"):  # the fallback needs seccomp, opt-in or not
        choose_layers("landlock", no_seccomp, allow_no_seccomp=True)


def test_choose_layers_refuses_without_any_sandbox() -> None:
    nothing = _statuses({"rlimits"})
    for mode in ("auto", "namespaces"):
        with pytest.raises(SandboxUnavailable, match="unsandboxed"):
            choose_layers(mode, nothing)
    with pytest.raises(SandboxUnavailable, match="'landlock' needs"):
        choose_layers("landlock", nothing)
    assert choose_layers("unsandboxed", nothing)[0] == ["rlimits"]  # what it can still apply
    with pytest.raises(SandboxUnavailable, match="user namespaces"):
        choose_layers("namespaces", _statuses(set(ALL_LAYERS) - {"namespaces", "mounts", "pidns"}))
    with pytest.raises(ValueError):
        choose_layers("docker", nothing)


# --------------------------------------------------------------------------- the mount plan


def test_mount_plan_puts_deeper_mounts_on_top(tmp_path: Path) -> None:
    readable = tmp_path / "src"
    (readable / "runs" / "k1").mkdir(parents=True)
    (readable / "runs" / "k2").mkdir()
    ws = tmp_path / "ws"
    ws.mkdir()
    view = build_view(
        {
            "workspace": str(ws),
            "run_dir": str(readable / "runs" / "k1"),
            "readable_paths": [str(readable), str(readable / "runs"), "/usr/lib", "/nonexistent"],
        }
    )
    assert view.readable == (str(readable),)  # nested, system and missing paths folded away
    assert view.hidden == (str(readable / "runs"),)  # the other kernels' run dirs next to ours
    ops = plan(view, tmp_mb=16, shm_mb=16)
    order = [op.target for op in ops]
    assert order.index("/tmp") < order.index(str(ws))
    assert order.index(str(readable)) < order.index(str(readable / "runs")) < order.index(str(readable / "runs" / "k1"))
    by_target = {op.target: op for op in ops}
    assert by_target[str(readable)].kind == "bind" and not by_target[str(readable)].writable
    assert by_target[str(readable / "runs")].kind == "tmpfs"
    assert by_target[str(ws)].writable and by_target[str(readable / "runs" / "k1")].writable
    assert by_target["/dev/null"].kind == "bind"


def test_view_does_not_hide_a_readable_path() -> None:
    view = FsView(system=("/usr",), readable=("/opt/app",), workspace="/opt/app/ws", run_dir="/tmp/r", hidden=())
    ops = plan(view, 8, 8)
    assert not any(op.kind == "tmpfs" and op.target == "/opt/app" for op in ops)


# --------------------------------------------------------------------------- launched probes


@needs_namespaces
@pytest.mark.parametrize("base", ["/tmp", "/var/tmp"])
def test_all_layers_confine_the_process(base: str, host_targets: HostTargets) -> None:
    sandbox = make_sandbox(base)
    try:
        _check_all_layers(sandbox, host_targets)
    finally:
        subprocess.run(["rm", "-rf", str(sandbox.root)], check=False)


def _check_all_layers(sandbox: Sandbox, host_targets: HostTargets) -> None:
    facts = run_probe(sandbox, host_targets, NAMESPACE_LAYERS, max_processes=24)
    assert facts["uid"] == EXPECTED_UID and facts["gid"] == EXPECTED_UID
    assert facts["groups"] in ([], [EXPECTED_UID]) or not IS_ROOT
    assert facts["pid"] == 2  # pid 1 is the forwarding init
    assert facts["procs"] == [1, 2] or set(facts["procs"]) <= {1, 2, 3, 4}
    for key in ("tcp", "udp", "unix_path", "unix_abstract", "read_secret", "read_bashrc", "write_etc"):
        assert denied(facts[key]), (key, facts[key])
    assert denied(facts["write_usr"])
    assert denied(facts["kill_host"])  # the host's pid does not exist in the sandbox's PID namespace
    # Files the host put in the run directory can be neither rewritten nor replaced ...
    assert denied(facts["rewrite_spec"]) and denied(facts["unlink_spec"])
    assert json.loads(sandbox.spec_file.read_text())["layers"] == NAMESPACE_LAYERS
    if not sandbox.root.is_relative_to("/tmp"):
        # ... and outside the private /tmp (whose Landlock grant covers what lies below it) the run
        # directory takes sockets only: no planted files, no symlinks for the host to follow.
        assert denied(facts["write_run_dir"]) and denied(facts["symlink_run_dir"])
    assert facts["write_workspace"] is True
    assert (sandbox.workspace / "probe.txt").stat().st_uid == EXPECTED_UID  # as the host sees it
    # A private /tmp: holds only the path down to our own directories, none of the host's entries.
    assert host_targets.tmp_marker not in facts["tmp_entries"]
    # Only what the spec shows may appear under /tmp: the sandbox's own directory and readable paths that
    # happen to live there (e.g. a checkout in /tmp on the Python path).
    shown = [Path(p) for p in sandbox.spec([], [])["readable_paths"]] + [sandbox.root]
    expected = sorted({p.relative_to("/tmp").parts[0] for p in shown if p.is_relative_to("/tmp")})
    assert facts["tmp_entries"] == expected
    assert facts["write_tmp"] is True
    status = facts["status"]
    assert status["CapEff"].strip("0") == "" and status["CapBnd"].strip("0") == ""
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"
    assert facts["unshare_user"] == os.strerror(1)  # EPERM
    assert facts["subprocess"] == "hi"
    assert facts["threads"] < 24  # RLIMIT_NPROC holds inside the sandbox's user namespace
    assert facts["memory"] == 64 * 1024 * 1024
    assert not os.path.exists("/etc/codeagent-probe")


@needs_namespaces
def test_address_space_limit(sandbox: Sandbox, host_targets: HostTargets) -> None:
    facts = run_probe(sandbox, host_targets, NAMESPACE_LAYERS, memory_mb=512, alloc_mb=768)
    assert facts["memory"].startswith("MemoryError")


@needs_fallback
def test_fallback_layers_without_namespaces(sandbox: Sandbox, host_targets: HostTargets) -> None:
    layers, _ = choose_layers("landlock", allow_root=True)
    facts = run_probe(sandbox, host_targets, layers)
    for key in ("tcp", "udp", "unix_abstract", "read_secret", "read_bashrc", "write_etc", "write_run_dir"):
        assert denied(facts[key]), (key, facts[key])
    assert denied(facts["kill_host"])  # Landlock's signal scope
    assert facts["write_workspace"] is True
    assert facts["subprocess"] == "hi"
    assert facts["status"]["CapEff"].strip("0") == "" and facts["status"]["NoNewPrivs"] == "1"


SYSTEM_PYTHON = "/usr/bin/python3"
NO_NAMESPACES = ["rlimits", "nproc", "capabilities", "no_new_privs", "landlock"]


@pytest.mark.skipif(not IS_ROOT or not os.path.exists(SYSTEM_PYTHON), reason="needs root and /usr/bin/python3")
def test_root_without_namespaces_drops_to_the_sandbox_uid(sandbox: Sandbox, host_targets: HostTargets) -> None:
    """Regression: the drop used to check the workspace before granting it, so the sandbox stayed uid 0."""
    cfg = {"tcp_port": host_targets.tcp_port, "unix_path": host_targets.unix_path, "abstract": host_targets.abstract,
           "secret_file": host_targets.secret_file, "run_dir": str(sandbox.run_dir), "host_pid": os.getpid(),
           "alloc_mb": 16}  # fmt: skip
    spec = sandbox.spec([SYSTEM_PYTHON, "-c", PROBE, json.dumps(cfg)], NO_NAMESPACES, allow_root=False)
    spec["readable_paths"] = ["/usr", PACKAGE_ROOT]
    sandbox.write_spec(spec)
    os.chmod(sandbox.root, 0o711)  # as the host's own run and workspace directories sit in /tmp
    done = subprocess.run(
        [SYSTEM_PYTHON, "-m", "codeagent.sandbox.guest.launcher", str(sandbox.spec_file)],
        capture_output=True, text=True, timeout=60, cwd=PACKAGE_ROOT, env={"PYTHONPATH": PACKAGE_ROOT},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert (facts["uid"], facts["gid"], facts["groups"]) == (SANDBOX_UID, SANDBOX_UID, [])
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert facts["status"][cap].strip("0") == "", (cap, facts["status"][cap])
    assert denied(facts["read_secret"]) and facts["write_workspace"] is True


@pytest.mark.skipif(not IS_ROOT or os.stat("/root").st_mode & 0o001 or not sys.prefix.startswith("/root/"),
                    reason="needs root and a Python under a 0700 /root")  # fmt: skip
def test_root_without_namespaces_refuses_to_stay_root(sandbox: Sandbox) -> None:
    done = sandbox.launch([sys.executable, "-c", "print('ran')"], NO_NAMESPACES, allow_root=False)
    assert done.returncode == 70 and "ran" not in done.stdout
    assert "refusing to run the sandbox as uid 0" in done.stderr and "/opt/venv" in done.stderr, done.stderr


@needs_namespaces
def test_sibling_run_dirs_inside_a_readable_tree_are_hidden(sandbox: Sandbox) -> None:
    """Run directories kept inside a readable tree: the sandbox sees its own, not the other kernels'."""
    tree = sandbox.root / "src"
    (tree / "runs" / "other").mkdir(parents=True)
    (tree / "runs" / "other" / "kernel.json").write_text("{}")
    (tree / "module.py").write_text("X = 1\n")
    own = tree / "runs" / "mine"
    own.mkdir(mode=0o700)
    box = Sandbox(sandbox.root, own, sandbox.workspace, own / "launch.json")
    script = (
        "import json, os; "
        f"print(json.dumps([sorted(os.listdir({str(tree)!r})), sorted(os.listdir({str(tree / 'runs')!r}))]))"
    )
    spec = box.spec([sys.executable, "-c", script], NAMESPACE_LAYERS)
    spec["readable_paths"].append(str(tree))
    box.write_spec(spec)
    done = subprocess.run(box.launcher_argv(), capture_output=True, text=True, timeout=60, cwd=PACKAGE_ROOT, env={})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [["module.py", "runs"], ["mine"]]


def test_unsandboxed_launch_changes_nothing(sandbox: Sandbox) -> None:
    done = sandbox.launch([sys.executable, "-c", "import os; print(os.geteuid(), os.getcwd())"], [])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(os.geteuid()), str(sandbox.workspace)]


def test_launcher_refuses_an_inconsistent_layer_list(sandbox: Sandbox) -> None:
    done = sandbox.launch([sys.executable, "-c", "print('ran')"], ["mounts"])
    assert done.returncode == EXIT_LOCKDOWN_FAILED
    assert "requires the 'namespaces' layer" in done.stderr and "ran" not in done.stdout


@pytest.mark.skipif(not IS_ROOT, reason="needs root to hand the spec to another uid")
def test_launcher_refuses_a_spec_it_does_not_own(sandbox: Sandbox) -> None:
    sandbox.write_spec(sandbox.spec([sys.executable, "-c", "print('ran')"], []))
    os.chown(sandbox.spec_file, SANDBOX_UID, SANDBOX_UID)
    done = subprocess.run(sandbox.launcher_argv(), capture_output=True, text=True, timeout=30, cwd=PACKAGE_ROOT)
    assert done.returncode != 0 and "ran" not in done.stdout
    assert "owned by uid" in done.stderr


@needs_namespaces
def test_killing_the_launcher_kills_everything_inside(sandbox: Sandbox) -> None:
    marker = f"{1000 + secrets.randbelow(10**6)}.{secrets.randbelow(1000)}"
    script = (
        f"import subprocess, time; subprocess.Popen(['sleep', '{marker}']); print('up', flush=True); time.sleep(600)"
    )
    sandbox.write_spec(sandbox.spec([sys.executable, "-c", script], NAMESPACE_LAYERS))
    proc = subprocess.Popen(sandbox.launcher_argv(), stdout=subprocess.PIPE, text=True, cwd=PACKAGE_ROOT, env={})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        assert _wait_until(lambda: bool(_pids_with_arg(marker)))
        proc.kill()
        proc.wait(timeout=10)
        assert _wait_until(lambda: not _pids_with_arg(marker))
    finally:
        if proc.poll() is None:
            proc.kill()


# --------------------------------------------------------------------------- a real kernel


def _pids_with_arg(arg: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if arg.encode() in argv:
                found.append(int(entry))
    return found


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def _wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


class KernelRun:
    """A jupyter_client kernel started through the launcher (or plainly, for comparison)."""

    def __init__(self, box: Sandbox, layers: list[str] | None) -> None:
        from codeagent.sandbox.host.jupyter import kernel_manager

        connection_file = str(box.run_dir / "kernel.json")
        kernel_argv = [sys.executable, "-m", "codeagent.sandbox.guest.kernel_entry", "-f", connection_file]
        if layers is None:
            argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        else:
            spec = box.spec(kernel_argv, layers, memory_mb=2048, max_processes=64, max_open_files=256)
            argv = [*box.launcher_argv()]
            box.write_spec(spec)
        self.km = kernel_manager(
            argv, ip=str(box.run_dir / "k"), connection_file=connection_file, display_name="sandbox"
        )
        self.env = box.spec([], [])["env"]
        self.log = open(box.root / "kernel.log", "ab")  # noqa: SIM115 - closed in stop()

    def start(self) -> float:
        t0 = time.perf_counter()
        self.km.start_kernel(env=self.env, stdout=self.log, stderr=self.log)
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        return time.perf_counter() - t0

    def run(self, code: str, timeout: float = 30) -> tuple[str, str]:
        out: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            content = msg["content"]
            if msg["msg_type"] == "stream":
                out.append(content["text"])
            elif msg["msg_type"] == "error":
                out.append(f"{content['ename']}: {content['evalue']}")

        # stop_on_error=False: otherwise ipykernel aborts requests that race the end of a failed one
        reply = self.kc.execute_interactive(code, output_hook=hook, timeout=timeout, stop_on_error=False)
        return reply["content"]["status"], "".join(out)

    def stop(self) -> None:
        if hasattr(self, "kc"):
            self.kc.stop_channels()
        if self.km.has_kernel:
            self.km.shutdown_kernel(now=False)
        self.log.close()


@pytest.mark.slow
@needs_namespaces
def test_kernel_runs_interrupts_and_leaves_nothing_behind(sandbox: Sandbox) -> None:
    kernel = KernelRun(sandbox, NAMESPACE_LAYERS)
    marker = f"{2000 + secrets.randbelow(10**6)}.{secrets.randbelow(1000)}"
    try:
        kernel.start()
        launcher = kernel.km.provisioner.process.pid  # type: ignore[union-attr]
        assert kernel.run("print('hello', 6 * 7)") == ("ok", "hello 42\n")
        assert kernel.run("import os; print(os.getuid(), os.getpid())") == ("ok", f"{EXPECTED_UID} 2\n")
        status, out = kernel.run(
            "import subprocess; print(subprocess.run(['echo', 'sub'], capture_output=True, text=True).stdout)"
        )
        assert (status, out.strip()) == ("ok", "sub")
        # Output of a forked child travels over the IOPub pipe, which now runs over ipc, not TCP.
        fork_code = (
            "import multiprocessing as mp\n"
            "p = mp.get_context('fork').Process(target=print, args=('from child',))\n"
            "p.start(); p.join()"
        )
        assert kernel.run(fork_code) == ("ok", "from child\n")

        msg_id = kernel.kc.execute("while True: pass", stop_on_error=False)
        time.sleep(0.5)
        kernel.km.interrupt_kernel()
        reply = _reply_to(kernel, msg_id)
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        msg_id = kernel.kc.execute("import subprocess; subprocess.run(['sleep', '100'])", stop_on_error=False)
        time.sleep(0.5)
        kernel.km.interrupt_kernel()  # reaches the kernel's process group: the sleep child too
        assert _reply_to(kernel, msg_id)["content"]["ename"] == "KeyboardInterrupt"
        assert kernel.run("print('still alive')") == ("ok", "still alive\n")

        assert kernel.run(f"import subprocess; subprocess.Popen(['sleep', '{marker}']); print('bg')")[0] == "ok"
        inside = _descendants(launcher)
        assert len(inside) >= 3 and _pids_with_arg(marker)
    finally:
        kernel.stop()
    assert _wait_until(lambda: not any(is_running(p) for p in [launcher, *inside]))
    assert not _pids_with_arg(marker)


def _reply_to(kernel: KernelRun, msg_id: str) -> dict[str, Any]:
    while True:
        msg = kernel.kc.get_shell_msg(timeout=20)
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


@needs_namespaces
def test_sigterm_reaches_the_kernel(sandbox: Sandbox) -> None:
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (print('got TERM', flush=True), sys.exit(3)))\n"
        "print('up', flush=True); time.sleep(60)\n"
    )
    sandbox.write_spec(sandbox.spec([sys.executable, "-c", script], NAMESPACE_LAYERS))
    proc = subprocess.Popen(sandbox.launcher_argv(), stdout=subprocess.PIPE, text=True, cwd=PACKAGE_ROOT, env={})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout.readline().strip() == "got TERM"
        assert proc.wait(timeout=10) == 3  # the kernel's exit status, passed up through init and launcher
    finally:
        if proc.poll() is None:
            proc.kill()
