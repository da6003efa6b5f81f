"""The tool bridge with a real sandbox kernel: every value type both ways, async concurrency, forged requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from codeagent.sandbox.host.manager import ExecutionResult, SandboxKernel
from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.tools.dispatch import ToolDispatcher
from codeagent.tools.records import ToolCallRecord
from codeagent.tools.registry import ToolRegistry, make_tool

REQUEST_MB = 32

#: Runs on both sides, so each can build the values the other one sent and compare.
VALUES = r"""
import numpy as np, pandas as pd, pyarrow as pa

def make_values():
    rng = np.random.default_rng(7)
    return {
        "unicode": "héllo ☃ 😀 中文 \u202e\x00 \\ \" ' \ud800",
        "nested": {"a": [1, {"b": [None, True, 1.5, -(2 ** 70)]}], "ü": {"": []}},
        "ints": np.arange(-5, 5, dtype=np.int16).reshape(2, 5),
        "fortran": np.asfortranarray(rng.random((30, 7))),
        "large": rng.random(2_500_000),  # 20 MB
        "strings": np.array(["a", "ünï", ""]),
        "dates": np.array(["2026-10-01", "2026-10-02"], dtype="datetime64[ns]"),
        "frame": pd.DataFrame(
            {
                "int": np.arange(5),
                "float": [0.5, None, 2.5, 3.5, 4.5],
                "text": ["a", "ß", "中文", "", "😀"],
                "flag": [True, False, True, False, True],
                "when": pd.date_range("2026-10-01", periods=5, freq="D", tz="UTC"),
                "cat": pd.Categorical(["x", "y", "x", "z", "y"]),
                "nullable": pd.array([1, None, 3, None, 5], dtype="Int64"),
            },
            index=pd.Index(list("abcde"), name="key"),
        ),
        "numeric_frame": pd.DataFrame({"x": rng.random(1000), "n": np.arange(1000)}),
        "series": pd.Series([1.0, 2.0, None], name="s"),
        "table": pa.table({"n": [1, None, 3], "l": [[1], [], [2, 3]], "s": ["x", "y", None]}),
    }

def same(a, b):
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, pa.Table):
        assert a.equals(b)
    else:
        assert a == b, (a, b)
    return True
