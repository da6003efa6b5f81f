"""Run tool calls that arrive from the sandbox: check, validate, call, encode the result.

:meth:`ToolDispatcher.begin` serves the bridge (values travel as JSON, NumPy arrays and Arrow tables; ``async
def`` tools come back as :class:`~codeagent.sandbox.protocol.messages.Pending` so the bridge runs them concurrently).
:meth:`ToolDispatcher.handle` serves direct tool calls from the model (JSON text, run to completion).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python

from codeagent.sandbox.protocol import codec
from codeagent.sandbox.protocol.messages import BridgeRequest, Pending, Reply, error_reply
from codeagent.tools.approval import INTERRUPTED_NOTE, Approvals, ToolDenied, denial_message
from codeagent.tools.budget import ToolCallLimit
from codeagent.tools.registry import Tool, ToolArgumentError, ToolRegistry

PREVIEW_CHARS = 300


@dataclass
class ToolCallRecord:
    """One tool call made by a script, as shown in the trace."""

    name: str
    arguments: dict[str, Any]
    result_preview: str = ""
    result_chars: int = 0  # size of the encoded result: JSON characters plus binary bytes
    duration_s: float = 0.0
    error: str | None = None  # "TypeName: message"
    started_at: float = field(default_factory=time.time)
    approval: str | None = None  # who let it run or stopped it, for tools that need approval


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


def encode_result(value: Any) -> tuple[str, list[codec.Buffer]]:
    """JSON text and binary buffers of a tool's return value (arrays and tables travel as binary)."""
    if value is None:
        return "null", []
    return codec.encode_text(value, fallback=to_jsonable_python)


def describe_value(value: Any) -> str:
    """A one-line description of an array or table (for previews), or '' for other values."""
    kind = type(value).__name__
    shape = getattr(value, "shape", None)
    if kind == "ndarray" and shape is not None:
        return f"ndarray {getattr(value, 'dtype', '')} shape {tuple(shape)}"
    if kind in ("DataFrame", "Series") and shape is not None:
        return f"{kind} {' × '.join(str(n) for n in shape)}"
    if kind in ("Table", "RecordBatch") and hasattr(value, "num_rows"):
        return f"Arrow {kind} {value.num_rows} × {value.num_columns}"
    return ""


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


@dataclass
class ToolGate:
    """What a call must pass before its tool runs: the call's tool-call limit, then approval."""

    approvals: Approvals | None = None
    limit: ToolCallLimit | None = None

    def admit(self, tool: Tool, record: ToolCallRecord) -> tuple[BaseException | None, float]:
        """The exception to raise instead of running the tool (or None), and the seconds spent asking."""
        if self.limit is not None:
            over = self.limit.check(tool.name)
            if over is not None:
                return over, 0.0
        waited = 0.0
        if self.approvals is not None:
            try:
                # a tool source (MCP) marks its tools with the same flag
                decision = self.approvals.for_tool(tool.name, record.arguments, getattr(tool, "approve", False))
            except KeyboardInterrupt:
                record.approval = INTERRUPTED_NOTE
                record.error = f"ToolDenied: {INTERRUPTED_NOTE}"
                raise
            if decision is not None:
                record.approval = decision.note
                waited = decision.waited_s
                if not decision.allowed:
                    return ToolDenied(denial_message(tool.name, decision)), waited
        if self.limit is not None:
            self.limit.count()
        return None, waited


