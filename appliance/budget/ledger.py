"""The privacy budget ledger: per-dataset ε/δ charges in ``privacy_charges`` (stateful; the math is pure).

Protocol of a DP run: :meth:`BudgetLedger.reserve` checks the policy limits and records the run's *target* ε
as ``reserved`` in one ``BEGIN IMMEDIATE`` transaction — so two concurrent runs cannot both slip under the
cap — *before* any training. After training, :meth:`settle_in_tx` turns the reservation into the ε the
accountant reports (≤ target), atomically with the prompt row and its audit event; a run that fails is
:meth:`release`\\d. Reserved and charged rows both count as spent; a crashed run's reservation stays
charged (conservative). Composition is basic: ε and δ add (:mod:`appliance.budget.composition`).
Non-DP control runs charge nothing here — they are never exportable — and are counted separately.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import sqlite_utils

from appliance.audit.ledger import append_in_tx
from appliance.budget.composition import Spent, compose_basic, refusal, remaining
from appliance.db import transaction, utc_now
from appliance.errors import BudgetExhausted, NotFound
from appliance.policy.schema import PrivacyPolicy

COMPOSITION = "basic"
_COUNTED = "status IN ('reserved', 'charged')"


def dataset_spent(conn: sqlite3.Connection, dataset: str) -> Spent:
    """The privacy spent on ``dataset``: basic composition of its reserved and charged rows.

    The one place this fact is computed (budget checks, the gate, the compliance report). Released
    reservations (runs that failed before storing a prompt) are not counted; open reservations are, so a
    running or crashed run is charged its target ε.
    """
    rows = conn.execute(f"SELECT epsilon, delta FROM privacy_charges WHERE dataset = ? AND {_COUNTED}", (dataset,))
    return compose_basic((float(e), float(d)) for e, d in rows)


@dataclass(frozen=True)
class BudgetView:
    dataset: str
    spent: Spent
    reserved_runs: int
    cap: float
    max_per_run: float
    non_dp_runs: int

    @property
    def remaining(self) -> float:
        return remaining(spent=self.spent, cap=self.cap)


class BudgetLedger:
    """Reserve, settle, release and show the privacy budget of datasets."""

    def __init__(self, db: sqlite_utils.Database, policy: PrivacyPolicy) -> None:
        self.db = db
        self.policy = policy

    def _require_dataset(self, conn: sqlite3.Connection, dataset: str) -> None:
        if conn.execute("SELECT 1 FROM datasets WHERE name = ?", (dataset,)).fetchone() is None:
            raise NotFound(f"unknown dataset {dataset!r} — see `appliance seeds list`")

    def view(self, dataset: str) -> BudgetView:
        conn = self.db.conn
        self._require_dataset(conn, dataset)
        reserved = conn.execute(
            "SELECT COUNT(*) FROM privacy_charges WHERE dataset = ? AND status = 'reserved'", (dataset,)
        ).fetchone()[0]
        non_dp = conn.execute("SELECT COUNT(*) FROM prompts WHERE dataset = ? AND dp = 0", (dataset,)).fetchone()[0]
        return BudgetView(
            dataset,
            dataset_spent(conn, dataset),
            int(reserved),
            self.policy.dataset_epsilon_cap,
            self.policy.max_epsilon_per_run,
            int(non_dp),
        )

    def charges(self, dataset: str) -> list[dict]:
        cur = self.db.conn.execute(
            "SELECT id, prompt_id, epsilon, delta, accountant, composition, status, actor, created_at, settled_at"
            " FROM privacy_charges WHERE dataset = ? ORDER BY id",
            (dataset,),
        )
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur]

    def reserve(
        self, dataset: str, *, epsilon: float, delta: float, accountant: str, actor: str, policy_sha256: str
    ) -> int:
        """Record a reservation of ``epsilon`` (or raise :class:`BudgetExhausted`, audited) before training."""
        with transaction(self.db) as conn:
            self._require_dataset(conn, dataset)
            spent = dataset_spent(conn, dataset)
            why = refusal(
                requested=epsilon,
                spent=spent,
                max_per_run=self.policy.max_epsilon_per_run,
                cap=self.policy.dataset_epsilon_cap,
            )
            if why is None:
                cur = conn.execute(
                    "INSERT INTO privacy_charges (dataset, prompt_id, epsilon, delta, accountant, composition,"
                    " created_at, status, actor) VALUES (?, NULL, ?, ?, ?, ?, ?, 'reserved', ?)",
                    (dataset, epsilon, delta, accountant, COMPOSITION, utc_now(), actor),
                )
                return int(cur.lastrowid)
        left = remaining(spent=spent, cap=self.policy.dataset_epsilon_cap)
        with transaction(self.db) as conn:
            append_in_tx(
                conn,
                "budget.refused",
                {
                    "dataset": dataset,
                    "requested_epsilon": epsilon,
                    "spent_epsilon": spent.epsilon,
                    "remaining_epsilon": left,
                    "dataset_epsilon_cap": self.policy.dataset_epsilon_cap,
                    "max_epsilon_per_run": self.policy.max_epsilon_per_run,
                    "policy_sha256": policy_sha256,
                },
                actor,
            )
        raise BudgetExhausted(
            f"refused before training: {why}; dataset {dataset} has ε {left:.4g} of "
            f"{self.policy.dataset_epsilon_cap:g} remaining (max {min(left, self.policy.max_epsilon_per_run):.4g}"
            " per run) — lower --epsilon"
        )

    def settle_in_tx(
        self, conn: sqlite3.Connection, reservation: int, *, prompt_id: str, epsilon: float, delta: float
    ) -> Spent:
        """Replace a reservation by the run's accounted ε/δ (inside the caller's transaction); returns the new total."""
        row = conn.execute(
            "SELECT dataset, status, epsilon FROM privacy_charges WHERE id = ?", (reservation,)
        ).fetchone()
        if row is None or row[1] != "reserved":
            raise BudgetExhausted(f"budget reservation {reservation} is no longer open — run `appliance train` again")
        conn.execute(
            "UPDATE privacy_charges SET prompt_id = ?, epsilon = ?, delta = ?, status = 'charged', settled_at = ?"
            " WHERE id = ?",
            (prompt_id, max(epsilon, 0.0), delta, utc_now(), reservation),
        )
        return dataset_spent(conn, row[0])

    def release(self, reservation: int) -> None:
        """Give back a reservation whose run produced nothing (failed before any prompt was stored)."""
        with transaction(self.db) as conn:
            conn.execute(
                "UPDATE privacy_charges SET status = 'released', settled_at = ? WHERE id = ? AND status = 'reserved'",
                (utc_now(), reservation),
            )
