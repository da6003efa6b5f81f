"""Which lockdown layers this machine supports, and why not when it does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from functools import cache

from codeagent.sandbox.protocol.launch_spec import ALL_LAYERS


@dataclass(frozen=True)
class LayerStatus:
    name: str
    available: bool
    detail: str  # what the layer does here, or why it is missing


# Run in a throw-away interpreter: the probe must not change the (often multi-threaded) host process.
_NAMESPACE_PROBE = r"""
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
def step(name, ok):
    if not ok:
        e = ctypes.get_errno()
        print(json.dumps({"failed": name, "error": os.strerror(e)})); raise SystemExit(0)
def write(path, text):
    try:
        with open(path, "w") as f: f.write(text)
        return True
    except OSError as e:
        ctypes.set_errno(e.errno); return False
uid, gid = os.geteuid(), os.getegid()
step("unshare", libc.unshare(0x10000000 | 0x00020000 | 0x40000000 | 0x08000000 | 0x04000000 | 0x20000000) == 0)
step("uid_map", write("/proc/self/setgroups", "deny") and write("/proc/self/uid_map", f"{uid} {uid} 1")
     and write("/proc/self/gid_map", f"{gid} {gid} 1"))
step("mount", libc.mount(None, b"/", None, (1 << 14) | (1 << 18), None) == 0
     and libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, b"size=64k") == 0)
pid = os.fork()
if pid == 0:
    os.mkdir("/tmp/proc")
    os._exit(0 if libc.mount(b"proc", b"/tmp/proc", b"proc", 0, None) == 0 else ctypes.get_errno())
err = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(json.dumps({"failed": "proc" if err else None, "error": os.strerror(err) if err else ""}))
"""


def _probe_namespaces() -> tuple[bool, str]:
    if not sys.platform.startswith("linux"):
        return False, f"Linux namespaces are not available on {sys.platform}"
    try:
        out = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _NAMESPACE_PROBE],
            capture_output=True, text=True, timeout=20, check=False, env={},
        )  # fmt: skip
        result = json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as e:
        return False, f"namespace probe failed to run: {e}"
    if result["failed"]:
        return False, f"user namespaces unusable ({result['failed']}: {result['error']})"
    return True, "user, mount, network, IPC, UTS and PID namespaces work"


def _probe_landlock() -> tuple[bool, str]:
    if not sys.platform.startswith("linux"):
        return False, "Landlock is Linux-only"
    from .landlock import abi_version

    abi = abi_version()
    if abi < 1:
        return False, "Landlock is missing or disabled in this kernel (needs 5.13+, lsm=landlock)"
    extras = []
    if abi < 4:
        extras.append("no TCP restriction (ABI < 4)")
    if abi < 6:
        extras.append("no signal/abstract-socket scoping (ABI < 6)")
    return True, f"ABI {abi}" + (f"; {', '.join(extras)}" if extras else "")


def _probe_seccomp() -> tuple[bool, str]:
    if not sys.platform.startswith("linux"):
        return False, "seccomp is Linux-only"
    try:
        from .seccomp_filter import load_library

        load_library()
    except (ImportError, RuntimeError, OSError) as e:
        return False, f"pyseccomp/libseccomp unavailable: {e}"
    return True, "EPERM for ptrace, mount, namespaces, keyctl, bpf, io_uring, modules, non-AF_UNIX sockets"


def probe() -> list[LayerStatus]:
    """Every layer of ALL_LAYERS with its availability here. Measured once per process (one short-lived
    interpreter tries the namespaces)."""
    return list(_measure())


@cache
def _measure() -> tuple[LayerStatus, ...]:
    linux = sys.platform.startswith("linux")
    ns_ok, ns_detail = _probe_namespaces()
    ll_ok, ll_detail = _probe_landlock()
    sc_ok, sc_detail = _probe_seccomp()
    root = linux and os.geteuid() == 0
    facts = {
        "rlimits": (os.name == "posix", "address space, file size, CPU, core, open files"),
        "namespaces": (ns_ok, ns_detail),
        "mounts": (ns_ok, "new root: system dirs and prefix read-only, workspace and run dir writable"
                   if ns_ok else "needs user namespaces"),
        "nproc": (os.name == "posix" and (ns_ok or not root),
                  "process limit counted inside the sandbox's user namespace" if ns_ok
                  else "not enforced for uid 0 without a user namespace" if root
                  else "counts every process of this uid"),
        "pidns": (ns_ok, "own PID namespace with a forwarding init" if ns_ok else "needs user namespaces"),
        "capabilities": (
            linux and (ns_ok or root),
            "bounding, ambient and effective sets emptied, securebits locked" if ns_ok or root
            else "needs root or a user namespace (an unprivileged process has no capabilities to drop)"
            if linux else "Linux-only",
        ),
        "no_new_privs": (linux, "PR_SET_NO_NEW_PRIVS" if linux else "Linux-only"),
        "landlock": (ll_ok, ll_detail),
        "seccomp": (sc_ok, sc_detail),
    }  # fmt: skip
    return tuple(LayerStatus(name, *facts[name]) for name in ALL_LAYERS)
