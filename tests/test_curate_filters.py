"""Curation's pure filters: normalisation, quality reasons, leak n-grams, duplicates, the decision order."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.curate.decide import LABEL_ECHO, OUTPUT_PII, PROMPT_ECHO, UNFINISHED, decide, pii_hits
from appliance.curate.dedup import exact_duplicates, jaccard, near_duplicates
from appliance.curate.echo import PromptText, echoes_prompt
from appliance.curate.filters import LeakIndex, alpha_ratio, has_binary, quality_reason, repeated_ngram_ratio
from appliance.curate.text import char_shingles, normalize, text_hash, words
from appliance.policy.schema import CurationPolicy

POLICY = CurationPolicy()
SEED = "I ordered a new card two weeks ago and it still has not arrived at my home"


def test_normalize_and_words() -> None:
    assert normalize("  Hello\u00a0  WORLD\n") == "hello world"
    assert words("Don't STOP—now!") == ["don", "t", "stop", "now"]
    assert text_hash("Hello  world") == text_hash("hello world\n")
    assert text_hash("hello world").startswith("sha256:") and len(text_hash("x")) == 71


def test_repeated_ngram_ratio_hand_checked() -> None:
    assert repeated_ngram_ratio(["a", "b", "c", "d", "e"], 3) == 0.0
    # 3-grams of "a b c a b c a b c": 7 in all, 3 distinct -> 1 - 3/7
    assert repeated_ngram_ratio(["a", "b", "c", "a", "b", "c", "a", "b", "c"], 3) == pytest.approx(4 / 7)
    assert repeated_ngram_ratio(["a", "b"], 3) == 0.0


def test_alpha_ratio_and_binary() -> None:
    assert alpha_ratio("abc def") == 1.0
    assert alpha_ratio("ab12") == 0.5
    assert alpha_ratio("   ") == 0.0
    assert has_binary("ok\x00no") and has_binary("bad \ufffd decode") and not has_binary("fine\ttext\n")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Where is my new card? It has been a week.", None),
        ("Card?", "too_short"),
        ("word " * 500, "too_long"),
        ("#### $$$$ %%%% &&&& **** 1234", "non_text"),
        ("hello \x00\x01\x02 card arrived today fine", "non_text"),
        ("my card my card my card my card my card my card", "repetitive"),
        ("please help me check my card here,,,,,,,,,,,,,,,, I'm looking for a discount.", "garbled_punctuation"),
        ('Can you please explain the cash withdrawal charge more?"', "garbled_punctuation"),
        ("How long until it arrives?|||| thanks", "garbled_punctuation"),
        ('My friend said "it arrives in a week" but it has not.', None),
        ("Well... I waited!!!! Where is it???? ---- thanks", None),
        ("Can you help me (fee) with this?) thanks", "garbled_punctuation"),  # a ")" it never opened
        ("Why was I charged (twice)? :)", None),
        ("My card was stolen :( What do I do?", None),
    ],
)
def test_quality_reasons(text: str, reason: str | None) -> None:
    assert quality_reason(text, POLICY) == reason


def test_garbled_punctuation_can_be_turned_off() -> None:
    text = 'Can you please explain the cash withdrawal charge more?"'
    assert quality_reason(text, CurationPolicy(drop_garbled_punctuation=False)) is None
    assert quality_reason(text, POLICY) == "garbled_punctuation"


def test_leak_index_catches_copied_span_of_n_tokens() -> None:
    index = LeakIndex([SEED, "completely unrelated seed text about exchange rates"], 8)
    copied = "Hi there, " + " ".join(SEED.split()[2:10]) + " so what now?"  # exactly 8 seed tokens
    assert index.hits(copied) == 1
    assert index.hits("Hi, " + " ".join(SEED.split()[2:12]) + ".") == 3  # 10 tokens -> 3 overlapping 8-grams
    assert index.hits("Hi there, " + " ".join(SEED.split()[2:9]) + " so what now?") == 0  # only 7
    assert index.hits(SEED.upper()) == len(words(SEED)) - 7  # case and punctuation do not hide a copy
    assert index.n_seeds == 2


def test_exact_duplicates_keep_first() -> None:
    texts = ["Lost my card", "lost  my CARD ", "other", "Lost my card"]
    assert exact_duplicates(texts) == {1: 0, 3: 0}


def test_near_duplicates_verified_by_true_jaccard() -> None:
    base = "How long does it take for a new card to be delivered to my home address?"
    texts = [base, base.replace("?", ", please?"), "What is the exchange rate for euros to dollars today?"]
    assert jaccard(char_shingles(texts[0]), char_shingles(texts[1])) >= 0.8
    assert near_duplicates(texts, threshold=0.8, num_perm=128) == {1: 0}
    assert near_duplicates(texts, threshold=0.99, num_perm=128) == {}


def test_pii_hits_skip_allowed_and_surrogates_by_default() -> None:
    findings = [
        {"type": "DATE_TIME", "action": "allow"},
        {"type": "PERSON", "action": "pseudonymize"},
        {"type": "CREDIT_CARD", "action": "redact"},
        {"type": "US_SSN", "action": "drop_record"},
    ]
    assert pii_hits(findings, count_pseudonyms=False) == 2
    assert pii_hits(findings, count_pseudonyms=True) == 3


def test_decide_order_and_dedup_among_clean() -> None:
    texts = [
        "Where is my new card? It has been a week.",  # kept
        "where is my new card?  it has been a week.",  # exact duplicate of 0
        "Card?",  # too short
        SEED + " again",  # copies a seed: kept (the decision never reads the seeds; the gate counts it)
        "My card number is on the screen, look.",  # PII hit given below
        "Card?",  # too short again (not a duplicate: never clean)
    ]
    reasons = decide(texts, pii=[0, 0, 0, 0, 2, 0], policy=POLICY)
    assert reasons == [None, "exact_duplicate", "too_short", None, OUTPUT_PII, "too_short"]
    keep_pii = CurationPolicy(output_pii_action="keep")
    assert decide(texts, pii=[0, 0, 0, 0, 2, 0], policy=keep_pii)[4] is None
    with pytest.raises(ValueError):
        decide(texts, pii=[0], policy=POLICY)


def test_decide_never_reads_the_seeds() -> None:
    """Curation is post-processing of the DP outputs: its signature has no seed-dependent input."""
    import inspect

    params = set(inspect.signature(decide).parameters)
    # labels: public schema; prompt: the public template and the DP-released keywords; vectors: the outputs' own
    # embeddings
    assert params == {"texts", "pii", "policy", "finish_reasons", "labels", "prompt", "vectors"}


def test_an_output_that_is_only_a_label_is_dropped_as_label_echo() -> None:
    """Measured on BANKING77 with the generic prior: "fiat_currency_support" came out as a whole text. The
    label set is public schema, so the check reads no seed; an output that merely names its topic is kept."""
    labels = ["fiat_currency_support", "card_linking"]
    texts = ["fiat_currency_support", "Card linking.", "Do you support fiat currency?", "card linking please help"]
    assert decide(texts, pii=[0] * 4, policy=POLICY, labels=labels) == [LABEL_ECHO, LABEL_ECHO, None, None]
    assert decide(texts, pii=[0] * 4, policy=POLICY) == [None, None, None, None]  # no labels: nothing to echo


DEMO_TEMPLATE = "A customer message about {label_words}{label_keywords}:\n"
DEMO_KEYWORDS = {"lost_or_stolen_card": ["help"], "cash_withdrawal_charge": ["fee", "charged"], "pin_blocked": []}


def test_prompt_text_keeps_the_templates_phrases_and_every_labels_keywords() -> None:
    got = PromptText.of(DEMO_TEMPLATE, DEMO_KEYWORDS)
    assert got.phrases == (("a", "customer", "message", "about"),)
    assert got.keywords == {"help", "fee", "charged"}
    # the generic frame's literals are one word each ("label", "text"): ordinary language, no phrase
    assert PromptText.of('{{"label": "{label}", "text": "', {}).phrases == ()
    assert PromptText.of(None) == PromptText()


@pytest.mark.parametrize(
    ("text", "echo"),
    [
        ("I'm having trouble with my card (help)", True),  # read in session 21's export
        ("What is the charge (fee) for taking cash out?", True),
        ("Why was I (Charged, fee) twice?", True),  # any released keywords, any case
        ("A customer message about fiat currency support:", True),  # the prefix kept as a record (ε = 1)
        ("a customer  message, about my card", True),
        ("Is my card (the new one) here yet?", False),  # a parenthetical that says more is prose
        ("I need help with a fee I was charged", False),  # keywords in the text are what they are for
        ("I sent a customer a message about it", False),
        ("Thanks :) (help)", True),
        ("()", False),
    ],
)
def test_an_output_repeating_its_label_prefix_is_a_prompt_echo(text: str, echo: bool) -> None:
    assert echoes_prompt(text, PromptText.of(DEMO_TEMPLATE, DEMO_KEYWORDS)) is echo


def test_decide_drops_prompt_echoes_only_when_given_the_prompt() -> None:
    texts = ["I'm having trouble with my card (help)", "I lost my card yesterday, can you block it?"]
    prompt = PromptText.of(DEMO_TEMPLATE, DEMO_KEYWORDS)
    assert decide(texts, pii=[0, 0], policy=POLICY, prompt=prompt) == [PROMPT_ECHO, None]
    assert decide(texts, pii=[0, 0], policy=POLICY) == [None, None]  # a few-shot batch has no label prefix


def test_decide_drops_outputs_cut_off_at_the_token_limit() -> None:
    """An output that hit max_tokens is a half sentence; dropping it reads only the engine's finish reason."""
    texts = ["How long until my new card arrives?", "I ordered a card last week and it still has not", "Where is it?"]
    finish = ["eos", "length", None]  # None: a batch from before the finish reason was stored
    assert decide(texts, pii=[0, 0, 0], policy=POLICY, finish_reasons=finish) == [None, UNFINISHED, None]
    keep = CurationPolicy(drop_unfinished=False)
    assert decide(texts, pii=[0, 0, 0], policy=keep, finish_reasons=finish) == [None, None, None]
    assert decide(texts, pii=[0, 0, 0], policy=POLICY) == [None, None, None]  # unknown: never dropped for it
    with pytest.raises(ValueError):
        decide(texts, pii=[0, 0, 0], policy=POLICY, finish_reasons=["eos"])


