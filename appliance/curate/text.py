"""Text normalisation and tokenisation shared by the curation filters and the provenance hashes.

Pure functions: no state, no I/O. "Tokens" here are lower-cased word tokens (runs of letters and
digits, so ``don't`` is ``don``, ``t``): a model-independent unit that makes the leak filter and the
repetition filter agree across models and tokenizers.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator, Sequence

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed and stripped: the key for exact-duplicate checks."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def words(text: str) -> list[str]:
    """Lower-cased word tokens of ``text``."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def ngrams(tokens: Sequence[str], n: int) -> Iterator[tuple[str, ...]]:
    """Contiguous n-grams of a token sequence (none when it is shorter than ``n``)."""
    for i in range(len(tokens) - n + 1):
        yield tuple(tokens[i : i + n])


def char_shingles(text: str, k: int = 5) -> set[str]:
    """Character k-grams of the normalised text (the whole text if shorter): near-duplicate features."""
    norm = normalize(text)
    if len(norm) <= k:
        return {norm} if norm else set()
    return {norm[i : i + k] for i in range(len(norm) - k + 1)}


def text_hash(text: str) -> str:
    """``sha256:<hex>`` of the normalised text: what provenance remembers about an exported record."""
    return "sha256:" + hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()
