"""Which recorded turn a request is: requests normalised (volatile text masked, tool ids renumbered), their
fingerprints, and a readable explanation of how a request differs from the turn it should have matched."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

#: Masked in message text before comparing: what differs between runs without meaning anything.
DEFAULT_VOLATILE = (
    r"0x[0-9a-fA-F]{6,}",  # memory addresses in reprs: <object at 0x7f…>
    r"(?<=Cell In\[)\d+(?=\])",  # the sandbox's execution counter in tracebacks
    r"(?<=codeagent-)(?:ws-)?[A-Za-z0-9_]{8}\b",  # random sandbox temp directories
    r"\d+×\d+(?= PNG\])",  # pixel size of a figure drawn in the sandbox (depends on the fonts installed)
)
MASK = "…"
_TOOL_ID_KEYS = ("id", "tool_use_id")
_SNIPPET = 60


def normalise_request(body: dict[str, Any], volatile: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """The model-visible parts of a request (model, system, messages, tools), ready to compare.

    ``cache_control`` is dropped (it changes billing, not what the model sees); tool_use ids become
    ``toolu_1``, ``toolu_2``… in order of appearance (the API makes them up, a replay echoes them);
    memory addresses, traceback cell counters, sandbox temp names and any ``volatile`` patterns are masked
    in message text. Everything else must match exactly: a different question, tool result, docstring,
    system prompt or model is a real divergence.
    """
    patterns = [re.compile(p) for p in (*DEFAULT_VOLATILE, *volatile)]
    system = body.get("system")
    if isinstance(system, str):
        system = [{"type": "text", "text": system}]
    ids: dict[str, str] = {}
    messages = [_normalise_message(m, ids, patterns) for m in body.get("messages", [])]
    return {
        "model": body.get("model"),
        "system": drop_cache_control(system or []),
        "tools": drop_cache_control(body.get("tools") or []),
        "messages": messages,
    }


def drop_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [drop_cache_control(v) for v in value]
    return value


def _mask(text: str, patterns: list[re.Pattern[str]]) -> str:
    for pattern in patterns:
        text = pattern.sub(MASK, text)
    return text


def _normalise_message(message: dict[str, Any], ids: dict[str, str], patterns: list[re.Pattern[str]]) -> Any:
    content = message.get("content")
    if isinstance(content, str):
        content = _mask(content, patterns)
    elif isinstance(content, list):
        content = [_normalise_block(b, ids, patterns) for b in drop_cache_control(content)]
    return {"role": message.get("role"), "content": content}


def _normalise_block(block: Any, ids: dict[str, str], patterns: list[re.Pattern[str]]) -> Any:
    if not isinstance(block, dict):
        return block
    block = dict(block)
    for key in _TOOL_ID_KEYS:
        if key in block and block.get("type") in ("tool_use", "tool_result", "server_tool_use"):
            block[key] = ids.setdefault(str(block[key]), f"toolu_{len(ids) + 1}")
    if isinstance(block.get("text"), str):
        block["text"] = _mask(block["text"], patterns)
    if block.get("type") == "tool_result":
        inner = block.get("content")
        if isinstance(inner, str):
            block["content"] = _mask(inner, patterns)
        elif isinstance(inner, list):
            block["content"] = [_normalise_block(b, ids, patterns) for b in inner]
    return block


def fingerprint(request: dict[str, Any]) -> str:
    """A stable hash of a normalised request."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def explain_difference(expected: dict[str, Any], got: dict[str, Any]) -> str:
    """How a request differs from a recorded one, in one sentence (both normalised)."""
    if expected["model"] != got["model"]:
        return f"the model differs from the recording: expected {expected['model']!r} got {got['model']!r}"
    if expected["tools"] != got["tools"]:
        return _tools_difference(expected["tools"], got["tools"])
    if expected["system"] != got["system"]:
        return "the system prompt differs from the recording (codeagent's prompt or a tool's stub changed): " + (
            _text_difference(_system_text(expected["system"]), _system_text(got["system"]))
        )
    return _messages_difference(expected["messages"], got["messages"])


