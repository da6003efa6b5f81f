"""The bridge's message types, shared by the host's bridge server and whatever serves its requests.

A request is ``[token, head_json, body_json, *buffers]``; a reply is ``[head_json, body_json, *buffers]``.
``head`` of a request is ``{"id", "op", "tool"?, "name"?}``; of a reply ``{"id", "ok", "error"?}``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from codeagent.sandbox.protocol import codec


class BridgeRequest:
    """One decoded request frame. ``head`` is ``{"id", "op", "tool"?, "name"?}``; :meth:`value` decodes the body."""

    __slots__ = ("body", "buffers", "head", "id")

    def __init__(self, head: dict[str, Any], body: bytes | bytearray, buffers: list[bytearray] | None = None) -> None:
        self.head = head
        self.id = head.get("id")
        self.body = body
        self.buffers = buffers or []

    @property
    def op(self) -> str:
        op = self.head.get("op", "call")
        return op if isinstance(op, str) else ""

    def value(self) -> Any:
        """The body (tool arguments, a result value): JSON, NumPy arrays, Arrow tables. Raises CodecError."""
        return codec.decode(self.body, self.buffers)


class Reply:
    """A reply ready to send: ``head`` is ``{"id", "ok", "error"?}``, the body is an encoded value."""

    __slots__ = ("body", "buffers", "head")

    def __init__(self, head: dict[str, Any], body: bytes = b"null", buffers: list[codec.Buffer] | None = None) -> None:
        self.head = head
        self.body = body
        self.buffers = buffers or []

    @property
    def nbytes(self) -> int:
        return len(self.body) + (sum(codec.nbytes(b) for b in self.buffers) if self.buffers else 0)

    @property
    def ok(self) -> bool:
        return self.head.get("ok") is True

    @property
    def text(self) -> str:
        """The body as text (a JSON value)."""
        return bytes(self.body).decode("utf-8")

    @property
    def error_text(self) -> str:
        """``"TypeName: message"`` of an error reply ('' for a successful one)."""
        error = self.head.get("error") or {}
        return f"{error.get('type')}: {error.get('message')}" if error else ""


def ok_reply(req_id: Any, body: bytes = b"null", buffers: list[codec.Buffer] | None = None) -> Reply:
    """A successful reply carrying an encoded value."""
    return Reply({"id": req_id, "ok": True}, body, buffers)


def error_reply(req_id: Any, type_name: str, message: str, base: str | None = None) -> Reply:
    """An error for the script; ``base`` names a built-in exception it should also be catchable as."""
    error = {"type": type_name, "message": message}
    if base is not None:
        error["base"] = base
    return Reply({"id": req_id, "ok": False, "error": error})


@dataclass
class Pending:
    """An ``async def`` tool call to run on the bridge's event loop; ``finish(value, error)`` builds the reply."""

    coroutine: Coroutine[Any, Any, Any]
    finish: Callable[[Any, BaseException | None], Reply]


class BridgeHandler(Protocol):
    """What serves the requests (``codeagent.tools.dispatch.ToolDispatcher``)."""

    def begin(self, request: BridgeRequest) -> Reply | Pending: ...
