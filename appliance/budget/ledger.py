"""The privacy budget ledger: charges per run (``privacy_charges``) and per unit (``unit_charges``).

The unit is one record, keyed by its redacted, normalised text, or — when the import declared
``--subject-field`` — also one subject (:mod:`appliance.budget.units`). Every run charges its ε and δ to
every unit it trained on, so the budget follows the records, not the dataset name: importing the same file,
or an overlapping one, under a new name charges the same units. ``privacy.dataset_epsilon_cap`` bounds each
unit's Σε and ``privacy.max_total_delta`` its Σδ.

Protocol of a DP run: :meth:`BudgetLedger.reserve` checks the policy limits and records the run's *target* ε
as ``reserved`` — with one unit row per trained unit — in one ``BEGIN IMMEDIATE`` transaction, so two
concurrent runs cannot both slip under a cap, *before* any training. After training, :meth:`settle_in_tx`
turns the reservation into the ε the accountant reports (≤ target), atomically with the prompt row and its
audit event; a run that fails is :meth:`release`\\d. Reserved and charged rows both count as spent; a
crashed run's reservation stays charged (conservative). Composition is basic: ε and δ add
(:mod:`appliance.budget.composition`). Non-DP control runs charge nothing here — they are never exportable —
and are counted separately.

Every charge row's content hash goes into the audit event that wrote it (``budget.reserve``, ``train.run``,
``budget.release``), with the hash of its unit rows, so the gate can check what it reads (:mod:`appliance.gate.bound`).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from appliance.audit.chain import canonical_json
from appliance.audit.ledger import append_in_tx
from appliance.budget.composition import Overrun, Spent, compose_basic, group_charge, refusal, unit_overruns
from appliance.budget.units import RECORD, SUBJECT, Unit, row_unit, units_digest
from appliance.db import transaction, utc_now
from appliance.errors import BudgetExhausted
from appliance.policy.schema import PrivacyPolicy
from appliance.store import datasets, prompts

COMPOSITION = "basic"
CHARGE_FIELDS = (
    "id",
    "dataset",
    "prompt_id",
    "epsilon",
    "delta",
    "accountant",
    "composition",
    "status",
    "units_sha256",
)
CHARGE_EVENTS = ("budget.reserve", "budget.bind", "budget.release", "train.run")


def dataset_spent(conn: sqlite3.Connection, dataset: str) -> Spent:
    """The privacy spent by runs on ``dataset``: basic composition of its reserved and charged rows.

    The one place this fact is computed (budget checks, the gate, the compliance report). Released
    reservations (runs that failed before storing a prompt) are not counted; open reservations are, so a
    running or crashed run is charged its target ε. What one record has spent over every dataset it is in
    is :func:`unit_spent`.
    """
    rows = prompts.counted_charges(conn, dataset)
    return compose_basic((float(r["epsilon"]), float(r["delta"])) for r in rows)


def dataset_units(conn: sqlite3.Connection, dataset: str, split: str | None = "train") -> Counter[Unit]:
    """The units of a dataset's records (train split by default): (kind, key) -> records it covers."""
    units: Counter[Unit] = Counter()
    for r in datasets.unit_rows(conn, dataset, split):
        units[(RECORD, row_unit(r))] += 1
        if r["subject_key"] is not None:
            units[(SUBJECT, r["subject_key"])] += 1
    return units


def unit_spent(conn: sqlite3.Connection, units: Iterable[Unit] | None = None) -> dict[Unit, Spent]:
    """Σε and Σδ per unit over every reserved or charged run (of any dataset); only ``units`` if given.

    A record is charged each run's (ε, δ); a subject with k records in a run, the group charge of k.
    """
    wanted = None if units is None else set(units)
    acc: dict[Unit, list[float]] = {}
    for r in prompts.counted_unit_charges(conn):
        kind, key, m, eps, delta = r["kind"], r["unit"], r["multiplicity"], r["epsilon"], r["delta"]
        if wanted is not None and (kind, key) not in wanted:
            continue
        e, d = (float(eps), float(delta)) if kind == RECORD else group_charge(epsilon=eps, delta=delta, size=int(m))
        a = acc.setdefault((kind, key), [0.0, 0.0, 0])
        a[0] += e
        a[1] += d
        a[2] += 1
    return {u: Spent(a[0], a[1], int(a[2])) for u, a in acc.items()}


