"""Resource limits: memory, file size, CPU, core dumps, descriptors, and (after unshare) processes."""

from __future__ import annotations

import os
import resource
from collections.abc import Mapping

_MB = 1024 * 1024


def cpu_hard_limit(cpu_seconds: int) -> int:
    """The session's CPU cap: generous, because the host lowers the soft limit per script."""
    return max(10 * cpu_seconds, cpu_seconds + 60)


def _lower(res: int, value: int) -> None:
    """Set soft = hard = value, never above the current hard limit (raising it needs CAP_SYS_RESOURCE)."""
    _, hard = resource.getrlimit(res)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(res, (value, value))


def apply(limits: Mapping[str, int]) -> None:
    """Address space, largest file, CPU (hard cap), no core dumps, open descriptors."""
    _lower(resource.RLIMIT_AS, limits["memory_mb"] * _MB)
    _lower(resource.RLIMIT_FSIZE, limits["max_file_mb"] * _MB)
    _lower(resource.RLIMIT_CPU, cpu_hard_limit(limits["cpu_seconds"]))
    _lower(resource.RLIMIT_CORE, 0)
    _lower(resource.RLIMIT_NOFILE, limits["max_open_files"])


def apply_nproc(max_processes: int, shared_uid: int | None = None) -> None:
    """Processes and threads. Set after unshare(CLONE_NEWUSER), so it counts only the sandbox's own tasks.

    ``shared_uid``: without a user namespace the limit counts every task of that uid on the host, so the
    sandbox gets ``max_processes`` more than the uid has now (others' forks are not limited by it)."""
    _lower(resource.RLIMIT_NPROC, max_processes + (tasks_of(shared_uid) if shared_uid is not None else 0))


def tasks_of(uid: int) -> int:
    """Tasks (threads included, as RLIMIT_NPROC counts them) whose real uid is ``uid``."""
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/status", "rb") as f:
                    fields = dict(line.split(b":", 1) for line in f if b":" in line)
                if int(fields[b"Uid"].split()[0]) == uid:
                    count += int(fields[b"Threads"])
            except (OSError, KeyError, ValueError):
                continue
    return count
