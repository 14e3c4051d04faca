"""Budget ledger tables: a run reserves its ε before training, then settles it; every unit it trained on is charged."""

from __future__ import annotations

import sqlite_utils

from appliance.db import migration


@migration("0500_budget_reservations", "budget: reserved/charged/released status and actor on privacy charges")
def _reservations(db: sqlite_utils.Database) -> None:
    db.conn.execute(
        "ALTER TABLE privacy_charges ADD COLUMN status TEXT NOT NULL DEFAULT 'charged'"
        " CHECK (status IN ('reserved', 'charged', 'released'))"
    )
    db.conn.execute("ALTER TABLE privacy_charges ADD COLUMN actor TEXT")
    db.conn.execute("ALTER TABLE privacy_charges ADD COLUMN settled_at TEXT")
    db.conn.execute("CREATE INDEX privacy_charges_dataset ON privacy_charges(dataset, status)")


@migration("0510_budget_units", "budget: per-record / per-subject charges (unit_charges), charge rows bound to events")
def _units(db: sqlite_utils.Database) -> None:
    from appliance.budget.ledger import bind_legacy_charges

    db.conn.execute(
        """CREATE TABLE unit_charges (
            charge_id INTEGER NOT NULL REFERENCES privacy_charges(id),
            kind TEXT NOT NULL CHECK (kind IN ('record', 'subject')),
            unit TEXT NOT NULL,            -- hash of the redacted text, or HMAC of the subject id
            multiplicity INTEGER NOT NULL, -- the run's records of this unit (a subject's: group privacy)
            PRIMARY KEY (charge_id, kind, unit)
        )"""
    )
    db.conn.execute("CREATE INDEX unit_charges_unit ON unit_charges(kind, unit)")
    db.conn.execute("ALTER TABLE privacy_charges ADD COLUMN units_sha256 TEXT")
    db.conn.execute("ALTER TABLE privacy_charges ADD COLUMN n_units INTEGER")
    bind_legacy_charges(db.conn)
