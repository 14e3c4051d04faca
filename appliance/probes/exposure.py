"""Canary exposure (Carlini et al., "The Secret Sharer", USENIX Security 2019).

Pure functions. For a canary with secret s drawn from a space R of |R| candidates, rank(s) is its
position when every candidate is ordered by the model's loss (1 = most likely) and

    exposure(s) = log2 |R| − log2 rank(s)

(§4.1): 0 bits when the model prefers nothing, log2 |R| when the true secret is the model's favourite.
R is too large to enumerate (10^8 for 8 digits), so the rank is estimated from a random sample of
candidates by extrapolation (§4.3): fit a skew-normal to the sampled losses and take
rank ≈ 1 + (|R| − 1) · P(loss < loss(s)). The rank among the sampled candidates is reported as well.

P(loss < loss(s)) is the larger of the skew-normal's and a normal's lower tail. A few candidates with a
very high loss (digit strings the model finds odd) make the skew-normal fit right-skewed, and its lower
tail then falls off far faster than the sample shows. In ``bench/canary_null.py --simulate`` (3,000 secrets
never trained on, 3% such outliers among 200 candidates) the skew-normal alone put 11 above 10 bits (2.9
expected by chance, max 14.1); the heavier of the two tails put none there (max 8.9). A memorised
secret lies below every candidate by many standard deviations, so it stays exposed under either tail.
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
    """P(candidate loss < true loss): the larger of a fitted skew-normal's and a fitted normal's CDF (the normal's
    alone if the skew-normal fit fails), so a lower tail is never extrapolated lighter than a normal's."""
    from scipy import stats

    c = np.asarray(candidate_losses, dtype=np.float64)
    if c.size < 3 or float(c.std()) == 0.0:
        return float((c < true_loss).mean()) if c.size else 1.0
    p_normal = float(stats.norm.cdf(true_loss, loc=c.mean(), scale=c.std()))
    p_skew = skewnorm_fraction(true_loss, c)
    p = max(p_skew, p_normal) if math.isfinite(p_skew) else p_normal
    return min(max(p, 0.0), 1.0)


def skewnorm_fraction(true_loss: float, candidate_losses: np.ndarray) -> float:
    """P(candidate loss < true loss) under a skew-normal fitted to the candidate losses (Secret Sharer §4.3);
    NaN when the fit fails."""
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            a, loc, scale = stats.skewnorm.fit(np.asarray(candidate_losses, dtype=np.float64))
            return float(stats.skewnorm.cdf(true_loss, a, loc=loc, scale=scale))
        except Exception:  # scipy's optimiser raises several types; the caller's normal tail stands in
            return float("nan")


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
