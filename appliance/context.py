"""The per-command context: workspace, database, ledger, effective policy and actor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlite_utils

from appliance.audit.ledger import AuditLedger, Event
from appliance.config import Workspace, default_actor
from appliance.db import connect, migrate
from appliance.policy import Policy, load_effective


@dataclass
class Context:
    ws: Workspace
    db: sqlite_utils.Database
    ledger: AuditLedger
    policy: Policy
    policy_sha256: str
    actor: str

    @classmethod
    def open(cls, ws: Workspace, actor: str | None = None) -> Context:
        """Open an initialised workspace (applying pending migrations) and load its policy."""
        ws.require()
        db = connect(ws.db_path)
        migrate(db)
        policy, digest, _ = load_effective(ws)
        return cls(ws, db, AuditLedger(db), policy, digest, actor or default_actor())

    def record(self, kind: str, payload: dict[str, Any]) -> Event:
        """Append an audit event; the effective policy's hash is added to every payload."""
        return self.ledger.append(kind, {**payload, "policy_sha256": self.policy_sha256}, actor=self.actor)

    def close(self) -> None:
        self.db.conn.close()
