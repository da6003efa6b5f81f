"""seccomp: refuse (EPERM) the syscalls a notebook script never needs and that widen the kernel's attack
surface; allow everything else, since ipykernel, zmq and ordinary libraries use a broad set.

Only AF_UNIX sockets may be created (zmq ipc, asyncio's self-pipe). clone3 answers ENOSYS so libc falls
back to clone, whose flags a filter can inspect (namespace flags are refused). Syscalls unknown to the
installed libseccomp are skipped.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount",
    "fspick", "mount_setattr", "swapon", "swapoff",
    "unshare", "setns",
    "keyctl", "add_key", "request_key",
    "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "init_module", "finit_module", "delete_module",
    "kexec_load", "kexec_file_load", "reboot",
    "acct", "quotactl", "syslog", "lookup_dcookie", "name_to_handle_at", "open_by_handle_at",
    "uselib", "vhangup",
)  # fmt: skip

#: Without a mount namespace the sandbox shares the host's file system, and Landlock does not cover file
#: metadata (landlock(7)): changing modes, owners, times and extended attributes is refused outright.
METADATA = (
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "utime", "utimes", "utimensat", "futimesat",
    "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
    "setxattrat", "removexattrat",
)  # fmt: skip

_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x80)
_TIOCSTI = 0x5412
_TIOCLINUX = 0x541C
_TSYNC_ATTR = 4  # SCMP_FLTATR_CTL_TSYNC
_PR_SET_CHILD_SUBREAPER = 36  # the launcher's reaping role (lockdown.apply) must stay


def load_library() -> Any:
    """Import pyseccomp (it locates libseccomp with ldconfig: do this before the file system is locked)."""
    import pyseccomp

    return pyseccomp


def _rule(f: Any, sc: Any, action: int, name: str, *args: Any) -> None:
    try:
        nr = sc.resolve_syscall(sc.Arch.NATIVE, name)
    except Exception:
        return
    if nr < 0:
        return
    f.add_rule(action, nr, *args)


def install(shared_pids: bool = False) -> None:
    """Load the filter into this (single-threaded) process; inherited across fork and exec.

    ``shared_pids``: no PID namespace, so no pidfd of another process either (``pidfd_open``)."""
    sc = load_library()
    f = sc.SyscallFilter(sc.ALLOW)
    f.set_attr(_TSYNC_ATTR, 1)
    eperm = sc.ERRNO(errno.EPERM)
    for name in DENIED + (("pidfd_open",) if shared_pids else ()):
        _rule(f, sc, eperm, name)
    _rule(f, sc, eperm, "prctl", sc.Arg(0, sc.EQ, _PR_SET_CHILD_SUBREAPER))
    _rule(f, sc, sc.ERRNO(errno.ENOSYS), "clone3")
    for flag in _NAMESPACE_FLAGS:
        _rule(f, sc, eperm, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    for name in ("socket", "socketpair"):
        _rule(f, sc, eperm, name, sc.Arg(0, sc.NE, socket.AF_UNIX))
    for request in (_TIOCSTI, _TIOCLINUX):
        _rule(f, sc, eperm, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
    f.load()


def lock_shared_host() -> None:
    """A second filter for a sandbox that shares the host's file system (no mount namespace), loaded by the
    kernel once it has started (ipykernel itself copies files with their modes) and its connections to the
    tool bridge are open, before any script runs, on every thread (TSYNC): refuse the METADATA syscalls, and
    ``socket()`` of any family (the first filter left only AF_UNIX), so no Unix socket of the host can be
    reached by its path or abstract name (Landlock ABI < 8 does not cover connect(); its abstract-socket scope
    none of the path ones). ``socketpair()`` stays: it reaches nothing outside (asyncio's self-pipe)."""
    sc = load_library()
    f = sc.SyscallFilter(sc.ALLOW)
    f.set_attr(_TSYNC_ATTR, 1)
    for name in (*METADATA, "socket"):
        _rule(f, sc, sc.ERRNO(errno.EPERM), name)
    f.load()
