"""Quality benchmark: utility (TSTR) on BANKING77 and MAUVE on GSM8K, few-shot baseline vs ε=4 DP soft prompt.

Runs the appliance's own commands end to end in a fresh workspace, as an operator would:
``init → seeds import → train --epsilon 4 → generate (few-shot | soft prompt) → curate → evaluate``.

- BANKING77 (``../shared/data/banking77``): the first ``--intents`` intents of categories.json, the first
  ``--per-intent`` training rows of each as seeds (labeled import; the policy's holdout fraction is held out).
  ``--per-label`` synthetic records per label for each mode. TSTR comes from ``appliance evaluate`` (tested on the
  dataset's holdout split); as a check with a larger test set, the same classifiers are also tested on the
  official BANKING77 test split rows of those intents (40 per intent).
- GSM8K (``../shared/data/gsm8k``): ``--gsm-train`` training questions as seeds, ``--gsm-n`` questions
  generated per mode, MAUVE against ``--gsm-ref`` held-out GSM8K *test* questions (``--reference FILE``).

Prints a table and ends with one line: ``TSTR ratio fewshot A softprompt B; MAUVE fewshot C softprompt D``.
Example (sizes used for bench/RESULTS.md): ``.venv/bin/python bench/quality.py``. On a busy machine the two
parts can run side by side in two processes: ``--skip-gsm8k`` and ``--skip-banking``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
APPLIANCE = [sys.executable, "-m", "appliance.cli.main"]


def run(home: Path, *args: str) -> str:
    """Run one appliance command; stop the benchmark with its stderr tail when it fails."""
    t0 = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "APPLIANCE_ACTOR": "bench"}
    proc = subprocess.run([*APPLIANCE, "--home", str(home), *args], capture_output=True, text=True, env=env, cwd=REPO)
    print(f"  [{time.perf_counter() - t0:7.1f} s] appliance {' '.join(args[:3])} ... rc={proc.returncode}", flush=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"appliance {' '.join(args)} failed with exit {proc.returncode}")
    return proc.stdout


def train_prompt(home: Path, dataset: str, args: argparse.Namespace) -> str:
    extra = []
    for flag, value in (("--epochs", args.epochs), ("--lr", args.lr), ("--batch-size", args.batch_size)):
        if value is not None:
            extra += [flag, str(value)]
    out = run(home, "train", dataset, "--epsilon", str(args.epsilon), *extra)
    for line in out.splitlines():
        if line.startswith("prompt "):
            print("   ", "\n    ".join(out.strip().splitlines()), flush=True)
            return line.split()[1]
    raise SystemExit("could not read the prompt id from `appliance train`")


def generate_curate_evaluate(
    home: Path, dataset: str, n: int, mode: list[str], seed: int, ref: str, max_tokens: int | None = None
) -> dict:
    extra = ["--max-tokens", str(max_tokens)] if max_tokens else []
    gen = json.loads(run(home, "generate", dataset, "--n", str(n), *mode, "--seed", str(seed), *extra, "--json"))
    batch = gen["id"]
    cur = json.loads(run(home, "curate", batch, "--json"))
    ev = json.loads(run(home, "evaluate", batch, "--reference", ref, "--json"))
    return {"batch": batch, "generate": gen, "curate": cur, "evaluate": ev}


def banking_seeds(path: Path, intents: int, per_intent: int) -> list[str]:
    labels = json.loads((DATA / "banking77" / "categories.json").read_text())[:intents]
    counts = dict.fromkeys(labels, 0)
    with (DATA / "banking77" / "train.csv").open(newline="") as f, path.open("w") as out:
        for row in csv.DictReader(f):
            if row["category"] in counts and counts[row["category"]] < per_intent:
                counts[row["category"]] += 1
                out.write(json.dumps({"text": row["text"], "intent": row["category"]}) + "\n")
    return labels


def official_test_tstr(home: Path, batch: str, dataset: str, labels: list[str], seed: int) -> dict:
    """TSTR of the batch's kept outputs vs matched real train records, tested on the official test rows."""
    import numpy as np

    from appliance.evaluate.embed import default_embedder
    from appliance.evaluate.tstr import matched_real, tstr

    db = sqlite3.connect(home / "appliance.db")
    syn = db.execute("SELECT text, label FROM outputs WHERE batch_id = ? AND status = 'kept'", (batch,)).fetchall()
    real = db.execute("SELECT text, label FROM records WHERE dataset = ? AND split = 'train'", (dataset,)).fetchall()
    db.close()
    with (DATA / "banking77" / "test.csv").open(newline="") as f:
        test = [(r["text"], r["category"]) for r in csv.DictReader(f) if r["category"] in labels]
    s_idx, r_idx = matched_real([lab for _, lab in syn], [lab for _, lab in real], seed=seed)
    emb = default_embedder()

    def enc(rows: list[tuple[str, str]]) -> np.ndarray:
        return emb.encode([t for t, _ in rows])

    s_rows, r_rows = [syn[i] for i in s_idx], [real[i] for i in r_idx]
    res = tstr(enc(s_rows), [lab for _, lab in s_rows], enc(r_rows), [lab for _, lab in r_rows], enc(test),
               [lab for _, lab in test], seed=seed)  # fmt: skip
    return res.as_dict()


