"""Limits and lockdown choices for the sandbox kernel."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SandboxMode = Literal["auto", "namespaces", "landlock", "unsandboxed"]


class SandboxPolicy(BaseModel):
    """What the sandbox may use. Every field is a ``CodeAgent`` trait (``c.CodeAgent.memory_mb``; ``mode`` is
    ``sandbox_mode``, ``wall_seconds`` is ``timeout``); ``--timeout`` overrides ``wall_seconds`` for one call."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    mode: SandboxMode = Field(
        "auto",
        description="auto: strongest available; namespaces: require user namespaces; landlock: Landlock+seccomp "
        "only; unsandboxed: no lockdown at all (must be chosen explicitly, warned on every run).",
    )
    memory_mb: int = Field(2048, ge=64, description="Address-space limit of the sandbox kernel.")
    cpu_seconds: int = Field(60, ge=1, description="CPU-time budget of one script.")
    wall_seconds: float = Field(120.0, gt=0, description="Wall-clock limit of one script; then interrupt, kill.")
    max_processes: int = Field(64, ge=4, description="Processes/threads the sandbox uid may have.")
    max_file_mb: int = Field(100, ge=1, description="Largest file the script may write.")
    max_open_files: int = Field(256, ge=32, description="Open file descriptors.")
    output_chars: int = Field(
        20_000, ge=200, description="Script output (and direct tool results) shown to the model, then truncated."
    )
    output_hard_bytes: int = Field(
        8_000_000, ge=10_000, description="Output kept on the host at most; the rest is counted and dropped."
    )
    sandbox_uid: int = Field(65534, ge=1, description="Unprivileged uid the sandbox runs as when the host is root.")
    allow_root: bool = Field(
        False,
        description="Run the sandbox as uid 0 when it cannot drop root (no namespaces and a Python an "
        "unprivileged uid cannot reach); warned on every run. Off: refuse, naming the remedy.",
    )
    allow_no_seccomp: bool = Field(
        False,
        description="Run the sandbox on a kernel that cannot load seccomp filters (ptrace, io_uring, bpf, "
        "keyctl, new namespaces stay callable inside the namespaces); warned on every run. Off: refuse.",
    )
    bridge_request_mb: int = Field(
        256, ge=1, description="Largest tool-bridge message from the sandbox (tool arguments, set_result)."
    )
    bridge_reply_mb: int = Field(512, ge=1, description="Largest tool result or --data value sent into the sandbox.")
    # Host-side limits that hold whatever the script does (each is counted and reported when it bites).
    bridge_buffer_mb: int = Field(
        320, ge=1, description="Bridge request bytes the host holds at once over all connections (partial frames)."
    )
    bridge_connections: int = Field(32, ge=2, description="Open tool-bridge connections per sandbox.")
    bridge_queued_reply_mb: int = Field(
        16, ge=1, description="Unsent reply bytes per connection before the host stops reading its requests."
    )
    iopub_call_mb: int = Field(
        64, ge=1, description="IOPub (output, display) bytes accepted during one script; the rest is dropped."
    )
    iopub_message_mb: int = Field(
        8, ge=1, description="Largest single IOPub message; a larger one is refused on the wire, unread."
    )
    iopub_queue: int = Field(
        32, ge=8, description="IOPub messages queued on the host while it runs a tool; more are dropped by zmq."
    )
    iopub_queued_mb: int = Field(
        64, ge=1, description="IOPub bytes queued on the host while it runs a tool (with the largest messages)."
    )
    trace_value_chars: int = Field(
        2_000, ge=100, description="Characters of each tool call's arguments the trace keeps (then a preview)."
    )
    workspace_mb: int = Field(512, ge=1, description="Bytes the workspace may hold (size-limited tmpfs).")
    workspace_inodes: int = Field(10_000, ge=100, description="Files and directories the workspace may hold.")

    def merged(self, **overrides: object) -> SandboxPolicy:
        """A copy with the non-None overrides applied (validated)."""
        data = self.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return SandboxPolicy.model_validate(data)
