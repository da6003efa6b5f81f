"""Host side of the tool bridge: a zmq ROUTER on an ipc socket in the run directory.

Frames from the sandbox: ``[identity, token, request_json, *binary]``. Replies: ``[identity, reply_json,
value_json]``. Everything received is untrusted: JSON only (never pickle), size-capped, token-checked.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

import zmq

Handler = Callable[[dict[str, Any]], dict[str, Any]]

DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024


class BridgeServer:
    """Receives tool-call requests from the sandbox runtime and answers them with ``handler``."""

    def __init__(
        self,
        context: zmq.Context[Any],
        address: str,
        token: str,
        *,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    ) -> None:
        self.address = address
        self._token = token.encode()
        self.max_request_bytes = max_request_bytes
        self.socket: zmq.Socket[Any] = context.socket(zmq.ROUTER)
        self.socket.linger = 0
        self.socket.setsockopt(zmq.MAXMSGSIZE, max_request_bytes + 4096)
        self.socket.bind(address)
        self.refused = 0

    def serve_pending(self, handler: Handler) -> int:
        """Answer every request waiting on the socket; returns how many were handled."""
        handled = 0
        while True:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return handled
            handled += 1
            self._answer(frames, handler)

    def _answer(self, frames: list[bytes], handler: Handler) -> None:
        identity = frames[0]
        reply = self._decode(frames)
        if reply is None:
            try:
                reply = handler(json.loads(frames[2]))
            except Exception as e:  # the handler never should, but the host must survive anything
                reply = {"id": None, "ok": False, "error": {"type": "RuntimeError", "message": str(e)}}
        value_json = reply.pop("value_json", None)
        out = [identity, json.dumps(reply).encode()]
        if value_json is not None:
            out.append(value_json.encode())
        self.socket.send_multipart(out)

    def _decode(self, frames: list[bytes]) -> dict[str, Any] | None:
        """An error reply for a malformed or unauthenticated request, or None when it may be handled."""
        if len(frames) < 3:
            return self._refuse("ProtocolError", "malformed request")
        if not hmac.compare_digest(frames[1], self._token):
            return self._refuse("PermissionError", "bad bridge token")
        size = sum(len(f) for f in frames[2:])
        if size > self.max_request_bytes:
            return self._refuse("ValueError", f"request of {size} bytes exceeds {self.max_request_bytes}")
        try:
            request = json.loads(frames[2])
        except (UnicodeDecodeError, ValueError):
            return self._refuse("ValueError", "request is not valid JSON")
        if not isinstance(request, dict):
            return self._refuse("ValueError", "request must be a JSON object")
        return None

    def _refuse(self, type_name: str, message: str) -> dict[str, Any]:
        self.refused += 1
        return {"id": None, "ok": False, "error": {"type": type_name, "message": message}}

    def close(self) -> None:
        self.socket.close(linger=0)
