"""Pure composition of per-run privacy charges over a dataset, and the policy's budget decision.

Basic (sequential) composition: runs with guarantees (ε_i, δ_i) on the same dataset are together
(Σ ε_i, Σ δ_i)-DP (Dwork & Roth 2014, Thm 3.16). It ignores that the runs are Gaussian mechanisms whose RDP
would compose more tightly, so it over-charges — never under-charges — the dataset.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Spent:
    epsilon: float
    delta: float
    runs: int


def compose_basic(charges: Iterable[tuple[float, float]]) -> Spent:
    """(Σε, Σδ) over the given (ε, δ) charges."""
    eps = delta = 0.0
    runs = 0
    for e, d in charges:
        if e < 0 or d < 0:
            raise ValueError("privacy charges are never negative")
        eps += e
        delta += d
        runs += 1
    return Spent(eps, delta, runs)


def remaining(*, spent: Spent, cap: float) -> float:
    """ε still available under the dataset cap (never negative)."""
    return max(0.0, cap - spent.epsilon)


def refusal(*, requested: float, spent: Spent, max_per_run: float, cap: float) -> str | None:
    """Why a run asking for ``requested`` ε must be refused, or None if both limits allow it."""
    if requested > max_per_run:
        return f"ε {requested:g} exceeds privacy.max_epsilon_per_run {max_per_run:g}"
    if spent.epsilon + requested > cap + 1e-12:
        return (
            f"ε {requested:g} on top of the ε {spent.epsilon:.4g} already spent exceeds"
            f" privacy.dataset_epsilon_cap {cap:g}"
        )
    return None
