"""A real Jupyter Kernel Gateway on 127.0.0.1 with a token, serving codeagent's remote kernelspec (for the
tests, the benchmarks and trying gateway sandboxes by hand).

The gateway runs from its own environment (its pins are not ours): ``$CODEAGENT_TEST_KG`` names its
``jupyter-kernelgateway`` executable (``.ci/run`` makes that venv), else one on PATH.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from codeagent.sandbox.host.manager import PACKAGE_ROOT
from codeagent.sandbox.host.remote_kernel import install


@dataclass
class Gateway:
    """A running gateway: its URL, token and the folder holding its runtime dir, kernelspec and log."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]

    def kernels(self) -> list[dict[str, object]]:
        response = httpx.get(f"{self.url}/api/kernels", headers=self.headers)
        response.raise_for_status()
        kernels: list[dict[str, object]] = response.json()
        return kernels

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def log(self) -> str:
        return (self.root / "gateway.log").read_text(errors="replace")


class NoGateway(RuntimeError):
    """No jupyter-kernelgateway executable was found."""


#: Where each gateway's executable is named: Kernel Gateway and Enterprise Gateway (each in its own venv).
EXECUTABLES = {
    "kg": ("CODEAGENT_TEST_KG", "jupyter-kernelgateway"),
    "eg": ("CODEAGENT_TEST_EG", "jupyter-enterprisegateway"),
}


def gateway_executable(flavor: str = "kg") -> str:
    variable, name = EXECUTABLES[flavor]
    exe = os.environ.get(variable) or shutil.which(name)
    if not exe or not os.path.exists(exe):
        raise NoGateway(f"no {name}: install it in its own venv and set {variable} to its path (.ci/run does this)")
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gateway(
    transport: str = "ipc", cull_idle_s: int = 0, flavor: str = "kg", iopub_rate_limit: bool = True
) -> Gateway:
    """Start a gateway in a temporary home (its runtime dir, kernelspecs and logs live there); ``flavor`` "kg"
    is Jupyter Kernel Gateway, "eg" Enterprise Gateway in local mode. ``iopub_rate_limit=False`` turns off the
    server's own output rate limit (1 MB/s by default), as a gateway may be configured."""
    exe = gateway_executable(flavor)
    # Directly under /tmp, whatever TMPDIR says: the kernels' ipc sockets live in its runtime dir, and a Unix
    # socket path must stay under 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="kg-", dir="/tmp" if os.path.isdir("/tmp") else None))
    prefix = root / "prefix"
    install(prefix=str(prefix))
    (root / "home").mkdir()
    token = secrets.token_hex(8)
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root / "home"),
        "JUPYTER_PATH": str(prefix / "share" / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(root / "rt"),
        "JUPYTER_DATA_DIR": str(root / "home" / "data"),
        "JUPYTER_CONFIG_DIR": str(root / "home" / "config"),
        # the kernels import codeagent from this checkout, however it is installed
        "PYTHONPATH": PACKAGE_ROOT,
    }
    app = "KernelGatewayApp" if flavor == "kg" else "EnterpriseGatewayApp"
    argv = [exe, f"--{app}.ip=127.0.0.1", f"--{app}.port={port}", f"--{app}.auth_token={token}"]
    if flavor == "kg":
        argv += [
            "--KernelGatewayApp.env_process_whitelist=PYTHONPATH",
            "--JupyterWebsocketPersonality.list_kernels=True",  # the tests look for leftover kernels
        ]
    else:  # these tests run as root, which Enterprise Gateway refuses to start kernels for by default
        argv += ["--EnterpriseGatewayApp.inherited_envs=PYTHONPATH", "--EnterpriseGatewayApp.unauthorized_users=set()"]
    argv.append(f"--KernelManager.transport={transport}")
    if not iopub_rate_limit:
        argv.append("--ZMQChannelsWebsocketConnection.limit_rate=False")
    if cull_idle_s:
        argv += [
            f"--MappingKernelManager.cull_idle_timeout={cull_idle_s}",
            "--MappingKernelManager.cull_interval=1",
            "--MappingKernelManager.cull_connected=False",
        ]
    log = open(root / "gateway.log", "wb")  # noqa: SIM115 - lives with the process
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    gateway = Gateway(f"http://127.0.0.1:{port}", token, root, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited at start:\n{gateway.log()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{gateway.url}/api/kernelspecs", headers=gateway.headers, timeout=1).status_code == 200:
                return gateway
        time.sleep(0.2)
    stop_gateway(gateway)
    raise RuntimeError("the gateway did not start within 30 s")


def stop_gateway(gateway: Gateway) -> None:
    leftover = remote_processes(gateway)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(gateway.process.pid, 15)
    try:
        gateway.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(gateway.process.pid, 9)
        gateway.process.wait()
    # kernels the gateway could not shut down in time die with their host (the launcher watches it)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and alive(leftover):
        time.sleep(0.2)
    shutil.rmtree(gateway.root, ignore_errors=True)


def remote_processes(gateway: Gateway) -> set[int]:
    """Live processes started for this gateway's kernels: the remote launchers (their command line names the
    gateway's runtime dir) and everything below them."""
    parents: dict[int, int] = {}
    roots: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        if "codeagent.sandbox.host.remote_kernel" in cmdline and str(gateway.root) in cmdline:
            roots.add(int(entry.name))
    found = set(roots)
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in found and pid not in found:
                found.add(pid)
                changed = True
    return found


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)}


def _state(pid: int) -> str:
    try:
        return next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State"))
    except (OSError, StopIteration):
        return "zombie"


__all__ = ["Gateway", "NoGateway", "alive", "remote_processes", "start_gateway", "stop_gateway"]