def banking(home: Path, args: argparse.Namespace) -> dict:
    print(f"BANKING77: {args.intents} intents x {args.per_intent} seeds, {args.per_label} synthetic per label")
    seeds = home.parent / "banking_seeds.jsonl"
    labels = banking_seeds(seeds, args.intents, args.per_intent)
    run(home, "seeds", "import", str(seeds), "--dataset", "bank", "--label-field", "intent")
    prompt = train_prompt(home, "bank", args)
    n = args.per_label * args.intents
    out = {
        "fewshot": generate_curate_evaluate(
            home, "bank", n, ["--few-shot", str(args.shots)], args.seed, "holdout", args.bank_max_tokens
        ),
        "softprompt": generate_curate_evaluate(
            home, "bank", n, ["--prompt", prompt], args.seed, "holdout", args.bank_max_tokens
        ),
    }
    for mode in out.values():
        mode["official_tstr"] = official_test_tstr(home, mode["batch"], "bank", labels, args.seed)
    return out


def gsm8k(home: Path, args: argparse.Namespace) -> dict:
    print(f"GSM8K: {args.gsm_train} seed questions, {args.gsm_n} generated per mode, {args.gsm_ref} reference")
    seeds, ref = home.parent / "gsm_seeds.jsonl", home.parent / "gsm_reference.jsonl"
    with (DATA / "gsm8k" / "train.jsonl").open() as f, seeds.open("w") as out:
        for _, line in zip(range(args.gsm_train), f, strict=False):
            out.write(json.dumps({"text": json.loads(line)["question"]}) + "\n")
    with (DATA / "gsm8k" / "test.jsonl").open() as f, ref.open("w") as out:
        for _, line in zip(range(args.gsm_ref), f, strict=False):
            out.write(json.dumps({"text": json.loads(line)["question"]}) + "\n")
    run(home, "seeds", "import", str(seeds), "--dataset", "gsm")
    prompt = train_prompt(home, "gsm", args)
    return {
        "fewshot": generate_curate_evaluate(home, "gsm", args.gsm_n, ["--few-shot", "3"], args.seed, str(ref)),
        "softprompt": generate_curate_evaluate(home, "gsm", args.gsm_n, ["--prompt", prompt], args.seed, str(ref)),
    }


def _f(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def table(results: dict) -> None:
    head = ("data", "mode", "kept/gen", "drop reasons", "MAUVE", "dist-2", "selfBLEU", "acc syn", "acc real",
            "TSTR", "TSTR@test")  # fmt: skip
    print(" | ".join(head))
    print(" | ".join("-" * len(h) for h in head))
    for data, modes in results.items():
        for mode, r in modes.items():
            ev, cur = r["evaluate"], r["curate"]
            t, o = ev["metrics"]["tstr"] or {}, r.get("official_tstr") or {}
            reasons = ",".join(f"{k}:{v}" for k, v in cur["reasons"].items()) or "-"
            print(" | ".join([
                data, mode, f"{cur['n_kept']}/{cur['n_total']}", reasons, _f(ev["metrics"]["mauve"]),
                _f(ev["metrics"]["synthetic"]["distinct_2"]), _f(ev["metrics"]["synthetic"]["self_bleu"]),
                _f(t.get("acc_synthetic")), _f(t.get("acc_real")), _f(t.get("ratio")), _f(o.get("ratio")),
            ]))  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--intents", type=int, default=10)
    p.add_argument("--per-intent", type=int, default=50)
    p.add_argument("--per-label", type=int, default=25)
    p.add_argument("--shots", type=int, default=3)
    p.add_argument("--bank-max-tokens", type=int, default=None, help="BANKING77 --max-tokens (default: policy)")
    p.add_argument("--gsm-train", type=int, default=300)
    p.add_argument("--gsm-n", type=int, default=100)
    p.add_argument("--gsm-ref", type=int, default=200)
    p.add_argument("--epsilon", type=float, default=4.0)
    p.add_argument("--epochs", type=int, default=None, help="default: policy training.epochs")
    p.add_argument("--lr", type=float, default=None, help="default: policy training.lr")
    p.add_argument("--batch-size", type=int, default=None, help="default: policy training.batch_size")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--skip-gsm8k", action="store_true")
    p.add_argument("--skip-banking", action="store_true", help="GSM8K part only (TSTR prints as -)")
    p.add_argument("--keep", action="store_true", help="keep the workspace (printed) instead of deleting it")
    p.add_argument("--json-out", type=Path, default=None, help="also write every result as JSON here")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    home = tmp / "home"
    t0 = time.perf_counter()
    try:
        run(home, "init")
        results = {} if args.skip_banking else {"banking77": banking(home, args)}
        if not args.skip_gsm8k:
            results["gsm8k"] = gsm8k(home, args)
        run(home, "audit", "verify")
    finally:
        if args.keep:
            print(f"workspace kept at {home}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2, sort_keys=True, default=str))
    model = next(iter(results.values()))["fewshot"]["evaluate"]["embedding_model"] if results else "-"
    print(f"\nwall time {time.perf_counter() - t0:.0f} s; embeddings {model}")
    table(results)
    bank = results.get("banking77")
    gsm = results.get("gsm8k")
    ratio = {m: bank[m]["evaluate"]["metrics"]["tstr"]["ratio"] if bank else None for m in ("fewshot", "softprompt")}
    mauve = {m: gsm[m]["evaluate"]["metrics"]["mauve"] if gsm else None for m in ("fewshot", "softprompt")}
    print(
        f"TSTR ratio fewshot {_f(ratio['fewshot'])} softprompt {_f(ratio['softprompt'])}; "
        f"MAUVE fewshot {_f(mauve['fewshot'])} softprompt {_f(mauve['softprompt'])}"
    )


if __name__ == "__main__":
    main()
