"""When to busy-wait for the other side of the tool bridge: only while the machine has a CPU free for it.

Both ends poll for a moment after sending, instead of sleeping and paying the wake-up of a halted (virtual) CPU:
on an idle machine that takes a no-op tool call from ~30 µs to ~25 µs. On a loaded one it does the opposite:
the spinning side takes the CPU the other side needs to answer (measured on 2 busy cores: 700 µs a call with
spinning, 180 µs without). So spinning is allowed only while the number of runnable tasks on the machine (the
fourth field of ``/proc/loadavg``, not a one-minute average) leaves a CPU for each side.
"""

from __future__ import annotations

import os
import time

#: How often the gate looks at ``/proc/loadavg`` again (reading it costs a few microseconds).
RECHECK_S = 0.2
LOADAVG = "/proc/loadavg"


def usable_cpus() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def runnable_tasks(path: str = LOADAVG) -> int | None:
    """Tasks running or ready to run on the whole machine right now (this one included); None if unknown."""
    try:
        with open(path, "rb") as f:
            return int(f.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None


class SpinGate:
    """``window()``: how long to busy-wait now, ``spin_s`` while the machine has a CPU to spare, else 0."""

    def __init__(self, spin_s: float, path: str = LOADAVG) -> None:
        self.cpus = usable_cpus()
        self.spin_s = spin_s if self.cpus > 1 else 0.0
        self.path = path
        self._window = self.spin_s
        self._checked = 0.0

    def window(self) -> float:
        if not self.spin_s:
            return 0.0
        now = time.perf_counter()
        if now - self._checked > RECHECK_S:
            self._checked = now
            running = runnable_tasks(self.path)
            # this side and the other both runnable while a call is in flight: each needs its own CPU
            self._window = self.spin_s if running is None or running <= self.cpus else 0.0
        return self._window
