"""An MCP ``CallToolResult`` as the Python value a script receives."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

MAX_RESULT_CHARS = 64 * 1024 * 1024
MAX_ERROR_CHARS = 2_000
#: Raster images only (an SVG is active content).
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})

ImageSink = Callable[[str, str], bool]  # (mime type, base64 data) -> shown in the notebook?


class McpToolError(RuntimeError):
    """The MCP server answered a tool call with ``isError``; the message is the server's."""


def _text_of(content: list[Any]) -> str:
    return "\n".join(getattr(block, "text", "") for block in content if getattr(block, "type", "") == "text")


def result_value(result: Any, tool: str, show_image: ImageSink | None = None) -> Any:
    """``structured_content`` when present, else the text content; images become placeholders (and are shown
    through ``show_image``); ``is_error`` raises McpToolError with the server's message."""
    content = list(getattr(result, "content", None) or [])
    if getattr(result, "is_error", False):
        message = _text_of(content).strip() or f"{tool} failed (the server gave no message)"
        if len(message) > MAX_ERROR_CHARS:
            message = message[:MAX_ERROR_CHARS] + f"… ({len(message) - MAX_ERROR_CHARS} more characters)"
        raise McpToolError(message)
    structured = getattr(result, "structured_content", None)
    if structured is not None:
        return structured
    parts: list[str] = []
    images = 0
    for block in content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "image":
            images += 1
            parts.append(_image_placeholder(images, block, show_image))
        elif kind == "audio":
            parts.append(f"[audio: {str(getattr(block, 'mime_type', ''))[:40]}]")
        elif kind == "resource_link":
            parts.append(f"[resource link: {str(getattr(block, 'uri', ''))[:200]}]")
        elif kind == "resource":
            resource = getattr(block, "resource", None)
            text = getattr(resource, "text", None)
            parts.append(text if isinstance(text, str) else f"[resource: {str(getattr(resource, 'uri', ''))[:200]}]")
    if sum(len(p) for p in parts) > MAX_RESULT_CHARS:
        raise McpToolError(f"{tool} returned more than {MAX_RESULT_CHARS:,} characters; ask for less")
    return parts[0] if len(parts) == 1 else "\n".join(parts)


def _image_placeholder(n: int, block: Any, show_image: ImageSink | None) -> str:
    mime = str(getattr(block, "mime_type", ""))[:40]
    data = getattr(block, "data", "")
    try:
        size = len(base64.b64decode(data, validate=True)) if isinstance(data, str) else 0
    except (binascii.Error, ValueError):
        return f"[image {n}: invalid data]"
    shown = mime in IMAGE_TYPES and show_image is not None and show_image(mime, data)
    where = "shown in the notebook" if shown else "not shown"
    return f"[image {n}: {mime or 'unknown type'}, {size:,} bytes, {where}]"
