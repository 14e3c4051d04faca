"""Deterministic train/holdout split by record hash (pure functions).

Each record's key is SHA-256 of its *redacted*, normalised text (NFKC, case-folded, whitespace
collapsed) — the text that is stored, trained on and probed, so two records that are the same after
redaction ("Call <PERSON>" from two different names) are one group. Distinct keys are ranked by hash
value — a uniform, content-defined order — and whole key groups are moved to the holdout from the lowest
hash up until ``round(fraction * n)`` records are covered. Consequences: the same file always splits the
same way; records identical after redaction always share a split (so the holdout never holds a copy of
a training record and the membership probes are not biased by one); with two or more distinct texts
both splits are non-empty. With declared subjects, :func:`group_keys` joins the groups of records that share
a subject, so all of one person's records also share a split (the membership probes then compare members
with people the prompt never saw).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

from appliance.curate.text import normalize

_DOMAIN = b"appliance/holdout/v2\x00"


def record_key(redacted: str) -> str:
    """The split key of one record: its redacted text, normalised (never the raw text)."""
    return hashlib.sha256(_DOMAIN + normalize(redacted).encode("utf-8")).hexdigest()


def holdout_target(n: int, fraction: float) -> int:
    """How many of ``n`` records go to the holdout: ``round(fraction * n)``, kept within [1, n - 1]."""
    if n < 2:
        return 0
    return min(max(round(fraction * n), 1), n - 1)


def assign_splits(keys: Sequence[str], fraction: float) -> list[str]:
    """``"train"`` or ``"holdout"`` for each key, in input order."""
    n = len(keys)
    target = holdout_target(n, fraction)
    counts = Counter(keys)
    chosen: set[str] = set()
    covered = 0
    for key in sorted(counts):
        if covered >= target:
            break
        if covered + counts[key] >= n:
            break
        chosen.add(key)
        covered += counts[key]
    return ["holdout" if k in chosen else "train" for k in keys]


def group_keys(keys: Sequence[str], subjects: Sequence[str | None]) -> list[str]:
    """One split key per record: its text key, or, when records are linked through shared text keys or shared
    subjects, the smallest text key of its connected group (union-find)."""
    parent = {k: k for k in keys}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    first: dict[str, str] = {}
    for key, subject in zip(keys, subjects, strict=True):
        if subject is None:
            continue
        other = first.setdefault(subject, key)
        a, b = find(key), find(other)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return [find(k) for k in keys]
