"""Keep a ``%codeagent`` question that ends in ``?`` away from IPython's help system."""

from __future__ import annotations

import re

_MAGIC_LINE = re.compile(r"^(\s*)%(codeagent)\s+(.*\S)\s*$")


def question_mark_transformer(lines: list[str]) -> list[str]:
    """``%codeagent who went over budget?`` would become ``%pinfo budget``: route it to the magic instead.

    Any ``%codeagent`` line of a cell is rewritten when it ends in ``?``; ``%codeagent?`` (help about the
    magic) and the body of a ``%%`` cell magic are left alone.
    """
    if lines and lines[0].lstrip().startswith("%%"):
        return lines
    out = []
    for line in lines:
        match = _MAGIC_LINE.match(line.rstrip("\n"))
        if match and match.group(3).endswith("?"):
            indent, name, rest = match.groups()
            line = f"{indent}get_ipython().run_line_magic({name!r}, {rest!r})\n"
        out.append(line)
    return out