def most_charged(conn: sqlite3.Connection, dataset: str) -> tuple[str, Spent] | None:
    """The most-charged unit among ``dataset``'s records (any split, charges from any dataset): (kind, spent)."""
    spent = unit_spent(conn, dataset_units(conn, dataset, split=None))
    if not spent:
        return None
    unit = max(spent, key=lambda u: (spent[u].epsilon, spent[u].delta))
    return unit[0], spent[unit]


def charge_row(conn: sqlite3.Connection, charge_id: int) -> dict[str, Any] | None:
    return prompts.charge(conn, charge_id, CHARGE_FIELDS)


def charge_digest(row: dict[str, Any]) -> str:
    """``sha256:`` of a charge row's bound columns (what its audit event carries as ``charge_sha256``)."""
    body = {k: row.get(k) for k in CHARGE_FIELDS}
    return "sha256:" + hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def stored_units_digest(conn: sqlite3.Connection, charge_id: int) -> str:
    """:func:`units_digest` of a charge's unit rows as they are stored now."""
    return units_digest(prompts.units_of(conn, charge_id))


def _bind(conn: sqlite3.Connection, kind: str, charge_id: int, actor: str | None, extra: dict[str, Any]) -> None:
    row = charge_row(conn, charge_id)
    assert row is not None
    payload = {
        "charge_id": charge_id,
        "dataset": row["dataset"],
        "status": row["status"],
        "epsilon": row["epsilon"],
        "delta": row["delta"],
        "units_sha256": row["units_sha256"],
        "charge_sha256": charge_digest(row),
        **extra,
    }
    append_in_tx(conn, kind, payload, actor)


def _insert_units(conn: sqlite3.Connection, charge_id: int, units: Counter[Unit]) -> dict[str, int]:
    prompts.insert_units(
        conn,
        ({"charge_id": charge_id, "kind": kind, "unit": key, "multiplicity": m} for (kind, key), m in units.items()),
    )
    digest = units_digest((kind, key, m) for (kind, key), m in units.items())
    prompts.update_charge(conn, charge_id, {"units_sha256": digest, "n_units": len(units)})
    counts = Counter(kind for kind, _ in units)
    return {"n_record_units": counts[RECORD], "n_subject_units": counts[SUBJECT]}


def insert_charge_in_tx(
    conn: sqlite3.Connection,
    dataset: str,
    *,
    epsilon: float,
    delta: float,
    accountant: str,
    actor: str | None,
    units: Counter[Unit],
    prompt_id: str | None = None,
    status: str = "reserved",
) -> int:
    """Insert one charge with its unit rows and its ``budget.reserve`` event (caller's transaction); its id."""
    charge_id = prompts.insert_charge(
        conn,
        {
            "dataset": dataset,
            "prompt_id": prompt_id,
            "epsilon": epsilon,
            "delta": delta,
            "accountant": accountant,
            "composition": COMPOSITION,
            "created_at": utc_now(),
            "status": status,
            "actor": actor,
        },
    )
    counts = _insert_units(conn, charge_id, units)
    _bind(conn, "budget.reserve", charge_id, actor, counts)
    return charge_id


def bind_legacy_charges(conn: sqlite3.Connection) -> int:
    """Charges written before units existed: charge their dataset's train units now and bind them (migration)."""
    ids = prompts.unbound_charge_ids(conn)
    for charge_id in ids:
        row = charge_row(conn, charge_id)
        assert row is not None
        counts = _insert_units(conn, charge_id, dataset_units(conn, row["dataset"]))
        _bind(conn, "budget.bind", charge_id, "migration", counts)
    return len(ids)


@dataclass(frozen=True)
class BudgetView:
    dataset: str
    spent: Spent
    reserved_runs: int
    cap: float
    max_per_run: float
    non_dp_runs: int
    delta_cap: float = 1e-5
    most_charged_kind: str | None = None  # "record" or "subject"
    most_charged: Spent | None = None  # Σε, Σδ of the dataset's most-charged unit, over every dataset

    @property
    def remaining(self) -> float:
        """ε still available to a run on this dataset: the cap less its most-charged unit's ε."""
        worst = self.most_charged.epsilon if self.most_charged else self.spent.epsilon
        return max(0.0, self.cap - max(worst, self.spent.epsilon))


