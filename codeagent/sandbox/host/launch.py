"""What the guest launcher is given: the launch spec of a sandbox (paths it may read, its environment from an
allow-list, its limits and layers)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from codeagent.sandbox.host import etc_files
from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.sandbox.protocol.launch_spec import LaunchSpec, Limits

#: Environment variables passed into the sandbox, when set on the host. Nothing else (no keys, no tokens).
ENV_ALLOW = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")
#: The directory holding the ``codeagent`` package (an editable install's source tree must be visible inside).
PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])


def launcher_argv(launch_path: str) -> list[str]:
    """The command that starts a sandbox. ``-P``: the host's working directory (the notebook's folder) is not put
    on the launcher's ``sys.path``, so a ``codeagent`` folder there (another checkout, say) cannot stand in for the
    package the host runs; the launcher finds that one through ``PYTHONPATH`` (see :func:`sandbox_env`)."""
    return [sys.executable, "-P", "-m", "codeagent.sandbox.guest.launcher", launch_path]


def python_prefix_paths() -> list[str]:
    """Every directory the interpreter needs: base prefix, venv prefix, and sys.path entries outside them."""
    roots = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, sys.exec_prefix)}
    paths = set(roots)
    package_root = os.path.realpath(PACKAGE_ROOT)
    # The host's working directory is the notebook's folder: "" stands for it, and `python -m ipykernel_launcher`
    # puts it on sys.path by name. It is not the interpreter's, and the sandbox must not read it.
    try:
        cwd = os.path.realpath(os.getcwd())
    except OSError:  # the folder was removed under the notebook
        cwd = ""
    for entry in [*sys.path, PACKAGE_ROOT]:
        real = os.path.realpath(entry) if entry else ""
        if not real or (real == cwd and real != package_root) or not os.path.isdir(real):
            continue
        if not any(real == r or real.startswith(r + os.sep) for r in roots):
            paths.add(real)
    return sorted(paths)


def sandbox_env(workspace: str) -> dict[str, str]:
    """The sandbox's whole environment, built from an allow-list."""
    env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        HOME=workspace,
        TMPDIR=workspace,
        PYTHONPATH=PACKAGE_ROOT,
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        MPLCONFIGDIR=workspace,
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        # RLIMIT_AS counts reserved address space: fewer malloc arenas keep threads from eating the limit.
        MALLOC_ARENA_MAX="2",
        # Numeric libraries start no worker threads of their own: a thread still alive when a script ends
        # restarts the sandbox (SandboxKernel.end_script), so only threads a script started may be left.
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        JE_ARROW_MALLOC_CONF="background_thread:false",
    )
    return env


def uses_user_namespace(layers: list[str]) -> bool:
    """Whether the namespaces layer gets a user namespace (else: root with CAP_SYS_ADMIN, without one)."""
    from codeagent.sandbox.guest.lockdown.probe import user_namespaces_work

    return "namespaces" in layers and user_namespaces_work()


#: Without a user namespace, RLIMIT_NPROC counts every task of the sandbox's uid on the host: a root host gives
#: each such sandbox a uid of its own from this range (no task of it running, no passwd entry), so the process
#: limit is the sandbox's alone and sandboxes cannot signal or trace one another.
DEDICATED_UIDS = range(1 << 30, (1 << 30) + (1 << 20))


def sandbox_uid(policy: SandboxPolicy, layers: list[str]) -> int:
    """The uid a root host's sandbox runs as: ``policy.sandbox_uid``, or a dedicated one without a user
    namespace (unless the user chose a uid other than the default)."""
    default = SandboxPolicy.model_fields["sandbox_uid"].default
    if uses_user_namespace(layers) or set(layers) <= {"rlimits"} or policy.sandbox_uid != default:
        return policy.sandbox_uid
    import pwd
    import secrets

    from codeagent.sandbox.guest.lockdown.rlimits import tasks_of

    for _ in range(32):
        uid = DEDICATED_UIDS[secrets.randbelow(len(DEDICATED_UIDS))]
        try:
            pwd.getpwuid(uid)
        except KeyError:
            if tasks_of(uid) == 0:
                return uid
    return policy.sandbox_uid


def build_launch_spec(
    policy: SandboxPolicy, connection_file: str, workspace: str, run_dir: str, layers: list[str]
) -> LaunchSpec:
    """What the guest launcher applies before it starts the kernel of ``connection_file``."""
    p = policy
    uid = sandbox_uid(p, layers) if os.geteuid() == 0 else os.geteuid()
    limits: Limits = {
        "memory_mb": p.memory_mb,
        "cpu_seconds": p.cpu_seconds,
        "max_processes": p.max_processes,
        "max_file_mb": p.max_file_mb,
        "max_open_files": p.max_open_files,
    }
    quota_mounted = "mounts" in layers  # the workspace is a size- and inode-limited tmpfs
    if quota_mounted:
        limits["workspace_mb"], limits["workspace_inodes"] = p.workspace_mb, p.workspace_inodes
    gid = uid if os.geteuid() == 0 else os.getegid()
    return LaunchSpec(
        argv=[sys.executable, "-m", "codeagent.sandbox.guest.kernel_entry", "-f", connection_file],
        env=sandbox_env(workspace),
        workspace=workspace,
        run_dir=run_dir,
        readable_paths=python_prefix_paths(),
        layers=layers,
        limits=limits,
        uid=uid if os.geteuid() == 0 and not set(layers) <= {"rlimits"} else None,
        etc_files=etc_files.write(run_dir, uid, gid, workspace) if quota_mounted else {},
        user_namespace=uses_user_namespace(layers),
        allow_root=p.allow_root,
    )
