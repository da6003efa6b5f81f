"""Sandboxes through a real Jupyter Kernel Gateway: the expense example end to end, the stdin-channel bridge
(data, results, batches, chunks), interrupts, the error cases, and no orphans when the notebook kernel dies."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from IPython.utils.capture import capture_output

from benchmarks.tool_search import DATA, catalog_tools
from codeagent.examples.expenses import expense_tools as example_tools
from codeagent.examples.expenses import make_expense_data, over_budget_script
from codeagent.kernel_ext.magic import final_view
from codeagent.sandbox.host.gateway.sandbox import GatewaySandbox
from codeagent.sandbox.host.gateway.settings import GatewaySettings
from codeagent.sandbox.host.manager import PACKAGE_ROOT, SandboxError
from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.sandbox.protocol import stdin_frames
from codeagent.sandbox.protocol.launch_spec import ALL_LAYERS
from codeagent.testing.gateway import Gateway, alive, remote_processes, stop_gateway
from codeagent.testing.messages_server import MessagesServer, code_turn, last_tool_result, text_turn
from codeagent.tools import tool
from codeagent.tools.dispatch import ToolCallRecord, ToolDispatcher
from codeagent.tools.registry import ToolRegistry, make_tool
from tests.gateway.conftest import gateway_or_skip

MONTH = "2026-10"


def _tools() -> ToolRegistry:
    registry = ToolRegistry()

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    async def double(x: int) -> int:
        """Twice x, slowly."""
        import asyncio

        await asyncio.sleep(0.2)
        return 2 * x

    def blob(n: int) -> str:
        """A string of n characters."""
        return "x" * n

    def frame(n: int) -> Any:
        """A DataFrame of n rows."""
        return pd.DataFrame({"i": np.arange(n), "sq": np.arange(n) ** 2})

    def fails(key: str) -> str:
        """Always raises KeyError."""
        raise KeyError(key)

    for func in (add, double, blob, frame, fails):
        registry.add(make_tool(func))
    return registry


@pytest.fixture(scope="module")
def remote(gateway: Gateway) -> Iterator[tuple[GatewaySandbox, Dispatcher]]:
    registry = _tools()
    sandbox = GatewaySandbox(SandboxPolicy(wall_seconds=20), GatewaySettings(gateway.url, gateway.token)).start()
    sandbox.set_tools([t.spec() for t in registry])
    yield sandbox, Dispatcher(registry)
    sandbox.shutdown()


class Dispatcher(ToolDispatcher):
    """The real dispatcher, keeping the records of the calls it served."""

    def __init__(self, registry: ToolRegistry) -> None:
        self.records: list[ToolCallRecord] = []
        super().__init__(registry, on_call=self.records.append)


def test_remote_kernel_reports_every_layer_and_runs_as_nobody(remote: Any) -> None:
    sandbox, dispatcher = remote
    assert sandbox.layers == list(ALL_LAYERS)
    result = sandbox.execute(
        "import os, socket\n"
        "print('uid', os.getuid())\n"
        "try:\n    socket.create_connection(('127.0.0.1', 80), timeout=1)\n"
        "except OSError as e:\n    print('network:', type(e).__name__)\n"
        "try:\n    input('who?')\nexcept RuntimeError as e:\n    print('input:', e)\n",
        dispatcher,
    )
    assert result.status == "ok", result.output
    uid = os.geteuid()
    assert f"uid {65534 if uid == 0 else uid}" in result.output
    assert "network: PermissionError" in result.output
    assert "input: input() is not available in the sandbox" in result.output


def test_tool_calls_errors_batches_and_chunked_replies(remote: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox, dispatcher = remote
    monkeypatch.setattr(stdin_frames, "CHUNK_CHARS", 1000)  # a 50 kB result then travels in 67 chunks
    prompts = sandbox.bridge.prompts
    result = sandbox.execute(
        textwrap.dedent(
            """
            import asyncio
            print('sum', add(2, 3))
            print('doubles', await asyncio.gather(*[double.aio(i) for i in range(20)]))
            print('blob', len(blob(50_000)))
            f = frame(1000)
            print('frame', type(f).__name__, int(f.sq.sum()))
            try:
                fails('banana')
            except KeyError as e:
                print('caught', e)
            set_result({'rows': f.shape[0], 'array': f.sq.to_numpy()[:5]})
            """
        ),
        dispatcher,
    )
    assert result.status == "ok", result.output
    assert "sum 5" in result.output
    assert f"doubles {[2 * i for i in range(20)]}" in result.output
    assert "blob 50000" in result.output
    assert f"frame DataFrame {sum(i * i for i in range(1000))}" in result.output
    assert "caught 'banana'" in result.output
    assert dispatcher.result_value["rows"] == 1000
    np.testing.assert_array_equal(dispatcher.result_value["array"], np.arange(5) ** 2)
    used = sandbox.bridge.prompts - prompts
    # 1 add + 1 batch of 20 async calls + 67 chunks of blob + the frame's chunks + fails + set_result; the batch
    # alone saves 19 round trips
    assert used < 20 + 67 + 50, used
    calls = [c.name for c in dispatcher.records[-24:]]
    assert calls.count("double") == 20


def test_a_thousand_mcp_tools_install_packed_and_only_when_changed(remote: Any) -> None:
    sandbox, dispatcher = remote
    own = [t.spec() for t in _tools()]
    catalog = [t.spec() for t in catalog_tools(json.loads((DATA / "tool_catalog.json").read_text()))[:1000]]
    last = catalog[-1]
    namespace = last["namespace"]
    try:
        sandbox.set_tools(own + catalog)
        result = sandbox.execute(
            "import inspect\n"
            f"print('signature', inspect.signature({namespace}.{last['name']}))\n"
            f"print('listed', len(dir({namespace})))\n"
            "print('sum', add(2, 3))\n"
            f"print('object', id({namespace}))\n",
            dispatcher,
        )
        assert result.status == "ok", result.output
        assert "signature (" in result.output and "sum 5" in result.output
        listed = int(result.output.split("listed ")[1].split()[0])
        assert listed == sum(s["namespace"] == namespace for s in catalog)

        def namespace_object() -> str:
            return (
                sandbox.execute(f"print('object', id({namespace}))", dispatcher).output.split("object ")[1].split()[0]
            )

        installed = result.output.split("object ")[1].split()[0]
        sandbox.set_tools(own + catalog)  # unchanged: not installed again, the same namespace object
        assert namespace_object() == installed
        sandbox.set_tools(own + catalog[:-1])  # changed: installed again, a new one
        assert namespace_object() != installed
    finally:
        sandbox.set_tools(own)


def test_forged_requests_are_refused(remote: Any) -> None:
    sandbox, dispatcher = remote
    result = sandbox.execute(
        textwrap.dedent(
            """
            from codeagent.sandbox.protocol import codec, stdin_frames
            ask = get_ipython().kernel.raw_input
            bad_token = codec.pack([b'0' * 32, b'{"id":1,"op":"call","tool":"add"}', b'{"a":1,"b":2}'])
            print(ask(stdin_frames.request_prompt('ab', bad_token))[:4])
            print(repr(ask('plain question')))
            """
        ),
        dispatcher,
    )
    assert result.status == "error"  # the plain prompt is answered with EOF
    assert "EOFError" in result.output
    assert sandbox.bridge.refused >= 1
    assert not any(c.name == "add" and c.arguments == {"a": 1, "b": 2} for c in dispatcher.records)


def test_interrupt_on_wall_clock_then_next_call_works(remote: Any) -> None:
    sandbox, dispatcher = remote
    sandbox.policy = sandbox.policy.merged(wall_seconds=2)
    try:
        started = time.monotonic()
        result = sandbox.execute("import time\nwhile True:\n    time.sleep(0.01)", dispatcher)
        assert result.status == "timeout"
        assert "interrupted" in result.output
        assert time.monotonic() - started < 15
        after = sandbox.execute("print('after', add(1, 1))", dispatcher)
        assert after.status == "ok" and "after 2" in after.output
    finally:
        sandbox.policy = sandbox.policy.merged(wall_seconds=20)


def test_a_thread_left_in_the_remote_kernel_restarts_it(remote: Any) -> None:
    """The remote kernel reports its threads after each script: one a script left (sleeping) restarts it; an
    executor left unshut is ended by the guest and restarts nothing."""
    sandbox, dispatcher = remote
    restarts = sandbox.restarts
    kept = sandbox.execute(
        "import concurrent.futures\nkept = 1\npool = concurrent.futures.ThreadPoolExecutor(2)\n"
        "print(pool.submit(add, 1, 2).result())",
        dispatcher,
    )
    assert kept.status == "ok" and kept.output.strip() == "3" and kept.notice is None, kept.output
    left = sandbox.execute(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(60,)).start()", dispatcher
    )
    assert left.notice is not None and left.notice.startswith("SandboxRestarted: 1 threads it started"), left.notice
    assert "as the kernel at the gateway reports" in left.notice and "SandboxRestarted" in left.output
    assert sandbox.restarts == restarts + 1
    after = sandbox.execute("print('kept' in globals(), add(1, 1))", dispatcher)
    assert after.status == "ok" and after.output.strip() == "False 2" and after.notice is None, after.output


def _peak_growth_mib(before_rss_kib: int) -> float:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return (int(status["VmHWM"].split()[0]) - before_rss_kib) / 1024


def _reset_peak() -> int:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0])


@pytest.fixture(scope="module")
def unlimited_gateway() -> Iterator[Gateway]:
    """A gateway without its own output rate limit: then only the host's limits bound what reaches it."""
    gw = gateway_or_skip(iopub_rate_limit=False)
    yield gw
    stop_gateway(gw)


