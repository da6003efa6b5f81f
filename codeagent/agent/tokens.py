"""The one offline token estimate used everywhere (demo summary, notebooks, the test server, benchmarks)."""

from __future__ import annotations

#: Characters per token of the offline estimate (English text and JSON average about this for Claude models).
CHARS_PER_TOKEN = 4


def tokens_for_chars(chars: int) -> int:
    """Estimated tokens of ``chars`` characters: ``chars / 4``, rounded up."""
    return -(-chars // CHARS_PER_TOKEN)
