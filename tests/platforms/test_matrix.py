"""The platform matrix in CI: every mode's --sandbox-info and call, and a subset of the attacks in the modes
that matter most (``python -m tests.platforms.matrix`` measures the whole suite in every mode)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.platforms.matrix import DEBIAN_PYTHON, MODES, PYTHON_UNDER_CLOSED_ROOT, Matrix, Mode, Result, table

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which(DEBIAN_PYTHON)),
        reason="the matrix simulates root and non-root platforms: needs root and Debian's /usr/bin/python3",
    ),
]
#: Modes whose attack subset runs in CI: the ones that run without an opt-in although a layer or the user
#: namespace is missing (the fallback layers must hold there: 0 attacks may succeed).
ATTACKED = {
    "Docker (no userns), root, Debian python",
    "Docker (no userns) or Ubuntu 24.04, user",
    "VM without userns, root (CAP_SYS_ADMIN)",
    "no Landlock (gVisor), user",
}
#: Tests known to fail in a mode without an explicit opt-in (none now; reported in the README's table).
KNOWN: dict[str, set[str]] = {}


RESULTS: list[Result] = []


@pytest.fixture(scope="module")
def matrix() -> Iterator[Matrix]:
    m = Matrix()
    yield m
    m.close()
    print("\n" + table(RESULTS))  # the mode x attacks table (shown with -s)


@pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])
def test_mode(matrix: Matrix, mode: Mode) -> None:
    if mode.needs_python_under_root and not PYTHON_UNDER_CLOSED_ROOT:
        pytest.skip("the mode needs the interpreter running the tests under a 0700 /root (as pyenv's is in CI)")
    result = matrix.measure(mode, "subset" if mode.name in ATTACKED else "none")
    RESULTS.append(result)
    assert result.platform_line.startswith("codeagent sandbox (mode auto) on "), result.info
    assert bool(result.call.get("ran")) == mode.runs, (result.call, result.info)
    if not mode.runs:
        assert "refuses to run generated code here" in result.platform_line, result.info
        assert "%config CodeAgent." in result.info, "a refusal names the remedy or the explicit opt-in"
        return
    uid = str(result.call["uid"])
    assert (uid == "0") == mode.allow_root, f"the sandbox ran as uid {uid}"
    crossed = [line for line in result.info.splitlines() if line.lstrip().startswith("✗")]
    assert any(line.lstrip().startswith("✗ cgroup: not used") for line in crossed), result.info  # nowhere yet
    missing = [line for line in crossed if not line.lstrip().startswith("✗ cgroup")]  # (not a mode's weakness)
    assert bool(missing) == bool(result.call["warning"]), "a weaker mode must carry its warning line"
    for line in crossed:  # one line per missing layer: what it loses, and the remedy where there is one
        following = result.info.splitlines()[result.info.splitlines().index(line) + 1]
        assert following.lstrip().startswith("without it:"), result.info
    if mode.name in ATTACKED:
        assert result.attacks_run > 0
        assert set(result.attacks_succeeded) <= KNOWN.get(mode.name, set()), result.attacks_succeeded
