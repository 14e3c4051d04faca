"""What left the building and who allowed it: gate decisions, four-eyes requests, exports, exported hashes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from appliance.store.rows import Db, Row, first, insert, insert_many, query, rows, update

_CHUNK = 500  # bound parameters per IN (...) query


def insert_decision(db: Db, row: Mapping[str, Any]) -> int:
    """One ``gate_decisions`` row, inside the caller's transaction; its id."""
    return insert(db, "gate_decisions", row)


def decisions(db: Db, dataset: str | None = None) -> list[Row]:
    """Every gate decision (of one dataset when given) in id order, ``checks`` and ``failures`` parsed."""
    found = (
        rows(db, "gate_decisions", "dataset = ?", (dataset,), order_by="id")
        if dataset
        else rows(db, "gate_decisions", order_by="id")
    )
    for r in found:
        r["checks"], r["failures"] = json.loads(r["checks"]), json.loads(r["failures"])
    return found


# -- four-eyes requests ----------------------------------------------------------------------------------


def get_request(db: Db, request_id: str) -> Row | None:
    return first(db, "export_requests", "id = ?", (request_id,))


def oldest_approved_request(db: Db, batch_id: str) -> Row | None:
    """The batch's oldest approved, unused export request."""
    return first(db, "export_requests", "batch_id = ? AND status = 'approved'", (batch_id,), order_by="approved_at")


def insert_request(db: Db, row: Mapping[str, Any]) -> None:
    insert(db, "export_requests", row)


def advance_request(db: Db, request_id: str, values: Mapping[str, Any], *, from_status: str) -> int:
    """Set ``values`` on the request only while its status is ``from_status``; rows changed (0 or 1)."""
    return update(db, "export_requests", values, "id = ? AND status = ?", (request_id, from_status))


def requests(db: Db, dataset: str | None = None) -> list[Row]:
    """Every export request (of one dataset's batches when given), oldest first."""
    sql = "SELECT r.* FROM export_requests r JOIN batches b ON b.id = r.batch_id"
    if dataset:
        return query(db, sql + " WHERE b.dataset = ? ORDER BY r.requested_at", (dataset,))
    return query(db, sql + " ORDER BY r.requested_at")


# -- exports and their record hashes ---------------------------------------------------------------------


def insert_export(db: Db, row: Mapping[str, Any]) -> None:
    """One ``exports`` row, inside the caller's transaction."""
    insert(db, "exports", row)


def exports(db: Db, dataset: str | None = None) -> list[Row]:
    """Every export (of one dataset when given), oldest first, with who requested and approved it."""
    sql = "SELECT e.*, r.requested_by, r.approved_by FROM exports e LEFT JOIN export_requests r ON r.id = e.request_id"
    if dataset:
        return query(db, sql + " WHERE e.dataset = ? ORDER BY e.created_at", (dataset,))
    return query(db, sql + " ORDER BY e.created_at")


def insert_hashes(db: Db, hashes: Iterable[Mapping[str, Any]]) -> int:
    """``export_hashes`` rows (hash, export_id, created_at), keeping any already there; how many were new."""
    return insert_many(db, "export_hashes", hashes, or_ignore=True)


def known_hashes(db: Db, hashes: Sequence[str]) -> set[str]:
    """Which of ``hashes`` an earlier export recorded."""
    found: set[str] = set()
    unique = sorted(set(hashes))
    for i in range(0, len(unique), _CHUNK):
        chunk = unique[i : i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        found.update(r["hash"] for r in rows(db, "export_hashes", f"hash IN ({marks})", chunk, select="hash"))
    return found
