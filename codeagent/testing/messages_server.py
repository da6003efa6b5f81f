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
import socket
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from codeagent.testing.messages_http import HOST, HTTPServer, Stopped
from codeagent.testing.turns import (
    DelayTurn,
    ErrorTurn,
    Turn,
    TurnItem,
    code_turn,
    estimate_tokens,
    last_tool_result,
    model_visible_parts,
    text_turn,
    tool_turn,
)

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
    ``"<redacted>"``). ``errors`` lists script failures such as running out of turns. ``fallback`` answers
    every request after the scripted turns (``python -m codeagent serve`` uses one).
    """

    def __init__(self, turns: Iterable[TurnItem] = (), port: int = 0, fallback: TurnItem | None = None) -> None:
        self._port = port
        self._fallback = fallback  # answers every request once the scripted turns are used up
        self._lock = threading.Lock()
        self._state = _State(turns=list(turns))
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> MessagesServer:
        """Bind 127.0.0.1 and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            raise RuntimeError("MessagesServer is already started")
        self._stopping.clear()
        self._httpd = HTTPServer(self, self._port)
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
        return f"http://{HOST}:{self._httpd.server_address[1]}"

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
            return self._state.turns.pop(0) if self._state.turns else self._fallback

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
            raise Stopped()


if __name__ == "__main__":
    from codeagent.testing.serve import main

    sys.exit(main())