def test_chance_leak_rate_is_the_held_out_records_overlap_with_the_seeds() -> None:
    from appliance.curate.filters import chance_leak_rate, leak_allowance

    seeds = ["I'm not sure if my card has been lost or stolen, please help", "Why was my top-up declined today?"]
    index = LeakIndex(seeds, 8)
    holdout = [
        "I'm not sure if my card has been lost or stolen or just misplaced",  # formulaic: shares an 8-gram
        "How long does a transfer take?",
        "Where can I see the exchange rate?",
        "My PIN is blocked, what now?",
    ]
    assert chance_leak_rate(index, holdout) == 0.25
    assert chance_leak_rate(index, []) is None
    assert leak_allowance(0.25, 142) == 35 and leak_allowance(4 / 120, 142) == 4
    assert leak_allowance(None, 142) == 0 and leak_allowance(0.0, 142) == 0


def test_gate_allows_only_the_overlap_chance_explains() -> None:
    from appliance.gate.checks import GateFacts, evaluate, failures
    from appliance.policy.schema import GatePolicy, PrivacyPolicy

    def failed(gate: GatePolicy, **kw: object) -> bool:
        base = dict(mode="softprompt", dp=True, epsilon=4.0, delta=1e-6, dataset_epsilon=4.0, n_records=142,
                    curated=True, pii_findings=0, verbatim_leaks=0, evaluated=True, mauve=0.9, mia_auc=0.5,
                    tpr_at_1pct_fpr=0.0, canary_exposure_bits=1.0, canary_output_hits=0, dcr_ratio=1.0,
                    detection_auc=0.7, label_fidelity=0.9, labelled=True)  # fmt: skip
        base.update(kw)
        return "verbatim_leaks" in {f["check"] for f in failures(evaluate(GateFacts(**base), gate, PrivacyPolicy()))}  # type: ignore[arg-type]

    on = GatePolicy()
    assert not failed(on, verbatim_leaks=1, leak_allowance=4)  # 1 overlapping output; held-out rate explains 4
    assert not failed(on, verbatim_leaks=4, leak_allowance=4)
    assert failed(on, verbatim_leaks=5, leak_allowance=4)  # more than chance: refused (a memorising run)
    assert failed(on, verbatim_leaks=1, leak_allowance=0)
    assert failed(GatePolicy(leak_chance_baseline=False), verbatim_leaks=1, leak_allowance=4)  # off: every one


