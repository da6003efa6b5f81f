"""Run an MCP server so that it dies with the notebook kernel, even when the kernel is SIGKILLed.

``python -I -S leash.py [--remove-when-orphaned DIR] -- command args…`` (standard library only; run as a file,
not a module, so it needs no ``sys.path``). It starts the server with its own stdin/stdout/stderr, in its own
process group (the MCP SDK starts us as a session leader and signals that group on shutdown), and watches the
parent (the kernel) through a pidfd. When the parent goes, the whole group gets SIGTERM, then SIGKILL; as a
child subreaper it also kills descendants that left the group. When the server exits, whatever it left running
is ended the same way and the leash exits with the server's code.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
GRACE_S = 1.5


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)  # type: ignore[attr-defined,unused-ignore]
    except (AttributeError, OSError):
        return None


def _children() -> list[int]:
    """Processes whose parent is this one (reparented descendants included, as a subreaper)."""
    me = str(os.getpid())
    found: list[int] = []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, IndexError):
                    with open(f"/proc/{entry}/stat", "rb") as f:
                        stat = f.read().decode(errors="replace")
                    if stat[stat.rindex(")") + 2 :].split()[1] == me:
                        found.append(int(entry))
    return found


def _reap(server: int) -> int | None:
    """Reap finished children; the server's exit code once it has exited."""
    code = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return code
        if pid == 0:
            return code
        if pid == server:
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code


def _group_members() -> list[int]:
    """Other live processes in this process group."""
    me, group = os.getpid(), os.getpgrp()
    found = []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != me:
                with contextlib.suppress(OSError):
                    if os.getpgid(int(entry)) == group:
                        found.append(int(entry))
    return found


def _end_all(server: int) -> int | None:
    """SIGTERM the group, then SIGKILL every group member and child left; the server's exit code."""
    with contextlib.suppress(OSError):
        os.killpg(os.getpgrp(), signal.SIGTERM)  # this process ignores it
    code = None
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline:
        code = _reap(server) if code is None else code
        if not _children() and not _group_members():
            break
        time.sleep(0.05)
    for pid in set(_children()) | set(_group_members()):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.05)
    return _reap(server) if code is None else code


def _orphaned(server: int, leftover: str | None) -> int:
    _end_all(server)
    if leftover:
        import shutil

        shutil.rmtree(leftover, ignore_errors=True)
    return 137


def main(argv: list[str]) -> int:
    leftover = None  # a folder of the kernel's (the server's stderr log) to remove if the kernel dies first
    if argv[:1] == ["--remove-when-orphaned"] and len(argv) > 1:
        leftover, argv = argv[1], argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: leash.py -- command [args…]", file=sys.stderr)
        return 2
    parent = os.getppid()
    parent_fd = _pidfd(parent)
    if os.getppid() != parent or parent == 1:
        return 1  # the kernel is already gone
    with contextlib.suppress(Exception):  # Linux only; elsewhere reparented descendants are not tracked
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    signal.signal(signal.SIGTERM, lambda *_: None)  # the group's SIGTERM is for the server; we follow it out
    try:
        server = subprocess.Popen(argv).pid
    except OSError as e:
        print(f"cannot start {argv[0]!r}: {e.strerror or e}", file=sys.stderr)
        return 127
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)  # the server alone holds the pipes, so its exit is seen as end-of-file at once
    os.dup2(null, 1)
    server_fd = _pidfd(server)
    while True:
        code = _reap(server)
        if code is not None:
            if _children() or _group_members():  # what the server left behind goes with it
                _end_all(server)
            return code
        if os.getppid() != parent:
            return _orphaned(server, leftover)
        watched = [fd for fd in (parent_fd, server_fd) if fd is not None]
        if watched:
            ready = select.select(watched, [], [], 1.0 if parent_fd is not None else 0.2)[0]
        else:
            time.sleep(0.2)
            ready = []
        if parent_fd is not None and parent_fd in ready:
            return _orphaned(server, leftover)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
