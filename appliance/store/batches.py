"""Batches and their outputs: what generation writes, curation marks kept or dropped, and export reads."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from appliance.errors import NotFound
from appliance.store.rows import Db, Row, connection, exists, first, insert, insert_many, query, rows, update, value

_OUTPUT_COLUMNS = "idx, text, label, n_tokens, findings, status, reason, finish_reason, canary_hits"


def get(db: Db, batch_id: str) -> Row | None:
    """The ``batches`` row (``params`` as stored: JSON text), or None."""
    return first(db, "batches", "id = ?", (batch_id,))


def require(db: Db, batch_id: str) -> Row:
    """The ``batches`` row, or :class:`NotFound` (exit 1) with the fix."""
    row = get(db, batch_id)
    if row is None:
        raise NotFound(f"unknown batch {batch_id!r} — see `appliance batches list`")
    return row


def has(db: Db, batch_id: str) -> bool:
    return exists(db, "batches", "id = ?", (batch_id,))


def listing(db: Db, dataset: str | None = None) -> list[Row]:
    """Every batch (of one dataset when given) with ``n_outputs`` and ``n_dropped``, oldest first."""
    sql = (
        "SELECT b.*, (SELECT COUNT(*) FROM outputs o WHERE o.batch_id = b.id) AS n_outputs,"
        " (SELECT COUNT(*) FROM outputs o WHERE o.batch_id = b.id AND o.status = 'dropped') AS n_dropped"
        " FROM batches b"
    )
    args: tuple[Any, ...] = ()
    if dataset:
        sql += " WHERE b.dataset = ?"
        args = (dataset,)
    return query(db, sql + " ORDER BY b.created_at, b.id", args)


def newest_id(db: Db, dataset: str) -> str | None:
    """The id of the dataset's most recent batch."""
    row = first(db, "batches", "dataset = ?", (dataset,), select="id", order_by="created_at DESC")
    return None if row is None else str(row["id"])


def datasets_by_batch(db: Db) -> dict[str, str]:
    """batch id -> its dataset, for every batch."""
    return {r["id"]: r["dataset"] for r in rows(db, "batches", select="id, dataset")}


def insert_batch(db: Db, row: Mapping[str, Any]) -> None:
    """One ``batches`` row, inside the caller's transaction."""
    insert(db, "batches", row)


def add_progress(db: Db, batch_id: str, n_tokens: int, seconds: float) -> None:
    """Add decoded tokens and seconds to the batch's counters (caller's transaction)."""
    connection(db).execute(
        "UPDATE batches SET n_tokens = n_tokens + ?, gen_seconds = gen_seconds + ? WHERE id = ?",
        (n_tokens, seconds, batch_id),
    )


def set_status(db: Db, batch_id: str, status: str, *, runner: str | None, finished_at: str | None) -> None:
    """The batch's status and runner; ``finished_at`` when given (else it keeps its value)."""
    values: dict[str, Any] = {"status": status, "runner": runner}
    if finished_at is not None:
        values["finished_at"] = finished_at
    update(db, "batches", values, "id = ?", (batch_id,))


# -- outputs ---------------------------------------------------------------------------------------------


def output_rows(
    db: Db,
    batch_id: str,
    *,
    select: str = _OUTPUT_COLUMNS,
    status: str | None = None,
    nonempty: bool = False,
    limit: int | None = None,
) -> list[Row]:
    """The batch's outputs (of one status when given; with text when ``nonempty``), in idx order."""
    where, args = "batch_id = ?", [batch_id]
    if status is not None:
        where += " AND status = ?"
        args.append(status)
    if nonempty:
        where += " AND text != ''"
    return rows(db, "outputs", where, args, select=select, order_by="idx", limit=limit)


def kept(db: Db, batch_id: str) -> list[Row]:
    """(idx, text, label) of the batch's kept outputs, in idx order: what export writes (labels spread, see
    :mod:`appliance.export.order`)."""
    return output_rows(db, batch_id, select="idx, text, label", status="kept")


def done_indices(db: Db, batch_id: str) -> set[int]:
    """The output indices already stored for the batch."""
    return {int(r["idx"]) for r in rows(db, "outputs", "batch_id = ?", (batch_id,), select="idx")}


def count_outputs(db: Db, batch_id: str, status: str) -> int:
    return int(value(db, "SELECT COUNT(*) FROM outputs WHERE batch_id = ? AND status = ?", (batch_id, status)))


def kept_labels(db: Db, batch_id: str) -> set[str]:
    """The distinct labels on the batch's kept outputs (None excluded)."""
    found = rows(
        db, "outputs", "batch_id = ? AND status = 'kept' AND label IS NOT NULL", (batch_id,), select="DISTINCT label"
    )
    return {r["label"] for r in found}


def insert_outputs(db: Db, outputs: Iterable[Mapping[str, Any]]) -> None:
    """Dict rows of ``outputs``, inside the caller's transaction; UNIQUE(batch_id, idx) refuses a duplicate."""
    insert_many(db, "outputs", outputs)


def mark_outputs(db: Db, marks: Sequence[Mapping[str, Any]]) -> None:
    """Curation's verdicts: each mark is {id, status, reason, leak_hits, pii_hits} (caller's transaction)."""
    connection(db).executemany(
        "UPDATE outputs SET status = ?, reason = ?, leak_hits = ?, pii_hits = ? WHERE id = ?",
        [(m["status"], m["reason"], m["leak_hits"], m["pii_hits"], m["id"]) for m in marks],
    )


def output_findings(db: Db, dataset: str | None = None) -> list[Row]:
    """(batch_id, findings JSON) of every output (of one dataset's batches when given)."""
    sql = "SELECT o.batch_id, o.findings FROM outputs o JOIN batches b ON b.id = o.batch_id"
    if dataset:
        return query(db, sql + " WHERE b.dataset = ?", (dataset,))
    return query(db, sql)
