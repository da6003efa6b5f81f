"""The sandbox kernel: a separate ipykernel started through our launcher, with the tool bridge beside it.

Longer than most modules (~550 lines) for a reason: it is one class, and its two halves — the kernel's life
(start, restart, shutdown) and running a script on it (execute, interrupt, recover, end-of-script checks) —
share every piece of state. What does not need that state lives beside it: ``results.py`` (what a script did),
``launch.py`` (the launch spec), ``jupyter.py`` (jupyter_client), ``output.py`` (capping output, display
placeholders), ``threads.py``, ``reaper.py``, ``logs.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq
from jupyter_client import KernelManager

from codeagent.sandbox.guest.bridge_pool import POOL_SIZE
from codeagent.sandbox.host.bridge import PAUSED, BridgeHandler, BridgeServer
from codeagent.sandbox.host.inbox import KernelInbox, misbehaviour
from codeagent.sandbox.host.jupyter import exit_status, kernel_manager, process_id
from codeagent.sandbox.host.launch import (
    ENV_ALLOW,
    PACKAGE_ROOT,
    build_launch_spec,
    launcher_argv,
    python_prefix_paths,
    sandbox_env,
)
from codeagent.sandbox.host.logs import keep_log
from codeagent.sandbox.host.output import OutputCollector, describe_display, png_size, record_output, strip_ansi
from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.sandbox.host.reaper import kill_strays, trusted_chain
from codeagent.sandbox.host.results import ExecStatus, ExecutionResult, SandboxError, script_result
from codeagent.sandbox.host.threads import Quiet, names, tasks, threads_left
from codeagent.sandbox.protocol.launch_spec import LaunchSpec
from codeagent.sandbox.protocol.spin import SpinGate
from codeagent.sandbox.protocol.tool_specs import install_code

# Re-exported: what callers have always imported from here.
__all__ = [
    "ENV_ALLOW",
    "PACKAGE_ROOT",
    "ExecStatus",
    "ExecutionResult",
    "SandboxError",
    "SandboxKernel",
    "build_launch_spec",
    "describe_display",
    "layers_for",
    "png_size",
    "python_prefix_paths",
    "sandbox_env",
    "script_result",
]

log = logging.getLogger(__name__)


START_TIMEOUT = 60.0
_REAP = "import codeagent.sandbox.guest.runtime as _ca_runtime\n_ca_runtime.reap_children()\ndel _ca_runtime\n"
#: How long the host keeps polling without sleeping after serving a tool call (see ``execute``); only while the
#: machine has a CPU free for the sandbox to run on (see ``protocol.spin``).
BRIDGE_HOT = SpinGate(0.0003)
#: After the script's reply, how long to wait for the kernel's idle status (it may have been dropped on the wire).
IDLE_GRACE_S = 1.0
#: How long to wait for the kernel to confirm the host listens to its output again before a script.
SUBSCRIBE_TIMEOUT_S = 1.0


def layers_for(policy: SandboxPolicy) -> tuple[list[str], list[str]]:
    """Lockdown layers for this policy on this machine and the notes explaining any that are missing
    (:func:`codeagent.sandbox.host.layers.choose_layers`, with its refusal as a SandboxError)."""
    from codeagent.sandbox.host.layers import SandboxUnavailable, choose_layers

    try:
        return choose_layers(policy.mode, allow_root=policy.allow_root, allow_no_seccomp=policy.allow_no_seccomp)
    except SandboxUnavailable as e:
        raise SandboxError(str(e)) from None


class SandboxKernel:
    """One locked-down ipykernel with its run directory, workspace and tool bridge."""

    def __init__(self, policy: SandboxPolicy | None = None, *, workspace: str | None = None) -> None:
        self.policy = policy or SandboxPolicy()
        self._own_workspace = workspace is None
        self.workspace = workspace
        self.run_dir: str | None = None
        self.km: KernelManager | None = None
        self.kc: Any = None
        self.bridge: BridgeServer | None = None
        self.layers: list[str] = []
        self.layer_notes: list[str] = []
        self._token = secrets.token_hex(16)
        self._tool_specs: list[dict[str, Any]] = []
        self._context: zmq.Context[Any] | None = None
        self.inbox: KernelInbox | None = None
        self._iopub_monitor: zmq.Socket[Any] = None  # type: ignore[assignment]
        self._listening = True
        self._iopub_reset = False  # zmq dropped the output connection during this script
        #: Bytes of sandbox output that arrived between scripts and were dropped (the host unsubscribes then).
        self.idle_bytes_dropped = 0
        self._installed_specs: list[dict[str, Any]] | None = None  # what the running kernel has
        self.restarts = 0
        self._trusted: list[int] = []  # launcher [, init], kernel: the processes a script end keeps
        self._kernel_threads: set[int] = set()  # the kernel's threads before any script ran (threads.py)
        self._quiet: Quiet | None = None  # between scripts: the kernel's threads as the last one left them
        self._restarted_between: str | None = None  # a notice for the next script

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> SandboxKernel:
        try:
            return self._start()
        except BaseException:
            self.shutdown()  # a sandbox that failed to start leaves no folder behind (its log is kept, see logs)
            raise

    def _start(self) -> SandboxKernel:
        self.run_dir = tempfile.mkdtemp(prefix="codeagent-")  # mkdtemp makes it 0700
        if self.workspace is None:
            self.workspace = tempfile.mkdtemp(prefix="codeagent-ws-")
        os.makedirs(self.workspace, exist_ok=True)
        self.layers, self.layer_notes = layers_for(self.policy)
        p = self.policy
        self.bridge = BridgeServer(
            os.path.join(self.run_dir, "bridge"),
            self._token,
            max_request_bytes=p.bridge_request_mb << 20,
            max_reply_bytes=p.bridge_reply_mb << 20,
            max_buffered_bytes=p.bridge_buffer_mb << 20,
            max_connections=p.bridge_connections,
            max_queued_reply_bytes=p.bridge_queued_reply_mb << 20,
        )
        self._start_kernel()
        log.info("sandbox started: %s, layers %s", self.run_dir, ", ".join(self.layers) or "none")
        return self

    def _launch_spec(self, connection_file: str) -> LaunchSpec:
        assert self.run_dir and self.workspace
        return build_launch_spec(self.policy, connection_file, self.workspace, self.run_dir, self.layers)

    def workspace_on_host(self) -> str:
        """Where the host can read the workspace: through the kernel's root when it is the sandbox's tmpfs."""
        assert self.workspace
        if self.quota_mounted and self._trusted and self.is_alive():
            return f"/proc/{self._trusted[-1]}/root{self.workspace}"
        return self.workspace

    @property
    def quota_mounted(self) -> bool:
        """The workspace is a size- and inode-limited tmpfs (mounts layer); else its use is only accounted."""
        return "mounts" in self.layers

    def _start_kernel(self) -> None:
        assert self.run_dir
        launch_path = os.path.join(self.run_dir, "launch.json")
        km = kernel_manager(
            launcher_argv(launch_path),
            ip=os.path.join(self.run_dir, "k"),
            connection_file=os.path.join(self.run_dir, "kernel.json"),
            display_name="codeagent sandbox",
        )
        with open(launch_path, "w", encoding="utf-8") as f:
            json.dump(self._launch_spec(km.connection_file), f)
        output = open(os.path.join(self.run_dir, "kernel.log"), "ab")  # noqa: SIM115 - lives with the kernel
        km.start_kernel(env=self._launch_spec(km.connection_file)["env"], stdout=output, stderr=output)
        output.close()
        kc = km.client(context=self._zmq_context())
        kc.start_channels(hb=False)  # no pings: the kernel's threads stay asleep between scripts
        try:
            kc.wait_for_ready(timeout=START_TIMEOUT)
        except RuntimeError as e:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
            raise self._start_failed(f"the sandbox kernel did not start: {e}") from None
        self.km, self.kc = km, kc
        self._trusted = trusted_chain(self.launcher_pid())
        self.inbox = KernelInbox(kc.session, call_bytes=self.policy.iopub_call_mb << 20)
        # zmq drops the connection when a message is over MAXMSGSIZE (and reconnects): watch for that to count it
        self._iopub_monitor = kc.iopub_channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._listening = True
        try:
            self._setup_runtime()
        except SandboxError as e:
            raise self._start_failed(str(e)) from None
        self._kernel_threads = tasks(self._trusted[-1])
        self._stop_listening()
        self._quiet = Quiet.settled(self._trusted[-1])

    def _zmq_context(self) -> zmq.Context[Any]:
        """A context whose sockets refuse oversized messages on the wire and queue few (see SandboxPolicy)."""
        if self._context is None:
            self._context = zmq.Context()
            self._context.setsockopt(zmq.MAXMSGSIZE, self.policy.iopub_message_mb << 20)
            self._context.setsockopt(zmq.RCVHWM, iopub_queue_messages(self.policy))
        return self._context

    def _start_failed(self, problem: str) -> SandboxError:
        """The error for a sandbox that did not come up: the end of its log, and where the whole log was kept."""
        kept = keep_log(os.path.join(self.run_dir or "", "kernel.log"), "start-failed")
        where = f"\n(the sandbox's whole log: {kept})" if kept else ""
        log.error("%s; log kept at %s", problem, kept)
        return SandboxError(f"{problem}\n{self.kernel_log()[-2000:]}{where}")

    def kernel_log(self) -> str:
        try:
            return Path(self.run_dir or "", "kernel.log").read_text(errors="replace")
        except OSError:
            return ""

    def _setup_runtime(self) -> None:
        code = (
            "import codeagent.sandbox.guest.runtime as _ca_runtime\n"
            f"_ca_runtime.setup({json.dumps(self.policy.cpu_seconds)}, "
            f"lock_metadata={self._socket_locked})\n"
            "del _ca_runtime\n"
        )
        self._run_silent(code)
        self._installed_specs = None
        self.set_tools(self._tool_specs)  # also defines set_result and connects the bridge client
        # A fresh kernel's first visible execute pays one-time costs (display hook, first compile); pay them now,
        # while the sandbox is still warming in the pool, not on the user's first script.
        self.kc.execute_interactive(
            "None", silent=False, store_history=False, timeout=30.0, output_hook=lambda msg: None
        )

    def set_tools(self, specs: list[dict[str, Any]]) -> None:
        """Define one stub per tool spec (and ``set_result``, ``ToolError``) in the sandbox's namespace.

        Runs in the sandbox only when the specs changed since the last install (it costs an execute, ~5 ms).
        """
        assert self.bridge
        if specs == self._installed_specs:
            return
        self._tool_specs = specs
        self._run_silent(install_code(self.bridge.address, self._token, specs, self.bridge.max_request_bytes))
        self._installed_specs = specs

    def _run_silent(self, code: str, timeout: float = 30.0) -> None:
        """Run setup code and wait for its reply on the shell channel only (output is not listened to)."""
        between = self._quiet is not None
        if between:
            self._restarted_between = self._restart_if_not_quiet() or self._restarted_between
        assert self.inbox is not None
        msg_id = self.kc.execute(code, silent=True, store_history=False, allow_stdin=False, stop_on_error=False)
        shell = self.kc.shell_channel.socket
        end = time.perf_counter() + timeout
        reply = None
        while reply is None:
            left = end - time.perf_counter()
            if left <= 0:
                raise SandboxError("sandbox setup timed out")
            if shell.poll(int(min(left, 0.1) * 1000)):
                reply = self._take_reply(msg_id)
            elif not self.is_alive():
                raise SandboxError("the sandbox kernel died during setup")
        if between:
            self._quiet = Quiet.settled(self._trusted[-1])
        if reply["content"].get("status") != "ok":
            tb = strip_ansi("\n".join(map(str, reply["content"].get("traceback", []))))
            raise SandboxError(f"sandbox setup failed:\n{tb}")

    @property
    def warning(self) -> str:
        """One line for every run when this sandbox is weaker than the full set of layers ("" otherwise)."""
        from codeagent.sandbox.host.layers import weakness

        return weakness(self.layers, self.layer_notes)

    def launcher_pid(self) -> int:
        """The pid the host started (the launcher); every process of the sandbox is below it."""
        pid = process_id(self.km)
        assert pid is not None, "the sandbox is not running"
        return pid

    def end_script(self) -> str | None:
        """Kill and reap every process the last script started; restart the kernel when that fails, or the
        script left threads running (see threads.py) or so many that the next script could not start one.
        Returns a notice on restart."""
        if self.km is None or not self._trusted or not self.is_alive():
            return None
        kernel = self._trusted[-1]
        done = kill_strays(self.launcher_pid(), set(self._trusted), kernel)
        if done.zombies and not done.left:
            with contextlib.suppress(Exception):
                self._run_silent(_REAP, 5.0)
            done = kill_strays(self.launcher_pid(), set(self._trusted), kernel, timeout=0.5)
        problem, left = None, set()
        if done.left or done.zombies:
            problem = f"{done.left + done.zombies} processes it started could not be ended"
        elif left := threads_left(kernel, self._kernel_threads, self._refuse_calls):  # idle or not
            problem = f"{len(left)} threads it started were still running after it returned ({names(kernel, left)})"
        elif self._socket_locked and self.bridge is not None and self.bridge.open_connections() == 0:
            problem = f"interrupted tool calls cut all {POOL_SIZE} tool-bridge connections (it may open no new ones)"
        if problem is None:
            self._quiet = Quiet.settled(kernel)
            return None
        log.warning("restarting the sandbox: %s", problem)
        self.restart()
        hint = " End thread pools before the script returns (pyarrow: use_threads=False)." if left else ""
        return f"SandboxRestarted: {problem}; the sandbox was restarted, so its variables are gone.{hint}"

    def _restart_if_not_quiet(self) -> str | None:
        """Before anything runs again: restart the kernel if it did more than sleep since the last script."""
        quiet, self._quiet = self._quiet, None
        if quiet is None or not self.is_alive() or (problem := quiet.broken()) is None:
            return None
        log.warning("restarting the sandbox before the next script: %s", problem)
        self.restart()
        return f"SandboxRestarted: {problem}; the sandbox was restarted before this script, so its variables are gone."

    @property
    def _socket_locked(self) -> bool:
        """The kernel may create no socket (no mount namespace): its tools use the pool opened at start."""
        return "seccomp" in self.layers and "mounts" not in self.layers

    def _refuse_calls(self) -> None:
        """Answer the tool calls waiting now with a refusal (no cell id matches a fresh random one)."""
        if self.bridge is not None:
            cell, self.bridge.expected_cell = self.bridge.expected_cell, secrets.token_hex(8)
            try:
                self.bridge.serve_pending(None)  # type: ignore[arg-type]  # every request is refused unread
            finally:
                self.bridge.expected_cell = cell

    def _enforce_workspace_quota(self) -> str | None:
        """Without a tmpfs workspace: count what the script left there; over the quota, delete it all."""
        if not self.workspace:
            return None
        p = self.policy
        size, files = workspace_usage(self.workspace, stop_after=p.workspace_inodes + 1)
        if size <= p.workspace_mb << 20 and files <= p.workspace_inodes:
            return None
        for entry in os.scandir(self.workspace):
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
        return (
            f"WorkspaceFull: the workspace held {size / 2**20:.0f} MiB in {files:,} files, over its quota of "
            f"{p.workspace_mb} MiB and {p.workspace_inodes:,} files; its files were deleted."
        )

    def _take_reply(self, msg_id: str) -> dict[str, Any] | None:
        """The shell reply to ``msg_id`` among the messages waiting now (others are dropped)."""
        assert self.inbox is not None
        found = None
        for msg in self.inbox.take(self.kc.shell_channel.socket, budgeted=False):
            if msg["parent_header"].get("msg_id") == msg_id:
                found = msg
        return found

    def _count_refusals(self) -> None:
        assert self.inbox is not None
        while self._iopub_monitor.poll(0):
            self._iopub_monitor.recv_multipart()
            self._iopub_reset = True
            self.inbox.counts[f"output messages over {self.policy.iopub_message_mb} MiB (refused unread)"] += 1

    def _start_listening(self) -> None:
        """Subscribe to the kernel's output again and wait until it confirms (ipykernel's ``iopub_welcome``)."""
        if self._listening or self.kc is None or self.inbox is None:
            return
        sock = self.kc.iopub_channel.socket
        self.idle_bytes_dropped += self.inbox.discard(sock)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        self._listening = True
        end = time.perf_counter() + SUBSCRIBE_TIMEOUT_S
        while (left := end - time.perf_counter()) > 0:
            if not sock.poll(int(left * 1000) + 1):
                break
            if any(m["header"].get("msg_type") == "iopub_welcome" for m in self.inbox.take(sock, budgeted=False)):
                return

    def _stop_listening(self) -> None:
        """Between scripts the host takes no output: unsubscribed, the kernel's publisher drops it unsent."""
        if not self._listening or self.kc is None or self.inbox is None:
            return
        sock = self.kc.iopub_channel.socket
        sock.setsockopt(zmq.UNSUBSCRIBE, b"")
        self._listening = False
        self.idle_bytes_dropped += self.inbox.discard(sock)

    def is_alive(self) -> bool:
        return bool(self.km and self.km.is_alive())

    def restart(self) -> None:
        """Kill the kernel and start a fresh one (tools are installed again)."""
        self.restarts += 1
        self._stop_kernel()
        self._start_kernel()

    def _stop_kernel(self) -> None:
        if self.kc is not None:
            with contextlib.suppress(zmq.ZMQError):
                self.kc.iopub_channel.socket.disable_monitor()
            self._iopub_monitor.close(linger=0)
            self.kc.stop_channels()
            self.kc = None
        self.inbox = None
        self._quiet = None
        if self.km is not None:
            with contextlib.suppress(Exception):
                self.km.shutdown_kernel(now=True)
            self.km.cleanup_resources()
            self.km = None

    def shutdown(self) -> None:
        self._stop_kernel()
        if self.bridge is not None:
            self.bridge.close()
            self.bridge = None
        if self.run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        if self._own_workspace and self.workspace:
            shutil.rmtree(self.workspace, ignore_errors=True)
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None

    def __enter__(self) -> SandboxKernel:
        return self if self.km else self.start()

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
        """Run ``code``; serve its tool calls with ``handler`` on this thread until it finishes.

        ``handler`` is a ``ToolDispatcher`` (anything with ``begin(BridgeRequest)``). Sync tools run on this
        thread; async tools run concurrently on the bridge's worker loop and are cancelled if still running when
        the script ends. ``silent`` runs the code without a history entry (used to hand notebook data in).

        A wall-clock overrun interrupts the script, and kills and restarts the kernel if the interrupt is
        not heeded; a dead kernel is restarted. Ctrl-C on the host interrupts the script and re-raises. Every
        loop turn does a bounded amount of work, so the wall clock is checked whatever the sockets do; messages
        the host cannot trust are counted and dropped (``ExecutionResult.misbehaved``), never raised.
        """
        restarted = self._restart_if_not_quiet() or self._restarted_between
        self._restarted_between = None
        assert self.kc is not None and self.bridge is not None and self.inbox is not None
        kc, policy, bridge, inbox = self.kc, self.policy, self.bridge, self.inbox
        out = OutputCollector(hard_limit=policy.output_hard_bytes)
        started = time.perf_counter()
        deadline = started + policy.wall_seconds
        inbox.begin_call()
        self._iopub_reset = False
        bridge_before = bridge.counts.copy()
        self._start_listening()
        # stop_on_error=False: a failed script must not make ipykernel abort the next one (there is no queue here)
        msg_id = kc.execute(code, silent=silent, store_history=not silent, allow_stdin=False, stop_on_error=False)
        bridge.expected_cell = msg_id  # calls from threads of earlier scripts are refused
        bridge_fd = bridge.fileno()
        iopub, shell, monitor = kc.iopub_channel.socket, kc.shell_channel.socket, self._iopub_monitor
        poller = zmq.Poller()
        for sock in (bridge_fd, iopub, shell, monitor):
            poller.register(sock, zmq.POLLIN)
        reply: dict[str, Any] | None = None
        replied_at = 0.0
        idle = False
        status: ExecStatus = "ok"
        notice: str | None = None
        next_alive_check = started + 0.5
        report = getattr(handler, "report", None)  # tell the trace about calls after their replies are sent
        try:
            hot_until = 0.0
            while reply is None or not idle:
                # After a tool call the next one usually follows within microseconds: poll without sleeping
                # for a moment rather than letting this (virtual) CPU halt and paying its wake-up each call.
                now = time.perf_counter()
                # time spent waiting for a person's approval (ToolDispatcher.paused_s) is not the script's
                ends = deadline + getattr(handler, "paused_s", 0.0)
                wait_ms = 0 if now < hot_until else max(0, min(100, int((ends - now) * 1000) + 1))
                ready = dict(poller.poll(wait_ms))
                if bridge_fd in ready and bridge.serve_pending(handler):
                    hot_until = time.perf_counter() + BRIDGE_HOT.window()
                    if report is not None:
                        report()
                if iopub in ready:
                    idle = self._drain_iopub(msg_id, out, on_output, on_display) or idle
                if monitor in ready:
                    self._count_refusals()
                if shell in ready:
                    found = self._take_reply(msg_id)
                    if reply is None and found is not None:
                        reply, replied_at = found, time.perf_counter()
                now = time.perf_counter()
                # the idle status is waited for unless zmq dropped the connection (then it may be lost)
                if reply is not None and not idle and self._iopub_reset and now - replied_at > IDLE_GRACE_S:
                    inbox.counts["idle statuses missing"] += 1
                    break
                if now > deadline + getattr(handler, "paused_s", 0.0):
                    status, notice = "timeout", self._stop_overrun(msg_id, out)
                    break
                if now > next_alive_check:
                    next_alive_check = now + 0.5
                    if not self.is_alive():
                        status = "crashed"
                        notice = self._recover_crash()
                        break
        except KeyboardInterrupt:
            self.interrupt_and_wait(msg_id)
            self.end_script()
            raise
        finally:
            if self.bridge is not None:
                self.bridge.cancel_pending()
                self.bridge.end_call()
                self.bridge.expected_cell = ""  # nothing is served between scripts; no cell matches ""
            if report is not None:
                report()
            self._stop_listening()
        ended = self.end_script()
        notice = "\n".join(n for n in (restarted, notice, ended) if n) or None
        over = None if self.quota_mounted else self._enforce_workspace_quota()
        notice = f"{notice}\n{over}" if notice and over else notice or over
        misbehaved = self._misbehaviour(inbox, bridge.counts - bridge_before)
        return script_result(out, reply, status, notice, policy.output_chars, started, misbehaved)

    @staticmethod
    def _misbehaviour(inbox: KernelInbox, bridge_counts: Any) -> str | None:
        counts = {**inbox.counts, **bridge_counts}
        counts.pop(PAUSED, None)  # backpressure is how a busy script is slowed down, not misbehaviour
        return misbehaviour(counts)

    def _drain_iopub(
        self,
        msg_id: str,
        out: OutputCollector,
        on_output: Callable[[str], None] | None,
        on_display: Callable[[dict[str, Any]], None] | None,
    ) -> bool:
        """Take the IOPub messages waiting now (a bounded number); True once the kernel went idle for us."""
        assert self.inbox is not None
        idle = False
        for msg in self.inbox.take(self.kc.iopub_channel.socket, budgeted=True):
            if msg["parent_header"].get("msg_id") == msg_id:
                idle = record_output(msg, out, on_output, on_display, self.inbox.counts) or idle
        return idle

    def interrupt_and_wait(self, msg_id: str, grace: float = 2.0) -> bool:
        """Interrupt the running script; True if the kernel answered within ``grace`` seconds."""
        if self.km is None or self.kc is None:
            return False
        try:
            self.km.interrupt_kernel()
        except Exception:
            return False
        end = time.perf_counter() + grace
        shell = self.kc.shell_channel.socket
        while time.perf_counter() < end:
            if shell.poll(50) and self._take_reply(msg_id) is not None:
                self._drain_iopub(msg_id, OutputCollector(hard_limit=0), None, None)
                return True
        return False

    def _stop_overrun(self, msg_id: str, out: OutputCollector) -> str:
        limit = self.policy.wall_seconds
        if self.interrupt_and_wait(msg_id):
            log.info("script over its %g s wall clock: interrupted", limit)
            return f"TimeoutError: the script ran longer than {limit:g} s (wall clock) and was interrupted."
        log.warning("script over its %g s wall clock ignored the interrupt: restarting the sandbox", limit)
        self.restart()
        return (
            f"TimeoutError: the script ran longer than {limit:g} s (wall clock) and ignored the interrupt; "
            "the sandbox was killed and restarted, so its variables are gone."
        )

    def _recover_crash(self) -> str:
        code = exit_status(self.km)
        log.warning("the sandbox kernel died during a script (exit status %s): restarting it", code)
        self.restart()
        how = f" (exit status {code})" if code is not None else ""
        return (
            f"SandboxCrashed: the sandbox kernel died during the script{how}, e.g. out of memory or killed; "
            "it was restarted, so its variables are gone."
        )


def iopub_queue_messages(policy: SandboxPolicy) -> int:
    """The zmq receive queue (RCVHWM counts messages): at most ``iopub_queued_mb`` of the largest messages."""
    return max(2, min(policy.iopub_queue, policy.iopub_queued_mb // policy.iopub_message_mb))


def workspace_usage(path: str, stop_after: int) -> tuple[int, int]:
    """Bytes and entries under ``path`` (not following links), counting at most ``stop_after`` entries."""
    size = files = 0
    stack = [path]
    while stack and files < stop_after:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as entries:
            for entry in entries:
                files += 1
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    size += st.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                if files >= stop_after:
                    break
    return size, files
