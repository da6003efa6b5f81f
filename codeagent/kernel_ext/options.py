"""Split a ``%codeagent`` line into leading options and the prompt, which is kept exactly as written."""

from __future__ import annotations

import argparse
import io
import shlex


def split_options(line: str, parser: argparse.ArgumentParser) -> tuple[list[str], str]:
    """Option tokens from the start of ``line`` (values included), and the rest of the line as the prompt.

    Only the option part is tokenised, so quotes and apostrophes in the question are never mangled.
    ``--`` ends the options explicitly.
    """
    takes_value = option_arity(parser)
    tokens: list[str] = []
    rest = line.lstrip()
    while rest.startswith("-"):
        word, _, after = rest.partition(" ")
        word = word.strip()
        if word == "--":
            return tokens, after.strip()
        name = word.split("=", 1)[0]
        if name not in takes_value:
            break  # not one of ours: the prompt starts here (e.g. "-5% change?")
        tokens.append(word)
        rest = after.lstrip()
        if takes_value[name] and "=" not in word:
            value, rest = _take_value(rest)
            if value is not None:
                tokens.append(value)
    return tokens, rest.strip()


def option_arity(parser: argparse.ArgumentParser) -> dict[str, bool]:
    """Each option string of ``parser`` → whether it takes a value after a space.

    An optional value (``nargs="?"``, e.g. ``--cell[=NAME]``) is taken only as ``--opt=value``: the question
    follows.

    argparse has no public list of a parser's options; ``_actions`` is read here and nowhere else
    (``tests/unit/test_dependency_seams.py`` fails if it changes).
    """
    return {opt: action.nargs not in (0, "?") for action in parser._actions for opt in action.option_strings}


def _take_value(text: str) -> tuple[str | None, str]:
    if not text:
        return None, ""
    stream = io.StringIO(text)
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        value = lexer.get_token()
    except ValueError:
        value, _, rest = text.partition(" ")
        return value, rest.lstrip()
    remaining = stream.read()  # what the lexer has not consumed
    return value, remaining.lstrip()
