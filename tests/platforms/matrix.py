"""The platform matrix: each simulated platform x user x Python, what ``--sandbox-info`` says, whether a call
runs, and how many attacks of the suite (tests/security) succeed there.

    python -m tests.platforms.matrix [--attacks all|subset|none] [MODE ...]   (as root; prints a table)

Each mode runs in child processes under ``tests/platforms/simulate.py`` (a seccomp filter, Docker's
capabilities, an unprivileged uid), so nothing machine-wide changes. A failed attack test counts as an
attack that succeeded. Non-root modes need a Python an unprivileged uid can reach: a venv of Debian's
``/usr/bin/python3`` made in a temporary directory (``debian_venv``), and a copy of the repository there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SIMULATE = Path(__file__).with_name("simulate.py")
DEBIAN_PYTHON = "/usr/bin/python3"
PYENV_PYTHON = sys.executable  # the interpreter this runs on (in CI: pyenv's, under /root)
#: The "python under /root" modes need this interpreter to live there, behind a 0700 /root (pyenv's in CI; not
#: a venv of Debian's python made elsewhere, as a fresh machine may run the tests from).
PYTHON_UNDER_CLOSED_ROOT = sys.prefix.startswith("/root/") and not os.stat("/root").st_mode & 0o001
USER_UID = 23456
#: The attacks run in CI in every mode (the full suite is measured by this script).
SUBSET = [
    "tests/security/test_attacks_filesystem.py::test_read_ssh_keys",
    "tests/security/test_attacks_filesystem.py::test_read_root",
    "tests/security/test_attacks_filesystem.py::test_read_host_proc_environ_cmdline_mem",
    "tests/security/test_attacks_filesystem.py::test_tamper_with_host_files",
    "tests/security/test_attacks_network.py::test_tcp_to_a_host_loopback_listener",
    "tests/security/test_attacks_network.py::test_ssh_agent_socket",
    "tests/security/test_attacks_unix_sockets.py::test_private_socket_of_the_same_user",
    "tests/security/test_attacks_unix_sockets.py::test_tools_work_from_threads_and_event_loops",
    "tests/security/test_attacks_process.py::test_kill_host_processes",
    "tests/security/test_attacks_process.py::test_privileges_and_identity",
    "tests/security/test_attacks_resources.py::test_fork_bomb_then_a_working_call_at_once",
]
ATTACK_FILES = [
    "tests/security/test_attacks_bridge.py",
    "tests/security/test_attacks_filesystem.py",
    "tests/security/test_attacks_network.py",
    "tests/security/test_attacks_process.py",
    "tests/security/test_attacks_resources.py",
    "tests/security/test_attacks_unix_sockets.py",
    "tests/security/test_host_death.py",
]


@dataclass(frozen=True)
class Mode:
    name: str
    platform: str  # a simulate.PLATFORMS name
    user: bool  # run as an unprivileged uid (else root)
    python: str  # "debian" (a venv of /usr/bin/python3 in /tmp) or "pyenv" (this interpreter, under /root)
    runs: bool  # whether a call is expected to run
    allow_root: bool = False  # the explicit opt-in (CodeAgent.sandbox_allow_root)
    allow_no_seccomp: bool = False  # the explicit opt-in (CodeAgent.sandbox_allow_no_seccomp)

    @property
    def needs_python_under_root(self) -> bool:
        """The mode is about an interpreter behind a 0700 /root (its name says so)."""
        return "python under /root" in self.name

    @property
    def opt_ins(self) -> str:
        """The SandboxPolicy keyword arguments of this mode's opt-ins."""
        return f"allow_root={self.allow_root}, allow_no_seccomp={self.allow_no_seccomp}"

    @property
    def opt_in_env(self) -> dict[str, str]:
        """The same for the attack suite (tests/security/attack.py)."""
        names = [name for name in ("allow_root", "allow_no_seccomp") if getattr(self, name)]
        return {f"CODEAGENT_SECURITY_{name.upper()}": "1" for name in names}


