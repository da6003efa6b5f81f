"""What one warm ``%codeagent`` call costs beyond the model's time, in a real notebook kernel, live view on.

    python benchmarks/overhead.py [--calls 20]

The call: one script with one tool call (``print(lookup('a'))``), then the answer; the model is the bundled
Messages API server (scripted turns, real HTTP, no model latency) in this process, and its time is measured
where it is spent (in the server's request handler). The notebook kernel is an ipykernel started with
jupyter_client; a client thread drains IOPub as jupyter_server does; a cell's wall time runs from sending the
execute_request to the kernel's idle status.

Baselines in the same run, interleaved call by call: a cell calling the tool directly in the notebook kernel
(no isolation, what an in-process agent costs at least), and a cell running the same script on the same warm
sandbox with a bare ``SandboxKernel.execute``. Floors, also interleaved: an empty cell (what the notebook kernel
itself costs per cell), an ``execute('pass')`` on a plain ipykernel without any sandbox (one kernel round trip
on this machine; a call runs one script in a kernel), and one streamed request to the same server over raw
``http.client`` (a model request without the SDK). The breakdown comes from timing codeagent's own functions inside
the kernel (getting the client, ``set_tools``, the sandbox's execute, the model requests through the SDK, the
live view and the final view). Writes ``benchmarks/results/overhead.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._notebook import NotebookKernel, start_notebook
from codeagent.testing import messages_http
from codeagent.testing.messages_server import MessagesServer, code_turn, text_turn

RESULTS = Path(__file__).parent / "results"

#: Times codeagent's parts inside the notebook kernel (wrappers around the real functions, nothing replaced).
INSTRUMENT = """
import collections, functools, json, time
import codeagent.kernel_ext.magic as _ca_magic
from codeagent.agent.loop import Agent as _Agent
from codeagent.kernel_ext.session import Session as _Session
from codeagent.sandbox.host.manager import SandboxKernel as _SandboxKernel
from codeagent.tools.dispatch import ToolDispatcher as _ToolDispatcher
_phases = collections.defaultdict(float)
_last_cell = {}  # the phases of the cell before the one running

def _timed(name, function):
    @functools.wraps(function)
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            _phases[name] += time.perf_counter() - started
    return timed

_ca_magic.CodeAgent._client = _timed("client", _ca_magic.CodeAgent._client)
_SandboxKernel.set_tools = _timed("set_tools", _SandboxKernel.set_tools)
_SandboxKernel.execute = _timed("sandbox execute", _SandboxKernel.execute)
_Agent._ask = _timed("model requests", _Agent._ask)
_Session.ask = _timed("agent", _Session.ask)
_ca_magic.CodeAgent._run_with_display = _timed("run with display", _ca_magic.CodeAgent._run_with_display)
_ca_magic.render_bundle = _timed("final view", _ca_magic.render_bundle)

def _cell_started(info):
    _last_cell.clear()
    _last_cell.update(_phases)
    _phases.clear()
    _phases["_started"] = time.perf_counter()

def _cell_ended(outcome):
    _phases["cell"] = time.perf_counter() - _phases.pop("_started", time.perf_counter())

get_ipython().events.register("pre_run_cell", _cell_started)
get_ipython().events.register("post_run_cell", _cell_ended)
_ca = get_ipython().magics_manager.registry["CodeAgent"]

import http.client as _http, urllib.parse as _urlparse
from jupyter_client.manager import start_new_kernel as _start_new_kernel
_plain_km, _plain_kc = _start_new_kernel()
def _plain_execute():  # the least a client does: send, wait for the idle status and the reply
    msg_id = _plain_kc.execute("pass", store_history=False)
    while True:
        msg = _plain_kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") == msg_id and msg["content"].get("execution_state") == "idle":
            break
    while _plain_kc.get_shell_msg(timeout=60)["parent_header"].get("msg_id") != msg_id:
        pass
