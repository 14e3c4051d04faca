"""Quality and diversity metrics: pure functions over texts and embedding arrays.

- :func:`mauve_score` — MAUVE (Pillutla et al. 2021) between two feature sets, via ``mauve-text``
  with the features given explicitly (its own featuriser would download gpt2-large).
- :func:`distinct_n` — distinct-n (Li et al. 2016): unique n-grams over all n-grams of a corpus.
- :func:`self_bleu` — Self-BLEU (Zhu et al. 2018, Texygen): mean BLEU of each text against the others
  (sacrebleu, 0..1); high means the texts repeat each other.
- :func:`mean_pairwise_distance` — mean cosine distance between all pairs of embeddings.
- :func:`length_stats` — word-count statistics.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import numpy as np

from appliance.curate.text import ngrams, words

T = TypeVar("T")
log = logging.getLogger(__name__)


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique word n-grams over total word n-grams across ``texts`` (0.0 when there are none)."""
    total = 0
    seen: set[tuple[str, ...]] = set()
    for t in texts:
        grams = list(ngrams(words(t), n))
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def self_bleu(texts: Sequence[str], *, max_samples: int = 200, seed: int = 0) -> float:
    """Mean sentence BLEU (0..1) of each text against all the others, on up to ``max_samples`` texts."""
    from sacrebleu.metrics.bleu import BLEU

    chosen = sample(list(texts), max_samples, seed)
    if len(chosen) < 2:
        raise ValueError("self-BLEU needs at least two texts")
    bleu = BLEU(effective_order=True)
    scores = [bleu.sentence_score(h, chosen[:i] + chosen[i + 1 :]).score for i, h in enumerate(chosen)]
    return min(1.0, max(0.0, float(np.mean(scores)) / 100.0))


def mean_pairwise_distance(emb: np.ndarray) -> float:
    """Mean cosine distance (1 − cos) over all unordered pairs of rows."""
    x = np.asarray(emb, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError("mean pairwise distance needs a 2-D array with at least two rows")
    x = x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
    sims = x @ x.T
    n = len(x)
    off_diag = (sims.sum() - np.trace(sims)) / (n * (n - 1))
    return float(1.0 - off_diag)


def length_stats(texts: Sequence[str]) -> dict[str, float]:
    """Count, mean, standard deviation, median, 5th and 95th percentile of word counts."""
    lengths = np.array([len(words(t)) for t in texts], dtype=np.float64)
    if lengths.size == 0:
        return {"n": 0, "mean": 0.0, "std": 0.0, "median": 0.0, "p5": 0.0, "p95": 0.0}
    return {
        "n": int(lengths.size),
        "mean": float(lengths.mean()),
        "std": float(lengths.std()),
        "median": float(np.median(lengths)),
        "p5": float(np.percentile(lengths, 5)),
        "p95": float(np.percentile(lengths, 95)),
    }


def length_comparison(synthetic: Sequence[str], reference: Sequence[str]) -> dict[str, object]:
    """Length statistics of both sides and the ratio of their mean word counts."""
    syn, ref = length_stats(synthetic), length_stats(reference)
    ratio = syn["mean"] / ref["mean"] if ref["mean"] else None
    return {"synthetic": syn, "reference": ref, "mean_ratio": ratio}


def mauve_buckets(n_p: int, n_q: int) -> int:
    """k-means clusters used by MAUVE: one per ten samples of the smaller side (mauve-text's 'auto'), ≥ 2."""
    return max(2, round(min(n_p, n_q) / 10))


def mauve_score(p_features: np.ndarray, q_features: np.ndarray, *, seed: int = 0) -> float:
    """MAUVE between two sets of text features (rows); 1.0 means indistinguishable distributions."""
    import mauve

    p = np.asarray(p_features, dtype=np.float32)
    q = np.asarray(q_features, dtype=np.float32)
    if p.ndim != 2 or q.ndim != 2 or p.shape[1] != q.shape[1]:
        raise ValueError("MAUVE needs two 2-D feature arrays of the same width")
    if len(p) < 2 or len(q) < 2:
        raise ValueError("MAUVE needs at least two samples per side")
    with _native_stderr_to_log("MAUVE (faiss k-means)"):
        out = mauve.compute_mauve(
            p_features=p,
            q_features=q,
            num_buckets=mauve_buckets(len(p), len(q)),
            seed=seed,
            device_id=-1,
            verbose=False,
        )
    return float(out.mauve)


@contextmanager
def _native_stderr_to_log(what: str) -> Iterator[None]:
    """Send what native code writes to file descriptor 2 to the debug log instead of the terminal.

    faiss, which MAUVE's k-means runs on, prints "WARNING clustering N points to K centroids: please provide at
    least …" from C++ whenever a cluster averages fewer than 39 points, which it always does at the bucket count
    MAUVE's authors advise (one per ten samples); ``sys.stderr`` cannot catch it. The text holds counts only.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            said = sink.read().decode("utf-8", "replace").strip()
            if said:
                log.debug("%s: %s", what, said)


def sample(items: list[T], k: int, seed: int) -> list[T]:
    """Up to ``k`` items chosen without replacement by a seeded generator (order kept)."""
    if len(items) <= k:
        return list(items)
    idx = np.sort(np.random.default_rng(seed).choice(len(items), size=k, replace=False))
    return [items[i] for i in idx]
