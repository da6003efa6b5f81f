"""A real notebook kernel for benchmarks: an ipykernel started with jupyter_client, with a client thread that
drains IOPub the way jupyter_server does (every message read, deserialized and turned into JSON text for the
browser), and the bundled Messages API server (scripted turns, no model latency) in this process."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_client.manager import KernelManager

from codeagent.testing.messages_server import MessagesServer, Turn

REPO = Path(__file__).resolve().parent.parent


@dataclass
class CellRun:
    """What one executed cell sent back: its reply, its text output, its IOPub message types, its wall time."""

    reply: dict[str, Any]
    stdout: str
    errors: list[str]
    iopub: Counter[str]
    wall_s: float


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    stdout: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    iopub: Counter[str] = field(default_factory=Counter)


class NotebookKernel:
    """``run(code)`` executes a cell and waits until the kernel is idle again with all its IOPub drained."""

    def __init__(self, timeout: float = 300) -> None:
        self.timeout = timeout
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env)
        self.client = self.manager.blocking_client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.iopub_bytes = 0
        self._drainer = threading.Thread(target=self._drain, name="iopub-drain", daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.client.get_iopub_msg(timeout=0.2)
            except Empty:
                continue
            except Exception:  # the channel closed while stopping
                return
            self.iopub_bytes += len(json.dumps(msg, default=json_default))  # what goes to the browser
            parent = msg["parent_header"].get("msg_id")
            with self._lock:
                pending = self._pending.get(parent)
            if pending is None:
                continue
            kind = msg["msg_type"]
            pending.iopub[kind] += 1
            content = msg["content"]
            if kind == "stream" and content.get("name") == "stdout":
                pending.stdout.append(content["text"])
            elif kind == "error":
                pending.errors.append(f"{content['ename']}: {content['evalue']}")
            elif kind == "status" and content.get("execution_state") == "idle":
                pending.done.set()

    def run(self, code: str) -> CellRun:
        """Execute ``code`` as a cell; raise if it failed."""
        pending = _Pending()
        started = time.perf_counter()
        msg_id = self.client.session.msg("execute_request")["header"]["msg_id"]
        with self._lock:
            self._pending[msg_id] = pending
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False}
        msg = self.client.session.msg("execute_request", content)
        msg["header"]["msg_id"] = msg_id
        msg["msg_id"] = msg_id
        self.client.shell_channel.send(msg)
        reply = self._reply(msg_id)
        if not pending.done.wait(self.timeout):
            raise TimeoutError(f"no idle status for the cell within {self.timeout} s")
        wall = time.perf_counter() - started
        with self._lock:
            del self._pending[msg_id]
        run = CellRun(reply["content"], "".join(pending.stdout), pending.errors, pending.iopub, wall)
        if run.reply.get("status") != "ok" or run.errors:
            raise RuntimeError(f"cell failed: {run.errors or run.reply}\n{code}")
        return run

    def _reply(self, msg_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            msg = self.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg
        raise TimeoutError(f"no execute_reply within {self.timeout} s")

    def json_line(self, code: str, marker: str = "BENCH ") -> tuple[Any, CellRun]:
        """Run a cell that prints one ``BENCH <json>`` line; its value and the run."""
        run = self.run(code)
        lines = [line for line in run.stdout.splitlines() if line.startswith(marker)]
        if not lines:
            raise RuntimeError(f"the cell printed no {marker!r} line:\n{run.stdout[-2000:]}")
        return json.loads(lines[-1][len(marker) :]), run

    def shutdown(self) -> None:
        self._stop.set()
        self.client.stop_channels()
        self._drainer.join(timeout=2)
        self.manager.shutdown_kernel(now=False)


SETUP_CELL = """
%load_ext codeagent
from codeagent.tools import tool

@tool
def noop() -> None:
    \"\"\"Does nothing.\"\"\"

@tool
def lookup(key: str) -> dict:
    \"\"\"Look a key up.\"\"\"
    return {{"key": key, "value": len(key)}}

%config CodeAgent.base_url = {url!r}
"""


def start_notebook(server: MessagesServer) -> NotebookKernel:
    """A notebook kernel with codeagent loaded, two tools (``noop``, ``lookup``) and the server as its model."""
    kernel = NotebookKernel()
    try:
        kernel.run(SETUP_CELL.format(url=server.url))
    except BaseException:
        kernel.shutdown()
        raise
    return kernel


def ask(kernel: NotebookKernel, server: MessagesServer, turns: list[Turn], *, live: bool, question: str) -> Any:
    """One ``%codeagent`` call answered by ``turns``; the result's first script output, parsed as JSON."""
    server.add_turns(*turns)
    cell = (
        f"%config CodeAgent.live = {live}\n"
        f"r = %codeagent --new {question}\n"
        "assert r.status == 'done', (r.status, r.error)\n"
        "print('BENCH ' + r.scripts[0].output.strip().splitlines()[-1])\n"
    )
    value, _ = kernel.json_line(cell)
    return value
