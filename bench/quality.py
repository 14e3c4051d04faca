"""Quality benchmark: does the export look like the seeds, and does it keep their labels? Per generation mode.

Runs the appliance's own commands end to end in fresh workspaces, as an operator would:
``init → seeds import → train → generate → curate → evaluate``, on public data only (BANKING77 from
``../shared/data``, CC BY 4.0). Hyperparameters are chosen here, never on a customer's records.

Modes (``--modes``):
- ``zeroshot`` — ε = 0: the untrained prompt, i.e. the policy's public prior (``training.init_text`` and the
  label verbaliser ``label_template``); realised as a non-DP run with a learning rate of 1e-9, so it is the
  initial prompt to six digits;
- ``fewshot`` — the hard-prompt baseline: ``--shots`` raw training seeds pasted into the prompt (not private);
- ``dp1``, ``dp4``, ``dp8`` — the DP soft prompt at ε = 1, 4, 8 (the shipped policy's training settings; dp1
  without the DP selection and label keywords, which alone would spend ε = 1: ``MODE_SETS``);
- ``nodp`` — a non-DP soft prompt (``--nodp-epochs`` epochs): the upper reference.

``--public-prior``: every trained mode starts from the demo's public prior instead of the init text's rows — a
prompt trained without DP on ``appliance/demo/data/banking77_public.csv`` (59 intents, none of them the demo's or
the first 12 this bench draws from), imported in each workspace with ``seeds import --public`` (no ε); ``zeroshot``
is then that prior itself.

Data: ``--intents`` BANKING77 intents, taken in categories.json order after skipping the demo sample's 6
(so tuning never touches the demo's intents) and ``--intent-offset`` more; ``--seeds`` training-file rows in all,
drawn evenly per intent with each repeat's seed. Per mode and repeat: ``--per-label`` outputs per label.

Measures per run, with their sample sizes:
- from ``appliance evaluate``: detection AUC (5-fold classifier two-sample test, holdout vs outputs), the lexical
  detection AUC (word and character n-grams) and the MiniLM one at ``curation.eval_fixed_n`` per side (``-`` when a
  side holds fewer), label fidelity, TSTR and label-masked TSTR (holdout), MAUVE (with n), distinct-2;
- computed here, independently of the appliance's evaluation: detection AUC against the official BANKING77
  *test* rows of the chosen intents, and TSTR@test — a classifier trained on the kept outputs vs one trained on
  as many real training records with the same label counts, both tested on those official test rows.

Repeats (``--repeats``, ≥ 3 for RESULTS.md) give mean ± sd. Ten outputs per mode are written to
``--samples-out`` to be quoted. The last line is exactly:
``quality eps4: detection AUC X (nodp Y, fewshot Z); label fidelity F; TSTR@test ratio R``
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
APPLIANCE = [sys.executable, "-m", "appliance.cli.main"]
DEMO_INTENTS = {"card_arrival", "exchange_rate", "lost_or_stolen_card", "top_up_failed", "pin_blocked",
                "cash_withdrawal_charge"}  # fmt: skip
MODES = ("zeroshot", "fewshot", "dp1", "dp4", "dp8", "nodp")
PRIOR_FREE_INTENTS = 12  # the non-demo intents packaging/make_public_corpus.py leaves out of the public corpus
# Per-mode policy changes, undone after the mode. At ε = 1 the bank domain's DP selection (σ 4) and label keywords
# (σ 2.5) alone spend the whole budget, and `appliance train` refuses them ("raise their noise_multiplier, raise
# --epsilon, or set enabled false"); with the σ that would fit, neither would release anything (a keyword needs a
# count of 5σ), so dp1 runs as an operator would after that refusal: without them.
MODE_SETS: dict[str, dict[str, Any]] = {
    "dp1": {"curation.dp_selection.enabled": False, "training.label_keywords.enabled": False},
    # the non-DP reference as trained, whatever --set training.prior_extrapolation asks of the DP modes
    "nodp": {"training.prior_extrapolation": 1.0},
}


def run(home: Path, *args: str) -> str:
    """Run one appliance command; stop the benchmark with its stderr tail when it fails."""
    t0 = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "APPLIANCE_ACTOR": "bench"}
    proc = subprocess.run([*APPLIANCE, "--home", str(home), *args], capture_output=True, text=True, env=env, cwd=REPO)
    print(f"  [{time.perf_counter() - t0:7.1f} s] appliance {' '.join(args[:4])} ... rc={proc.returncode}", flush=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"appliance {' '.join(args)} failed with exit {proc.returncode}")
    return proc.stdout


def last_json(out: str) -> dict[str, Any]:
    return json.loads(out.strip().splitlines()[-1])


def set_dotted(doc: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys (``training.lr``) in a policy document, creating the sections they name; the document."""
    for key, value in settings.items():
        node = doc
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return doc


