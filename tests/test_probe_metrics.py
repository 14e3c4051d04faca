"""Golden values for the probes' pure metric functions (AUC, TPR@FPR, bootstrap, Min-K%, exposure, DCR)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from appliance.probes import dcr, exposure, likelihood, metrics


@pytest.mark.parametrize(
    ("pos", "neg", "auc"),
    [
        ([3, 2, 1], [0, -1], 1.0),
        ([0, -1], [3, 2, 1], 0.0),
        ([1, 1], [1, 1], 0.5),
        ([0.9, 0.4, 0.6], [0.5, 0.3], 5 / 6),
        ([1, 2], [1, 0], 0.875),  # one tie counts one half
    ],
)
def test_roc_auc_golden(pos, neg, auc):
    assert metrics.roc_auc(pos, neg) == pytest.approx(auc)


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(7)
    p, n = rng.normal(0.3, 1, 57).round(1), rng.normal(0, 1, 43).round(1)  # rounding makes ties
    pairs = (p[:, None] > n[None, :]).sum() + 0.5 * (p[:, None] == n[None, :]).sum()
    assert metrics.roc_auc(p, n) == pytest.approx(pairs / (p.size * n.size))


def test_roc_curve_endpoints_and_area():
    p, n = [0.9, 0.8, 0.4], [0.85, 0.1, 0.2, 0.3]
    fpr, tpr, thr = metrics.roc_curve(p, n)
    assert (fpr[0], tpr[0], thr[0]) == (0.0, 0.0, np.inf)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(metrics.roc_auc(p, n))


@pytest.mark.parametrize(("fpr", "tpr"), [(0.01, 1 / 3), (0.2, 1 / 3), (0.25, 1.0), (0.0, 1 / 3), (1.0, 1.0)])
def test_tpr_at_fpr_golden(fpr, tpr):
    assert metrics.tpr_at_fpr([0.9, 0.8, 0.4], [0.85, 0.1, 0.2, 0.3], fpr) == pytest.approx(tpr)


def test_tpr_at_fpr_zero_when_a_nonmember_scores_highest():
    assert metrics.tpr_at_fpr([0.5, 0.6], [0.7, 0.1], 0.01) == 0.0


def test_metrics_refuse_empty_and_nan():
    with pytest.raises(ValueError):
        metrics.roc_auc([], [1.0])
    with pytest.raises(ValueError):
        metrics.roc_auc([float("nan")], [1.0])


def test_bootstrap_ci_is_deterministic_and_brackets_the_estimate():
    rng = np.random.default_rng(1)
    p, n = rng.normal(1.0, 1, 80), rng.normal(0.0, 1, 80)
    lo, hi = metrics.bootstrap_ci(metrics.roc_auc, p, n, n_boot=400, seed=3)
    assert (lo, hi) == metrics.bootstrap_ci(metrics.roc_auc, p, n, n_boot=400, seed=3)
    assert lo < metrics.roc_auc(p, n) < hi
    assert lo > 0.6 and hi < 0.9  # true AUC = Phi(1/sqrt 2) = 0.760
    assert metrics.bootstrap_ci(metrics.roc_auc, [5, 6], [1, 2], n_boot=50) == (1.0, 1.0)


def test_attack_summary_fields():
    s = metrics.attack_summary([0.9, 0.8, 0.7], [0.1, 0.2, 0.3], n_boot=100)
    assert s["auc"] == 1.0 and s["tpr_at_1pct_fpr"] == 1.0
    assert s["auc_ci"] == [1.0, 1.0] and (s["n_members"], s["n_holdout"]) == (3, 3)


def test_token_logprobs_golden():
    logits = np.array([[0.0, 0.0], [math.log(3.0), 0.0]])
    lp = likelihood.token_logprobs(logits, np.array([0, 0]))
    assert lp == pytest.approx([math.log(0.5), math.log(0.75)])
    big = likelihood.token_logprobs(np.array([[1000.0, 0.0]]), np.array([1]))  # stable for large logits
    assert big[0] == pytest.approx(-1000.0)


@pytest.mark.parametrize(("k", "value"), [(0.2, -5.0), (0.3, -4.5), (0.4, -4.5), (1.0, -3.0)])
def test_min_k_prob_golden(k, value):
    assert likelihood.min_k_prob(np.array([-1.0, -2.0, -3.0, -4.0, -5.0]), k) == pytest.approx(value)


def test_mean_loss_golden():
    assert likelihood.mean_loss(np.array([-1.0, -3.0])) == 2.0


@pytest.mark.parametrize(("rank", "n", "bits"), [(1, 1024, 10.0), (4, 1024, 8.0), (1024, 1024, 0.0), (1, 1e8, 26.575)])
def test_exposure_from_rank_golden(rank, n, bits):
    assert exposure.exposure_from_rank(rank, n) == pytest.approx(bits, abs=1e-3)


def test_sample_rank_counts_strictly_more_likely_candidates():
    assert exposure.sample_rank(2.0, np.array([1.0, 2.0, 3.0, 1.5])) == 3


def test_estimated_exposure_extrapolates_with_a_fitted_distribution():
    from scipy import stats

    cands = stats.norm.ppf(np.linspace(0.001, 0.999, 999)) * 2.0 + 30.0  # losses ~ N(30, 2)
    mid = exposure.estimated_exposure(30.0, cands, 1e8)
    assert mid["exposure_bits"] == pytest.approx(1.0, abs=0.1)  # median secret: rank ≈ |R|/2
    far = exposure.estimated_exposure(30.0 - 2.0 * 5.0, cands, 1e8)  # 5 sigma below: P ≈ 2.9e-7 under the normal
    normal_bits = exposure.exposure_from_rank(1 + (1e8 - 1) * stats.norm.cdf(-5), 1e8)  # 21.7
    tail = exposure.exponential_tail_fraction(20.0, cands)  # the sample's own lowest tenth, extrapolated
    assert far["exposure_bits"] == pytest.approx(exposure.exposure_from_rank(1 + (1e8 - 1) * tail, 1e8))
    assert 10.0 < far["exposure_bits"] < normal_bits  # still exposed, never read heavier than the sample shows
    assert far["sample_rank"] == 1 and far["sample_exposure_bits"] == pytest.approx(math.log2(1000))
    assert 0.0 <= mid["exposure_bits"] <= far["exposure_bits"] <= mid["space_bits"]


def test_exponential_tail_fraction_golden():
    cands = np.arange(200, dtype=float)  # m = 20 lowest: excesses below u = 20 are 20..1, mean beta = 10.5
    assert exposure.exponential_tail_fraction(-10.0, cands) == pytest.approx(0.1 * math.exp(-30.0 / 10.5))
    assert exposure.exponential_tail_fraction(20.0, cands) == pytest.approx(0.1)  # at u and above: the sample's share
    assert exposure.exponential_tail_fraction(99.5, cands) == pytest.approx(0.5)
    assert exposure.exponential_tail_fraction(-1.0, cands[:10]) == 0.0  # too few candidates for a tail


def test_exposure_is_not_inflated_by_a_heavy_lower_tail():
    """Candidate losses with a heavier lower tail than a normal's (Student t, 3 d.f.): a secret at the t's 0.1%
    quantile is exposed by 10 bits. A normal fitted to the whole sample calls it 26.6 bits (the whole space);
    the sample's exponential lower tail keeps the estimate near the truth."""
    from scipy import stats

    cands = stats.t.ppf(np.linspace(0.001, 0.999, 999), 3) * 2.0 + 30.0
    secret = float(stats.t.ppf(1e-3, 3)) * 2.0 + 30.0
    normal = stats.norm.cdf(secret, cands.mean(), cands.std())
    assert exposure.exposure_from_rank(1 + (1e8 - 1) * normal, 1e8) > 26.0
    assert exposure.estimated_exposure(secret, cands, 1e8)["exposure_bits"] < 14.0  # truth: 9.97 bits


