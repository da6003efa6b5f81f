"""Split a ``%codeagent`` line into leading options and the prompt, which is kept exactly as written."""

from __future__ import annotations

import argparse
import difflib
import io
import re
import shlex

#: What looks like an option rather than the start of a question: ``-x`` or ``--word`` (not ``-5%``).
_OPTION_LIKE = re.compile(r"^(-[A-Za-z]|--[A-Za-z][\w-]*)$")


class UnknownOption(ValueError):
    """A leading ``-x``/``--word`` that is not an option; the message names the closest one."""


def split_options(line: str, parser: argparse.ArgumentParser) -> tuple[list[str], str]:
    """Option tokens from the start of ``line`` (values included), and the rest of the line as the prompt.

    Only the option part is tokenised, so quotes and apostrophes in the question are never mangled.
    ``--`` ends the options explicitly (for a question that starts with a dash). A leading word that looks like
    an option but is none raises :class:`UnknownOption`.
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
            if _OPTION_LIKE.match(name):
                raise UnknownOption(unknown_option_message(name, list(takes_value)))
            break  # not option-like: the prompt starts here (e.g. "-5% change?")
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


def unknown_option_message(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]}?" if close else ""
    return (
        f"%codeagent: unknown option {name}.{hint} (%codeagent? lists the options; put -- before a question "
        "that starts with a dash.)"
    )


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


def show_defaults_in_help(parser: argparse.ArgumentParser, defaults: dict[str, object]) -> str:
    """Fill ``{default}`` in the help of each option named in ``defaults`` (by dest); the parser's full help."""
    for action in parser._actions:
        template = action.__dict__.setdefault("help_template", action.help or "")
        if action.dest in defaults:
            action.help = template.replace("{default}", str(defaults[action.dest]).replace("%", "%%"))
    return parser.format_help()
