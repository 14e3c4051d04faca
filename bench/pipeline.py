"""Pipeline benchmark: the whole pipeline on ``--seeds`` BANKING77 seeds, per-stage seconds and peak RSS.

Runs the appliance's own commands, each in its own process as an operator would type them, in a fresh
workspace: ``seeds import → train (ε = 4) → generate → curate → evaluate → probe → export``. The workspace
gets the shipped policy plus the operator's public description of the data (the demo's init text, label
verbaliser, one-message-per-line stop and 0.25 holdout, as ``bench/quality.py --domain bank``); no privacy or
quality setting is lowered. A gate refusal at export (exit 3) is a result, reported as such, not a failure.

Data: ``--seeds`` rows of ``../shared/data/banking77/train.csv`` (CC BY 4.0), evenly from ``--intents``
intents (categories.json order, skipping the demo sample's 6 and any intent with too few rows), with their
intents as declared public labels. ``--per-label`` outputs per intent are generated.

Per stage: wall seconds and the peak RSS of the stage's process tree (``wait4`` rusage: the command and every
child it waited for, e.g. generation's decoder). The machine-level model cache (``appliance.models.cache``) is
filled before the timed stages, as on an appliance that has run once; a cold cache's one-off build is
reported apart.

Trainer precision: after the pipeline, the trainer's DP step (its own step code, Opacus, the policy's batch
size) is timed here in fp32 and in the precision the trainer chose (``training.precision``, :mod:`appliance.
train.precision`: bf16 autocast on CPUs with AMX or AVX512-BF16), on the same fixed batches of the workspace's
training examples, side by side in this run. Where the trainer chose fp32 (no bf16 units), the pipeline's training
*is* the fp32 path and the speedup is 1.0× by construction: printed as such, with the reason, never estimated.
``--time-bf16`` times forced bf16 there too (emulated by oneDNN: slower, for the record).

Ends with exactly:
``pipeline N seeds: T s (train A s, generate B s, probe C s); train speedup vs fp32 S×; peak RSS M GB``
Example (smoke): ``nice -n 19 .venv/bin/python bench/pipeline.py --seeds 200``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from quality import DATA, DEMO_INTENTS, bank_domain, set_policy, train_texts  # noqa: E402
from trainer_speed import time_steps  # noqa: E402

from appliance.train.precision import Precision, bf16_units, resolve  # noqa: E402

APPLIANCE = [sys.executable, "-m", "appliance.cli.main"]
DATASET = "bank"
EPSILON = 4.0
EXIT_REFUSED = 3
TIMED = ("seeds import", "train", "generate", "curate", "evaluate", "probe", "export")


@dataclass
class Stage:
    name: str
    seconds: float
    peak_rss_gb: float
    exit_code: int
    stdout: str


def run_stage(home: Path, name: str, *args: str, ok: tuple[int, ...] = (0,)) -> Stage:
    """Run one appliance command in its own process; wall time and the peak RSS of its process tree."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "APPLIANCE_ACTOR": "bench"}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([*APPLIANCE, "--home", str(home), *args], stdout=out, stderr=err, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    stage = Stage(name, seconds, usage.ru_maxrss / 1024**2, proc.returncode, stdout)
    print(f"  [{seconds:7.1f} s, {stage.peak_rss_gb:5.2f} GB] {name}: rc={proc.returncode}", flush=True)
    if proc.returncode not in ok:
        sys.stderr.write(stderr[-3000:])
        raise SystemExit(f"appliance {' '.join(args)} failed with exit {proc.returncode}")
    return stage


def last_json(out: str) -> dict[str, Any]:
    return dict(json.loads(out.strip().splitlines()[-1]))


def pick_intents(k: int, per: int) -> list[str]:
    """The first ``k`` non-demo intents (categories.json order) with at least ``per`` training rows."""
    with (DATA / "banking77" / "train.csv").open(newline="") as f:
        counts: dict[str, int] = {}
        for row in csv.DictReader(f):
            counts[row["category"]] = counts.get(row["category"], 0) + 1
    cats = json.loads((DATA / "banking77" / "categories.json").read_text())
    chosen = [c for c in cats if c not in DEMO_INTENTS and counts.get(c, 0) >= per][:k]
    if len(chosen) < k:
        raise SystemExit(f"only {len(chosen)} BANKING77 intents have {per} training rows; lower --seeds or --intents")
    return chosen


def write_seeds(path: Path, intents: list[str], total: int, seed: int) -> None:
    """``total`` rows (text, intent) as JSONL, ``total // len(intents)`` per intent (the rest from the first)."""
    import numpy as np

    by = train_texts(intents)
    rng = np.random.default_rng(seed)
    per, extra = divmod(total, len(intents))
    rows: list[tuple[str, str]] = []
    for j, c in enumerate(intents):
        pick = rng.choice(len(by[c]), size=per + (1 if j < extra else 0), replace=False)
        rows += [(by[c][int(i)], c) for i in pick]
    with path.open("w") as out:
        for i in rng.permutation(len(rows)):
            out.write(json.dumps({"text": rows[i][0], "intent": rows[i][1]}) + "\n")


