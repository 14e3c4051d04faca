"""Measures of "does it look like the seeds" that a junk batch cannot pass: pure functions over embeddings.

- :func:`detection_auc` — a classifier two-sample test (C2ST; Lopez-Paz & Oquab 2017, "Revisiting
  classifier two-sample tests"): a logistic regression is cross-validated at telling real records from
  synthetic ones on their sentence embeddings; the AUC of its out-of-fold scores is 0.5 when the two are
  indistinguishable and 1.0 when every record is told apart. It is SDMetrics' and synthcity's "detection"
  metric. The 95% interval is a bootstrap over the out-of-fold scores (the classifier is not refitted).
- :func:`lexical_detection_auc` — the same test on the texts' word and character n-grams (TF-IDF, fitted
  inside each fold) instead of their sentence embeddings. A sentence embedding is made to ignore wording,
  punctuation and case; a generator's own habits live there (one sentence where people write two, "pin" where
  they write "PIN"). It is reported beside the embedding AUC and not gated: on public BANKING77 pools the two
  disagree by 0.10-0.12, and by up to 0.3 on the demo's exports (bench/RESULTS.md, session 34).
- :func:`label_fidelity` — a classifier trained on the real training split predicts each synthetic record's
  label; the share that matches the label the record was generated for. Text about something else, or text
  that could belong to any label, fails it.
- :func:`mask_label_words` — the label's own words removed from a text, so that TSTR cannot be passed by a
  generator that echoes the label ("CARD_ARRIVAL card arrival is a recipe...") instead of writing in-topic
  text.
- :func:`detection_at_n` — either test again at one fixed ``n`` per side, the mean of several seeded subsamples.
  A two-sample classifier learns more from more records, so the AUC rises with ``n`` by itself: on public
  BANKING77 pools the same selections scored 0.72-0.76 at 88 per side and 0.77-0.79 at 124 (bench/RESULTS.md,
  session 34). Batches of different sizes compare only at one ``n``; the export-size figure alone does not.
- :data:`MIN_N` and :func:`reliability` — the sample size below which each metric is flagged unreliable.
  MAUVE's authors estimate it from a few thousand samples per side and show that its estimate is biased and
  noisy with few samples (Pillutla et al., NeurIPS 2021, §4 and Fig. 4; JMLR 2023 §5: "at least a few
  thousand samples"); at a few dozen it is noise, so it is reported but never trusted below 500.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from appliance.policy.templates import label_words

# Minimum sample sizes (per side) below which a metric is reported with "reliable": false.
MIN_N = {
    "detection_auc": 50,  # out-of-fold AUC on fewer than 50 per side has a 95% interval wider than ±0.15
    "label_fidelity": 30,
    "tstr": 30,
    "mauve": 500,  # Pillutla et al. 2021/2023: thousands of samples; below 500 its value is not interpretable
    "distinct_n": 30,
}


def reliability(metric: str, n: int) -> dict[str, object]:
    """``{"n": n, "min_n": m, "reliable": n >= m}`` for one metric's sample size."""
    m = MIN_N[metric]
    return {"n": int(n), "min_n": m, "reliable": bool(n >= m)}


@dataclass(frozen=True)
class Detection:
    auc: float
    ci_low: float
    ci_high: float
    n_real: int
    n_synthetic: int
    folds: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def detection_auc(
    real: np.ndarray, synthetic: np.ndarray, *, folds: int = 5, bootstrap: int = 1000, seed: int = 0
) -> Detection:
    """Cross-validated AUC of a classifier telling ``real`` rows from ``synthetic`` rows, with a 95% interval.

    Both sides are cut to the smaller one's size (seeded), so the AUC is not an effect of class balance.
    """
    return _c2st(*_detector(real, synthetic, lexical=False, seed=seed), folds=folds, bootstrap=bootstrap, seed=seed)


def lexical_detection_auc(
    real: Sequence[str], synthetic: Sequence[str], *, folds: int = 5, bootstrap: int = 1000, seed: int = 0
) -> Detection:
    """:func:`detection_auc` on word 1-2-grams and character 3-5-grams (TF-IDF, case kept) instead of embeddings.

    The vectorisers are fitted inside each fold, so no held-out text shapes the vocabulary it is scored on.
    """
    return _c2st(*_detector(real, synthetic, lexical=True, seed=seed), folds=folds, bootstrap=bootstrap, seed=seed)


