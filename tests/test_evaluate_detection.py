"""The quality measures a junk batch cannot pass: detection AUC, label fidelity, label-word masking, sample
sizes — pure functions on synthetic embeddings with known answers — and the gate's quality floor."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.evaluate import detection as det
from appliance.gate.checks import GateFacts, describe, evaluate, failures
from appliance.policy.schema import GatePolicy, PrivacyPolicy
from appliance.policy.templates import label_words, render_label_template


def _clusters(n: int, centers: np.ndarray, rng: np.random.Generator, spread: float = 0.3) -> np.ndarray:
    idx = rng.integers(0, len(centers), n)
    return centers[idx] + spread * rng.standard_normal((n, centers.shape[1])), idx


@pytest.mark.slow
def test_same_distribution_is_not_detected():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 16))
    b = rng.standard_normal((200, 16))
    d = det.detection_auc(a, b, seed=1)
    assert 0.35 < d.auc < 0.65
    assert d.ci_low < 0.5 < d.ci_high or abs(d.auc - 0.5) < 0.1
    assert d.n_real == d.n_synthetic == 200 and d.folds == 5


@pytest.mark.slow
def test_different_distribution_is_detected_with_a_tight_interval():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((150, 16))
    b = rng.standard_normal((150, 16)) + 1.5
    d = det.detection_auc(a, b, seed=1)
    assert d.auc > 0.97 and d.ci_low > 0.9 and d.ci_high <= 1.0


def _messages(n: int, rng: np.random.Generator) -> list[str]:
    opener = ["Why is", "Where is", "Can you unblock", "How do I reset", "When will I get", "What happened to"]
    thing = ["my PIN", "my ATM card", "the PIN for my card", "my new card", "my Visa card", "the PIN I chose"]
    tail = ["?", "? I need it today.", ", please?", "? It is urgent.", "? Thanks, Anna.", "? I tried twice."]
    return [f"{rng.choice(opener)} {rng.choice(thing)}{rng.choice(tail)}" for _ in range(n)]


@pytest.mark.slow  # the real MiniLM embedder and two cross-validated detectors
def test_lexical_detection_sees_the_case_an_embedding_cannot():
    # the same messages in lower case ("my pin" for "my PIN"): MiniLM is uncased, so its detector sees nothing,
    # while the word and character n-grams tell the sides apart — a generator's habits can hide from embeddings
    from appliance.evaluate.embed import default_embedder

    rng = np.random.default_rng(0)
    real, synthetic = _messages(150, rng), [t.lower() for t in _messages(150, rng)]
    embed = default_embedder().encode
    assert det.detection_auc(embed(real), embed(synthetic), seed=0).auc < 0.65
    lexical = det.lexical_detection_auc(real, synthetic, seed=0)
    assert lexical.auc > 0.95 and lexical.ci_low > 0.9 and lexical.n_real == 150
    same = det.lexical_detection_auc(real, _messages(150, rng), seed=0)
    assert same.auc < 0.65, "the same generator on both sides is not told apart"
    with pytest.raises(ValueError, match="at least 4"):
        det.lexical_detection_auc(real[:3], synthetic)


@pytest.mark.slow  # fits the cross-validated detector, like the two tests above
def test_detection_balances_the_sides_and_needs_four_per_side():
    rng = np.random.default_rng(0)
    d = det.detection_auc(rng.standard_normal((300, 4)), rng.standard_normal((40, 4)), seed=0)
    assert d.n_real == d.n_synthetic == 40
    with pytest.raises(ValueError, match="at least 4"):
        det.detection_auc(rng.standard_normal((3, 4)), rng.standard_normal((10, 4)))


@pytest.mark.slow  # 2 x 8 cross-validated fits
def test_detection_at_a_fixed_n_compares_batches_of_different_sizes():
    # a weak shift in many dimensions: the classifier learns it better from more records, so the plain AUC of a
    # 600-output batch is far above that of a 100-output batch of the same generator; at one n they agree
    rng = np.random.default_rng(0)
    real, outputs = rng.standard_normal((600, 128)), rng.standard_normal((600, 128)) + 0.08
    small, large = outputs[:100], outputs
    plain = det.detection_auc(real, small, bootstrap=0).auc, det.detection_auc(real, large, bootstrap=0).auc
    assert plain[1] - plain[0] > 0.1, plain
    at_small, at_large = det.detection_at_n(real, small, n=100), det.detection_at_n(real, large, n=100)
    assert abs(at_small.auc - at_large.auc) < 0.02, (at_small, at_large)
    assert at_large.n == 100 and at_large.draws == len(at_large.aucs) == 8 and len(set(at_large.aucs)) == 8
    assert at_large.auc == pytest.approx(np.mean(at_large.aucs)) and 0 < at_large.sd < 0.1
    assert det.detection_at_n(real, large, n=100) == at_large, "seeded: the same figure every time"
    with pytest.raises(ValueError, match="needs 101 records per side"):
        det.detection_at_n(real, small, n=101)
    lexical = det.detection_at_n(
        _messages(60, rng), [t.lower() for t in _messages(60, rng)], n=50, draws=2, lexical=True
    )
    assert lexical.auc > 0.9 and lexical.draws == 2, "the lexical detector at a fixed n sees case"


def test_label_fidelity_is_high_for_on_label_and_low_for_swapped_labels():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 8)) * 4
    names = np.array(["a", "b", "c"])
    train_x, ti = _clusters(150, centers, rng)
    syn_x, si = _clusters(60, centers, rng)
    good = det.label_fidelity(train_x, list(names[ti]), syn_x, list(names[si]), test_x=train_x, test_y=list(names[ti]))
    assert good.fidelity > 0.95 and good.n_synthetic == 60 and good.n_labels == 3
    assert good.real_holdout_accuracy is not None and good.real_holdout_accuracy > 0.95
    assert set(good.per_label) == {"a", "b", "c"}
    swapped = det.label_fidelity(train_x, list(names[ti]), syn_x, list(names[(si + 1) % 3]))
    assert swapped.fidelity < 0.05


def test_label_fidelity_of_off_topic_text_is_chance_or_worse():
    """Outputs about none of the labels (one far-away cluster) get one label at best: about 1/3 here."""
    rng = np.random.default_rng(1)
    centers = rng.standard_normal((3, 8)) * 4
    names = np.array(["a", "b", "c"])
    train_x, ti = _clusters(150, centers, rng)
    junk = rng.standard_normal((60, 8)) * 0.3 + 20.0
    f = det.label_fidelity(train_x, list(names[ti]), junk, list(names[rng.integers(0, 3, 60)]))
    assert f.fidelity < 0.5


def test_label_words_are_masked_in_any_case_and_inflection():
    text = "CARD_ARRIVAL: my cards have not arrived, card arrival is late. Arrivals board."
    masked = det.mask_label_words(text, "card_arrival")
    assert "card" not in masked.lower() and "arrival" not in masked.lower()
    assert "arrived" in masked  # a different word stem stays: only the label's own words go
    assert det.mask_label_words("Why is my top-up pending?", "pending_top_up") == "Why is my _-_ _?"
    assert det.mask_label_words("unchanged", "") == "unchanged"


def test_label_template_renders_label_words():
    assert label_words("card_arrival") == ["card", "arrival"]
    assert label_words("Top-Up failed") == ["top", "up", "failed"]
    assert (
        render_label_template("About {label_words} ({label}):", "card_arrival") == "About card arrival (card_arrival):"
    )
    described = {"card_arrival": "a card that has not come yet"}
    assert render_label_template("About {label_description}:", "card_arrival", described) == (
        "About a card that has not come yet:"
    )
    assert render_label_template("About {label_description}:", "pin_blocked", described) == "About pin blocked:"


def test_reliability_flags_small_samples():
    assert det.reliability("mauve", 44) == {"n": 44, "min_n": 500, "reliable": False}
    assert det.reliability("detection_auc", 120)["reliable"] is True


def _facts(**kw) -> GateFacts:
    base = dict(mode="softprompt", dp=True, epsilon=4.0, delta=1e-6, dataset_epsilon=4.0, n_records=100,
                curated=True, pii_findings=0, verbatim_leaks=0, evaluated=True, mauve=0.9, mia_auc=0.5,
                tpr_at_1pct_fpr=0.0, canary_exposure_bits=1.0, canary_output_hits=0, dcr_ratio=1.0,
                detection_auc=0.7, label_fidelity=0.9, labelled=True)  # fmt: skip
    base.update(kw)
    return GateFacts(**base)


def _failed(facts: GateFacts) -> set[str]:
    return {f["check"] for f in failures(evaluate(facts, GatePolicy(), PrivacyPolicy()))}


def test_gate_quality_floor_refuses_junk():
    assert not {"detection_auc", "label_fidelity"} & _failed(_facts())
    assert "detection_auc" in _failed(_facts(detection_auc=0.99))
    assert "label_fidelity" in _failed(_facts(label_fidelity=0.4))
    assert "detection_auc" in _failed(_facts(detection_auc=None))  # never measured: refused


def test_a_quality_refusal_says_what_to_change():
    """The refusal names the levers measured on public data, not only the value and the floor."""
    text = describe(failures(evaluate(_facts(detection_auc=0.93, label_fidelity=0.4), GatePolicy(), PrivacyPolicy())))
    assert "detection_auc 0.93 (max 0.85)" in text and "label_fidelity 0.4 (min 0.7)" in text
    assert "training.init_text" in text and "curation.dp_selection" in text and "spends ε" in text
    assert "curation.label_margin_nats" in text and "training.label_descriptions" in text


def test_gate_label_fidelity_applies_only_to_labelled_outputs():
    assert "label_fidelity" not in _failed(_facts(labelled=False, label_fidelity=None))


def test_policy_defaults_of_the_quality_floor():
    g = GatePolicy()
    assert g.max_detection_auc == 0.85 and g.min_label_fidelity == 0.7
