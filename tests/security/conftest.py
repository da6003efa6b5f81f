"""Fixtures for the attack suite: a tightly limited sandbox, the real agent path, and a host worth attacking.

The host side holds: fake secrets in the environment and in files (``~/.ssh`` of the run's private HOME, a notebook
directory's ``.env``), loopback TCP/UDP listeners and Unix sockets (path and abstract) that count what reaches
them, and a real notebook kernel (ipykernel over TCP, connection file in the Jupyter runtime directory) with
a variable the attacks must not change. ``host.assert_unaffected()`` checks all of it after each attack.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeagent.sandbox.host.manager import SandboxKernel
from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.testing.messages_server import MessagesServer
from tests.security.attack import AttackRunner, HostTools, tight_policy
from tests.security.hostside import Canaries, HostGuard, HostSecrets, NotebookKernel, is_running
from tests.security.listeners import Listeners

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "codeagent"


@pytest.fixture(scope="session")
def token() -> str:
    return secrets.token_hex(6)


@pytest.fixture(scope="session")
def host_secrets(token: str) -> Iterator[HostSecrets]:
    env = {
        "CODEAGENT_CANARY_SECRET": f"ENVSECRET-{token}",
        "AWS_SECRET_ACCESS_KEY": f"AWSSECRET-{token}",
        "GITHUB_TOKEN": f"ghp_GHSECRET{token}",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield HostSecrets(env)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def notebook_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory the user's notebook runs in (the notebook kernel's cwd)."""
    return tmp_path_factory.mktemp("notebook")


@pytest.fixture(scope="session")
def canaries(token: str, notebook_dir: Path) -> Iterator[Canaries]:
    site_packages = Path(sysconfig.get_paths()["purelib"])
    c = Canaries.create(token, notebook_dir, site_packages, PACKAGE_DIR)
    yield c
    c.remove()


@pytest.fixture(scope="session")
def listeners(token: str) -> Iterator[Listeners]:
    agent_dir = Path("/tmp") / f"ssh-codeagent-{token}"
    agent_dir.mkdir(mode=0o700)
    found = Listeners.start(str(agent_dir / f"agent.{os.getpid()}"), f"codeagent-agent-{token}")
    saved = os.environ.get("SSH_AUTH_SOCK")
    os.environ["SSH_AUTH_SOCK"] = str(found.agent.address)
    yield found
    found.stop()
    agent_dir.rmdir()
    if saved is None:
        os.environ.pop("SSH_AUTH_SOCK", None)
    else:
        os.environ["SSH_AUTH_SOCK"] = saved


@pytest.fixture(scope="session")
def notebook(notebook_dir: Path, host_secrets: HostSecrets, listeners: Listeners) -> Iterator[NotebookKernel]:
    """The user's notebook kernel: it has the secrets in its environment and a variable worth changing."""
    kernel = NotebookKernel(notebook_dir)
    yield kernel
    kernel.shutdown()


@pytest.fixture
def host(
    listeners: Listeners, canaries: Canaries, notebook: NotebookKernel, host_secrets: HostSecrets
) -> Iterator[HostGuard]:
    guard = HostGuard(listeners, canaries, notebook, host_secrets)
    yield guard
    guard.restore()


@pytest.fixture(scope="module")
def policy() -> SandboxPolicy:
    return tight_policy()


@pytest.fixture(scope="module")
def sandbox(policy: SandboxPolicy, host_secrets: HostSecrets, listeners: Listeners) -> Iterator[SandboxKernel]:
    """The module's sandbox, started after the host's secrets are in its environment."""
    sb = SandboxKernel(policy).start()
    yield sb
    sb.shutdown()


@pytest.fixture(scope="module")
def model() -> Iterator[MessagesServer]:
    with MessagesServer() as server:
        yield server


@pytest.fixture(scope="module")
def tools() -> HostTools:
    return HostTools()


@pytest.fixture(scope="module")
def attack(sandbox: SandboxKernel, model: MessagesServer, tools: HostTools) -> AttackRunner:
    """``attack(code)`` runs ``code`` as the model's script through Agent → SandboxKernel; returns an Attack."""
    return AttackRunner(sandbox, model, tools)


@pytest.fixture
def calls_before(tools: HostTools) -> int:
    return len(tools.calls)


@pytest.fixture
def victim_process(token: str) -> Iterator[subprocess.Popen[bytes]]:
    """An innocent host process (same uid as the notebook) for kill and ptrace attempts."""
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import time; time.sleep(600)  # victim-{token}"], start_new_session=True
    )
    yield proc
    if is_running(proc.pid):
        proc.send_signal(signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):  # a tracer left by an attack delays the reaping
        proc.wait(timeout=10)
