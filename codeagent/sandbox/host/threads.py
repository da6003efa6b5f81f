"""Threads of the sandbox kernel, seen from outside (``/proc/<kernel>/task``).

A thread cannot be stopped from outside its process, and a hostile one ignores any request to stop, so the
rule is (``SandboxKernel.end_script``): when a script returns, the guest ends what it can itself (executors the
script created, asyncio's default executor, see ``guest/leftovers.end_script_threads``); any thread the kernel did
not have before the first script that is still alive after a short grace restarts the kernel, idle or not.
The sandbox's environment and the guest keep libraries from leaving pools where they can (BLAS/OpenMP threads,
jemalloc's background thread, Arrow decoding in the bridge, zmq's zero-copy garbage collector).

Between scripts the kernel's own threads must stay quiet too: ``Quiet`` remembers their state when a script
ended, and before the next one runs the host checks that no thread appeared, the main thread (where a
callback the script scheduled on the kernel's event loop would run) did not wake, and the whole kernel used
no more CPU than its idle housekeeping needs.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

#: How long threads a script started get to end on their own once it has returned.
GRACE_S = 0.5
#: CPU ticks (1/100 s) the kernel may use between scripts: ipykernel's housekeeping (the IOPub thread wakes
#: every 10 s) uses well under one tick a minute.
IDLE_TICKS = 5
#: ... plus this share of the time between scripts.
IDLE_CPU_SHARE = 0.002


def tasks(pid: int) -> set[int]:
    """The thread ids of process ``pid`` (empty when it is gone)."""
    try:
        return {int(t) for t in os.listdir(f"/proc/{pid}/task")}
    except OSError:
        return set()


def activity(pid: int, tid: int) -> tuple[int, int, bool] | None:
    """Thread ``tid`` of ``pid``: context switches (they move whenever it runs), CPU ticks, and whether it is
    runnable now; None once it is gone."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
            stat = f.read().rsplit(b")", 1)[-1].split()
        with open(f"/proc/{pid}/task/{tid}/status", "rb") as f:
            switches = sum(int(line.split()[1]) for line in f if b"ctxt_switches:" in line)
    except (OSError, ValueError, IndexError):
        return None
    return switches, int(stat[11]) + int(stat[12]), stat[0] == b"R"


def waits_in_poll(pid: int, tid: int) -> bool:
    """Whether thread ``tid`` is blocked in poll/epoll/select now (an event loop's wait, not a lock's); False
    where the kernel does not show it (``wchan`` reads ``0`` without ptrace access)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/wchan", "rb") as f:
            where = f.read(64)
    except OSError:
        return False
    return b"poll" in where or b"select" in where


def process_ticks(pid: int) -> int:
    """The CPU ticks all threads of ``pid`` used so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().rsplit(b")", 1)[-1].split()
        return int(stat[11]) + int(stat[12])
    except (OSError, ValueError, IndexError):
        return 0


def names(pid: int, tids: set[int], limit: int = 6) -> str:
    """The threads' kernel names (``comm``, set by the thread itself: shown, never trusted), e.g.
    ``python ×2, ZMQbg/IO/0``."""
    comms = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm", "rb") as f:
                comms.append(f.read(64).decode("ascii", "replace"))
        except OSError:
            continue
    return summarize(comms, limit)


def summarize(comms: list[str], limit: int = 6) -> str:
    """Thread names as one short line, each reduced to 15 plain characters (they come from the sandbox)."""
    counts: Counter[str] = Counter(re.sub(r"[^\w./:@+-]", "?", c.strip(), flags=re.ASCII)[:15] or "?" for c in comms)
    shown = [f"{name} ×{n}" if n > 1 else name for name, n in counts.most_common(limit)]
    if len(counts) > limit:
        shown.append("…")
    return ", ".join(shown)


def threads_left(
    pid: int, own: set[int], poke: Callable[[], object] = lambda: None, grace: float = GRACE_S
) -> set[int]:
    """The threads of ``pid`` beyond ``own`` still alive after up to ``grace`` seconds."""
    deadline = time.monotonic() + grace
    while (left := tasks(pid) - own) and time.monotonic() < deadline:
        poke()  # e.g. refuse the tool calls threads wait on, so that a thread blocked on one can end
        time.sleep(0.005)
    return left


@dataclass
class Quiet:
    """The kernel's threads as a script left them: what must not change before the next script."""

    pid: int
    tids: frozenset[int]
    main: tuple[int, int, bool] | None
    ticks: int
    at: float

    @classmethod
    def settled(cls, pid: int, timeout: float = 0.1) -> Quiet:
        """Taken once the kernel has gone idle: its main thread waits in its event loop's poll (one read of
        ``wchan``), or, where the kernel does not say, is asleep and unchanged over a millisecond."""
        end = time.monotonic() + timeout
        quiet = cls.now(pid)
        while time.monotonic() < end:
            if waits_in_poll(pid, pid):
                return cls.now(pid)
            time.sleep(0.001)
            again = cls.now(pid)
            if again.tids == quiet.tids and again.main == quiet.main and not (again.main or (0, 0, True))[2]:
                return again
            quiet = again
        return quiet

    @classmethod
    def now(cls, pid: int) -> Quiet:
        return cls(pid, frozenset(tasks(pid)), activity(pid, pid), process_ticks(pid), time.monotonic())

    def broken(self) -> str | None:
        """What the kernel did since, if more than sleeping: None when it stayed quiet."""
        now = Quiet.now(self.pid)
        if new := now.tids - self.tids:
            return f"{len(new)} threads ({names(self.pid, set(new))}) started between scripts"
        if now.main is not None and self.main is not None and now.main[:2] != self.main[:2]:
            return "its main thread ran between scripts (code a script left scheduled)"
        allowed = IDLE_TICKS + IDLE_CPU_SHARE * 100 * (now.at - self.at)
        if (used := now.ticks - self.ticks) > allowed:
            return f"it used {used / 100:.2f} s of CPU between scripts"
        return None
