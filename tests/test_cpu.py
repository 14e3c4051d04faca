"""How many cores a stage may use: the run queue right now, not the 1-minute load average."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import cpu


def _stat(tmp_path: Path, running: int) -> str:
    f = tmp_path / "stat"
    f.write_text(f"cpu  1 2 3 4\nctxt 99\nprocs_running {running}\nprocs_blocked 0\n", encoding="ascii")
    return str(f)


@pytest.mark.parametrize(("running", "busy"), [(1, 0.0), (3, 2.0), (0, 0.0)])
def test_busy_cores_is_the_run_queue_without_the_reader(tmp_path: Path, running: int, busy: float) -> None:
    assert cpu.busy_cores(samples=3, interval_s=0.0, stat=_stat(tmp_path, running)) == busy


def test_busy_cores_falls_back_to_the_load_average(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu.os, "getloadavg", lambda: (1.5, 1.0, 1.0))
    assert cpu.busy_cores(samples=2, interval_s=0.0, stat=str(tmp_path / "missing")) == 1.5


@pytest.mark.parametrize(
    ("busy", "own", "idle"), [(0.0, 0.0, 2), (1.0, 0.0, 1), (3.0, 0.0, 1), (2.0, 1.0, 1), (0.4, 0.0, 2)]
)
def test_idle_cores_between_one_and_the_cores(
    monkeypatch: pytest.MonkeyPatch, busy: float, own: float, idle: int
) -> None:
    """A stage that starts just after a busy one (the load average still high) gets every idle core."""
    monkeypatch.setattr(cpu, "cores", lambda: 2)
    monkeypatch.setattr(cpu, "busy_cores", lambda: busy)
    monkeypatch.setattr(cpu.os, "getloadavg", lambda: (2.0, 2.0, 2.0))  # not read
    assert cpu.idle_cores(own_load=own) == idle
