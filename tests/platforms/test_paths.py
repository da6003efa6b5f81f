"""The sandbox starts whatever the working directory and wherever the interpreter lives."""

from __future__ import annotations

import os
import shutil
import site
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
        # when this interpreter is itself a venv's, --system-site-packages reaches only its base's packages
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        site_dir = path / "lib" / version / "site-packages"
        (site_dir / "this-interpreters-packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
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


def test_a_0700_directory_above_what_the_sandbox_reads_is_found() -> None:
    """Without namespaces a root host's sandbox uid must traverse every directory above the prefix and the
    package: the first closed one is named (not just /root), with a remedy that fits it."""
    from codeagent.sandbox.host.layers import closed_directories, closed_remedy

    closed = Path(tempfile.mkdtemp(prefix="ca-closed-", dir="/tmp"))  # 0700, like mktemp -d
    try:
        (closed / "venv" / "lib").mkdir(parents=True)
        found = closed_directories(["/usr/lib", str(closed / "venv"), str(closed / "venv" / "lib")])
        assert found == [(str(closed), str(closed / "venv"))]
        assert f"chmod o+x {closed}" in closed_remedy(found)
        closed.chmod(0o711)
        assert closed_directories(["/usr/lib", str(closed / "venv")]) == []
        both = closed_remedy([("/root", "/root/.pyenv/versions/3.11.9"), *found])
        assert "outside /root" in both and f"chmod o+x {closed} " in both
    finally:
        shutil.rmtree(closed)


INFO = """
from codeagent.sandbox.host.info import sandbox_info
from codeagent.sandbox.host.policy import SandboxPolicy
print(sandbox_info(SandboxPolicy()))
"""


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and os.geteuid() == 0 and shutil.which("/usr/bin/python3")),
    reason="simulates a root container without user namespaces: needs root",
)
def test_sandbox_info_predicts_a_package_in_a_0700_directory(tmp_path: Path) -> None:
    """Regression: --sandbox-info checked only the interpreter's prefix, said the sandbox runs, and then it
    refused to start because the sandbox uid could not reach codeagent inside a 0700 mktemp -d."""
    closed = Path(tempfile.mkdtemp(prefix="ca-closed-", dir="/tmp"))  # 0700, like mktemp -d
    try:
        shutil.copytree(PACKAGE_ROOT + "/codeagent", closed / "repo" / "codeagent",
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        (closed / "repo").chmod(0o755)
        simulate = Path(__file__).with_name("simulate.py")
        env = dict(os.environ, PYTHONPATH=str(closed / "repo"), PYTHONDONTWRITEBYTECODE="1")
        done = subprocess.run(
            [sys.executable, str(simulate), "docker", "--", sys.executable, "-c", INFO], cwd="/", env=env,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert "refuses to run generated code here" in done.stdout, done.stdout
        assert f"{closed} (above {closed}/repo)" in done.stdout and f"chmod o+x {closed}" in done.stdout, done.stdout
    finally:
        shutil.rmtree(closed, ignore_errors=True)


def test_a_codeagent_folder_in_the_working_directory_is_not_the_package(tmp_path: Path) -> None:
    """Regression: the launcher ran as ``python -m`` in the notebook's folder, so after ``%cd`` into a folder
    holding a ``codeagent`` folder (another checkout, an unpacked sdist) that folder shadowed the package the
    host runs: the sandbox failed to start ("cannot import name 'kernel_entry'") or ran its code before locking
    down."""
    shadow = tmp_path / "codeagent"
    (shadow / "sandbox" / "guest").mkdir(parents=True)
    marker = tmp_path / "shadow-ran"
    for init in (shadow, shadow / "sandbox", shadow / "sandbox" / "guest"):
        (init / "__init__.py").write_text(f"open({str(marker)!r}, 'a').write({str(init)!r} + '\\n')\n")
    (shadow / "sandbox" / "guest" / "launcher.py").write_text("raise SystemExit('the shadow launcher ran')\n")
    env = dict(os.environ, PYTHONPATH=PACKAGE_ROOT)
    moved = CALL.replace(
        "with SandboxKernel()", f"os.chdir({str(tmp_path)!r})  # %cd, after the import\nwith SandboxKernel()"
    )
    done = subprocess.run([sys.executable, "-c", moved], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("42"), done.stdout
    assert not marker.exists(), marker.read_text()
