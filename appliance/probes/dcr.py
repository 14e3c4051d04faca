"""Distance to closest record (DCR): does synthetic text sit closer to training members than to holdout?

Pure functions. Two distances: cosine distance between sentence embeddings and word n-gram Jaccard
distance. Two views ("The Canary's Echo", Meeus et al. 2024, synthetic-only attack):

- **ratio** — for each synthetic record, its distance to the closest member and to the closest holdout
  record; ratio = median(to members) / median(to holdout), computed against equally many members and
  holdout records. ≈1 when the generator generalises; well below 1 when it copies its training data.
- **attack AUC** — for each member and holdout record, the distance to its closest synthetic record
  scores membership (closer = member); 0.5 means an attacker holding only the synthetic data learns nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from appliance.probes.metrics import roc_auc

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
EPS = 1e-9


def word_ngrams(text: str, n: int = 2) -> frozenset[tuple[str, ...]]:
    """Lower-cased word n-grams of ``text`` (its words as one gram when it has fewer than ``n``)."""
    w = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    if len(w) < n:
        return frozenset([tuple(w)]) if w else frozenset()
    return frozenset(tuple(w[i : i + n]) for i in range(len(w) - n + 1))


def jaccard_distances(a: Sequence[frozenset[Hashable]], b: Sequence[frozenset[Hashable]]) -> np.ndarray:
    """Matrix of 1 − |x ∩ y| / |x ∪ y| (0 for two empty sets)."""
    out = np.empty((len(a), len(b)), dtype=np.float64)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            union = len(x | y)
            out[i, j] = 0.0 if union == 0 else 1.0 - len(x & y) / union
    return out


def cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Matrix of 1 − cos(a_i, b_j), clipped to [0, 2]."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), EPS)
    y = y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), EPS)
    out: np.ndarray = np.clip(1.0 - x @ y.T, 0.0, 2.0)
    return out


def closest(dist: np.ndarray) -> np.ndarray:
    """Each row's distance to its closest column."""
    d = np.asarray(dist, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] == 0:
        raise ValueError("need a non-empty reference set")
    out: np.ndarray = d.min(axis=1)
    return out


def dcr_ratio(to_members: np.ndarray, to_holdout: np.ndarray) -> float:
    """median(DCR to members) / median(DCR to holdout); below 1 means synthetic text hugs the training set."""
    m = float(np.median(np.asarray(to_members, dtype=np.float64)))
    h = float(np.median(np.asarray(to_holdout, dtype=np.float64)))
    return (m + EPS) / (h + EPS)


def dcr_attack_auc(member_to_synth: np.ndarray, holdout_to_synth: np.ndarray) -> float:
    """AUC of "closer to some synthetic record ⇒ member" (members vs holdout)."""
    return roc_auc(-np.asarray(member_to_synth, dtype=np.float64), -np.asarray(holdout_to_synth, dtype=np.float64))


def equal_subsample(n_items: int, n: int, seed: int) -> np.ndarray:
    """Sorted indices of ``min(n, n_items)`` items drawn without replacement (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    k = min(n, n_items)
    return np.sort(rng.choice(n_items, size=k, replace=False))


def dcr_summary(
    d_sm: np.ndarray, d_sh: np.ndarray, *, n_rounds: int = 5, seed: int = 0, n_boot: int = 200, alpha: float = 0.05
) -> dict[str, Any]:
    """Ratio (with a percentile-bootstrap interval) and attack AUC from synthetic×member and
    synthetic×holdout distance matrices.

    The larger reference set is subsampled to the smaller one's size (a larger set is closer by chance
    alone) and the ratio averaged over ``n_rounds`` subsamples; the AUC uses every record. The interval
    resamples the synthetic records (rows), the sample the ratio's median is taken over.
    """
    d_sm = np.asarray(d_sm, dtype=np.float64)
    d_sh = np.asarray(d_sh, dtype=np.float64)
    n_m, n_h = d_sm.shape[1], d_sh.shape[1]
    pairs = []
    for r in range(n_rounds if n_m != n_h else 1):
        sm = d_sm[:, equal_subsample(n_m, n_h, seed + r)] if n_m > n_h else d_sm
        sh = d_sh[:, equal_subsample(n_h, n_m, seed + r)] if n_h > n_m else d_sh
        pairs.append((closest(sm), closest(sh)))
    ratios = [dcr_ratio(m, h) for m, h in pairs]
    rng = np.random.default_rng(seed)
    n_s = d_sm.shape[0]
    boot = np.empty(n_boot, dtype=np.float64)
    for b in range(n_boot):
        rows = rng.integers(0, n_s, n_s)
        boot[b] = np.mean([dcr_ratio(m[rows], h[rows]) for m, h in pairs])
    lo, hi = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    return {
        "ratio": float(np.mean(ratios)),
        "ratio_ci": [float(lo), float(hi)],
        "median_to_members": float(np.median(closest(d_sm))),
        "median_to_holdout": float(np.median(closest(d_sh))),
        "attack_auc": dcr_attack_auc(d_sm.min(axis=0), d_sh.min(axis=0)),
        "n_synthetic": int(d_sm.shape[0]),
        "n_members": int(n_m),
        "n_holdout": int(n_h),
    }
