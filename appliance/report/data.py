"""Everything the compliance report shows, read from the database and the audit chain (no record or output text, ever).

Each function returns plain rows (dicts of numbers, ids, hashes, timestamps) for one section; an
optional dataset name narrows every section to that dataset.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from appliance.audit import signing
from appliance.budget.ledger import dataset_spent, most_charged
from appliance.context import Context
from appliance.store import batches, prompts, results
from appliance.store import datasets as store_datasets
from appliance.store import exports as store_exports
from appliance.train.data import declared_public


@dataclass
class ReportData:
    generated_at: str
    actor: str
    dataset: str | None
    policy_sha256: str
    chain: dict[str, Any]
    datasets: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    pii_import: dict[str, Counter[str]] = field(default_factory=dict)
    pii_output: dict[str, Counter[str]] = field(default_factory=dict)
    probes: list[dict[str, Any]] = field(default_factory=list)
    gate: list[dict[str, Any]] = field(default_factory=list)
    exports: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    activity: list[dict[str, Any]] = field(default_factory=list)
    actors: Counter[str] = field(default_factory=Counter)
    thresholds: dict[str, Any] = field(default_factory=dict)


def chain_status(ctx: Context) -> dict[str, Any]:
    res = ctx.ledger.verify()
    seq, head = ctx.ledger.head()
    try:
        fp = signing.fingerprint(signing.load_private(ctx.ws.keys).public_key())
    except Exception:
        fp = None
    brk = res.first_break
    return {
        "ok": brk is None,
        "count": res.count,
        "head_seq": seq,
        "head_hash": head,
        "key_fingerprint": fp,
        "key_external": signing.external_key_path() is not None,
        "break_seq": brk.seq if brk else None,
        "break_reason": brk.reason if brk else None,
    }


def datasets(
    conn: sqlite3.Connection, dataset: str | None, cap: float, delta_cap: float | None = None
) -> list[dict[str, Any]]:
    """Each dataset with the ε/δ of its runs and of its most-charged record (or subject) over every dataset."""
    columns = "name, created_at, n_records, n_train, n_holdout, n_dropped, label_field, subject_field"
    out = store_datasets.all_rows(conn, dataset, select=columns, order_by="created_at")
    for d in out:
        spent = dataset_spent(conn, d["name"])
        d.update(epsilon_spent=spent.epsilon, delta_spent=spent.delta, n_charges=spent.runs, epsilon_cap=cap)
        worst = most_charged(conn, d["name"])
        unit = "subject" if d["subject_field"] else "record"
        d.update(
            unit="public data (no budget)" if declared_public(conn, d["name"]) else unit,
            unit_epsilon=worst[1].epsilon if worst else 0.0,
            unit_delta=worst[1].delta if worst else 0.0,
            unit_most_charged=worst[0] if worst else None,
            delta_cap=delta_cap,
        )
    return out


def runs(ctx: Context, dataset: str | None) -> list[dict[str, Any]]:
    """Every training run (prompt) with its privacy accounting, noise mode and who ran it."""
    columns = (
        "id, dataset, label, model_name, model_sha256, k, dp, exportable, epsilon, delta, noise_multiplier,"
        " sample_rate, steps, clip_norm, accountant, train_loss, holdout_loss, artifact_sha256, meta, created_at"
    )
    out = prompts.listing(ctx.db, dataset, select=columns, newest_first=False)
    actor: dict[str, str] = {}
    for ev in ctx.ledger.events():
        if ev.kind.startswith("train") and isinstance(ev.payload.get("prompt_id"), str):
            actor.setdefault(ev.payload["prompt_id"], ev.actor)
    for r in out:
        meta = json.loads(r.pop("meta") or "{}")
        r["noise_mode"] = meta.get("noise_mode")
        r["dp_selection_noise"] = meta.get("dp_selection_noise")
        r["label_keywords_noise"] = meta.get("label_keywords_noise")
        r["label_keywords"] = meta.get("label_keywords") or {}
        r["n_canaries"] = (meta.get("canaries") or {}).get("count", 0)
        r["public_data"] = bool(meta.get("public_data"))
        r["init_prompt"] = (meta.get("init_prompt") or {}).get("id")
        r["prior_extrapolation"] = meta.get("prior_extrapolation")
        r["actor"] = actor.get(r["id"])
    return out


def _count_findings(rows: list[dict[str, Any]], key_column: str) -> dict[str, Counter[str]]:
    per: dict[str, Counter[str]] = {}
    for row in rows:
        key, raw = row[key_column], row["findings"]
        c = per.setdefault(key, Counter())
        for f in json.loads(raw or "[]"):
            c[str(f.get("type", "?"))] += 1
    return per


def pii_import(conn: sqlite3.Connection, dataset: str | None) -> dict[str, Counter[str]]:
    return _count_findings(store_datasets.findings(conn, dataset), "dataset")


def pii_output(conn: sqlite3.Connection, dataset: str | None) -> dict[str, Counter[str]]:
    return _count_findings(batches.output_findings(conn, dataset), "batch_id")


def activity(ctx: Context, dataset: str | None, limit: int = 500) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The newest ``limit`` events (narrowed to a dataset's events when one is given) and counts per actor."""
    events = []
    actors: Counter[str] = Counter()
    batch_ds = batches.datasets_by_batch(ctx.db)
    for ev in ctx.ledger.events():
        p = ev.payload
        ds = p.get("dataset") or batch_ds.get(str(p.get("batch_id")))
        if dataset and ds != dataset:
            continue
        actors[ev.actor] += 1
        events.append(
            {
                "seq": ev.seq,
                "ts": ev.ts,
                "actor": ev.actor,
                "kind": ev.kind,
                "dataset": ds,
                "batch_id": p.get("batch_id"),
                "hash": ev.hash,
            }
        )
    return events[-limit:], actors


def gather(ctx: Context, dataset: str | None, generated_at: str) -> ReportData:
    conn = ctx.db.conn
    g = ctx.policy.gate
    data = ReportData(generated_at, ctx.actor, dataset, ctx.policy_sha256, chain_status(ctx))
    p = ctx.policy.privacy
    data.datasets = datasets(conn, dataset, p.dataset_epsilon_cap, p.max_total_delta)
    data.runs = runs(ctx, dataset)
    data.pii_import = pii_import(conn, dataset)
    data.pii_output = pii_output(conn, dataset)
    data.probes = results.probes(conn, dataset)
    data.gate = store_exports.decisions(conn, dataset)
    data.exports = store_exports.exports(conn, dataset)
    data.requests = store_exports.requests(conn, dataset)
    data.activity, data.actors = activity(ctx, dataset)
    data.thresholds = {
        "max_mia_auc": g.max_mia_auc,
        "max_tpr_at_1pct_fpr": g.max_tpr_at_1pct_fpr,
        "max_canary_exposure_bits": g.max_canary_exposure_bits,
        "max_canary_output_hits": g.max_canary_output_hits,
        "min_dcr_ratio": g.min_dcr_ratio,
        "max_epsilon": g.max_epsilon,
        "gate_enabled": g.enabled,
        "approval_required": ctx.policy.approval.required,
    }
    return data