_plain_execute = _timed("plain kernel execute", _plain_execute)
_url = _urlparse.urlparse(_ca.base_url)
_conn = _http.HTTPConnection(_url.hostname, _url.port)
def _raw_request():
    body = json.dumps({"model": "m", "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    _conn.request("POST", "/v1/messages", body=body, headers={"content-type": "application/json"})
    _conn.getresponse().read()
_raw_request = _timed("raw request", _raw_request)
"""

CLEANUP = "_conn.close(); _plain_kc.stop_channels(); _plain_km.shutdown_kernel(now=True)"

SCRIPT = "print(lookup('a'))"
CODEAGENT_CELL = "%codeagent --new Look a up"
DIRECT_CELL = "lookup('a')"
EMPTY_CELL = "pass"
PLAIN_KERNEL_CELL = "_plain_execute()"
SANDBOX_PASS_CELL = "_ca.session.sandbox(_ca.policy()).execute('pass', _ToolDispatcher(_ca.session.registry))"
RAW_REQUEST_CELL = "_raw_request()"
SANDBOX_CELL = (
    f"_ca.session.sandbox(_ca.policy()).execute({SCRIPT!r}, _ToolDispatcher(_ca.session.registry)).output.strip()"
)


class ServerClock:
    """Time spent answering in the server's request handler (the model's time, for a zero-latency model)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._original = messages_http.Handler.do_POST
        clock = self

        def do_post(handler: messages_http.Handler) -> None:
            started = time.perf_counter()
            try:
                clock._original(handler)
            finally:
                clock.seconds += time.perf_counter() - started

        messages_http.Handler.do_POST = do_post  # type: ignore[method-assign,assignment]

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds

    def close(self) -> None:
        messages_http.Handler.do_POST = self._original  # type: ignore[method-assign]


def phases(kernel: NotebookKernel) -> dict[str, float]:
    """The timed phases of the cell run just before."""
    value, _ = kernel.json_line("print('BENCH ' + json.dumps(_last_cell))")
    return dict(value)


def one_call(kernel: NotebookKernel, server: MessagesServer, clock: ServerClock) -> dict[str, float]:
    server.add_turns(code_turn(SCRIPT), text_turn("`a` has the value 1."))
    clock.take()
    run = kernel.run(CODEAGENT_CELL)
    model = clock.take()
    if "execute_result" not in run.iopub:
        raise RuntimeError(f"the call showed no result: {run.iopub}")
    parts = phases(kernel)
    return {"wall": run.wall_s, "model (server)": model, **parts}


def measure(calls: int) -> dict[str, Any]:
    server = MessagesServer().start()
    clock = ServerClock()
    kernel = start_notebook(server)
    try:
        kernel.run(INSTRUMENT)
        for _ in range(3):  # warm: the sandbox, the pool's spare, the client, the stubs, the imports
            one_call(kernel, server, clock)
            kernel.run(SANDBOX_CELL)
        baselines = {
            "direct": DIRECT_CELL,
            "sandbox": SANDBOX_CELL,
            "empty": EMPTY_CELL,
            "plain kernel": PLAIN_KERNEL_CELL,
            "sandbox pass": SANDBOX_PASS_CELL,
            "raw request": RAW_REQUEST_CELL,
        }
        rows: dict[str, list[dict[str, float]]] = {"codeagent": [], **{name: [] for name in baselines}}
        load = []
        for _ in range(calls):
            rows["codeagent"].append(one_call(kernel, server, clock))
            for name, cell in baselines.items():
                if name == "raw request":
                    server.add_turns(text_turn("`a` has the value 1."))
                run = kernel.run(cell)
                rows[name].append({"wall": run.wall_s, **phases(kernel)})
            load.append(os.getloadavg()[0])
        return {"rows": rows, "load_avg_1m_per_call": load}
    finally:
        try:
            kernel.run(CLEANUP)
        finally:
            kernel.shutdown()
        clock.close()
        server.stop()


def summary(results: dict[str, Any]) -> dict[str, float]:
    """Medians, in ms, of each figure (each figure's own median over the calls)."""
    rows = results["rows"]

    def med(name: str, key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in rows[name]) * 1000

    ca = rows["codeagent"]
    beyond = statistics.median(r["wall"] - r["model (server)"] for r in ca) * 1000
    beyond_requests = statistics.median(r["wall"] - r["model requests"] for r in ca) * 1000
    display = statistics.median(r["run with display"] - r["agent"] + r.get("final view", 0.0) for r in ca) * 1000
    inside = statistics.median(
        r["agent"] - r["model requests"] - r["sandbox execute"] - r.get("set_tools", 0.0) for r in ca
    )
    return {
        "wall": med("codeagent", "wall"),
        "model (server)": med("codeagent", "model (server)"),
        "beyond model": beyond,
        "beyond model requests": beyond_requests,
        "client": med("codeagent", "client"),
        "set_tools": med("codeagent", "set_tools"),
        "sandbox execute": med("codeagent", "sandbox execute"),
        "model requests (SDK + HTTP)": med("codeagent", "model requests"),
        "display (live view + final view)": display,
        "agent, rest (prompt, loop, trace)": inside * 1000,
        "cell in kernel": med("codeagent", "cell"),
        "direct wall": med("direct", "wall"),
        "sandbox wall": med("sandbox", "wall"),
        "sandbox execute alone": med("sandbox", "sandbox execute"),
        "empty cell wall": med("empty", "wall"),
        "plain kernel execute": med("plain kernel", "plain kernel execute"),
        "sandbox pass": med("sandbox pass", "sandbox execute"),
        "raw request": med("raw request", "raw request"),
    }


def floor(s: dict[str, float]) -> float:
    """What a call costs at least here: one notebook cell, one kernel round trip (the script; the faster of the
    plain kernel's and the sandbox's), two requests."""
    return s["empty cell wall"] + min(s["plain kernel execute"], s["sandbox pass"]) + 2 * s["raw request"]


def report(results: dict[str, Any]) -> str:
    s = results["summary"]
    loads = results["load_avg_1m_per_call"]
    return "\n".join(
        [
            f"One warm %codeagent call, 1 script, 1 tool call, live view on (medians of {len(loads)} calls, ms)",
            f"  cell wall time (execute_request → idle)          {s['wall']:8.1f}",
            f"  model time (in the server's handler)             {s['model (server)']:8.1f}",
            f"  cost beyond model time (target ≤ 25)             {s['beyond model']:8.1f}",
            f"  ... beyond the model requests as the SDK sees them {s['beyond model requests']:6.1f}",
            "  where it goes (inside the kernel):",
            f"    client (get the cached Anthropic client)       {s['client']:8.2f}",
            f"    set_tools                                      {s['set_tools']:8.2f}",
            f"    sandbox execute (script + tool call)           {s['sandbox execute']:8.1f}",
            f"    model requests through the SDK (2, HTTP)       {s['model requests (SDK + HTTP)']:8.1f}",
            f"    display: live view + final view                {s['display (live view + final view)']:8.1f}",
            f"    agent, rest (prompt, loop, trace)              {s['agent, rest (prompt, loop, trace)']:8.1f}",
            f"    the whole cell inside the kernel               {s['cell in kernel']:8.1f}",
            "Baselines, same kernel, interleaved",
            f"  cell calling the tool directly (no isolation)    {s['direct wall']:8.1f}",
            f"  cell running the script: bare SandboxKernel.execute {s['sandbox wall']:5.1f}"
            f"  (execute alone {s['sandbox execute alone']:.1f})",
            f"  beyond-model cost / bare-execute cell            {s['beyond model'] / s['sandbox wall']:8.2f}×",
            "Floors on this machine, same kernel, interleaved",
            f"  an empty cell (the notebook kernel's own cost)   {s['empty cell wall']:8.1f}",
            f"  execute('pass') on a plain ipykernel, no sandbox {s['plain kernel execute']:8.1f}",
            f"  execute('pass') on the warm sandbox              {s['sandbox pass']:8.1f}",
            f"  one streamed request over raw http.client        {s['raw request']:8.1f}",
            f"  sum for one call (cell + kernel round trip + 2 requests) {floor(s):.1f}",
            f"  beyond-model cost above that floor               {s['beyond model'] - floor(s):8.1f}",
            f"load average (1 min) during the run: {min(loads):.1f}–{max(loads):.1f}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20, help="measured calls (each with its two baselines)")
    args = parser.parse_args()
    started = time.perf_counter()
    results = measure(args.calls)
    results["summary"] = summary(results)
    results["machine"] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    results["wall_s"] = round(time.perf_counter() - started, 1)
    print(report(results))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "overhead.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'overhead.json'} in {results['wall_s']} s")


if __name__ == "__main__":
    main()
