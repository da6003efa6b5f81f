"""What one script did, as the host saw it (:class:`ExecutionResult`), built the same way for local and gateway
sandboxes (:func:`script_result`); and the error a sandbox that cannot start or be set up raises."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from codeagent.sandbox.host.output import OutputCollector, strip_ansi

ExecStatus = Literal["ok", "error", "timeout", "crashed", "interrupted"]


class SandboxError(RuntimeError):
    """The sandbox could not be started or set up."""


@dataclass
class ExecutionResult:
    """What one script did, as the host saw it."""

    output: str  # what the model is shown (capped)
    status: ExecStatus
    error_name: str | None = None
    duration_s: float = 0.0
    output_chars: int = 0  # before capping
    displays: list[dict[str, Any]] = field(default_factory=list)
    notice: str | None = None  # e.g. "the sandbox was restarted"
    misbehaved: str | None = None  # what the host dropped from the sandbox (bad messages, limits), if anything


def script_result(
    out: OutputCollector,
    reply: dict[str, Any] | None,
    status: ExecStatus,
    notice: str | None,
    output_chars: int,
    started: float,
    misbehaved: str | None = None,
) -> ExecutionResult:
    """What one script did, from its collected output and execute_reply (both from the untrusted sandbox)."""
    error_name = None
    if reply is not None and reply["content"].get("status") == "error":
        status = "error"
        error_name = str(reply["content"].get("ename"))[:200]
        if out.traceback is None:
            out.traceback = strip_ansi("\n".join(map(str, reply["content"].get("traceback", []))))[: out.hard_limit]
    if notice:
        out.notices += notice.splitlines()
    return ExecutionResult(
        output=out.for_model(output_chars),
        status=status,
        error_name=error_name or ({"timeout": "TimeoutError", "crashed": "SandboxCrashed"}.get(status)),
        duration_s=time.perf_counter() - started,
        output_chars=out.total_chars,
        displays=out.displays,
        notice=notice,
        misbehaved=misbehaved,
    )
