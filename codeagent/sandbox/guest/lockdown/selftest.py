"""Try each lockdown layer for real, each in a throw-away child: ``python -m ...lockdown.selftest``.

Prints one JSON object: layer -> [works, detail]. ``probe`` runs this in a fresh interpreter, so nothing
here touches the (multi-threaded) host process. A layer "works" only when applying it had its effect:
a namespace was created and a proc mounted in it, a Landlock ruleset denied a read, a seccomp filter
denied a socket.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
from collections.abc import Callable

from . import _sys


def _userns() -> str:
    from . import namespaces

    uid, gid = os.geteuid(), os.getegid()
    _sys.unshare(namespaces.FLAGS | _sys.CLONE_NEWPID)
    for path, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{path}", "w") as f:
            f.write(text)
    _mount_proc_in_child()
    return "user, mount, network, IPC, UTS and PID namespaces work"


def _rootns() -> str:
    """Root without a user namespace: needs CAP_SYS_ADMIN in the host's user namespace."""
    from . import namespaces

    if os.geteuid() != 0:
        raise OSError(errno.EPERM, "only root can create namespaces without a user namespace")
    _sys.unshare(namespaces.ROOT_FLAGS | _sys.CLONE_NEWPID)
    _mount_proc_in_child()
    return "mount, network, IPC, UTS and PID namespaces work without a user namespace (root, CAP_SYS_ADMIN)"


def _mount_proc_in_child() -> None:
    _sys.mount(None, "/", None, _sys.MS_REC | _sys.MS_PRIVATE)
    _sys.mount("tmpfs", "/tmp", "tmpfs", 0, "size=64k")
    pid = os.fork()
    if pid == 0:
        try:
            os.mkdir("/tmp/proc")
            _sys.mount("proc", "/tmp/proc", "proc", 0)
            os._exit(0)
        except OSError as e:
            os._exit(e.errno or 1)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code:
        raise OSError(code, f"mounting a fresh /proc: {os.strerror(code)}")


def _landlock() -> str:
    from . import landlock

    abi = landlock.abi_version()
    if abi < 1:
        raise OSError(errno.ENOSYS, "Landlock is missing or disabled in this kernel (needs 5.13+, lsm=landlock)")
    _sys.prctl(_sys.PR_SET_NO_NEW_PRIVS, 1)
    landlock.restrict([("/usr", landlock.READ_EXEC)])
    try:
        os.close(os.open("/", os.O_RDONLY | os.O_DIRECTORY))
    except PermissionError:
        pass
    else:
        raise OSError(errno.EINVAL, "a Landlock ruleset was applied but did not deny anything")
    extras = []
    if abi < 4:
        extras.append("no TCP restriction (ABI < 4)")
    if abi < 6:
        extras.append("no signal/abstract-socket scoping (ABI < 6)")
    return f"ABI {abi}" + (f"; {', '.join(extras)}" if extras else "")


def _seccomp() -> str:
    from . import seccomp_filter

    try:
        seccomp_filter.load_library()
    except (ImportError, OSError, RuntimeError) as e:
        raise OSError(errno.ENOENT, f"pyseccomp/libseccomp unavailable: {e}") from None
    _sys.prctl(_sys.PR_SET_NO_NEW_PRIVS, 1)
    try:
        seccomp_filter.install()
    except OSError as e:
        raise OSError(e.errno, f"this kernel cannot load seccomp filters ({os.strerror(e.errno or 0)})") from None
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
    except PermissionError:
        return "EPERM for ptrace, mount, namespaces, keyctl, bpf, io_uring, modules, non-AF_UNIX sockets"
    raise OSError(errno.EINVAL, "the filter loaded but did not deny anything")


TESTS: dict[str, Callable[[], str]] = {
    "userns": _userns,
    "rootns": _rootns,
    "landlock": _landlock,
    "seccomp": _seccomp,
}


def _run_in_child(test: Callable[[], str]) -> tuple[bool, str]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            result = [True, test()]
        except OSError as e:
            result = [False, e.strerror or str(e)]
        except Exception as e:
            result = [False, str(e) or type(e).__name__]
        os.write(w, json.dumps(result).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        raw = f.read()
    os.waitpid(pid, 0)
    try:
        ok, detail = json.loads(raw)
    except ValueError:
        return False, "the test process died"
    return bool(ok), str(detail)


def main() -> None:
    results = {name: _run_in_child(test) for name, test in TESTS.items()}
    sys.stdout.write(json.dumps(results) + "\n")


if __name__ == "__main__":
    main()
