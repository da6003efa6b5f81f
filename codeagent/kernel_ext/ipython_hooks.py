"""Keep a ``%codeagent`` question that ends in ``?`` away from IPython's help system."""

from __future__ import annotations

import re
from typing import Any

# ``%codeagent question`` or ``name = %codeagent question`` (the assignment form IPython supports for magics)
_MAGIC_LINE = re.compile(r"^(\s*)(?:([A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*)\s*=\s*)?%(codeagent)\s+(.*\S)\s*$")
_LOAD_LINE = re.compile(r"^\s*%load_ext\s+(?:.*\s)?codeagent(?:\s|$)", re.MULTILINE)
_PINFO_CALL = re.compile(r"get_ipython\(\)\.run_line_magic\('(pinfo2?)', '([^']*)'\)")


def question_mark_transformer(lines: list[str]) -> list[str]:
    """``%codeagent who went over budget?`` would become ``%pinfo budget``: route it to the magic instead.

    Any ``%codeagent`` line of a cell (also ``r = %codeagent …?``) is rewritten when it ends in ``?``;
    ``%codeagent?`` (help about the magic) and the body of a ``%%`` cell magic are left alone.
    """
    if lines and lines[0].lstrip().startswith("%%"):
        return lines
    out = []
    for line in lines:
        rewritten = rewrite_line(line.rstrip("\n"))
        out.append(rewritten + "\n" if rewritten is not None else line)
    return out


def rewrite_line(line: str) -> str | None:
    """The Python a ``%codeagent …?`` line should run, or None for any other line."""
    match = _MAGIC_LINE.match(line)
    if not match or not match.group(4).endswith("?"):
        return None
    indent, target, name, rest = match.groups()
    call = f"get_ipython().run_line_magic({name!r}, {rest!r})"
    return f"{indent}{target} = {call}" if target else f"{indent}{call}"


class SameCellRescue:
    """``%load_ext codeagent`` and ``%codeagent …?`` in the same cell: IPython transformed the whole cell before
    the extension (and its transformer) existed, so the question lines now call ``%pinfo <last word>``. For the
    rest of that cell, those exact calls run the question instead (assigning the result where the line did)."""

    def __init__(self, shell: Any, run_question: Any) -> None:
        self.shell = shell
        self.run_question = run_question
        self.pending: list[tuple[str, str, str | None, str]] = []  # (pinfo magic, its argument, target, question)
        self.original: dict[str, Any] = {}

    def arm(self) -> bool:
        """Look at the cell being run; take over its mangled question lines. True if there were any."""
        raw = self._current_cell()
        load = _LOAD_LINE.search(raw) if raw else None
        if raw is None or load is None:
            return False
        from IPython.core.inputtransformer2 import TransformerManager

        plain = TransformerManager()  # what IPython made of each line without our transformer
        for line in raw[load.end() :].splitlines():
            match = _MAGIC_LINE.match(line)
            if not match or not match.group(4).endswith("?"):
                continue
            call = _PINFO_CALL.search(plain.transform_cell(line.strip() + "\n"))
            if call:
                self.pending.append((call.group(1), call.group(2), match.group(2), match.group(4)))
        if not self.pending:
            return False
        for magic in {p[0] for p in self.pending}:
            self.original[magic] = self.shell.magics_manager.magics["line"].get(magic)
            self.shell.magics_manager.magics["line"][magic] = self._shim(magic)
        self.shell.events.register("post_run_cell", self.disarm)
        return True

    def _current_cell(self) -> str | None:
        history = getattr(self.shell, "history_manager", None)
        raw = getattr(history, "input_hist_raw", None)
        return raw[-1] if raw else None

    def _shim(self, magic: str) -> Any:
        def pinfo_or_question(line: str = "", *args: Any, **kwargs: Any) -> Any:
            if self.pending and self.pending[0][:2] == (magic, line):
                _, _, target, question = self.pending.pop(0)
                result = self.run_question(question)
                if target is None:
                    return result
                self.shell.user_ns[target] = result  # a plain name (dotted targets are rare: left to IPython)
                return None
            original = self.original.get(magic)
            return original(line, *args, **kwargs) if original is not None else None

        return pinfo_or_question

    def disarm(self, *_: Any) -> None:
        for magic, original in self.original.items():
            if original is not None:
                self.shell.magics_manager.magics["line"][magic] = original
        self.original.clear()
        self.pending.clear()
        self.shell.events.unregister("post_run_cell", self.disarm)
