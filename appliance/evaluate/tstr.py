"""Train-on-synthetic / test-on-real (TSTR): does the synthetic data teach what the real data teaches?

Two logistic-regression classifiers on the same sentence embeddings: one trained on n synthetic
labeled records, one on n real training records drawn with the *same label counts*; both are tested
on the real holdout. The ratio of their accuracies is the utility figure (1.0 = as useful as real data).
Pure functions over arrays and label lists.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TstrResult:
    n_train: int  # per side
    n_test: int
    n_labels: int
    acc_synthetic: float
    acc_real: float
    ratio: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def matched_real(syn_labels: Sequence[str], real_labels: Sequence[str], *, seed: int) -> tuple[list[int], list[int]]:
    """Indices (synthetic, real) so both sides have the same count per label, as many as both allow."""
    rng = np.random.default_rng(seed)
    by_real: dict[str, list[int]] = defaultdict(list)
    for i, lab in enumerate(real_labels):
        by_real[lab].append(i)
    by_syn: dict[str, list[int]] = defaultdict(list)
    for i, lab in enumerate(syn_labels):
        by_syn[lab].append(i)
    syn_idx: list[int] = []
    real_idx: list[int] = []
    for lab in sorted(by_syn):
        k = min(len(by_syn[lab]), len(by_real.get(lab, [])))
        if k == 0:
            continue
        syn_idx.extend(sorted(rng.choice(by_syn[lab], size=k, replace=False).tolist()))
        real_idx.extend(sorted(rng.choice(by_real[lab], size=k, replace=False).tolist()))
    return syn_idx, real_idx


def fit_accuracy(
    train_x: np.ndarray, train_y: Sequence[str], test_x: np.ndarray, test_y: Sequence[str], *, seed: int
) -> float:
    """Accuracy on the test set of a logistic regression fitted on the training set."""
    from sklearn.linear_model import LogisticRegression

    if len(set(train_y)) < 2:
        raise ValueError("TSTR needs at least two labels among the training records")
    clf = LogisticRegression(max_iter=2000, random_state=seed)
    clf.fit(np.asarray(train_x), list(train_y))
    return float(clf.score(np.asarray(test_x), list(test_y)))


def tstr(
    syn_x: np.ndarray,
    syn_y: Sequence[str],
    real_x: np.ndarray,
    real_y: Sequence[str],
    test_x: np.ndarray,
    test_y: Sequence[str],
    *,
    seed: int = 0,
) -> TstrResult:
    """Both accuracies and their ratio for two training sets of equal size (see :func:`matched_real`)."""
    if len(syn_y) != len(real_y):
        raise ValueError("TSTR compares training sets of equal size: subsample with matched_real() first")
    acc_syn = fit_accuracy(syn_x, syn_y, test_x, test_y, seed=seed)
    acc_real = fit_accuracy(real_x, real_y, test_x, test_y, seed=seed)
    return TstrResult(
        n_train=len(syn_y),
        n_test=len(test_y),
        n_labels=len(Counter(syn_y)),
        acc_synthetic=acc_syn,
        acc_real=acc_real,
        ratio=acc_syn / acc_real if acc_real > 0 else None,
    )