def test_semantic_duplicates_keep_the_first_of_each_group_of_paraphrases() -> None:
    from appliance.curate.dedup import semantic_duplicates

    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    near_a = np.array([0.95, 0.312, 0.0])  # cosine 0.95 with a
    rows = np.stack([a, b, near_a, a, b])
    assert semantic_duplicates(rows, threshold=0.9) == {2: 0, 3: 0, 4: 1}
    assert semantic_duplicates(rows, threshold=0.96) == {3: 0, 4: 1}  # near_a stays: 0.95 is not above
    assert semantic_duplicates(np.zeros((0, 3)), threshold=0.9) == {}
    with pytest.raises(ValueError, match=r"\(n, dim\)"):
        semantic_duplicates(np.zeros(3), threshold=0.9)


def test_decide_drops_semantic_duplicates_among_the_clean_outputs_only_when_asked() -> None:
    """The embeddings are asked for once, for the outputs every other filter kept; off by default."""
    texts = ["How soon will my card arrive here?", "Card?", "How soon will my card arrive?", "Why did my top up fail?"]
    emb = {0: [1.0, 0.0], 2: [0.99, 0.141], 3: [0.0, 1.0]}
    asked: list[list[int]] = []

    def vectors(idx: list[int]) -> np.ndarray:
        asked.append(list(idx))
        return np.array([emb[i] for i in idx])

    assert decide(texts, pii=[0] * 4, policy=POLICY, vectors=vectors) == [None, "too_short", None, None]
    assert asked == []  # off by default: nothing embedded
    on = CurationPolicy(semantic_dup_cosine=0.9)
    assert decide(texts, pii=[0] * 4, policy=on, vectors=vectors) == [None, "too_short", "semantic_duplicate", None]
    assert asked == [[0, 2, 3]]
    with pytest.raises(ValueError, match="pass the outputs' sentence embeddings"):
        decide(texts, pii=[0] * 4, policy=on)
