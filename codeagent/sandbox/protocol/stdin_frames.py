"""Bridge messages carried on a kernel's stdin channel (gateway sandboxes). Standard library only.

A remote kernel has no socket to the notebook; its stdin channel does reach it, through the gateway, while a
script runs. A tool call is an ``input_request`` whose prompt is :data:`REQUEST` + a per-call nonce + the
base64 of ordinary bridge frames (:mod:`codeagent.sandbox.protocol.codec`); the ``input_reply`` value is the
nonce, the chunk number and count, and the base64 of the reply frames. A reply larger than one chunk is fetched
piece by piece with :data:`MORE` prompts, so no websocket message exceeds the gateway's size limit.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from codeagent.sandbox.protocol import codec

REQUEST = "\x1bcodeagent-bridge:"
MORE = "\x1bcodeagent-more:"
#: base64 characters per input_reply (Tornado's default websocket message limit is 10 MiB).
CHUNK_CHARS = 4 * 1024 * 1024


class StdinFrameError(ValueError):
    """A prompt or reply on the stdin channel is not a well-formed bridge message."""


def join(wire: Sequence[codec.Buffer]) -> bytes:
    """Wire buffers (``codec.wire_buffers``) as one byte string."""
    return b"".join(bytes(memoryview(b).cast("B")) for b in wire)


def split_messages(data: bytes, max_bytes: int, max_parts: int) -> list[list[Any]]:
    """Every whole message in ``data``; raises ``codec.ProtocolError`` for malformed or oversized ones."""
    decoder = codec.FrameDecoder(max_bytes, max_parts)
    messages: list[list[Any]] = []
    view, pos = memoryview(data), 0
    while pos < len(data):
        space = decoder.want()
        n = min(len(space), len(data) - pos)
        space[:n] = view[pos : pos + n]
        pos += n
        messages.extend(decoder.advance(n))
    if not decoder.idle:
        raise codec.ProtocolError("a bridge message on the stdin channel was cut short")
    return messages


def request_prompt(nonce: str, data: bytes) -> str:
    return f"{REQUEST}{nonce}:{base64.b64encode(data).decode('ascii')}"


def more_prompt(nonce: str, index: int) -> str:
    return f"{MORE}{nonce}:{index}"


def is_bridge_prompt(prompt: str) -> bool:
    return prompt.startswith((REQUEST, MORE))


def parse_request(prompt: str, max_chars: int) -> tuple[str, bytes]:
    """(nonce, frames) of a :func:`request_prompt`."""
    if len(prompt) > max_chars:
        raise StdinFrameError(f"a bridge request of {len(prompt)} characters exceeds the limit of {max_chars}")
    nonce, _, payload = prompt[len(REQUEST) :].partition(":")
    return _checked_nonce(nonce), _b64(payload)


def parse_more(prompt: str) -> tuple[str, int]:
    nonce, _, index = prompt[len(MORE) :].partition(":")
    if not index.isdigit():
        raise StdinFrameError("malformed chunk request")
    return _checked_nonce(nonce), int(index)


def reply_chunks(nonce: str, data: bytes, chunk_chars: int | None = None) -> list[str]:
    """The ``input_reply`` values carrying ``data``: ``nonce:index:count:base64``."""
    chunk_chars = chunk_chars or CHUNK_CHARS
    text = base64.b64encode(data).decode("ascii")
    pieces = [text[i : i + chunk_chars] for i in range(0, len(text), chunk_chars)] or [""]
    return [f"{nonce}:{i}:{len(pieces)}:{piece}" for i, piece in enumerate(pieces)]


def parse_reply_chunk(value: str, nonce: str, index: int) -> tuple[int, str]:
    """(chunk count, base64 piece) of one reply value; refuses one that answers another request."""
    got, _, rest = value.partition(":")
    number, _, rest = rest.partition(":")
    count, _, piece = rest.partition(":")
    if got != nonce or number != str(index) or not count.isdigit():
        raise StdinFrameError("the reply on the stdin channel does not answer this call")
    return int(count), piece


def decode_pieces(pieces: Sequence[str]) -> bytes:
    return _b64("".join(pieces))


def _checked_nonce(nonce: str) -> str:
    if not (0 < len(nonce) <= 64) or not all(c in "0123456789abcdef" for c in nonce):
        raise StdinFrameError("malformed call nonce")
    return nonce


def _b64(payload: str) -> bytes:
    try:
        return base64.b64decode(payload.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as e:
        raise StdinFrameError(f"bridge payload is not base64: {e}") from None
