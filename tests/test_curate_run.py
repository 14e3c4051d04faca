"""`curate_batch` on crafted outputs with the real Presidio engine and real SQLite: every reason, no deletes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from _curate_data import add_batch, add_dataset, banking, open_ctx, statuses

from appliance.curate import (
    check_seed_provenance,
    curate_batch,
    latest_curation,
    matches_exports,
    record_export_hashes,
    text_hash,
)
from appliance.curate.run import CurationReport
from appliance.curate.text import words
from appliance.errors import BadInput, NotFound, PolicyViolation

pytestmark = pytest.mark.slow

TRAIN = banking("train", per_label=25)
HOLDOUT = banking("test", per_label=8)
COPIED = TRAIN[3][0]
LONG = "the app showed the card as shipped but nothing came in the post yet. " * 30  # 2,130 characters

CRAFTED: list[tuple[str, str | None]] = [
    ("Is there a way to see where my replacement card is right now?", "card_arrival"),  # 0 kept
    ("Please charge the fee to card 4111 1111 1111 1111 today.", "card_arrival"),  # 1 output_pii
    ("Hello, " + COPIED + " Thanks.", "card_arrival"),  # 2 kept: seed overlap is counted, never filtered
    ("Card?", "card_arrival"),  # 3 too_short
    (LONG, "exchange_rate"),  # 4 too_long
    ("#### $$$$ %%%% &&&& **** ++++ ====", "exchange_rate"),  # 5 non_text
    ("rate rate rate rate rate rate rate rate rate rate rate", "exchange_rate"),  # 6 repetitive
    ("IS THERE a way to see where my replacement card is right now?  ", "card_arrival"),  # 7 exact dup of 0
    ("Is there a way to see where my replacement card is right now, please?", "card_arrival"),  # 8 near dup of 0
    ("Why did the bank give me such a poor rate when I changed dollars?", "exchange_rate"),  # 9 kept
]
EXPECTED = [
    ("kept", None),
    ("dropped", "output_pii"),
    ("kept", None),
    ("dropped", "too_short"),
    ("dropped", "too_long"),
    ("dropped", "non_text"),
    ("dropped", "repetitive"),
    ("dropped", "exact_duplicate"),
    ("dropped", "near_duplicate"),
    ("kept", None),
    ("dropped", "pii"),
]


@pytest.fixture
def ctx(workspace: Path):
    c = open_ctx(workspace)
    add_dataset(c, "bank", TRAIN, HOLDOUT)
    add_batch(c, "b-crafted", "bank", CRAFTED, dropped_pii=1)
    yield c
    c.close()


def _curate_under(workspace: Path, batch_id: str, **curation: object) -> CurationReport:
    """Curate ``batch_id`` under the workspace policy with these ``curation`` keys changed."""
    pol = yaml.safe_load((workspace / "policy.yaml").read_text())
    pol["curation"].update(curation)
    (workspace / "policy.yaml").write_text(yaml.safe_dump(pol))
    changed = open_ctx(workspace)
    try:
        return curate_batch(changed, batch_id)
    finally:
        changed.close()


def test_every_reason_marked_and_nothing_deleted(ctx) -> None:
    report = curate_batch(ctx, "b-crafted")
    assert statuses(ctx, "b-crafted") == EXPECTED
    assert report.n_total == 11 and report.n_kept == 3 and report.n_dropped == 8
    assert report.reasons == {
        "exact_duplicate": 1,
        "near_duplicate": 1,
        "non_text": 1,
        "output_pii": 1,
        "pii": 1,
        "repetitive": 1,
        "too_long": 1,
        "too_short": 1,
    }
    assert report.leak_hits >= 1 and report.kept_leak_hits == report.leak_hits, "the gate sees the overlap"
    assert report.pii_hits >= 1 and report.kept_pii_hits == 0
    leak_row = ctx.db.conn.execute("SELECT leak_hits, pii_hits FROM outputs WHERE batch_id='b-crafted' AND idx=2")
    leak_hits, pii_hits = leak_row.fetchone()
    assert len(words(COPIED)) >= 8 and leak_hits == len(words(COPIED)) - 7
    assert pii_hits == 0
    assert ctx.db.conn.execute("SELECT COUNT(*) FROM outputs WHERE batch_id='b-crafted'").fetchone()[0] == 11


def test_the_label_check_sees_only_what_passed_and_drops_what_it_rejects(ctx, monkeypatch) -> None:
    """Orchestration only (the check itself: tests/test_curate_consistency.py, tests/test_gate_binding_real.py):
    the costly check scores just the outputs every other filter kept, last, and its rejects become off_label."""
    seen: list[list[str]] = []

    def check(_ctx, _batch, texts, labels):
        seen.append(list(texts))
        return [t != CRAFTED[9][0] for t in texts], {"label_consistency": "on"}

    monkeypatch.setattr("appliance.curate.run.label_check", check)
    report = curate_batch(ctx, "b-crafted")
    assert seen == [[CRAFTED[0][0], CRAFTED[2][0], CRAFTED[9][0]]]
    assert statuses(ctx, "b-crafted") == [*EXPECTED[:9], ("dropped", "off_label"), EXPECTED[10]]
    assert report.reasons["off_label"] == 1 and report.n_kept == 2


def test_audit_event_and_summary_row_carry_counts_only(ctx) -> None:
    report = curate_batch(ctx, "b-crafted")
    (event,) = ctx.ledger.events(kind="curate.run")
    assert event.seq == report.event_seq
    assert event.payload["reasons"] == report.reasons and event.payload["n_kept"] == 3
    assert event.payload["model_sha256"], "the PII engine's model hash is recorded"
    blob = json.dumps(event.payload)
    for text, _ in CRAFTED[:3]:
        assert text not in blob and "4111" not in blob
    summary = latest_curation(ctx, "b-crafted")
    assert summary is not None and summary["n_kept"] == 3 and summary["event_seq"] == event.seq
    assert summary["kept_leak_hits"] == report.leak_hits and summary["reasons"] == report.reasons


def test_recurate_is_idempotent_and_follows_policy(ctx, workspace: Path) -> None:
    first = curate_batch(ctx, "b-crafted")
    again = curate_batch(ctx, "b-crafted")
    assert (again.reasons, again.n_kept) == (first.reasons, first.n_kept)
    third = _curate_under(workspace, "b-crafted", output_pii_action="keep", leak_ngram_tokens=40)
    assert "output_pii" not in third.reasons and third.kept_leak_hits == 0
    assert third.kept_pii_hits >= 1, "kept PII is still counted for the gate"
    assert len(ctx.ledger.events(kind="curate.run")) == 3


def test_unknown_running_and_empty_batches_refused(ctx) -> None:
    with pytest.raises(NotFound):
        curate_batch(ctx, "b-nope")
    add_batch(ctx, "b-running", "bank", CRAFTED[:2], status="running")
    with pytest.raises(BadInput, match="still being generated"):
        curate_batch(ctx, "b-running")
    add_batch(ctx, "b-empty", "bank", [])
    with pytest.raises(BadInput, match="no outputs"):
        curate_batch(ctx, "b-empty")


def test_provenance_hashes_match_normalised_text(ctx) -> None:
    exported = ["Is there a way to see where my replacement card is right now?", "Another exported record."]
    assert record_export_hashes(ctx.db.conn, [text_hash(t) for t in exported], "exp-1") == 2
    assert record_export_hashes(ctx.db, [text_hash(exported[0])], "exp-2") == 0
    seeds = ["  is there a way to see where my REPLACEMENT card is right now?", "a fresh seed", exported[1]]
    assert matches_exports(ctx.db, seeds) == [True, False, True]
    assert check_seed_provenance(ctx.db, seeds, ctx.policy.curation) == [0, 2]
    refuse = ctx.policy.curation.model_copy(update={"export_match_action": "refuse"})
    with pytest.raises(PolicyViolation, match="2 seed records match"):
        check_seed_provenance(ctx.db, seeds, refuse)
    with pytest.raises(BadInput):
        record_export_hashes(ctx.db, ["not a hash"])
    raw = ctx.db.conn.execute("SELECT group_concat(hash, '|') FROM export_hashes").fetchone()[0]
    assert "replacement" not in raw


def test_a_soft_prompt_batch_drops_outputs_repeating_its_label_prefix(ctx, workspace: Path) -> None:
    """The prompt's public template and DP keywords come from its meta row; a few-shot batch has none."""
    from appliance.db import transaction

    meta = {
        "labels": ["card_arrival", "exchange_rate"],
        "label_template": "A customer message about {label_words}{label_keywords}:\n",
        "label_keywords": {"card_arrival": ["track"], "exchange_rate": []},
    }
    outputs = [
        ("Can I track where my card is (track)", "card_arrival"),  # 0 prompt_echo: the keywords' parenthetical
        ("A customer message about exchange rate:", "exchange_rate"),  # 1 prompt_echo: the prefix as a record
        ("Is my card (the new one) coming this week?", "card_arrival"),  # 2 kept
    ]
    add_batch(ctx, "b-echo", "bank", outputs)
    with transaction(ctx.db) as conn:
        conn.execute(
            "INSERT INTO prompts (id, dataset, label, model_name, model_sha256, k, n_embd, dp, exportable, epsilon,"
            " delta, artifact_path, artifact_sha256, meta, created_at) VALUES ('sp-echo', 'bank', NULL,"
            " 'smollm2-135m', 'sha256:0', 4, 8, 1, 1, 4.0, 1e-6, 'none', 'sha256:0', ?, '2026-12-06T00:00:00Z')",
            (json.dumps(meta),),
        )
        conn.execute("UPDATE batches SET mode = 'softprompt', prompt_id = 'sp-echo' WHERE id = 'b-echo'")
    report = _curate_under(workspace, "b-echo", label_consistency=False)  # it would score with the prompt's model
    assert statuses(ctx, "b-echo") == [("dropped", "prompt_echo"), ("dropped", "prompt_echo"), ("kept", None)]
    assert report.reasons == {"prompt_echo": 2}
    # the same texts in a few-shot batch: no label prefix, nothing to echo
    add_batch(ctx, "b-fewshot", "bank", outputs)
    assert curate_batch(ctx, "b-fewshot").reasons == {}


