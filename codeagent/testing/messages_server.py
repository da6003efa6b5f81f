"""A scripted Anthropic Messages API server on 127.0.0.1 for tests, benchmarks and demos.

The real ``anthropic`` SDK talks to it over loopback HTTP::

    with MessagesServer([code_turn("print(1)"), text_turn("done")]) as srv:
        client = anthropic.Anthropic(base_url=srv.url, api_key="test-key")
        message = client.messages.create(model="claude-test", max_tokens=100, messages=[...])

Each ``POST /v1/messages`` consumes one scripted turn: a :class:`Turn`, an :class:`ErrorTurn`, a
:class:`DelayTurn`, or a callable ``(request_body) -> Turn | ErrorTurn | DelayTurn`` that can react to
what the model was sent. Streaming requests get server-sent events in the order the real API uses;
other requests get the whole Message as JSON.

Token counts are an offline estimate: 4 characters per token of the compact JSON the model would see
(see :func:`estimate_tokens`). They are deterministic, not what the real tokenizer would say.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from codeagent.agent.sse import sse_events, sse_line

__all__ = [
    "DelayTurn",
    "ErrorTurn",
    "MessagesServer",
    "Turn",
    "TurnItem",
    "code_turn",
    "estimate_tokens",
    "last_tool_result",
    "model_visible_parts",
    "text_turn",
    "tool_turn",
]

_HOST = "127.0.0.1"
_MODEL_VISIBLE_KEYS = ("system", "messages", "tools")
_SECRET_HEADERS = frozenset({"x-api-key", "authorization"})
_REDACTED = "<redacted>"
_DELTA_CHUNKS = 3


def estimate_tokens(obj: Any) -> int:
    """Offline token estimate: 4 characters per token of ``obj`` as compact JSON, rounded up."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return math.ceil(len(text) / 4)


def last_tool_result(body: dict[str, Any]) -> str:
    """The newest tool_result text in a Messages request: what a scripted model reads a script's output from."""
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user" and isinstance(message.get("content"), list):
            for block in reversed(message["content"]):
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    content = block.get("content")
                    if isinstance(content, str):
                        return content
                    return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict))
    raise AssertionError("the model was not sent a tool_result")


def model_visible_parts(body: dict[str, Any]) -> dict[str, Any]:
    """The parts of a request the model sees (system, messages, tools), as estimated for input_tokens."""
    return {key: body[key] for key in _MODEL_VISIBLE_KEYS if key in body}


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


@dataclass
class Turn:
    """One scripted assistant reply.

    ``content`` holds ``text`` and ``tool_use`` blocks; tool_use blocks without an ``id`` get a
    ``toolu_...`` one. ``stop_reason`` defaults to ``"tool_use"`` when there is a tool_use block, else
    ``"end_turn"``. ``usage`` overrides the estimated usage fields. ``chunk_delay`` sleeps that many
    seconds between server-sent events when the request streams.
    """

    content: list[dict[str, Any]]
    stop_reason: str | None = None
    usage: dict[str, Any] | None = None
    chunk_delay: float = 0.0

    def __post_init__(self) -> None:
        blocks: list[dict[str, Any]] = []
        for block in self.content:
            kind = block.get("type")
            if kind == "text":
                if not isinstance(block.get("text"), str):
                    raise ValueError(f"text block needs a str 'text', got {block!r}")
                blocks.append({"type": "text", "text": block["text"]})
            elif kind == "tool_use":
                if not isinstance(block.get("name"), str) or not isinstance(block.get("input", {}), dict):
                    raise ValueError(f"tool_use block needs a str 'name' and a dict 'input', got {block!r}")
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": block.get("id") or _new_id("toolu"),
                        "name": block["name"],
                        "input": dict(block.get("input", {})),
                    }
                )
            else:
                raise ValueError(f"unsupported content block type {kind!r}; use 'text' or 'tool_use'")
        self.content = blocks
        if self.stop_reason is None:
            has_tool_use = any(b["type"] == "tool_use" for b in blocks)
            self.stop_reason = "tool_use" if has_tool_use else "end_turn"
        if self.chunk_delay < 0:
            raise ValueError("chunk_delay must be >= 0")


@dataclass(frozen=True)
class ErrorTurn:
    """Answer one request with an HTTP error in Anthropic's error shape.

    E.g. ``ErrorTurn(429, "rate_limit_error", "slow down", {"retry-after": "0"})``.
    """

    status: int
    error_type: str
    message: str
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class DelayTurn:
    """Sleep ``seconds`` before answering with ``turn`` (for client timeout tests)."""

    seconds: float
    turn: TurnItem


TurnItem = Turn | ErrorTurn | DelayTurn | Callable[[dict[str, Any]], Any]
"""A scripted item: a Turn, ErrorTurn, DelayTurn, or ``(request_body) -> one of those``."""


def text_turn(text: str) -> Turn:
    """A turn that answers with one text block and ends the turn."""
    return Turn([{"type": "text", "text": text}])


def tool_turn(name: str, input: dict[str, Any], text: str | None = None) -> Turn:
    """A turn that calls tool ``name`` with ``input``, optionally preceded by a text block."""
    blocks: list[dict[str, Any]] = [] if text is None else [{"type": "text", "text": text}]
    blocks.append({"type": "tool_use", "name": name, "input": input})
    return Turn(blocks)


def code_turn(code: str, text: str | None = None) -> Turn:
    """A turn that calls the ``execute_python`` tool with ``{"code": code}``."""
    return tool_turn("execute_python", {"code": code}, text=text)


