"""Which notebook variables one call hands to the sandbox, and why: ``--data``, ``@name``, or named in the question.

The third kind is implicit (``c.CodeAgent.implicit_mentions``, on with ``notebook_context = "names"``): a data
variable the notebook context lists, named in the question by a bare word ("plot the sales frame"). It travels
like ``--data sales`` (the model sees its schema, the script gets a copy); the prompt and the view say why.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from typing import Any

from codeagent.kernel_ext.context import listed_variables
from codeagent.kernel_ext.data import DataError, hand_over
from codeagent.kernel_ext.mentions import named_variables

NAMED = "named in the question"
#: What the model reads after such a variable's first line in the data section.
NAMED_NOTE = "handed over because the question names it"


def named_in_question(question: str, namespace: Mapping[str, Any], exclude: Container[str] = ()) -> list[str]:
    """The data variables of the notebook context (see :mod:`context`) that the question names by a bare word."""
    listed, _ = listed_variables(namespace, exclude)
    return named_variables(question, [name for name, _ in listed])


def reasons(data: Iterable[str], mentioned: Iterable[str], named: Iterable[str]) -> dict[str, str]:
    """Each variable to hand over (``--data`` first, then mentions, then named ones), with why: ``--data``,
    ``@name`` or :data:`NAMED`."""
    why = {name: "--data" for name in data}
    why.update((name, f"@{name}") for name in mentioned if name not in why)
    why.update((name, NAMED) for name in named if name not in why)
    return why


def hand_over_all(
    sandbox: Any,
    why: Mapping[str, str],
    namespace: Mapping[str, Any],
    sample: int = 0,
    reserved: Iterable[str] = (),
) -> tuple[str, dict[str, str]]:
    """Hand every variable of ``why`` over; the data section and the variables handed over.

    One that is only named in the question and cannot travel is left out (the user did not ask for it by
    name, so the call goes on without it); any other problem raises DataError.
    """
    kept = dict(why)
    reserved = list(reserved)
    while kept:
        notes = {name: NAMED_NOTE for name, reason in kept.items() if reason == NAMED}
        try:
            return hand_over(sandbox, list(kept), namespace, sample, reserved, notes=notes), kept
        except DataError as e:
            dropped = [name for name in notes if f" {name}:" in str(e) or f" {name}," in str(e)]
            if not dropped:
                raise
            for name in dropped:
                del kept[name]
    return "", kept
