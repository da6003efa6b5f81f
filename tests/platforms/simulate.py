"""Run a command as if on another platform, without changing anything machine-wide.

    python tests/platforms/simulate.py PLATFORM [--uid N --home DIR] -- COMMAND...

The wrapper installs a seccomp filter on itself (inherited by COMMAND and everything it starts, e.g. a
notebook kernel and its sandboxes), optionally drops capabilities the way Docker does, and optionally drops
to an unprivileged uid, then execs COMMAND. Platforms (see PLATFORMS):

* ``full``: nothing changed (a Linux laptop or VM with user namespaces, Landlock and seccomp).
* ``docker``: Docker's default seccomp profile: ``unshare``/``clone`` with ``CLONE_NEWUSER`` -> EPERM,
  ``clone3`` -> ENOSYS; as root also Docker's default capability set (no ``CAP_SYS_ADMIN``).
* ``vm-no-userns``: user namespaces disabled (``user.max_user_namespaces=0``) on a VM or bare metal: root
  keeps ``CAP_SYS_ADMIN``.
* ``docker-no-landlock``: ``docker`` plus Landlock's syscalls (444-446) -> ENOSYS (gVisor, old kernels).
* ``no-landlock``: only Landlock missing (gVisor has user namespaces but no Landlock).
* ``no-seccomp``: ``seccomp()`` and ``prctl(PR_SET_SECCOMP)`` -> EINVAL (a kernel without seccomp filters).

Only the standard library and pyseccomp (which the sandbox uses anyway) are needed.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from dataclasses import dataclass

CLONE_NEWUSER = 0x10000000
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
LANDLOCK_SYSCALLS = (444, 445, 446)
#: Docker's default capabilities (moby's defaultCapabilities).
DOCKER_CAPS = (0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31)  # CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID
# SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP


@dataclass(frozen=True)
class Platform:
    name: str
    description: str
    deny_userns: bool = False
    no_landlock: bool = False
    no_seccomp: bool = False
    docker_caps: bool = False


PLATFORMS = {
    p.name: p
    for p in (
        Platform("full", "Linux with user namespaces, Landlock and seccomp (a laptop, a VM)"),
        Platform("docker", "a container whose seccomp profile denies user namespaces", True, docker_caps=True),
        Platform("vm-no-userns", "user namespaces disabled, root keeps CAP_SYS_ADMIN (VM, bare metal)", True),
        Platform("docker-no-landlock", "a container without user namespaces or Landlock", True, True, docker_caps=True),
        Platform("no-landlock", "user namespaces but no Landlock (gVisor, kernels before 5.13)", no_landlock=True),
        Platform("no-seccomp", "a kernel that cannot load seccomp filters", no_seccomp=True),
    )
}


def install_filter(p: Platform) -> None:
    if not (p.deny_userns or p.no_landlock or p.no_seccomp):
        return
    import pyseccomp as sc

    f = sc.SyscallFilter(sc.ALLOW)
    f.set_attr(sc.Attr.CTL_NNP, 0)  # root may load a filter without no_new_privs; setuid keeps working
    if p.deny_userns:
        for name in ("unshare", "clone"):
            f.add_rule(sc.ERRNO(errno.EPERM), name, sc.Arg(0, sc.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))
        f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    if p.no_landlock:
        for nr in LANDLOCK_SYSCALLS:
            f.add_rule(sc.ERRNO(errno.ENOSYS), nr)
    if p.no_seccomp:
        f.add_rule(sc.ERRNO(errno.EINVAL), "seccomp")
        f.add_rule(sc.ERRNO(errno.EINVAL), "prctl", sc.Arg(0, sc.EQ, PR_SET_SECCOMP))
    f.load()


class _Header(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _Data(ctypes.Structure):
    _fields_ = (("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32))


def keep_only_caps(keep: tuple[int, ...]) -> None:
    """Drop every other capability from the bounding, effective, permitted and inheritable sets."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        if cap not in keep and libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), f"dropping capability {cap}")
    mask = sum(1 << c for c in keep)
    data = (_Data * 2)()
    for i in range(2):
        part = (mask >> (32 * i)) & 0xFFFFFFFF
        data[i].effective = data[i].permitted = part
        data[i].inheritable = 0
    if libc.syscall(126, ctypes.byref(_Header(0x20080522, 0)), data) != 0:  # capset (x86_64)
        raise OSError(ctypes.get_errno(), "capset")


def become(uid: int, home: str) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    os.environ.update(HOME=home, USER=f"user{uid}", LOGNAME=f"user{uid}")
    os.environ.pop("XDG_RUNTIME_DIR", None)


def main(argv: list[str]) -> None:
    if "--" not in argv or len(argv) < 3:
        raise SystemExit(__doc__)
    sep = argv.index("--")
    options, command = argv[1:sep], argv[sep + 1 :]
    platform = PLATFORMS[options[0]]
    uid = home = None
    rest = options[1:]
    while rest:
        key, value, rest = rest[0], rest[1], rest[2:]
        if key == "--uid":
            uid = int(value)
        elif key == "--home":
            home = value
        else:
            raise SystemExit(f"unknown option {key}")
    install_filter(platform)  # first: without no_new_privs loading a filter needs CAP_SYS_ADMIN
    if os.geteuid() == 0 and platform.docker_caps and uid is None:
        keep_only_caps(DOCKER_CAPS)
    if uid is not None:
        become(uid, home or "/nonexistent")
    os.environ["CODEAGENT_SIMULATED_PLATFORM"] = platform.name
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv)
