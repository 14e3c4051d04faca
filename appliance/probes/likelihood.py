"""Per-record likelihood scores from teacher-forced logits: loss and Min-K% probability.

Pure functions over arrays. Min-K% Prob (Shi et al., "Detecting Pretraining Data from Large Language
Models", ICLR 2024, §3): the mean log-probability of the k% least likely tokens of a text; members tend
to have fewer very unlikely tokens, so a higher Min-K% means "more likely a member".
"""

from __future__ import annotations

import numpy as np


def token_logprobs(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """log softmax(logits[i])[targets[i]] for each row, computed stably in float64."""
    lg = np.asarray(logits, dtype=np.float64)
    tg = np.asarray(targets, dtype=np.int64)
    if lg.ndim != 2 or tg.ndim != 1 or lg.shape[0] != tg.shape[0]:
        raise ValueError(f"logits {lg.shape} and targets {tg.shape} do not line up")
    m = lg.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(lg - m).sum(axis=1, keepdims=True)))[:, 0]
    out: np.ndarray = lg[np.arange(tg.size), tg] - lse
    return out


def mean_loss(logprobs: np.ndarray) -> float:
    """Average negative log-likelihood per token (nats)."""
    lp = np.asarray(logprobs, dtype=np.float64)
    if lp.size == 0:
        raise ValueError("no tokens to score")
    return float(-lp.mean())


def min_k_prob(logprobs: np.ndarray, k: float = 0.2) -> float:
    """Mean of the lowest ``ceil(k·n)`` token log-probabilities (at least one token)."""
    if not 0.0 < k <= 1.0:
        raise ValueError("k must be in (0, 1]")
    lp = np.sort(np.asarray(logprobs, dtype=np.float64))
    if lp.size == 0:
        raise ValueError("no tokens to score")
    n = max(1, int(np.ceil(k * lp.size)))
    return float(lp[:n].mean())
