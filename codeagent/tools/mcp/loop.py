"""The one daemon thread whose event loop owns every MCP session of the notebook kernel."""

from __future__ import annotations

import contextlib
import threading
from typing import Any


def preload_validation() -> None:
    """Import jsonschema before the loop runs: the SDK imports it on the loop at the first result it checks
    against an output schema, and with ``rfc3987-syntax`` installed (JupyterLab pulls it in) that import builds
    39 grammars, 3 s of CPU and 10-20 s on a busy machine, during which no session on the loop moves."""
    with contextlib.suppress(ImportError):
        import jsonschema  # type: ignore[import-untyped]  # noqa: F401


class LoopThread:
    """A daemon thread running one event loop, shared by every MCP session of the kernel."""

    def __init__(self) -> None:
        self._portal: Any = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def portal(self) -> Any:
        with self._lock:
            if self._portal is None:
                import anyio
                from anyio.from_thread import BlockingPortal

                preload_validation()
                ready = threading.Event()
                box: dict[str, Any] = {}

                async def serve() -> None:
                    async with BlockingPortal() as portal:
                        box["portal"] = portal
                        ready.set()
                        await portal.sleep_until_stopped()

                def run() -> None:
                    try:
                        anyio.run(serve)
                    finally:
                        ready.set()

                self._thread = threading.Thread(target=run, name="codeagent-mcp", daemon=True)
                self._thread.start()
                ready.wait()
                self._portal = box["portal"]
            return self._portal

    def close(self) -> None:
        with self._lock:
            portal, self._portal = self._portal, None
        if portal is not None:
            with contextlib.suppress(Exception):
                portal.call(portal.stop, True)
            if self._thread is not None:
                self._thread.join(timeout=5)
