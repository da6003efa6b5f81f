"""Tool-bridge speed, each figure beside a raw echo baseline over the same kind of socket in the same run.

    python benchmarks/bridge.py [--calls 3000] [--rounds 5] [--repeat 5] [--no-notebook] [--no-throughput]

*Bridge*: a script in the (locked-down) sandbox calls a tool stub; the call goes through framing, the host's
poll loop, validation, dispatch, the tool and back. Measured: per-call round trip (median, p99) and sequential
calls per second of a no-op tool; MB/s of 1, 10 and 100 MB results (host → sandbox) and arguments
(sandbox → host), as NumPy arrays and as numeric pandas DataFrames.

The no-op latency is measured from the script (timed inside the sandbox) for three hosts, interleaved round by
round: ``%codeagent`` in a real notebook kernel (an ipykernel started with jupyter_client, a client thread
draining IOPub as jupyter_server does, the bundled Messages API server playing the model) with the live view on
(the default) and with ``CodeAgent.live = False``, and a plain process (this one) running a ``SandboxKernel``.

*Baselines*, from the same sandbox script to a host thread: a raw zmq DEALER/ROUTER echo over ipc (what the
bridge used before) and a raw ``AF_UNIX`` stream echo (the bridge's own transport, no framing, no Python work
beyond send/recv; the receiver reuses one buffer). Ratios are bridge / baseline (time) or bridge / baseline
(MB/s). Writes ``benchmarks/results/bridge.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
import zmq

from benchmarks._notebook import ask, start_notebook
from codeagent.sandbox.host.manager import SandboxKernel
from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.testing.messages_server import MessagesServer, code_turn, text_turn
from codeagent.tools.dispatch import ToolDispatcher
from codeagent.tools.registry import ToolRegistry, make_tool

RESULTS = Path(__file__).parent / "results"
SIZES_MB = (1, 10, 100)
MB = 1024 * 1024

#: Shared by the sandbox scripts: timing helpers, printed back as one JSON line.
PRELUDE = """
import json, time, statistics
def stats(samples_ns):
    s = sorted(samples_ns)
    return {"median_us": s[len(s) // 2] / 1e3, "p99_us": s[min(len(s) - 1, int(len(s) * 0.99))] / 1e3}
def latency(call, n, warm=300):
    for _ in range(warm):
        call()
    samples = []
    started = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter_ns(); call(); samples.append(time.perf_counter_ns() - t)
    elapsed = time.perf_counter() - started
    return dict(stats(samples), calls_per_s=n / elapsed)
def median_s(call, repeat):
    call()
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); call(); times.append(time.perf_counter() - t)
    return statistics.median(times)
"""


# -- host-side baselines ---------------------------------------------------------------------------------


class ZmqEcho(threading.Thread):
    """ROUTER over ipc: ``[b"e"]`` echoes, ``[b"g", n]`` answers n bytes, ``[b"p", data]`` answers b"ok"."""

    def __init__(self, path: str, payload: memoryview) -> None:
        super().__init__(daemon=True)
        self.address = f"ipc://{path}"
        self.payload = payload
        self.socket: zmq.Socket[Any] = zmq.Context.instance().socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(self.address)
        os.chmod(path, 0o666)  # the sandbox may run as another uid

    def run(self) -> None:
        sock = self.socket
        while True:
            frames = sock.recv_multipart(copy=False)
            op = frames[1].bytes
            if op == b"q":
                sock.send_multipart([frames[0], b"bye"])
                return
            if op == b"g":
                sock.send_multipart([frames[0], self.payload[: int(frames[2].bytes)]], copy=False)
            elif op == b"p":
                sock.send_multipart([frames[0], b"ok"])
            else:
                sock.send_multipart(frames, copy=False)


class UnixEcho(threading.Thread):
    """AF_UNIX stream: 9-byte requests (op, u64 size); ``e`` echoes them, ``g`` sends size bytes, ``p`` reads
    size bytes and answers one byte."""

    def __init__(self, path: str, payload: memoryview) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.payload = payload
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        os.chmod(path, 0o666)
        self.listener.listen(1)

    def run(self) -> None:
        sink = bytearray(len(self.payload))
        while True:  # one connection per script (see UNIX_CLIENT)
            conn, _ = self.listener.accept()
            with conn:
                if not self._serve(conn, sink):
                    return

    def _serve(self, conn: socket.socket, sink: bytearray) -> bool:
        head = bytearray(9)
        while True:
            if not _recv_exactly(conn, memoryview(head)):
                return True
            op, size = head[:1], struct.unpack_from("<Q", head, 1)[0]
            if op == b"q":
                return False
            if op == b"g":
                conn.sendall(self.payload[:size])
            elif op == b"p":
                _recv_exactly(conn, memoryview(sink)[:size])
                conn.sendall(b"k")
            else:
                conn.sendall(head)


def _recv_exactly(conn: socket.socket, view: memoryview) -> bool:
    got = 0
    while got < len(view):
        n = conn.recv_into(view[got:])
        if n == 0:
            return False
        got += n
    return True


#: Opened and closed in each script that uses it: the sandbox restarts after a script that leaves threads
#: running, and a zmq context's I/O threads are threads.
ZMQ_OPEN = """
import zmq
_zctx = zmq.Context(); _z = _zctx.socket(zmq.DEALER); _z.linger = 0; _z.connect({address!r})
"""
ZMQ_CLOSE = "\n_z.close(); _zctx.term()\n"
ZMQ_CLIENT = """
def z_echo():
    _z.send_multipart([b"e"]); _z.recv_multipart(copy=False)
def z_get(n):
    _z.send_multipart([b"g", str(n).encode()]); return _z.recv_multipart(copy=False)[0].buffer
def z_put(data):
    _z.send_multipart([b"p", data], copy=False); _z.recv_multipart()
"""

#: Like ZMQ_OPEN, connected in each script: a script that leaves threads (pyarrow's pool, after a DataFrame
#: crossed the bridge) restarts the sandbox, and the connection with it.
UNIX_CLOSE = "\n_u.close()\n"
UNIX_CLIENT = """
import socket, struct
_u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); _u.connect({path!r})
_ubuf = bytearray({capacity}); _uview = memoryview(_ubuf)
def _u_exact(view):
    got = 0
    while got < len(view):
        got += _u.recv_into(view[got:])
