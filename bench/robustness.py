"""Crash consistency under kill -9: random kill points during train, generate and export (≥ 20 trials).

Prepares one workspace on the demo sample (import, ε=4 train, generate, curate, evaluate, probe, one
calibration export), times each killable command left alone, then runs TRIALS trials cycling through the
three stages: copy the workspace, start the command, SIGKILL it at a time uniform over its undisturbed run
time, then check that ``PRAGMA integrity_check`` is ok, ``appliance audit verify`` passes, no partial export
file exists, and that resuming (rerun / ``generate --resume``) completes — and the checks hold again after.

    .venv/bin/python bench/robustness.py [--trials 21] [--seed 0] [--workdir bench/out/robustness]

Prints one row per trial and ends with the line
``robustness: P/T trials passed (train a/x, generate b/y, export c/z); kills landed mid-run K/T``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("APPLIANCE_MODELS_DIR", str(REPO / "models"))

import _killer  # noqa: E402

SAMPLE = REPO / "appliance" / "demo" / "data" / "banking77_sample.csv"
STAGES = ("train", "generate", "export")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=21)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=12, help="outputs per generate run")
    ap.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "robustness")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    work = args.workdir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    base = work / "base"
    t0 = time.monotonic()
    timings = _killer.prepare_base(base, SAMPLE, n=args.n)
    print(f"base workspace ready in {time.monotonic() - t0:.0f} s; undisturbed run times: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))  # fmt: skip
    header = f"{'#':>3}  {'stage':<9} {'kill at':>8}  {'killed':<6} {'resume':>7}  {'result':<6} where the kill landed"
    print(header)
    print("-" * len(header))
    trials = []
    for i in range(args.trials):
        stage = STAGES[i % len(STAGES)]
        delay = _killer.random_delay(rng, stage, timings)
        tr = _killer.one_trial(stage, base, work / "trial", delay, n=args.n)
        trials.append(tr)
        failed = [k for k, v in tr.checks.items() if not v]
        print(
            f"{i + 1:>3}  {stage:<9} {delay:>7.1f}s  {'yes' if tr.killed else 'no':<6} {tr.resumed_s:>6.1f}s  "
            f"{'ok' if tr.ok else 'FAIL':<6} {tr.phase}{'  failed: ' + ', '.join(failed) if failed else ''}",
            flush=True,
        )
    shutil.rmtree(work / "trial", ignore_errors=True)
    passed = sum(t.ok for t in trials)
    per = {s: (sum(t.ok for t in trials if t.stage == s), sum(t.stage == s for t in trials)) for s in STAGES}
    killed = sum(t.killed for t in trials)
    print(
        f"robustness: {passed}/{len(trials)} trials passed (train {per['train'][0]}/{per['train'][1]}, "
        f"generate {per['generate'][0]}/{per['generate'][1]}, export {per['export'][0]}/{per['export'][1]}); "
        f"kills landed mid-run {killed}/{len(trials)}"
    )
    return 0 if passed == len(trials) else 1


if __name__ == "__main__":
    raise SystemExit(main())
