"""Exact and near-duplicate detection over a batch's outputs.

Exact duplicates share their normalised text. Near duplicates are found with MinHash LSH
(``datasketch``) over character 5-gram shingles of the normalised text; every LSH candidate is then
checked against the true Jaccard similarity of the shingle sets, so LSH only prunes the search and
never decides alone (its banding is tuned a little below the threshold so that few true pairs are
missed). The first occurrence of a group is kept; later members point back to it.

Semantic duplicates (``curation.semantic_dup_cosine``) are paraphrases: texts whose sentence embeddings (the
evaluation's MiniLM, L2-normalised) have a cosine above the threshold with an earlier kept text — "How soon did I
get my card here?" and "How soon did I get my card?" share few character 5-grams but say one thing. A set full
of such variants is what a real-vs-synthetic classifier finds easiest to tell apart (bench/RESULTS.md, session 33).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from datasketch import MinHash, MinHashLSH

from appliance.curate.text import char_shingles, normalize

EXACT = "exact_duplicate"
NEAR = "near_duplicate"
SEMANTIC = "semantic_duplicate"
SHINGLE_CHARS = 5
LSH_SLACK = 0.1  # LSH looks for candidates a little below the threshold: fewer misses, same precision


def jaccard(a: set[str], b: set[str]) -> float:
    """|a ∩ b| / |a ∪ b| (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def exact_duplicates(texts: Sequence[str]) -> dict[int, int]:
    """Map index → index of the first text with the same normalised form, for every later repeat."""
    first: dict[str, int] = {}
    dups: dict[int, int] = {}
    for i, t in enumerate(texts):
        key = normalize(t)
        if key in first:
            dups[i] = first[key]
        else:
            first[key] = i
    return dups


def near_duplicates(texts: Sequence[str], *, threshold: float, num_perm: int, seed: int = 1) -> dict[int, int]:
    """Map index → index of an earlier kept text whose shingle Jaccard is ≥ ``threshold``.

    Texts are visited in order; a text that is not a near duplicate of an earlier kept one is kept
    and inserted into the LSH index, so each group keeps exactly its first member.
    """
    lsh = MinHashLSH(threshold=max(0.05, threshold - LSH_SLACK), num_perm=num_perm)
    shingles: dict[int, set[str]] = {}
    dups: dict[int, int] = {}
    for i, t in enumerate(texts):
        sh = char_shingles(t, SHINGLE_CHARS)
        mh = MinHash(num_perm=num_perm, seed=seed)
        mh.update_batch([s.encode("utf-8") for s in sorted(sh)])
        best: tuple[float, int] | None = None
        for key in lsh.query(mh):
            j = jaccard(sh, shingles[key])
            if j >= threshold and (best is None or j > best[0] or (j == best[0] and key < best[1])):
                best = (j, key)
        if best is not None:
            dups[i] = best[1]
            continue
        shingles[i] = sh
        lsh.insert(i, mh)
    return dups


def semantic_duplicates(vectors: np.ndarray, *, threshold: float) -> dict[int, int]:
    """Map index → index of the earlier kept row whose cosine with it is above ``threshold`` (rows L2-normalised).

    Rows are visited in order; a row not above the threshold with any earlier kept row is kept, so each group keeps
    its first member (the most similar kept row is named; ties go to the earliest)."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        raise ValueError("vectors must be a (n, dim) array")
    kept: list[int] = []
    dups: dict[int, int] = {}
    for i in range(v.shape[0]):
        if kept:
            sims = v[kept] @ v[i]
            best = int(np.argmax(sims))
            if float(sims[best]) > threshold:
                dups[i] = kept[best]
                continue
        kept.append(i)
    return dups
