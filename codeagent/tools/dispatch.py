"""Run tool calls that arrive from the sandbox: validate, call, encode the result as JSON."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python

from codeagent.tools.registry import Tool, ToolArgumentError, ToolRegistry

PREVIEW_CHARS = 300


@dataclass
class ToolCallRecord:
    """One tool call made by a script, as shown in the trace."""

    name: str
    arguments: dict[str, Any]
    result_preview: str = ""
    result_chars: int = 0
    duration_s: float = 0.0
    error: str | None = None  # "TypeName: message"
    started_at: float = field(default_factory=time.time)


class ToolValueError(TypeError):
    """A tool returned a value that cannot travel to the sandbox."""


def encode_value(value: Any) -> str:
    """JSON text of a tool's return value, or ToolValueError naming the type that can't be sent."""
    try:
        return json.dumps(to_jsonable_python(value), ensure_ascii=False, allow_nan=True)
    except (PydanticSerializationError, TypeError, ValueError) as e:
        raise ToolValueError(
            f"the tool returned a {type(value).__module__}.{type(value).__qualname__}, which cannot be sent to "
            f"the sandbox; return JSON-like data (dict, list, str, numbers) ({e})"
        ) from None


def _call(tool: Tool, kwargs: dict[str, Any]) -> Any:
    if not tool.is_async:
        return tool.func(**kwargs)
    # The notebook kernel's own event loop is running on this thread: give the coroutine a loop of its own.
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = asyncio.run(tool.func(**kwargs))
        except BaseException as e:
            box["error"] = e

    worker = threading.Thread(target=run, name=f"codeagent-tool-{tool.name}")
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


class ToolDispatcher:
    """Handles decoded requests ``{"id", "tool", "args"}``; never raises, always returns a reply dict."""

    def __init__(self, registry: ToolRegistry, on_call: Callable[[ToolCallRecord], None] | None = None) -> None:
        self.registry = registry
        self.on_call = on_call

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        req_id = request.get("id")
        name = request.get("tool")
        args = request.get("args", {})
        tool = self.registry.get(name) if isinstance(name, str) else None
        if tool is None:
            return _error(req_id, "NameError", f"no tool named {str(name)[:80]!r} is registered")
        record = ToolCallRecord(name=tool.name, arguments=args if isinstance(args, dict) else {"_": args})
        start = time.perf_counter()
        try:
            kwargs = tool.validate(args)
            value_json = encode_value(_call(tool, kwargs))
        except ToolArgumentError as e:
            reply = _error(req_id, "TypeError", str(e))
        except Exception as e:
            reply = _error(req_id, type(e).__name__, exception_message(e))
        else:
            reply = {"id": req_id, "ok": True, "value_json": value_json}
            record.result_chars = len(value_json)
            record.result_preview = value_json[:PREVIEW_CHARS]
        record.duration_s = time.perf_counter() - start
        if not reply["ok"]:
            record.error = f"{reply['error']['type']}: {reply['error']['message']}"
        if self.on_call is not None:
            self.on_call(record)
        return reply


def exception_message(e: BaseException) -> str:
    """The message the exception was raised with (``KeyError('x')`` gives ``x``, not ``'x'``)."""
    if len(e.args) == 1 and isinstance(e.args[0], str):
        return e.args[0]
    return str(e)


def _error(req_id: Any, type_name: str, message: str) -> dict[str, Any]:
    return {"id": req_id, "ok": False, "error": {"type": type_name, "message": message}}