def _system_text(blocks: list[Any]) -> str:
    return "\n".join(str(b.get("text", b)) if isinstance(b, dict) else str(b) for b in blocks)


def _tools_difference(expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> str:
    before = {str(t.get("name")): t for t in expected}
    after = {str(t.get("name")): t for t in got}
    if set(before) != set(after):
        added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
        parts = [
            f"{verb} {', '.join(map(str, names))}" for verb, names in (("added", added), ("removed", removed)) if names
        ]
        return "the tools offered differ from the recording: " + "; ".join(parts)
    for name, tool in after.items():
        if tool != before[name]:
            return f"the definition of tool {name!r} differs from the recording: " + _text_difference(
                json.dumps(before[name], sort_keys=True), json.dumps(tool, sort_keys=True)
            )
    return "the order of the tools differs from the recording"


def _messages_difference(expected: list[Any], got: list[Any]) -> str:
    for index, (e, g) in enumerate(zip(expected, got, strict=False)):
        if e == g:
            continue
        where = f"message {index + 1} ({g.get('role')})"
        if e.get("role") != g.get("role"):
            return f"{where}: the role differs from the recording: expected {e.get('role')!r} got {g.get('role')!r}"
        ec, gc = _blocks(e.get("content")), _blocks(g.get("content"))
        for eb, gb in zip(ec, gc, strict=False):
            if eb != gb:
                return f"the {_block_kind(gb, g.get('role'))} differs from the recording: " + _text_difference(
                    _block_text(eb), _block_text(gb)
                )
        return f"{where} has {len(gc)} content block(s), the recording {len(ec)}: " + _text_difference(
            _block_text_all(ec), _block_text_all(gc)
        )
    if len(got) > len(expected):
        extra = got[len(expected)]
        blocks = _blocks(extra.get("content")) or [{"type": "text", "text": ""}]
        kind = _block_kind(blocks[0], extra.get("role"))
        return f"the request continues past the recording with a {kind}: {_snippet(_block_text_all(blocks), 0)!r}"
    return f"the request has {len(got)} messages, the recording {len(expected)}"


def _blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content or [])


def _block_kind(block: Any, role: Any) -> str:
    kind = block.get("type") if isinstance(block, dict) else type(block).__name__
    if kind == "text":
        return "user message" if role == "user" else "assistant text"
    if kind == "tool_use":
        return f"tool_use input of {block.get('name')!r}"
    return str(kind)


def _block_text(block: Any) -> str:
    if not isinstance(block, dict):
        return str(block)
    if block.get("type") == "tool_result":
        inner = block.get("content")
        text = inner if isinstance(inner, str) else _block_text_all(_blocks(inner))
        return ("[is_error] " if block.get("is_error") else "") + text
    if block.get("type") == "tool_use":
        return json.dumps(block.get("input"), ensure_ascii=False, sort_keys=True)
    if isinstance(block.get("text"), str):
        return block["text"]
    return json.dumps(block, ensure_ascii=False, sort_keys=True)


def _block_text_all(blocks: list[Any]) -> str:
    return "\n".join(_block_text(b) for b in blocks)


def _text_difference(expected: str, got: str) -> str:
    at = next((i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b), min(len(expected), len(got)))
    return f"expected {_snippet(expected, at)!r} got {_snippet(got, at)!r} (first difference at character {at})"


def _snippet(text: str, at: int) -> str:
    start = max(0, at - _SNIPPET // 3)
    piece = text[start : start + _SNIPPET]
    return ("…" if start else "") + piece + ("…" if start + _SNIPPET < len(text) else "")


def question_of(request: dict[str, Any]) -> str:
    """The newest question typed by the user (a string user message), shortened."""
    for message in reversed(request["messages"]):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            text = " ".join(message["content"].split())
            return text if len(text) <= 60 else text[:57] + "..."
    return ""