MODES = [
    Mode("laptop user", "full", True, "debian", True),
    Mode("root, Debian python", "full", False, "debian", True),
    Mode("root, python under /root", "full", False, "pyenv", True),
    Mode("Docker (no userns), root, Debian python", "docker", False, "debian", True),
    Mode("Docker (no userns), root, python under /root", "docker", False, "pyenv", False),
    Mode("Docker (no userns), root, python under /root, allow_root", "docker", False, "pyenv", True, True),
    Mode("Docker (no userns) or Ubuntu 24.04, user", "docker", True, "debian", True),
    Mode("VM without userns, root (CAP_SYS_ADMIN)", "vm-no-userns", False, "pyenv", True),
    Mode("no userns and no Landlock, user", "docker-no-landlock", True, "debian", False),
    Mode("no Landlock (gVisor), user", "no-landlock", True, "debian", True),
    Mode("no seccomp, user", "no-seccomp", True, "debian", False),
    Mode("no seccomp, user, allow_no_seccomp", "no-seccomp", True, "debian", True, allow_no_seccomp=True),
]

INFO = """
from codeagent.sandbox.host.info import sandbox_info
from codeagent.sandbox.host.policy import SandboxPolicy
print(sandbox_info(SandboxPolicy({opt_ins})))
"""
CALL = """
import json, os
from codeagent.sandbox.host.manager import SandboxError, SandboxKernel
from codeagent.sandbox.host.policy import SandboxPolicy
class Refuse:
    def begin(self, request):
        raise AssertionError("no tools here")
try:
    with SandboxKernel(SandboxPolicy({opt_ins})) as sb:
        out = sb.execute("import os; print(os.getuid(), 6 * 7)", Refuse()).output.strip()
        print(json.dumps({{"ran": out.endswith(" 42"), "uid": out.split()[0], "layers": sb.layers,
                          "warning": sb.warning}}))
except SandboxError as e:
    print(json.dumps({{"ran": False, "refused": str(e).splitlines()[0]}}))
"""


@dataclass
class Result:
    mode: Mode
    platform_line: str = ""
    info: str = ""
    call: dict[str, object] = field(default_factory=dict)
    attacks_run: int = 0
    attacks_succeeded: list[str] = field(default_factory=list)
    attacks_skipped: int = 0
    attack_log: str = ""  # what pytest printed