def _error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


class _Stopped(Exception):
    """The server is stopping; abandon the current response."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: MessagesServer, port: int) -> None:
        self.owner = owner
        super().__init__((_HOST, port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Record handler crashes instead of printing them; ignore client disconnects."""
        exc = sys.exc_info()[1]
        if exc is None or isinstance(exc, (ConnectionError, _Stopped)):
            return
        self.owner._record_error(f"handler crashed: {type(exc).__name__}: {exc}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: no request log on stderr."""

    def setup(self) -> None:
        super().setup()
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
        request_id = _new_id("req")
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
        except (ConnectionError, _Stopped):
            self.close_connection = True

    def do_GET(self) -> None:
        self._read_body()
        self._not_found(_new_id("req"))

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
        except _Stopped:
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
        message = _message(turn, str(body.get("model", "claude-test")), estimate_tokens(model_visible_parts(body)))
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
        self.send_header("request-id", request_id or _new_id("req"))
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


def _message(turn: Turn, model: str, input_tokens: int) -> dict[str, Any]:
    """The full Message object for ``turn``, with estimated (or overridden) usage."""
    usage: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": estimate_tokens(turn.content)}
    usage.update(turn.usage or {})
    return {
        "id": _new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [dict(block) for block in turn.content],
        "stop_reason": turn.stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


@dataclass
class _State:
    turns: list[TurnItem]
    requests: list[dict[str, Any]] = field(default_factory=list)
    request_paths: list[str] = field(default_factory=list)
    request_headers: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    message_count: int = 0
    total_input_tokens: int = 0
    total_output_tokens: int = 0


class MessagesServer:
    """A loopback HTTP server speaking the Messages API, answering from scripted turns.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. ``url`` is the base URL for
    ``anthropic.Anthropic(base_url=...)``. Every request is recorded: ``requests`` (parsed JSON bodies),
    ``request_paths`` and ``request_headers`` (same order; API key headers are stored as
    ``"<redacted>"``). ``errors`` lists script failures such as running out of turns.
    """

    def __init__(self, turns: Iterable[TurnItem] = (), port: int = 0) -> None:
        self._port = port
        self._lock = threading.Lock()
        self._state = _State(turns=list(turns))
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> MessagesServer:
        """Bind 127.0.0.1 and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            raise RuntimeError("MessagesServer is already started")
        self._stopping.clear()
        self._httpd = _HTTPServer(self, self._port)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="MessagesServer",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut down: wake sleeping handlers, close open connections, join the serving thread."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=10)
        self._httpd = self._thread = None

    def __enter__(self) -> MessagesServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._httpd is not None else "stopped"
        return f"MessagesServer({where}, {len(self._state.requests)} requests, {self.turns_left} turns left)"

    # -- public state ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT``."""
        if self._httpd is None:
            raise RuntimeError("MessagesServer is not started; use `with MessagesServer(...)` or start()")
        return f"http://{_HOST}:{self._httpd.server_address[1]}"

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.url.rsplit(":", 1)[1])

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request body received, parsed (all paths, in arrival order)."""
        return self._state.requests

    @property
    def request_paths(self) -> list[str]:
        """The path of each entry in :attr:`requests`."""
        return self._state.request_paths

    @property
    def request_headers(self) -> list[dict[str, str]]:
        """Lower-cased headers of each entry in :attr:`requests`, API keys redacted."""
        return self._state.request_headers

    @property
    def message_requests(self) -> list[dict[str, Any]]:
        """Only the bodies sent to ``/v1/messages``."""
        with self._lock:
            pairs = list(zip(self._state.request_paths, self._state.requests, strict=True))
        return [body for path, body in pairs if path == "/v1/messages"]

    @property
    def errors(self) -> list[str]:
        """Script failures seen so far (no turn left, a callable raised, a handler crashed)."""
        return self._state.errors

    @property
    def total_input_tokens(self) -> int:
        """Sum of ``usage.input_tokens`` over answered /v1/messages requests."""
        return self._state.total_input_tokens

    @property
    def total_output_tokens(self) -> int:
        """Sum of ``usage.output_tokens`` over answered /v1/messages requests."""
        return self._state.total_output_tokens

    @property
    def turns_left(self) -> int:
        """How many scripted turns have not been consumed."""
        return len(self._state.turns)

    def add_turns(self, *turns: TurnItem) -> None:
        """Append more scripted turns."""
        with self._lock:
            self._state.turns.extend(turns)

    # -- used by the handler ---------------------------------------------------------------------

    def _record_request(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> int:
        """Record one request; returns its 1-based number among /v1/messages requests (0 otherwise)."""
        with self._lock:
            self._state.requests.append(body)
            self._state.request_paths.append(path)
            self._state.request_headers.append(headers)
            if path != "/v1/messages":
                return 0
            self._state.message_count += 1
            return self._state.message_count

    def _next_turn(self) -> TurnItem | None:
        with self._lock:
            return self._state.turns.pop(0) if self._state.turns else None

    def _record_usage(self, usage: dict[str, Any]) -> None:
        with self._lock:
            self._state.total_input_tokens += int(usage.get("input_tokens") or 0)
            self._state.total_output_tokens += int(usage.get("output_tokens") or 0)

    def _record_error(self, message: str) -> None:
        with self._lock:
            self._state.errors.append(message)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _sleep(self, seconds: float) -> None:
        """Sleep, but give up at once if the server is stopping."""
        if self._stopping.wait(seconds):
            raise _Stopped()
