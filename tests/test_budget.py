"""Privacy budget: golden ε values, basic composition, and the ledger's reserve/settle/release protocol."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant

from appliance.budget import BudgetLedger, Spent, compose_basic, refusal, remaining
from appliance.budget.accounting import (
    default_delta,
    epsilon_for,
    noise_multiplier_for,
    planned_steps,
    sample_rate_for,
)
from appliance.config import Workspace
from appliance.context import Context
from appliance.db import transaction, utc_now
from appliance.errors import BudgetExhausted, NotFound

# (σ, q, steps, δ, accountant) -> ε, pinned from Opacus 1.6 (the MNIST setting of Abadi et al. 2016 and others)
GOLDEN = [
    (1.1, 256 / 60000, 14063, 1e-5, "rdp", 2.5966555286883684),
    (1.1, 256 / 60000, 14063, 1e-5, "prv", 2.3918365361863922),
    (1.0, 0.01, 1000, 1e-5, "rdp", 2.1013652716430564),
]


@pytest.mark.parametrize(("sigma", "q", "steps", "delta", "acc", "eps"), GOLDEN)
def test_golden_epsilon(sigma: float, q: float, steps: int, delta: float, acc: str, eps: float) -> None:
    got = epsilon_for(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta, accountant=acc)
    assert got == pytest.approx(eps, rel=1e-6)
    # and it is exactly what Opacus's own accountant object reports after stepping
    ref = RDPAccountant() if acc == "rdp" else PRVAccountant()
    for _ in range(steps if acc == "rdp" else 1):
        ref.step(noise_multiplier=sigma, sample_rate=q)
    if acc == "prv":
        ref.history = [(sigma, q, steps)]
    assert got == pytest.approx(ref.get_epsilon(delta=delta), rel=1e-12)


def test_noise_multiplier_reaches_target_from_below() -> None:
    sigma = noise_multiplier_for(target_epsilon=4.0, delta=1e-5, sample_rate=0.1, steps=30)
    eps = epsilon_for(noise_multiplier=sigma, sample_rate=0.1, steps=30, delta=1e-5)
    assert 3.99 <= eps <= 4.0
    assert epsilon_for(noise_multiplier=sigma * 0.9, sample_rate=0.1, steps=30, delta=1e-5) > 4.0


@pytest.mark.parametrize(
    ("n", "bound", "delta"),
    [(1, 10, 1e-6), (240, 1000, 1e-6), (1000, 1000, 1e-6), (99_999, 100_000, 1e-6), (100_001, 1_000_000, 1e-7),
     (3_000_000, 10_000_000, 1e-8)],
)  # fmt: skip
def test_default_delta_is_at_most_a_tenth_of_one_over_a_public_bound(n: int, bound: int, delta: float) -> None:
    """δ = min(1/(10 N), 1e-6) with N the next power of ten: n·δ ≤ 0.1, and δ reveals only n's magnitude."""
    from appliance.budget.accounting import max_delta, public_upper_bound

    assert public_upper_bound(n) == bound and default_delta(n) == pytest.approx(delta)
    assert n * default_delta(n) <= 0.1 and default_delta(n) < max_delta(n)
    assert default_delta(n) == default_delta(bound)  # the same for every n of that magnitude


def test_accounting_helpers() -> None:
    assert default_delta(1000) == 1e-6
    assert sample_rate_for(n=100, batch_size=16) == pytest.approx(1 / 7)
    assert planned_steps(epochs=3, sample_rate=1 / 7) == 21
    assert epsilon_for(noise_multiplier=1.0, sample_rate=0.5, steps=0, delta=1e-5) == 0.0
    with pytest.raises(ValueError):
        epsilon_for(noise_multiplier=1.0, sample_rate=0.5, steps=1, delta=1e-5, accountant="gdp")


def test_basic_composition_adds() -> None:
    s = compose_basic([(1.0, 1e-6), (2.5, 2e-6), (0.5, 0.0)])
    assert s == Spent(4.0, 3e-6, 3)
    assert compose_basic([]) == Spent(0.0, 0.0, 0)
    assert remaining(spent=s, cap=3.0) == 0.0 and remaining(spent=s, cap=10.0) == 6.0
    with pytest.raises(ValueError):
        compose_basic([(-1.0, 0.0)])


@pytest.mark.parametrize(
    ("requested", "spent", "reason"),
    [
        (4.0, 0.0, None),
        (8.0, 8.0, None),  # exactly at the cap is allowed
        (9.0, 0.0, "max_epsilon_per_run"),
        (4.0, 12.5, "dataset_epsilon_cap"),
    ],
)
def test_refusal(requested: float, spent: float, reason: str | None) -> None:
    why = refusal(requested=requested, spent=Spent(spent, 0.0, 1), max_per_run=8.0, cap=16.0)
    assert (why is None) if reason is None else (reason in why)


