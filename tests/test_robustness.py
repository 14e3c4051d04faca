"""kill -9 during train, generate and export: the database, the audit chain and exports stay consistent.

A few trials with the real model and real commands in subprocesses (bench/robustness.py runs ≥ 20 random
ones): one kill per stage at a point where the stage is known to be mid-work (budget reserved, outputs
being stored), plus randomly timed kills. After each: ``PRAGMA integrity_check`` is ok, ``audit verify``
passes, no partial export exists, and resuming completes.
"""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path

import _killer
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]

SAMPLE = REPO / "appliance" / "demo" / "data" / "banking77_sample.csv"
N_OUT = 12  # at least gate.probe_min_records (10 in the crash-test workspace), or DCR is 'too few to test'


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """A workspace with a DP prompt and one curated, evaluated, probed batch (the demo sample, 120 records)."""
    root = tmp_path_factory.mktemp("robust")
    with open(SAMPLE, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:120]
    seeds = root / "seeds.csv"
    with open(seeds, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["text", "category"])
        w.writeheader()
        w.writerows(rows)
    home = root / "base"
    timings = _killer.prepare_base(home, seeds, n=N_OUT)
    return home, timings


def _assert_ok(trial: _killer.Trial) -> None:
    failed = {k: v for k, v in trial.checks.items() if not v}
    assert not failed, f"{trial.stage} killed at {trial.delay_s:.1f}s ({trial.phase}): failed {sorted(failed)}"


def test_kill_train_mid_training_then_rerun(base: tuple[Path, dict[str, float]], tmp_path: Path) -> None:
    home = _killer.copy_workspace(base[0], tmp_path / "ws")
    before = _killer.query(home, "SELECT COUNT(*) FROM prompts")[0][0]

    def reserved(h: Path) -> bool:
        return bool(_killer.query(h, "SELECT 1 FROM privacy_charges WHERE status = 'reserved'"))

    assert _killer.kill_when(home, _killer.train_args(), reserved, extra_s=random.Random(1).uniform(0.5, 8))
    assert _killer.integrity_ok(home)
    assert _killer.audit_ok(home)
    assert _killer.query(home, "SELECT COUNT(*) FROM prompts")[0][0] == before  # nothing half-stored
    _killer.resume_train(home, 1, before)
    assert _killer.integrity_ok(home) and _killer.audit_ok(home)
    statuses = [s for (s,) in _killer.query(home, "SELECT status FROM privacy_charges ORDER BY id")]
    # the killed run's reservation stays counted (conservative: its noise may have been drawn), the rerun is charged
    assert statuses.count("charged") == 2 and statuses.count("reserved") == 1, statuses


def test_kill_generate_while_storing_then_resume(base: tuple[Path, dict[str, float]], tmp_path: Path) -> None:
    home = _killer.copy_workspace(base[0], tmp_path / "ws")
    batches = {b for (b,) in _killer.query(home, "SELECT id FROM batches")}

    def storing(h: Path) -> bool:
        new = [b for (b,) in _killer.query(h, "SELECT id FROM batches") if b not in batches]
        return bool(new) and _killer.query(h, "SELECT COUNT(*) FROM outputs WHERE batch_id = ?", (new[0],))[0][0] > 0

    assert _killer.kill_when(home, _killer.generate_args(N_OUT), storing, extra_s=0.3)
    phase, batch = _killer.generate_phase(home, batches)
    assert batch is not None, phase
    assert _killer.integrity_ok(home) and _killer.audit_ok(home)
    done = _killer.query(home, "SELECT COUNT(*) FROM outputs WHERE batch_id = ?", (batch,))[0][0]
    assert 0 < done < N_OUT, f"the kill should land mid-batch ({done} of {N_OUT} stored)"
    _killer.resume_generate(home, batch, N_OUT)  # exactly indices 0..N-1, status complete
    assert _killer.integrity_ok(home) and _killer.audit_ok(home)


@pytest.mark.parametrize("stage,seed", [("export", 0), ("export", 1), ("generate", 2)])
def test_random_kill(base: tuple[Path, dict[str, float]], tmp_path: Path, stage: str, seed: int) -> None:
    home, timings = base
    delay = _killer.random_delay(random.Random(seed), stage, timings)
    trial = _killer.one_trial(stage, home, tmp_path / "ws", delay, n=N_OUT)
    _assert_ok(trial)


def test_sweep_removes_only_dead_writers_temps(tmp_path: Path) -> None:
    """A killed export's temporary file is swept by the next export; a live writer's is left alone."""
    import subprocess
    import sys

    from appliance.export.writers import sweep_stale_temps, temp_beside

    dest = tmp_path / "out.jsonl"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".out.jsonl.{dead_pid}.abc123.tmp"
    stale.write_text("partial")
    live = tmp_path / f".out.jsonl.{os.getppid()}.def456.tmp"
    live.write_text("being written")
    mine = temp_beside(dest)
    other_dest = tmp_path / f".other.jsonl.{dead_pid}.x.tmp"
    other_dest.write_text("another export's")
    assert mine.name.startswith(f".out.jsonl.{os.getpid()}.")
    assert sweep_stale_temps(dest) == 1
    assert not stale.exists() and live.exists() and mine.exists() and other_dest.exists()
