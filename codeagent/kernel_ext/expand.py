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


_OPTION_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")


class UnresolvedName(ValueError):
    """``{name}`` in an option value names no notebook variable (or attribute)."""


def expand_option(value: str, namespace: Mapping[str, Any]) -> str:
    """Replace ``{name}`` or ``{name.attr}`` in an option value by ``str()`` of it (``--base-url {srv.url}``).

    ``{{``/``}}`` give literal braces; a name that does not resolve raises :class:`UnresolvedName`, since an
    option used literally (a URL with braces in it) would only fail later with a vaguer message.
    """

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        first, *attrs = match.group(1).split(".")
        if first not in namespace:
            raise UnresolvedName(f"{token} names no notebook variable (write {{{{ and }}}} for literal braces)")
        obj = namespace[first]
        for attr in attrs:
            if attr.startswith("_") or not hasattr(obj, attr):
                raise UnresolvedName(f"{token}: {first} has no attribute {attr!r}")
            obj = getattr(obj, attr)
        return str(obj)

    return _OPTION_TOKEN.sub(replace, value)
