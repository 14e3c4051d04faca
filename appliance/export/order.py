"""The order records leave in: each label spread evenly through the file.

Generation writes a batch label by label, so the kept outputs in idx order are grouped: a person reading the first
records of an export (the demo prints 8), or a consumer reading only a head of the file, would see one label. The
export instead places the record at rank ``i`` of a label with ``n`` kept records at ``(i + 0.5) / n`` of the way
through the file (ties in label order), so every prefix holds each label in about its share. Pure reordering of
the kept set: nothing is added, dropped or chosen, and unlabelled data keep their idx order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any


def spread_labels(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` (dicts that may carry a ``label``) with each label's records spread evenly, their order kept."""
    sizes = Counter(r.get("label") for r in records)
    seen: Counter[Any] = Counter()
    keyed = []
    for pos, rec in enumerate(records):
        label = rec.get("label")
        rank = seen[label]
        seen[label] += 1
        keyed.append(((rank + 0.5) / sizes[label], "" if label is None else str(label), pos, rec))
    return [rec for *_, rec in sorted(keyed, key=lambda k: k[:3])]
