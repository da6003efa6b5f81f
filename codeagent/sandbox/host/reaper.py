"""Every script ends clean: the processes a script started are killed and reaped before the next one runs.

The host does this from outside, so a hostile script cannot prevent it. Every process of a sandbox is a
descendant of its launcher: with a PID namespace the namespace's init adopts orphans, without one the
launcher is a child subreaper (which the seccomp filter keeps it from giving up). After each script the
host kills every descendant except the launcher, the init and the kernel, until none is left alive. The
kernel's own children become zombies of the kernel, and only the kernel can reap them: the host asks it to
(``runtime.reap_children``) and checks; the caller restarts the kernel when anything is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str  # one letter of /proc/<pid>/stat: R, S, D, Z, ...

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")


def process_table() -> dict[int, Proc]:
    """Every process of the host's PID namespace, from /proc/*/stat (for when CONFIG_PROC_CHILDREN is off)."""
    table: dict[int, Proc] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        fields = raw.rsplit(b")", 1)[-1].split()  # the command name may hold spaces and ')'
        if len(fields) >= 2:
            pid = int(name)
            table[pid] = Proc(pid, int(fields[1]), fields[0].decode("ascii", "replace"))
    return table


#: ``/proc/<pid>/task/<tid>/children`` exists (CONFIG_PROC_CHILDREN): a subtree is read without the whole table.
HAS_CHILDREN_FILES = os.path.exists(f"/proc/self/task/{threading.get_native_id()}/children")


def _read_proc(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[-1].split()
    except OSError:
        return None
    return Proc(pid, int(fields[1]), fields[0].decode("ascii", "replace")) if len(fields) >= 2 else None


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                kids.extend(int(k) for k in f.read().split())
    return kids


def subtree_table(root: int) -> dict[int, Proc]:
    """``root`` and every process below it, as :func:`process_table` has them. Read child by child when the
    kernel lists children (a few files for a sandbox, instead of a /proc/*/stat per process of the machine:
    ~9 ms per script on a busy host with 120 processes)."""
    if not HAS_CHILDREN_FILES:
        return process_table()
    table: dict[int, Proc] = {}
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        proc = _read_proc(pid)
        if proc is None or pid in table:
            continue
        table[pid] = proc
        frontier.extend(_children(pid))
    return table


def descendants(root: int, table: dict[int, Proc]) -> list[Proc]:
    """Every process below ``root`` in ``table``."""
    children: dict[int, list[Proc]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc)
    found: list[Proc] = []
    frontier = [root]
    while frontier:
        for child in children.get(frontier.pop(), []):
            found.append(child)
            frontier.append(child.pid)
    return found


def trusted_chain(launcher: int) -> list[int]:
    """The launcher and the processes it started before any script ran: [launcher, init, kernel] with a
    PID namespace, [launcher, kernel] with a supervising launcher, [launcher] when the kernel runs in it."""
    chain = [launcher]
    table = subtree_table(launcher)
    while True:
        kids = [p for p in descendants(chain[-1], table) if p.ppid == chain[-1] and not p.zombie]
        if len(kids) != 1:
            return chain
        chain.append(kids[0].pid)


@dataclass
class Cleanup:
    """What ending one script took."""

    killed: int = 0  # processes the script left alive
    zombies: int = 0  # children of the kernel left to reap
    left: int = 0  # processes still there after the cleanup (then the kernel must be restarted)


def kill_strays(launcher: int, keep: set[int], kernel: int, timeout: float = 2.0) -> Cleanup:
    """SIGKILL every descendant of ``launcher`` not in ``keep`` until none is alive.

    Killing races with forking (a fork bomb forks while it is killed), so it repeats until a round finds
    nothing alive. Zombies below init (or a supervising launcher) are reaped by it: this waits for them.
    Returns how many were killed and how many zombie children of ``kernel`` are left for it to reap.
    """
    result = Cleanup()
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        strays = [p for p in descendants(launcher, subtree_table(launcher)) if p.pid not in keep]
        alive = [p for p in strays if not p.zombie]
        for proc in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, signal.SIGKILL)
            killed.add(proc.pid)
        if not alive:
            result.killed = len(killed)
            result.zombies = sum(1 for p in strays if p.ppid == kernel)
            result.left = len(strays) - result.zombies
            if result.left == 0 or time.monotonic() > deadline:
                return result
            time.sleep(0.002)
            continue
        if time.monotonic() > deadline:
            result.killed = len(killed)
            result.left = len(alive)
            return result
