"""Membership-inference metrics: ROC curve, ROC AUC, TPR at a fixed low FPR, bootstrap intervals.

Pure functions over score arrays. Convention everywhere: a *higher* score means "more likely a member"
(positives are training members, negatives the holdout the trainer never saw). Following LiRA (Carlini
et al., "Membership Inference Attacks From First Principles", 2022, §3) the low-FPR operating point is
reported beside the AUC: an attack that is confidently right about a few records matters more than a
small average advantage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypedDict

import numpy as np

ArrayLike = Sequence[float] | np.ndarray


def _arr(x: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite")
    return a


def roc_auc(pos: ArrayLike, neg: ArrayLike) -> float:
    """P(score of a random member > score of a random non-member), ties counting one half (Mann-Whitney U)."""
    p, n = _arr(pos, "pos"), _arr(neg, "neg")
    allv = np.concatenate([p, n])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(allv.size, dtype=np.float64)
    sorted_v = allv[order]
    i = 0
    while i < sorted_v.size:  # average ranks over ties
        j = i
        while j + 1 < sorted_v.size and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    u = ranks[: p.size].sum() - p.size * (p.size + 1) / 2.0
    return float(u / (p.size * n.size))


def roc_curve(pos: ArrayLike, neg: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``: one point per distinct score (predict member when score >= threshold).

    Starts at (0, 0) with threshold +inf and ends at (1, 1).
    """
    p, n = _arr(pos, "pos"), _arr(neg, "neg")
    thresholds = np.unique(np.concatenate([p, n]))[::-1]
    ps, ns = np.sort(p), np.sort(n)
    tp = p.size - np.searchsorted(ps, thresholds, side="left")
    fp = n.size - np.searchsorted(ns, thresholds, side="left")
    fpr = np.concatenate([[0.0], fp / n.size])
    tpr = np.concatenate([[0.0], tp / p.size])
    return fpr, tpr, np.concatenate([[np.inf], thresholds])


def tpr_at_fpr(pos: ArrayLike, neg: ArrayLike, fpr: float = 0.01) -> float:
    """The highest TPR of any threshold whose FPR is at most ``fpr`` (no interpolation: conservative).

    With fewer than 1/fpr non-members this is the share of members scoring above every non-member.
    """
    if not 0.0 <= fpr <= 1.0:
        raise ValueError("fpr must be in [0, 1]")
    f, t, _ = roc_curve(pos, neg)
    ok = f <= fpr + 1e-12
    return float(t[ok].max())


def bootstrap_ci(
    stat: Callable[[np.ndarray, np.ndarray], float],
    pos: ArrayLike,
    neg: ArrayLike,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap ``(lo, hi)`` of ``stat(pos, neg)``, resampling members and non-members separately."""
    p, n = _arr(pos, "pos"), _arr(neg, "neg")
    if n_boot < 1:
        raise ValueError("n_boot must be positive")
    rng = np.random.default_rng(seed)
    vals = np.empty(n_boot, dtype=np.float64)
    for b in range(n_boot):
        vals[b] = stat(p[rng.integers(0, p.size, p.size)], n[rng.integers(0, n.size, n.size)])
    lo, hi = np.quantile(vals, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


class AttackSummary(TypedDict):
    """One attack's scores (:func:`attack_summary`); the ``_ci`` entries are [low, high]."""

    auc: float
    auc_ci: list[float]
    tpr_at_1pct_fpr: float
    tpr_at_1pct_fpr_ci: list[float]
    n_members: int
    n_holdout: int


def attack_summary(pos: ArrayLike, neg: ArrayLike, *, n_boot: int = 1000, seed: int = 0) -> AttackSummary:
    """AUC and TPR@1%FPR with 95% bootstrap intervals, for one attack's member and holdout scores."""
    auc = roc_auc(pos, neg)
    tpr = tpr_at_fpr(pos, neg, 0.01)
    auc_ci = bootstrap_ci(roc_auc, pos, neg, n_boot=n_boot, seed=seed)
    tpr_ci = bootstrap_ci(lambda a, b: tpr_at_fpr(a, b, 0.01), pos, neg, n_boot=n_boot, seed=seed + 1)
    return {
        "auc": auc,
        "auc_ci": [auc_ci[0], auc_ci[1]],
        "tpr_at_1pct_fpr": tpr,
        "tpr_at_1pct_fpr_ci": [tpr_ci[0], tpr_ci[1]],
        "n_members": int(np.asarray(pos).size),
        "n_holdout": int(np.asarray(neg).size),
    }