def test_only_a_secret_below_every_candidate_is_extrapolated():
    """A small cluster of likely candidates far below the bulk: a secret just above one of them is held to its
    sampled share (rank 2 of 200: at most log2 200 bits), whatever a fitted tail would say."""
    from scipy import stats

    bulk = stats.norm.ppf(np.linspace(0.005, 0.995, 197)) * 2.0 + 30.0
    cands = np.concatenate([bulk, [14.0, 16.0, 18.0]])  # three candidates 6-8 sigma below the bulk
    est = exposure.estimated_exposure(15.0, cands, 1e8)
    assert est["sample_rank"] == 2
    assert est["exposure_bits"] <= math.log2(200) + 1e-9
    below_all = exposure.estimated_exposure(13.0, cands, 1e8)
    assert below_all["sample_rank"] == 1 and below_all["exposure_bits"] > math.log2(200)


def test_word_ngrams_and_jaccard_golden():
    a, b = dcr.word_ngrams("A b C"), dcr.word_ngrams("b c, d")
    assert a == {("a", "b"), ("b", "c")} and b == {("b", "c"), ("c", "d")}
    assert dcr.jaccard_distances([a], [b, a, frozenset()]) == pytest.approx(np.array([[2 / 3, 0.0, 1.0]]))
    assert dcr.word_ngrams("hello") == {("hello",)} and dcr.word_ngrams("") == frozenset()