def warm_cache(home: Path) -> float:
    """Fill the machine-level model cache (torch model, F16 GGUF) in a child process; its seconds."""
    code = (
        "from appliance.config import Workspace; from appliance.context import Context; "
        "from appliance.models.registry import verified_path; from appliance.train.lm import cache_dir, ensure_cache; "
        "from appliance.generate.weights import batch_weights; "
        f"c = Context.open(Workspace.resolve({str(home)!r})); "
        "_, p, s = verified_path(c.policy.generation.default_model, c.ws); "
        "ensure_cache(p, s, cache_dir(s)); batch_weights(p, s)"
    )
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    return time.perf_counter() - t0


def workspace_precision(home: Path) -> Precision:
    """The precision the workspace's trainer will choose (its policy's ``training.precision`` on this CPU)."""
    from appliance.config import Workspace
    from appliance.context import Context

    ctx = Context.open(Workspace(home), actor="bench")
    try:
        return resolve(ctx.policy.training.precision)
    finally:
        ctx.close()


def time_trainer_steps(home: Path, steps: int, paths: list[str]) -> dict[str, dict[str, float]]:
    """Median seconds of the trainer's DP step in each precision of ``paths`` (``trainer_speed.time_steps``) on the
    same fixed batches of this workspace's training examples, with this workspace's policy and model."""
    import torch

    from appliance.config import Workspace
    from appliance.context import Context
    from appliance.cpu import idle_cores
    from appliance.train.data import load_records
    from appliance.train.layout import Layout, build_examples
    from appliance.train.lm import load_frozen

    ctx = Context.open(Workspace(home), actor="bench")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(idle_cores())  # as the trainer sizes itself
        base = load_frozen(ctx.ws, None)
        data = load_records(ctx.db, DATASET, holdout_limit=0)
        t = ctx.policy.training
        layout = Layout.for_training(t, base, k=t.virtual_tokens, labelled=bool(data.labels))
        examples = build_examples(base.encode, layout, [r[0] for r in data.train], [r[1] for r in data.train])
        return time_steps(base, layout, examples, t, ctx.policy.privacy, steps=steps, paths=paths)
    finally:
        torch.set_num_threads(threads)
        ctx.close()


