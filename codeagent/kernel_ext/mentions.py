"""``@name`` mentions in a question: notebook variables handed to the sandbox, as with ``--data name``.

Also the implicit kind (``c.CodeAgent.implicit_mentions``): a data variable of the notebook context that the
question names by a bare word ("plot the sales frame" names ``sales``, or ``sales_df`` / ``df_sales``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Container, Iterable, Mapping
from typing import Any

# "@@" is a literal "@"; "@name" counts only at the start of a word, so "bob@df.com" is an e-mail address.
_TOKEN = re.compile(r"@@|(?<![\w.])@([A-Za-z_][A-Za-z0-9_]*)")
_NOT_DATA = ("In", "Out", "exit", "quit", "get_ipython")
# A bare word: not part of an e-mail address, a dotted name or file name (sales.csv), an @mention or a {name}.
_WORD = re.compile(r"(?<![\w.@{])([A-Za-z_][A-Za-z0-9_]*)(?![\w@}]|\.\w)")
#: Frame-name affixes: the word "sales" names ``sales_df`` and ``df_sales`` too.
AFFIXES = ("_df", "df_")
#: Words too common to name a variable by themselves ("plot a histogram" does not name an array ``a``).
# fmt: off
_COMMON = frozenset((
    "a", "an", "and", "as", "at", "be", "by", "do", "for", "from", "i", "if", "in", "is", "it", "me", "my", "no",
    "of", "on", "or", "so", "the", "to", "up", "we", "x", "y", "z", "all", "any", "per", "data", "frame", "table",
    "array", "series", "column", "columns", "row", "rows", "value", "values",
))
# fmt: on


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


def named_variables(text: str, candidates: Iterable[str]) -> list[str]:
    """The ``candidates`` the question names by a bare word, in order of first mention.

    A word names the variable of that name (case aside) or, when there is none, ``word_df`` / ``df_word``.
    Common words (articles, "data", "frame", …) name nothing, nor does a word inside an e-mail address, a
    dotted name, a ``{name}`` or after an ``@``.
    """
    exact: dict[str, str] = {}
    affixed: dict[str, list[str]] = {}
    for name in candidates:
        exact.setdefault(name.lower(), name)
        lowered = name.lower()
        for affix in AFFIXES:
            base = lowered.removesuffix(affix) if affix.startswith("_") else lowered.removeprefix(affix)
            if base != lowered and base:
                affixed.setdefault(base, []).append(name)
    found: list[str] = []
    for match in _WORD.finditer(text):
        word = match.group(1).lower()
        if word in _COMMON:
            continue
        for name in [exact[word]] if word in exact else affixed.get(word, []):
            if name not in found:
                found.append(name)
    return found
