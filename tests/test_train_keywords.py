"""The DP label-keyword histogram (appliance.train.keywords): its public domain, its L2 sensitivity, the noise
floor, and how ``{label_keywords}`` renders; the policy's checks and the plan's reservation."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from appliance.errors import BadInput
from appliance.policy.loader import default_policy_path, load_policy_file
from appliance.policy.schema import TrainingPolicy
from appliance.policy.templates import render_label_template
from appliance.train import keywords as kw
from appliance.train.plan import TrainRequest, make_plan

LABELS = ["card_linking", "pending_cash_withdrawal"]
WORDS = ["app", "atm", "link", "money", "pending"]


def test_candidates_are_whole_word_tokens_without_stop_words() -> None:
    tokens = ["Ġcard", "Ġthe", "ĠATM", "▁link", "ing", "Ġab", "Ġcafé", "Ġx1", "Ġabout", "ĠCard"]
    assert kw.candidate_words(tokens) == ["atm", "card", "link"]


def test_each_unit_adds_unit_l2_norm_so_one_unit_moves_the_counts_by_at_most_one() -> None:
    units = [
        [("I can't link it in the app", "card_linking")],
        [("The ATM took my money", "pending_cash_withdrawal"), ("link the app", "card_linking")],  # a subject
        [("nothing here", "card_linking")],  # no candidate word: adds nothing
        [("atm atm ATM", "pending_cash_withdrawal")],  # a word counts once per unit
        [("money", "no_such_label")],  # a label outside the set adds nothing
    ]
    full = kw.unit_counts(units, LABELS, WORDS).counts
    for i in range(len(units)):
        without = kw.unit_counts(units[:i] + units[i + 1 :], LABELS, WORDS).counts
        assert np.linalg.norm(full - without) == pytest.approx(1.0 if i in (0, 1, 3) else 0.0)
    h = kw.unit_counts(units[3:4], LABELS, WORDS)
    assert h.counts[1, WORDS.index("atm")] == pytest.approx(1.0)


def test_a_labels_own_words_are_not_its_keywords() -> None:
    h = kw.unit_counts([[("pending link", "pending_cash_withdrawal")]], LABELS, WORDS)
    row = dict(zip(WORDS, h.counts[1], strict=True))
    assert row["pending"] == 0.0 and row["link"] == pytest.approx(1.0)


def test_top_words_keep_the_highest_counts_above_the_floor() -> None:
    counts = np.array([[9.0, 0.5, 12.0, 7.0, 1.0], [0.0, 20.0, 0.0, 4.9, 5.0]])
    h = kw.Histogram(LABELS, WORDS, counts)
    got = kw.top_words(h, per_label=2, floor=5.0)
    assert got == {
        "card_linking": [("link", 12.0), ("app", 9.0)],
        "pending_cash_withdrawal": [("atm", 20.0), ("pending", 5.0)],
    }
    assert kw.keywords_only(kw.top_words(h, per_label=4, floor=10.0)) == {
        "card_linking": ["link"],
        "pending_cash_withdrawal": ["atm"],
    }


def test_noise_is_added_to_every_count_and_nothing_else_changes() -> None:
    h = kw.Histogram(LABELS, WORDS, np.zeros((2, 5)))
    big = kw.Histogram(LABELS, WORDS, np.zeros((2, 50_000)))
    n = kw.noisy(h, 2.5, np.random.default_rng(0))
    assert n.labels == LABELS and n.words == WORDS and n.counts.shape == (2, 5) and not np.any(n.counts == 0)
    assert np.std(kw.noisy(big, 2.5, np.random.default_rng(1)).counts) == pytest.approx(2.5, rel=0.02)


def test_template_renders_the_keywords_or_nothing() -> None:
    tmpl = "A customer message about {label_words}{label_keywords}:\n"
    words = {"card_linking": ["link", "app"], "pending_cash_withdrawal": []}
    assert (
        render_label_template(tmpl, "card_linking", None, words)
        == "A customer message about card linking (link, app):\n"
    )
    assert (
        render_label_template(tmpl, "pending_cash_withdrawal", None, words)
        == "A customer message about pending cash withdrawal:\n"
    )
    assert render_label_template(tmpl, "card_linking") == "A customer message about card linking:\n"


def test_keywords_need_the_template_to_read_them() -> None:
    with pytest.raises(ValidationError, match=r"\{label_keywords\}"):
        TrainingPolicy.model_validate({"label_keywords": {"enabled": True}})
    ok = TrainingPolicy.model_validate(
        {"label_keywords": {"enabled": True}, "label_template": "About {label_words}{label_keywords}:\n"}
    )
    assert ok.label_keywords.noise_multiplier == 2.5 and ok.label_keywords.threshold_sigmas == 5.0
    with pytest.raises(ValidationError, match="label_template must contain"):
        TrainingPolicy.model_validate({"label_template": "About {label_keywords}:\n"})


def _ctx(keywords: dict[str, Any] | None, selection: dict[str, Any] | None = None) -> Any:
    policy = load_policy_file(default_policy_path())
    t = policy.training
    if keywords is not None:
        kcfg = t.label_keywords.model_copy(update={"enabled": True, **keywords})
        t = t.model_copy(update={"label_keywords": kcfg, "label_template": "About {label_words}{label_keywords}:\n"})
    cur = policy.curation
    if selection is not None:
        cur = cur.model_copy(
            update={"dp_selection": cur.dp_selection.model_copy(update={"enabled": True, **selection})}
        )
    return SimpleNamespace(policy=policy.model_copy(update={"training": t, "curation": cur}))


def test_keywords_are_reserved_in_the_runs_epsilon_for_labelled_data_only() -> None:
    req = TrainRequest("d", epsilon=4.0)
    plan = make_plan(_ctx({}, {"noise_multiplier": 4.0}), req, n=540, labelled=True)
    assert plan.dp is not None and plan.keywords_noise == 2.5 and plan.selection_noise == 4.0
    assert plan.dp.also == ((4.0, 1.0, 1), (2.5, 1.0, 1))
    unlabelled = make_plan(_ctx({}), req, n=540)
    assert unlabelled.keywords_noise is None and unlabelled.dp is not None and unlabelled.dp.also == ()
    assert make_plan(_ctx({}), TrainRequest("d", epsilon=None, dp=False), n=540, labelled=True).keywords_noise is None


def test_histograms_that_would_starve_dp_sgd_are_refused() -> None:
    four = TrainRequest("d", epsilon=4.0)
    with pytest.raises(BadInput, match=r"and training\.label_keywords .*noise multiplier from 0\.88\d* to 1\.2"):
        make_plan(_ctx({"noise_multiplier": 1.5}, {"noise_multiplier": 4.0}), four, n=540, labelled=True)
    with pytest.raises(
        BadInput, match=r"^training\.label_keywords \(noise_multiplier 1\) alone spend all of --epsilon 4"
    ):
        make_plan(_ctx({"noise_multiplier": 1.0}), four, n=540, labelled=True)
    with pytest.raises(BadInput, match=r"curation\.dp_selection and training\.label_keywords"):
        make_plan(
            _ctx({"noise_multiplier": 1.0}, {"noise_multiplier": 1.0}),
            TrainRequest("d", epsilon=1.0),
            n=540,
            labelled=True,
        )


def test_the_prompts_meta_carries_the_keywords_to_generation() -> None:
    """What the trainer trains under is what generation, curation and the probes render from ``prompts.meta``."""
    import json

    from appliance.generate.prompts import PromptMeta
    from appliance.train.layout import Layout

    layout = Layout(
        k=4,
        bos_id=None,
        eos_id=2,
        suffix_text="",
        label_template="About {label_words}{label_keywords}:\n",
        max_text_tokens=32,
        label_keywords={"card_linking": ["link", "app"], "other": ["x"]},
    )
    meta = PromptMeta.parse(json.dumps(layout.meta(LABELS)))
    assert meta.label_keywords == {"card_linking": ["link", "app"]}  # only the prompt's labels
    assert meta.label_template is not None
    for lab in LABELS:
        rendered = render_label_template(meta.label_template, lab, meta.label_descriptions, meta.label_keywords)
        assert rendered == layout.context_text(lab)
    assert layout.context_text("card_linking") == "About card linking (link, app):\n"


def test_a_word_every_label_uses_gives_way_to_one_that_names_the_label() -> None:
    words = ["help", "track", "atm"]
    counts = np.array([[30.0, 12.0, 0.0], [28.0, 0.0, 15.0]])  # "help" is the most used word of both labels
    got = kw.top_words(kw.Histogram(LABELS, words, counts), per_label=2, floor=10.0)
    assert got == {"card_linking": [("track", 12.0), ("help", 30.0)], "pending_cash_withdrawal": [("atm", 15.0)]}
