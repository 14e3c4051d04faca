"""Vectorised next-token sampling over a (rows, vocab) logits matrix: pure functions, no model state.

The order follows llama.cpp's default sampler chain: repetition penalty, top-k, top-p, min-p, temperature,
then one categorical draw per row from that row's own uniform number. Each row is handled independently
of the others, so a sequence's tokens depend only on its logits and its own random stream.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from appliance.generate.backend import SamplingParams


def apply_repeat_penalty(logits: np.ndarray, histories: Sequence[Sequence[int]], penalty: float, last_n: int) -> None:
    """In place, llama.cpp style: a recent token's logit is divided by ``penalty`` if positive, else multiplied."""
    if penalty == 1.0 or last_n == 0:
        return
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    for r, hist in enumerate(histories):
        if not hist:
            continue
        recent = np.unique(np.asarray(hist[-last_n:], dtype=np.int64))
        rows.append(np.full(recent.shape, r, dtype=np.int64))
        cols.append(recent)
    if not rows:
        return
    ri, ci = np.concatenate(rows), np.concatenate(cols)
    vals = logits[ri, ci]
    logits[ri, ci] = np.where(vals > 0, vals / penalty, vals * penalty)


def candidate_set(logits: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``top_k`` best tokens of each row (all when ``top_k`` is 0), sorted by logit, descending."""
    n_vocab = logits.shape[1]
    k = n_vocab if top_k <= 0 or top_k >= n_vocab else top_k
    if k < n_vocab:
        ids = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    else:
        ids = np.broadcast_to(np.arange(n_vocab), logits.shape).copy()
    vals = np.take_along_axis(logits, ids, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(vals, order, axis=1)


def filter_mask(sorted_vals: np.ndarray, top_p: float, min_p: float) -> np.ndarray:
    """Which sorted candidates survive top-p (smallest prefix with mass >= top_p) and min-p (p >= min_p * p_max)."""
    z = sorted_vals - sorted_vals[:, :1]
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    keep = np.ones_like(p, dtype=bool)
    if top_p < 1.0:
        before = np.cumsum(p, axis=1) - p
        keep &= before < top_p
    if min_p > 0.0:
        keep &= z >= np.log(min_p)
    keep[:, 0] = True
    return keep


def sample_rows(
    logits: np.ndarray, histories: Sequence[Sequence[int]], uniforms: np.ndarray, params: SamplingParams
) -> np.ndarray:
    """One token id per row. ``logits`` is modified in place (penalties); ``uniforms`` are U[0,1) draws."""
    apply_repeat_penalty(logits, histories, params.repeat_penalty, params.repeat_last_n)
    if params.temperature <= 0.0:
        return np.argmax(logits, axis=1)
    ids, vals = candidate_set(logits, params.top_k)
    keep = filter_mask(vals, params.top_p, params.min_p)
    scaled = (vals - vals[:, :1]) / params.temperature
    w = np.where(keep, np.exp(scaled), 0.0)
    cdf = np.cumsum(w, axis=1)
    target = uniforms[:, None] * cdf[:, -1:]
    pick = np.minimum((cdf <= target).sum(axis=1), keep.sum(axis=1) - 1)
    return ids[np.arange(ids.shape[0]), pick]
