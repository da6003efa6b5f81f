"""Asking the person in the notebook, over the kernel's stdin channel (``input()`` → ``input_request``).

This is what works while a cell is busy in JupyterLab, Notebook 7, VS Code and terminal IPython; widget
button clicks would not arrive until the cell finishes. Where no one can answer (nbclient, papermill,
``allow_stdin=False``), ipykernel raises ``StdinNotImplementedError``: that becomes :class:`NoOneToAsk` and the
call is denied.
"""

from __future__ import annotations

import builtins
from typing import Any

from IPython.core.error import StdinNotImplementedError
from IPython.display import display

from codeagent.tools.approval import Decision, NoOneToAsk, Question
from codeagent.widgets.question import decision_bundle, question_bundle


class NotebookAsker:
    """Shows the question as output of the running cell and reads the answer with ``input()``."""

    def __init__(self) -> None:
        self._handles: dict[int, Any] = {}

    def ask(self, question: Question, prompt: str) -> str:
        if not _can_ask():  # known before showing anything: no question left behind that only an update could end
            raise NoOneToAsk("this notebook cannot ask: it runs without stdin")
        if id(question) not in self._handles:
            self._handles[id(question)] = display(question_bundle(question), raw=True, display_id=True)
        try:
            # looked up now: ipykernel swaps builtins.input for its stdin-channel version while a cell runs
            return str(builtins.input(prompt))
        except (StdinNotImplementedError, EOFError):
            raise NoOneToAsk("this notebook cannot ask: it runs without stdin") from None

    def settle(self, question: Question, decision: Decision) -> None:
        handle = self._handles.pop(id(question), None)
        bundle = decision_bundle(question, decision)
        if handle is not None:
            handle.update(bundle, raw=True)
        else:
            display(bundle, raw=True)


def _can_ask() -> bool:
    """False when the running cell's request said ``allow_stdin=False`` (nbclient, papermill, nbval)."""
    from IPython import get_ipython

    kernel = getattr(get_ipython(), "kernel", None)
    return bool(getattr(kernel, "_allow_stdin", True))
