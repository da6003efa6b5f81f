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
    bridge_request_mb: int = Field(
        256, ge=1, description="Largest tool-bridge message from the sandbox (tool arguments, set_result)."
    )
    bridge_reply_mb: int = Field(512, ge=1, description="Largest tool result or --data value sent into the sandbox.")

    def merged(self, **overrides: object) -> SandboxPolicy:
        """A copy with the non-None overrides applied (validated)."""
        data = self.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return SandboxPolicy.model_validate(data)
