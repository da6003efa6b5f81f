"""Tests never touch the machine's real home, and leave no processes or folders behind.

:func:`isolate` (called from ``tests/conftest.py`` before anything is collected) points ``HOME``, the IPython
and Jupyter directories, the XDG directories and ``TMPDIR`` at one private folder for this run. At the end,
:func:`leftovers` lists what the run left: processes below pytest or naming the private folder on their command
line (a sandbox whose host was killed is reparented, but its launch spec lives in the folder), and sandbox run
folders (``codeagent-*``) in the private temporary directory. Concurrent runs on one machine never see each
other's files.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

ENV_DIRS = {
    "HOME": "home",
    "IPYTHONDIR": "home/.ipython",
    "JUPYTER_CONFIG_DIR": "home/.jupyter",
    "JUPYTER_DATA_DIR": "home/.local/share/jupyter",
    "JUPYTER_RUNTIME_DIR": "home/.local/share/jupyter/runtime",
    "XDG_CACHE_HOME": "home/.cache",
    "XDG_CONFIG_HOME": "home/.config",
    "XDG_DATA_HOME": "home/.local/share",
    "MPLCONFIGDIR": "home/.config/matplotlib",
    "TMPDIR": "tmp",
}


_base: Path | None = None


def isolate() -> Path:
    """Create the private folder and point the environment at it; returns the folder. Once per run: a test
    module importing ``tests.conftest`` (for its helpers) gets the same folder."""
    global _base
    if _base is not None:
        return _base
    base = _base = Path(tempfile.mkdtemp(prefix="ca-tests-")).resolve()
    for variable, relative in ENV_DIRS.items():
        path = base / relative
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.environ[variable] = str(path)
    tempfile.tempdir = None  # tempfile caches the temporary directory: look again
    assert tempfile.gettempdir() == str(base / "tmp")
    # Like the real /tmp, traversable by others (not listable): a root host's sandbox drops to another uid
    # that must reach its workspace and run directory (each itself 0700) without a mount namespace.
    for traversable in (base, base / "tmp"):
        traversable.chmod(0o711)
    # IPython creates its profile on first start; do it now, so a test's "before" snapshot already has it.
    from IPython.core.profiledir import ProfileDir

    ProfileDir.create_profile_dir_by_name(os.environ["IPYTHONDIR"], "default")
    # Removed at exit, after IPython's own exit handlers (registered later, so run earlier) wrote their history.
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    return base


def _children() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def stray_processes(base: Path) -> dict[int, str]:
    """Live processes this run started that are still there: pid → command line."""
    me = os.getpid()
    parents = _children()
    below: set[int] = set()
    frontier = [me]
    while frontier:
        current = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == current and p not in below]
        below.update(kids)
        frontier += kids
    marker = str(base)
    naming = {p for p in parents if p != me and marker in command_line(p)}
    return {p: command_line(p)[:200] for p in sorted(below | naming) if alive(p)}


def stray_folders() -> list[str]:
    return sorted(str(p) for p in Path(tempfile.gettempdir()).glob("codeagent-*"))


def leftovers(base: Path, wait: float = 10.0) -> list[str]:
    """What the run left behind, after giving shutdowns ``wait`` seconds to finish; stray processes are killed."""
    deadline = time.monotonic() + wait
    while (stray_processes(base) or stray_folders()) and time.monotonic() < deadline:
        time.sleep(0.2)
    processes, folders = stray_processes(base), stray_folders()
    for pid in processes:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return [f"process {pid} still running: {cmd}" for pid, cmd in processes.items()] + [
        f"folder left behind: {f}" for f in folders
    ]
