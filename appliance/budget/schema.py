"""Budget ledger columns on ``privacy_charges``: a run reserves its ε before training, then settles it."""

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
