"""A fresh root file system for the sandbox, built from bind mounts inside its own mount namespace.

Only what the sandbox needs is mounted: system directories and the Python prefix read-only, the
workspace and run directory writable, a private /tmp and /dev/shm, a minimal /dev and (later) a fresh
/proc. Everything else of the host (other users' homes, /run and its sockets, other kernels' run
directories, /root) simply does not exist in the new root. Bind sources are opened as O_PATH
descriptors before anything is mounted, so a source hidden by an earlier mount (e.g. the prefix under a
0700 /root, or a run directory under /tmp) is still reachable; ``/proc/self/fd/N`` is the bind source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from . import _sys
from .fs_view import DEVICES, FsView

#: Where the new root is assembled (covered, in our private mount namespace only, by the new root).
STAGING = "/tmp"

_ST_TO_MS = {
    os.ST_RDONLY: _sys.MS_RDONLY,
    os.ST_NOSUID: _sys.MS_NOSUID,
    os.ST_NODEV: _sys.MS_NODEV,
    os.ST_NOEXEC: _sys.MS_NOEXEC,
    os.ST_NOATIME: _sys.MS_NOATIME,
    os.ST_NODIRATIME: _sys.MS_NODIRATIME,
    os.ST_RELATIME: _sys.MS_RELATIME,
}


@dataclass(frozen=True)
class MountOp:
    kind: str  # "bind" | "tmpfs" | "symlink"
    target: str  # absolute path inside the new root
    source: str = ""  # bind: host path; tmpfs: mount options; symlink: link text
    writable: bool = False


def _depth(path: str) -> int:
    return 0 if path == "/" else path.rstrip("/").count("/")


_RANK = {"tmpfs": 0, "bind": 1, "symlink": 2}


def plan(view: FsView, tmp_mb: int, shm_mb: int) -> list[MountOp]:
    """Mount operations, outermost first, so that deeper mounts land on top of the ones containing them."""
    ops: list[MountOp] = []
    for path in view.system:
        ops.append(MountOp("symlink", path, os.readlink(path)) if os.path.islink(path) else MountOp("bind", path, path))
    ops.extend(MountOp("bind", p, p) for p in view.readable)
    ops.extend(MountOp("tmpfs", h, "mode=755,size=64k") for h in view.hidden)
    ops.append(MountOp("tmpfs", "/tmp", f"mode=1777,size={tmp_mb}m", writable=True))
    ops.append(MountOp("tmpfs", "/dev", "mode=755,size=64k"))
    ops.append(MountOp("tmpfs", "/dev/shm", f"mode=1777,size={shm_mb}m", writable=True))
    ops.extend(MountOp("bind", f"/dev/{name}", f"/dev/{name}", writable=w) for name, w in DEVICES.items())
    ops.append(MountOp("symlink", "/dev/fd", "/proc/self/fd"))
    ops.extend(
        MountOp("symlink", f"/dev/{n}", f"/proc/self/fd/{i}") for i, n in enumerate(("stdin", "stdout", "stderr"))
    )
    if view.workspace_tmpfs:  # the kernel enforces the quota (ENOSPC); nothing lands on the host's disk
        ops.append(MountOp("tmpfs", view.workspace, view.workspace_tmpfs, writable=True))
    else:
        ops.append(MountOp("bind", view.workspace, view.workspace, writable=True))
    ops.extend(MountOp("bind", target, source) for target, source in view.replaced)
    ops.append(MountOp("bind", view.run_dir, view.run_dir, writable=True))
    ops.extend(MountOp("bind", p, p) for p in view.pinned)
    # Stable sort: at equal depth a tmpfs goes first and a writable bind after a read-only one.
    ops.sort(key=lambda op: (_depth(op.target), _RANK[op.kind], op.writable))
    return ops


def _locked_flags(fd: int) -> int:
    """Flags of the source mount, which a remount in a user namespace must keep."""
    f_flag = os.statvfs(fd).f_flag
    return sum(ms for st, ms in _ST_TO_MS.items() if f_flag & st)


def _mkdirs(path: str) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)


def _bind(op: MountOp, fd: int, target: str) -> None:
    is_dir = os.path.isdir(f"/proc/self/fd/{fd}")
    if is_dir:
        _mkdirs(target)
    else:
        _mkdirs(os.path.dirname(target))
        if not os.path.lexists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    _sys.mount(f"/proc/self/fd/{fd}", target, None, _sys.MS_BIND | (_sys.MS_REC if is_dir else 0))
    if op.target.startswith("/dev/"):
        return  # device nodes keep the flags of /dev (nodev would make them useless)
    extra = _sys.MS_NOSUID | _sys.MS_NODEV | (0 if op.writable else _sys.MS_RDONLY)
    _sys.mount(None, target, None, _sys.MS_REMOUNT | _sys.MS_BIND | _locked_flags(fd) | extra)


@dataclass(frozen=True)
class Sources:
    """The plan, with every bind source already open (O_PATH)."""

    ops: list[MountOp]
    fds: dict[str, int]


def open_sources(view: FsView, tmp_mb: int, shm_mb: int) -> Sources:
    """Open the bind sources. Call inside the new mount namespace (a bind source must belong to it) and
    before dropping root: the prefix may sit under /root (0700), which the sandbox uid cannot traverse."""
    ops = plan(view, tmp_mb, shm_mb)
    fds: dict[str, int] = {}
    try:
        for op in ops:
            if op.kind == "bind" and op.source not in fds:
                fds[op.source] = os.open(op.source, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        for fd in fds.values():
            os.close(fd)
        raise
    return Sources(ops, fds)


def build(sources: Sources) -> None:
    """Assemble the new root at STAGING. Runs as the sandbox uid: files created on a tmpfs mounted in a
    user namespace must belong to an id mapped in it."""
    _sys.mount(None, "/", None, _sys.MS_REC | _sys.MS_PRIVATE)
    try:
        _sys.mount("tmpfs", STAGING, "tmpfs", _sys.MS_NOSUID | _sys.MS_NODEV, "mode=755,size=4m")
        read_only_tmpfs = []
        for op in sources.ops:
            target = STAGING + op.target
            if op.kind == "bind":
                _bind(op, sources.fds[op.source], target)
            elif op.kind == "tmpfs":
                _mkdirs(target)
                _sys.mount("tmpfs", target, "tmpfs", _sys.MS_NOSUID | _sys.MS_NODEV, op.source)
                if not op.writable:
                    read_only_tmpfs.append(target)
            else:
                _mkdirs(os.path.dirname(target))
                os.symlink(op.source, target)
        _mkdirs(STAGING + "/proc")
        for target in [*reversed(read_only_tmpfs), STAGING]:
            _sys.mount(
                None,
                target,
                None,
                _sys.MS_REMOUNT | _sys.MS_BIND | _sys.MS_RDONLY | _sys.MS_NOSUID | _sys.MS_NODEV,
            )
    finally:
        for fd in sources.fds.values():
            os.close(fd)


def finish(fresh_proc: bool) -> None:
    """Mount /proc in the new root and make it the root; the host's tree is detached.

    A fresh proc instance needs a process inside the new PID namespace, and must be mounted while the
    host's /proc is still in this mount namespace (the kernel refuses proc mounts that would reveal more
    than an existing, fully visible one). Without a PID namespace the host's /proc is bound instead.
    """
    proc = STAGING + "/proc"
    if fresh_proc:
        _sys.mount("proc", proc, "proc", _sys.MS_NOSUID | _sys.MS_NODEV | _sys.MS_NOEXEC)
    else:
        _sys.mount("/proc", proc, None, _sys.MS_BIND | _sys.MS_REC)
    os.chdir(STAGING)
    _sys.pivot_root(".", ".")
    _sys.umount2(".", _sys.MNT_DETACH)
    os.chdir("/")
