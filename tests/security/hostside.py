"""The host side of the attacks: canary files, a real notebook kernel, the guard that checks them, /proc helpers."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client import KernelManager
from jupyter_core.paths import jupyter_runtime_dir

from tests.security.listeners import Listeners

HARMLESS = "# codeagent security test: this file should never have been written\n"


@dataclass
class Canary:
    """A secret-bearing file on the host; must keep its exact bytes and mode."""

    path: Path
    secret: str
    content: bytes = b""
    mode: int = 0o600

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(self.content)
        os.chmod(self.path, self.mode)

    def problem(self) -> str | None:
        try:
            st = self.path.stat()
            data = self.path.read_bytes()
        except OSError as e:
            return f"canary {self.path} is gone ({e})"
        if data != self.content:
            return f"canary {self.path} was changed"
        if stat.S_IMODE(st.st_mode) != self.mode:
            return f"canary {self.path} changed mode to {oct(stat.S_IMODE(st.st_mode))}"
        return None


@dataclass
class Canaries:
    """Secret files in the host's home (the run's private HOME, see tests/isolation.py) and the notebook's
    directory, and paths that must stay absent. Nothing is written into the machine's own home or /root."""

    token: str
    ssh_key: Canary
    dotenv: Canary
    startup_dir: Path  # ~/.ipython/profile_default/startup
    forbidden: dict[str, Path] = field(default_factory=dict)  # name -> path the sandbox must not create
    _startup_before: list[str] = field(default_factory=list)
    _made_dirs: list[Path] = field(default_factory=list)

    @classmethod
    def create(cls, token: str, notebook_dir: Path, site_packages: Path, package_dir: Path) -> Canaries:
        home = Path.home()
        made: list[Path] = []
        for d in (home / ".ssh", home / ".ipython" / "profile_default" / "startup"):
            if not d.exists():
                top = d
                while not top.parent.exists():
                    top = top.parent
                made.append(top)
                d.mkdir(parents=True)
        ssh = Canary(
            home / ".ssh" / f"id_ed25519_codeagent_{token}",
            f"SSHKEY-{token}",
            content=b"-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n-----END OPENSSH PRIVATE KEY-----\n"
            % f"SSHKEY-{token}".encode(),
        )
        dotenv = Canary(
            notebook_dir / ".env", f"DOTENV-{token}", content=f"OPENAI_API_KEY=sk-DOTENV-{token}\n".encode()
        )
        startup = home / ".ipython" / "profile_default" / "startup"
        forbidden = {
            "tmp": Path("/tmp") / f"codeagent-pwned-{token}",
            "tmp_dir": Path("/tmp") / f"codeagent-pwned-{token}.d",
            "home": home / f"codeagent-pwned-{token}",
            "notebook_dir": notebook_dir / f"pwned-{token}.py",
            "ipython_startup": startup / f"00-codeagent-pwned-{token}.py",
            "site_packages_pth": site_packages / f"codeagent-pwned-{token}.pth",
            "package_source": package_dir / f"pwned_{token}.py",
            "etc": Path("/etc") / f"codeagent-pwned-{token}",
            "pickle": notebook_dir / f"unpickled-{token}",
            "docstring": notebook_dir / f"docstring-ran-{token}",
            "victim": notebook_dir / f"victim-ran-{token}",
            "thread": notebook_dir / f"thread-wrote-{token}",
        }
        self = cls(token, ssh, dotenv, startup, forbidden, _made_dirs=made)
        for c in self.canaries():
            c.write()
        self._startup_before = sorted(os.listdir(startup))
        return self

    def canaries(self) -> list[Canary]:
        return [self.ssh_key, self.dotenv]

    def secrets(self) -> list[str]:
        return [c.secret for c in self.canaries()]

    def problems(self) -> list[str]:
        found = [p for c in self.canaries() if (p := c.problem())]
        found += [f"the sandbox created {path}" for path in self.forbidden.values() if os.path.lexists(path)]
        now = sorted(os.listdir(self.startup_dir)) if self.startup_dir.exists() else []
        if now != self._startup_before:
            found.append(f"IPython startup directory changed: {self._startup_before} -> {now}")
        return found

    def restore(self) -> None:
        for c in self.canaries():
            if c.problem():
                c.write()
        for path in self.forbidden.values():
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()

    def remove(self) -> None:
        self.restore()
        for c in self.canaries():
            with contextlib.suppress(OSError):
                c.path.unlink()
        for d in self._made_dirs:
            shutil.rmtree(d, ignore_errors=True)