def test_paraphrases_are_dropped_as_semantic_duplicates_when_the_policy_asks(ctx, workspace: Path) -> None:
    """With the real MiniLM embedder: a rewording of an earlier kept output goes (cosine above 0.9), another question
    on the same topic stays, and nothing is dropped for it under the shipped policy (off)."""
    outputs = [
        ("How soon will my new card arrive?", "card_arrival"),  # 0 kept
        ("How soon will my new card get here?", "card_arrival"),  # 1 a paraphrase of 0 (few shared 5-grams)
        ("Why was I charged a fee for taking cash out?", "card_arrival"),  # 2 kept: another question
    ]
    add_batch(ctx, "b-para", "bank", outputs)
    assert curate_batch(ctx, "b-para").reasons == {}
    report = _curate_under(workspace, "b-para", semantic_dup_cosine=0.9)
    assert statuses(ctx, "b-para") == [("kept", None), ("dropped", "semantic_duplicate"), ("kept", None)]
    assert report.reasons == {"semantic_duplicate": 1}
    event = ctx.db.conn.execute("SELECT payload FROM events WHERE kind = 'curate.run' ORDER BY seq DESC").fetchone()
    facts = json.loads(event[0])["semantic_dup"]
    assert facts["cosine"] == 0.9 and facts["embedder"].startswith("all-MiniLM-L6-v2")
    assert facts["embedder_sha256"].startswith("sha256:")
