"""The contract between the host (which writes it) and the launcher (which reads it)."""

from __future__ import annotations

from typing import NotRequired, TypedDict

#: Layer names, in the order the launcher applies them.
ALL_LAYERS: tuple[str, ...] = (
    "rlimits",
    "namespaces",
    "mounts",
    "nproc",
    "pidns",
    "capabilities",
    "no_new_privs",
    "landlock",
    "seccomp",
)


class _RequiredLimits(TypedDict):
    memory_mb: int
    cpu_seconds: int
    max_processes: int
    max_file_mb: int
    max_open_files: int


class Limits(_RequiredLimits, total=False):
    #: With the mounts layer the workspace is a tmpfs of this size and inode count (else a bind of the host dir).
    workspace_mb: int
    workspace_inodes: int


class LaunchSpec(TypedDict):
    """Written as JSON into the run directory; ``python -m codeagent.sandbox.guest.launcher FILE`` reads it."""

    argv: list[str]  # what to exec at the end (ipykernel), argv[0] an absolute path
    env: dict[str, str]  # the complete environment of the kernel (already allow-listed)
    workspace: str  # absolute; the kernel's working directory, writable
    run_dir: str  # absolute, 0700; connection file, ipc sockets, bridge socket; must stay reachable
    readable_paths: list[str]  # the Python prefix: read + execute inside the sandbox
    layers: list[str]  # subset of ALL_LAYERS, applied in that order; [] means unsandboxed
    limits: Limits
    uid: int | None  # when the host is root: the unprivileged uid (and gid) to run as
    #: Files shown instead of the host's (with the mounts layer): target path -> file in the run directory,
    #: e.g. a synthetic /etc/passwd naming only the sandbox's user.
    etc_files: dict[str, str]
    #: False: the "namespaces" layer makes mount/PID/net namespaces without a user namespace (root holding
    #: CAP_SYS_ADMIN where user namespaces are denied), then drops to ``uid``. Default True.
    user_namespace: NotRequired[bool]
    #: True: the user accepted that the sandbox may stay uid 0 when it cannot drop root (warned every run).
    allow_root: NotRequired[bool]
