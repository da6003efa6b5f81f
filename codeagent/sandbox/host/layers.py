"""Which lockdown layers to apply for a sandbox mode, given what this machine supports."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence

from codeagent.sandbox.guest.bridge_pool import POOL_SIZE
from codeagent.sandbox.guest.lockdown import LayerStatus, probe
from codeagent.sandbox.guest.lockdown.probe import user_namespaces_work
from codeagent.sandbox.protocol.launch_spec import ALL_LAYERS

#: Without namespaces: what still works for an unprivileged process (and for root without CAP_SYS_ADMIN).
FALLBACK_LAYERS = ("rlimits", "nproc", "capabilities", "no_new_privs", "landlock", "seccomp")
_NAMESPACE_LAYERS = ("namespaces", "mounts", "pidns")
_FALLBACK_REQUIRED = ("landlock", "seccomp", "no_new_privs")


class SandboxUnavailable(RuntimeError):
    """The requested sandbox mode cannot be provided on this machine."""


def closed_directories(paths: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """Each directory an unprivileged uid cannot traverse, with a needed path under it ([] when it can reach
    every one of ``paths`` without a mount namespace: o+x all the way). Default: what the sandbox reads
    (the interpreter's prefixes, sys.path entries outside them, the codeagent package)."""
    if paths is None:
        from codeagent.sandbox.host.launch import python_prefix_paths

        paths = python_prefix_paths()
    found: dict[str, str] = {}
    for needed in paths:
        path = os.path.abspath(needed)
        while True:
            try:
                closed = not os.stat(path).st_mode & 0o001
            except OSError:
                closed = True
            if closed:
                found.setdefault(path, needed)
            if path == "/":
                break
            path = os.path.dirname(path)
    return sorted(found.items(), key=lambda item: len(item[0]))


def closed_remedy(closed: list[tuple[str, str]]) -> str:
    """How to let the sandbox uid reach the paths ``closed`` (from :func:`closed_directories`) names."""
    where = ", ".join(d if d == needed else f"{d} (above {needed})" for d, needed in closed)
    fixes = []
    others = [d for d, _ in closed if not (d == "/root" or d.startswith("/root/"))]
    if len(others) < len(closed):
        fixes.append("a Python/venv outside /root (e.g. python3 -m venv /opt/venv)")
    if others:
        fixes.append(f"chmod o+x {' '.join(others)} (if nothing in it is secret: others may pass, not list it)")
    return f"it cannot enter {where}. Remedy: {' and '.join(fixes)}, or install Python and codeagent elsewhere"


def temp_remedy(closed: list[tuple[str, str]]) -> str:
    """How to let the sandbox uid into TMPDIR (``closed``: :func:`closed_directories` of it)."""
    dirs = " ".join(d for d, _ in closed)
    return (
        f"it cannot enter {dirs}, where its run folder and workspace are made (TMPDIR {tempfile.gettempdir()}). "
        f"Remedy: start the notebook with TMPDIR set to a directory others may enter (e.g. TMPDIR=/tmp), or "
        f"chmod o+x {dirs}"
    )


#: What each layer's absence costs, in one line (shown by --sandbox-info and the final view's warning).
LOSSES = {
    "namespaces": "host processes and the network stack are shared; so that no Unix socket of the host is "
    "reachable, the script may create no socket at all",
    "mounts": "the host file system is visible (read-only where Landlock allows); /tmp is shared",
    "nproc": "no limit on processes and threads: a fork bomb can slow the machine",
    "pidns": "host processes are listed in /proc",
    "capabilities": "nothing for an unprivileged user (it has no capabilities); root would keep its own",
    "no_new_privs": "setuid programs can raise privileges",
    "landlock": "no file-system allow-list beyond the mount namespace; TCP is blocked only by the network namespace",
    "seccomp": "dangerous kernel interfaces (ptrace, io_uring, bpf, keyctl, new namespaces) stay callable",
    "rlimits": "no memory, CPU or file-size limits",
}
REMEDIES = {
    "namespaces": "allow user namespaces (Docker: --security-opt seccomp=unconfined or a profile allowing "
    "unshare/clone with CLONE_NEWUSER; Ubuntu 24.04: an AppArmor profile for the notebook server, or "
    "sysctl kernel.apparmor_restrict_unprivileged_userns=0)",
    "landlock": "a Linux kernel >= 5.13 with Landlock enabled (lsm=...,landlock); not available in gVisor",
    "seccomp": "a kernel with seccomp filters (CONFIG_SECCOMP_FILTER) and libseccomp (apt install libseccomp2)",
}


NO_SECCOMP_REFUSAL = (
    "refusing to run generated code without seccomp ({detail}): inside the namespaces " + LOSSES["seccomp"] + ". "
    "Remedy: " + REMEDIES["seccomp"] + ". To run without it anyway: "
    "%config CodeAgent.sandbox_allow_no_seccomp = True (warned on every run)."
)


def platform_name(statuses: Sequence[LayerStatus]) -> str:
    """The kind of platform the probes suggest, in words."""
    if not sys.platform.startswith("linux"):
        return f"{sys.platform}: no Linux sandbox layers"
    ok = {s.name for s in statuses if s.available}
    container = os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv")
    if "namespaces" in ok and not user_namespaces_work():
        kind = "Linux without user namespaces, root with CAP_SYS_ADMIN (VM or bare metal)"
    elif "namespaces" in ok:
        kind = "full Linux" if "landlock" in ok else "Linux without Landlock (e.g. gVisor or a kernel < 5.13)"
    elif "landlock" in ok:
        kind = "container without user namespaces" if container else "Linux without user namespaces"
    else:
        kind = "Linux without user namespaces and without Landlock (e.g. gVisor in a restricted container)"
    if "seccomp" not in ok:
        kind += ", no seccomp"
    return kind + (", as root" if os.geteuid() == 0 else "")


def choose_layers(
    mode: str,
    statuses: Sequence[LayerStatus] | None = None,
    *,
    allow_root: bool = False,
    allow_no_seccomp: bool = False,
) -> tuple[list[str], list[str]]:
    """(layers to apply, notes for the user) for ``SandboxPolicy.mode``.

    auto: every layer when namespaces work (with a user namespace, or as root with CAP_SYS_ADMIN), else
    Landlock + seccomp + rlimits + no_new_privs; namespaces / landlock: that level or an error;
    unsandboxed: only the resource limits (with a warning note). Raises SandboxUnavailable when the mode
    cannot be met (e.g. on macOS or Windows, unless unsandboxed), when the sandbox would have to stay
    uid 0 and ``allow_root`` is off, or when seccomp cannot be applied and ``allow_no_seccomp`` is off.
    """
    if mode == "unsandboxed":
        return (["rlimits"] if os.name == "posix" else []), [
            "unsandboxed: generated code runs with your own user's rights, files and network"
        ]
    if mode not in ("auto", "namespaces", "landlock"):
        raise ValueError(f"unknown sandbox mode {mode!r}")
    status = {s.name: s for s in (statuses if statuses is not None else probe())}
    ok = {name for name, s in status.items() if s.available}
    notes: list[str] = []
    ns_ok = all(name in ok for name in _NAMESPACE_LAYERS)
    fallback_ok = all(name in ok for name in _FALLBACK_REQUIRED)

    if mode in ("auto", "namespaces") and ns_ok:
        if "seccomp" not in ok:
            if not allow_no_seccomp:
                raise SandboxUnavailable(NO_SECCOMP_REFUSAL.format(detail=status["seccomp"].detail))
            notes.append(
                "WARNING no seccomp filter (CodeAgent.sandbox_allow_no_seccomp): " + LOSSES["seccomp"] + " inside "
                "the namespaces"
            )
        layers = [name for name in ALL_LAYERS if name in ok]
        notes += [f"{name} unavailable: {status[name].detail}" for name in ALL_LAYERS if name not in ok]
        return layers, notes
    if not fallback_ok:
        missing = [f"{name}: {status[name].detail}" for name in _FALLBACK_REQUIRED if name not in ok]
        if mode == "landlock":
            raise SandboxUnavailable(f"sandbox mode 'landlock' needs {'; '.join(missing)}. Use mode 'auto'.")
        raise SandboxUnavailable(
            f"no sandbox is possible here ({sys.platform}): neither namespaces "
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
        notes.append(f"no namespaces ({status['namespaces'].detail}): Landlock + seccomp fallback")
    notes.append(
        "namespaces missing: the host's Unix sockets would be reachable by path (Landlock ABI <= 7 does not "
        "cover connect), so once started the sandbox may create no socket (socketpair stays): at most "
        f"{POOL_SIZE} tool calls are in flight at once, processes a script forks cannot call tools and what "
        "they print is lost, servers in the script fail; /tmp is shared; file modes, owners, times and "
        "extended attributes cannot be changed at all"
    )
    notes.append(
        "pidns missing: the sandbox sees host pids in /proc (not their command lines or environments); "
        "the host still kills every process a script started when it ends"
    )
    if "nproc" in layers and not (sys.platform.startswith("linux") and os.geteuid() == 0):
        notes.append("nproc: the process limit counts this uid's processes (the sandbox may add its limit)")
    as_root = sys.platform.startswith("linux") and os.geteuid() == 0
    closed = closed_directories() if as_root else []
    # the run folder and workspace are made in TMPDIR and handed to the sandbox uid: it must enter TMPDIR
    closed_temp = closed_directories([tempfile.gettempdir()]) if as_root else []
    if closed or closed_temp:
        if not allow_root:
            reasons = ([closed_remedy(closed)] if closed else []) + ([temp_remedy(closed_temp)] if closed_temp else [])
            raise SandboxUnavailable(
                "refusing to run generated code as root: without namespaces the sandbox must drop to an "
                f"unprivileged uid, and {'; and '.join(reasons)}; or run the notebook as an unprivileged user, "
                f"or {REMEDIES['namespaces']}. To run as root anyway: "
                "%config CodeAgent.sandbox_allow_root = True (warned on every run)."
            )
        notes.append(
            "WARNING the sandbox stays uid 0 (CodeAgent.sandbox_allow_root): root-owned files Landlock allows "
            "(e.g. /etc/shadow, /root) are readable and the per-uid process limit does not bind root"
        )
    return layers, notes


def weakness(layers: Sequence[str], notes: Sequence[str] = ()) -> str:
    """One line for the final view of every run in a weaker mode than full ("" when every layer is on)."""
    if not layers or layers == ["rlimits"]:
        return ""  # unsandboxed: the view shows its own, stronger warning
    missing = [name for name in ALL_LAYERS if name not in layers]
    as_root = any(n.startswith("WARNING the sandbox stays uid 0") for n in notes)
    if not missing and not as_root:
        return ""
    lost = "; ".join(LOSSES[name] for name in missing if name in ("namespaces", "landlock", "seccomp", "nproc"))
    parts = [f"weaker sandbox: no {', '.join(missing)}" if missing else "weaker sandbox"]
    if as_root:
        parts.append("runs as uid 0 (sandbox_allow_root)")
    return f"{' — '.join(parts)}{': ' + lost if lost else ''}. %codeagent --sandbox-info says how to fix it."