@pytest.fixture
def ctx(workspace: Path) -> Context:
    c = Context.open(Workspace(workspace), actor="tester")
    with transaction(c.db) as conn:
        conn.execute(
            "INSERT INTO datasets (name, created_at, source_sha256, policy_sha256) VALUES ('d1', ?, ?, ?)",
            (utc_now(), "sha256:" + "0" * 64, c.policy_sha256),
        )
    yield c
    c.close()


def test_ledger_reserve_settle_release(ctx: Context) -> None:
    ledger = BudgetLedger(ctx.db, ctx.policy.privacy)  # default policy: 8 per run, cap 16
    r1 = ledger.reserve("d1", epsilon=6.0, delta=1e-6, accountant="rdp", actor="tester", policy_sha256="x")
    assert ledger.view("d1").spent.epsilon == 6.0 and ledger.view("d1").reserved_runs == 1
    with transaction(ctx.db) as conn:
        total = ledger.settle_in_tx(conn, r1, prompt_id="sp-1", epsilon=5.9, delta=1e-6)
    assert total.epsilon == pytest.approx(5.9)
    r2 = ledger.reserve("d1", epsilon=8.0, delta=1e-6, accountant="rdp", actor="tester", policy_sha256="x")
    ledger.release(r2)  # a failed run gives its reservation back
    view = ledger.view("d1")
    assert view.spent == Spent(pytest.approx(5.9), pytest.approx(1e-6), 1)
    assert view.remaining == pytest.approx(10.1)
    assert [c["status"] for c in ledger.charges("d1")] == ["charged", "released"]


def test_ledger_refuses_over_cap_and_audits(ctx: Context) -> None:
    ledger = BudgetLedger(ctx.db, ctx.policy.privacy)
    ledger.reserve("d1", epsilon=8.0, delta=1e-6, accountant="rdp", actor="tester", policy_sha256="x")
    ledger.reserve("d1", epsilon=7.0, delta=1e-6, accountant="rdp", actor="tester", policy_sha256="x")
    with pytest.raises(BudgetExhausted) as exc:
        ledger.reserve("d1", epsilon=2.0, delta=1e-6, accountant="rdp", actor="tester", policy_sha256="x")
    msg = str(exc.value)
    assert "privacy.dataset_epsilon_cap" in msg and "1 of 16 remaining" in msg and "lower --epsilon" in msg
    with pytest.raises(BudgetExhausted, match=r"privacy\.max_epsilon_per_run"):
        ledger.reserve("d1", epsilon=9.0, delta=1e-6, accountant="rdp", actor="tester", policy_sha256="x")
    assert len(ledger.charges("d1")) == 2  # refusals record no charge ...
    events = ctx.ledger.events(kind="budget.refused")
    assert len(events) == 2 and events[0].payload["remaining_epsilon"] == pytest.approx(1.0)  # ... but are audited
    assert ctx.ledger.verify().ok


def test_ledger_unknown_dataset(ctx: Context) -> None:
    ledger = BudgetLedger(ctx.db, ctx.policy.privacy)
    with pytest.raises(NotFound):
        ledger.reserve("nope", epsilon=1.0, delta=1e-6, accountant="rdp", actor="tester", policy_sha256="x")
    with pytest.raises(NotFound):
        ledger.view("nope")
    assert math.isfinite(ledger.view("d1").remaining)


@pytest.mark.parametrize("acc", ["rdp", "prv"])
def test_a_reserved_histogram_is_composed_into_the_target(acc: str) -> None:
    """DP-SGD's σ rises just enough that DP-SGD and one σ = 4 histogram together stay within ε = 4."""
    from appliance.budget.accounting import history_epsilon, selection_mechanism

    q, steps, delta = 1 / 34, 102, 1e-6
    also = (selection_mechanism(4.0),)
    alone = noise_multiplier_for(target_epsilon=4.0, delta=delta, sample_rate=q, steps=steps, accountant=acc)
    sigma = noise_multiplier_for(target_epsilon=4.0, delta=delta, sample_rate=q, steps=steps, accountant=acc, also=also)
    both = epsilon_for(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta, accountant=acc, also=also)
    assert 3.99 - 0.01 <= both <= 4.0
    assert alone < sigma < alone * 1.05, "RDP composition makes the histogram cheap"
    # composed, not added: far below the sum of the two ε
    sel_eps = history_epsilon(also, delta=delta, accountant=acc)
    assert sel_eps > 0.9 and both < epsilon_for(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta,
                                                  accountant=acc) + sel_eps  # fmt: skip
    with pytest.raises(ValueError, match="alone spend"):
        noise_multiplier_for(target_epsilon=0.5, delta=delta, sample_rate=q, steps=steps, also=also)
