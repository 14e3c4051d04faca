"""The cue recognizer's name pattern (pure regex, no spaCy): a cue takes the whole name, initials included."""

from __future__ import annotations

import pytest

from appliance.pii.builtin import _person_cues


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("my name is John Smith", "John Smith"),  # once cut to "John S", leaving "mith" to the other rules
        ("Dear Mary Ann Evans,", "Mary Ann Evans"),
        ("call me Anna K. Brown", "Anna K. Brown"),
        ("my name is Anna K Brown ok", "Anna K Brown"),
        ("Signed Zorblax Quentarro", "Zorblax Quentarro"),
        ("Dr. Alma Jensen will see you", "Alma Jensen"),
    ],
)
def test_cue_takes_the_whole_name(text: str, name: str) -> None:
    found = [text[r.start : r.end] for r in _person_cues().analyze(text, ["PERSON"])]
    assert found == [name]
