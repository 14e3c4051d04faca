"""`evaluate_batch` on a curated batch (real Presidio, real MiniLM, real SQLite): record, audit, TSTR."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _curate_data import add_batch, add_dataset, banking, open_ctx

from appliance.curate import curate_batch
from appliance.db import transaction, utc_now
from appliance.errors import BadInput
from appliance.evaluate import Embedder, default_embedder, evaluate_batch, latest_evaluation

pytestmark = pytest.mark.slow

TRAIN = banking("train", per_label=30)
TEST = banking("test", per_label=30)
HOLDOUT = [r for i, r in enumerate(TEST) if i % 30 < 10]
SYNTHETIC = [r for i, r in enumerate(TEST) if i % 30 >= 10]  # real held-out text standing in for good output


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return default_embedder()


@pytest.fixture
def ctx(workspace: Path):
    c = open_ctx(workspace)
    add_dataset(c, "bank", TRAIN, HOLDOUT)
    add_batch(c, "b-good", "bank", SYNTHETIC)
    yield c
    c.close()


def test_refuses_uncurated_batch(ctx, embedder: Embedder) -> None:
    with pytest.raises(BadInput, match="appliance curate b-good"):
        evaluate_batch(ctx, "b-good", embedder=embedder)
    assert ctx.db.conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 0


def test_evaluation_record_audit_and_tstr(ctx, embedder: Embedder) -> None:
    cur = curate_batch(ctx, "b-good")
    assert cur.n_kept >= 60
    report = evaluate_batch(ctx, "b-good", embedder=embedder)
    mt = report.metrics
    assert report.reference == "holdout" and report.n_synthetic == cur.n_kept and report.n_reference == len(HOLDOUT)
    assert mt["mauve"] > 0.5, "held-out real text is close to the holdout"
    for side in ("synthetic", "reference"):
        assert 0 < mt[side]["distinct_1"] <= 1 and 0 <= mt[side]["self_bleu"] <= 1
        assert 0 < mt[side]["mean_pairwise_distance"] < 1
    assert mt["length"]["mean_ratio"] == pytest.approx(1.0, abs=0.5)
    lex = mt["lexical_detection"]  # real held-out text against real held-out text: nothing to tell apart
    assert mt["lexical_detection_auc"] == lex["auc"] < 0.75 and lex["n_real"] == min(len(HOLDOUT), cur.n_kept)
    assert mt["reliability"]["lexical_detection_auc"] == {"n": lex["n_real"], "min_n": 50, "reliable": False}
    skipped = {"n": 100, "skipped": True, "n_synthetic": cur.n_kept, "n_reference": len(HOLDOUT)}
    assert mt["fixed_n"] == skipped, "the shipped n = 100 is more than this holdout holds"
    t = mt["tstr"]
    assert t["n_labels"] == 4 and t["n_test"] == len(HOLDOUT) and t["n_train"] >= 60
    assert t["acc_real"] > 0.7 and t["ratio"] > 0.8, t

    row = latest_evaluation(ctx, "b-good")
    assert row is not None and row["id"] == report.evaluation_id and row["mauve"] == pytest.approx(mt["mauve"])
    assert row["tstr_ratio"] == pytest.approx(t["ratio"]) and row["embedding_sha256"] == embedder.sha256
    assert row["curation_id"] is not None and row["metrics"]["n_kept"] == cur.n_kept
    (event,) = ctx.ledger.events(kind="evaluate.run")
    assert event.seq == report.event_seq and event.payload["model_sha256"] == embedder.sha256
    assert event.payload["n_synthetic"] == report.n_synthetic and event.payload["metrics"]["mauve"] == mt["mauve"]
    blob = json.dumps(event.payload)
    assert not any(text in blob for text, _ in SYNTHETIC[:20] + HOLDOUT[:20])


def test_both_detection_aucs_at_a_fixed_n(ctx, embedder: Embedder) -> None:
    curation = ctx.policy.curation.model_copy(update={"eval_fixed_n": 30, "eval_fixed_n_draws": 3})
    ctx.policy = ctx.policy.model_copy(update={"curation": curation})
    curate_batch(ctx, "b-good")
    mt = evaluate_batch(ctx, "b-good", embedder=embedder).metrics
    fx = mt["fixed_n"]
    assert fx["n"] == 30 and fx["draws"] == 3
    for key in ("detection", "lexical_detection"):  # real held-out text on both sides: nothing to tell apart
        d = fx[key]
        assert (
            d["n"] == 30 and len(d["aucs"]) == 3 and d["auc"] < 0.75 and d["auc"] == pytest.approx(sum(d["aucs"]) / 3)
        )
    (event,) = ctx.ledger.events(kind="evaluate.run")
    assert event.payload["metrics"]["fixed_n"] == fx, "audited with the other metrics"


def test_reference_file_and_unlabeled_dataset(ctx, embedder: Embedder, tmp_path: Path) -> None:
    add_dataset(ctx, "plain", [(t, None) for t, _ in TRAIN], [(t, None) for t, _ in HOLDOUT], labeled=False)
    add_batch(ctx, "b-plain", "plain", [(t, None) for t, _ in SYNTHETIC[:40]])
    curate_batch(ctx, "b-plain")
    ref = tmp_path / "ref.jsonl"
    ref.write_text("".join(json.dumps({"text": t}) + "\n" for t, _ in TEST[:25]))
    report = evaluate_batch(ctx, "b-plain", reference=str(ref), embedder=embedder)
    assert report.reference.startswith("file:sha256:") and report.n_reference == 25
    assert report.metrics["tstr"] is None
    with pytest.raises(BadInput, match="'holdout' or a readable"):
        evaluate_batch(ctx, "b-plain", reference=str(tmp_path / "missing.jsonl"), embedder=embedder)


def test_new_outputs_after_curation_and_too_few_kept(ctx, embedder: Embedder) -> None:
    curate_batch(ctx, "b-good")
    with transaction(ctx.db) as conn:
        conn.execute(
            "INSERT INTO outputs (batch_id, idx, text, label, n_tokens, status, created_at)"
            " VALUES ('b-good', 999, 'a late output about my card', 'card_arrival', 6, 'new', ?)",
            (utc_now(),),
        )
    with pytest.raises(BadInput, match="since its last curation"):
        evaluate_batch(ctx, "b-good", embedder=embedder)
    add_batch(ctx, "b-tiny", "bank", [("Card?", "card_arrival"), ("Where is my new card, it is late?", None)])
    curate_batch(ctx, "b-tiny")
    with pytest.raises(BadInput, match="1 kept outputs"):
        evaluate_batch(ctx, "b-tiny", embedder=embedder)
