"""Datasets and their (redacted) records: what import writes and every later stage reads.

``records.text`` is the redacted or pseudonymised text, never raw PII (:mod:`appliance.store.migrations.core`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from appliance.errors import NotFound
from appliance.store.rows import Db, Row, exists, first, insert, insert_many, query, rows

SPLITS = ("train", "holdout")


def get(db: Db, name: str) -> Row | None:
    """The ``datasets`` row, or None."""
    return first(db, "datasets", "name = ?", (name,))


def has(db: Db, name: str) -> bool:
    return exists(db, "datasets", "name = ?", (name,))


def require(db: Db, name: str, fix: str = "see `appliance seeds list`") -> None:
    """:class:`NotFound` (exit 1) for an unknown dataset; ``fix`` says what to do instead."""
    if not has(db, name):
        raise NotFound(f"unknown dataset {name!r} — {fix}")


def field(db: Db, name: str, column: str) -> Any:
    """One column (``text_field``, ``label_field`` ...) of the dataset's row; None when there is no such dataset."""
    row = get(db, name)
    return None if row is None else row[column]


def all_rows(db: Db, dataset: str | None = None, *, select: str = "*", order_by: str = "name") -> list[Row]:
    """Every ``datasets`` row (or one dataset's), in ``order_by`` order."""
    if dataset:
        return rows(db, "datasets", "name = ?", (dataset,), select=select, order_by=order_by)
    return rows(db, "datasets", select=select, order_by=order_by)


def listing(db: Db, dataset: str | None = None) -> list[Row]:
    """Every dataset (or one), by name, with ``n_labels``: how many distinct labels its records carry."""
    where, args = (" WHERE d.name = ?", (dataset,)) if dataset else ("", ())
    return query(
        db,
        "SELECT d.*, (SELECT COUNT(DISTINCT label) FROM records r WHERE r.dataset = d.name) AS n_labels"
        f" FROM datasets d{where} ORDER BY d.name",
        args,
    )


def insert_dataset(db: Db, row: Mapping[str, Any]) -> None:
    """One ``datasets`` row, inside the caller's transaction."""
    insert(db, "datasets", row)


def insert_records(db: Db, records: Iterable[Mapping[str, Any]]) -> None:
    """Dict rows of ``records`` (all with the same columns), inside the caller's transaction."""
    insert_many(db, "records", records)


def records(db: Db, dataset: str, *, limit: int | None = None) -> list[Row]:
    """The dataset's records (id, split, label, text), in id order."""
    return rows(db, "records", "dataset = ?", (dataset,), select="id, split, label, text", order_by="id", limit=limit)


def split_rows(
    db: Db, dataset: str, split: str, *, label: str | None = None, limit: int | None = None, select: str = "text, label"
) -> list[Row]:
    """The records of one split (of one label when given), in id order."""
    where, args = "dataset = ? AND split = ?", [dataset, split]
    if label is not None:
        where += " AND label = ?"
        args.append(label)
    return rows(db, "records", where, args, select=select, order_by="id", limit=limit)


def split_texts(db: Db, dataset: str, split: str) -> list[str]:
    """The texts of one split, in id order."""
    return [r["text"] for r in split_rows(db, dataset, split, select="text")]


def labels(db: Db, dataset: str) -> list[str]:
    """The distinct labels of the dataset's records, sorted."""
    found = rows(
        db, "records", "dataset = ? AND label IS NOT NULL", (dataset,), select="DISTINCT label", order_by="label"
    )
    return [str(r["label"]) for r in found]


def unit_rows(db: Db, dataset: str, split: str | None = "train") -> list[Row]:
    """(unit_key, subject_key, text, split) of the dataset's records (of one split unless ``split`` is None), in
    id (insertion) order: the budget's units, and what the import event's digests cover."""
    where, args = ("dataset = ?", [dataset]) if split is None else ("dataset = ? AND split = ?", [dataset, split])
    return rows(db, "records", where, args, select="unit_key, subject_key, text, split", order_by="id")


def findings(db: Db, dataset: str | None = None) -> list[Row]:
    """(dataset, findings JSON) of every record (of one dataset when given)."""
    if dataset:
        return rows(db, "records", "dataset = ?", (dataset,), select="dataset, findings")
    return rows(db, "records", select="dataset, findings")
