"""``%codeagent --sandbox-info``: which protections are active on this machine, and why any is missing."""

from __future__ import annotations

from codeagent.sandbox.host.layers import LOSSES, REMEDIES
from codeagent.sandbox.host.manager import SandboxError, layers_for
from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.sandbox.protocol.launch_spec import ALL_LAYERS


def sandbox_info(policy: SandboxPolicy) -> str:
    """A short report: the mode, each layer active or not (with the reason), and the limits."""
    try:
        layers, notes = layers_for(policy)
    except SandboxError as e:
        return f"codeagent sandbox (mode {policy.mode}) on {_platform()}: refuses to run generated code here.\n  {e}"
    lines = [f"codeagent sandbox (mode {policy.mode}) on {_platform()}:"]
    probe = _probe_details()
    for name in ALL_LAYERS:
        mark = "✓" if name in layers else "✗"
        detail = probe.get(name, "")
        lines.append(f"  {mark} {name}{': ' + detail if detail else ''}")
        if name not in layers:
            remedy = REMEDIES.get(name)
            lines.append(f"      without it: {LOSSES[name]}{'. Remedy: ' + remedy if remedy else ''}")
    lines.append(f"  ✗ cgroup: {cgroup_status()}")
    lines.append(
        "      without it: the memory of all the sandbox's processes together is not capped (the memory limit is "
        "per process); the number of processes is bounded by RLIMIT_NPROC instead"
    )
    lines.extend(f"  note: {n}" for n in notes)
    if set(layers) <= {"rlimits"}:
        lines.append("  WARNING: no lockdown layer is active; generated code runs with your user's rights.")
    lines.append(f"  limits: {applied_limits(policy, layers)}")
    quota = f"{policy.workspace_mb} MiB and {policy.workspace_inodes:,} files"
    lines.append(
        f"  workspace: a tmpfs of {quota} (the kernel refuses more: ENOSPC)"
        if "mounts" in layers
        else f"  workspace: a host directory; {quota} accounted after each script (over it, its files are deleted)"
    )
    lines.append(
        f"  host limits: bridge requests {policy.bridge_request_mb} MiB each, {policy.bridge_buffer_mb} MiB held in "
        f"all, {policy.bridge_connections} connections, {policy.bridge_queued_reply_mb} MiB of unread replies; "
        f"output {policy.iopub_call_mb} MiB/script, messages {policy.iopub_message_mb} MiB, none between scripts; "
        f"trace keeps {policy.trace_value_chars:,} chars of arguments"
    )
    return "\n".join(lines)


def cgroup_status() -> str:
    """Whether a cgroup v2 subtree with the pids and memory controllers is delegated to this process (not
    used yet either way: the line says which)."""
    import os

    try:
        with open("/proc/self/cgroup") as f:
            own = next((line.split("::", 1)[1].strip() for line in f if line.startswith("0::")), None)
        with open("/sys/fs/cgroup/cgroup.controllers") as f:
            controllers = set(f.read().split())
    except OSError:
        return "not used; no cgroup v2 hierarchy at /sys/fs/cgroup (cgroup v1, or not Linux)"
    directory = os.path.join("/sys/fs/cgroup", (own or "/").lstrip("/"))
    if not {"pids", "memory"} <= controllers or not os.access(directory, os.W_OK):
        return f"not used; no writable cgroup v2 delegation with pids and memory here ({directory})"
    return f"not used yet, although {directory} is a writable cgroup v2 delegation with pids and memory"


def applied_limits(policy: SandboxPolicy, layers: list[str]) -> str:
    """The limits that are really applied with these layers, in words."""
    if "rlimits" not in layers:
        return "none (no resource limit can be applied here)"
    parts = [
        f"memory {policy.memory_mb} MiB",
        f"CPU {policy.cpu_seconds} s/script",
        f"wall clock {policy.wall_seconds:g} s/script",
        f"files {policy.max_file_mb} MiB",
        f"{policy.max_open_files} open files",
    ]
    if "nproc" in layers:
        parts.insert(3, f"{policy.max_processes} processes")
    return ", ".join(parts)


def _platform() -> str:
    from codeagent.sandbox.guest.lockdown import probe
    from codeagent.sandbox.host.layers import platform_name

    try:
        return platform_name(probe())
    except Exception as e:  # a probe failure must not break the report
        return f"an unknown platform (probe failed: {e})"


def _probe_details() -> dict[str, str]:
    try:
        from codeagent.sandbox.guest.lockdown import probe
    except ImportError:
        return {}
    try:
        return {status.name: status.detail for status in probe()}
    except Exception as e:  # a probe failure must not break the report
        return {"probe": f"failed: {e}"}
