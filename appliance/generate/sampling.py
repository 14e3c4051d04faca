"""Next-token sampling over a (rows, vocab) logits matrix: pure functions, no model state.

Order: repetition penalty, min-p, top-k, top-p, temperature, then one categorical draw per row from that
row's own uniform number. min-p (keep tokens with p >= min_p * p_max, i.e. logit >= max + log(min_p)) does
not depend on normalisation, so it runs first as one vectorised pass over the whole vocabulary and leaves a
few dozen candidates per row; top-k and top-p then work on those (top-p's mass is normalised over the
survivors). With ``min_p = 0`` the top-k candidates come from ``argpartition`` instead. Each row is handled
independently, so a sequence's tokens depend only on its own logits and random stream.

Guidance (``SamplingParams.guidance`` g > 0, :func:`guided_logits`) runs before all of that: the row sampled
from is ``log p + g·(log p − log q)``, where p is the next-token distribution after the trained soft prompt
and the record's label, over the tokens p itself finds plausible (p ≥ min_p · max p, 0.05 when min-p is off):
classifier-free guidance for language models (Sanchez et al. 2023, "Stay on topic with Classifier-Free
Guidance"), with the plausibility cut of contrastive decoding (Li et al. 2023, "Contrastive Decoding"). What q
is (``SamplingParams.contrast``):

- ``prior``: the distribution after the public prior the prompt was initialised from, with the same label —
  it amplifies what training moved the model toward and away from the prior's register;
- ``labels``: the distribution after the same trained prompt with another of the prompt's labels (each output
  contrasts with one: the other labels in turn, by the output's index) — log p − log q is then the
  log-likelihood ratio of the record's own label against that one, the token-by-token form of conditioning on
  a class (Sanchez et al. §2): each record leans toward what the prompt writes for its label and away from
  what it writes for that other label.

Every distribution comes from the DP artifact and public text (labels are public schema), so guided
sampling is post-processing and costs no ε.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from appliance.generate.jobs import SamplingParams

GUIDANCE_PLAUSIBILITY = 0.05  # the candidate cut under p when min-p is off


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64 (rows of -inf stay -inf)."""
    x = logits.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    out: np.ndarray = x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))
    return out


def log_mean_exp(rows: Sequence[np.ndarray]) -> np.ndarray:
    """log of the mean of the distributions whose log-probabilities are ``rows`` (elementwise)."""
    stack = np.stack(rows)
    m = stack.max(axis=0)
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):  # a token no distribution allows stays -inf
        out: np.ndarray = safe + np.log(np.exp(stack - safe).mean(axis=0))
    return out


def guided_logits(cond: np.ndarray, guides: Sequence[np.ndarray], guidance: float, min_p: float) -> np.ndarray:
    """``log p + g·(log p − log q)`` per row, -inf where p < cut·max p (cut: ``min_p``, else 0.05); float32.

    ``cond`` holds the rows after the soft prompt (p), ``guides`` the rows after each guide prefix; q is the
    mean of the guides' distributions (one guide: its own).
    """
    if not guides:
        raise ValueError("guidance needs at least one guide row per output")
    lp = log_softmax(cond)
    lgs = [log_softmax(g) for g in guides]
    lq = lgs[0] if len(lgs) == 1 else log_mean_exp(lgs)
    out = lp + guidance * (lp - lq)
    cut = np.log(min_p if min_p > 0.0 else GUIDANCE_PLAUSIBILITY)
    out[lp < lp.max(axis=1, keepdims=True) + cut] = -np.inf
    rows: np.ndarray = out.astype(np.float32)
    return rows


def apply_repeat_penalty(logits: np.ndarray, histories: Sequence[Sequence[int]], penalty: float, last_n: int) -> None:
    """In place, llama.cpp style: a recent token's logit is divided by ``penalty`` if positive, else multiplied."""
    if penalty == 1.0 or last_n == 0:
        return
    rows = [np.full(min(len(h), last_n), r, dtype=np.int64) for r, h in enumerate(histories) if h]
    if not rows:
        return
    cols = [np.asarray(h[-last_n:], dtype=np.int64) for h in histories if h]
    ri, ci = np.concatenate(rows), np.concatenate(cols)
    vals = logits[ri, ci]  # repeated tokens read the original value each time: penalised once
    logits[ri, ci] = np.where(vals > 0, vals / penalty, vals * penalty)


def candidates(logits: np.ndarray, top_k: int, min_p: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per row, (token ids, logits) of the tokens that survive min-p (or the top-k when min-p is off)."""
    n_vocab = logits.shape[1]
    if min_p > 0.0:
        thr = logits.max(axis=1) + np.float32(np.log(min_p))
        flat = np.flatnonzero(logits >= thr[:, None])  # 1-D nonzero is ~20x faster than 2-D
        rows, cols = np.divmod(flat, n_vocab)
        bounds = np.searchsorted(rows, np.arange(logits.shape[0] + 1))
        vals = logits.reshape(-1)[flat]
        return [(cols[a:b], vals[a:b]) for a, b in pairwise(bounds.tolist())]
    if 0 < top_k < n_vocab:
        ids = np.argpartition(-logits, top_k - 1, axis=1)[:, :top_k]
        vals = np.take_along_axis(logits, ids, axis=1)
        return list(zip(ids, vals, strict=True))
    ids = np.arange(n_vocab)
    return [(ids, row) for row in logits]


def keep_sorted(ids: np.ndarray, vals: np.ndarray, params: SamplingParams) -> tuple[np.ndarray, np.ndarray]:
    """Sort one row's candidates by logit (ties: lower id first), then apply top-k, min-p and top-p."""
    order = np.lexsort((ids, -vals))
    ids, vals = ids[order], vals[order].astype(np.float64)
    if params.top_k > 0:
        ids, vals = ids[: params.top_k], vals[: params.top_k]
    z = vals - vals[0]
    n = len(z)
    if params.min_p > 0.0:
        n = min(n, int(np.count_nonzero(z >= np.log(params.min_p))))
    if params.top_p < 1.0:
        p = np.exp(z[:n])
        p /= p.sum()
        n = min(n, int(np.count_nonzero(np.cumsum(p) - p < params.top_p)))
    n = max(n, 1)
    return ids[:n], z[:n]


def sample_rows(
    logits: np.ndarray, histories: Sequence[Sequence[int]], uniforms: np.ndarray, params: SamplingParams
) -> np.ndarray:
    """One token id per row. ``logits`` is modified in place (penalties); ``uniforms`` are U[0,1) draws."""
    apply_repeat_penalty(logits, histories, params.repeat_penalty, params.repeat_last_n)
    if params.temperature <= 0.0:
        greedy: np.ndarray = np.argmax(logits, axis=1)
        return greedy
    out = np.empty(logits.shape[0], dtype=np.int64)
    for r, (ids, vals) in enumerate(candidates(logits, params.top_k, params.min_p)):
        kept, z = keep_sorted(ids, vals, params)
        cdf = np.cumsum(np.exp(z / params.temperature))
        pick = int(np.searchsorted(cdf, uniforms[r] * cdf[-1], side="right"))
        out[r] = kept[min(pick, len(kept) - 1)]
    return out
