"""Pure composition of per-run privacy charges over a dataset, and the policy's budget decision.

Basic (sequential) composition: runs with guarantees (ε_i, δ_i) on the same dataset are together
(Σ ε_i, Σ δ_i)-DP (Dwork & Roth 2014, Thm 3.16). It ignores that the runs are Gaussian mechanisms whose RDP
would compose more tightly, so it over-charges — never under-charges — the dataset.

Per unit (one record, or one declared subject), every run that trained on it is charged to it: the unit's
ε and δ are the basic composition of those runs, whatever dataset name each run used. A subject with k
records in one run is charged as a group of k (group privacy, :func:`group_charge`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


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


def group_charge(*, epsilon: float, delta: float, size: int) -> tuple[float, float]:
    """(kε, k·e^((k−1)ε)·δ): what an (ε, δ)-DP run costs a group of k records (group privacy).

    Vadhan 2017, "The complexity of differential privacy", Lemma 2.2; for k = 1 the run's own (ε, δ).
    δ is capped at 1 (above it the bound says nothing anyway).
    """
    if size < 1:
        raise ValueError("a group has at least one record")
    if size == 1:
        return epsilon, delta
    return size * epsilon, min(1.0, size * math.exp(min((size - 1) * epsilon, 700.0)) * delta)


@dataclass(frozen=True)
class Overrun:
    """How many units of one kind a run would take past a cap, and the worst total it would leave."""

    kind: str
    units: int
    over_epsilon: int
    over_delta: int
    max_epsilon: float  # the most-charged unit's ε after the run
    max_delta: float
    max_epsilon_before: float  # the most-charged unit's ε before it


def unit_overruns(
    spent: Mapping[tuple[str, str], Spent],
    run: Mapping[tuple[str, str], int],
    *,
    epsilon: float,
    delta: float,
    epsilon_cap: float,
    delta_cap: float,
) -> list[Overrun]:
    """Per kind of unit, how many of ``run``'s units (kind, key) -> records would pass either cap.

    Records are charged (ε, δ) each; a subject with k records in the run, :func:`group_charge` of k.
    """
    out: dict[str, list[Any]] = {}
    for (kind, key), m in run.items():
        e, d = group_charge(epsilon=epsilon, delta=delta, size=m) if kind == "subject" else (epsilon, delta)
        before = spent.get((kind, key), Spent(0.0, 0.0, 0))
        te, td = before.epsilon + e, before.delta + d
        acc = out.setdefault(kind, [0, 0, 0, 0.0, 0.0, 0.0])
        acc[0] += 1
        acc[1] += te > epsilon_cap + 1e-12
        acc[2] += td > delta_cap * (1 + 1e-9)
        acc[3], acc[4], acc[5] = max(acc[3], te), max(acc[4], td), max(acc[5], before.epsilon)
    return [Overrun(kind, *vals) for kind, vals in sorted(out.items())]