"""


def host_values() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(VALUES, namespace)
    return namespace["make_values"]()


def host_same(a: Any, b: Any) -> bool:
    namespace: dict[str, Any] = {}
    exec(VALUES, namespace)
    return bool(namespace["same"](a, b))


class Tools:
    """Host tools that remember what they were called with and when."""

    def __init__(self) -> None:
        self.registry = ToolRegistry()
        self.received: dict[str, Any] = {}
        self.calls = 0
        self.spans: list[tuple[float, float]] = []
        self.cancelled = 0

        def echo(name: str, value: Any) -> Any:
            """Return ``value`` unchanged."""
            self.calls += 1
            self.received[name] = value
            return value

        def give(name: str) -> Any:
            """One of the shared values, from the host."""
            self.calls += 1
            return host_values()[name]

        def add(a: int, b: int = 1) -> int:
            self.calls += 1
            return a + b

        def fail(message: str) -> None:
            raise LookupError(message)

        def unsendable() -> Any:
            return {"ok": [1, 2], "bad": object()}

        async def slow(i: int, seconds: float = 0.5) -> dict:
            start = time.monotonic()
            try:
                await asyncio.sleep(seconds)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
            self.spans.append((start, time.monotonic()))
            return {"i": i}

        async def afail(message: str) -> None:
            await asyncio.sleep(0)
            raise PermissionError(message)

        for f in (echo, give, add, fail, unsendable, slow, afail):
            self.registry.add(make_tool(f))


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxKernel]:
    with SandboxKernel(SandboxPolicy(bridge_request_mb=REQUEST_MB, wall_seconds=60)) as kernel:
        yield kernel


@pytest.fixture
def tools(sandbox: SandboxKernel) -> Tools:
    tools = Tools()
    sandbox.set_tools([t.spec() for t in tools.registry])
    return tools


def run(sandbox: SandboxKernel, tools: Tools, code: str) -> tuple[ExecutionResult, list[ToolCallRecord]]:
    records: list[ToolCallRecord] = []
    result = sandbox.execute(code, ToolDispatcher(tools.registry, records.append))
    return result, records


def ok_output(result: ExecutionResult) -> str:
    assert result.status == "ok", result.output
    return result.output


# -- data both ways ---------------------------------------------------------------------------------------


def test_every_value_type_reaches_the_host_intact(sandbox: SandboxKernel, tools: Tools) -> None:
    code = VALUES + (
        "values = make_values()\n"
        "for name, value in values.items():\n"
        "    back = echo(name, value)\n"
        "    assert same(value, back), name\n"
        "print('round trips:', len(values))\n"
    )
    output = ok_output(run(sandbox, tools, code)[0])
    expected = host_values()
    assert f"round trips: {len(expected)}" in output
    assert set(tools.received) == set(expected)
    for name, value in expected.items():
        assert host_same(value, tools.received[name]), name


def test_every_value_type_reaches_the_script_intact(sandbox: SandboxKernel, tools: Tools) -> None:
    code = VALUES + (
        "values = make_values()\n"
        "for name, value in values.items():\n"
        "    got = give(name)\n"
        "    assert same(value, got), name\n"
        "    print(name, type(got).__name__, not isinstance(got, np.ndarray) or got.flags.writeable)\n"
    )
    result, records = run(sandbox, tools, code)
    output = ok_output(result)
    assert "large ndarray True" in output and "frame DataFrame True" in output and "table Table True" in output
    by_name = {r.arguments["name"]: r for r in records}
    assert by_name["large"].result_chars >= 20_000_000  # the binary size is counted
    assert by_name["large"].result_preview == "ndarray float64 shape (2500000,)"
    assert by_name["frame"].result_preview == "DataFrame 5 × 7"


def test_values_that_cannot_travel_raise_typeerror_naming_the_type(sandbox: SandboxKernel, tools: Tools) -> None:
    code = (
        "import numpy as np\n"
        "for value in (object(), {'f': print}, np.array([object()])):\n"
        "    try:\n"
        "        echo('x', value)\n"
        "    except TypeError as e:\n"
        "        print('refused:', e)\n"
        "try:\n"
        "    unsendable()\n"
        "except TypeError as e:\n"
        "    print('result refused:', type(e).__name__, e)\n"
    )
    output = ok_output(run(sandbox, tools, code)[0])
    assert "refused: echo(): cannot send a value of type object" in output
    assert "refused: echo(): cannot send a value of type builtin_function_or_method" in output
    assert "refused: echo(): cannot send a numpy array of dtype object" in output
    assert "result refused: ToolValueError unsendable() returned a value that cannot be sent" in output
    assert tools.calls == 0


def test_tool_errors_keep_their_type_and_the_stub_its_signature(sandbox: SandboxKernel, tools: Tools) -> None:
    code = (
        "try:\n    fail('nothing here')\nexcept LookupError as e:\n    print('caught', repr(e))\n"
        "try:\n    add()\nexcept TypeError as e:\n    print('bind', e)\n"
        "try:\n    add('x')\nexcept TypeError as e:\n    print('schema', e)\n"
        "print(add(2), add(2, 5), add(a=1, b=2), add(b=3, a=1))\n"
    )
    output = ok_output(run(sandbox, tools, code)[0])
    assert "caught LookupError('nothing here')" in output
    assert "bind add(): missing a required argument: 'a'" in output
    assert "schema add(): a: Input should be a valid integer" in output
    assert "3 7 3 4" in output


def test_set_result_hands_a_value_to_the_host(sandbox: SandboxKernel, tools: Tools) -> None:
    dispatcher = ToolDispatcher(tools.registry)
    code = VALUES + "set_result({'first': 1})\nset_result(make_values()['frame'])\n"
    assert sandbox.execute(code, dispatcher).status == "ok"
    assert dispatcher.result_set
    assert host_same(host_values()["frame"], dispatcher.result_value)


def test_a_tool_rebound_by_one_script_is_back_for_the_next(sandbox: SandboxKernel, tools: Tools) -> None:
    specs = [t.spec() for t in tools.registry]
    sandbox.set_tools(specs)
    rebind = "echo = 'mine'\nset_result = None\nToolError = 3\nprint(echo)\n"
    assert ok_output(run(sandbox, tools, rebind)[0]).strip() == "mine"  # within its script the name is the script's
    sandbox.set_tools(specs)  # unchanged tools: nothing is installed again (the host skips it)
    after = "print(echo('x', 'back'), callable(set_result), issubclass(ToolError, Exception))"
    output, records = run(sandbox, tools, after)
    assert ok_output(output).split() == ["back", "True", "True"]
    assert [r.name for r in records] == ["echo"]


# -- concurrency ------------------------------------------------------------------------------------------


def test_twenty_async_calls_overlap_on_the_host(sandbox: SandboxKernel, tools: Tools) -> None:
    code = (
        "import asyncio\n"
        "results = await asyncio.gather(*[slow.aio(i) for i in range(20)])\n"
        "print([r['i'] for r in results])\n"
    )
    result, records = run(sandbox, tools, code)
    assert f"{list(range(20))}" in ok_output(result)
    assert len(tools.spans) == 20 and len(records) == 20
    last_start = max(start for start, _ in tools.spans)
    first_end = min(end for _, end in tools.spans)
    assert last_start < first_end, "some call started only after another had finished"


def test_plain_calls_work_in_cells_that_await_and_inside_coroutines(sandbox: SandboxKernel, tools: Tools) -> None:
    code = (
        "import asyncio\n"
        "async def both():\n"
        "    return add(1), await add.aio(2)\n"
        "await asyncio.sleep(0)\n"
        "print(add(10), await both(), sum(await asyncio.gather(add.aio(1), add.aio(2))))\n"
    )
    assert "11 (2, 3) 5" in ok_output(run(sandbox, tools, code)[0])


def test_async_errors_reach_the_awaiting_call(sandbox: SandboxKernel, tools: Tools) -> None:
    code = (
        "import asyncio\n"
        "out = await asyncio.gather(afail.aio('no'), slow.aio(1, 0.01), return_exceptions=True)\n"
        "print(type(out[0]).__name__, out[0], out[1])\n"
    )
    assert "PermissionError no {'i': 1}" in ok_output(run(sandbox, tools, code)[0])


def test_calls_from_threads_and_a_thread_loop(sandbox: SandboxKernel, tools: Tools) -> None:
    code = (
        "import asyncio, threading\n"
        "out = []\n"
        "def work(i):\n"
        "    out.append(add(i, 100))\n"
        "    out.append(asyncio.run(add.aio(i, 200)))\n"
        "threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print(sorted(out))\n"
    )
    assert "[100, 101, 102, 103, 200, 201, 202, 203]" in ok_output(run(sandbox, tools, code)[0])


def test_async_calls_still_running_when_the_script_ends_are_cancelled(sandbox: SandboxKernel, tools: Tools) -> None:
    code = "import asyncio\npending = asyncio.ensure_future(slow.aio(1, 30))\nawait asyncio.sleep(0.3)\n"
    ok_output(run(sandbox, tools, code)[0])
    assert sandbox.bridge is not None and sandbox.bridge.pending_calls == 0
    follow_up = (
        "try:\n    await pending\nexcept Exception as e:\n    print('pending ended:', type(e).__name__)\n"
        "print(add(1))\n"
    )
    output = ok_output(run(sandbox, tools, follow_up)[0])
    assert "pending ended: CancelledError" in output and "2" in output
    deadline = time.monotonic() + 5
    while tools.cancelled == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tools.cancelled == 1


# -- untrusted requests -----------------------------------------------------------------------------------

#: Raw frames sent from inside the sandbox, the way a hostile script would.
FORGE = r"""
import json, socket, struct
import codeagent.sandbox.guest.runtime as _rt
ADDRESS, TOKEN = _rt._client.address, _rt._client._token
CELL = get_ipython().kernel.get_parent("shell")["header"]["msg_id"]  # requests must name the running script

