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


def _selftest() -> dict[str, tuple[bool, str]]:
    """Every layer tried for real in a throw-away interpreter (lockdown.selftest): the probe must not change
    the (often multi-threaded) host process."""
    if not sys.platform.startswith("linux"):
        return {name: (False, f"Linux-only; not available on {sys.platform}") for name in _TESTS}
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
    try:
        out = subprocess.run(
            # -P: the package of PYTHONPATH, never a codeagent folder in the working directory
            [sys.executable, "-P", "-m", "codeagent.sandbox.guest.lockdown.selftest"],
            capture_output=True, text=True, timeout=30, check=False,
            env={"PYTHONPATH": package_root, "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )  # fmt: skip
        found = json.loads(out.stdout.strip().splitlines()[-1])
        return {name: (bool(found[name][0]), str(found[name][1])) for name in _TESTS}
    except (OSError, subprocess.SubprocessError, ValueError, IndexError, KeyError, TypeError) as e:
        return {name: (False, f"the layer self-test failed to run: {e}") for name in _TESTS}


_TESTS = ("userns", "rootns", "landlock", "seccomp")


@cache
def selftest() -> dict[str, tuple[bool, str]]:
    """Cached :func:`_selftest`: userns, rootns (root without a user namespace), landlock, seccomp."""
    return _selftest()


def probe() -> list[LayerStatus]:
    """Every layer of ALL_LAYERS with its availability here. Measured once per process (one short-lived
    interpreter tries the namespaces)."""
    return list(_measure())


@cache
def _measure() -> tuple[LayerStatus, ...]:
    linux = sys.platform.startswith("linux")
    found = selftest()
    userns_ok, userns_detail = found["userns"]
    rootns_ok, rootns_detail = found["rootns"]
    ns_ok = userns_ok or rootns_ok
    ns_detail = (
        userns_detail if userns_ok else rootns_detail if rootns_ok else f"user namespaces unusable ({userns_detail})"
    )
    ll_ok, ll_detail = found["landlock"]
    sc_ok, sc_detail = found["seccomp"]
    root = linux and os.geteuid() == 0
    facts = {
        "rlimits": (os.name == "posix", "address space, file size, CPU, core, open files"),
        "namespaces": (ns_ok, ns_detail),
        "mounts": (ns_ok, "new root: system dirs and prefix read-only, workspace and run dir writable"
                   if ns_ok else "needs namespaces"),
        "nproc": (os.name == "posix",
                  "process limit counted inside the sandbox's user namespace" if userns_ok
                  else "process limit of the sandbox's own uid" if root
                  else "process limit shared with every process of this uid" if os.name == "posix"
                  else "POSIX-only"),
        "pidns": (ns_ok, "own PID namespace with a forwarding init" if ns_ok else "needs namespaces"),
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


def user_namespaces_work() -> bool:
    """Whether the namespaces layer can use a user namespace (else it needs root's CAP_SYS_ADMIN)."""
    return selftest()["userns"][0]
