"""Soft prompts and the privacy charges of the runs that trained them (``privacy_charges``, ``unit_charges``).

The budget arithmetic and the hashes that bind a charge to its audit event live in
:mod:`appliance.budget.ledger`; this module only reads and writes the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from appliance.store.rows import Db, Row, first, insert, insert_many, query, rows, update, value

COUNTED = "status IN ('reserved', 'charged')"  # a charge that counts as spent


def get(db: Db, prompt_id: str) -> Row | None:
    """The ``prompts`` row, or None."""
    return first(db, "prompts", "id = ?", (prompt_id,))


def newest_dp(db: Db, dataset: str, *, exportable: bool = True) -> Row | None:
    """The most recent DP prompt trained on ``dataset`` (exportable ones only, unless told otherwise)."""
    where = "dataset = ? AND dp = 1" + (" AND exportable = 1" if exportable else "")
    return first(db, "prompts", where, (dataset,), order_by="created_at DESC, rowid DESC")


def listing(db: Db, dataset: str | None = None, *, select: str = "*", newest_first: bool = True) -> list[Row]:
    """Every prompt (of one dataset when given), newest first (or oldest first)."""
    order = "created_at DESC, rowid DESC" if newest_first else "created_at"
    if dataset:
        return rows(db, "prompts", "dataset = ?", (dataset,), select=select, order_by=order)
    return rows(db, "prompts", select=select, order_by=order)


def insert_prompt(db: Db, row: Mapping[str, Any]) -> None:
    """One ``prompts`` row, inside the caller's transaction."""
    insert(db, "prompts", row)


def count_non_dp(db: Db, dataset: str) -> int:
    return int(value(db, "SELECT COUNT(*) FROM prompts WHERE dataset = ? AND dp = 0", (dataset,)))


# -- privacy charges -------------------------------------------------------------------------------------


def charge(db: Db, charge_id: int, columns: Sequence[str]) -> Row | None:
    """One charge row's ``columns``, or None."""
    return first(db, "privacy_charges", "id = ?", (charge_id,), select=", ".join(columns))


def charges(db: Db, columns: Sequence[str], *, dataset: str | None = None, prompt_id: str | None = None) -> list[Row]:
    """Charge rows (of one dataset, or of one prompt), in id order."""
    select = ", ".join(columns)
    if dataset is not None:
        return rows(db, "privacy_charges", "dataset = ?", (dataset,), select=select, order_by="id")
    if prompt_id is not None:
        return rows(db, "privacy_charges", "prompt_id = ?", (prompt_id,), select=select)
    return rows(db, "privacy_charges", select=select, order_by="id")


def counted_charges(db: Db, dataset: str) -> list[Row]:
    """(epsilon, delta) of the dataset's reserved and charged runs."""
    return rows(db, "privacy_charges", f"dataset = ? AND {COUNTED}", (dataset,), select="epsilon, delta")


def count_reserved(db: Db, dataset: str) -> int:
    return int(value(db, "SELECT COUNT(*) FROM privacy_charges WHERE dataset = ? AND status = 'reserved'", (dataset,)))


def unbound_charge_ids(db: Db) -> list[int]:
    """Charges written before unit rows existed (no ``units_sha256``)."""
    return [int(r["id"]) for r in rows(db, "privacy_charges", "units_sha256 IS NULL", select="id")]


def insert_charge(db: Db, row: Mapping[str, Any]) -> int:
    """One ``privacy_charges`` row, inside the caller's transaction; its id."""
    return insert(db, "privacy_charges", row)


def update_charge(db: Db, charge_id: int, values: Mapping[str, Any], *, status: str | None = None) -> int:
    """Set ``values`` on one charge (only while its status is ``status``, when given); rows changed."""
    if status is None:
        return update(db, "privacy_charges", values, "id = ?", (charge_id,))
    return update(db, "privacy_charges", values, "id = ? AND status = ?", (charge_id, status))


def insert_units(db: Db, units: Iterable[Mapping[str, Any]]) -> None:
    """``unit_charges`` rows (charge_id, kind, unit, multiplicity), inside the caller's transaction."""
    insert_many(db, "unit_charges", units)


def units_of(db: Db, charge_id: int) -> list[tuple[str, str, int]]:
    """(kind, unit, multiplicity) of one charge's unit rows, as stored."""
    found = rows(db, "unit_charges", "charge_id = ?", (charge_id,), select="kind, unit, multiplicity")
    return [(r["kind"], r["unit"], r["multiplicity"]) for r in found]


def counted_unit_charges(db: Db) -> list[Row]:
    """Every unit row of a reserved or charged run: kind, unit, multiplicity and the run's epsilon, delta."""
    return query(
        db,
        "SELECT u.kind, u.unit, u.multiplicity, c.epsilon, c.delta FROM unit_charges u"
        f" JOIN privacy_charges c ON c.id = u.charge_id WHERE c.{COUNTED}",
    )


def charged_record_units(db: Db, prompt_id: str) -> set[str]:
    """The record units (hashes of redacted text) a run's reserved or charged privacy charge covers."""
    return {
        r["unit"]
        for r in query(
            db,
            "SELECT u.unit FROM unit_charges u JOIN privacy_charges c ON c.id = u.charge_id"
            f" WHERE c.prompt_id = ? AND u.kind = 'record' AND c.{COUNTED}",
            (prompt_id,),
        )
    }
