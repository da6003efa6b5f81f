"""A real notebook kernel running ``%codeagent`` against a scripted model, and what it costs the host.

The host of every call is the notebook kernel (the bridge, IOPub reading and the trace live there), so the
budgets of the hostile-script tests are measured on that process: resident memory (now and its peak, which
``/proc/<pid>/clear_refs`` resets), CPU time, and wall time.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client import KernelManager

from codeagent.testing.messages_server import MessagesServer, Turn, code_turn, last_tool_result, text_turn

PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Usage:
    """The notebook kernel's resources at one moment."""

    rss_mib: float
    peak_mib: float
    cpu_s: float
    at: float


@dataclass
class Call:
    """One ``%codeagent`` call as the notebook saw it."""

    output: str  # the script output the model was shown
    info: dict[str, Any]  # status, misbehaved, tool calls … read back from the result object
    html: str  # the final view's text/html
    text: str  # the final view's text/plain
    wall_s: float
    cpu_s: float
    peak_growth_mib: float
    rss_growth_mib: float
    retained_mib: float  # still resident after the call, once freed memory went back to the system


class CodeagentNotebook:
    """A notebook kernel (ipykernel, its own process) with codeagent loaded and pointed at ``server``."""

    def __init__(self, server: MessagesServer, workdir: Path, **config: Any) -> None:
        self.server = server
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
        env["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
        env["ANTHROPIC_API_KEY"] = "test-key-not-secret"
        self.km = KernelManager(connection_file=str(workdir / f"kernel-{uuid.uuid4().hex}.json"))
        self.km.start_kernel(cwd=str(workdir), env=env)
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        settings = {"base_url": server.url, "live": False, "api_retries": 0, "cassette_mode": "off", **config}
        lines = [f"c.CodeAgent.{k} = {v!r}" for k, v in settings.items()]
        self.run(
            "from traitlets.config import Config\nc = Config()\n" + "\n".join(lines) + "\n"
            "get_ipython().config.merge(c)\n%load_ext codeagent\n"
            "from codeagent import tool\nimport json as _json\n"
        )

    @property
    def pid(self) -> int:
        return int(self.km.provisioner.process.pid)  # type: ignore[union-attr]

    def run(self, code: str, timeout: float = 120) -> str:
        """Execute ``code`` in the notebook; its printed text (raises if it fails)."""
        out, _ = self._execute(code, timeout)
        return out

    def _execute(self, code: str, timeout: float) -> tuple[str, list[dict[str, Any]]]:
        printed: list[str] = []
        bundles: list[dict[str, Any]] = []

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                printed.append(content["text"])
            elif kind == "error":
                printed.append("\n".join(content["traceback"]))
            elif kind in ("display_data", "update_display_data", "execute_result"):
                bundles.append(content["data"])

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        if reply["content"]["status"] != "ok":
            raise RuntimeError("notebook cell failed:\n" + "".join(printed))
        return "".join(printed), bundles

    def usage(self) -> Usage:
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{self.pid}/status").read_text().splitlines() if ":" in line
        )
        stat = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(stat[11]) + int(stat[12])) / TICKS  # utime + stime
        mib = lambda key: int(status[key].split()[0]) / 1024  # noqa: E731
        return Usage(mib("VmRSS"), mib("VmHWM"), cpu, time.monotonic())

    def reset_peak(self) -> None:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS

    def ask(self, script: str, answer: str = "The script ran.", options: str = "") -> Call:
        """``%codeagent`` with a model that writes ``script`` and then answers ``answer``."""
        seen: dict[str, str] = {}

        def reply(body: dict[str, Any]) -> Turn:
            seen["output"] = last_tool_result(body)
            return text_turn(answer)

        self.server.add_turns(code_turn(script), reply)
        self.run(TRIM)
        self.reset_peak()
        before = self.usage()
        _, bundles = self._execute(f"_r = %codeagent {options} Run this script.", timeout=300)
        after = self.usage()
        final = [b for b in bundles if "text/html" in b and "codeagent ·" in b["text/html"]]
        info = json.loads(self.run(INFO))
        self.run(TRIM)
        retained = self.usage().rss_mib - before.rss_mib
        return Call(
            output=seen.get("output", ""),
            info=info,
            html=final[-1]["text/html"] if final else "",
            text=final[-1].get("text/plain", "") if final else "",
            wall_s=after.at - before.at,
            cpu_s=after.cpu_s - before.cpu_s,
            peak_growth_mib=after.peak_mib - before.rss_mib,
            rss_growth_mib=after.rss_mib - before.rss_mib,
            retained_mib=retained,
        )

    def assert_next_call_works(self, clean: bool = True) -> None:
        """A plain script runs and prints its result; ``clean``: and the host dropped nothing."""
        call = self.ask("print(6 * 7)", answer="42")
        assert call.info["status"] == "done" and call.output.split("\n", 1)[0] == "42", call
        if clean:
            assert call.info["scripts"][0]["misbehaved"] is None, call.info

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.run("get_ipython().run_line_magic('unload_ext', 'codeagent')", timeout=30)
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)


#: Frees what is garbage and hands freed heap back to the system (glibc keeps it otherwise), so that resident
#: memory measures what is still referenced.
TRIM = "import ctypes, gc\ngc.collect()\nctypes.CDLL(None).malloc_trim(0)\n"
#: Reads the last result object back as JSON (what the notebook user holds in ``_r``).
INFO = """
print(_json.dumps({
    "status": _r.status,
    "answer": _r.answer,
    "scripts": [
        {"status": s.status, "error": s.error_name, "misbehaved": s.misbehaved, "output": s.output,
         "duration_s": s.duration_s, "output_chars": s.output_chars}
        for s in _r.scripts
    ],
    "tool_calls": [
        {"name": c.name, "arguments_json_chars": len(_json.dumps(c.arguments, default=str)),
         "arguments_chars": c.arguments_chars, "error": c.error}
        for c in _r.tool_calls
    ],
}))
"""