def quote(records: list[dict[str, Any]], k: int) -> list[str]:
    return [f"{r.get('label')}: {' '.join(str(r.get('text', '')).split())}" for r in records[:k]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--seeds", type=int, default=1000, help="BANKING77 training rows imported (the policy holds some out)"
    )
    ap.add_argument("--intents", type=int, default=10)
    ap.add_argument("--per-label", type=int, default=30, help="outputs generated per intent")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timing-steps", type=int, default=3, help="trainer steps timed per precision after a warm-up")
    ap.add_argument(
        "--time-bf16", action="store_true", help="also time forced bf16 where the trainer chose fp32 (emulated: slow)"
    )
    ap.add_argument("--quote", type=int, default=8, help="exported (or, if refused, kept) records printed")
    ap.add_argument("--keep", action="store_true", help="keep the workspace")
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()

    intents = pick_intents(args.intents, -(-args.seeds // args.intents))
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    home = tmp / "ws"
    load0 = os.getloadavg()
    print(f"BANKING77: {args.seeds} seeds from {len(intents)} intents {intents}; {args.per_label} outputs per intent")
    cores = len(os.sched_getaffinity(0))
    print(f"machine: {cores} cores, load average {load0[0]:.2f}; bf16 units: {'+'.join(bf16_units()) or 'none'}")
    try:
        run_stage(home, "init", "init")
        set_policy(home, bank_domain())
        chosen = workspace_precision(home)
        print(f"trainer precision: {chosen.name} ({chosen.reason})")
        seeds = tmp / "seeds.jsonl"
        write_seeds(seeds, intents, args.seeds, args.seed)
        cache_s = warm_cache(home)
        print(f"  [{cache_s:7.1f} s] machine-level model cache ready (not timed in the pipeline)", flush=True)
        stages: list[Stage] = []
        progress = args.json_out.with_suffix(".stages.jsonl") if args.json_out else None

        def timed(name: str, *argv: str, ok: tuple[int, ...] = (0,)) -> Stage:
            """A timed stage; with --json-out each is also appended to a side file as it ends (a late crash
            of this script loses nothing measured)."""
            st = run_stage(home, name, *argv, ok=ok)
            stages.append(st)
            if progress is not None:
                last = st.stdout.strip().splitlines()[-1:] or [""]
                row = {"name": name, "seconds": st.seconds, "peak_rss_gb": st.peak_rss_gb, "exit_code": st.exit_code}
                with progress.open("a") as fh:
                    fh.write(json.dumps({**row, "last_line": last[0]}) + "\n")
            return st

        t_all = time.perf_counter()
        labels = ["--label-field", "intent", "--labels", ",".join(sorted(intents))]
        timed("seeds import", "seeds", "import", str(seeds), "--dataset", DATASET, *labels)
        tr = timed("train", "train", DATASET, "--epsilon", f"{EPSILON:g}", "--json")
        train = last_json(tr.stdout)
        n_out = args.per_label * len(intents)
        gen = timed(
            "generate",
            "generate",
            DATASET,
            "--prompt",
            train["prompt_id"],
            "--n",
            str(n_out),
            "--seed",
            str(args.seed),
            "--json",
        )
        batch = last_json(gen.stdout)["id"]
        cur = timed("curate", "curate", batch, "--json")
        ev = timed("evaluate", "evaluate", batch, "--json")
        pr = timed("probe", "probe", batch, "--json")
        out_path = home / "exports" / "bank-synthetic.jsonl"
        ex = timed("export", "export", batch, "--out", str(out_path), "--json", ok=(0, EXIT_REFUSED))
        total = time.perf_counter() - t_all
        run_stage(home, "audit verify", "audit", "verify")
        refused = ex.exit_code == EXIT_REFUSED
        if refused:
            listing = run_stage(home, "batches show", "batches", "show", batch, "--json")
            shown = [o for o in last_json(listing.stdout)["outputs"] if o.get("status") == "kept"]
        else:
            shown = [json.loads(ln) for ln in out_path.read_text().splitlines() if ln.strip()]
        paths = ["fp32"] + (["bf16"] if chosen.name == "bf16" or args.time_bf16 else [])
        timing = time_trainer_steps(home, args.timing_steps, paths)
        fp32 = timing["fp32"]
        self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    finally:
        if args.keep:
            print(f"workspace kept at {home}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    by = {s.name: s for s in stages}
    peak = max(s.peak_rss_gb for s in stages)
    cur_j, ev_j, pr_j = last_json(cur.stdout), last_json(ev.stdout), last_json(pr.stdout)
    train_step = by["train"].seconds / max(1, int(train["steps"]))
    if chosen.name == "fp32":  # the pipeline's training ran the fp32 path itself
        speedup, why = 1.0, f"the trainer chose fp32: {chosen.reason}"
    else:
        speedup = fp32["step"] / timing["bf16"]["step"]
        why = f"bf16 vs fp32 DP steps on the same batches: {chosen.reason}"
    print(
        f"\nseeds {args.seeds} ({train['n_train']} train + {train['n_canaries']} canaries); outputs {n_out}; "
        f"kept {cur_j.get('n_kept')}; load average at start {load0[0]:.2f}, end {os.getloadavg()[0]:.2f}"
    )
    print(f"{'stage':<14} {'seconds':>8} {'peak RSS GB':>12}")
    for s in stages:
        print(f"{s.name:<14} {s.seconds:8.1f} {s.peak_rss_gb:12.2f}")
    print(f"{'total':<14} {total:8.1f} {peak:12.2f}")
    m = ev_j.get("metrics", {})
    rows = [
        ("train: steps / σ / ε", f"{train['steps']} / {train['noise_multiplier']:.3f} / {train['epsilon']:.3f}"),
        ("train: s per step in the pipeline (incl. load, holdout scoring)", f"{train_step:.2f}"),
        (
            f"fp32 trainer: median DP step, batch {fp32['batch']:.0f} ({fp32['tokens_per_batch']:.0f} tokens)",
            f"{fp32['step']:.2f} s",
        ),
        *(
            (f"{k} trainer: median DP step (same batches)", f"{v['step']:.2f} s ({fp32['step'] / v['step']:.2f}× fp32)")
            for k, v in timing.items()
            if k != "fp32"
        ),
        ("trainer path vs fp32 on the same batches", f"{speedup:.1f}× ({why})"),
        ("evaluate: detection AUC / label fidelity", f"{m.get('detection_auc')} / {m.get('label_fidelity')}"),
        ("probe: summary", json.dumps(pr_j.get("summary", {}))),
        ("export", "refused by the gate (exit 3)" if refused else f"{len(shown)} records written"),
        ("bench process peak RSS (fp32 timing) GB", f"{self_rss:.2f}"),
    ]
    for k, v in rows:
        print(f"{k}: {v}")
    print(("kept" if refused else "exported") + " records (label: text):")
    for line in quote(shown, args.quote):
        print(f"  {line}")
    if args.json_out:
        doc = {
            "stages": [{k: v for k, v in s.__dict__.items() if k != "stdout"} for s in stages],
            "train": train,
            "curate": cur_j,
            "evaluate": ev_j,
            "probe": pr_j,
            "refused": refused,
            "fp32": fp32,
            "timing": timing,
            "precision": chosen.as_dict(),
            "speedup": speedup,
            "speedup_note": why,
            "cache_seconds": cache_s,
            "quoted": quote(shown, args.quote),
            "intents": intents,
        }
        args.json_out.write_text(json.dumps(doc, indent=2, default=str))
    print(
        f"pipeline {args.seeds} seeds: {total:.0f} s (train {by['train'].seconds:.0f} s, generate "
        f"{by['generate'].seconds:.0f} s, probe {by['probe'].seconds:.0f} s); train speedup vs fp32 {speedup:.1f}×; "
        f"peak RSS {peak:.2f} GB"
    )


if __name__ == "__main__":
    main()