class Matrix:
    """The shared pieces: a copy of the repository and the Debian venv, both reachable by any uid."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="ca-matrix-", dir="/tmp"))
        self.base.chmod(0o755)
        self.repo = self.base / "repo"
        for part in ("codeagent", "tests"):
            shutil.copytree(REPO / part, self.repo / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copy(REPO / "pyproject.toml", self.repo / "pyproject.toml")
        self._venv: Path | None = None
        self.reports = self.base / "reports"  # junit files, written by whichever uid runs the suite
        self.reports.mkdir()
        self.reports.chmod(0o1777)

    def close(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    def python(self, mode: Mode) -> str:
        return str(self.debian_venv() / "bin" / "python") if mode.python == "debian" else PYENV_PYTHON

    def debian_venv(self) -> Path:
        """A venv of Debian's python with the project's dependencies and pytest (made once)."""
        if self._venv is None and os.environ.get("CODEAGENT_MATRIX_DEBIAN_VENV"):
            self._venv = Path(os.environ["CODEAGENT_MATRIX_DEBIAN_VENV"])  # one made earlier (reachable by all)
        if self._venv is None:
            venv = self.base / "debian-venv"
            subprocess.run([DEBIAN_PYTHON, "-m", "venv", str(venv)], check=True, timeout=300)
            deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
            deps += ["pytest", "numpy", "pandas", "pyarrow"]  # the attack suite's data attacks need the last three
            subprocess.run(
                [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *deps],
                check=True, timeout=900,
            )  # fmt: skip
            self._venv = venv
        return self._venv

    def run(self, mode: Mode, argv: list[str], timeout: float, extra_env: dict[str, str] | None = None) -> str:
        home = Path(tempfile.mkdtemp(prefix="home-", dir=self.base))
        if mode.user:
            os.chown(home, USER_UID, USER_UID)
        wrapper = [PYENV_PYTHON, str(SIMULATE), mode.platform]
        if mode.user:
            wrapper += ["--uid", str(USER_UID), "--home", str(home)]
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(self.repo),
            "PYTHONDONTWRITEBYTECODE": "1",
            "TMPDIR": "/tmp",
            **(extra_env or {}),
        }
        done = subprocess.run(
            [*wrapper, "--", self.python(mode), *argv], cwd=self.repo, env=env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        shutil.rmtree(home, ignore_errors=True)
        return done.stdout + ("\n" + done.stderr if done.returncode else "")

    def measure(self, mode: Mode, attacks: str) -> Result:
        result = Result(mode)
        result.info = self.run(mode, ["-c", INFO.format(opt_ins=mode.opt_ins)], 120).strip()
        result.platform_line = result.info.splitlines()[0] if result.info else ""
        out = self.run(mode, ["-c", CALL.format(opt_ins=mode.opt_ins)], 180)
        try:
            result.call = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            result.call = {"ran": False, "error": out[-2000:]}
        if attacks != "none" and result.call.get("ran"):
            self.attack(result, SUBSET if attacks == "subset" else ATTACK_FILES)
        return result

    def attack(self, result: Result, selection: list[str]) -> None:
        report = self.reports / f"junit-{len(os.listdir(self.reports))}.xml"
        env = result.mode.opt_in_env
        result.attack_log = self.run(
            result.mode,
            ["-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", "-o", "junit_family=xunit1",
             *selection],
            1800, env,
        )  # fmt: skip
        if not report.exists():
            result.attacks_succeeded.append("the attack suite did not run")
            return
        for case in ET.parse(report).getroot().iter("testcase"):
            name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
            if case.find("skipped") is not None:
                result.attacks_skipped += 1
                continue
            result.attacks_run += 1
            if case.find("failure") is not None or case.find("error") is not None:
                result.attacks_succeeded.append(name)
        report.unlink()


def table(results: list[Result]) -> str:
    """The matrix as a Markdown table."""
    rows = ["| mode | platform (--sandbox-info) | layers missing | call | attacks that succeeded |",
            "| --- | --- | --- | --- | --- |"]  # fmt: skip
    from codeagent.sandbox.protocol.launch_spec import ALL_LAYERS

    for r in results:
        platform = r.platform_line.removeprefix("codeagent sandbox (mode auto) on ").rstrip(":")
        if "refuses" in platform:
            platform = platform.split(":")[0].removesuffix(": refuses to run generated code here")
        layers = r.call.get("layers")
        missing = ", ".join(n for n in ALL_LAYERS if n not in layers) if isinstance(layers, list) else "-"
        if r.call.get("ran"):
            call = f"runs (uid {r.call.get('uid')})"
        else:
            call = f"refused: {str(r.call.get('refused') or r.call.get('error', ''))[:90]}"
        attacks = "-"
        if r.attacks_run:
            names = f" ({', '.join(r.attacks_succeeded)})" if r.attacks_succeeded else ""
            attacks = f"{len(r.attacks_succeeded)} of {r.attacks_run}{names}"
        rows.append(f"| {r.mode.name} | {platform} | {missing or 'none'} | {call} | {attacks} |")
    return "\n".join(rows)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attacks", choices=("all", "subset", "none"), default="all")
    parser.add_argument("-v", "--verbose", action="store_true", help="print pytest's output of failed attacks")
    parser.add_argument("modes", nargs="*", help="mode names (substrings) to run; default all")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("the matrix simulates root and non-root modes: run it as root")
    chosen = [m for m in MODES if not args.modes or any(s in m.name for s in args.modes)]
    if not PYTHON_UNDER_CLOSED_ROOT:
        left_out = [m.name for m in chosen if m.needs_python_under_root]
        chosen = [m for m in chosen if not m.needs_python_under_root]
        print(f"left out (this interpreter is not under a 0700 /root): {', '.join(left_out)}", flush=True)
    matrix = Matrix()
    try:
        results = []
        for mode in chosen:
            result = matrix.measure(mode, args.attacks)
            results.append(result)
            print(f"## {mode.name}\n{result.info}\ncall: {result.call}\nattacks: {result.attacks_run} run, "
                  f"{len(result.attacks_succeeded)} succeeded {result.attacks_succeeded}\n", flush=True)  # fmt: skip
            if result.attacks_succeeded and args.verbose:
                print(result.attack_log[-20000:], flush=True)
        print(table(results))
    finally:
        matrix.close()


if __name__ == "__main__":
    main(sys.argv[1:])