def _detector(
    real: np.ndarray | Sequence[str], synthetic: np.ndarray | Sequence[str], *, lexical: bool, seed: int
) -> tuple[np.ndarray, np.ndarray, Any]:
    """Both sides as the detector reads them (embedding rows as float64, or texts as a 1-D object array) and its
    unfitted classifier: logistic regression on the embeddings, or on word and character n-grams of the texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    regression = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
    if not lexical:
        return np.asarray(real, dtype=np.float64), np.asarray(synthetic, dtype=np.float64), regression
    words_and_marks = r"(?u)\b\w+\b|[^\w\s]"  # single-letter words ("I") and punctuation count
    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=False, token_pattern=words_and_marks),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, lowercase=False),
    )
    texts = np.asarray(list(real), dtype=object), np.asarray(list(synthetic), dtype=object)
    return *texts, make_pipeline(features, regression)


@dataclass(frozen=True)
class FixedNDetection:
    auc: float  # the mean over the draws
    sd: float  # their standard deviation (the subsampling's spread, not a confidence interval)
    n: int  # records per side in every draw
    draws: int
    aucs: tuple[float, ...]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "aucs": list(self.aucs)}


def detection_at_n(
    real: np.ndarray | Sequence[str],
    synthetic: np.ndarray | Sequence[str],
    *,
    n: int,
    draws: int = 8,
    lexical: bool = False,
    folds: int = 5,
    seed: int = 0,
) -> FixedNDetection:
    """:func:`detection_auc` (or, ``lexical``, :func:`lexical_detection_auc`) at exactly ``n`` records per side.

    Each of ``draws`` seeded draws takes ``n`` rows of each side without replacement and cross-validates afresh;
    the figure is their mean. Needs at least ``n`` rows on each side (``n`` >= 4).
    """
    if n < 4:
        raise ValueError(f"detection at a fixed n needs n >= 4 (got {n})")
    if draws < 1:
        raise ValueError(f"detection at a fixed n needs at least one draw (got {draws})")
    if min(len(real), len(synthetic)) < n:
        raise ValueError(f"detection at n = {n} needs {n} records per side (got {len(real)} real, {len(synthetic)})")
    r_all, s_all, clf = _detector(real, synthetic, lexical=lexical, seed=seed)
    aucs = []
    for d in range(draws):
        rng = np.random.default_rng([seed, d])
        r = r_all[np.sort(rng.choice(len(r_all), n, replace=False))]
        s = s_all[np.sort(rng.choice(len(s_all), n, replace=False))]
        aucs.append(_c2st(r, s, clf, folds=folds, bootstrap=0, seed=seed + d).auc)
    return FixedNDetection(float(np.mean(aucs)), float(np.std(aucs)), n, draws, tuple(aucs))


def _c2st(
    real: np.ndarray,
    synthetic: np.ndarray,
    clf: Any,  # an sklearn classifier with predict_proba
    *,
    folds: int,
    bootstrap: int,
    seed: int,
) -> Detection:
    """Out-of-fold AUC of ``clf`` on ``n`` rows per side (both cut to the smaller, seeded) and its bootstrap 95% CI.

    The rows are embedding rows (2-D) or texts (a 1-D object array); both sides are joined along the first axis.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    n = min(len(real), len(synthetic))
    if n < 4:
        raise ValueError(f"detection AUC needs at least 4 records per side (got {len(real)} real, {len(synthetic)})")
    rng = np.random.default_rng(seed)
    r = real[np.sort(rng.choice(len(real), n, replace=False))]
    s = synthetic[np.sort(rng.choice(len(synthetic), n, replace=False))]
    x = np.concatenate([r, s])
    y = np.r_[np.zeros(n), np.ones(n)]
    k = max(2, min(folds, n))
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    scores = cross_val_predict(clf, x, y, cv=cv, method="predict_proba")[:, 1]
    auc = _auc(y, scores)
    boots = []
    for _ in range(bootstrap):
        i = rng.integers(0, n, n)  # resample within each class, so every resample has both
        j = n + rng.integers(0, n, n)
        idx = np.r_[i, j]
        boots.append(_auc(y[idx], scores[idx]))
    lo, hi = np.percentile(boots, [2.5, 97.5]) if boots else (auc, auc)
    return Detection(auc, float(lo), float(hi), n, n, k)


@dataclass(frozen=True)
class Fidelity:
    fidelity: float  # share of synthetic records whose predicted label is the generated-for label
    n_synthetic: int
    n_train: int
    n_labels: int
    real_holdout_accuracy: float | None  # the same classifier on the real holdout: the ceiling to compare with
    per_label: dict[str, float]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def label_fidelity(
    train_x: np.ndarray,
    train_y: Sequence[str],
    syn_x: np.ndarray,
    syn_y: Sequence[str],
    *,
    test_x: np.ndarray | None = None,
    test_y: Sequence[str] | None = None,
    seed: int = 0,
) -> Fidelity:
    """A classifier fitted on the real training split labels each synthetic record; the share it agrees."""
    from sklearn.linear_model import LogisticRegression

    if len(set(train_y)) < 2:
        raise ValueError("label fidelity needs at least two labels in the real training split")
    if len(syn_y) == 0:
        raise ValueError("label fidelity needs at least one synthetic record")
    clf = LogisticRegression(max_iter=2000, random_state=seed)
    clf.fit(np.asarray(train_x), list(train_y))
    pred = clf.predict(np.asarray(syn_x))
    hit = np.asarray([p == t for p, t in zip(pred, syn_y, strict=True)])
    per: dict[str, float] = {}
    for lab in sorted(set(syn_y)):
        mask = np.asarray([t == lab for t in syn_y])
        per[lab] = float(hit[mask].mean())
    ceiling = None
    if test_x is not None and test_y is not None and len(test_y):
        ceiling = float(clf.score(np.asarray(test_x), list(test_y)))
    return Fidelity(float(hit.mean()), len(syn_y), len(train_y), len(set(train_y)), ceiling, per)


def mask_label_words(text: str, label: str, token: str = "_") -> str:
    """``text`` with every word that starts with one of the label's words replaced by ``token``.

    Prefix matching also masks simple inflections (card → cards, arrival → arrivals) and the label written
    as one token (``CARD_ARRIVAL``, ``card-arrival``).
    """
    words = [w for w in label_words(label) if len(w) >= 2]
    if not words:
        return text
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\w*", re.IGNORECASE)
    return pattern.sub(token, text)