def frame(parts, magic=b"CAB1", lengths=None):
    lengths = [len(p) for p in parts] if lengths is None else lengths
    return magic + struct.pack("<I", len(lengths)) + struct.pack(f"<{len(lengths)}Q", *lengths) + b"".join(parts)

def exchange(raw):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(ADDRESS)
    try:
        s.sendall(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass
    data = b""
    while True:
        if len(data) >= 8:
            count = struct.unpack_from("<I", data, 4)[0]
            start = 8 + 8 * count
            lengths = struct.unpack_from(f"<{count}Q", data, 8) if len(data) >= start else None
            if lengths and len(data) >= start + lengths[0]:
                s.close()
                return json.loads(data[start:start + lengths[0]])
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionAbortedError("closed without a reply")
        data += chunk

def forge(label, head=None, body=b'{"a": 1}', token=None, **kw):
    fields = dict({"id": 9, "cell": CELL, "op": "call", "tool": "add"}, **(head or {}))
    head = json.dumps({k: v for k, v in fields.items() if v is not None}).encode()
    parts = kw.pop("parts", None) or [TOKEN if token is None else token, head, body]
    reply = exchange(frame(parts, **kw))
    err = reply.get("error") or {}
    print(f"@@ {label}: ok={reply.get('ok')} {err.get('type')}: {str(err.get('message'))[:80]}")
"""


def verdicts(output: str) -> dict[str, str]:
    return {
        line[3:].split(":", 1)[0]: line.split(":", 1)[1].strip() for line in output.splitlines() if line[:3] == "@@ "
    }


def test_forged_requests_are_refused_and_run_nothing(sandbox: SandboxKernel, tools: Tools) -> None:
    refused_before = sandbox.bridge.refused if sandbox.bridge else 0
    code = FORGE + (
        "forge('control')\n"
        "forge('unknown_tool', {'tool': 'eval'})\n"
        "forge('private_name', {'tool': '__class__'})\n"
        "forge('tool_not_a_string', {'tool': ['add']})\n"
        "forge('unknown_op', {'op': 'exec'})\n"
        "forge('bad_arguments', body=b'{\"a\": \"1; import os\"}')\n"
        "forge('extra_argument', body=b'{\"a\": 1, \"__init__\": 2}')\n"
        "forge('body_not_json', body=b'{not json')\n"
        "forge('body_not_utf8', body=b'{\"a\": \"\\xff\"}')\n"
        "forge('head_not_json', parts=[TOKEN, b'{nope', b'{}'])\n"
        "forge('wrong_token', token=b'0' * len(TOKEN))\n"
        "forge('no_token', token=b'')\n"
        "forge('bad_magic', magic=b'EVIL')\n"
        "forge('too_few_parts', parts=[TOKEN, b'{}'])\n"
        "forge('stale_cell', {'cell': 'a-script-that-ended'})\n"
        "forge('no_cell', {'cell': None})\n"
        f"forge('declared_oversize', lengths=[len(TOKEN), 40, {REQUEST_MB << 21}])\n"
        "print('@@ still_works: ok=True', add(41))\n"
    )
    output = ok_output(run(sandbox, tools, code)[0])
    got = verdicts(output)
    assert got["control"].startswith("ok=True"), output
    expected_types = {
        "unknown_tool": "NameError",
        "private_name": "NameError",
        "tool_not_a_string": "NameError",
        "unknown_op": "ValueError",
        "bad_arguments": "TypeError",
        "extra_argument": "TypeError",
        "body_not_json": "TypeError",
        "body_not_utf8": "TypeError",
        "head_not_json": "ValueError",
        "wrong_token": "PermissionError",
        "no_token": "PermissionError",
        "bad_magic": "ProtocolError",
        "too_few_parts": "ProtocolError",
        "declared_oversize": "ValueError",
        "stale_cell": "PermissionError",
        "no_cell": "PermissionError",
    }
    for label, type_name in expected_types.items():
        assert got[label].startswith(f"ok=False {type_name}:"), (label, got.get(label))
    assert "exceeds the limit" in got["declared_oversize"]
    assert got["still_works"] == "ok=True 42"
    assert tools.calls == 2, "only the control request and the final stub call may run the tool"
    assert sandbox.bridge is not None and sandbox.bridge.refused >= refused_before + 6


def test_a_thread_left_running_is_stopped_and_calls_nothing_later(sandbox: SandboxKernel, tools: Tools) -> None:
    first = (
        "import threading, time\n"
        "stop = threading.Event()\n"
        "def keep_calling():\n"
        "    while not stop.is_set():\n"
        "        try:\n"
        "            add(1)\n"
        "        except PermissionError:\n"
        "            pass\n"
        "        time.sleep(0.02)\n"
        "threading.Thread(target=keep_calling, daemon=True).start()\n"
        "time.sleep(0.2)\n"
    )
    restarts = sandbox.restarts
    result = run(sandbox, tools, first)[0]
    calls_during_first = tools.calls
    assert calls_during_first > 0, "the thread never called the tool: the test would prove nothing"
    assert result.notice and result.notice.startswith("SandboxRestarted: 1 threads it started"), result.notice
    assert "SandboxRestarted" in result.output and sandbox.restarts == restarts + 1
    second = "import time\ntime.sleep(0.4)\nprint('stop' in globals())\n"
    result, records = run(sandbox, tools, second)
    assert ok_output(result).strip() == "False"  # a fresh kernel: the thread went with the old one
    assert tools.calls == calls_during_first and records == [] and result.notice is None


def test_idle_library_pools_do_not_restart_the_sandbox(sandbox: SandboxKernel, tools: Tools) -> None:
    """BLAS, jemalloc, asyncio's executor and the bridge's Arrow decoding leave no thread behind."""
    restarts = sandbox.restarts
    code = (
        "import asyncio, numpy as np, pandas as pd\n"
        "kept = np.ones((64, 64)) @ np.ones((64, 64))\n"
        "frame = give('frame')\n"
        "print(await asyncio.to_thread(len, [1, 2]), type(frame).__name__)\n"
    )
    result = run(sandbox, tools, code)[0]
    assert ok_output(result).strip() == "2 DataFrame" and result.notice is None, result.output
    assert sandbox.restarts == restarts
    assert ok_output(run(sandbox, tools, "print(kept.shape)")[0]).strip() == "(64, 64)"


def test_oversized_arguments_raise_in_the_script(sandbox: SandboxKernel, tools: Tools) -> None:
    size = (REQUEST_MB << 20) + 1000
    code = (
        f"big = 'x' * {size}\n"
        "try:\n    echo('big', big)\nexcept ValueError as e:\n    print('@@ checked_before_sending:', e)\n"
        "import codeagent.sandbox.guest.runtime as _rt\n"
        "_rt._client.max_request_bytes = 1 << 40  # a script that lies to its own runtime\n"
        "try:\n    echo('big', big)\nexcept Exception as e:\n    print('@@ host_refused:', type(e).__name__, e)\n"
        "print('@@ still_works:', add(1))\n"
    )
    output = ok_output(run(sandbox, tools, code)[0])
    got = verdicts(output)
    assert "more than the bridge accepts" in got["checked_before_sending"]
    assert got["host_refused"].startswith("ValueError message of"), got["host_refused"]
    assert "exceeds the limit" in got["host_refused"]
    assert got["still_works"] == "2"
    assert "big" not in tools.received


def test_policy_sets_the_bridge_limits() -> None:
    policy = SandboxPolicy(bridge_request_mb=3, bridge_reply_mb=5)
    kernel = SandboxKernel(policy)
    try:
        kernel.start()
        assert kernel.bridge is not None
        assert kernel.bridge.max_request_bytes == 3 << 20 and kernel.bridge.max_reply_bytes == 5 << 20
        registry = ToolRegistry()

        def blob(n: int) -> bytes | Any:
            return np.zeros(n, np.uint8)

        registry.add(make_tool(blob))
        kernel.set_tools([t.spec() for t in registry])
        code = (
            "print(len(blob(1000)))\n"
            "try:\n    blob(6 << 20)\nexcept ValueError as e:\n    print('refused:', e)\n"
            "import codeagent.sandbox.guest.runtime as _rt\nprint(_rt._client.max_request_bytes)\n"
        )
        output = kernel.execute(code, ToolDispatcher(registry)).output
        assert "1000" in output
        assert "refused: the reply of" in output and "exceeds the bridge limit of 5242880" in output
        assert str(3 << 20) in output
    finally:
        kernel.shutdown()


def test_numpy_and_frames_are_decoded_without_pickle(sandbox: SandboxKernel, tools: Tools) -> None:
    """The host rebuilds arrays from raw bytes and tables from Arrow IPC; a pickle never round-trips."""
    code = "import pickle\ntry:\n    echo('p', pickle.dumps([1]))\nexcept TypeError as e:\n    print('refused:', e)\n"
    assert "refused: echo(): cannot send a value of type bytes" in ok_output(run(sandbox, tools, code)[0])
    assert tools.received == {}


def test_values_are_equal_after_a_round_trip_of_types_built_here() -> None:
    """The comparison helper itself can fail (so the round-trip tests above mean something)."""
    values = host_values()
    with pytest.raises(AssertionError):
        host_same(values["frame"], values["frame"].iloc[::-1])
    with pytest.raises(AssertionError):
        host_same(values["fortran"], np.ascontiguousarray(values["fortran"]).astype(np.float32))
    assert host_same(pa.table({"n": [1]}), pa.table({"n": [1]}))
    assert host_same(pd.Series([1.0]), pd.Series([1.0]))
