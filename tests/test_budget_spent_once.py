"""ε spent on a dataset has one definition (``budget.ledger.dataset_spent``): reserved + charged rows, never a
released reservation. The budget ledger, the gate's facts and the compliance report all show that number."""

from __future__ import annotations

from pathlib import Path

import pytest
from gate_fixtures import seed_workspace, write_policy

from appliance.budget import BudgetLedger
from appliance.budget.ledger import dataset_spent
from appliance.config import Workspace
from appliance.context import Context
from appliance.gate.facts import dataset_epsilon, gather
from appliance.report import data as report_data


@pytest.fixture
def ctx(workspace: Path):
    write_policy(workspace, privacy={"max_total_delta": 1e-4})  # room for three runs of δ 1e-5 per record
    seed_workspace(workspace, epsilon=3.0)  # one charged run: ε 3, δ 1e-5
    c = Context.open(Workspace(workspace), actor="tester")
    yield c
    c.close()


def _reserve(c: Context, eps: float) -> int:
    return BudgetLedger(c.db, c.policy.privacy).reserve(
        "bank", epsilon=eps, delta=1e-5, accountant="rdp", actor="tester", policy_sha256=c.policy_sha256
    )


def test_released_reservations_are_not_spent_everywhere(ctx: Context) -> None:
    ledger = BudgetLedger(ctx.db, ctx.policy.privacy)
    ledger.release(_reserve(ctx, 2.0))  # a failed run gives its ε back
    _reserve(ctx, 1.5)  # a run in progress (or crashed) still counts
    spent = dataset_spent(ctx.db.conn, "bank")
    assert spent.epsilon == pytest.approx(4.5) and spent.delta == pytest.approx(2e-5) and spent.runs == 2
    assert ledger.view("bank").spent == spent
    assert dataset_epsilon(ctx.db.conn, "bank") == (spent.epsilon, spent.delta)
    batch = dict(
        zip(
            [c[0] for c in ctx.db.conn.execute("SELECT * FROM batches LIMIT 0").description],
            ctx.db.conn.execute("SELECT * FROM batches WHERE id = 'b-test'").fetchone(),
            strict=True,
        )
    )
    assert gather(ctx.db, batch).facts.dataset_epsilon == pytest.approx(4.5)
    (row,) = report_data.datasets(ctx.db.conn, "bank", ctx.policy.privacy.dataset_epsilon_cap)
    assert row["epsilon_spent"] == pytest.approx(4.5) and row["delta_spent"] == pytest.approx(2e-5)
    assert row["n_charges"] == 2


def test_no_other_module_sums_privacy_charges() -> None:
    """The fact is computed in one place; everything else calls it (a grep, so a new copy fails here)."""
    root = Path(__file__).resolve().parents[1] / "appliance"
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "SUM(epsilon" in p.read_text(encoding="utf-8").replace(" ", "").replace("sum(epsilon", "SUM(epsilon")
    ]
    assert offenders == []