def set_policy(home: Path, settings: dict[str, Any]) -> None:
    """Edit the workspace policy (dotted keys) and validate it with the appliance."""
    path = home / "policy.yaml"
    doc = set_dotted(yaml.safe_load(path.read_text()), settings)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    run(home, "policy", "validate", str(path))


@contextlib.contextmanager
def mode_policy(home: Path, mode: str) -> Iterator[None]:
    """The workspace policy with the mode's MODE_SETS applied, restored afterwards."""
    path = home / "policy.yaml"
    saved = path.read_text()
    if MODE_SETS.get(mode):
        set_policy(home, MODE_SETS[mode])
    try:
        yield
    finally:
        path.write_text(saved)


def parse_sets(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, _, raw = item.partition("=")
        out[key] = yaml.safe_load(raw)
    return out


def bank_domain() -> dict[str, Any]:
    """What an operator would declare about BANKING77-like data (the demo's public prior; never read from seeds):
    the demo's policy (appliance.demo.settings.DEMO_POLICY) but its DP-SGD schedule, so that the bench's figures
    stay comparable across sessions (``--set training.batch_size=64 --set training.lr=0.1 --set training.epochs=6``
    gives the demo's, but also changes the ``nodp`` reference) and the DP selection (``--set
    curation.dp_selection.enabled=true``: every figure since session 12 passes it). With the DP label keywords
    (``--set training.label_keywords.enabled=false``: without) and no guidance (``--set generation.guidance=1``: the
    demo's until session 35). With
    ``--public-prior`` the DP modes are stored as trained, as the demo's are (``--set
    training.prior_extrapolation=1.25``: the prior + 1.25 × their movement from it); ``nodp`` always as trained.
    """
    from appliance.demo.settings import DEMO_POLICY, DEMO_SCHEDULE, DEMO_SELECTION

    return {k: v for k, v in DEMO_POLICY.items() if k not in DEMO_SCHEDULE and k not in DEMO_SELECTION}


# What each intent means, written by this bench's author from the intent's *name* alone (as an operator writes a
# line about each of their labels: public schema), never from a record. Used with --descriptions.
DESCRIPTIONS = {
    "card_linking": "linking a card to their account in the app",
    "card_payment_wrong_exchange_rate": "a card payment converted at the wrong exchange rate",
    "extra_charge_on_statement": "an extra charge they do not recognise on their statement",
    "pending_cash_withdrawal": "a cash withdrawal that still shows as pending",
    "fiat_currency_support": "which currencies the bank supports",
    "card_delivery_estimate": "how long a new card takes to be delivered",
    "automatic_top_up": "setting up automatic top-ups",
    "card_not_working": "a card that does not work",
    "exchange_via_app": "exchanging currencies in the app",
    "age_limit": "how old you must be to open an account",
    "contactless_not_working": "contactless payments that do not work",
    "top_up_by_bank_transfer_charge": "a fee for topping up by bank transfer",
}
DESCRIBED_TEMPLATE = "A customer message about {label_description}{label_keywords}:\n"


def described(intents: list[str]) -> dict[str, Any]:
    """Policy settings that describe each intent in a line (the bank domain's template with {label_description})."""
    missing = [c for c in intents if c not in DESCRIPTIONS]
    if missing:
        raise SystemExit(f"--descriptions: no description written for {missing}; add them to DESCRIPTIONS")
    return {
        "training.label_template": DESCRIBED_TEMPLATE,
        "training.label_descriptions": {c: DESCRIPTIONS[c] for c in intents},
    }


def choose_intents(k: int, offset: int) -> list[str]:
    cats = json.loads((DATA / "banking77" / "categories.json").read_text())
    return [c for c in cats if c not in DEMO_INTENTS][offset : offset + k]


def bench_intents(args: argparse.Namespace) -> list[str]:
    """The intents to measure on; with --public-prior only those the public corpus leaves out."""
    if args.public_prior and args.intents + args.intent_offset > PRIOR_FREE_INTENTS:
        raise SystemExit(
            f"--public-prior: the public corpus holds the non-demo intents after the first {PRIOR_FREE_INTENTS};"
            f" keep --intents + --intent-offset <= {PRIOR_FREE_INTENTS}"
        )
    return choose_intents(args.intents, args.intent_offset)


def train_texts(intents: list[str]) -> dict[str, list[str]]:
    """The BANKING77 training-file texts of each of ``intents``, in file order."""
    by: dict[str, list[str]] = {c: [] for c in intents}
    with (DATA / "banking77" / "train.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if row["category"] in by:
                by[row["category"]].append(row["text"])
    return by


def write_seeds(path: Path, intents: list[str], total: int, seed: int) -> None:
    by = train_texts(intents)
    rng = np.random.default_rng(seed)
    per = total // len(intents)
    with path.open("w") as out:
        rows = []
        for c in intents:
            pick = rng.choice(len(by[c]), size=min(per, len(by[c])), replace=False)
            rows += [(by[c][int(i)], c) for i in pick]
        for i in rng.permutation(len(rows)):
            out.write(json.dumps({"text": rows[i][0], "intent": rows[i][1]}) + "\n")


def official_test(intents: list[str]) -> list[tuple[str, str]]:
    with (DATA / "banking77" / "test.csv").open(newline="") as f:
        return [(r["text"], r["category"]) for r in csv.DictReader(f) if r["category"] in intents]


def independent(home: Path, batch: str, dataset: str, test: list[tuple[str, str]], seed: int) -> dict[str, Any]:
    """Detection AUC vs the official test rows and TSTR@test, computed here from the database rows."""
    from appliance.evaluate.detection import detection_auc
    from appliance.evaluate.embed import default_embedder
    from appliance.evaluate.tstr import matched_real, tstr

    db = sqlite3.connect(home / "appliance.db")
    syn = db.execute("SELECT text, label FROM outputs WHERE batch_id = ? AND status = 'kept'", (batch,)).fetchall()
    real = db.execute("SELECT text, label FROM records WHERE dataset = ? AND split = 'train'", (dataset,)).fetchall()
    db.close()
    emb = default_embedder()

    def enc(rows: list) -> np.ndarray:
        return emb.encode([t for t, _ in rows])

    out: dict[str, Any] = {"n_kept": len(syn), "n_test": len(test)}
    if len(syn) >= 4:
        d = detection_auc(enc(test), enc(syn), seed=seed)
        out["detection_auc_test"] = d.auc
        out["detection_n"] = d.n_real
    s_idx, r_idx = matched_real([lab for _, lab in syn], [lab for _, lab in real], seed=seed)
    s_rows, r_rows = [syn[i] for i in s_idx], [real[i] for i in r_idx]
    if len({lab for _, lab in s_rows}) >= 2:
        res = tstr(enc(s_rows), [lab for _, lab in s_rows], enc(r_rows), [lab for _, lab in r_rows], enc(test),
                   [lab for _, lab in test], seed=seed)  # fmt: skip
        out["tstr_test"] = res.as_dict()
    return out


def public_prior(home: Path) -> str:
    """The demo's public prior in this workspace: its public corpus imported as public data and a prompt trained
    on it without DP (appliance.demo.settings: the full demo's schedule); the prompt's id."""
    from appliance.demo.settings import FULL, PUBLIC_CORPUS, PUBLIC_LABEL_ARGS, PUBLIC_PRIOR_LR

    run(home, "seeds", "import", str(PUBLIC_CORPUS), "--dataset", "public", *PUBLIC_LABEL_ARGS)
    schedule = [
        "--epochs",
        str(FULL.prior_epochs),
        "--batch-size",
        str(FULL.prior_batch),
        "--lr",
        f"{PUBLIC_PRIOR_LR:g}",
    ]
    return str(last_json(run(home, "train", "public", "--no-dp", *schedule, "--json"))["prompt_id"])


def one_mode(
    home: Path, mode: str, args: argparse.Namespace, n: int, seed: int, start: list[str]
) -> tuple[dict[str, Any], str]:
    """Train (if the mode has a prompt; ``start``: ``--init-prompt P`` or nothing), generate, curate and evaluate;
    returns (result row, batch id)."""
    t0 = time.perf_counter()
    gen_args: list[str]
    if mode == "fewshot":
        gen_args = ["--few-shot", str(args.shots)]
    else:
        if mode == "zeroshot":
            train_args = ["--no-dp", "--epochs", "1", "--lr", "1e-9"]
        elif mode == "nodp":
            train_args = ["--no-dp", "--epochs", str(args.nodp_epochs)]
        else:
            train_args = ["--epsilon", mode[2:]]
        tr = last_json(run(home, "train", "bank", *train_args, *start, "--json"))
        gen_args = ["--prompt", tr["prompt_id"]]
    gen = last_json(run(home, "generate", "bank", "--n", str(n), *gen_args, "--seed", str(seed), "--json"))
    batch = gen["id"]
    cur = last_json(run(home, "curate", batch, "--json"))
    ev = last_json(run(home, "evaluate", batch, "--json"))
    mt = ev["metrics"]
    row = {
        "mode": mode,
        "seconds": time.perf_counter() - t0,
        "n_generated": cur["n_total"],
        "n_kept": cur["n_kept"],
        "detection_auc": mt.get("detection_auc"),
        "lexical_auc": mt.get("lexical_detection_auc"),
        "detection_auc_at_n": ((mt.get("fixed_n") or {}).get("detection") or {}).get("auc"),
        "label_fidelity": mt.get("label_fidelity"),
        "tstr_ratio": (mt.get("tstr") or {}).get("ratio"),
        "tstr_masked_ratio": ((mt.get("tstr") or {}).get("masked") or {}).get("ratio"),
        "mauve": mt.get("mauve"),
        "mauve_n": min(mt["n_synthetic"], mt["n_reference"]),
        "distinct_2": mt["synthetic"]["distinct_2"],
    }
    return row, batch


def samples(home: Path, batch: str, k: int) -> list[dict[str, str]]:
    """``k`` kept outputs, taken in turn from each label (in generation order within a label)."""
    db = sqlite3.connect(home / "appliance.db")
    rows = db.execute("SELECT text, label FROM outputs WHERE batch_id = ? AND status = 'kept' ORDER BY idx", (batch,))
    by: dict[str, list[str]] = {}
    for text, label in rows.fetchall():
        by.setdefault(label, []).append(" ".join(text.split()))
    db.close()
    picked: list[dict[str, str]] = []
    for i in range(max((len(v) for v in by.values()), default=0)):
        picked += [{"label": lab, "text": texts[i]} for lab, texts in sorted(by.items()) if i < len(texts)]
    return picked[:k]


def _stat(vals: list[float | None]) -> str:
    v = [x for x in vals if x is not None]
    if not v:
        return "-"
    if len(v) == 1:
        return f"{v[0]:.3f}"
    return f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}"


def _mean(vals: list[float | None]) -> float | None:
    v = [x for x in vals if x is not None]
    return statistics.mean(v) if v else None


COLUMNS = ("detection_auc", "lexical_auc", "detection_auc_at_n", "detection_auc_test", "label_fidelity", "tstr_ratio",
           "tstr_masked_ratio", "tstr_test_ratio", "mauve", "distinct_2")  # fmt: skip


def table(rows: list[dict[str, Any]], modes: list[str]) -> None:
    head = ("mode", "runs", "kept/gen", *COLUMNS, "MAUVE n")
    print(" | ".join(head))
    print(" | ".join("-" * len(h) for h in head))
    for mode in modes:
        rs = [r for r in rows if r["mode"] == mode]
        if not rs:
            continue
        kept = f"{sum(r['n_kept'] for r in rs)}/{sum(r['n_generated'] for r in rs)}"
        cells = [_stat([r.get(c) for r in rs]) for c in COLUMNS]
        print(" | ".join([mode, str(len(rs)), kept, *cells, str(rs[0]["mauve_n"])]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modes", default="zeroshot,fewshot,dp1,dp4,dp8,nodp")
    p.add_argument("--intents", type=int, default=6)
    p.add_argument("--intent-offset", type=int, default=0)
    p.add_argument("--seeds", type=int, default=500, help="training-file rows imported (the policy holds some out)")
    p.add_argument("--per-label", type=int, default=40)
    p.add_argument("--shots", type=int, default=8)
    p.add_argument("--nodp-epochs", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=1, help="first repeat's seed")
    p.add_argument("--set", dest="sets", action="append", default=[], help="policy override, e.g. training.lr=0.1")
    p.add_argument(
        "--domain", choices=("bank", "none"), default="bank",
        help="bank: the operator's public description of the data, as the demo sets it; none: the generic default",
    )  # fmt: skip
    p.add_argument(
        "--descriptions", action="store_true",
        help="with --domain bank: one line about each intent (DESCRIPTIONS) as the label verbaliser",
    )  # fmt: skip
    p.add_argument(
        "--public-prior", action="store_true",
        help="start every trained mode from the demo's public prior (a prompt trained without DP on"
        " appliance/demo/data/banking77_public.csv, 59 intents none of which this bench's first 12 is)",
    )  # fmt: skip
    p.add_argument("--json-out", type=Path, default=None)
    p.add_argument("--samples-out", type=Path, default=None, help="10 kept outputs per mode (first repeat), JSON")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise SystemExit(f"unknown modes {bad}; choose from {MODES}")
    intents = bench_intents(args)
    test = official_test(intents)
    domain = bank_domain() if args.domain == "bank" else {}
    if args.descriptions:
        domain.update(described(intents))
    sets = {**domain, **parse_sets(args.sets)}
    # every mode trains on the same records in one workspace: the per-record cap must fit dp1 + dp4 + dp8
    sets.setdefault("privacy.dataset_epsilon_cap", 20.0)
    if {"zeroshot", "nodp"} & set(modes):
        sets.setdefault("privacy.allow_non_dp", True)
    print(f"BANKING77 intents {intents}; {args.seeds} seeds; {args.per_label} outputs per label; test rows {len(test)}")
    print(f"policy overrides: {sets or 'none (shipped default)'}", flush=True)

    rows: list[dict[str, Any]] = []
    shown: dict[str, list] = {}
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    try:
        for rep in range(args.repeats):
            seed = args.seed + rep
            home = tmp / f"rep{rep}"
            run(home, "init")
            if sets:
                set_policy(home, sets)
            seeds = tmp / f"seeds{rep}.jsonl"
            write_seeds(seeds, intents, args.seeds, seed)
            # the intents are the bench's public choice: declared, so no DP label selection is spent
            labels = ",".join(sorted(intents))
            run(home, "seeds", "import", str(seeds), "--dataset", "bank", "--label-field", "intent", "--labels", labels)
            start = ["--init-prompt", public_prior(home)] if args.public_prior else []
            for mode in modes:
                print(f"repeat {rep + 1}/{args.repeats}, mode {mode}", flush=True)
                with mode_policy(home, mode):
                    row, batch = one_mode(home, mode, args, args.per_label * len(intents), seed, start)
                ind = independent(home, batch, "bank", test, seed)
                row["detection_auc_test"] = ind.get("detection_auc_test")
                row["tstr_test_ratio"] = (ind.get("tstr_test") or {}).get("ratio")
                row["repeat"] = rep
                rows.append(row)
                if mode not in shown:
                    shown[mode] = samples(home, batch, 10)
                    for s in shown[mode][:3]:
                        print(f"    [{s['label']}] {s['text'][:140]}", flush=True)
            run(home, "audit", "verify")
    finally:
        if args.keep:
            print(f"workspaces kept under {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json_out:
        args.json_out.write_text(json.dumps({"rows": rows, "intents": intents, "sets": sets}, indent=2, default=str))
    if args.samples_out:
        args.samples_out.write_text(json.dumps(shown, indent=2, ensure_ascii=False))
    print(f"\nwall time {time.perf_counter() - t0:.0f} s; {args.repeats} repeats; mean ± sd over repeats")
    table(rows, modes)

    def m(mode: str, key: str) -> str:
        v = _mean([r.get(key) for r in rows if r["mode"] == mode])
        return "-" if v is None else f"{v:.3f}"

    print(
        f"quality eps4: detection AUC {m('dp4', 'detection_auc')} (nodp {m('nodp', 'detection_auc')}, "
        f"fewshot {m('fewshot', 'detection_auc')}); label fidelity {m('dp4', 'label_fidelity')}; "
        f"TSTR@test ratio {m('dp4', 'tstr_test_ratio')}"
    )


if __name__ == "__main__":
    main()
