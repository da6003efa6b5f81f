"""The wire side of record/replay: server-sent events, and transports for the SDK's own HTTP client.

:class:`ReplayTransport` answers ``POST /v1/messages`` from a cassette as the API would (JSON, or server-sent
events when the request streams) without opening a connection; :class:`RecordingTransport` sends requests
through the real transport and hands each successful turn to the cassette.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

from codeagent.agent.cassette import Cassette, CassetteError
from codeagent.agent.sse import sse_events, sse_line

# -- the wire: server-sent events ---------------------------------------------------------------------------


def sse_body(message: dict[str, Any]) -> bytes:
    return b"".join(sse_line(name, data) for name, data in sse_events(message))


def message_from_sse(raw: bytes) -> dict[str, Any]:
    """Assemble the final Message from a streamed response (what the SDK's stream accumulates)."""
    message: dict[str, Any] | None = None
    blocks: dict[int, dict[str, Any]] = {}
    partial: dict[int, str] = {}
    for chunk in re.split(r"\r?\n\r?\n", raw.decode("utf-8")):
        data = "\n".join(line[5:].lstrip() for line in chunk.splitlines() if line.startswith("data:"))
        if not data:
            continue
        event = json.loads(data)
        kind = event.get("type")
        if kind == "message_start":
            message = dict(event["message"])
        elif kind == "content_block_start":
            blocks[event["index"]] = dict(event["content_block"])
            if blocks[event["index"]].get("type") in ("tool_use", "server_tool_use"):
                partial[event["index"]] = ""
        elif kind == "content_block_delta":
            _apply_delta(blocks[event["index"]], partial, event["index"], event["delta"])
        elif kind == "content_block_stop" and event["index"] in partial:
            blocks[event["index"]]["input"] = json.loads(partial.pop(event["index"]) or "{}")
        elif kind == "message_delta" and message is not None:
            message.update({k: v for k, v in event.get("delta", {}).items()})
            message["usage"] = {**(message.get("usage") or {}), **(event.get("usage") or {})}
        elif kind == "error":
            raise CassetteError(f"the API streamed an error: {event.get('error')}")
    if message is None:
        raise CassetteError("the streamed response had no message_start event")
    message["content"] = [blocks[i] for i in sorted(blocks)]
    return message


def _apply_delta(block: dict[str, Any], partial: dict[int, str], index: int, delta: dict[str, Any]) -> None:
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = block.get("text", "") + delta["text"]
    elif kind == "input_json_delta":
        partial[index] = partial.get(index, "") + delta["partial_json"]
    elif kind == "thinking_delta":
        block["thinking"] = block.get("thinking", "") + delta["thinking"]
    elif kind == "signature_delta":
        block["signature"] = delta["signature"]
    elif kind == "citations_delta":
        block.setdefault("citations", []).append(delta["citation"])


# -- transports for the SDK's own HTTP client ---------------------------------------------------------------


def http_module() -> ModuleType:
    """The HTTP package the installed SDK is built on (``httpx2`` in recent releases, ``httpx`` before), read
    from the SDK's declared requirements. ``tests/unit/test_dependency_seams.py`` checks the SDK's client is
    built on it."""
    requirements = importlib.metadata.requires("anthropic") or []
    names = {re.split(r"[\s<>=!~;\[(]", r, maxsplit=1)[0].lower() for r in requirements}
    return importlib.import_module("httpx2" if "httpx2" in names else "httpx")


if TYPE_CHECKING:
    import httpx2 as _http
else:
    _http = http_module()


def _is_messages(request: Any) -> bool:
    return request.method == "POST" and request.url.path.rstrip("/").endswith("/v1/messages")


class ReplayTransport(_http.BaseTransport):
    """Answers ``POST /v1/messages`` from a cassette; opens no connection, needs no key."""

    def __init__(self, cassette: Cassette) -> None:
        self.cassette = cassette

    def handle_request(self, request: Any) -> Any:
        if not _is_messages(request):
            raise CassetteError(
                f"replay serves POST /v1/messages only; this request was {request.method} {request.url.path}"
            )
        body = json.loads(request.read() or b"{}")
        message = self.cassette.serve(body)
        headers = {"request-id": f"req_replay_{self.cassette.replayed}"}
        if body.get("stream"):
            headers["content-type"] = "text/event-stream; charset=utf-8"
            return _http.Response(200, headers=headers, content=sse_body(message), request=request)
        headers["content-type"] = "application/json"
        return _http.Response(200, headers=headers, content=json.dumps(message).encode(), request=request)


class _TeeStream(_http.SyncByteStream):
    """Passes a response body through as it arrives and hands the whole of it over once it is complete."""

    def __init__(self, inner: Any, on_complete: Any) -> None:
        self._inner = inner
        self._on_complete = on_complete
        self._chunks: list[bytes] = []

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._chunks.append(chunk)
            yield chunk
        self._on_complete(b"".join(self._chunks))

    def close(self) -> None:
        self._inner.close()


class RecordingTransport(_http.BaseTransport):
    """Sends requests through ``inner`` (the real transport) and saves each successful model turn."""

    def __init__(self, cassette: Cassette, inner: Any = None) -> None:
        self.cassette = cassette
        self.inner = inner if inner is not None else _http.HTTPTransport()

    def handle_request(self, request: Any) -> Any:
        if not _is_messages(request):
            return self.inner.handle_request(request)
        body = json.loads(request.read() or b"{}")
        request.headers["accept-encoding"] = "identity"  # keep the saved body readable
        response = self.inner.handle_request(request)
        if response.status_code != 200:
            return response  # errors and retries are not turns

        def save(raw: bytes) -> None:
            streamed = "text/event-stream" in response.headers.get("content-type", "")
            message = message_from_sse(raw) if streamed else json.loads(raw)
            self.cassette.record(body, message)

        return _http.Response(
            response.status_code,
            headers=response.headers,
            stream=_TeeStream(response.stream, save),
            request=request,
            extensions=response.extensions,
        )

    def close(self) -> None:
        self.inner.close()
