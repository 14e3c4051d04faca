"""Per-record curation filters: quality (length, repetition, non-text, garbled punctuation) and verbatim leakage.

Pure functions over text and policy numbers. Each filter answers with a reason string or ``None``;
the reasons are the values stored in ``outputs.reason``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence

from appliance.curate.text import ngrams, words
from appliance.policy.schema import CurationPolicy
from appliance.punctuation import closes_unopened_paren

TOO_SHORT = "too_short"
TOO_LONG = "too_long"
NON_TEXT = "non_text"
REPETITIVE = "repetitive"
GARBLED = "garbled_punctuation"
LEAK = "leak"

# sampling debris, not prose: a run of 4+ of one mark that writers do not repeat (",,,,,,", "||||", "\"\"\"\""); the
# marks people do repeat ("...", "!!!!", "????", "----", "****") are left alone
_PUNCT_RUN = re.compile(r"([,;:|\"'])\1{3,}")

_ALLOWED_CONTROLS = {"\n", "\t", "\r"}


def repeated_ngram_ratio(tokens: list[str], n: int) -> float:
    """Share of the token n-grams that repeat an earlier one: 0 for fresh text, towards 1 for loops."""
    grams = list(ngrams(tokens, n))
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def alpha_ratio(text: str) -> float:
    """Letters over non-whitespace characters (1.0 for an all-letters text, 0.0 for symbols/digits only)."""
    visible = [c for c in text if not c.isspace()]
    if not visible:
        return 0.0
    return sum(c.isalpha() for c in visible) / len(visible)


def has_binary(text: str) -> bool:
    """True when the text carries control characters or U+FFFD (decoding debris, not language)."""
    return any(
        c == "\ufffd" or (unicodedata.category(c) in ("Cc", "Cs", "Co") and c not in _ALLOWED_CONTROLS) for c in text
    )


def garbled_punctuation(text: str) -> bool:
    """True for a run of 4+ commas, semicolons, colons, bars or quotes, an odd number of straight double quotes
    (a quote the text never closed, or one it never opened inside the text), or a ")" the text never opened
    (:func:`~appliance.punctuation.closes_unopened_paren`); at the text's end generation already cut either
    closer (:func:`~appliance.punctuation.without_unopened_closer`)."""
    return bool(_PUNCT_RUN.search(text)) or text.count('"') % 2 == 1 or closes_unopened_paren(text)


def quality_reason(text: str, policy: CurationPolicy) -> str | None:
    """The first quality filter ``text`` fails (length, non-text, repetition, garbled punctuation), or None."""
    stripped = text.strip()
    if len(stripped) < policy.min_chars:
        return TOO_SHORT
    if len(stripped) > policy.max_chars:
        return TOO_LONG
    if has_binary(stripped) or alpha_ratio(stripped) < policy.min_alpha_ratio:
        return NON_TEXT
    if repeated_ngram_ratio(words(stripped), policy.repeated_ngram_tokens) > policy.max_repeated_ngram_ratio:
        return REPETITIVE
    if policy.drop_garbled_punctuation and garbled_punctuation(stripped):
        return GARBLED
    return None


class LeakIndex:
    """Token n-grams of a dataset's training seeds; counts the n-grams an output shares with them.

    A hit is one n-gram (``n`` consecutive word tokens) of the output that occurs verbatim in some
    training seed; any hit means the output copies a span of at least ``n`` tokens from a seed.
    """

    def __init__(self, seeds: Iterable[str], n: int) -> None:
        if n < 1:
            raise ValueError("n-gram length must be positive")
        self.n = n
        self._grams: set[tuple[str, ...]] = set()
        self.n_seeds = 0
        for seed in seeds:
            self.n_seeds += 1
            self._grams.update(ngrams(words(seed), n))

    def __len__(self) -> int:
        return len(self._grams)

    def hits(self, text: str) -> int:
        """Number of the output's n-gram positions that occur in a training seed."""
        return sum(1 for g in ngrams(words(text), self.n) if g in self._grams)


def chance_leak_rate(index: LeakIndex, holdout: Sequence[str]) -> float | None:
    """Share of held-out real records (never trained on) that share an n-gram with the training seeds: how
    often a record that did *not* see the seeds overlaps them by chance (formulaic phrases of short texts:
    "I'm not sure if my card has been lost or stolen"). None without a holdout."""
    if not holdout:
        return None
    return sum(1 for t in holdout if index.hits(t) > 0) / len(holdout)


def leak_allowance(rate: float | None, n_kept: int) -> int:
    """Kept outputs with a seed n-gram that chance alone explains: ⌊rate × n_kept⌋ (0 without a baseline)."""
    return 0 if rate is None else math.floor(rate * n_kept + 1e-9)
