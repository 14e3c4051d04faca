"""DP keywords of each label: the words the seeds of a label use most, released by a noisy histogram (pure math).

The label verbaliser (``training.label_template``) tells the model *what* a label is about — "card linking" — but
not what the seeds of that label talk about: real card-linking messages say "link" and "app", real pending cash
withdrawals say "atm". Sessions 9–17 found that the DP soft prompt learns the seeds' register but not each
label's situation (bench/RESULTS.md). A word histogram carries that situation at a small share of the budget:

1. the candidates are a *public* vocabulary fixed before any record is read: the model tokenizer's whole-word
   tokens (letters only, at least 3 of them, lower-cased), less English stop words (scikit-learn's list) and each
   label's own words;
2. each training record has the set S of (label, word) pairs it uses (its label, its candidate words) and adds
   1/√|S| to each of them: its contribution has L2 norm 1, so adding or removing one record moves the count
   vector by at most 1 (L2 sensitivity 1; with ``--subject-field`` a subject's k records are covered by group
   privacy, as for DP-SGD). :func:`unit_counts` takes units of several records too, each unit then adding one
   vector of norm 1;
3. every (label, candidate) count gets N(0, σ²) noise — the Gaussian mechanism, whose cost ``train`` composes
   with DP-SGD into the prompt's ε (:func:`appliance.budget.accounting.selection_mechanism`: one Gaussian
   histogram, q = 1, one step);
4. a label's keywords are, among its words with a noisy count of at least ``threshold_sigmas``·σ, the
   ``per_label`` it uses most *more than the other labels do* (its count less the word's mean count in the
   others: "track" for card_arrival rather than "new", which every card intent uses) — post-processing of the
   noisy vector. At 5σ a count no unit touched is released with probability
   2.9e-7, about 0.04 over 6 labels × 24,000 candidates (SmolLM2's vocabulary).

The same idea as DP n-gram and keyword release for text (e.g. Kim et al. 2021, "Differentially private n-gram
extraction", NeurIPS), in its simplest form: a fixed public domain, so no partition selection is needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from appliance.policy.templates import label_words

_WORD = re.compile(r"[A-Za-z]+")
MIN_LETTERS = 3


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def candidate_words(tokens: Iterable[str]) -> list[str]:
    """The public candidate domain from a tokenizer's vocabulary: its whole-word tokens (a leading ``Ġ`` or ``▁``,
    then letters only, at least ``MIN_LETTERS``), lower-cased, less English stop words; sorted."""
    stop = _stop_words()
    out: set[str] = set()
    for tok in tokens:
        if tok[:1] not in ("Ġ", "▁"):
            continue
        word = tok[1:]
        if len(word) >= MIN_LETTERS and word.isascii() and word.isalpha():
            out.add(word.lower())
    return sorted(out - stop)


def text_words(text: str) -> set[str]:
    """The lower-cased words of a text (letters only), as the histogram reads them."""
    return {w.lower() for w in _WORD.findall(text)}


@dataclass(frozen=True)
class Histogram:
    """Per label, each candidate's summed weight (rows follow ``labels``, columns ``words``)."""

    labels: list[str]
    words: list[str]
    counts: np.ndarray  # (len(labels), len(words))


def unit_counts(units: Sequence[Sequence[tuple[str, str]]], labels: Sequence[str], words: Sequence[str]) -> Histogram:
    """The histogram of ``units``, each a list of its records' (text, label): 1/√|S| to each (label, word) pair
    in the unit's set S (pairs with a label outside ``labels``, or a word outside ``words`` or in the label's own
    words, are not in S)."""
    col = {w: j for j, w in enumerate(words)}
    row = {lab: i for i, lab in enumerate(labels)}
    own = {lab: set(label_words(lab)) for lab in labels}
    counts = np.zeros((len(labels), len(words)))
    for records in units:
        pairs = {
            (row[lab], col[w])
            for text, lab in records
            if lab in row
            for w in text_words(text)
            if w in col and w not in own[lab]
        }
        if pairs:
            r, c = zip(*pairs, strict=True)
            counts[list(r), list(c)] += 1.0 / np.sqrt(len(pairs))
    return Histogram(list(labels), list(words), counts)


def noisy(hist: Histogram, sigma: float, rng: np.random.Generator) -> Histogram:
    """The Gaussian mechanism on the counts (L2 sensitivity 1): the same histogram with N(0, σ²) added."""
    return Histogram(hist.labels, hist.words, hist.counts + rng.normal(0.0, sigma, size=hist.counts.shape))


def top_words(hist: Histogram, *, per_label: int, floor: float) -> dict[str, list[tuple[str, float]]]:
    """Each label's ``per_label`` most distinctive words among those whose count is at least ``floor``, as
    (word, count): ranked by the label's count less the word's mean count in the other labels, so that a word
    every label uses ("help", "new") gives way to one that says what this label is about ("track"); only words
    the label uses more than the others do. On a noisy histogram all of it is post-processing."""
    counts = hist.counts
    others = (counts.sum(axis=0, keepdims=True) - counts) / max(len(hist.labels) - 1, 1)
    lift = counts - others
    out: dict[str, list[tuple[str, float]]] = {}
    for i, lab in enumerate(hist.labels):
        ok = np.flatnonzero((counts[i] >= floor) & (lift[i] > 0))
        order = ok[np.argsort(-lift[i, ok], kind="stable")][:per_label]
        out[lab] = [(hist.words[j], float(counts[i, j])) for j in order]
    return out


def keywords_only(released: Mapping[str, Sequence[tuple[str, float]]]) -> dict[str, list[str]]:
    """The released words of each label, without their noisy counts."""
    return {lab: [w for w, _ in pairs] for lab, pairs in released.items()}
