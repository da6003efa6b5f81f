"""The bridge busy-waits only while /proc/loadavg shows a CPU free for each side."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeagent.sandbox.protocol import spin
from codeagent.sandbox.protocol.spin import SpinGate, runnable_tasks


def loadavg(tmp_path: Path, running: int) -> str:
    path = tmp_path / "loadavg"
    path.write_text(f"3.10 2.50 1.20 {running}/412 98765\n")
    return str(path)


def test_runnable_tasks_reads_the_fourth_field(tmp_path: Path) -> None:
    assert runnable_tasks(loadavg(tmp_path, 7)) == 7
    assert runnable_tasks(str(tmp_path / "missing")) is None
    (tmp_path / "garbled").write_text("nonsense")
    assert runnable_tasks(str(tmp_path / "garbled")) is None
    assert isinstance(runnable_tasks(), int)  # the real file, on Linux


def test_gate_spins_only_with_a_cpu_to_spare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spin, "usable_cpus", lambda: 2)
    monkeypatch.setattr(spin, "RECHECK_S", -1.0)  # look at the file on every call
    path = tmp_path / "loadavg"
    gate = SpinGate(0.0003, path=str(path))
    loadavg(tmp_path, 2)  # this side and the other: one CPU each
    assert gate.window() == 0.0003
    loadavg(tmp_path, 6)  # other work is waiting for the CPUs: spinning would take the other side's
    assert gate.window() == 0.0
    path.unlink()  # unreadable: spin, as before the gate existed
    assert gate.window() == 0.0003


def test_gate_never_spins_on_one_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spin, "usable_cpus", lambda: 1)
    assert SpinGate(0.0003, path=loadavg(tmp_path, 1)).window() == 0.0


def test_gate_rereads_the_file_only_now_and_then(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spin, "usable_cpus", lambda: 2)
    monkeypatch.setattr(spin, "RECHECK_S", 3600.0)
    gate = SpinGate(0.0003, path=loadavg(tmp_path, 1))
    assert gate.window() == 0.0003
    loadavg(tmp_path, 9)
    assert gate.window() == 0.0003  # not looked at again within RECHECK_S
