"""Keep a ``%codeagent`` question that ends in ``?`` away from IPython's help system."""

from __future__ import annotations

import re

_MAGIC_LINE = re.compile(r"^(\s*)%(codeagent)\s+(.*\S)\s*$")


def question_mark_transformer(lines: list[str]) -> list[str]:
    """``%codeagent who went over budget?`` would become ``%pinfo budget``: route it to the magic instead.

    ``%codeagent?`` (help about the magic) is left alone. Only single-line ``%codeagent`` input is touched.
    """
    if len(lines) != 1:
        return lines
    match = _MAGIC_LINE.match(lines[0].rstrip("\n"))
    if not match or not match.group(3).endswith("?"):
        return lines
    indent, name, rest = match.groups()
    return [f"{indent}get_ipython().run_line_magic({name!r}, {rest!r})\n"]
