"""A sandbox kernel run by a Jupyter Kernel Gateway or Enterprise Gateway instead of on this machine.

The gateway starts the kernel from its kernelspec (``python -m codeagent.sandbox.host.remote_kernel``, which
applies the same lockdown layers wherever the remote host allows them), and this class drives it over the
gateway's REST API and websocket. Tool calls, ``--data`` and ``set_result`` travel on the kernel's stdin
channel (:mod:`codeagent.sandbox.host.gateway.stdin_bridge`). It offers what the agent loop and the pool use of
:class:`codeagent.sandbox.host.manager.SandboxKernel`.

Longer than most modules (~420 lines) for the reason ``manager.py`` gives: one class whose kernel life (start,
restart, recovery after a death, shutdown) and script runs (execute, interrupt) share every piece of its state;
what needs none of it lives beside it (``channels.py``, ``rest.py``, ``stdin_bridge.py``, ``threads.py``,
``output.record_output``).
"""

from __future__ import annotations

import ast
import getpass
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from typing import Any

from codeagent.sandbox.host.gateway.channels import KernelChannels, Message
from codeagent.sandbox.host.gateway.rest import GatewayClient, GatewayError
from codeagent.sandbox.host.gateway.settings import GatewaySettings
from codeagent.sandbox.host.gateway.stdin_bridge import StdinBridge
from codeagent.sandbox.host.gateway.threads import THREADS_REQUEST, left_threads_problem, reported_threads
from codeagent.sandbox.host.inbox import IopubBudget, misbehaviour
from codeagent.sandbox.host.manager import ExecStatus, ExecutionResult, SandboxError, script_result
from codeagent.sandbox.host.output import OutputCollector, record_output, strip_ansi
from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.sandbox.host.threads import GRACE_S
from codeagent.sandbox.protocol import stdin_frames
from codeagent.sandbox.protocol.messages import BridgeHandler
from codeagent.sandbox.protocol.tool_specs import install_code

log = logging.getLogger("codeagent.gateway")

START_TIMEOUT = 60.0
#: The bridge address the guest runtime knows as "use the stdin channel".
STDIN_ADDRESS = "stdin:"