class ToolDispatcher:
    """Serves tool calls for one script; never raises (but Ctrl-C), always replies. Keeps ``set_result``."""

    def __init__(
        self,
        registry: ToolRegistry,
        on_call: Callable[[ToolCallRecord], None] | None = None,
        gate: ToolGate | None = None,
    ) -> None:
        self.registry = registry
        self.on_call = on_call
        self.gate = gate
        self.result_set = False
        self.result_value: Any = None
        #: Seconds the script waited for a person's answer; the sandbox's wall clock does not count them.
        self.paused_s = 0.0

    def _admit(self, tool: Tool, record: ToolCallRecord) -> BaseException | None:
        if self.gate is None:
            return None
        try:
            refusal, waited = self.gate.admit(tool, record)
        except KeyboardInterrupt:
            if self.on_call is not None:
                self.on_call(record)
            raise
        self.paused_s += waited
        return refusal

    # -- the bridge --------------------------------------------------------------------------------

    def begin(self, request: BridgeRequest) -> Reply | Pending:
        """Answer a request from the sandbox, or hand back the coroutine of an ``async def`` tool."""
        req_id = request.id
        head = request.head
        op = head.get("op", "call")
        if op != "call":
            if op == "result":
                return self._set_result(request)
            return error_reply(req_id, "ValueError", f"unknown bridge operation {str(op)[:40]!r}")
        name = head.get("tool")
        tool = self.registry.get(name) if type(name) is str else None
        if tool is None:
            return error_reply(req_id, "NameError", f"no tool named {str(name)[:80]!r} is registered")
        started = time.perf_counter()
        try:
            args = {} if request.body == b"{}" and not request.buffers else request.value()
        except codec.CodecError as e:
            record = ToolCallRecord(name=tool.name, arguments={})
            return self._finish(req_id, record, started, None, TypeError(f"{tool.name}(): arguments: {e}"))
        record = ToolCallRecord(name=tool.name, arguments=args if type(args) is dict else {"_": args})
        try:
            kwargs = tool.validate(args)
        except ToolArgumentError as e:
            return self._finish(req_id, record, started, None, TypeError(str(e)))
        refusal = self._admit(tool, record)
        if refusal is not None:
            return self._finish(req_id, record, started, None, refusal)
        started = time.perf_counter()  # the time spent asking is not the tool's
        if tool.is_async:
            try:
                coroutine = tool.func(**kwargs)
            except Exception as e:
                return self._finish(req_id, record, started, None, e)
            return Pending(coroutine, lambda value, error: self._finish(req_id, record, started, value, error))
        try:
            value = tool.func(**kwargs)
        except Exception as e:
            return self._finish(req_id, record, started, None, e)
        return self._finish(req_id, record, started, value, None)

    def _finish(
        self, req_id: Any, record: ToolCallRecord, started: float, value: Any, error: BaseException | None
    ) -> Reply:
        reply: Reply
        if error is None:
            try:
                text, buffers = encode_result(value)
            except codec.UnsendableValueError as e:
                error = ToolValueError(f"{record.name}() returned a value that cannot be sent to the sandbox: {e}")
            else:
                reply = Reply({"id": req_id, "ok": True}, codec.to_bytes(text), buffers)
                record.result_chars = len(text) + (sum(codec.nbytes(b) for b in buffers) if buffers else 0)
                record.result_preview = (buffers and describe_value(value)) or text[:PREVIEW_CHARS]
        if error is not None:
            type_name = type(error).__name__
            message = exception_message(error)
            reply = error_reply(req_id, type_name, message, builtin_base(error))
            record.error = f"{type_name}: {message}"
        record.duration_s = time.perf_counter() - started
        if self.on_call is not None:
            self.on_call(record)
        return reply

    def _set_result(self, request: BridgeRequest) -> Reply:
        try:
            value = request.value()
        except codec.CodecError as e:
            return error_reply(request.id, type(e).__name__, f"set_result(): {e}")
        self.result_value = value
        self.result_set = True
        return Reply({"id": request.id, "ok": True})

    # -- direct tool calls from the model -----------------------------------------------------------

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run ``{"id", "tool", "args"}`` to completion; the reply carries the result as ``value_json`` text."""
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
            refusal = self._admit(tool, record)
            if refusal is not None:
                raise refusal
            start = time.perf_counter()
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


def builtin_base(error: BaseException) -> str | None:
    """The nearest built-in exception class of ``error`` that takes one message (so the script can catch
    ``ToolValueError`` as ``TypeError``, an ``HTTPError`` as ``OSError``)."""
    for cls in type(error).__mro__:
        if cls.__module__ == "builtins" and issubclass(cls, Exception) and cls is not Exception:
            try:
                cls("message")
            except TypeError:
                continue
            return cls.__name__
    return None


def exception_message(e: BaseException) -> str:
    """The message the exception was raised with (``KeyError('x')`` gives ``x``, not ``'x'``)."""
    if len(e.args) == 1 and isinstance(e.args[0], str):
        return e.args[0]
    return str(e)


def _error(req_id: Any, type_name: str, message: str) -> dict[str, Any]:
    return {"id": req_id, "ok": False, "error": {"type": type_name, "message": message}}
