"""The probes must be able to fail: a non-DP prompt trained for many epochs on a tiny dataset with a
repeated canary is caught (canary exposure or membership inference above the gate's thresholds, so the
gate refuses), while an ε ≤ 4 DP-SGD run on the same data stays within what chance allows.

Real components end to end: the trainer (`appliance train`, SmolLM2 in torch, Opacus), the probe runner
(`appliance probe`, llama.cpp scoring, MiniLM embeddings) and the gate's own checks. Members and holdout
are drawn from one shuffled pool of 48 texts (8 members, 40 holdout: few members keep training to a few
minutes), so without a training effect their scores are exchangeable and an attack's AUC is the
Mann-Whitney statistic under the null: mean 1/2, standard deviation σ = sqrt((m + h + 1) / (12 m h)) ≈ 0.11.
The shuffle is drawn afresh on every run (its seed is in each assertion message, to replay a failure), so
the probability below is per run. This workspace lowers ``gate.probe_min_records`` to 8 for that sample.

False-failure probability of the DP test (the test failing although the DP prompt leaks nothing): each of
the three attacks fails only with AUC ≥ 1/2 + 3.6 σ, probability ≤ 1.6e-4 each (the U statistic's tails
are lighter than the normal's), 4.8e-4 for the three by the union bound; the canary (a secret the model
never memorised has rank uniform over the 10^8 secrets) fails only with exposure ≥ 14 bits, probability
2^-14 ≈ 6e-5. In all below 5.5e-4 < 1e-3.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from pathlib import Path

import pytest
from _train_data import seed_model_cache
from gate_fixtures import write_policy
from typer.testing import CliRunner

from appliance.cli.main import app
from appliance.config import Workspace
from appliance.context import Context
from appliance.db import transaction, utc_now
from appliance.gate.checks import GateFacts, evaluate, failures

pytestmark = pytest.mark.slow

MEMBERS = [
    "Freeze my card please.",
    "What is the wire fee?",
    "I forgot my password.",
    "Order a new cheque book.",
    "The ATM kept my card.",
    "Raise my card limit.",
    "My salary is missing.",
    "Close my savings account.",
]
HOLDOUT = [f"{q} {w}" for q in ("Is there a fee for", "How do I change", "Why was I charged for", "Where can I see")
           for w in ("coin deposits?", "my address?", "a new PIN?", "paper statements?", "my overdraft?",
                     "a joint account?", "the sort code?", "a card replacement?", "currency exchange?",
                     "cash withdrawals?")]  # fmt: skip
OUTPUTS = [
    "How do I update my home address?",
    "I lost my card yesterday.",
    "Can I get a paper statement?",
    "What is the limit for cash withdrawals?",
]
POOL = MEMBERS + HOLDOUT  # one pool; the split below is a seeded shuffle, so both sides are alike
SPLIT_SEED = int.from_bytes(os.urandom(4), "big")  # a fresh split each run: the false-failure bound is per run
_SHUFFLED = random.Random(SPLIT_SEED).sample(POOL, len(POOL))
MEMBERS, HOLDOUT = _SHUFFLED[:8], _SHUFFLED[8:]
NO_DP_EPOCHS, DP_EPOCHS, LR = 30, 3, 1.5
Z_NULL = 3.6  # one-sided normal quantile: P(Z >= 3.6) = 1.6e-4
EXPOSURE_NULL_BITS = 14.0  # P(exposure >= 14 bits) = 2^-14 for a secret never memorised


def null_auc_bound(m: int, h: int) -> float:
    """AUC an attack reaches with probability ≤ 1.6e-4 when member and holdout scores are exchangeable."""
    return 0.5 + Z_NULL * math.sqrt((m + h + 1) / (12 * m * h))


def _insert(conn, table: str, row: dict) -> None:
    conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("detect") / "home"
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(app, ["--home", str(home), "--actor", "auditor", *args], catch_exceptions=False)

    assert cli("init").exit_code == 0
    seed_model_cache(home)
    write_policy(
        home,
        privacy={"allow_non_dp": True,
                 "canaries": {"count": 1, "template": "my account number is {secret}", "digits": 8, "repeats": 8}},
        training={"virtual_tokens": 8, "batch_size": 16},
        generation={"threads": 1},
        gate={"max_mia_auc": 0.8, "max_tpr_at_1pct_fpr": 0.5, "probe_canary_candidates": 100, "probe_bootstrap": 200,
              "probe_min_records": 8},
    )  # fmt: skip
    ctx = Context.open(Workspace(home), actor="auditor")
    with transaction(ctx.db) as conn:  # the split is fixed here; `seeds import` and its split are tested elsewhere
        _insert(conn, "datasets", {"name": "tiny", "created_at": utc_now(), "source_sha256": "sha256:" + "1" * 64,
                                   "policy_sha256": ctx.policy_sha256, "n_records": len(MEMBERS) + len(HOLDOUT),
                                   "n_train": len(MEMBERS), "n_holdout": len(HOLDOUT)})  # fmt: skip
        for i, t in enumerate(MEMBERS + HOLDOUT):
            _insert(conn, "records", {"dataset": "tiny", "source_index": i, "text": t, "created_at": utc_now(),
                                      "split": "train" if i < len(MEMBERS) else "holdout",
                                      "text_sha256": "sha256:" + f"{i:064x}"})  # fmt: skip
    out: dict = {"home": home, "ctx": ctx, "cli": cli}
    for mode, args in (("nodp", ["--no-dp", "--epochs", str(NO_DP_EPOCHS)]),
                       ("dp", ["--epsilon", "4", "--epochs", str(DP_EPOCHS)])):  # fmt: skip
        res = cli("train", "tiny", *args, "--lr", str(LR))
        assert res.exit_code == 0, res.output
        pid = re.search(r"prompt (\S+)", res.stdout).group(1)
        sha = ctx.db.conn.execute("SELECT model_sha256 FROM prompts WHERE id = ?", (pid,)).fetchone()[0]
        with transaction(ctx.db) as conn:  # a small batch of synthetic text for the DCR probe
            _insert(conn, "batches", {"id": f"b-{mode}", "dataset": "tiny", "mode": "softprompt", "prompt_id": pid,
                                      "model_name": "smollm2-135m", "model_sha256": sha, "params": "{}",
                                      "n_requested": len(OUTPUTS), "status": "complete",
                                      "exportable": int(mode == "dp"), "created_at": utc_now()})  # fmt: skip
            for i, t in enumerate(OUTPUTS):
                _insert(conn, "outputs", {"batch_id": f"b-{mode}", "idx": i, "text": t, "n_tokens": 9,
                                          "findings": "[]", "status": "kept", "created_at": utc_now()})  # fmt: skip
        res = cli("probe", f"b-{mode}", "--json")
        assert res.exit_code == 0, res.output
        out[mode] = json.loads(res.stdout)
        out[f"{mode}_prompt"] = pid
    yield out
    ctx.close()


def _gate_failures(ctx: Context, summary: dict) -> list[str]:
    facts = GateFacts(mode="softprompt", dp=True, epsilon=4.0, delta=1e-5, dataset_epsilon=4.0, n_records=4,
                      curated=True, pii_findings=0, verbatim_leaks=0, evaluated=True, mauve=1.0,
                      mia_auc=summary["mia_auc_upper"], tpr_at_1pct_fpr=summary["tpr_at_1pct_fpr_upper"],
                      canary_exposure_bits=summary["canary_exposure_bits"],
                      canary_output_hits=summary["canary_output_hits"],
                      dcr_ratio=summary["dcr_ratio_lower"])  # fmt: skip
    return [f["check"] for f in failures(evaluate(facts, ctx.policy.gate, ctx.policy.privacy))]


def test_non_dp_memorisation_is_detected(runs):
    """Exposure or membership inference (or both) catch the non-DP prompt: the gate's own checks refuse it.

    How strongly depends on the split: with members drawn from the whole pool, most are the longer templated
    questions, which take the prompt's capacity from the canary (exposure 3-16 bits seen, MIA AUC 0.7-1.0);
    the gate compares the MIA upper bound, which catches every such run.
    """
    s = runs["nodp"]["summary"]
    caught = set(_gate_failures(runs["ctx"], s)) & {"canary_exposure_bits", "mia_auc", "tpr_at_1pct_fpr"}
    assert caught, (s, SPLIT_SEED)
    (c,) = runs["nodp"]["metrics"]["canary"]["canaries"]
    assert c["n_candidates"] == 100


def test_dp_run_stays_within_chance(runs):
    """Each attack's AUC and the canary's exposure stay under their null bounds (false failure < 1e-3: see above)."""
    rec = runs["dp"]
    attacks = rec["metrics"]["mia"]["attacks"]
    assert set(attacks) == {"loss", "min_k", "ref_calibrated"}
    for name, a in attacks.items():
        assert (a["n_members"], a["n_holdout"]) == (len(MEMBERS), len(HOLDOUT))
        assert a["auc"] < null_auc_bound(a["n_members"], a["n_holdout"]), (name, a, SPLIT_SEED)
    assert rec["summary"]["canary_exposure_bits"] < EXPOSURE_NULL_BITS, (rec["summary"], SPLIT_SEED)


def test_probe_records_name_the_prompts_and_models(runs):
    ctx: Context = runs["ctx"]
    rows = ctx.db.conn.execute("SELECT batch_id, prompt_id, model_sha256 FROM probes ORDER BY created_at").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("b-nodp", runs["nodp_prompt"]), ("b-dp", runs["dp_prompt"])]
    kinds = [e.kind for e in ctx.ledger.events() if e.kind in ("train.non_dp", "train.run", "probe.run")]
    assert kinds == ["train.non_dp", "probe.run", "train.run", "probe.run"]


def test_report_shows_both_runs(runs, tmp_path: Path):
    out = tmp_path / "r.html"
    assert runs["cli"]("audit", "report", "--out", str(out)).exit_code == 0
    html = out.read_text(encoding="utf-8")
    assert runs["nodp_prompt"] in html and runs["dp_prompt"] in html and "NON-DP" in html
