"""Turning the SDK's reply objects into the params of the next request, and a few facts read off a reply."""

from __future__ import annotations

import json
import re
from typing import Any

from anthropic.types import ContentBlockParam, Message, TextBlockParam, ToolResultBlockParam, ToolUnionParam

from codeagent.agent.actions import Reply


def request_chars(system: list[TextBlockParam], api_tools: list[ToolUnionParam], messages: list[Any]) -> int:
    """The size of a request as JSON text (for estimating its tokens before it is sent)."""
    return len(json.dumps([system, api_tools, messages], ensure_ascii=False, default=str))


def text_of(message: Message) -> str:
    return "".join(b.text for b in message.content if b.type == "text").strip()


def read_as(reply: Reply) -> str:
    if reply.scripts:
        return f"script ({reply.scripts[0].source})"
    return "tool call"


def assistant_content(message: Message) -> list[ContentBlockParam]:
    """The reply as it is sent back; empty text blocks dropped (the API refuses them)."""
    blocks = [block_param(b) for b in message.content if b.type != "text" or b.text.strip()]
    return blocks or [{"type": "text", "text": "(empty reply)"}]


def prose_outside_code(text: str) -> bool:
    return bool(re.sub(r"```.*?(?:```|\Z)", "", text, flags=re.S).strip())


def block_param(block: Any) -> ContentBlockParam:
    if block.type == "text":
        return {"type": "text", "text": block.text}
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    param: ContentBlockParam = json.loads(block.model_dump_json(exclude_none=True))
    return param


def tool_result(tool_use_id: str, content: str, is_error: bool) -> ToolResultBlockParam:
    block: ToolResultBlockParam = {"type": "tool_result", "tool_use_id": tool_use_id, "content": content}
    if is_error:
        block["is_error"] = True
    return block
