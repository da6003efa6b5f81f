"""The server-sent events the Messages API streams for a message (used by replay and the test server)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any


def split_text(text: str, parts: int) -> list[str]:
    """``text`` in at most ``parts`` non-empty chunks (none for an empty string)."""
    if not text:
        return []
    size = math.ceil(len(text) / max(1, parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _block_events(block: dict[str, Any], chunks: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The content_block_start payload of a block and its deltas."""
    kind = block.get("type")
    if kind == "text":
        return {**block, "text": ""}, [{"type": "text_delta", "text": c} for c in split_text(block["text"], chunks)]
    if kind in ("tool_use", "server_tool_use"):
        partial = json.dumps(block.get("input", {}), ensure_ascii=False)
        return {**block, "input": {}}, [
            {"type": "input_json_delta", "partial_json": c} for c in split_text(partial, chunks)
        ]
    if kind == "thinking":
        return {**block, "thinking": "", "signature": ""}, [
            {"type": "thinking_delta", "thinking": block.get("thinking", "")},
            {"type": "signature_delta", "signature": block.get("signature", "")},
        ]
    return block, []


def sse_events(message: dict[str, Any], *, chunks: int = 1, ping: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(event name, data)`` pairs for ``message`` in the API's order; text and tool input in ``chunks`` deltas."""
    usage = dict(message.get("usage") or {})
    start_usage = {**usage, "output_tokens": min(1, usage.get("output_tokens", 0))}
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}
    yield "message_start", {"type": "message_start", "message": start}
    if ping:
        yield "ping", {"type": "ping"}
    for index, block in enumerate(message.get("content", [])):
        start_block, deltas = _block_events(block, chunks)
        yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": start_block}
        for delta in deltas:
            yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    delta = {"stop_reason": message.get("stop_reason"), "stop_sequence": message.get("stop_sequence")}
    yield (
        "message_delta",
        {"type": "message_delta", "delta": delta, "usage": {"output_tokens": usage.get("output_tokens", 0)}},
    )
    yield "message_stop", {"type": "message_stop"}


def sse_line(name: str, data: dict[str, Any]) -> bytes:
    """One event as it goes on the wire."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
