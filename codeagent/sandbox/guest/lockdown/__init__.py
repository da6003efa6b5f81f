"""The lockdown layers applied by the launcher before ipykernel starts.

``apply(spec)`` applies every layer named in ``spec["layers"]`` (see ``launch_spec.LaunchSpec``) in the
order of ``ALL_LAYERS``; ``probe()`` reports which layers this machine supports (``--sandbox-info``).

With the ``pidns`` layer, ``apply`` forks twice and returns only in the process that is to exec the
kernel; the launcher process itself becomes a signal-forwarding supervisor and never returns.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from codeagent.sandbox.protocol.launch_spec import ALL_LAYERS

from .probe import LayerStatus, probe

if TYPE_CHECKING:
    from .fs_view import FsView
    from .identity import Identity

__all__ = ["ALL_LAYERS", "LayerStatus", "LockdownError", "apply", "probe"]

#: Layers that only make sense inside the namespaces the "namespaces" layer creates.
_NEEDS_NAMESPACES = ("mounts", "pidns")


class LockdownError(RuntimeError):
    """A requested layer could not be applied; the kernel must not start."""


def _check_layers(layers: list[str]) -> list[str]:
    unknown = sorted(set(layers) - set(ALL_LAYERS))
    if unknown:
        raise LockdownError(f"unknown lockdown layers: {unknown}")
    for layer in _NEEDS_NAMESPACES:
        if layer in layers and "namespaces" not in layers:
            raise LockdownError(f"layer {layer!r} requires the 'namespaces' layer")
    return [layer for layer in ALL_LAYERS if layer in layers]


def _single_threaded() -> None:
    # Landlock and seccomp (without TSYNC) bind only the calling thread; fork() keeps only it as well.
    try:
        if len(os.listdir("/proc/self/task")) != 1:
            raise LockdownError("the launcher must be single-threaded when the lockdown is applied")
    except FileNotFoundError:
        pass


@contextmanager
def _layer(name: str) -> Iterator[None]:
    try:
        yield
    except LockdownError:
        raise
    except Exception as e:
        raise LockdownError(f"lockdown layer {name!r} failed: {e}") from e


def apply(spec: dict[str, Any]) -> None:
    """Apply the layers in ``spec["layers"]``; raise LockdownError when one of them fails."""
    layers = _check_layers(list(spec.get("layers") or []))
    if not layers:
        return
    _single_threaded()
    with _layer("setup"):
        from . import _sys, caps, fs_view, identity, mounts, namespaces, pidns, rlimits
        from . import landlock as ll
        from . import seccomp_filter as sf

        if "seccomp" in layers:
            sf.load_library()  # finds libseccomp (via ldconfig) while the whole file system is visible
        limits = spec["limits"]
        view = fs_view.build(spec)
        ident = identity.target(spec)
    in_namespaces = "namespaces" in layers
    in_userns = in_namespaces and spec.get("user_namespace", True)

    if "rlimits" in layers:
        with _layer("rlimits"):
            rlimits.apply(limits)
    if in_namespaces:
        with _layer("namespaces"):
            identity.grant(spec, ident)
            namespaces.enter(ident, user_namespace=in_userns)
    if "mounts" in layers:
        with _layer("mounts"):
            tmp_mb = max(16, limits["memory_mb"] // 4)  # tmpfs pages are memory that RLIMIT_AS does not see
            sources = mounts.open_sources(view, tmp_mb=tmp_mb, shm_mb=min(tmp_mb, 64))
    if in_userns:
        with _layer("namespaces"):
            identity.switch(ident)  # keeps the namespace's capabilities (no uid 0 is mapped in it)
    if "mounts" in layers:
        with _layer("mounts"):
            mounts.build(sources)
    if "nproc" in layers:
        with _layer("nproc"):
            rlimits.apply_nproc(limits["max_processes"], shared_uid=None if in_userns else ident.uid)
    if "pidns" in layers:
        with _layer("pidns"):
            drop = (lambda: _drop_supervisor(ident)) if ident.drops_root and not in_userns else None
            pidns.enter(drop)  # from here on we are pid 1 of the new namespace
            if "mounts" not in layers:
                _sys.mount(None, "/", None, _sys.MS_REC | _sys.MS_PRIVATE)
                _sys.mount("proc", "/proc", "proc", _sys.MS_NOSUID | _sys.MS_NODEV | _sys.MS_NOEXEC)
    else:
        with _layer("reaper"):
            # Without our init, orphans of the script's processes are re-parented to the kernel (which the
            # host has reap them after each script); seccomp keeps the kernel from giving this up.
            _sys.prctl(_sys.PR_SET_CHILD_SUBREAPER, 1)
    if "mounts" in layers:
        with _layer("mounts"):
            mounts.finish(fresh_proc="pidns" in layers)
    if "capabilities" in layers:
        with _layer("capabilities"):
            caps.drop_bounding()
    if ident.drops_root and not in_userns:
        with _layer("identity"):
            _drop_root_directly(spec, view, ident, granted=in_namespaces)
    if "capabilities" in layers:
        with _layer("capabilities"):
            caps.clear()
            caps.verify_empty()
    if "no_new_privs" in layers:
        with _layer("no_new_privs"):
            _sys.prctl(_sys.PR_SET_NO_NEW_PRIVS, 1)
    if "landlock" in layers:
        with _layer("landlock"):
            ll.restrict(fs_view.landlock_grants(view, "mounts" in layers, fresh_proc="pidns" in layers))
    if "seccomp" in layers:
        with _layer("seccomp"):
            sf.install(shared_pids="pidns" not in layers)
    if "pidns" in layers:
        with _layer("pidns"):
            pidns.spawn_kernel()


def _drop_supervisor(ident: Identity) -> None:
    """The launcher outside the PID namespace (root, no user namespace) needs no privilege either."""
    from . import identity

    identity.switch(ident)
    identity.verify_dropped(ident)


def _drop_root_directly(spec: dict[str, Any], view: FsView, ident: Identity, granted: bool) -> None:
    """Without a user namespace, a root host switches to the sandbox uid as real root (which clears every
    capability), after handing it the workspace and run directory. When that uid could not even reach the
    interpreter (a prefix under a 0700 /root, without a mount namespace to re-root it), refuse, unless the
    user explicitly allowed a sandbox that stays uid 0."""
    from . import identity

    # The workspace and run directory are handed over below: their parents must let the uid through.
    needed = [*view.readable, spec["argv"][0], os.path.dirname(view.workspace), os.path.dirname(view.run_dir)]
    unreachable = [p for p in needed if not identity.reachable(p, ident)]
    if not unreachable:
        if not granted:  # (the namespaces layer granted them before the run directory's files were pinned)
            identity.grant(spec, ident)
        identity.switch(ident)
        identity.verify_dropped(ident)
        return
    if not spec.get("allow_root"):
        raise LockdownError(
            f"refusing to run the sandbox as uid 0: uid {ident.uid} cannot reach {unreachable[0]} "
            "(no user namespace to re-root it). Let it through (chmod o+x on the 0700 directory above it) or "
            "install Python and codeagent outside 0700 directories such as /root (e.g. python3 -m venv "
            "/opt/venv), run the notebook as an unprivileged user, or allow user namespaces; "
            "CodeAgent.sandbox_allow_root = True runs it as root anyway"
        )
    sys.stderr.write(
        f"codeagent sandbox: WARNING staying uid 0 (capabilities dropped): uid {ident.uid} cannot reach "
        f"{unreachable[0]}\n"
    )
