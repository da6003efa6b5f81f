"""Shared fixtures: a scripted Messages API server, an IPython shell with codeagent loaded, the tools."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.isolation import isolate, leftovers

# pytest imports this file as ``conftest``; test modules import its helpers as ``tests.conftest``. One module
# under both names, so its code (isolate() included) runs once and its state is not duplicated.
if __name__ == "conftest":
    sys.modules.setdefault("tests.conftest", sys.modules[__name__])

# Before anything reads them: HOME, the IPython/Jupyter/XDG directories and TMPDIR point into one private folder.
PRIVATE = isolate()

from codeagent.testing.messages_server import MessagesServer  # noqa: E402
from codeagent.tools.registry import default_registry  # noqa: E402

# Tests never reach the network: any stray client would fail fast on this address.
os.environ.pop("ANTHROPIC_API_KEY", None)
os.environ["ANTHROPIC_BASE_URL"] = "http://127.0.0.1:9"


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind() -> Iterator[Path]:
    """The private home of this run; at the end, fails the run if processes or sandbox folders were left."""
    yield PRIVATE
    found = leftovers(PRIVATE)  # the folder itself is removed at exit (tests/isolation.py)
    if found:
        pytest.fail("the tests left things behind:\n" + "\n".join(found), pytrace=False)


@pytest.fixture
def model_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[MessagesServer]:
    """A Messages API server on 127.0.0.1 the SDK reaches through ANTHROPIC_BASE_URL; add turns to it."""
    with MessagesServer() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key-not-secret")
        yield server


@pytest.fixture(scope="session")
def shell() -> Iterator[Any]:
    """One InteractiveShell for the test session, with the extension loaded (its sandbox warm)."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "codeagent")
    yield ip
    ip.run_line_magic("unload_ext", "codeagent")


@pytest.fixture
def registry() -> Iterator[Any]:
    """The notebook's tool registry, emptied before and after the test."""
    default_registry.clear()
    yield default_registry
    default_registry.clear()


@pytest.fixture
def fresh_conversation(shell: Any) -> Iterator[None]:
    shell.run_line_magic("codeagent", "--new")
    yield
    shell.run_line_magic("codeagent", "--new")


def user_variables(shell: Any) -> dict[str, str]:
    """A comparable snapshot of the notebook's own variables (names and reprs)."""
    hidden = set(shell.user_ns_hidden)
    return {
        k: repr(v)[:200]
        for k, v in shell.user_ns.items()
        if not k.startswith("_") and k not in hidden and k not in ("In", "Out", "exit", "quit", "get_ipython")
    }
