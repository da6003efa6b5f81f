"""Ending the threads a script leaves behind, from inside the sandbox (standard library only).

The host restarts the kernel when a thread a script started is still alive after the script returned
(``host/threads.py``). What can be ended cooperatively is ended here, after every cell: the thread pools of
``concurrent.futures`` executors created since the sandbox started (their queued work is cancelled; work still
running keeps its thread, so the host restarts the kernel) and asyncio's default executor
(``asyncio.to_thread``), which the next script gets afresh. An executor kept in a variable for a later script
is shut down too: using it again raises ``RuntimeError: cannot schedule new futures after shutdown``.
Threads started directly (``threading.Thread``) cannot be ended from outside their code.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from typing import Any

_executors: weakref.WeakSet[Any] = weakref.WeakSet()


def track_executors() -> None:
    """Remember every ``ThreadPoolExecutor`` created from now on (asyncio's default executor is one too)."""
    from concurrent.futures import thread

    original = thread.ThreadPoolExecutor.__init__
    if getattr(original, "_codeagent", False):
        return

    def init(self: thread.ThreadPoolExecutor, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        _executors.add(self)

    init._codeagent = True  # type: ignore[attr-defined]
    thread.ThreadPoolExecutor.__init__ = init  # type: ignore[method-assign]


def end_script_threads(*_event: Any) -> int:
    """Shut down the executors a script created and asyncio's default one; how many were shut down."""
    end_default_executor()
    ended = 0
    for executor in list(_executors):
        _executors.discard(executor)
        try:
            executor.shutdown(wait=False, cancel_futures=True)  # idle workers end at once
        except Exception:  # a subclass's own shutdown may fail: the host still sees the threads
            continue
        ended += 1
    return ended


def end_default_executor() -> None:
    """The running loop forgets its default executor, so that the next script's ``to_thread`` gets a new one."""
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    executor = getattr(loop, "_default_executor", None)
    if executor is not None:
        loop._default_executor = None  # type: ignore[attr-defined]
        executor.shutdown(wait=False)


def report() -> str:
    """The names of this process's threads, as JSON: a gateway host (which cannot see this machine's ``/proc``)
    compares their number with the kernel's own after each script. The kernel's word only: a script can change it.
    """
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:  # no procfs: Python's threads only
        return json.dumps([t.name for t in threading.enumerate()])
    names = []
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/comm", encoding="ascii", errors="replace") as f:
                names.append(f.read().strip())
        except OSError:
            continue
    return json.dumps(names)
