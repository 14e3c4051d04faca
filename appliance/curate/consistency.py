"""Label consistency: keep an output only when the DP generator itself reads it as its own label.

For a labelled soft prompt the generator is a class-conditional model p(text | label). Scoring each output
under every label's context (``training.label_template``) with the trained prompt gives the generator's own
posterior over labels (uniform prior); an output whose posterior argmax is another label is off-label.

This reads the DP artifact (model + soft prompt) and the outputs, never the private seeds, so selecting
by it is post-processing of the (ε, δ)-DP mechanism and the export stays inside the stated guarantee.
A filter that trained a classifier on the seeds would not be (it would sit outside ε).

Pure decision (:func:`consistent`) apart from scoring (:func:`score_labels`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class _Scorer(Protocol):
    def logprobs_many(
        self, texts: Sequence[str], labels: Sequence[str | None], *, with_prompt: bool = True
    ) -> list[np.ndarray]: ...


def score_labels(scorer: _Scorer, texts: Sequence[str], label_set: Sequence[str]) -> np.ndarray:
    """(n, L): the summed log-probability of each text under each label's context, with the soft prompt."""
    scores = np.zeros((len(texts), len(label_set)), dtype=np.float64)
    for j, lab in enumerate(label_set):
        lps = scorer.logprobs_many(texts, [lab] * len(texts))
        scores[:, j] = [float(np.sum(lp)) for lp in lps]
    return scores


def consistent(scores: np.ndarray, own: Sequence[int], *, margin: float = 0.0) -> list[bool]:
    """True where the text's own label (column ``own[i]``) beats every other label by more than ``margin``
    nats (0: the posterior argmax is its own label; ties are not consistent)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != len(own):
        raise ValueError("scores must be (n_texts, n_labels) with one own label per text")
    if s.shape[1] < 2:
        return [True] * s.shape[0]  # one label: nothing to confuse it with
    out = []
    for i, j in enumerate(own):
        others = np.delete(s[i], j)
        out.append(bool(s[i, j] - others.max() > margin))
    return out
