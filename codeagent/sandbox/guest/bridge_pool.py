"""Connections to the tool bridge opened in advance, for sandboxes that may not create sockets any more.

Without a user namespace the sandbox sees the host's file system, and connecting to a Unix socket by path is
checked only by its file mode (Landlock of this kernel's ABI does not cover it): a second seccomp filter then
refuses ``socket()`` altogether (``seccomp_filter.lock_shared_host``). The bridge client borrows one of these
connections per blocking call and gives it back intact; a call cut short mid-transfer loses its connection.
Standard library only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

#: Blocking calls that can be in flight at once (further callers wait); the host accepts 32 connections.
POOL_SIZE = 8


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


class PoolExhausted(ConnectionError):
    """No connection to the bridge is left, and none can be made."""


class ConnectionPool(Generic[C]):
    """``size`` connections made now by ``connect``; :meth:`take` one, then :meth:`give_back` or :meth:`lose` it."""

    def __init__(self, connect: Callable[[], C], size: int = POOL_SIZE) -> None:
        self._pid = os.getpid()
        self._free: list[C] = [connect() for _ in range(size)]
        self._size = size
        self.lost = 0
        self._cond = threading.Condition()

    def take(self) -> C:
        """A free connection, waiting while all are busy."""
        if os.getpid() != self._pid:
            raise PoolExhausted(
                "tools cannot be called from a process the script started here (this sandbox may not open new "
                "connections); call them from the script's own process, e.g. from threads"
            )
        with self._cond:
            while not self._free:
                if self.lost >= self._size:
                    raise PoolExhausted(
                        f"all {self._size} connections to the tool bridge were cut by interrupted calls and this "
                        "sandbox may not open new ones; the host restarts the sandbox when this script ends"
                    )
                self._cond.wait()
            return self._free.pop()

    def give_back(self, conn: C) -> None:
        with self._cond:
            self._free.append(conn)
            self._cond.notify()

    def lose(self, conn: C) -> None:
        """Close a connection whose stream can no longer be trusted; it is not replaced."""
        conn.close()
        with self._cond:
            self.lost += 1
            self._cond.notify_all()

    @property
    def left(self) -> int:
        return self._size - self.lost
