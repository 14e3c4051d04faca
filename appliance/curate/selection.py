"""DP selection of outputs: keep the outputs nearest the seeds' distribution, inside the prompt's (ε, δ).

Private Evolution (Lin et al. 2024, "Differentially private synthetic data via foundation model APIs 1: images";
Xie et al. 2024, "… 2: text", Aug-PE) selects synthetic samples with a DP nearest-neighbour histogram: every
private record votes once for the synthetic sample nearest it, Gaussian noise is added to the votes, and samples
are drawn in proportion to the noisy counts. Here one round of it, over clusters rather than single outputs
(a sample rarely gets more than a vote or two from a few hundred seeds; a cluster gets enough to rise above
the noise):

1. the outputs of each label are clustered (k-means on their sentence embeddings) — outputs only, which are
   post-processing of the DP prompt;
2. each training seed adds 1 to the count of the nearest centroid of its own label (labels are public schema),
   so adding or removing one record changes one count by one: L2 sensitivity 1;
3. every count gets N(0, σ²) noise — the Gaussian mechanism whose cost ``train`` reserved and composed with
   DP-SGD (:func:`appliance.budget.accounting.selection_mechanism`);
4. outputs are drawn without replacement with probability ∝ noisy count / cluster size, counts under a floor
   (``threshold_sigmas`` × σ) weighing nothing, so the kept set follows the noisy distribution over clusters
   and labels: post-processing of DP values.

A cluster no seed is near (outputs off the domain, a misread label) keeps a count near 0 and is rarely drawn.
The noisy counts are DP outputs and are kept in the audit log; the seed votes themselves never are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Clusters:
    """Each output's cluster and every cluster's label and unit-norm centroid."""

    assign: np.ndarray  # (n_outputs,) cluster index of each output
    labels: list[str | None]  # cluster index -> its label
    centroids: np.ndarray  # (n_clusters, dim), unit norm

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.assign, minlength=len(self.labels))


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def cluster_outputs(emb: np.ndarray, labels: Sequence[str | None], *, per_label: int, seed: int = 0) -> Clusters:
    """k-means (cosine: unit vectors) of the outputs of each label into at most ``per_label`` clusters."""
    from sklearn.cluster import KMeans

    emb = _unit(np.asarray(emb, dtype=np.float64))
    assign = np.full(len(labels), -1, dtype=np.int64)
    names: list[str | None] = []
    cents: list[np.ndarray] = []
    for lab in sorted({lab for lab in labels}, key=lambda x: "" if x is None else x):
        idx = np.array([i for i, x in enumerate(labels) if x == lab])
        k = min(per_label, len(np.unique(emb[idx], axis=0)))
        km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(emb[idx])
        assign[idx] = len(names) + km.labels_
        names += [lab] * k
        cents.append(km.cluster_centers_)
    centroids = _unit(np.vstack(cents)) if cents else np.zeros((0, emb.shape[1] if emb.ndim == 2 else 0))
    return Clusters(assign, names, centroids)


def vote_counts(clusters: Clusters, seed_emb: np.ndarray, seed_labels: Sequence[str | None]) -> np.ndarray:
    """Each seed adds 1 to its own label's nearest centroid (a seed whose label has no outputs adds nothing)."""
    counts = np.zeros(len(clusters.labels))
    if not len(seed_labels):
        return counts
    sims = _unit(np.asarray(seed_emb, dtype=np.float64)) @ clusters.centroids.T
    own = np.array(clusters.labels, dtype=object)
    for i, lab in enumerate(seed_labels):
        mine = np.flatnonzero(own == lab)
        if mine.size:
            counts[mine[np.argmax(sims[i, mine])]] += 1
    return counts


def noisy(counts: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """The Gaussian mechanism on the counts (L2 sensitivity 1)."""
    return counts + rng.normal(0.0, sigma, size=counts.shape)


def draw(
    clusters: Clusters, noisy_counts: np.ndarray, keep: int, rng: np.random.Generator, *, floor: float = 0.0
) -> np.ndarray:
    """``keep`` outputs (sorted indices) drawn without replacement, each with probability ∝ its cluster's noisy
    count / cluster size, a count under ``floor`` weighing nothing (Aug-PE's threshold: a cluster of one or two
    outputs that noise alone pushed up would otherwise outweigh a large cluster the seeds chose); fewer when
    fewer outputs have a positive weight."""
    weight = np.where(noisy_counts >= max(floor, 0.0), np.maximum(noisy_counts, 0.0), 0.0)
    weight = weight / np.maximum(clusters.sizes, 1)
    w = weight[clusters.assign]
    n = min(keep, int(np.count_nonzero(w > 0)))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.sort(rng.choice(len(w), size=n, replace=False, p=w / w.sum()))
