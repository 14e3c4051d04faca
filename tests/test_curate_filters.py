"""Curation's pure filters: normalisation, quality reasons, leak n-grams, duplicates, the decision order."""

from __future__ import annotations

import pytest

from appliance.curate.decide import OUTPUT_PII, UNFINISHED, decide, pii_hits
from appliance.curate.dedup import exact_duplicates, jaccard, near_duplicates
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
    ],
)
def test_quality_reasons(text: str, reason: str | None) -> None:
    assert quality_reason(text, POLICY) == reason


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

    assert set(inspect.signature(decide).parameters) == {"texts", "pii", "policy", "finish_reasons", "label_ok"}


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
