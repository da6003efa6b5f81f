"""Run tool calls: check, validate, pass the gate, call, encode the result, record it. One path for all calls.

:meth:`ToolDispatcher.begin` serves the bridge (values travel as JSON, NumPy arrays and Arrow tables; ``async
def`` tools come back as :class:`~codeagent.sandbox.protocol.messages.Pending` so the bridge runs them
concurrently; ``load_data`` requests of a ``--data`` hand-over are served from :meth:`ToolDispatcher.for_data`).
:meth:`ToolDispatcher.call` serves a direct tool call from the model through the same steps, run to completion,
the value as JSON text. Both answer with a :class:`~codeagent.sandbox.protocol.messages.Reply`.

How values are encoded lives in ``encoding.py``; how a tool's error is worded, in ``error_text.py``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from codeagent.sandbox.protocol import codec
from codeagent.sandbox.protocol.messages import BridgeRequest, Pending, Reply, error_reply, ok_reply
from codeagent.tools.approval import INTERRUPTED_NOTE, Approvals, ToolDenied, denial_message
from codeagent.tools.budget import ToolCallLimit
from codeagent.tools.encoding import (
    PREVIEW_CHARS,
    TRACE_VALUE_CHARS,
    Encoder,
    ToolValueError,
    UnsendableData,
    array_summary,
    encode_value,
    for_model,
    for_sandbox,
    trace_arguments,
)
from codeagent.tools.error_text import builtin_base, exception_message, redact_host_paths
from codeagent.tools.records import ToolCallRecord
from codeagent.tools.registry import Tool, ToolArgumentError, ToolRegistry

__all__ = [
    "TRACE_VALUE_CHARS",
    "ToolCallRecord",
    "ToolDispatcher",
    "ToolGate",
    "ToolValueError",
    "UnsendableData",
    "array_summary",
    "builtin_base",
    "encode_value",
    "exception_message",
    "redact_host_paths",
]

if TYPE_CHECKING:
    from codeagent.tools.toolbox import ToolBox


def run_to_completion(coroutine: Coroutine[Any, Any, Any], name: str) -> tuple[Any, BaseException | None]:
    """(value, None) or (None, exception) of a coroutine. The notebook kernel's own event loop is running on
    this thread: the coroutine gets a loop of its own, in a worker thread."""
    box: dict[str, Any] = {"value": None, "error": None}

    def run() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as e:
            box["error"] = e

    worker = threading.Thread(target=run, name=f"codeagent-tool-{name}")
    worker.start()
    worker.join()
    if box["error"] is not None and not isinstance(box["error"], Exception):
        raise box["error"]  # SystemExit, KeyboardInterrupt: not the tool's answer
    return box["value"], box["error"]


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
    """Serves tool calls for one script; never raises (but Ctrl-C), always replies. Keeps ``set_result``.

    Bridge calls are reported to ``on_call`` by :meth:`report`, after their replies were sent.
    """

    def __init__(
        self,
        registry: ToolRegistry | ToolBox,
        on_call: Callable[[ToolCallRecord], None] | None = None,
        gate: ToolGate | None = None,
        data: Mapping[str, tuple[bytes, list[codec.Buffer]]] | None = None,
        *,
        trace_value_chars: int = TRACE_VALUE_CHARS,
    ) -> None:
        self.registry = registry
        self.on_call = on_call
        self.gate = gate
        self.trace_value_chars = trace_value_chars
        #: With ``data``: a ``--data`` hand-over, which serves those values and refuses everything else.
        self.data = data
        self.served: list[str] = []
        self._unreported: list[ToolCallRecord] = []
        self.result_set = False
        self.result_value: Any = None
        #: Seconds the script waited for a person's answer; the sandbox's wall clock does not count them.
        self.paused_s = 0.0
        #: The exception of the last call answered with an error (a cell made with ``--cell`` re-raises it).
        self.last_error: BaseException | None = None

    @classmethod
    def for_data(cls, values: Mapping[str, Any]) -> ToolDispatcher:
        """Serves the sandbox's ``load_data`` requests for ``values``, encoded now: UnsendableData names the
        first that cannot travel."""
        encoded = {}
        for name, value in values.items():
            try:
                encoded[name] = codec.encode(value, fallback=to_jsonable_python)
            except codec.UnsendableValueError as e:
                raise UnsendableData(name, str(e)) from None
        return cls(ToolRegistry(), data=encoded)

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
        op = request.head.get("op", "call")
        if self.data is not None:
            return self._serve_data(request)
        if op != "call":
            if op == "result":
                return self._set_result(request)
            if op in ("search", "describe"):
                return self._lookup(request, op)
            return error_reply(req_id, "ValueError", f"unknown bridge operation {str(op)[:40]!r}")
        name = request.head.get("tool")
        tool = self.registry.get(name) if type(name) is str else None
        if tool is not None and tool.mode == "direct":  # offered to the model only (mode="both": a stub too)
            return error_reply(req_id, "NameError", f"no tool named {str(name)[:80]!r} is registered")
        try:
            args: Any = {} if request.body == b"{}" and not request.buffers else request.value()
        except codec.CodecError as e:
            args = _Undecodable(e)
        size = len(request.body) + (sum(codec.nbytes(b) for b in request.buffers) if request.buffers else 0)
        # arrays and tables are always previewed in the trace: kept whole they would pin the received buffers
        return self._start(req_id, name, args, for_sandbox, size=size, whole=not request.buffers)

    def call(self, tool_use_id: str, name: str, args: Any) -> Reply:
        """A direct tool call from the model: the same checks, gate and record as a script's call, run to
        completion; the value is JSON text (``reply.text``)."""
        size = len(json.dumps(args, ensure_ascii=False, default=str))
        outcome = self._start(tool_use_id, name, args, for_model, size=size)
        if isinstance(outcome, Pending):
            outcome = outcome.finish(*run_to_completion(outcome.coroutine, name))
        self.report()  # no bridge to reply on: report at once
        return outcome

    def _start(
        self, req_id: Any, name: Any, args: Any, encode: Encoder, *, size: int = 0, whole: bool = True
    ) -> Reply | Pending:
        tool = self.registry.get(name) if type(name) is str else None
        if tool is None:
            return error_reply(req_id, "NameError", f"no tool named {str(name)[:80]!r} is registered")
        started = time.perf_counter()
        if isinstance(args, _Undecodable):
            record = ToolCallRecord(name=tool.name, arguments={}, arguments_chars=size)
            error = TypeError(f"{tool.name}(): arguments: {args.error}")
            return self._finish(req_id, record, started, None, error, encode)
        record = ToolCallRecord(
            name=tool.name,
            arguments=trace_arguments(args, size, self.trace_value_chars, whole=whole),
            arguments_chars=size,
        )
        try:
            kwargs = tool.validate(args)
        except ToolArgumentError as e:
            return self._finish(req_id, record, started, None, TypeError(str(e)), encode)
        refusal = self._admit(tool, record)
        if refusal is not None:
            return self._finish(req_id, record, started, None, refusal, encode)
        started = time.perf_counter()  # the time spent asking is not the tool's
        if tool.is_async:
            try:
                coroutine = tool.func(**kwargs)
            except Exception as e:
                return self._finish(req_id, record, started, None, e, encode)
            return Pending(coroutine, lambda value, error: self._finish(req_id, record, started, value, error, encode))
        try:
            value = tool.func(**kwargs)
        except Exception as e:
            return self._finish(req_id, record, started, None, e, encode)
        return self._finish(req_id, record, started, value, None, encode)

    def _finish(
        self,
        req_id: Any,
        record: ToolCallRecord,
        started: float,
        value: Any,
        error: BaseException | None,
        encode: Encoder,
    ) -> Reply:
        reply: Reply
        if error is None:
            try:
                text, buffers = encode(value, record.name)
            except ToolValueError as e:
                error = e
            else:
                reply = ok_reply(req_id, codec.to_bytes(text), buffers)
                record.result_chars = len(text) + (sum(codec.nbytes(b) for b in buffers) if buffers else 0)
                record.result_preview = (buffers and array_summary(value)) or text[:PREVIEW_CHARS]
        if error is not None:
            type_name = type(error).__name__
            message = exception_message(error)
            reply = error_reply(req_id, type_name, message, builtin_base(error))
            record.error = f"{type_name}: {message}"
        self.last_error = error
        record.duration_s = time.perf_counter() - started
        # Reported by report() once the reply is on its way: the script should not wait for the live view.
        self._unreported.append(record)
        return reply

    def report(self) -> None:
        """Hand the calls answered since the last report to ``on_call`` (the bridge calls this after replying)."""
        if not self._unreported:
            return
        records, self._unreported = self._unreported, []
        if self.on_call is not None:
            for record in records:
                self.on_call(record)

    def _set_result(self, request: BridgeRequest) -> Reply:
        try:
            value = request.value()
        except codec.CodecError as e:
            return error_reply(request.id, type(e).__name__, f"set_result(): {e}")
        self.result_value = value
        self.result_set = True
        return ok_reply(request.id)

    def _serve_data(self, request: BridgeRequest) -> Reply:
        assert self.data is not None
        name = request.head.get("name")
        if request.op != "data" or type(name) is not str or name not in self.data:
            return error_reply(request.id, "PermissionError", "only the --data variables can be fetched now")
        body, buffers = self.data[name]
        self.served.append(name)
        return ok_reply(request.id, body, buffers)

    def _lookup(self, request: BridgeRequest, op: str) -> Reply:
        """``search_tools`` / ``describe_tool`` from the script: stub text from the tool box's index."""
        lookup = getattr(self.registry, "search_text" if op == "search" else "describe_text", None)
        try:
            fields = request.value()
            if lookup is None or not isinstance(fields, dict):
                raise ValueError("tool search is not available here")
            text = lookup(**fields)
        except (TypeError, ValueError, codec.CodecError) as e:
            what = "search_tools()" if op == "search" else "describe_tool()"
            return error_reply(request.id, type(e).__name__, f"{what}: {exception_message(e)}", builtin_base(e))
        return ok_reply(request.id, codec.to_bytes(json.dumps(text)))


@dataclass
class _Undecodable:
    """Tool arguments that could not be decoded (the call is answered with a TypeError)."""

    error: codec.CodecError
