"""Threads a script leaves in the sandbox kernel, seen from outside (``/proc/<kernel>/task``).

A thread cannot be stopped from outside its process, and a hostile one ignores any request to stop, so the
rule is: threads the kernel did not have before any script ran get a short grace to end once their script
returned; those still there are watched for a moment, and if any runs (its context switches or CPU ticks move,
or it is runnable), the host restarts the kernel (``SandboxKernel.end_script``). A thread blocked the whole
time (an idle pool worker) is left, muted: its output is dropped and its tool calls refused. The sandbox's
environment and the guest runtime keep libraries from leaving such pools where they can (BLAS/OpenMP threads,
jemalloc's background thread, asyncio's default executor, Arrow's pool in the bridge's decoding).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

#: How long threads a script started get to end on their own once it has returned.
GRACE_S = 0.5
#: How long the threads still there are watched for running.
WATCH_S = 0.2


def tasks(pid: int) -> set[int]:
    """The thread ids of process ``pid`` (empty when it is gone)."""
    try:
        return {int(t) for t in os.listdir(f"/proc/{pid}/task")}
    except OSError:
        return set()


def activity(pid: int, tid: int) -> tuple[int, bool] | None:
    """A counter that moves whenever thread ``tid`` of ``pid`` runs (context switches + CPU ticks) and whether it
    is runnable now; None once it is gone."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
            stat = f.read().rsplit(b")", 1)[-1].split()
        with open(f"/proc/{pid}/task/{tid}/status", "rb") as f:
            switches = sum(int(line.split()[1]) for line in f if b"ctxt_switches:" in line)
    except (OSError, ValueError, IndexError):
        return None
    return switches + int(stat[11]) + int(stat[12]), stat[0] == b"R"


def threads_left(
    pid: int, own: set[int], poke: Callable[[], object] = lambda: None, grace: float = GRACE_S, watch: float = WATCH_S
) -> int:
    """How many threads of ``pid`` beyond ``own`` are still alive after up to ``grace`` seconds and ran since
    the script ended (a thread blocked the whole time, like an idle pool worker, is left alone)."""
    before = {tid: activity(pid, tid) for tid in tasks(pid) - own}  # from the script's end on
    if not before:
        return 0
    deadline = time.monotonic() + grace
    while tasks(pid) - own and time.monotonic() < deadline:
        poke()  # e.g. refuse the tool calls threads wait on, so that a thread blocked on one runs again
        time.sleep(0.01)
    if not tasks(pid) - own:
        return 0
    end = time.monotonic() + watch
    while time.monotonic() < end:
        poke()
        time.sleep(0.01)
    before.update({tid: activity(pid, tid) for tid in tasks(pid) - own - set(before)})
    active = 0
    for tid, first in before.items():
        now = activity(pid, tid)
        if first is not None and now is not None and (now[0] != first[0] or now[1]):
            active += 1
    return active
