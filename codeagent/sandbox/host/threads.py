"""Threads a script leaves in the sandbox kernel, seen from outside (``/proc/<kernel>/task``).

A thread cannot be stopped from outside its process, and a hostile one ignores any request to stop, so the
rule is: threads the kernel did not have before any script ran get a short grace to end once their script
returned; if any is still there, the host restarts the kernel (``SandboxKernel.end_script``). The sandbox's
environment and the guest runtime keep libraries from leaving idle worker pools behind (BLAS/OpenMP threads,
jemalloc's background thread, asyncio's default executor, Arrow's pool in the bridge's decoding); a pool a
script starts itself and leaves (an executor never shut down, Arrow's multi-threaded ``to_pandas``) costs a
restart too, and the script's next call is told so.
"""

from __future__ import annotations

import os
import time

#: How long threads a script started get to end on their own once it has returned.
GRACE_S = 0.5


def tasks(pid: int) -> set[int]:
    """The thread ids of process ``pid`` (empty when it is gone)."""
    try:
        return {int(t) for t in os.listdir(f"/proc/{pid}/task")}
    except OSError:
        return set()


def threads_left(pid: int, own: set[int], grace: float = GRACE_S) -> int:
    """How many threads of ``pid`` beyond ``own`` are still alive after waiting up to ``grace`` seconds."""
    deadline = time.monotonic() + grace
    while (left := tasks(pid) - own) and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(left)
