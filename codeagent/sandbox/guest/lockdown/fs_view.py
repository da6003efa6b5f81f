"""What the sandbox may see of the file system: one description shared by the mount and Landlock layers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

#: System directories every interpreter needs (read + execute); missing ones are skipped.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc")
#: Directories the mount layer replaces with the sandbox's own: a readable path containing one of them (``/``,
#: ``/tmp`` as a notebook's cwd on sys.path) is not bound, as it would cover them and show the host's.
PRIVATE_DIRS = ("/tmp", "/dev", "/proc")
#: Device nodes bound into the sandbox's /dev: name -> writable.
DEVICES = {"null": True, "zero": True, "full": True, "random": False, "urandom": False, "tty": True}


def _norm(path: str) -> str:
    return os.path.normpath(os.path.abspath(path))


def is_within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


@dataclass(frozen=True)
class FsView:
    system: tuple[str, ...]  # existing system dirs (symlinks such as /bin -> usr/bin included)
    readable: tuple[str, ...]  # readable_paths not already under a system dir, outermost only
    workspace: str
    run_dir: str
    #: Directories to cover with an empty tmpfs where they show through a readable bind: the parents of
    #: the workspace and run directory (other sessions' siblings, e.g. run dirs kept inside a source tree).
    hidden: tuple[str, ...]
    #: Regular files already in the run directory (launch spec, connection file, log): bound read-only
    #: over themselves so the sandbox can neither rewrite nor replace them (e.g. with a symlink the host
    #: would follow when it rewrites the file on a restart).
    pinned: tuple[str, ...] = ()
    #: The workspace as a tmpfs: its mount options (size, nr_inodes), or "" to bind the host's directory.
    workspace_tmpfs: str = ""
    #: Host files replaced by synthetic ones: (target, source in the run directory).
    replaced: tuple[tuple[str, str], ...] = ()


def build(spec: dict[str, Any]) -> FsView:
    system = tuple(p for p in SYSTEM_DIRS if os.path.lexists(p))
    real_system = [os.path.realpath(p) for p in system if os.path.isdir(p)]
    readable: list[str] = []
    for raw in sorted({_norm(p) for p in spec.get("readable_paths", []) if p}, key=len):
        if not os.path.exists(raw) or any(is_within(private, raw) for private in PRIVATE_DIRS):
            continue
        if any(is_within(raw, s) or is_within(os.path.realpath(raw), s) for s in real_system):
            continue
        if any(is_within(raw, r) for r in readable):
            continue
        readable.append(raw)
    workspace, run_dir = _norm(spec["workspace"]), _norm(spec["run_dir"])
    wanted_hidden = {os.path.dirname(workspace), os.path.dirname(run_dir)}
    hidden = tuple(
        sorted(
            h
            for h in wanted_hidden
            if h != "/" and os.path.isdir(h) and h not in readable and any(is_within(h, r) for r in readable)
        )
    )
    with os.scandir(run_dir) as entries:
        pinned = tuple(sorted(e.path for e in entries if e.is_file(follow_symlinks=False)))
    limits = spec.get("limits") or {}
    tmpfs = ""
    if limits.get("workspace_mb"):
        tmpfs = f"mode=700,size={int(limits['workspace_mb'])}m,nr_inodes={int(limits.get('workspace_inodes') or 0)}"
        if spec.get("user_namespace") is False and spec.get("uid"):  # mounted as root, then root is dropped
            tmpfs += f",uid={int(spec['uid'])},gid={int(spec['uid'])}"
    replaced = tuple(
        (_norm(target), _norm(source))
        for target, source in sorted((spec.get("etc_files") or {}).items())
        if os.path.lexists(target) and is_within(_norm(source), run_dir) and os.path.isfile(source)
    )
    return FsView(system, tuple(readable), workspace, run_dir, hidden, pinned, tmpfs, replaced)


#: Of the host's /proc (no PID namespace), what the sandbox may read besides its own /proc/<pid>.
PROC_SYSTEM_FILES = ("meminfo", "cpuinfo", "stat", "loadavg", "uptime", "version", "filesystems", "sys")


#: Entries of our own /proc/<pid> that show the host's network namespace (its sockets, abstract names).
PROC_HOST_VIEWS = ("net", "task")  # task/<tid>/net is the same view


def own_proc_entries(rights: int) -> list[tuple[str, int]]:
    """This process's /proc entries except PROC_HOST_VIEWS (it keeps its pid when it execs the kernel), and
    except its magic links (``root``, ``cwd``, ``exe``): a rule is made on what a path opens to, which for
    those is the host's ``/``, the working directory and the interpreter."""
    base = f"/proc/{os.getpid()}"
    return [
        (f"{base}/{e}", rights)
        for e in sorted(os.listdir(base))
        if e not in PROC_HOST_VIEWS and not os.path.islink(f"{base}/{e}")
    ]


def landlock_grants(view: FsView, new_root: bool, fresh_proc: bool = True) -> list[tuple[str, int]]:
    """Landlock rules matching the view. ``new_root``: the mount layer built a root holding only this
    view, with its own /tmp and /dev/shm; on the host's tree the shared /tmp and /dev/shm get nothing
    (tempfile then falls back to the working directory). ``fresh_proc``: /proc shows only the sandbox's
    PID namespace; otherwise only this process's own entry (the kernel's: it keeps this pid; without its
    ``net`` view of the host's sockets) and a few system-wide files of the host's /proc are granted, so other
    processes' command lines and environments stay unreadable."""
    from . import landlock as ll

    grants: list[tuple[str, int]] = [("/", ll.READ_DIR)] if new_root else []  # the new root holds no secrets
    grants += [(p, ll.READ if p == "/etc" else ll.READ_EXEC) for p in view.system]
    grants += [(p, ll.READ_EXEC) for p in view.readable]
    if fresh_proc:
        grants += [("/proc", ll.READ)]
    else:
        grants += [*own_proc_entries(ll.READ), *((f"/proc/{n}", ll.READ) for n in PROC_SYSTEM_FILES)]
    grants += [("/sys/devices/system/cpu", ll.READ), ("/dev", ll.READ_DIR)]
    grants += [(f"/dev/{name}", ll.DEVICE_RW if w else ll.READ_FILE) for name, w in DEVICES.items()]
    if new_root:
        grants += [("/tmp", ll.READ_WRITE), ("/dev/shm", ll.READ_WRITE)]
    grants += [(view.workspace, ll.READ_WRITE), (view.run_dir, ll.SOCKETS_ONLY)]
    return grants