def test_output_through_the_gateway_has_the_local_caps(unlimited_gateway: Gateway) -> None:
    """Per message, per call, and queued while the host runs a slow tool (issue #12's IOPub limits)."""
    gateway = unlimited_gateway
    registry = _tools()

    def slow(seconds: float) -> str:
        """Sleeps on the host."""
        time.sleep(seconds)
        return "slept"

    registry.add(make_tool(slow))
    policy = SandboxPolicy(wall_seconds=30, iopub_message_mb=4, iopub_call_mb=16, iopub_queued_mb=16)
    with GatewaySandbox(policy, GatewaySettings(gateway.url, gateway.token)) as sandbox:
        sandbox.set_tools([t.spec() for t in registry])
        dispatcher = Dispatcher(registry)
        big = sandbox.execute("display({'text/plain': 'x' * (6 << 20)}, raw=True)\nprint('after')", dispatcher)
        assert big.status == "ok" and "after" in big.output, big.output
        assert big.misbehaved and "1 output messages over 4 MiB" in big.misbehaved, big.misbehaved

        flood = sandbox.execute("for _ in range(40):\n    print('y' * (1 << 20))\nprint('end')", dispatcher)
        assert flood.status == "ok", flood.output[-300:]
        assert flood.misbehaved and "over the call's budget" in flood.misbehaved, flood.misbehaved
        assert flood.output_chars < (16 + 2) << 20  # what the host took in stayed within the call's budget

        sandbox.policy = sandbox.policy.merged(iopub_call_mb=1024)  # only the queue bounds what waits now
        sandbox.iopub.call_bytes = 1024 << 20
        before = _reset_peak()
        busy = sandbox.execute(
            "import threading, time\n"
            "stop = threading.Event()\n"
            "def spam():\n"
            "    while not stop.is_set():\n"
            "        print('z' * (1 << 20), flush=True)\n"
            "thread = threading.Thread(target=spam, daemon=True)\n"
            "thread.start()\n"
            "print(slow(4))\n"
            "stop.set()\n"  # a gateway sandbox does not stop left threads (local ones do): end it here
            "thread.join()\n",
            dispatcher,
        )
        grown = _peak_growth_mib(before)
        print(f"\ngateway host while a slow tool ran: peak +{grown:.1f} MiB; {busy.misbehaved}")
        assert busy.misbehaved and "past 16 MiB queued" in busy.misbehaved, busy.misbehaved
        assert grown < 96, f"the host grew by {grown:.0f} MiB while the sandbox printed during a slow tool"
        after = sandbox.execute("print('alive', add(2, 2))", dispatcher)
        assert after.status == "ok" and after.output.startswith("alive 4"), after.output[-300:]