def test_cosine_distances_golden():
    d = dcr.cosine_distances(np.array([[1.0, 0.0]]), np.array([[0.0, 2.0], [3.0, 0.0], [-1.0, 0.0]]))
    assert d == pytest.approx(np.array([[1.0, 0.0, 2.0]]))


def test_dcr_ratio_and_attack_auc_golden():
    assert dcr.dcr_ratio(np.array([0.1, 0.2, 0.3]), np.array([0.2, 0.4, 0.6])) == pytest.approx(0.5)
    assert dcr.dcr_attack_auc(np.array([0.0, 0.1]), np.array([0.5, 0.6])) == 1.0


def test_dcr_summary_copying_vs_fresh():
    # synthetic rows 0..2 copy members 0..2 (distance 0); everything else is 0.9 apart
    d_sm = np.full((3, 6), 0.9)
    d_sm[[0, 1, 2], [0, 1, 2]] = 0.0
    d_sh = np.full((3, 3), 0.9)
    s = dcr.dcr_summary(d_sm, d_sh, n_rounds=1, seed=0)
    assert s["median_to_members"] == 0.0 and s["median_to_holdout"] == 0.9
    assert s["attack_auc"] == pytest.approx(0.75)  # members 0..2 (0.0) beat the holdout (0.9); 3..5 tie
    fresh = dcr.dcr_summary(np.full((4, 5), 0.5), np.full((4, 5), 0.5))
    assert fresh["ratio"] == pytest.approx(1.0) and fresh["attack_auc"] == 0.5


def test_equal_subsample_is_deterministic():
    a = dcr.equal_subsample(10, 4, seed=2)
    assert list(a) == list(dcr.equal_subsample(10, 4, seed=2)) and len(set(a)) == 4
    assert list(dcr.equal_subsample(3, 5, seed=0)) == [0, 1, 2]


def test_dcr_summary_subsamples_the_larger_reference_set():
    rng = np.random.default_rng(0)
    d_sm, d_sh = rng.uniform(0.4, 0.6, (20, 8)), rng.uniform(0.4, 0.6, (20, 200))  # same distribution, 25x more
    s = dcr.dcr_summary(d_sm, d_sh, seed=1)
    assert s["median_to_holdout"] < s["median_to_members"]  # the bigger set is closer by chance alone
    assert s["ratio"] == pytest.approx(1.0, abs=0.1)  # equal-size comparison removes that bias
    assert dcr.dcr_summary(d_sh, d_sm, seed=1)["ratio"] == pytest.approx(1.0, abs=0.1)


def test_exposure_is_not_inflated_by_a_few_high_loss_candidates():
    """Candidates with a handful of very unlikely digit strings: the skew-normal fit turns right-skewed and its
    lower tail alone would put a secret just below the sample's bulk above 10 bits; the normal's tail caps it."""
    from scipy import stats

    bulk = stats.norm.ppf(np.linspace(0.005, 0.995, 194)) * 2.0 + 30.0
    cands = np.concatenate([bulk, [55.0, 58.0, 60.0, 62.0, 65.0, 70.0]])  # 6 of 200 far above
    secret = float(bulk.min()) - 0.5  # below every candidate, ~3 sample sigmas under the bulk's mean
    a, loc, scale = stats.skewnorm.fit(cands)
    skew_only = exposure.exposure_from_rank(1 + (1e8 - 1) * stats.skewnorm.cdf(secret, a, loc, scale), 1e8)
    est = exposure.estimated_exposure(secret, cands, 1e8)
    assert est["sample_rank"] == 1
    assert est["exposure_bits"] < 10.0 < skew_only, (est, skew_only)
    normal = stats.norm.cdf(secret, cands.mean(), cands.std())
    assert est["exposure_bits"] <= exposure.exposure_from_rank(1 + (1e8 - 1) * normal, 1e8) + 1e-9
