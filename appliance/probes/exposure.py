"""Canary exposure (Carlini et al., "The Secret Sharer", USENIX Security 2019).

Pure functions. For a canary with secret s drawn from a space R of |R| candidates, rank(s) is its
position when every candidate is ordered by the model's loss (1 = most likely) and

    exposure(s) = log2 |R| − log2 rank(s)

(§4.1): 0 bits when the model prefers nothing, log2 |R| when the true secret is the model's favourite.
R is too large to enumerate (10^8 for 8 digits), so the rank is estimated from a random sample of
candidates by extrapolation (§4.3): fit a skew-normal to the sampled losses and take
rank ≈ 1 + (|R| − 1) · P(loss < loss(s)). The rank among the sampled candidates is reported as well.
"""

from __future__ import annotations

import math
import warnings

import numpy as np


def exposure_from_rank(rank: float, n_candidates: float) -> float:
    """log2(n_candidates) − log2(rank): the exposure of a secret ranked ``rank`` among ``n_candidates``."""
    if n_candidates < 1 or not 1 <= rank <= n_candidates:
        raise ValueError("need 1 <= rank <= n_candidates")
    return math.log2(n_candidates) - math.log2(rank)


def sample_rank(true_loss: float, candidate_losses: np.ndarray) -> int:
    """1 + how many sampled candidates the model finds strictly more likely than the true secret."""
    c = np.asarray(candidate_losses, dtype=np.float64)
    return 1 + int((c < true_loss).sum())


def fraction_below(true_loss: float, candidate_losses: np.ndarray) -> float:
    """P(candidate loss < true loss) under a skew-normal fitted to the candidate losses (normal if the fit fails)."""
    from scipy import stats

    c = np.asarray(candidate_losses, dtype=np.float64)
    if c.size < 3 or float(c.std()) == 0.0:
        return float((c < true_loss).mean()) if c.size else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            a, loc, scale = stats.skewnorm.fit(c)
            p = float(stats.skewnorm.cdf(true_loss, a, loc=loc, scale=scale))
        except Exception:
            p = float("nan")
        if not math.isfinite(p):
            p = float(stats.norm.cdf(true_loss, loc=c.mean(), scale=c.std()))
    return min(max(p, 0.0), 1.0)


def estimated_exposure(true_loss: float, candidate_losses: np.ndarray, space_size: float) -> dict[str, float]:
    """Exposure over the whole secret space (extrapolated) and over the sampled candidates (exact)."""
    c = np.asarray(candidate_losses, dtype=np.float64)
    if space_size < c.size + 1:
        raise ValueError("space_size must cover the sampled candidates and the true secret")
    frac = fraction_below(true_loss, c)
    rank_est = 1.0 + (space_size - 1.0) * frac
    rank_s = sample_rank(true_loss, c)
    return {
        "exposure_bits": exposure_from_rank(rank_est, space_size),
        "rank_estimate": rank_est,
        "sample_rank": rank_s,
        "sample_exposure_bits": exposure_from_rank(rank_s, c.size + 1),
        "n_candidates": int(c.size),
        "space_bits": math.log2(space_size),
    }