def test_kernel_death_on_the_remote_side_is_reported_and_recovered(gateway: Gateway) -> None:
    registry = _tools()
    with GatewaySandbox(SandboxPolicy(wall_seconds=20), GatewaySettings(gateway.url, gateway.token)) as sandbox:
        sandbox.set_tools([t.spec() for t in registry])
        dispatcher = Dispatcher(registry)
        result = sandbox.execute("import os\nos._exit(3)", dispatcher)
        assert result.status == "crashed", result.output
        assert "SandboxCrashed" in result.output and "restarted" in result.output
        after = sandbox.execute("print('alive', add(2, 2))", dispatcher)
        assert after.status == "ok" and "alive 4" in after.output


def test_error_lines_name_what_to_check(gateway: Gateway) -> None:
    policy = SandboxPolicy()
    with pytest.raises(SandboxError, match=r"cannot reach the gateway at http://127\.0\.0\.1:9 .*gateway_url"):
        GatewaySandbox(policy, GatewaySettings("http://127.0.0.1:9", "x")).start()
    with pytest.raises(SandboxError, match=r"refused us \(40[13]\).*gateway_token"):
        GatewaySandbox(policy, GatewaySettings(gateway.url, "wrong-token")).start()
    with pytest.raises(SandboxError, match=r"no kernelspec 'nope' \(it has: codeagent-sandbox\)"):
        GatewaySandbox(policy, GatewaySettings(gateway.url, gateway.token, kernel_name="nope")).start()
    assert "wrong-token" not in repr(GatewaySettings(gateway.url, "wrong-token"))
    assert gateway.kernels() == [] or all(k.get("name") == "codeagent-sandbox" for k in gateway.kernels())