class GatewaySandbox:
    """One sandbox kernel behind a gateway, with the stdin-channel tool bridge."""

    def __init__(self, policy: SandboxPolicy, settings: GatewaySettings) -> None:
        self.policy = policy
        self.settings = settings
        self.layers: list[str] = []
        self.layer_notes: list[str] = []
        self.remote_platform = ""
        self.restarts = 0
        self.workspace: str | None = None
        self.run_dir: str | None = None
        self.kernel_id: str | None = None
        self._token = secrets.token_hex(16)
        self._tool_specs: list[dict[str, Any]] = []
        self._installed_specs: list[dict[str, Any]] | None = None  # what the running remote kernel has
        self._rest = GatewayClient(settings.url, settings.token)
        self._channels: KernelChannels | None = None
        self._dead = False
        self._own_threads: list[str] = []  # the remote kernel's threads before any script, as it reported them
        self.iopub = IopubBudget(policy.iopub_call_mb << 20)  # shared with the channels' reader thread
        self.bridge = StdinBridge(
            self._token,
            max_request_bytes=policy.bridge_request_mb * 1024 * 1024,
            max_reply_bytes=policy.bridge_reply_mb * 1024 * 1024,
        )

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> GatewaySandbox:
        try:
            self.kernel_id = self._rest.start_kernel(self.settings.kernel_name, self._kernel_env())
            self._connect()
        except GatewayError as e:
            self.shutdown()
            raise SandboxError(str(e)) from None
        return self

    def _kernel_env(self) -> dict[str, str]:
        """Limits for the remote launcher (gateways pass only KERNEL_* variables from clients). No secrets."""
        p = self.policy
        limits = {
            "memory_mb": p.memory_mb,
            "cpu_seconds": p.cpu_seconds,
            "max_processes": p.max_processes,
            "max_file_mb": p.max_file_mb,
            "max_open_files": p.max_open_files,
        }
        # Enterprise Gateway starts kernels as (and authorizes) KERNEL_USERNAME; Kernel Gateway ignores it
        user = os.environ.get("KERNEL_USERNAME") or getpass.getuser()
        return {"KERNEL_CODEAGENT_LIMITS": json.dumps(limits), "KERNEL_USERNAME": user}

    def _connect(self) -> None:
        assert self.kernel_id is not None
        # the gateway completes the websocket handshake only once the kernel answers: allow a whole start-up
        p = self.policy
        self._channels = KernelChannels(
            self._rest.channels_url(self.kernel_id),
            self._rest.auth_headers,
            timeout=START_TIMEOUT,
            budget=self.iopub,
            message_bytes=p.iopub_message_mb << 20,
            queued_bytes=p.iopub_queued_mb << 20,
        )
        self._wait_ready()
        self._read_layers()
        self._run_silent(
            "import codeagent.sandbox.guest.runtime as _ca_runtime\n"
            f"_ca_runtime.setup({json.dumps(self.policy.cpu_seconds)})\n"
            "del _ca_runtime\n"
        )
        self._installed_specs = None
        self.set_tools(self._tool_specs)
        self._dead = False
        self._own_threads = self._remote_threads() or []

    def _wait_ready(self) -> None:
        channels = self._require_channels()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            request = channels.send("shell", "kernel_info_request", {})
            until = time.monotonic() + 1.0
            while time.monotonic() < until:
                msg = channels.get(0.2)
                if msg is None and channels.closed.is_set():
                    raise GatewayError("the gateway closed the kernel's websocket while it started")
                parent = _parent_id(msg) if msg is not None else None
                if parent == request["header"]["msg_id"] and msg and msg.get("msg_type") == "kernel_info_reply":
                    return
        raise GatewayError(f"the sandbox kernel at the gateway did not become ready within {START_TIMEOUT:g} s")

    def _read_layers(self) -> None:
        """The lockdown the remote launcher applied, as it reported it to the kernel's environment."""
        reply = self._shell_request(
            {
                "code": "",
                "silent": True,
                "store_history": False,
                "user_expressions": {"layers": "__import__('os').environ.get('CODEAGENT_LAYERS', '')"},
                "allow_stdin": False,
            }
        )
        value = reply.get("content", {}).get("user_expressions", {}).get("layers", {})
        text = value.get("data", {}).get("text/plain", "") if isinstance(value, dict) else ""
        try:
            report = json.loads(ast.literal_eval(text)) if text else {}
        except (ValueError, SyntaxError, TypeError):
            report = {}
        layers = report.get("layers") if isinstance(report, dict) else None
        notes = report.get("notes") if isinstance(report, dict) else None
        self.layers = [str(x) for x in layers] if isinstance(layers, list) else []
        self.layer_notes = [f"remote: {n}" for n in notes if isinstance(n, str)] if isinstance(notes, list) else []
        self.remote_platform = str(report.get("platform", "")) if isinstance(report, dict) else ""
        if not report:
            self.layer_notes.append(
                "the gateway's kernel did not report any lockdown: its kernelspec does not run codeagent's "
                "remote launcher (python -m codeagent.sandbox.host.remote_kernel)"
            )

    def set_tools(self, specs: list[dict[str, Any]]) -> None:
        """Define the tool stubs in the remote kernel; they call back over the stdin channel.

        As in the local sandbox, the specs travel packed (``protocol.tool_specs.install_code``) and are installed
        only when they changed since the last install into the running kernel."""
        if specs == self._installed_specs:
            return
        self._tool_specs = specs
        self._run_silent(install_code(STDIN_ADDRESS, self._token, specs, self.bridge.max_request_bytes))
        self._installed_specs = specs

    def _run_silent(self, code: str) -> None:
        reply = self._shell_request(
            {"code": code, "silent": True, "store_history": False, "user_expressions": {}, "allow_stdin": False}
        )
        content = reply.get("content", {})
        if content.get("status") != "ok":
            tb = strip_ansi("\n".join(str(x) for x in content.get("traceback", [])))
            raise SandboxError(f"sandbox setup at the gateway failed:\n{tb or content}")

    def _shell_request(self, content: dict[str, Any], timeout: float = 30.0) -> Message:
        channels = self._require_channels()
        request = channels.send("shell", "execute_request", content)
        msg_id = request["header"]["msg_id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = channels.get(0.2)
            if msg is None:
                if channels.closed.is_set():
                    raise SandboxError("the gateway closed the sandbox kernel's websocket")
                continue
            if _parent_id(msg) == msg_id and msg.get("channel") == "shell":
                return msg
        raise SandboxError(f"the sandbox kernel at the gateway did not answer within {timeout:g} s")

    def _require_channels(self) -> KernelChannels:
        if self._channels is None:
            raise SandboxError("the gateway sandbox is not connected")
        return self._channels

    def kernel_log(self) -> str:
        return ""  # the log lives on the gateway's machine

    def is_alive(self) -> bool:
        if self.kernel_id is None or self._channels is None or self._dead:
            return False
        return not self._channels.closed.is_set()

    def restart(self) -> None:
        """Restart the remote kernel (a fresh process; tools are installed again)."""
        self.restarts += 1
        if self._channels is not None:
            self._channels.close()
            self._channels = None
        try:
            if self.kernel_id is not None and self._rest.kernel_state(self.kernel_id) is not None:
                self._rest.restart(self.kernel_id)
            else:
                self.kernel_id = self._rest.start_kernel(self.settings.kernel_name, self._kernel_env())
            self._connect()
        except GatewayError as e:
            raise SandboxError(str(e)) from None

    def shutdown(self) -> None:
        if self._channels is not None:
            self._channels.close()
            self._channels = None
        if self.kernel_id is not None:
            try:
                self._rest.delete(self.kernel_id)
            except GatewayError as e:
                log.warning("could not delete gateway kernel %s: %s", self.kernel_id, e)
            self.kernel_id = None
        self.bridge.close()
        self._rest.close()

    def __enter__(self) -> GatewaySandbox:
        return self if self.kernel_id else self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- running scripts ---------------------------------------------------------------------------

    def execute(
        self,
        code: str,
        handler: BridgeHandler,
        *,
        on_output: Callable[[str], None] | None = None,
        on_display: Callable[[dict[str, Any]], None] | None = None,
        silent: bool = False,
    ) -> ExecutionResult:
        """Run ``code`` in the remote kernel, serving its tool calls from the stdin channel until it finishes."""
        channels = self._require_channels()
        policy = self.policy
        out = OutputCollector(hard_limit=policy.output_hard_bytes)
        started = time.perf_counter()
        self.iopub.begin_call()
        malformed_before = channels.dropped
        request = channels.send(
            "shell",
            "execute_request",
            {
                "code": code,
                "silent": silent,
                "store_history": not silent,
                "user_expressions": {},
                "allow_stdin": True,
                "stop_on_error": False,
            },
        )
        msg_id = request["header"]["msg_id"]
        self.bridge.expected_cell = msg_id
        report = getattr(handler, "report", None)  # tell the trace about calls after their replies are sent
        reply: Message | None = None
        idle = False
        status: ExecStatus = "ok"
        notice: str | None = None
        deadline = started + policy.wall_seconds
        try:
            while reply is None or not idle:
                now = time.perf_counter()
                # time spent waiting for a person's approval (ToolDispatcher.paused_s) is not the script's
                limit = deadline + getattr(handler, "paused_s", 0.0)
                if now > limit:
                    status, notice = "timeout", self._stop_overrun(msg_id)
                    break
                msg = channels.get(min(0.1, limit - now))
                if msg is None:
                    if channels.closed.is_set():
                        status, notice = "crashed", self._recover_crash("the gateway closed the websocket")
                        break
                    continue
                channel = msg.get("channel")
                state = msg["content"].get("execution_state") if msg.get("msg_type") == "status" else None
                if channel == "iopub" and state in ("restarting", "dead"):  # the gateway's own notice, no parent
                    status, notice = "crashed", self._recover_crash("the kernel died at the gateway", state)
                    break
                if _parent_id(msg) != msg_id:
                    continue
                if channel == "stdin" and msg.get("msg_type") == "input_request":
                    self._answer_input(msg, handler)
                    if report is not None:
                        report()
                elif channel == "shell" and msg.get("msg_type") == "execute_reply":
                    reply = msg
                elif channel == "iopub":
                    idle = record_output(msg, out, on_output, on_display, self.iopub.counts) or idle
        except KeyboardInterrupt:
            self.interrupt_and_wait(msg_id)
            raise
        finally:
            if report is not None:
                report()
        if self.is_alive():
            ended = self._end_script()
            notice = "\n".join(n for n in (notice, ended) if n) or None
        counts = dict(self.iopub.counts)
        if self._channels is not None and (malformed := self._channels.dropped - malformed_before) > 0:
            counts["malformed messages"] = malformed
        return script_result(out, reply, status, notice, policy.output_chars, started, misbehaviour(counts))

    def _end_script(self) -> str | None:
        """Restart the remote kernel when, after a grace, it reports more threads than before any script ran.
        Its ``/proc`` cannot be watched from here, so this is the kernel's own word, which a script can falsify
        (a truthful kernel is checked, a hostile one is not)."""
        end = time.monotonic() + GRACE_S
        while True:
            threads = self._remote_threads()
            if threads is not None and len(threads) <= len(self._own_threads):
                return None
            if threads is None or time.monotonic() >= end:
                break
            time.sleep(0.02)
        problem = left_threads_problem(threads, self._own_threads)
        log.warning("restarting the gateway sandbox: %s", problem)
        try:
            self.restart()
        except SandboxError as e:
            return f"SandboxRestarted: {problem}; restarting it failed: {e}"
        return f"SandboxRestarted: {problem}; the sandbox was restarted at the gateway, so its variables are gone."

    def _remote_threads(self) -> list[str] | None:
        """The remote kernel's thread names as it reports them (None if it gives no readable answer)."""
        try:
            reply = self._shell_request(THREADS_REQUEST, timeout=10.0)
        except SandboxError:
            return None
        return reported_threads(reply)

    def _answer_input(self, msg: Message, handler: BridgeHandler) -> None:
        prompt = msg["content"].get("prompt")
        if isinstance(prompt, str) and stdin_frames.is_bridge_prompt(prompt):
            value = self.bridge.answer(prompt, handler)
        else:
            value = "\x04"  # EOF: the script's own input() has nobody to answer it
        self._require_channels().send("stdin", "input_reply", {"value": value}, parent=msg)

    def interrupt_and_wait(self, msg_id: str, grace: float = 2.0) -> bool:
        """Interrupt the running script through the gateway; True if the kernel answered within ``grace``."""
        if self.kernel_id is None or self._channels is None:
            return False
        try:
            self._rest.interrupt(self.kernel_id)
        except GatewayError:
            return False
        end = time.monotonic() + grace
        while time.monotonic() < end:
            msg = self._channels.get(0.05)
            if msg is not None and _parent_id(msg) == msg_id and msg.get("msg_type") == "execute_reply":
                return True
        return False

    def _stop_overrun(self, msg_id: str) -> str:
        limit = self.policy.wall_seconds
        if self.interrupt_and_wait(msg_id):
            return f"TimeoutError: the script ran longer than {limit:g} s (wall clock) and was interrupted."
        self.restart()
        return (
            f"TimeoutError: the script ran longer than {limit:g} s (wall clock) and ignored the interrupt; "
            "the sandbox was restarted at the gateway, so its variables are gone."
        )

    def _recover_crash(self, why: str, state: str | None = None) -> str:
        """A fresh kernel after a death: the one the gateway is restarting by itself, else a new one."""
        self._dead = True
        try:
            if state == "restarting":
                self.restarts += 1
                self._require_channels().close()
                self._channels = None
                try:
                    self._connect()
                except (GatewayError, SandboxError):
                    self.restart()
            else:
                self.restart()
        except (GatewayError, SandboxError) as e:
            return f"SandboxCrashed: {why}, and restarting it failed: {e}"
        return f"SandboxCrashed: {why} during the script; it was restarted, so its variables are gone."


def _parent_id(msg: Message) -> Any:
    parent = msg.get("parent_header")
    return parent.get("msg_id") if isinstance(parent, dict) else None


def remote_sandbox_info(settings: GatewaySettings, sandbox: GatewaySandbox) -> str:
    """``--sandbox-info`` for gateway sandboxes: the layers the remote launcher applied, as it reported them."""
    from codeagent.sandbox.protocol.launch_spec import ALL_LAYERS

    lines = [
        f"codeagent sandbox at the gateway {settings.url} (kernelspec {settings.kernel_name!r}; "
        f"remote platform: {sandbox.remote_platform or 'unknown'}):"
    ]
    lines += [f"  {'✓' if name in sandbox.layers else '✗'} {name}" for name in ALL_LAYERS]
    lines += [f"  note: {n}" for n in sandbox.layer_notes]
    lines.append("  tool calls travel on the kernel's stdin channel through the gateway")
    return "\n".join(lines)
