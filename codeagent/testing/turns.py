"""The scripted turns a :class:`~codeagent.testing.messages_server.MessagesServer` answers with, the Message
built from a turn, and the offline token estimate (4 characters per token of compact JSON)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from codeagent.agent.tokens import tokens_for_chars

MODEL_VISIBLE_KEYS = ("system", "messages", "tools")


def estimate_tokens(obj: Any) -> int:
    """Offline token estimate: 4 characters per token of ``obj`` as compact JSON, rounded up."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return tokens_for_chars(len(text))


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
    return {key: body[key] for key in MODEL_VISIBLE_KEYS if key in body}


def new_id(prefix: str) -> str:
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
                        "id": block.get("id") or new_id("toolu"),
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


def build_message(turn: Turn, model: str, input_tokens: int) -> dict[str, Any]:
    """The full Message object for ``turn``, with estimated (or overridden) usage."""
    usage: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": estimate_tokens(turn.content)}
    usage.update(turn.usage or {})
    return {
        "id": new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [dict(block) for block in turn.content],
        "stop_reason": turn.stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }
