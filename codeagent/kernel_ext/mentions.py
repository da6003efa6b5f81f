"""``@name`` mentions in a question: notebook variables handed to the sandbox, as with ``--data name``."""

from __future__ import annotations

import inspect
import re
from collections.abc import Container, Mapping
from typing import Any

# "@@" is a literal "@"; "@name" counts only at the start of a word, so "bob@df.com" is an e-mail address.
_TOKEN = re.compile(r"@@|(?<![\w.])@([A-Za-z_][A-Za-z0-9_]*)")
_NOT_DATA = ("In", "Out", "exit", "quit", "get_ipython")


def is_mentionable(name: str, namespace: Mapping[str, Any], reserved: Container[str] = ()) -> bool:
    """A notebook variable holding data: not private, not a tool, module, function or class."""
    if name.startswith("_") or name in _NOT_DATA or name in reserved or name not in namespace:
        return False
    value = namespace[name]
    return not (inspect.ismodule(value) or inspect.isroutine(value) or inspect.isclass(value))


def take_mentions(text: str, namespace: Mapping[str, Any], reserved: Container[str] = ()) -> tuple[str, list[str]]:
    """The question with ``@name`` → ``name`` and ``@@`` → ``@``, and the mentioned names (in order, once each).

    An ``@word`` naming no variable (or a tool, module, function or class) is left exactly as written.
    """
    names: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "@"
        if not is_mentionable(name, namespace, reserved):
            return match.group(0)
        if name not in names:
            names.append(name)
        return name

    return _TOKEN.sub(replace, text), names


def mention_completions(prefix: str, namespace: Mapping[str, Any], reserved: Container[str] = ()) -> list[str]:
    """``@`` + each data variable whose name starts with ``prefix`` (for tab completion)."""
    return sorted(
        f"@{name}" for name in namespace if name.startswith(prefix) and is_mentionable(name, namespace, reserved)
    )
