"""What the gate knows about a batch: DP and budget from the prompt and ledger, curation counters,
the evaluation record and the latest probe record — read from the database, numbers only.

Every row read here is first checked against the audit event that recorded it (:mod:`appliance.gate.bound`):
an edited prompt, batch, privacy charge, curation, evaluation or probe row is exit 4, never a fact. The MIA
facts are the upper ends of the probes' 95% bootstrap intervals and the DCR fact the lower end, so the gate decides on
what the sample can show, not on a point estimate.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from typing import Any

import sqlite_utils

from appliance.budget.ledger import dataset_spent, most_charged
from appliance.gate import bound
from appliance.gate.checks import GateFacts
from appliance.store import batches, prompts, results
from appliance.store.results import HOLDOUT


@dataclass(frozen=True)
class BatchFacts:
    """The gate's facts plus the rows they came from (for the manifest)."""

    facts: GateFacts
    batch: dict[str, Any]
    prompt: dict[str, Any] | None
    curation: dict[str, Any] | None
    evaluation: dict[str, Any] | None
    probe: dict[str, Any] | None
    labels_public: bool = True  # every label on a kept output was declared public schema at import
    budget_unit: str = "record"  # what the per-unit caps bound: one record, or one declared subject


def dataset_epsilon(conn: sqlite3.Connection, dataset: str) -> tuple[float, float]:
    """Privacy spent on ``dataset`` (ε, δ): :func:`appliance.budget.ledger.dataset_spent`, the one definition."""
    spent = dataset_spent(conn, dataset)
    return spent.epsilon, spent.delta


def evaluation_value(evaluation: dict[str, Any] | None, key: str) -> float | None:
    """A numeric metric of an evaluation, whether it is a column or inside the JSON metrics."""
    if evaluation is None:
        return None
    for src in (evaluation, evaluation.get("metrics") or {}):
        v = src.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, dict) and isinstance(v.get("value"), int | float):
            return float(v["value"])
    return None


def _kept_leaks(event: dict[str, Any], curation: dict[str, Any]) -> int:
    """Kept outputs sharing an n-gram with a training seed, from the verified event (older: the row's n-gram hits)."""
    return int(event["kept_leaking_outputs"] if "kept_leaking_outputs" in event else curation["kept_leak_hits"])


def labelled_outputs(conn: sqlite3.Connection, batch_id: str) -> bool:
    """True when the batch's kept outputs carry labels (then label fidelity is checked)."""
    return bool(batches.kept_labels(conn, batch_id))


def labels_declared_public(conn: sqlite3.Connection, dataset: str, batch_id: str) -> bool:
    """True when the kept outputs carry no label, or only labels the dataset's import declared public.

    The declared set is read from the ``seeds.import`` audit event (checked against the chain), not a row.
    """
    labels = batches.kept_labels(conn, batch_id)
    if not labels:
        return True
    _, payload = bound.import_event(conn, dataset)
    public = payload.get("labels_public")
    return isinstance(public, list) and labels <= set(public)


def gather(db: sqlite_utils.Database, batch: dict[str, Any]) -> BatchFacts:
    """Collect every fact the gate checks for ``batch`` (a ``batches`` row)."""
    conn = db.conn
    prompt = prompts.get(conn, batch["prompt_id"]) if batch.get("prompt_id") else None
    cur = results.latest_curation(conn, batch["id"])
    # the quality floor compares the seeds with what would leave: only an evaluation against the holdout, of the
    # latest curation's kept outputs, counts (not one against a --reference file, nor of an earlier curation)
    ev = results.latest_evaluation(conn, batch["id"], reference=HOLDOUT, curation_id=cur["id"]) if cur else None
    probe = results.latest_probe(conn, batch["id"])
    bound.check_batch(conn, batch)
    bound.check_charges(conn)
    bound.check_records(conn, batch["dataset"])
    bound.check_outputs(conn, batch["id"])
    cur_event = bound.check_curation(conn, cur) if cur is not None else {}
    rows = ((prompt, bound.check_prompt), (ev, bound.check_evaluation))
    for row, check in (*rows, (probe, bound.check_probe)):
        if row is not None:
            check(conn, row)
    summ = probe["summary"] if probe else {}
    dp = bool(prompt and prompt["dp"] and prompt["exportable"] and batch["mode"] == "softprompt")
    facts = GateFacts(
        mode=str(batch["mode"]),
        dp=dp,
        epsilon=float(prompt["epsilon"]) if prompt and prompt["epsilon"] is not None else None,
        delta=float(prompt["delta"]) if prompt and prompt["delta"] is not None else None,
        dataset_epsilon=dataset_epsilon(conn, batch["dataset"])[0],
        n_records=batches.count_outputs(conn, batch["id"], "kept"),
        curated=cur is not None,
        pii_findings=int(cur["kept_pii_hits"]) if cur else None,
        verbatim_leaks=_kept_leaks(cur_event, cur) if cur else None,
        leak_allowance=int(cur_event.get("leak_allowance") or 0),
        evaluated=ev is not None,
        mauve=evaluation_value(ev, "mauve"),
        mia_auc=summ.get("mia_auc_upper"),
        tpr_at_1pct_fpr=summ.get("tpr_at_1pct_fpr_upper"),
        canary_exposure_bits=summ.get("canary_exposure_bits"),
        canary_output_hits=summ.get("canary_output_hits"),
        dcr_ratio=summ.get("dcr_ratio_lower"),
        detection_auc=evaluation_value(ev, "detection_auc"),
        label_fidelity=evaluation_value(ev, "label_fidelity"),
        labelled=labelled_outputs(conn, batch["id"]),
    )
    worst = most_charged(conn, batch["dataset"])
    facts = replace(
        facts,
        record_epsilon=worst[1].epsilon if worst else 0.0,
        record_delta=worst[1].delta if worst else 0.0,
    )
    public = labels_declared_public(conn, batch["dataset"], batch["id"])
    return BatchFacts(facts, batch, prompt, cur, ev, probe, public, bound.budget_unit(conn, batch["dataset"]))
