"""The sandbox starts whatever the working directory and wherever the interpreter lives."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from codeagent.sandbox.host.manager import PACKAGE_ROOT

CALL = """
import os
from codeagent.sandbox.host.manager import SandboxKernel
class Refuse:
    def begin(self, request):
        raise AssertionError("no tools here")
with SandboxKernel() as sb:
    print("LAYERS", ",".join(sb.layers))
    print(sb.execute("import os; print('uid', os.getuid(), 6 * 7)", Refuse()).output.strip())
"""


@pytest.fixture
def venv_in_tmp() -> Path:
    """A venv directly under /tmp (with this interpreter's packages), as a workshop image might have."""
    path = Path(tempfile.mkdtemp(prefix="ca-venv-", dir="/tmp"))
    try:
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(path)],
                       check=True, timeout=120)  # fmt: skip
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_venv_in_tmp_with_tmp_as_working_directory(venv_in_tmp: Path) -> None:
    """Regression: with /tmp on sys.path the mount layer bound the host's /tmp read-only over the sandbox's
    own and could not make the workspace's mount point ("Read-only file system")."""
    env = dict(os.environ, PYTHONPATH=f"{PACKAGE_ROOT}{os.pathsep}/tmp", TMPDIR="/tmp")
    done = subprocess.run(
        [str(venv_in_tmp / "bin" / "python"), "-c", CALL], cwd="/tmp", env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("42"), done.stdout
    if sys.platform.startswith("linux") and os.geteuid() == 0:
        assert "uid 0 " not in done.stdout, "the sandbox kept uid 0"
