"""What the checks found about a batch: curation runs, evaluations and probe records (numbers, never text).

The ``latest_*`` readers are the one definition of "the batch's current result" for evaluate, the gate and
the reports: the newest row by id (curations, evaluations) or by creation time (probes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from appliance.store.rows import Db, Row, first, insert, rows

_PROBE_JSON = ("summary", "metrics", "curves")
HOLDOUT = "holdout"  # ``evaluations.reference`` of an evaluation against the dataset's own holdout split


def insert_curation(db: Db, row: Mapping[str, Any]) -> int:
    """One ``curations`` row, inside the caller's transaction; its id."""
    return insert(db, "curations", row)


def latest_curation(db: Db, batch_id: str) -> Row | None:
    """The batch's most recent curation summary, ``reasons`` parsed; None when it was never curated."""
    row = first(db, "curations", "batch_id = ?", (batch_id,), order_by="id DESC")
    if row is not None:
        row["reasons"] = json.loads(row["reasons"])
    return row


def insert_evaluation(db: Db, row: Mapping[str, Any]) -> int:
    """One ``evaluations`` row, inside the caller's transaction; its id."""
    return insert(db, "evaluations", row)


def latest_evaluation(
    db: Db, batch_id: str, *, reference: str | None = None, curation_id: int | None = None
) -> Row | None:
    """The batch's most recent evaluation (against ``reference``, of the curation ``curation_id``, when given),
    ``metrics`` parsed; None when there is none."""
    where = "batch_id = ?"
    args: list[Any] = [batch_id]
    for column, wanted in (("reference", reference), ("curation_id", curation_id)):
        if wanted is not None:
            where += f" AND {column} = ?"
            args.append(wanted)
    row = first(db, "evaluations", where, args, order_by="id DESC")
    if row is not None:
        metrics = row.get("metrics")
        row["metrics"] = json.loads(metrics) if isinstance(metrics, str) else (metrics or {})
    return row


def insert_probe(db: Db, row: Mapping[str, Any]) -> None:
    """One ``probes`` row, inside the caller's transaction."""
    insert(db, "probes", row)


def _parsed(row: Row) -> Row:
    for k in _PROBE_JSON:
        row[k] = json.loads(row[k])
    return row


def latest_probe(db: Db, batch_id: str) -> Row | None:
    """The batch's most recent probe record, its JSON columns parsed; None when it was never probed."""
    row = first(db, "probes", "batch_id = ?", (batch_id,), order_by="created_at DESC, rowid DESC")
    return None if row is None else _parsed(row)


def probes(db: Db, dataset: str | None = None) -> list[Row]:
    """Every probe record (of one dataset when given), oldest first, its JSON columns parsed."""
    found = (
        rows(db, "probes", "dataset = ?", (dataset,), order_by="created_at")
        if dataset
        else rows(db, "probes", order_by="created_at")
    )
    return [_parsed(r) for r in found]
