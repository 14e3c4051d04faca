"""Database fixtures for the gate/export/report tests: a dataset, a DP and a non-DP prompt, curated
batches and probe records written straight into a real SQLite workspace (orchestration tests; the
end-to-end probe test trains and probes for real)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from appliance.audit.ledger import append_in_tx
from appliance.budget.ledger import dataset_units, insert_charge_in_tx
from appliance.config import Workspace
from appliance.context import Context
from appliance.curate.kept import kept_digest
from appliance.db import transaction, utc_now

GOOD_SUMMARY = {
    "mia_auc": 0.52,
    "mia_auc_upper": 0.57,
    "tpr_at_1pct_fpr": 0.0,
    "tpr_at_1pct_fpr_upper": 0.02,
    "canary_exposure_bits": 1.5,
    "canary_output_hits": 0,
    "dcr_ratio": 1.02,
    "dcr_ratio_lower": 0.93,
    "dcr_attack_auc": 0.5,
    "too_few_records": [],
}
TEXTS = [
    "I would like to check the balance of my savings account please.",
    "How long does a transfer to another bank usually take?",
    "My card was declined at the supermarket this morning.",
    "Can I change the PIN of my debit card online?",
    "Why was I charged a fee for withdrawing cash?",
]


def write_policy(home: Path, **sections: dict[str, Any]) -> None:
    """A workspace policy.yaml: the shipped default with ``sections`` merged in."""
    from appliance.policy.loader import default_policy_path

    doc = yaml.safe_load(default_policy_path().read_text(encoding="utf-8"))
    for name, values in sections.items():
        doc[name] = {**doc.get(name, {}), **values}
    (home / "policy.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")


def _insert(conn, table: str, row: dict[str, Any]) -> None:
    conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))


def bind(conn, table: str, row: dict[str, Any]) -> int:
    """Append the audit event the real stage writes with ``row`` (the gate checks rows against it); its seq."""
    if table == "prompts":
        keys = ("dataset", "model_sha256", "epsilon", "delta", "noise_multiplier", "sample_rate", "steps",
                "artifact_sha256")  # fmt: skip
        payload = {"prompt_id": row["id"], "dp": bool(row["dp"]), "exportable": bool(row["exportable"]),
                   **{k: row.get(k) for k in keys}}  # fmt: skip
        kind = "train.run" if row["dp"] else "train.non_dp"
    elif table == "batches":
        payload = {"batch_id": row["id"], **{k: row.get(k) for k in ("dataset", "mode", "prompt_id", "model_sha256")}}
        kind = "generate.start"
    elif table == "evaluations":
        payload = {"batch": row["batch_id"], "metrics": json.loads(row["metrics"]), "reference": row["reference"],
                   "curation_id": row.get("curation_id")}  # fmt: skip
        kind = "evaluate.run"
    elif table == "curations":
        payload = {"batch": row["batch_id"], **{k: row[k] for k in ("kept_leak_hits", "kept_pii_hits", "n_kept")},
                   "kept_sha256": kept_digest(conn, row["batch_id"])}  # fmt: skip
        kind = "curate.run"
    else:
        payload = {"probe_id": row["id"], "batch_id": row["batch_id"], "prompt_id": row["prompt_id"],
                   "summary": json.loads(row["summary"])}  # fmt: skip
        kind = "probe.run"
    return append_in_tx(conn, kind, payload, "tester").seq


def insert_bound(conn, table: str, row: dict[str, Any]) -> None:
    """Insert ``row`` with its audit event (and, for curations and probes, the event's seq in the row)."""
    seq = bind(conn, table, row)
    _insert(conn, table, {**row, "event_seq": seq} if table in ("curations", "evaluations", "probes") else row)


def seed_workspace(
    home: Path,
    *,
    summary: dict[str, Any] | None = None,
    dp: bool = True,
    epsilon: float = 3.0,
    curated: bool = True,
    evaluated: bool = True,
    mode: str = "softprompt",
    batch_id: str = "b-test",
    kept_pii: int = 0,
    kept_leaks: int = 0,
    mauve: float = 0.9,
    probe: bool = True,
) -> str:
    """Insert one dataset, prompt, batch (5 kept outputs), curation, evaluation and probe record."""
    ctx = Context.open(Workspace(home), actor="tester")
    now = utc_now()
    prompt_id = f"pr-{batch_id}"
    with transaction(ctx.db) as conn:
        if conn.execute("SELECT 1 FROM datasets WHERE name = 'bank'").fetchone() is None:
            _insert(
                conn,
                "datasets",
                {
                    "name": "bank",
                    "created_at": now,
                    "source_sha256": "sha256:" + "1" * 64,
                    "policy_sha256": ctx.policy_sha256,
                    "n_records": 10,
                    "n_train": 8,
                    "n_holdout": 2,
                },
            )
            for i, t in enumerate(TEXTS * 2):
                _insert(
                    conn,
                    "records",
                    {
                        "dataset": "bank",
                        "source_index": i,
                        "text": t,
                        "split": "train" if i < 8 else "holdout",
                        "text_sha256": "sha256:" + "2" * 64,
                        "findings": json.dumps(
                            [{"type": "PERSON", "start": 0, "end": 3, "score": 0.9, "action": "pseudonymize"}]
                        ),
                        "created_at": now,
                    },
                )
        insert_bound(
            conn,
            "prompts",
            {
                "id": prompt_id,
                "dataset": "bank",
                "model_name": "smollm2-135m",
                "model_sha256": "sha256:" + "3" * 64,
                "k": 4,
                "n_embd": 576,
                "dp": int(dp),
                "exportable": int(dp),
                "epsilon": epsilon if dp else None,
                "delta": 1e-5 if dp else None,
                "noise_multiplier": 1.1 if dp else None,
                "sample_rate": 0.1,
                "steps": 30,
                "clip_norm": 1.0,
                "accountant": "rdp" if dp else None,
                "artifact_path": "artifacts/x.safetensors",
                "artifact_sha256": "sha256:" + "4" * 64,
                "created_at": now,
            },
        )
        if dp:  # what a settled run leaves: a charge on every train record, bound to its event
            insert_charge_in_tx(
                conn,
                "bank",
                epsilon=epsilon,
                delta=1e-5,
                accountant="rdp",
                actor="tester",
                units=dataset_units(conn, "bank"),
                prompt_id=prompt_id,
                status="charged",
            )
        insert_bound(
            conn,
            "batches",
            {
                "id": batch_id,
                "dataset": "bank",
                "mode": mode,
                "prompt_id": prompt_id if mode == "softprompt" else None,
                "model_name": "smollm2-135m",
                "model_sha256": "sha256:" + "3" * 64,
                "params": "{}",
                "n_requested": 5,
                "status": "complete",
                "exportable": int(dp),
                "created_at": now,
            },
        )
        for i, t in enumerate(TEXTS):
            _insert(
                conn,
                "outputs",
                {
                    "batch_id": batch_id,
                    "idx": i,
                    "text": t.replace("my", "our"),
                    "n_tokens": 12,
                    "findings": "[]",
                    "status": "kept",
                    "created_at": now,
                },
            )
        if curated:
            insert_bound(
                conn,
                "curations",
                {
                    "batch_id": batch_id,
                    "n_total": 5,
                    "n_kept": 5,
                    "n_dropped": 0,
                    "reasons": "{}",
                    "leak_hits": kept_leaks,
                    "pii_hits": kept_pii,
                    "kept_leak_hits": kept_leaks,
                    "kept_pii_hits": kept_pii,
                    "policy_sha256": ctx.policy_sha256,
                    "created_at": now,
                },
            )
        if evaluated:
            insert_evaluation(conn, batch_id, mauve)
        if probe:
            insert_bound(
                conn,
                "probes",
                {
                    "id": f"p-{batch_id}",
                    "batch_id": batch_id,
                    "dataset": "bank",
                    "prompt_id": prompt_id,
                    "model_sha256": "sha256:" + "3" * 64,
                    "summary": json.dumps(summary or GOOD_SUMMARY),
                    "metrics": json.dumps(
                        {
                            "mia": {
                                "status": "ok",
                                "attacks": {
                                    "loss": {
                                        "auc": 0.52,
                                        "auc_ci": [0.4, 0.6],
                                        "tpr_at_1pct_fpr": 0.0,
                                        "tpr_at_1pct_fpr_ci": [0.0, 0.1],
                                        "n_members": 8,
                                        "n_holdout": 2,
                                    }
                                },
                            }
                        }
                    ),
                    "curves": json.dumps({"loss": {"fpr": [0, 0.5, 1], "tpr": [0, 0.5, 1]}}),
                    "policy_sha256": ctx.policy_sha256,
                    "actor": "tester",
                    "seconds": 1.0,
                    "created_at": now,
                },
            )
    ctx.close()
    return batch_id


def insert_evaluation(conn, batch_id: str, mauve: float, *, reference: str = "holdout") -> None:
    """An evaluation record (of the batch's latest curation) in the evaluation stage's table, with its event."""
    insert_bound(
        conn,
        "evaluations",
        {
            "batch_id": batch_id,
            "reference": reference,
            "n_synthetic": 5,
            "n_reference": 2,
            "mauve": mauve,
            "metrics": json.dumps({"mauve": mauve, "distinct_2": 0.8, "detection_auc": 0.62, "label_fidelity": 0.9}),
            "embedding_model": "all-MiniLM-L6-v2",
            "embedding_sha256": "sha256:" + "5" * 64,
            "curation_id": conn.execute("SELECT MAX(id) FROM curations WHERE batch_id = ?", (batch_id,)).fetchone()[0],
            "policy_sha256": "sha256:" + "0" * 64,
            "created_at": utc_now(),
        },
    )
