"""A name found once in a lower-case text is found at its every mention (pure function, no model)."""

from __future__ import annotations

import re

import pytest

from appliance.pii.engine import Finding
from appliance.pii.propagate import name_words, propagate_names


def person(text: str, value: str, score: float = 0.8) -> Finding:
    start = text.index(value)
    return Finding(start, start + len(value), "PERSON", score)


def mentions(text: str, findings: list[Finding]) -> list[str]:
    return [text[f.start : f.end] for f in findings if f.type == "PERSON"]


def test_every_mention_of_a_found_name() -> None:
    text = "[doctor] hi , karen . so karen tell me about it\n[patient] fine\n[doctor] take care karen"
    out = propagate_names(text, [person(text, "karen")], threshold=0.5)
    assert [f.start for f in out] == [m.start() for m in re.finditer("karen", text)]
    assert {f.score for f in out} == {0.8}  # the copies keep the score of the finding they copy


def test_full_name_spreads_word_by_word() -> None:
    text = "next patient is nicole okafor . nicole is here today . mrs. okafor says hello"
    out = propagate_names(text, [person(text, "nicole okafor")], threshold=0.5)
    assert mentions(text, out) == ["nicole okafor", "nicole", "okafor"]


def test_below_threshold_copies_nothing() -> None:
    text = "hello , karen . so karen tell me"
    found = [person(text, "karen", score=0.4)]
    assert propagate_names(text, found, threshold=0.5) == found


def test_cased_text_is_left_to_the_recognizers() -> None:
    text = "Karen Smith came in today. Karen reports knee pain. Smith is a surname."
    found = [person(text, "Karen Smith")]
    assert propagate_names(text, found, threshold=0.5) == found


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("hi , mark . there is a mark on your arm and we will mark it", "a mark"),  # after a determiner
        ("hi , mark . there is a mark on your arm and we will mark it", "will mark"),  # after a modal
    ],
)
def test_a_common_word_name_is_not_spread_to_its_word_uses(text: str, value: str) -> None:
    out = propagate_names(text, [person(text, "mark")], threshold=0.5)
    word = text.index(value) + value.index("mark")
    assert all(f.start != word for f in out), mentions(text, out)


def test_only_identifying_words_spread() -> None:
    assert name_words("dr. xochitl") == ["xochitl"]  # the title is not a name; a word English does not know is
    assert name_words("the patient") == []  # stop words and vocabulary never
    assert name_words("stephanie diaz") == ["stephanie", "diaz"]
    assert name_words("eugene walker") == ["eugene"]  # a surname that is a common word ("a walker") stays put


def test_the_pure_pii_modules_do_not_load_presidio() -> None:
    """propagate, casing and precision are pure: importing them (as the fast layer does) loads neither Presidio
    nor spaCy; precision names Presidio's result type for type checking only."""
    import subprocess
    import sys

    code = (
        "import sys; import appliance.pii.propagate, appliance.pii.casing, appliance.pii.precision; "
        "print(sorted(m for m in ('presidio_analyzer', 'spacy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