def test_expense_example_through_the_magic(
    shell: Any, model_server: MessagesServer, gateway_config: Gateway, registry: Any, fresh_conversation: None
) -> None:
    data = make_expense_data(members=20, per_member=30, month=MONTH)
    for func in example_tools(data):
        tool(func)

    def answer(body: dict[str, Any]) -> Any:
        lines = [ln for ln in last_tool_result(body).splitlines() if re.match(r"Member \d{4}: ", ln)]
        return text_turn("Over budget:\n" + "\n".join(f"- {ln}" for ln in lines))

    model_server.add_turns(code_turn(over_budget_script(month=MONTH)), answer)
    with capture_output():
        result = shell.run_line_magic("codeagent", "Who on team platform went over budget in 2026-10?")
    assert result.status == "done", result.error
    found = {k: float(v) for k, v in re.findall(r"- (Member \d{4}): ([\d.]+)", result.answer)}
    assert found == data.over_budget(MONTH)
    assert len(result.tool_calls) == 21
    assert result.sandbox_layers == list(ALL_LAYERS)
    merchants = {e["merchant"] for rows in data.expenses.values() for e in rows}
    assert not [m for m in merchants if m in json.dumps(model_server.requests)]
    assert "Member" in final_view(result)["text/html"]

    with capture_output() as info:
        shell.run_line_magic("codeagent", "--sandbox-info")
    assert f"at the gateway {gateway_config.url}" in info.stdout and "✓ seccomp" in info.stdout
    assert gateway_config.token not in info.stdout


HOST = """
import sys, time
from codeagent.sandbox.host.gateway.sandbox import GatewaySandbox
from codeagent.sandbox.host.gateway.settings import GatewaySettings
from codeagent.sandbox.host.policy import SandboxPolicy
sandbox = GatewaySandbox(SandboxPolicy(), GatewaySettings(sys.argv[1], sys.argv[2])).start()
print(sandbox.kernel_id, flush=True)
time.sleep(600)
"""


def test_no_orphans_after_the_notebook_kernel_is_killed() -> None:
    """The notebook kernel dies without shutting its sandbox down: the gateway culls the unconnected kernel
    (``cull_connected=False``, the recommended setting) and every process of it ends."""
    gateway = gateway_or_skip(cull_idle_s=15)  # longer than a start-up on a loaded machine
    try:
        env = {**os.environ, "PYTHONPATH": PACKAGE_ROOT}
        host = subprocess.Popen(
            [sys.executable, "-c", HOST, gateway.url, gateway.token], stdout=subprocess.PIPE, text=True, env=env
        )
        assert host.stdout is not None
        kernel_id = host.stdout.readline().strip()
        assert [k["id"] for k in gateway.kernels()] == [kernel_id]
        pids = remote_processes(gateway)
        assert len(pids) >= 3  # remote launcher, guest launcher, init, kernel
        os.kill(host.pid, signal.SIGKILL)
        host.wait()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (gateway.kernels() or alive(pids)):
            time.sleep(0.5)
        assert gateway.kernels() == []
        assert alive(pids) == set()
    finally:
        stop_gateway(gateway)


def test_tcp_gateway_runs_with_the_layers_that_keep_tcp_and_says_what_is_lost() -> None:
    gateway = gateway_or_skip(transport="tcp")
    try:
        registry = _tools()
        settings = GatewaySettings(gateway.url, gateway.token)
        with GatewaySandbox(SandboxPolicy(), settings) as sandbox:
            assert "namespaces" not in sandbox.layers and "seccomp" not in sandbox.layers
            assert "rlimits" in sandbox.layers
            assert any("over TCP" in note for note in sandbox.layer_notes)
            sandbox.set_tools([t.spec() for t in registry])
            result = sandbox.execute("print(add(20, 22))", Dispatcher(registry))
            assert result.status == "ok" and "42" in result.output
    finally:
        stop_gateway(gateway)


def test_enterprise_gateway_in_local_mode() -> None:
    """Enterprise Gateway (its own venv: it pins an old jupyter_client) runs the same kernelspec with every
    layer; tool calls, interrupts and the next call work."""
    gateway = gateway_or_skip(flavor="eg")
    try:
        registry = _tools()
        with GatewaySandbox(SandboxPolicy(wall_seconds=3), GatewaySettings(gateway.url, gateway.token)) as sandbox:
            assert sandbox.layers == list(ALL_LAYERS)
            sandbox.set_tools([t.spec() for t in registry])
            dispatcher = Dispatcher(registry)
            result = sandbox.execute(
                "import asyncio\nprint(await asyncio.gather(add.aio(1, 2), double.aio(4)))", dispatcher
            )
            assert result.status == "ok" and "[3, 8]" in result.output, result.output
            stuck = sandbox.execute("import time\nwhile True:\n    time.sleep(0.01)", dispatcher)
            assert stuck.status == "timeout" and "interrupted" in stuck.output
            after = sandbox.execute("print(add(1, 1))", dispatcher)
            assert after.status == "ok" and "2" in after.output
    finally:
        stop_gateway(gateway)