class BudgetLedger:
    """Reserve, settle, release and show the privacy budget of datasets and their records."""

    def __init__(self, db: sqlite_utils.Database, policy: PrivacyPolicy) -> None:
        self.db = db
        self.policy = policy

    def _require_dataset(self, conn: sqlite3.Connection, dataset: str) -> None:
        datasets.require(conn, dataset)

    def view(self, dataset: str) -> BudgetView:
        conn = self.db.conn
        self._require_dataset(conn, dataset)
        reserved = prompts.count_reserved(conn, dataset)
        non_dp = prompts.count_non_dp(conn, dataset)
        worst = most_charged(conn, dataset)
        return BudgetView(
            dataset,
            dataset_spent(conn, dataset),
            int(reserved),
            self.policy.dataset_epsilon_cap,
            self.policy.max_epsilon_per_run,
            int(non_dp),
            self.policy.max_total_delta,
            worst[0] if worst else None,
            worst[1] if worst else None,
        )

    def charges(self, dataset: str) -> list[dict[str, Any]]:
        cols = ("id", "prompt_id", "epsilon", "delta", "accountant", "composition", "status", "actor", "created_at")
        return prompts.charges(self.db, (*cols, "settled_at", "n_units"), dataset=dataset)

    def reserve(
        self, dataset: str, *, epsilon: float, delta: float, accountant: str, actor: str, policy_sha256: str
    ) -> int:
        """Record a reservation of ``epsilon`` on every unit of ``dataset``'s train split (or raise
        :class:`BudgetExhausted`, audited) before training."""
        pol = self.policy
        with transaction(self.db) as conn:
            self._require_dataset(conn, dataset)
            units = dataset_units(conn, dataset)
            over = unit_overruns(
                unit_spent(conn, units),
                units,
                epsilon=epsilon,
                delta=delta,
                epsilon_cap=pol.dataset_epsilon_cap,
                delta_cap=pol.max_total_delta,
            )
            spent = dataset_spent(conn, dataset)
            why = self._refusal(epsilon, over) or refusal(
                requested=epsilon, spent=spent, max_per_run=pol.max_epsilon_per_run, cap=pol.dataset_epsilon_cap
            )
            if why is None:
                return insert_charge_in_tx(
                    conn, dataset, epsilon=epsilon, delta=delta, accountant=accountant, actor=actor, units=units
                )
        worst = max([spent.epsilon, *(o.max_epsilon_before for o in over)])
        left = max(0.0, pol.dataset_epsilon_cap - worst)
        with transaction(self.db) as conn:
            append_in_tx(
                conn,
                "budget.refused",
                {
                    "dataset": dataset,
                    "requested_epsilon": epsilon,
                    "requested_delta": delta,
                    "spent_epsilon": spent.epsilon,
                    "most_charged_epsilon": worst,
                    "remaining_epsilon": left,
                    "units_over": {o.kind: {"epsilon": o.over_epsilon, "delta": o.over_delta} for o in over},
                    "dataset_epsilon_cap": pol.dataset_epsilon_cap,
                    "max_total_delta": pol.max_total_delta,
                    "max_epsilon_per_run": pol.max_epsilon_per_run,
                    "policy_sha256": policy_sha256,
                },
                actor,
            )
        raise BudgetExhausted(
            f"refused before training: {why}; the most-charged record of dataset {dataset} has ε {left:.4g} of "
            f"{pol.dataset_epsilon_cap:g} remaining (max {min(left, pol.max_epsilon_per_run):.4g} per run"
            f"{'; a subject with k records pays kε' if any(o.kind == SUBJECT for o in over) else ''}) — lower"
            " --epsilon, or train on records that have not been charged"
        )

    def unit_refusal(
        self, conn: sqlite3.Connection, units: Counter[Unit], *, epsilon: float, delta: float
    ) -> str | None:
        """Why charging (ε, δ) to each of ``units`` would pass a unit's caps (``privacy.dataset_epsilon_cap``,
        ``privacy.max_total_delta``), counting every charge on them under any dataset name; None when it fits."""
        pol = self.policy
        over = unit_overruns(
            unit_spent(conn, units), units, epsilon=epsilon, delta=delta,
            epsilon_cap=pol.dataset_epsilon_cap, delta_cap=pol.max_total_delta,
        )  # fmt: skip
        return self._refusal(epsilon, [o for o in over if o.over_epsilon or o.over_delta], per_run=False)

    def check_units(self, units: Counter[Unit], *, epsilon: float, delta: float, what: str, fix: str) -> None:
        """Raise :class:`BudgetExhausted` (``refused before {what}: … — {fix}``) when (ε, δ) does not fit every
        unit of ``units``; a read-only check before a mechanism draws anything."""
        with transaction(self.db) as conn:
            why = self.unit_refusal(conn, units, epsilon=epsilon, delta=delta)
        if why is not None:
            raise BudgetExhausted(f"refused before {what}: {why} — {fix}")

    def charge_units_in_tx(
        self,
        conn: sqlite3.Connection,
        dataset: str,
        units: Counter[Unit],
        *,
        epsilon: float,
        delta: float,
        accountant: str,
        actor: str | None,
        what: str,
        fix: str,
    ) -> int:
        """Check (ε, δ) against every unit's caps again and charge it, inside the caller's transaction (so no
        other charge can slip in between); raises :class:`BudgetExhausted` — the caller's transaction then
        writes nothing — past a cap. Returns the charge id."""
        why = self.unit_refusal(conn, units, epsilon=epsilon, delta=delta)
        if why is not None:
            raise BudgetExhausted(f"refused at {what}: {why} — {fix}")
        return insert_charge_in_tx(
            conn, dataset, epsilon=epsilon, delta=delta, accountant=accountant, actor=actor, units=units,
            status="charged",
        )  # fmt: skip

    def _refusal(self, epsilon: float, over: list[Overrun], *, per_run: bool = True) -> str | None:
        pol = self.policy
        if per_run and epsilon > pol.max_epsilon_per_run:
            return f"ε {epsilon:g} exceeds privacy.max_epsilon_per_run {pol.max_epsilon_per_run:g}"
        for o in over:
            noun = f"{o.over_epsilon} of its {o.units} {o.kind}s" if o.units > 1 else f"its {o.kind}"
            if o.over_epsilon:
                return (
                    f"ε {epsilon:g} would take {noun} past privacy.dataset_epsilon_cap {pol.dataset_epsilon_cap:g}"
                    f" (per {o.kind}: the most-charged would reach ε {o.max_epsilon:.4g}, counting runs under every"
                    " dataset name that holds it)"
                )
        for o in over:
            noun = f"{o.over_delta} of its {o.units} {o.kind}s" if o.units > 1 else f"its {o.kind}"
            if o.over_delta:
                group = " (a subject with k records is charged k·e^((k−1)ε)·δ)" if o.kind == SUBJECT else ""
                return (
                    f"δ would take {noun} past privacy.max_total_delta {pol.max_total_delta:g} (per {o.kind}: Σδ"
                    f" would reach {o.max_delta:.3g}){group}"
                )
        return None

    def settle_in_tx(
        self, conn: sqlite3.Connection, reservation: int, *, prompt_id: str, epsilon: float, delta: float
    ) -> Spent:
        """Replace a reservation by the run's accounted ε/δ (inside the caller's transaction); returns the new
        dataset total. The caller's ``train.run`` event carries :meth:`binding` of the settled row."""
        row = prompts.charge(conn, reservation, ("dataset", "status", "epsilon"))
        if row is None or row["status"] != "reserved":
            raise BudgetExhausted(f"budget reservation {reservation} is no longer open — run `appliance train` again")
        settled = {"prompt_id": prompt_id, "epsilon": max(epsilon, 0.0), "delta": delta, "status": "charged"}
        prompts.update_charge(conn, reservation, {**settled, "settled_at": utc_now()})
        return dataset_spent(conn, row["dataset"])

    @staticmethod
    def binding(conn: sqlite3.Connection, charge_id: int) -> dict[str, Any]:
        """What an event that changes a charge row carries so the row can be checked later."""
        row = charge_row(conn, charge_id)
        assert row is not None
        return {"charge_id": charge_id, "charge_sha256": charge_digest(row), "units_sha256": row["units_sha256"]}

    def release(self, reservation: int) -> None:
        """Give back a reservation whose run produced nothing (failed before any prompt was stored)."""
        with transaction(self.db) as conn:
            n = prompts.update_charge(
                conn, reservation, {"status": "released", "settled_at": utc_now()}, status="reserved"
            )
            if n:
                _bind(conn, "budget.release", reservation, None, {})
