"""``{name}`` expansion of notebook variables in a prompt."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_VALUE_CHARS = 2_000


def expand_prompt(text: str, namespace: Mapping[str, Any], max_chars: int = MAX_VALUE_CHARS) -> str:
    """Replace ``{name}`` by the repr of that variable (capped); ``{{``/``}}`` give literal braces.

    Braces that do not name a variable are left exactly as written, so pasted code never breaks a prompt.
    """

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name = match.group(1)
        if name not in namespace or name.startswith("_"):
            return token
        try:
            value = repr(namespace[name])
        except Exception:
            return token
        if len(value) > max_chars:
            value = value[:max_chars] + f"… [{len(value) - max_chars:,} more chars]"
        return value

    return _TOKEN.sub(replace, text)
