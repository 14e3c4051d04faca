"""Split texts longer than the NLP model's ``max_length`` into overlapping chunks (pure functions).

Chunks overlap by ``overlap`` characters and are cut at whitespace where possible, so an entity that
straddles one cut appears whole in the neighbouring chunk; findings are shifted back to offsets in
the full text and overlapping duplicates are merged by :func:`appliance.pii.spans.resolve`.
Any entity shorter than the overlap is seen whole by at least one chunk.
"""

from __future__ import annotations


def chunk_bounds(text: str, max_chars: int, overlap: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` covering ``text``; each chunk at most ``max_chars`` long."""
    n = len(text)
    if n <= max_chars:
        return [(0, n)]
    if not 0 <= overlap < max_chars // 2:
        raise ValueError("overlap must be non-negative and less than half of max_chars")
    bounds: list[tuple[int, int]] = []
    start = 0
    slack = overlap // 2
    while True:
        end = min(start + max_chars, n)
        if end < n and slack:
            cut = _after_space(text, end - slack, end)
            if cut is not None:
                end = cut
        bounds.append((start, end))
        if end >= n:
            return bounds
        nxt = end - overlap
        if slack:
            first = _after_space(text, nxt - slack, nxt)
            if first is not None:
                nxt = first
        start = max(nxt, start + 1)


def _after_space(text: str, lo: int, hi: int) -> int | None:
    """Index just after the last whitespace in ``text[lo:hi]``, or None."""
    for i in range(hi - 1, max(lo, 0) - 1, -1):
        if text[i].isspace():
            return i + 1
    return None
