"""New user, mount, network, IPC, UTS and cgroup namespaces, with the uid/gid maps written."""

from __future__ import annotations

import os

from . import _sys
from .identity import Identity

HOSTNAME = "codeagent-sandbox"
FLAGS = (
    _sys.CLONE_NEWUSER
    | _sys.CLONE_NEWNS
    | _sys.CLONE_NEWNET
    | _sys.CLONE_NEWIPC
    | _sys.CLONE_NEWUTS
    | _sys.CLONE_NEWCGROUP
)

#: Root holding CAP_SYS_ADMIN where user namespaces are denied: the same isolation without a user namespace
#: (as nsjail and minijail do); the launcher then drops to the sandbox uid itself.
ROOT_FLAGS = FLAGS & ~_sys.CLONE_NEWUSER


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _map_self(ident: Identity) -> None:
    # Unprivileged rule: only our own ids, and setgroups must be denied before writing gid_map.
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{ident.uid} {ident.uid} 1\n")
    _write("/proc/self/gid_map", f"{ident.gid} {ident.gid} 1\n")


def _map_from_helper(ident: Identity) -> None:
    """unshare() as root, with the maps written by a child that stays in the parent namespace.

    Mapping another uid than our own needs CAP_SETUID in the *parent* user namespace, which a process
    loses the moment it enters the new one. setgroups stays allowed so the sandbox can drop root's groups.
    """
    target_pid = os.getpid()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        status = 1
        try:
            if os.read(go_r, 1) == b"1":
                _write(f"/proc/{target_pid}/uid_map", f"{ident.uid} {ident.uid} 1\n")
                _write(f"/proc/{target_pid}/gid_map", f"{ident.gid} {ident.gid} 1\n")
                status = 0
        finally:
            os._exit(status)
    os.close(go_r)
    try:
        _sys.unshare(FLAGS)
        os.write(go_w, b"1")
    finally:
        os.close(go_w)
        _, wstatus = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(wstatus) != 0:
        raise OSError("writing the uid/gid maps of the sandbox's user namespace failed")


def enter(ident: Identity, user_namespace: bool = True) -> None:
    """Leave the host's namespaces. The process keeps full capabilities inside the new user namespace
    (or, without one, root's capabilities until it drops to the sandbox uid)."""
    if not user_namespace:
        _sys.unshare(ROOT_FLAGS)
    elif ident.drops_root:
        _map_from_helper(ident)
    else:
        _sys.unshare(FLAGS)
        _map_self(ident)
    _sys.sethostname(HOSTNAME)
