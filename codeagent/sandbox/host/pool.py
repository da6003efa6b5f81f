"""A warm pool: locked-down sandboxes started ahead of time, so a call does not wait for kernel start-up."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from codeagent.sandbox.host.manager import SandboxKernel
from codeagent.sandbox.host.policy import SandboxPolicy


class SandboxPool:
    """Keeps ``size`` started sandboxes for one policy; ``acquire`` hands one out and starts a replacement.

    With ``size=0`` nothing is kept in reserve: ``acquire`` hands out one started by ``fill(1)`` or starts one.
    """

    def __init__(
        self, policy: SandboxPolicy, size: int = 1, factory: Callable[[SandboxPolicy], SandboxKernel] | None = None
    ) -> None:
        self.policy = policy
        self.size = size
        #: Starts one sandbox (default: a local SandboxKernel; a gateway's for remote sandboxes).
        self.factory = factory or (lambda policy: SandboxKernel(policy).start())
        self._ready: deque[SandboxKernel] = deque()
        self._starting: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._closed = False

    def fill(self, target: int | None = None) -> SandboxPool:
        """Start sandboxes in the background until ``target`` (default ``size``) are ready or starting."""
        with self._lock:
            self._starting = [t for t in self._starting if t.is_alive()]
            missing = (self.size if target is None else target) - len(self._ready) - len(self._starting)
            for _ in range(max(0, missing)):
                thread = threading.Thread(target=self._start_one, name="codeagent-sandbox-pool", daemon=True)
                self._starting.append(thread)
                thread.start()
        return self

    def _start_one(self) -> None:
        try:
            kernel = self.factory(self.policy)
        except BaseException as e:  # reported to whoever asks for a sandbox next
            with self._lock:
                self._errors.append(e)
            return
        with self._lock:
            if not self._closed:
                self._ready.append(kernel)
                return
        kernel.shutdown()

    def acquire(self) -> SandboxKernel:
        """A started sandbox: a warm one if any is ready (or about to be), else a new one."""
        while True:
            with self._lock:
                if self._errors:
                    raise self._errors.pop(0)
                kernel = self._ready.popleft() if self._ready else None
                pending = [t for t in self._starting if t.is_alive()]
            if kernel is not None:
                if kernel.is_alive():
                    self.fill()
                    return kernel
                kernel.shutdown()
                continue
            if not pending:
                self.fill(max(self.size, 1))
                with self._lock:
                    pending = list(self._starting)
            for thread in pending:
                thread.join()

    def counts(self) -> tuple[int, int]:
        """Sandboxes ready to hand out, and sandboxes still starting."""
        with self._lock:
            return len(self._ready), sum(t.is_alive() for t in self._starting)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            starting = list(self._starting)
        for thread in starting:
            thread.join()
        with self._lock:
            ready, self._ready = list(self._ready), deque()
        for kernel in ready:
            kernel.shutdown()
