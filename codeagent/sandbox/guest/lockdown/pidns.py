"""PID namespace: the launcher stays outside as a supervisor, a tiny init runs inside, the kernel below it.

    launcher (pid the host knows)  --forwards signals-->  init (pid 1)  --forwards to the group-->  kernel

* The host's jupyter_client signals the launcher: SIGINT (interrupt), SIGTERM, finally SIGKILL. The
  launcher forwards each catchable signal to init; init has a handler for it (PID 1 ignores signals
  without one) and forwards it to the kernel's process group, as a plain kernel would receive it.
* init and the kernel run in their own session, so the host's killpg() reaches only the launcher and a
  signal is never delivered twice.
* When the launcher dies (even by SIGKILL) init gets SIGKILL (PR_SET_PDEATHSIG); when init exits the
  kernel kills every process left in the namespace. init also reaps orphans (zombies count toward
  RLIMIT_NPROC), and exits as soon as the kernel does.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
from collections.abc import Callable
from types import FrameType

from . import _sys

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)

_parent_alive_fd: int | None = None


def _exit_code(wstatus: int) -> int:
    code = os.waitstatus_to_exitcode(wstatus)
    return 128 - code if code < 0 else code


def _supervise(child: int, host_fd: int | None) -> None:
    """The launcher's life after the fork: forward signals, wait, exit like init did.

    It also watches the host (the notebook kernel that started it) through a pidfd: when the host dies
    without shutting the sandbox down (killed, crashed, closed without cleanup), the sandbox dies too.
    PR_SET_PDEATHSIG cannot do this: it fires when the *thread* that started us exits, and hosts start
    sandboxes from short-lived pool threads.
    """

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):  # (EPERM while init has not dropped root yet)
            os.kill(child, signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    poller = select.poll()
    child_fd = os.pidfd_open(child)
    poller.register(child_fd, select.POLLIN)
    if host_fd is not None:
        poller.register(host_fd, select.POLLIN)
    while True:
        ready = {fd for fd, _ in poller.poll()}
        if host_fd is not None and host_fd in ready:
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)  # init dies, and with it everything in the namespace
            poller.unregister(host_fd)
            host_fd = None
        if child_fd in ready:
            pid, wstatus = os.waitpid(child, 0)
            if pid == child:
                sys.stdout.flush()
                os._exit(_exit_code(wstatus))


def _watch_host() -> int | None:
    """A pidfd of the process that started the launcher, or None when it is already gone."""
    host = os.getppid()
    if host == 1:
        os._exit(1)  # the host died before we got here
    try:
        return os.pidfd_open(host)
    except OSError:
        return None


def _die_with_parent() -> None:
    _sys.prctl(_sys.PR_SET_PDEATHSIG, signal.SIGKILL)
    # The launcher may have died before prctl: then the pipe it held open has hung up.
    assert _parent_alive_fd is not None
    poller = select.poll()
    poller.register(_parent_alive_fd, select.POLLHUP)
    if poller.poll(0):
        os._exit(1)


def enter(drop: Callable[[], None] | None = None) -> None:
    """Fork into a new PID namespace; returns in its init (pid 1). The caller stays outside for good, after
    ``drop()`` (a root host without a user namespace: the supervisor becomes the sandbox uid as well)."""
    global _parent_alive_fd
    _sys.unshare(_sys.CLONE_NEWPID)
    os.chdir("/")  # so that pivot_root later moves the launcher's cwd too
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    alive_r, alive_w = os.pipe()
    host_fd = _watch_host()
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child:
        os.close(alive_r)
        if drop is not None:
            drop()
        _supervise(child, host_fd)
    if host_fd is not None:
        os.close(host_fd)  # the sandbox must not hold a handle on the host process
    os.close(alive_w)
    _parent_alive_fd = alive_r
    _die_with_parent()
    os.setsid()


def _run_init(kernel: int) -> None:
    def forward(signum: int, _frame: FrameType | None) -> None:
        try:
            os.killpg(kernel, signum)
        except OSError:
            with contextlib.suppress(OSError):
                os.kill(kernel, signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    while True:
        try:
            pid, wstatus = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == kernel:
            os._exit(_exit_code(wstatus))


def spawn_kernel() -> None:
    """In init, after every layer: fork the process that will exec the kernel. Returns only in that child."""
    _die_with_parent()  # again: credential changes since enter() may have cleared it
    sys.stdout.flush()
    sys.stderr.flush()
    kernel = os.fork()
    if kernel == 0:
        assert _parent_alive_fd is not None
        os.close(_parent_alive_fd)
        os.setpgid(0, 0)
        for sig in FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        return
    with contextlib.suppress(OSError):  # also here: no window in which a forwarded signal misses the group
        os.setpgid(kernel, kernel)
    _run_init(kernel)
