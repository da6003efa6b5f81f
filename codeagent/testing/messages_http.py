"""The HTTP side of :class:`~codeagent.testing.messages_server.MessagesServer`: one handler thread per
connection, answering ``POST /v1/messages`` (JSON or server-sent events) from the owner's scripted turns."""

from __future__ import annotations

import json
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from codeagent.agent.sse import sse_events, sse_line
from codeagent.testing.turns import (
    DelayTurn,
    ErrorTurn,
    Turn,
    build_message,
    estimate_tokens,
    model_visible_parts,
    new_id,
)

if TYPE_CHECKING:
    from codeagent.testing.messages_server import MessagesServer

HOST = "127.0.0.1"
_SECRET_HEADERS = frozenset({"x-api-key", "authorization"})
_REDACTED = "<redacted>"
_DELTA_CHUNKS = 3


def _error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


class Stopped(Exception):
    """The server is stopping; abandon the current response."""


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: MessagesServer, port: int) -> None:
        self.owner = owner
        super().__init__((HOST, port), Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Record handler crashes instead of printing them; ignore client disconnects."""
        exc = sys.exc_info()[1]
        if exc is None or isinstance(exc, (ConnectionError, Stopped)):
            return
        self.owner._record_error(f"handler crashed: {type(exc).__name__}: {exc}")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: no request log on stderr."""

    def setup(self) -> None:
        super().setup()
        # Without it each streamed reply on a reused connection stalls ~40 ms on a delayed ACK (Nagle's algorithm)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)

    # -- routing ---------------------------------------------------------------------------------

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        raw = self._read_body()
        owner = self.server.owner
        request_id = new_id("req")
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        headers = {k.lower(): (_REDACTED if k.lower() in _SECRET_HEADERS else v) for k, v in self.headers.items()}
        recorded = body if isinstance(body, dict) else {"_raw": raw.decode("utf-8", "replace")}
        index = owner._record_request(path, recorded, headers)
        try:
            if path not in ("/v1/messages", "/v1/messages/count_tokens"):
                self._not_found(request_id)
            elif not isinstance(body, dict):
                self._send_json(
                    400, _error_body("invalid_request_error", "request body is not a JSON object", request_id)
                )
            elif path == "/v1/messages/count_tokens":
                self._send_json(200, {"input_tokens": estimate_tokens(model_visible_parts(body))})
            else:
                self._messages(body, index, request_id)
        except (ConnectionError, Stopped):
            self.close_connection = True

    def do_GET(self) -> None:
        self._read_body()
        self._not_found(new_id("req"))

    do_PUT = do_PATCH = do_DELETE = do_GET

    # -- handlers --------------------------------------------------------------------------------

    def _messages(self, body: dict[str, Any], index: int, request_id: str) -> None:
        owner = self.server.owner
        item = owner._next_turn()
        if item is None:
            problem = f"no scripted turn left for request #{index}"
            owner._record_error(problem)
            self._send_json(500, _error_body("api_error", problem, request_id))
            return
        try:
            turn = self._resolve(item, body)
        except Stopped:
            raise
        except Exception as exc:  # a scripted callable failed: tell the test, loudly
            problem = f"scripted turn for request #{index} raised {type(exc).__name__}: {exc}"
            owner._record_error(problem)
            self._send_json(500, _error_body("api_error", problem, request_id))
            return
        if isinstance(turn, ErrorTurn):
            self._send_json(
                turn.status, _error_body(turn.error_type, turn.message, request_id), turn.headers, request_id
            )
            return
        message = build_message(turn, str(body.get("model", "claude-test")), estimate_tokens(model_visible_parts(body)))
        owner._record_usage(message["usage"])
        if body.get("stream") is True:
            self._stream(turn, message, request_id)
        else:
            self._send_json(200, message, request_id=request_id)

    def _resolve(self, item: Any, body: dict[str, Any]) -> Turn | ErrorTurn:
        """Follow delays and callables until a Turn or ErrorTurn comes out."""
        for _ in range(100):
            if isinstance(item, (Turn, ErrorTurn)):
                return item
            if isinstance(item, DelayTurn):
                self.server.owner._sleep(item.seconds)
                item = item.turn
            elif callable(item):
                item = item(body)
            else:
                raise TypeError(f"expected Turn, ErrorTurn, DelayTurn or a callable, got {type(item).__name__}")
        raise RuntimeError("scripted turn did not resolve to a Turn within 100 steps")

    def _not_found(self, request_id: str) -> None:
        message = f"{self.command} {self.path} is not served here; use POST /v1/messages"
        self._send_json(404, _error_body("not_found_error", message, request_id), request_id=request_id)

    # -- wire ------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(
        self,
        status: int,
        obj: Any,
        headers: dict[str, str] | None = None,
        request_id: str | None = None,
    ) -> None:
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", request_id or new_id("req"))
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, turn: Turn, message: dict[str, Any], request_id: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", request_id)
        self.end_headers()
        for i, (name, data) in enumerate(sse_events(message, chunks=_DELTA_CHUNKS, ping=True)):
            if i and turn.chunk_delay:
                self.server.owner._sleep(turn.chunk_delay)
            payload = sse_line(name, data)
            self.wfile.write(f"{len(payload):x}\r\n".encode("ascii") + payload + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
