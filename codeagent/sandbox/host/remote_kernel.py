"""The kernelspec a Jupyter Kernel / Enterprise Gateway runs for codeagent sandboxes (on the gateway's machine).

It plays the host's part there: chooses the lockdown layers this machine supports, writes a launch spec into a
private run directory and starts :mod:`codeagent.sandbox.guest.launcher` with it, then waits, forwarding the
gateway's signals (interrupt) and cleaning up. The kernel reports the applied layers to the notebook through its
environment (``CODEAGENT_LAYERS``), read before any script runs.

Transport: with ``--KernelManager.transport=ipc`` on the gateway, the kernel runs with every layer, network
namespace included; its sockets live in the private run directory and the gateway's socket paths are symlinks
to them. With TCP (the default, and what Enterprise Gateway's remote pods use) the kernel must stay reachable
over the network, so the network namespace, Landlock and seccomp (which refuse TCP) are left out and said so;
in a Kubernetes pod the pod's NetworkPolicy is then the network layer (see ``deploy/``).

    python -m codeagent.sandbox.host.remote_kernel -f CONNECTION_FILE        # what the kernelspec runs
    python -m codeagent.sandbox.host.remote_kernel install [--prefix P] [--user] [--name N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from typing import Any

from codeagent.sandbox.host.launch import launcher_argv
from codeagent.sandbox.host.layers import SandboxUnavailable
from codeagent.sandbox.host.layers import choose_layers as choose
from codeagent.sandbox.host.manager import build_launch_spec
from codeagent.sandbox.host.policy import SandboxPolicy

KERNEL_NAME = "codeagent-sandbox"
_LIMIT_KEYS = ("memory_mb", "cpu_seconds", "max_processes", "max_file_mb", "max_open_files")
#: Layers that keep the kernel's TCP sockets reachable by the gateway.
TCP_LAYERS = ("rlimits", "capabilities", "no_new_privs")
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def policy_from_env(env: dict[str, str]) -> SandboxPolicy:
    """Limits asked for by the notebook (KERNEL_CODEAGENT_LIMITS, validated); the mode is the gateway's own
    (CODEAGENT_SANDBOX_MODE in the kernelspec), never the client's."""
    limits: dict[str, Any] = {}
    with contextlib.suppress(ValueError, TypeError):
        asked = json.loads(env.get("KERNEL_CODEAGENT_LIMITS", "{}"))
        if isinstance(asked, dict):
            limits = {k: asked[k] for k in _LIMIT_KEYS if isinstance(asked.get(k), int)}
    mode = env.get("CODEAGENT_SANDBOX_MODE", "auto")
    if mode == "unsandboxed":
        mode = "unsandboxed" if env.get("CODEAGENT_ALLOW_UNSANDBOXED") == "1" else "auto"
    return SandboxPolicy(mode=mode, **limits)


