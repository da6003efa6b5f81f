"""Registered tools called in the notebook itself, the way the sandbox's stubs call them over the bridge.

Used by cells made with ``%codeagent --cell`` / ``result.to_cell()``: ``tool(...)`` blocks and returns the value
(an ``async def`` tool runs to completion on a loop of its own), ``await tool.aio(...)`` is the async form.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from typing import Any

from codeagent.tools.registry import Tool, ToolRegistry, default_registry


class LocalTool:
    """A registered tool, callable like its sandbox stub: ``f(...)`` and ``await f.aio(...)``."""

    def __init__(self, tool: Tool) -> None:
        self.tool = tool
        functools.update_wrapper(self, tool.func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.tool.is_async:
            return self.tool.func(*args, **kwargs)
        return _run_to_completion(lambda: self.tool.func(*args, **kwargs), self.tool.name)

    async def aio(self, *args: Any, **kwargs: Any) -> Any:
        if self.tool.is_async:
            return await self.tool.func(*args, **kwargs)
        return await asyncio.to_thread(self.tool.func, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<codeagent tool {self.tool.name!r} (run in the notebook)>"


def _run_to_completion(make: Callable[[], Any], name: str) -> Any:
    """Run a coroutine on its own loop in a thread: the notebook kernel's loop is busy running this cell."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as e:
            box["error"] = e

    worker = threading.Thread(target=run, name=f"codeagent-tool-{name}")
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def notebook_tool(name: str, registry: ToolRegistry | None = None) -> LocalTool:
    """The registered tool ``name`` as a notebook function; a short error if no such tool is registered."""
    found = (registry if registry is not None else default_registry).get(name)
    if found is None:
        raise NameError(f"no tool named {name!r} is registered: run the cell that defines it with @tool first")
    return LocalTool(found)
