"""Which lockdown layers to apply for a sandbox mode, given what this machine supports."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from codeagent.sandbox.guest.lockdown import LayerStatus, probe
from codeagent.sandbox.protocol.launch_spec import ALL_LAYERS

#: Without user namespaces: what still works for an unprivileged process.
FALLBACK_LAYERS = ("rlimits", "capabilities", "no_new_privs", "landlock", "seccomp")
_NAMESPACE_LAYERS = ("namespaces", "mounts", "pidns")
_FALLBACK_REQUIRED = ("landlock", "seccomp", "no_new_privs")


class SandboxUnavailable(RuntimeError):
    """The requested sandbox mode cannot be provided on this machine."""


def _prefix_reachable_by_others() -> bool:
    """Whether an unprivileged uid can reach the interpreter without a mount namespace (o+x all the way)."""
    for prefix in {sys.base_prefix, sys.prefix}:
        path = os.path.abspath(prefix)
        while path != "/":
            try:
                if not os.stat(path).st_mode & 0o001:
                    return False
            except OSError:
                return False
            path = os.path.dirname(path)
    return True


def choose_layers(mode: str, statuses: Sequence[LayerStatus] | None = None) -> tuple[list[str], list[str]]:
    """(layers to apply, notes for the user) for ``SandboxPolicy.mode``.

    auto: every layer when user namespaces work, else Landlock + seccomp + rlimits + no_new_privs;
    namespaces / landlock: that level or an error; unsandboxed: nothing (with a warning note).
    Raises SandboxUnavailable when the mode cannot be met (e.g. on macOS or Windows, unless unsandboxed).
    """
    if mode == "unsandboxed":
        return [], ["unsandboxed: generated code runs with your own user's rights, files and network"]
    if mode not in ("auto", "namespaces", "landlock"):
        raise ValueError(f"unknown sandbox mode {mode!r}")
    status = {s.name: s for s in (statuses if statuses is not None else probe())}
    ok = {name for name, s in status.items() if s.available}
    notes: list[str] = []
    ns_ok = all(name in ok for name in _NAMESPACE_LAYERS)
    fallback_ok = all(name in ok for name in _FALLBACK_REQUIRED)

    if mode in ("auto", "namespaces") and ns_ok:
        layers = [name for name in ALL_LAYERS if name in ok]
        notes += [f"{name} unavailable: {status[name].detail}" for name in ALL_LAYERS if name not in ok]
        return layers, notes
    if not fallback_ok:
        missing = [f"{name}: {status[name].detail}" for name in _FALLBACK_REQUIRED if name not in ok]
        if mode == "landlock":
            raise SandboxUnavailable(f"sandbox mode 'landlock' needs {'; '.join(missing)}. Use mode 'auto'.")
        raise SandboxUnavailable(
            f"no sandbox is possible here ({sys.platform}): neither user namespaces "
            f"({status['namespaces'].detail}) nor Landlock + seccomp ({'; '.join(missing)}). "
            "Generated code will not run unless you choose the explicitly weaker mode 'unsandboxed' "
            "(%config CodeAgent.sandbox_mode = 'unsandboxed')."
        )
    if mode == "namespaces":
        raise SandboxUnavailable(
            f"sandbox mode 'namespaces' needs user namespaces: {status['namespaces'].detail}. "
            "Use mode 'auto' or 'landlock' for the Landlock + seccomp fallback."
        )
    layers = [name for name in FALLBACK_LAYERS if name in ok]
    if mode == "auto":
        notes.append(f"no user namespaces ({status['namespaces'].detail}): Landlock + seccomp fallback")
    notes.append(
        "without a mount namespace, Unix sockets the sandbox uid can reach by path stay connectable "
        "(Landlock ABI <= 7 does not cover them) and /tmp is not private"
    )
    notes.append("no process-count limit (RLIMIT_NPROC would count every process of this uid)")
    notes.append(
        "without PID and mount namespaces, host processes stay visible in /proc (e.g. their command lines) "
        "and processes the script starts can outlive the sandbox"
    )
    if sys.platform.startswith("linux") and os.geteuid() == 0 and not _prefix_reachable_by_others():
        notes.append(
            "the Python prefix is not reachable by an unprivileged uid without a mount namespace: "
            "the sandbox stays uid 0 (with no capabilities), so files root owns and Landlock allows "
            "(e.g. under /etc) stay readable"
        )
    return layers, notes
