"""Curation's DP selection: the pure histogram math, and `curate_batch` with it on real SQLite and MiniLM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from _curate_data import add_batch, add_dataset, banking, open_ctx, statuses

from appliance.budget.units import record_unit
from appliance.curate import curate_batch
from appliance.curate import selection as sel
from appliance.curate.dp_selection import EVENT, REASON
from appliance.db import transaction, utc_now
from appliance.errors import BadInput


def _two_blobs(n: int = 12) -> tuple[np.ndarray, list[str]]:
    """Outputs of two labels, each in two tight, well-separated groups (4 directions in 8 dimensions)."""
    rng = np.random.default_rng(0)
    emb, labels = [], []
    for axis, lab in ((0, "a"), (1, "a"), (2, "b"), (3, "b")):
        centre = np.eye(8)[axis] * 10
        emb += list(centre + rng.normal(0, 0.1, (n, 8)))
        labels += [lab] * n
    return np.array(emb), labels


def test_clusters_stay_within_a_label() -> None:
    emb, labels = _two_blobs()
    cl = sel.cluster_outputs(emb, labels, per_label=2)
    assert cl.labels == ["a", "a", "b", "b"]
    for i, lab in enumerate(labels):
        assert cl.labels[cl.assign[i]] == lab
    assert sorted(cl.sizes.tolist()) == [12, 12, 12, 12]
    assert np.allclose(np.linalg.norm(cl.centroids, axis=1), 1.0)
    # fewer distinct outputs than clusters: one cluster per distinct output, never an empty one
    few = sel.cluster_outputs(np.ones((3, 8)), ["a"] * 3, per_label=5)
    assert few.labels == ["a"] and few.sizes.tolist() == [3]


def test_each_seed_counts_once_in_its_own_label() -> None:
    emb, labels = _two_blobs()
    cl = sel.cluster_outputs(emb, labels, per_label=2)
    seeds = np.vstack([np.eye(8)[0] * 3] * 5 + [np.eye(8)[2] * 3] * 2 + [np.eye(8)[0] * 3])
    seed_labels = ["a"] * 5 + ["b"] * 2 + ["c"]  # a seed whose label has no outputs adds nothing
    counts = sel.vote_counts(cl, seeds, seed_labels)
    assert counts.sum() == 7
    a0 = cl.assign[0]
    b0 = cl.assign[labels.index("b")]
    assert counts[a0] == 5 and counts[b0] == 2
    # a seed of label b that lies nearest an 'a' output still votes inside b
    crossed = sel.vote_counts(cl, np.eye(8)[:1] * 3, ["b"])
    assert crossed.sum() == 1 and cl.labels[int(np.argmax(crossed))] == "b"
    # sensitivity 1: removing one seed changes one count by exactly one
    fewer = sel.vote_counts(cl, seeds[1:], seed_labels[1:])
    assert np.abs(counts - fewer).sum() == 1


def test_noise_has_the_reserved_sigma() -> None:
    rng = np.random.default_rng(1)
    draws = np.array([sel.noisy(np.zeros(4), 4.0, rng) for _ in range(5000)])
    assert draws.std() == pytest.approx(4.0, rel=0.05) and abs(draws.mean()) < 0.2


def test_draw_follows_the_counts_and_never_takes_a_zero_cluster() -> None:
    emb, labels = _two_blobs()
    cl = sel.cluster_outputs(emb, labels, per_label=2)
    counts = np.zeros(len(cl.labels))
    counts[cl.assign[0]] = 30.0
    counts[cl.assign[labels.index("b")]] = -3.0  # a negative noisy count weighs nothing
    picked = sel.draw(cl, counts, 20, np.random.default_rng(0))
    assert len(picked) == 12, "only 12 outputs have a positive weight"
    assert set(cl.assign[picked].tolist()) == {cl.assign[0]}
    counts[cl.assign[labels.index("b")]] = 10.0
    picked = sel.draw(cl, counts, 16, np.random.default_rng(0))
    assert len(picked) == 16 and len(set(picked.tolist())) == 16
    assert sel.draw(cl, np.zeros(len(cl.labels)), 5, np.random.default_rng(0)).size == 0
    # a count under the floor weighs nothing: only the 30-count cluster is drawn from
    picked = sel.draw(cl, counts, 16, np.random.default_rng(0), floor=12.0)
    assert set(cl.assign[picked].tolist()) == {cl.assign[0]} and len(picked) == 12


# --- orchestration on a real workspace: real SQLite, real Presidio re-scan, the real MiniLM embedder ---

LABELS = ("card_arrival", "exchange_rate")
TRAIN = banking("train", labels=LABELS, per_label=40)
HOLDOUT = banking("test", labels=LABELS, per_label=8)
ON_TOPIC = banking("test", labels=LABELS, per_label=20)[-24:]  # 12 per label, none of them held out
OFF = [
    "Preheat the oven and fold the egg whites gently into the batter.",
    "The striker curled a free kick into the top corner in the last minute.",
    "Photosynthesis turns light, water and carbon dioxide into sugar.",
    "Sort the list in place and return the index of the first duplicate.",
    "The violinist tuned her strings before the second movement began.",
    "Glaciers carved the valley over many thousands of years.",
    "Knead the dough for ten minutes, then let it rise somewhere warm.",
    "The goalkeeper saved the penalty with his trailing leg.",
    "Mitochondria release energy stored in glucose molecules.",
    "Write a function that reverses a linked list without recursion.",
    "The choir rehearsed the requiem twice before the concert.",
    "Sand dunes move slowly across the desert with the wind.",
]
OUTPUTS = ON_TOPIC + [(t, LABELS[i % 2]) for i, t in enumerate(OFF)]


def _softprompt_batch(ctx, batch_id: str, prompt_id: str) -> None:
    add_batch(ctx, batch_id, "bank", OUTPUTS)
    with transaction(ctx.db) as conn:
        conn.execute("UPDATE batches SET mode = 'softprompt', prompt_id = ? WHERE id = ?", (prompt_id, batch_id))


def _prompt(ctx, prompt_id: str, *, sigma: float | None, charged: list[str]) -> None:
    meta = {"labels": list(LABELS), "dp_selection_noise": sigma}
    with transaction(ctx.db) as conn:
        conn.execute(
            "INSERT INTO prompts (id, dataset, label, model_name, model_sha256, k, n_embd, dp, exportable, epsilon,"
            " delta, artifact_path, artifact_sha256, meta, created_at) VALUES (?, 'bank', NULL, 'smollm2-135m',"
            " 'sha256:0', 4, 8, 1, 1, 4.0, 1e-6, 'none', 'sha256:0', ?, ?)",
            (prompt_id, json.dumps(meta), utc_now()),
        )
        cur = conn.execute(
            "INSERT INTO privacy_charges (dataset, prompt_id, epsilon, delta, accountant, composition, created_at)"
            " VALUES ('bank', ?, 4.0, 1e-6, 'rdp', 'basic', ?)",
            (prompt_id, utc_now()),
        )
        conn.executemany(
            "INSERT INTO unit_charges (charge_id, kind, unit, multiplicity) VALUES (?, 'record', ?, 1)",
            [(cur.lastrowid, record_unit(t)) for t in charged],
        )


@pytest.fixture
def ctx(workspace: Path):
    pol = yaml.safe_load((workspace / "policy.yaml").read_text())
    # the label check would score with the prompt's model; these crafted prompts have none
    selecting = {"keep_fraction": 0.4, "clusters_per_label": 2}
    pol["curation"].update({"label_consistency": False, "dp_selection": selecting})
    (workspace / "policy.yaml").write_text(yaml.safe_dump(pol))
    c = open_ctx(workspace)
    add_dataset(c, "bank", TRAIN, HOLDOUT)
    yield c
    c.close()


@pytest.mark.slow
def test_selection_keeps_what_the_seeds_are_near_released_once(ctx) -> None:
    from appliance.curate.dp_selection import outlook
    from appliance.store import batches

    _prompt(ctx, "sp-sel", sigma=1.0, charged=[t for t, _ in TRAIN])
    _softprompt_batch(ctx, "b-sel", "sp-sel")
    assert "keeps about 40% of the outputs" in str(outlook(ctx, batches.require(ctx.db, "b-sel")))
    rep = curate_batch(ctx, "b-sel")
    assert rep.dp_selection["dp_selection"] == "applied"
    candidates = rep.dp_selection["candidates"]  # what the filters kept (a few test queries repeat)
    assert rep.n_kept == round(0.4 * candidates) == rep.dp_selection["kept"]
    got = statuses(ctx, "b-sel")
    kept_off = sum(s == "kept" for s, _ in got[len(ON_TOPIC) :])
    assert kept_off <= 1, f"{kept_off} off-domain outputs kept of {rep.n_kept}"
    assert sum(r == REASON for _, r in got) == candidates - rep.n_kept
    ev = ctx.ledger.events(kind=EVENT)
    assert len(ev) == 1
    payload = ev[0].payload
    assert payload["prompt"] == "sp-sel" and payload["noise_multiplier"] == 1.0
    assert sum(c["outputs"] for c in payload["clusters"]) == candidates
    assert not any(t in json.dumps(payload) for t, _ in TRAIN), "no seed text in the event"
    # re-curation reuses the released choice; no second histogram
    again = curate_batch(ctx, "b-sel")
    assert again.dp_selection["dp_selection"] == "reused" and statuses(ctx, "b-sel") == got
    # another batch of the same prompt: the reservation is spent, every filtered output stays
    _softprompt_batch(ctx, "b-other", "sp-sel")
    assert "released on batch b-sel: curating this batch keeps every output" in str(
        outlook(ctx, batches.require(ctx.db, "b-other"))
    )
    other = curate_batch(ctx, "b-other")
    assert other.dp_selection == {"dp_selection": "spent", "spent_on_batch": "b-sel"}
    assert other.n_kept == candidates
    assert len(ctx.ledger.events(kind=EVENT)) == 1


def test_a_second_release_for_one_prompt_is_refused_inside_the_transaction(workspace: Path) -> None:
    from appliance.curate.dp_selection import check_unreleased

    c = open_ctx(workspace)
    try:
        check_unreleased(c.db.conn, {"prompt": "sp-x"})  # nothing released yet: no error
        c.record(EVENT, {"prompt": "sp-x", "batch": "b-1", "selected": []})
        with pytest.raises(BadInput, match="run `appliance curate` again"):
            check_unreleased(c.db.conn, {"prompt": "sp-x"})
    finally:
        c.close()


@pytest.mark.slow
def test_only_the_charged_records_vote_and_unreserved_prompts_select_nothing(ctx) -> None:
    from appliance.curate.dp_selection import _voters, outlook
    from appliance.store import batches, prompts

    charged = [t for t, lab in TRAIN if lab == "card_arrival"][:10]
    _prompt(ctx, "sp-few", sigma=4.0, charged=charged)
    texts, labels = _voters(ctx, prompts.get(ctx.db, "sp-few"))
    assert sorted(texts) == sorted(charged) and set(labels) == {"card_arrival"}
    _prompt(ctx, "sp-none", sigma=None, charged=[t for t, _ in TRAIN])
    _softprompt_batch(ctx, "b-none", "sp-none")
    assert outlook(ctx, batches.require(ctx.db, "b-none")) is None and outlook(ctx, {"prompt_id": None}) is None
    rep = curate_batch(ctx, "b-none")
    assert rep.dp_selection == {"dp_selection": "off"} and "dp_selection" not in rep.reasons
    assert not ctx.ledger.events(kind=EVENT)