class NotebookKernel:
    """A real ipykernel standing in for the user's notebook: TCP on 127.0.0.1, connection file in the runtime dir."""

    SENTINEL = "secret_balance"
    VALUE = 1234

    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        runtime = Path(jupyter_runtime_dir())
        runtime.mkdir(parents=True, exist_ok=True)
        # where a Jupyter server puts a notebook's connection file (a bare KernelManager would use /tmp)
        self.km = KernelManager(connection_file=str(runtime / f"kernel-{uuid.uuid4()}.json"))
        self.km.start_kernel(cwd=str(cwd), env=env or dict(os.environ))
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.run(f"{self.SENTINEL} = {self.VALUE}")

    @property
    def pid(self) -> int:
        return int(self.km.provisioner.process.pid)  # type: ignore[union-attr]

    @property
    def connection_file(self) -> str:
        return str(self.km.connection_file)

    def connection_info(self) -> dict[str, Any]:
        info = dict(self.km.get_connection_info())
        info["key"] = info["key"].decode() if isinstance(info["key"], bytes) else info["key"]
        return info

    def run(self, code: str, timeout: float = 60) -> str:
        """Execute ``code``; its stdout and final repr, or raise on error."""
        out: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            content = msg["content"]
            if msg["msg_type"] == "stream":
                out.append(content["text"])
            elif msg["msg_type"] == "execute_result":
                out.append(content["data"].get("text/plain", ""))
            elif msg["msg_type"] == "error":
                out.append("\n".join(content["traceback"]))

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"notebook kernel error: {''.join(out)}")
        return "".join(out)

    def problems(self) -> list[str]:
        if not self.km.is_alive():
            return ["the notebook kernel died"]
        try:
            value = self.run(f"print({self.SENTINEL}, 'pwned' in globals())", timeout=10).strip()
        except Exception as e:
            return [f"the notebook kernel does not answer: {type(e).__name__}: {e}"]
        if value != f"{self.VALUE} False":
            return [f"the notebook kernel's variables changed: {value!r}"]
        return []

    def restore(self) -> None:
        if self.km.is_alive():
            with contextlib.suppress(Exception):
                self.run(f"{self.SENTINEL} = {self.VALUE}\nglobals().pop('pwned', None)", timeout=10)

    def shutdown(self) -> None:
        self.kc.stop_channels()
        with contextlib.suppress(Exception):
            # asked, not killed: the notebook's exit handlers shut its sandboxes down (and remove their folders)
            self.km.shutdown_wait_time = 30.0
            self.km.shutdown_kernel(now=False)


@dataclass
class HostSecrets:
    """Fake secrets put in the host's environment before any sandbox of this suite starts."""

    env: dict[str, str]

    def values(self) -> list[str]:
        return list(self.env.values())


class HostGuard:
    """Everything on the host an attack could touch, and the check that none of it changed."""

    def __init__(self, listeners: Listeners, canaries: Canaries, notebook: NotebookKernel, secrets: HostSecrets):
        self.listeners = listeners
        self.canaries = canaries
        self.notebook = notebook
        self.secrets = secrets
        self.pid = os.getpid()
        self._hits = listeners.hits()

    def all_secrets(self) -> list[str]:
        return [*self.secrets.values(), *self.canaries.secrets()]

    def problems(self) -> list[str]:
        found = [
            f"{name} listener was reached {n - self._hits[name]} time(s)"
            for name, n in self.listeners.hits().items()
            if n != self._hits[name]
        ]
        found += self.canaries.problems()
        found += self.notebook.problems()
        missing = [k for k, v in self.secrets.env.items() if os.environ.get(k) != v]
        if missing:
            found.append(f"the host's environment changed: {missing}")
        return found

    def assert_unaffected(self) -> None:
        problems = self.problems()
        assert not problems, "the host was affected: " + "; ".join(problems)

    def restore(self) -> None:
        self.canaries.restore()
        self.notebook.restore()


# -- /proc helpers -----------------------------------------------------------------------------------


def parent_map() -> dict[int, int]:
    """pid -> ppid for every process visible on the host."""
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                text = Path(f"/proc/{entry}/stat").read_text()
                found[int(entry)] = int(text.rsplit(")", 1)[1].split()[1])
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren, ...)."""
    parents = parent_map()
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == current]
        found += kids
        frontier += kids
    return found


def status_fields(pid: int) -> dict[str, str]:
    """``/proc/<pid>/status`` as a dict (empty if the process is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def is_running(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    state = status_fields(pid).get("State", "")
    return bool(state) and not state.startswith(("Z", "X"))


def pids_with_marker(marker: str) -> list[int]:
    """Live processes whose command line contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            with contextlib.suppress(OSError):
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes() and is_running(int(entry)):
                    found.append(int(entry))
    return found


def wait_until(predicate: Any, timeout: float = 5.0, step: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass; its last value."""
    end = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > end:
            return False
        time.sleep(step)


def rss_kib(pid: int | None = None) -> int:
    """Resident set size of ``pid`` (default: this process) in KiB."""
    value = status_fields(pid or os.getpid()).get("VmRSS", "0 kB")
    return int(value.split()[0])
