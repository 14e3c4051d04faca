"""Everything the compliance report shows, read from the database and the audit chain (no text, ever).

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


def _rows(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, args)
    names = [c[0] for c in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _has(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone() is not None


def _where(dataset: str | None, col: str = "dataset") -> tuple[str, tuple[Any, ...]]:
    return (f" WHERE {col} = ?", (dataset,)) if dataset else ("", ())


@dataclass
class ReportData:
    generated_at: str
    actor: str
    dataset: str | None
    policy_sha256: str
    chain: dict[str, Any]
    datasets: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    pii_import: dict[str, Counter] = field(default_factory=dict)
    pii_output: dict[str, Counter] = field(default_factory=dict)
    probes: list[dict[str, Any]] = field(default_factory=list)
    gate: list[dict[str, Any]] = field(default_factory=list)
    exports: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    activity: list[dict[str, Any]] = field(default_factory=list)
    actors: Counter = field(default_factory=Counter)
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
        "break_seq": brk.seq if brk else None,
        "break_reason": brk.reason if brk else None,
    }


def datasets(
    conn: sqlite3.Connection, dataset: str | None, cap: float, delta_cap: float | None = None
) -> list[dict[str, Any]]:
    """Each dataset with the ε/δ of its runs and of its most-charged record (or subject) over every dataset."""
    w, a = _where(dataset, "name")
    out = _rows(
        conn,
        "SELECT name, created_at, n_records, n_train, n_holdout, n_dropped, label_field, subject_field FROM datasets"
        + w
        + " ORDER BY created_at",
        a,
    )
    for d in out:
        spent = dataset_spent(conn, d["name"])
        d.update(epsilon_spent=spent.epsilon, delta_spent=spent.delta, n_charges=spent.runs, epsilon_cap=cap)
        worst = most_charged(conn, d["name"])
        d.update(
            unit="subject" if d["subject_field"] else "record",
            unit_epsilon=worst[1].epsilon if worst else 0.0,
            unit_delta=worst[1].delta if worst else 0.0,
            unit_most_charged=worst[0] if worst else None,
            delta_cap=delta_cap,
        )
    return out


def runs(ctx: Context, dataset: str | None) -> list[dict[str, Any]]:
    """Every training run (prompt) with its privacy accounting, noise mode and who ran it."""
    w, a = _where(dataset)
    out = _rows(
        ctx.db.conn,
        "SELECT id, dataset, label, model_name, model_sha256, k, dp, exportable, epsilon, delta, noise_multiplier,"
        " sample_rate, steps, clip_norm, accountant, train_loss, holdout_loss, artifact_sha256, meta, created_at"
        " FROM prompts" + w + " ORDER BY created_at",
        a,
    )
    actor: dict[str, str] = {}
    for ev in ctx.ledger.events():
        if ev.kind.startswith("train") and isinstance(ev.payload.get("prompt_id"), str):
            actor.setdefault(ev.payload["prompt_id"], ev.actor)
    for r in out:
        meta = json.loads(r.pop("meta") or "{}")
        r["noise_mode"] = meta.get("noise_mode")
        r["n_canaries"] = (meta.get("canaries") or {}).get("count", 0)
        r["actor"] = actor.get(r["id"])
    return out


def _count_findings(rows: list[tuple[str, str]]) -> dict[str, Counter]:
    per: dict[str, Counter] = {}
    for key, raw in rows:
        c = per.setdefault(key, Counter())
        for f in json.loads(raw or "[]"):
            c[str(f.get("type", "?"))] += 1
    return per


def pii_import(conn: sqlite3.Connection, dataset: str | None) -> dict[str, Counter]:
    w, a = _where(dataset)
    return _count_findings(conn.execute("SELECT dataset, findings FROM records" + w, a).fetchall())


def pii_output(conn: sqlite3.Connection, dataset: str | None) -> dict[str, Counter]:
    w, a = _where(dataset, "b.dataset")
    return _count_findings(
        conn.execute(
            "SELECT o.batch_id, o.findings FROM outputs o JOIN batches b ON b.id = o.batch_id" + w, a
        ).fetchall()
    )


def probes(conn: sqlite3.Connection, dataset: str | None) -> list[dict[str, Any]]:
    w, a = _where(dataset)
    out = _rows(conn, "SELECT * FROM probes" + w + " ORDER BY created_at", a)
    for r in out:
        for k in ("summary", "metrics", "curves"):
            r[k] = json.loads(r[k])
    return out


def gate(conn: sqlite3.Connection, dataset: str | None) -> list[dict[str, Any]]:
    w, a = _where(dataset)
    out = _rows(conn, "SELECT * FROM gate_decisions" + w + " ORDER BY id", a)
    for r in out:
        r["checks"], r["failures"] = json.loads(r["checks"]), json.loads(r["failures"])
    return out


def exports(conn: sqlite3.Connection, dataset: str | None) -> list[dict[str, Any]]:
    w, a = _where(dataset, "e.dataset")
    return _rows(
        conn,
        "SELECT e.*, r.requested_by, r.approved_by FROM exports e LEFT JOIN export_requests r"
        " ON r.id = e.request_id" + w + " ORDER BY e.created_at",
        a,
    )


def requests(conn: sqlite3.Connection, dataset: str | None) -> list[dict[str, Any]]:
    w, a = _where(dataset, "b.dataset")
    return _rows(
        conn,
        "SELECT r.* FROM export_requests r JOIN batches b ON b.id = r.batch_id" + w + " ORDER BY r.requested_at",
        a,
    )


def activity(ctx: Context, dataset: str | None, limit: int = 500) -> tuple[list[dict[str, Any]], Counter]:
    """The newest ``limit`` events (narrowed to a dataset's events when one is given) and counts per actor."""
    events = []
    actors: Counter = Counter()
    batch_ds = dict(ctx.db.conn.execute("SELECT id, dataset FROM batches").fetchall())
    for ev in ctx.ledger.events():
        p = ev.payload
        ds = p.get("dataset") or batch_ds.get(p.get("batch_id"))
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
    data.probes = probes(conn, dataset) if _has(conn, "probes") else []
    data.gate = gate(conn, dataset) if _has(conn, "gate_decisions") else []
    data.exports = exports(conn, dataset) if _has(conn, "exports") else []
    data.requests = requests(conn, dataset) if _has(conn, "export_requests") else []
    data.activity, data.actors = activity(ctx, dataset)
    data.thresholds = {
        "max_mia_auc": g.max_mia_auc,
        "max_tpr_at_1pct_fpr": g.max_tpr_at_1pct_fpr,
        "max_canary_exposure_bits": g.max_canary_exposure_bits,
        "min_dcr_ratio": g.min_dcr_ratio,
        "max_epsilon": g.max_epsilon,
        "gate_enabled": g.enabled,
        "approval_required": ctx.policy.approval.required,
    }
    return data
