"""Server, tool and parameter names from an untrusted server, made into safe Python identifiers.

Rules (stable: they depend only on the names, never on the order servers were added):

- every character that is not a letter, digit or ``_`` becomes ``_``; a leading digit or ``_`` gets a ``t``
  prefix (so no name is private or a dunder); a keyword gets a trailing ``_``; names are cut at 64 characters;
- two tools of one server that sanitise to the same name: the first in sorted order of the original names keeps
  it, the others get ``_2``, ``_3``, …;
- a server namespace that would shadow a sandbox name (``set_result``, ``search_tools``, a built-in, a
  standard-library module such as ``time`` or ``json``, a ``@tool`` function) gets a trailing ``_mcp``.
"""

from __future__ import annotations

import builtins
import keyword
import re
import sys
from collections.abc import Iterable

MAX_NAME = 64
_NOT_IDENT = re.compile(r"[^0-9A-Za-z_]")

#: Names the sandbox defines itself; no server namespace may take them.
SANDBOX_NAMES = frozenset({"set_result", "ToolError", "search_tools", "describe_tool", "asyncio"})


def identifier(raw: str, prefix: str = "t") -> str:
    """A public Python identifier made from ``raw`` (see the module docstring)."""
    name = _NOT_IDENT.sub("_", raw.encode("ascii", "replace").decode())[:MAX_NAME] or prefix
    if name[0].isdigit() or name[0] == "_":
        name = prefix + name
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        name += "_"
    return name


def namespace_name(server: str, taken: Iterable[str] = ()) -> str:
    """The sandbox namespace of a server: its sanitised name, plus ``_mcp`` if it would shadow something."""
    name = identifier(server, prefix="mcp")
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    if name in SANDBOX_NAMES or hasattr(builtins, name) or name in stdlib or name in set(taken):
        name += "_mcp"
    return name


def unique_names(raw_names: Iterable[str], prefix: str = "t", reserved: Iterable[str] = ()) -> dict[str, str]:
    """Map each original name to a distinct identifier; ties are broken in sorted order of the originals."""
    used = set(reserved)
    mapping: dict[str, str] = {}
    for raw in sorted(set(raw_names)):
        base = identifier(raw, prefix)
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        mapping[raw] = name
    return mapping
