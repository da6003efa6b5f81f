"""A real notebook kernel (ipykernel through jupyter_client) with codeagent loaded, driven like a frontend that
answers ``input_request`` messages on the stdin channel (as JupyterLab, Notebook 7 and VS Code do)."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from jupyter_client import KernelManager

REPO = Path(__file__).resolve().parents[2]

#: An answer to one input_request: the text to send, or a callable given the kernel (e.g. to interrupt it).
Answer = str | Callable[["StdinNotebook"], str | None]


@dataclass
class CellRun:
    """What one executed cell did, as the frontend saw it."""

    status: str
    stdout: str = ""
    prompts: list[str] = field(default_factory=list)  # the input_request prompts, in order
    displays: list[str] = field(default_factory=list)  # text/plain of every display / update
    error: str = ""

    @property
    def shown(self) -> str:
        return "\n".join([self.stdout, *self.displays, self.error])


class StdinNotebook:
    """The user's notebook kernel; :meth:`run` executes a cell and answers its questions from a list."""

    def __init__(self, home: Path) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
            "HOME": str(home),
            "IPYTHONDIR": str(home / ".ipython"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "ANTHROPIC_API_KEY": "test-key-not-secret",
        }
        (home / "runtime").mkdir(parents=True, exist_ok=True)
        self.km = KernelManager(connection_file=str(home / "runtime" / f"kernel-{uuid.uuid4()}.json"))
        self.km.start_kernel(cwd=str(home), env=env)
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(
        self, code: str, answers: list[Answer] | None = None, *, allow_stdin: bool = True, timeout: float = 90
    ) -> CellRun:
        """Execute ``code``; each input_request is answered with the next of ``answers`` (a missing one: empty)."""
        pending = list(answers or [])
        msg_id = self.kc.execute(code, allow_stdin=allow_stdin, store_history=False)
        run = CellRun(status="")
        deadline = time.monotonic() + timeout
        idle = False
        while not (run.status and idle):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cell did not finish in {timeout} s; so far: {run}")
            with contextlib.suppress(Empty):
                msg = self.kc.stdin_channel.get_msg(timeout=0.01)
                if msg["msg_type"] == "input_request":
                    run.prompts.append(msg["content"]["prompt"])
                    answer = pending.pop(0) if pending else ""
                    text = answer(self) if callable(answer) else answer
                    if text is not None:
                        self.kc.input(text)
            while True:
                try:
                    msg = self.kc.iopub_channel.get_msg(timeout=0)
                except Empty:
                    break
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream":
                    run.stdout += content["text"]
                elif kind in ("display_data", "update_display_data", "execute_result"):
                    run.displays.append(str(content["data"].get("text/plain", "")))
                elif kind == "error":
                    run.error = "\n".join(content["traceback"])
                elif kind == "status" and content["execution_state"] == "idle":
                    idle = True
            with contextlib.suppress(Empty):
                reply = self.kc.shell_channel.get_msg(timeout=0)
                if reply["parent_header"].get("msg_id") == msg_id:
                    run.status = reply["content"]["status"]
        return run

    def value(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the notebook."""
        out = self.run(f"import json as _json\nprint(_json.dumps({expression}, default=str))")
        assert out.status == "ok", out.error
        return json.loads(out.stdout.strip().splitlines()[-1])

    def interrupt(self) -> None:
        self.km.interrupt_kernel()

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.run("%unload_ext codeagent", timeout=30)
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)
        self.km.cleanup_resources()


SETUP = """
%load_ext codeagent
from codeagent import tool, ToolDenied, BudgetExceeded

sent = []
looked_up = []
kept = {"answer": 41}


@tool(approve=True)
def send_email(to: str, subject: str) -> str:
    \"\"\"Send an email to one address.\"\"\"
    sent.append(to)
    return f"sent to {to}"


@tool(mode="direct", approve=True)
def post_message(channel: str, text: str) -> str:
    \"\"\"Post a message to a chat channel (the model calls this one directly).\"\"\"
    sent.append(channel)
    return "posted"


@tool
def lookup(key: str) -> int:
    \"\"\"The length of ``key``.\"\"\"
    looked_up.append(key)
    return len(key)
"""

#: What each test starts from: nothing sent, nothing looked up, a new conversation, the given model server.
RESET = """
sent.clear()
looked_up.clear()
%config CodeAgent.base_url = {url!r}
%config CodeAgent.approve = {{}}
%config CodeAgent.confirm = False
%config CodeAgent.session_budget_usd = None
%codeagent --new
"""

#: The trace of result ``r`` as JSON.
TRACE = (
    "{'status': r.status, 'error': r.error, 'stopped_by': r.stopped_by, "
    "'calls': [[c.name, c.approval, c.error] for c in r.tool_calls], "
    "'scripts': [[s.status, s.approval] for s in r.scripts]}"
)


def notebook_with_tools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StdinNotebook]:
    """A notebook kernel with codeagent loaded and two tools: ``send_email`` (needs approval) and ``lookup``
    (for a module-scoped fixture)."""
    nb = StdinNotebook(tmp_path_factory.mktemp("notebook-home"))
    try:
        setup = nb.run(SETUP)
        assert setup.status == "ok", setup.error
        yield nb
    finally:
        nb.shutdown()


def fresh(nb: StdinNotebook, url: str) -> None:
    out = nb.run(RESET.format(url=url))
    assert out.status == "ok", out.error
