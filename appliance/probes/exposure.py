"""Canary exposure (Carlini et al., "The Secret Sharer", USENIX Security 2019).

Pure functions. For a canary with secret s drawn from a space R of |R| candidates, rank(s) is its
position when every candidate is ordered by the model's loss (1 = most likely) and

    exposure(s) = log2 |R| − log2 rank(s)

(§4.1): 0 bits when the model prefers nothing, log2 |R| when the true secret is the model's favourite.
R is too large to enumerate (10^8 for 8 digits), so the rank is estimated from a random sample of
candidates by extrapolation (§4.3): fit a skew-normal to the sampled losses and take
rank ≈ 1 + (|R| − 1) · P(loss < loss(s)). The rank among the sampled candidates is reported as well.

P(loss < loss(s)) is the largest of three lower tails — a skew-normal's, a normal's and the sample's own
exponential tail (peaks over threshold: the lowest tenth of the candidates, the excesses below it
exponential) — and never less than the share of sampled candidates below the secret. Each guards against a
fitted tail that falls off faster than the data do, which calls a secret never trained on exposed:
- a few candidates with a very high loss (digit strings the model finds odd) make the skew-normal fit
  right-skewed, and its lower tail then vanishes; the normal's does not;
- a lower tail heavier than a normal's makes a secret from it look 4σ out under the normal; the exponential
  tail, fitted to the lowest candidates alone, reads it closer to what the sample shows;
- the sampled share means only a secret below every sampled candidate is extrapolated at all, so a secret
  never trained on passes log2 n bits (7.6 for the default 200 candidates, below the 10-bit gate) only
  below all n, with probability at most 1 / (n + 1) whatever the losses' shape: secret and candidates are
  drawn alike.
On near-normal losses the estimate passes b bits with probability about 2^-b. ``bench/canary_null.py`` measures
both, on simulated losses and on a trained prompt's; bench/RESULTS.md (session 21) has the figures. A memorised
secret lies far below every candidate and stays exposed: 5σ under a normal sample reads 14.8 bits (21.7 under
the normal alone), 8σ under reads 23.8.
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
    """P(candidate loss < true loss): the largest of a fitted skew-normal's, a fitted normal's and the sample's
    own exponential lower tail (:func:`exponential_tail_fraction`), and never less than the share of sampled
    candidates below it; the skew-normal's is left out if its fit fails. A lower tail is so never extrapolated
    lighter than the sample's lowest candidates show, and only a secret below every candidate is extrapolated."""
    from scipy import stats

    c = np.asarray(candidate_losses, dtype=np.float64)
    if c.size < 3 or float(c.std()) == 0.0:
        return float((c < true_loss).mean()) if c.size else 1.0
    p_normal = float(stats.norm.cdf(true_loss, loc=c.mean(), scale=c.std()))
    p_skew = skewnorm_fraction(true_loss, c)
    p = max(p_skew, p_normal) if math.isfinite(p_skew) else p_normal
    p = max(p, exponential_tail_fraction(true_loss, c), float((c < true_loss).mean()))
    return min(max(p, 0.0), 1.0)


def exponential_tail_fraction(
    true_loss: float, candidate_losses: np.ndarray, *, tail_share: float = 0.1, min_tail: int = 10
) -> float:
    """P(candidate loss < true loss) from the sample's lowest candidates alone (peaks over threshold, with an
    exponential — a generalised Pareto of shape 0 — for the excesses below the threshold).

    The threshold u is the (m+1)-th lowest candidate loss, m = max(``min_tail``, ⌈``tail_share`` · n⌉); the
    excesses u − loss of the m lowest are exponential with mean β (its maximum-likelihood estimate), so a loss
    t < u lies below a share (m / n) · exp(−(u − t) / β) of the space. At or above u: the sample's own share.
    0 where the sample has fewer than m + 1 candidates."""
    c = np.sort(np.asarray(candidate_losses, dtype=np.float64))
    m = max(min_tail, math.ceil(tail_share * c.size))
    if c.size <= m:
        return 0.0
    u = float(c[m])
    if true_loss >= u:
        return float((c < true_loss).mean())
    beta = float((u - c[:m]).mean())
    if beta <= 0.0:
        return 0.0
    return (m / c.size) * math.exp(-(u - true_loss) / beta)


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