def u_echo():
    _u.sendall(b"e" + bytes(8)); _u_exact(_uview[:9])
def u_get(n):
    _u.sendall(b"g" + struct.pack("<Q", n)); _u_exact(_uview[:n]); return _uview[:n]
def u_put(data):
    _u.sendall(b"p" + struct.pack("<Q", len(data))); _u.sendall(data); _u_exact(_uview[:1])
"""


# -- the run ----------------------------------------------------------------------------------------------


def run_script(kernel: SandboxKernel, code: str, dispatcher: ToolDispatcher) -> dict[str, Any]:
    result = kernel.execute(PRELUDE + code, dispatcher)
    if result.status != "ok":
        raise RuntimeError(f"benchmark script failed:\n{result.output}")
    # the host may add a notice after the output (e.g. SandboxRestarted when pyarrow left its thread pool)
    lines = [line for line in result.output.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"benchmark script printed no JSON line:\n{result.output[-2000:]}")
    return json.loads(lines[-1])


def make_registry() -> tuple[ToolRegistry, dict[int, Any], dict[int, Any]]:
    arrays = {mb: np.random.default_rng(mb).random(mb * MB // 8) for mb in SIZES_MB}
    frames = {
        mb: pd.DataFrame({f"c{i}": np.random.default_rng(i).random(mb * MB // 32) for i in range(4)}) for mb in SIZES_MB
    }
    registry = ToolRegistry()

    def noop() -> None:
        """Does nothing."""

    def array_of(mb: int) -> Any:
        return arrays[mb]

    def frame_of(mb: int) -> Any:
        return frames[mb]

    def take(value: Any) -> int:
        return 1

    for func in (noop, array_of, frame_of, take):
        registry.add(make_tool(func))
    return registry, arrays, frames


#: The hosts and baselines of the no-op latency table, in the order they run each round and are reported.
LATENCY_ROWS = {
    "notebook_live": "%codeagent in a notebook kernel, live view on (default)",
    "notebook_quiet": "%codeagent in a notebook kernel, CodeAgent.live = False",
    "bridge": "plain-process host (SandboxKernel in this process)",
    "unix": "raw AF_UNIX echo, sandbox script ↔ host thread",
    "zmq": "raw zmq DEALER/ROUTER echo, ipc",
}


class NotebookHost:
    """``%codeagent`` in a real notebook kernel, the bundled server playing a model that runs the timing script."""

    def __init__(self) -> None:
        self.server = MessagesServer().start()
        try:
            self.kernel = start_notebook(self.server)
        except BaseException:
            self.server.stop()
            raise

    def latency(self, calls: int, *, live: bool) -> dict[str, float]:
        script = PRELUDE + f"print(json.dumps(latency(noop, {calls})))"
        turns = [code_turn(script), text_turn("Timed the calls.")]
        return dict(ask(self.kernel, self.server, turns, live=live, question="Time no-op tool calls."))

    def close(self) -> None:
        self.kernel.shutdown()
        self.server.stop()


def measure(calls: int, repeat: int, rounds: int, notebook: bool, throughput: bool) -> dict[str, Any]:
    registry, _, _ = make_registry()
    policy = SandboxPolicy(wall_seconds=600, cpu_seconds=600)
    kernel = SandboxKernel(policy).start()
    host = NotebookHost() if notebook else None
    try:
        kernel.set_tools([t.spec() for t in registry])
        dispatcher = ToolDispatcher(registry)
        assert kernel.run_dir
        payload = memoryview(np.random.default_rng(0).bytes(max(SIZES_MB) * MB))
        zmq_echo = ZmqEcho(os.path.join(kernel.run_dir, "zecho"), payload)
        unix_echo = UnixEcho(os.path.join(kernel.run_dir, "uecho"), payload)
        zmq_echo.start()
        unix_echo.start()
        unix_open = UNIX_CLIENT.format(path=unix_echo.path, capacity=len(payload))
        zmq_open = ZMQ_OPEN.format(address=zmq_echo.address) + ZMQ_CLIENT
        opened, closed = zmq_open + unix_open, ZMQ_CLOSE + UNIX_CLOSE
        if host is not None:  # warm: the first call starts the pool's spare sandbox
            host.latency(300, live=True)

        # Latency: every host and baseline once per round, interleaved, so all see the same machine state.
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in LATENCY_ROWS}
        load: list[float] = []
        for _ in range(rounds):
            if host is not None:
                samples["notebook_live"].append(host.latency(calls, live=True))
                samples["notebook_quiet"].append(host.latency(calls, live=False))
            for name, call in (("bridge", "noop"), ("unix", "u_echo"), ("zmq", "z_echo")):
                code = f"print(json.dumps(latency({call}, {calls})))"
                samples[name].append(run_script(kernel, opened + code + closed, dispatcher))
            load.append(os.getloadavg()[0])
        latency = {name: _middle(runs) for name, runs in samples.items() if runs}

        sizes = []
        for mb in SIZES_MB if throughput else ():
            reps = repeat if mb < 100 else max(3, repeat // 2)
            code = (
                f"import numpy as np, pandas as pd\n"
                f"n = {mb * MB}\n"
                f"arr = np.random.default_rng(1).random(n // 8)\n"
                f"frame = pd.DataFrame({{f'c{{i}}': arr[i::4].copy() for i in range(4)}})\n"
                f"blob = bytes(n)\n"
                f"out = {{}}\n"
                f"out['bridge_in_array'] = median_s(lambda: array_of({mb}), {reps})\n"
                f"out['bridge_in_frame'] = median_s(lambda: frame_of({mb}), {reps})\n"
                f"out['bridge_out_array'] = median_s(lambda: take(arr), {reps})\n"
                f"out['bridge_out_frame'] = median_s(lambda: take(frame), {reps})\n"
                f"out['zmq_in'] = median_s(lambda: z_get(n), {reps})\n"
                f"out['zmq_out'] = median_s(lambda: z_put(blob), {reps})\n"
                f"out['unix_in'] = median_s(lambda: u_get(n), {reps})\n"
                f"out['unix_out'] = median_s(lambda: u_put(blob), {reps})\n"
                f"del arr, frame, blob\n"
                f"print(json.dumps(out))\n"
            )
            seconds = run_script(kernel, opened + code + closed, dispatcher)
            mbps = {key: mb * MB / 1e6 / value for key, value in seconds.items()}
            sizes.append({"mb": mb, "MB_per_s": mbps, "seconds": seconds})
        quit_echoes = "_z.send_multipart([b'q']); _z.recv_multipart(); _u.sendall(b'q' + bytes(8))\nprint('{}')"
        run_script(kernel, opened + quit_echoes + closed, dispatcher)
        return {
            "latency": latency,
            "latency_rounds": samples,
            "load_avg_1m_per_round": load,
            "throughput": sizes,
            "sandbox_layers": kernel.layers,
        }
    finally:
        if host is not None:
            host.close()
        kernel.shutdown()


def _middle(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median median (its p99 and rate belong to the same run)."""
    return sorted(runs, key=lambda r: r["median_us"])[len(runs) // 2]


def report(results: dict[str, Any]) -> str:
    lat = results["latency"]
    n = len(results["load_avg_1m_per_round"])
    loads = ", ".join(f"{x:.1f}" for x in results["load_avg_1m_per_round"])
    lines = [
        f"No-op tool call round trip, timed in the script (the round with the median median of {n} interleaved)",
        f"{'':58}{'median µs':>11}{'p99 µs':>10}{'calls/s':>10}{'× AF_UNIX':>11}",
        *[
            f"{LATENCY_ROWS[name]:58}{r['median_us']:>11.1f}{r['p99_us']:>10.1f}{r['calls_per_s']:>10.0f}"
            f"{r['median_us'] / lat['unix']['median_us']:>10.2f}×"
            for name, r in lat.items()
        ],
        f"load average (1 min) after each round: {loads}",
    ]
    if results["throughput"]:
        lines += [
            "",
            "Throughput, MB/s (median of repeats); in = host → sandbox (tool result), out = sandbox → host (argument)",
            f"{'MB':>4}{'array in':>10}{'frame in':>10}{'zmq in':>9}{'unix in':>9}{'array out':>11}{'frame out':>11}"
            f"{'zmq out':>9}{'unix out':>10}{'in vs zmq':>11}{'in vs unix':>11}",
        ]
    for row in results["throughput"]:
        m = row["MB_per_s"]
        lines.append(
            f"{row['mb']:>4}{m['bridge_in_array']:>10.0f}{m['bridge_in_frame']:>10.0f}{m['zmq_in']:>9.0f}"
            f"{m['unix_in']:>9.0f}{m['bridge_out_array']:>11.0f}{m['bridge_out_frame']:>11.0f}{m['zmq_out']:>9.0f}"
            f"{m['unix_out']:>10.0f}{m['bridge_in_array'] / m['zmq_in']:>10.2f}×"
            f"{m['bridge_in_array'] / m['unix_in']:>10.2f}×"
        )
    lines.append(f"sandbox layers: {', '.join(results['sandbox_layers']) or 'none'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="sequential calls per latency run")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved latency rounds")
    parser.add_argument("--repeat", type=int, default=5, help="repeats per payload size (100 MB: half)")
    parser.add_argument("--no-notebook", action="store_true", help="skip the two notebook-kernel hosts")
    parser.add_argument("--no-throughput", action="store_true", help="skip the MB/s measurements")
    args = parser.parse_args()
    started = time.perf_counter()
    results = measure(args.calls, args.repeat, args.rounds, not args.no_notebook, not args.no_throughput)
    results["machine"] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "zmq": zmq.zmq_version(),
    }
    results["calls_per_run"] = args.calls
    results["wall_s"] = round(time.perf_counter() - started, 1)
    print(report(results))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bridge.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'bridge.json'} in {results['wall_s']} s")


if __name__ == "__main__":
    main()
