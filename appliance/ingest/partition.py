"""DP partition selection of a label set: which of a private column's labels may be released (pure math).

Used by ``appliance seeds import --label-field F --labels dp`` when the operator cannot declare the label set
as public schema. Each budget unit (a record, or a declared subject) contributes 1 to the count of one label
(its first record's, in file order: contribution bounding, so one unit changes one count by at most 1). Each
count gets Gaussian noise N(0, σ²), σ the smallest that makes the noisy count vector (ε, δ/2)-DP for L2
sensitivity 1 (the analytic Gaussian mechanism, Balle & Wang 2018, "Improving the Gaussian Mechanism for
Differential Privacy", Theorem 8); a label is released when its noisy count exceeds τ = 1 + σ·Φ⁻¹(1 − δ/2),
so a label held by a single unit is released with probability at most δ/2. Together (ε, δ)-DP under
add/remove one unit: Gaussian thresholding, as in Google's differential-privacy library
(``GaussianPartitionSelection``) and Desfontaines et al. 2022, "Differentially private partition
selection" (PoPETs). Only the selected set leaves this module's caller; the counts and the noise stay inside.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

MECHANISM = "gaussian-thresholding"


def _adp_delta(sigma: float, epsilon: float) -> float:
    """The δ the Gaussian mechanism with noise ``sigma`` (sensitivity 1) achieves at ``epsilon``."""
    a, b = 1.0 / (2.0 * sigma), epsilon * sigma
    # Φ(a − b) − e^ε Φ(−a − b), the second term in log space (e^ε can be large)
    return float(norm.cdf(a - b) - math.exp(epsilon + norm.logcdf(-a - b)))


def analytic_sigma(epsilon: float, delta: float) -> float:
    """The smallest σ (to 1e-9 relative) for which N(0, σ²) noise on a sensitivity-1 query is (ε, δ)-DP."""
    if not (epsilon > 0.0 and 0.0 < delta < 1.0):
        raise ValueError(f"need ε > 0 and 0 < δ < 1, got ε={epsilon}, δ={delta}")
    lo, hi = 1e-6, 1.0
    while _adp_delta(hi, epsilon) > delta:
        hi *= 2.0
    while hi - lo > 1e-9 * hi:
        mid = 0.5 * (lo + hi)
        if _adp_delta(mid, epsilon) > delta:
            lo = mid
        else:
            hi = mid
    return hi


def threshold(sigma: float, delta: float) -> float:
    """τ = 1 + σ·Φ⁻¹(1 − δ): a count of 1 (one unit's label) passes it with probability δ."""
    return 1.0 + sigma * float(norm.isf(delta))


@dataclass(frozen=True)
class LabelSelection:
    """The released labels (sorted) and the mechanism's public parameters; ``n_candidates`` stays inside."""

    labels: list[str]
    epsilon: float
    delta: float
    sigma: float
    threshold: float
    n_candidates: int

    def audit(self) -> dict[str, object]:
        return {
            "mechanism": MECHANISM,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "sigma": self.sigma,
            "threshold": self.threshold,
            "n_candidates": self.n_candidates,
            "n_selected": len(self.labels),
        }


def select_labels(
    unit_labels: Mapping[str, str], *, epsilon: float, delta: float, rng: np.random.Generator
) -> LabelSelection:
    """Gaussian thresholding over one label per unit (``unit -> label``); δ is split evenly between the
    noise and the threshold."""
    sigma = analytic_sigma(epsilon, delta / 2.0)
    tau = threshold(sigma, delta / 2.0)
    counts = Counter(unit_labels.values())
    names = sorted(counts)
    noisy = np.array([counts[name] for name in names], dtype=np.float64) + rng.normal(0.0, sigma, size=len(names))
    chosen = [name for name, value in zip(names, noisy.tolist(), strict=True) if value > tau]
    return LabelSelection(chosen, epsilon, delta, sigma, tau, len(names))