def prepare(connection_file: str, policy: SandboxPolicy, run_dir: str, workspace: str) -> tuple[str, dict[str, Any]]:
    """Write the kernel's connection file and launch spec into ``run_dir``; returns the spec's path and the
    report of what will be applied."""
    with open(connection_file, encoding="utf-8") as f:
        info = json.load(f)
    kernel_file = os.path.join(run_dir, "kernel.json")
    ports = [int(info[k]) for k in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")]
    notes: list[str] = []
    if info.get("transport") == "ipc":
        layers, notes = choose(policy.mode)
        private_ip = os.path.join(run_dir, "k")
        for port in ports:
            link = f"{info['ip']}-{port}"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
            os.symlink(f"{private_ip}-{port}", link)
        info = {**info, "ip": private_ip}
    else:
        available, _ = choose("auto") if policy.mode != "unsandboxed" else ([], [])
        layers = [name for name in TCP_LAYERS if name in available]
        notes.append(
            "the gateway reaches this kernel over TCP, so the network namespace, Landlock and seccomp are off "
            "(the script can open network connections); run the gateway with --KernelManager.transport=ipc, "
            "or rely on the pod's NetworkPolicy"
        )
    fd = os.open(kernel_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(info, f)
    report = {"layers": layers, "notes": notes, "platform": f"{sys.platform}, uid {os.geteuid()}"}
    spec = build_launch_spec(policy, kernel_file, workspace, run_dir, layers)
    if info.get("transport") != "ipc" and spec["uid"] is not None:
        # Already a weak mode (see the note): as before, the kernel stays uid 0 (no capabilities) when the
        # sandbox uid cannot reach this Python, instead of refusing (lockdown._drop_root_directly).
        spec["allow_root"] = True
        notes.append(f"as root it may stay uid 0 (no capabilities) if uid {spec['uid']} cannot reach this Python")
    spec["env"]["CODEAGENT_LAYERS"] = json.dumps(report)
    launch = os.path.join(run_dir, "launch.json")
    fd = os.open(launch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(spec, f)
    return launch, report


def run(connection_file: str) -> int:
    """Start the locked-down kernel for the gateway and wait for it; returns its exit status."""
    try:
        policy = policy_from_env(dict(os.environ))
    except ValueError as e:
        sys.stderr.write(f"codeagent remote kernel: bad limits: {e}\n")
        return 2
    run_dir = tempfile.mkdtemp(prefix="codeagent-remote-")
    workspace = tempfile.mkdtemp(prefix="codeagent-ws-")
    try:
        try:
            launch, _ = prepare(connection_file, policy, run_dir, workspace)
        except SandboxUnavailable as e:
            sys.stderr.write(f"codeagent remote kernel: {e}\n")
            return 70
        with open(launch, encoding="utf-8") as f:
            spec_env = json.load(f)["env"]
        child = subprocess.Popen(
            launcher_argv(launch),
            env=spec_env,
            start_new_session=True,  # the gateway signals our group: forward once, not twice
        )

        def forward(signum: int, _frame: Any) -> None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

        for sig in FORWARDED:
            signal.signal(sig, forward)
        return _wait(child)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(workspace, ignore_errors=True)


def _wait(child: subprocess.Popen[bytes]) -> int:
    """Wait for the kernel; if the gateway that started us dies first, take the kernel down with us (the
    launcher watches *its* parent, which is this process)."""
    poller = select.poll()
    gateway_fd = None
    with contextlib.suppress(OSError):
        gateway_fd = os.pidfd_open(os.getppid())
        poller.register(gateway_fd, select.POLLIN)
    child_fd = os.pidfd_open(child.pid)
    poller.register(child_fd, select.POLLIN)
    while True:
        try:
            ready = {fd for fd, _ in poller.poll()}
        except InterruptedError:
            continue
        if child_fd in ready:
            return child.wait()
        if gateway_fd is not None and gateway_fd in ready:
            child.kill()
            return child.wait()


def kernelspec(mode: str = "auto") -> dict[str, Any]:
    return {
        "argv": [sys.executable, "-m", "codeagent.sandbox.host.remote_kernel", "-f", "{connection_file}"],
        "display_name": "codeagent sandbox",
        "language": "python",
        "interrupt_mode": "signal",
        "env": {"CODEAGENT_SANDBOX_MODE": mode},
        "metadata": {"codeagent": {"remote_launcher": True}},
    }


def install(name: str = KERNEL_NAME, *, prefix: str | None = None, user: bool = False, mode: str = "auto") -> str:
    """Install the kernelspec (as ``jupyter kernelspec install`` would); returns its directory."""
    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "kernel.json"), "w", encoding="utf-8") as f:
            json.dump(kernelspec(mode), f, indent=1)
        return str(KernelSpecManager().install_kernel_spec(tmp, name, user=user, prefix=prefix))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["install"]:
        parser = argparse.ArgumentParser(prog="python -m codeagent.sandbox.host.remote_kernel install")
        parser.add_argument("--name", default=KERNEL_NAME)
        parser.add_argument("--prefix")
        parser.add_argument("--user", action="store_true")
        parser.add_argument("--mode", default="auto", choices=["auto", "namespaces", "landlock"])
        ns = parser.parse_args(args[1:])
        print(install(ns.name, prefix=ns.prefix, user=ns.user, mode=ns.mode))
        return 0
    parser = argparse.ArgumentParser(prog="python -m codeagent.sandbox.host.remote_kernel")
    parser.add_argument("-f", dest="connection_file", required=True)
    return run(parser.parse_args(args).connection_file)


if __name__ == "__main__":
    raise SystemExit(main())
