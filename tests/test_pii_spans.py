"""Pure PII logic: thresholds, allow/ignore lists, overlap merging, chunking and pseudonyms."""

from __future__ import annotations

import itertools
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.pii.chunking import chunk_bounds
from appliance.pii.engine import Finding
from appliance.pii.pseudonym import Pseudonymizer
from appliance.pii.spans import Span, admitted, resolve
from appliance.policy.schema import PiiAction, PiiPolicy

POLICY = PiiPolicy.model_validate(
    {
        "default_threshold": 0.5,
        "entities": {
            "PERSON": {"action": "pseudonymize", "threshold": 0.6},
            "DATE_TIME": {"action": "allow"},
            "US_SSN": {"action": "drop_record", "threshold": 0.3},
        },
        "ignore_entities": ["UK_NHS"],
        "allow_list": ["SSN"],
    }
)


def test_admitted_applies_thresholds_ignore_allow() -> None:
    text = "SSN of Ann Lee is 123-45-6789 on Monday, NHS 943 476 5919"
    f = [
        Finding(0, 3, "ORGANIZATION", 0.85),  # "SSN" is allow-listed
        Finding(7, 14, "PERSON", 0.55),  # below PERSON's 0.6
        Finding(7, 14, "PERSON", 0.85),
        Finding(18, 29, "US_SSN", 0.3),
        Finding(33, 39, "DATE_TIME", 0.85),  # allowed by policy
        Finding(45, 57, "UK_NHS", 1.0),  # ignored type
        Finding(18, 29, "PHONE_NUMBER", 0.4),  # below the default 0.5
    ]
    got = admitted(f, POLICY, text)
    assert [(s.type, s.action) for s in got] == [("PERSON", PiiAction.pseudonymize), ("US_SSN", PiiAction.drop_record)]
    with_allowed = admitted(f, POLICY, text, include_allowed=True)
    assert ("DATE_TIME", PiiAction.allow) in [(s.type, s.action) for s in with_allowed]


def test_resolve_merges_overlaps_into_union_typed_by_strongest() -> None:
    red = PiiAction.redact
    spans = [
        Span(0, 20, "EMAIL_ADDRESS", 1.0, red),
        Span(5, 20, "URL", 0.5, red),
        Span(30, 40, "LOCATION", 0.85, red),
        Span(25, 35, "STREET_ADDRESS", 0.6, red),
        Span(50, 52, "PERSON", 0.9, PiiAction.pseudonymize),
        Span(51, 60, "US_SSN", 0.4, PiiAction.drop_record),
        Span(70, 75, "PERSON", 0.9, red),
    ]
    got = resolve(spans)
    assert [(s.start, s.end, s.type) for s in got] == [
        (0, 20, "EMAIL_ADDRESS"),
        (25, 40, "LOCATION"),
        (50, 60, "US_SSN"),
        (70, 75, "PERSON"),
    ]
    assert got[2].action is PiiAction.drop_record


def test_resolve_keeps_adjacent_spans_apart() -> None:
    red = PiiAction.redact
    got = resolve([Span(0, 4, "PERSON", 0.9, red), Span(4, 8, "PERSON", 0.9, red)])
    assert len(got) == 2


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=string.ascii_letters + "  \n", min_size=0, max_size=3000),
    max_chars=st.integers(min_value=200, max_value=900),
    overlap=st.integers(min_value=0, max_value=99),
)
def test_chunks_cover_text_and_contain_every_short_window(text: str, max_chars: int, overlap: int) -> None:
    bounds = chunk_bounds(text, max_chars, overlap)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(text)
    for (s, e), (s2, _e2) in itertools.pairwise(bounds):
        assert e - s <= max_chars and s < s2 <= e - overlap
    # every window no longer than the overlap lies wholly inside one chunk
    for start in range(0, max(len(text) - overlap, 0), 37):
        end = start + overlap
        assert any(s <= start and end <= e for s, e in bounds)


def test_chunking_rejects_bad_overlap() -> None:
    with pytest.raises(ValueError, match="overlap"):
        chunk_bounds("x" * 100, 10, 5)


KEY = b"k" * 32


def test_pseudonyms_are_consistent_within_a_dataset() -> None:
    a, b = Pseudonymizer(KEY, "ds"), Pseudonymizer(KEY, "ds")
    assert a.surrogate("PERSON", "Ann Lee") == b.surrogate("PERSON", "ann   lee")
    assert a.surrogate("PERSON", "Ann Lee") != a.surrogate("PERSON", "Bob Stone")
    assert a.surrogate("EMAIL_ADDRESS", "ann@corp.com").endswith(("example.com", "example.org", "example.net"))
    other = Pseudonymizer(KEY, "other")
    names = [f"Person Number{i}" for i in range(20)]
    assert [a.surrogate("PERSON", n) for n in names] != [other.surrogate("PERSON", n) for n in names]
    assert Pseudonymizer(b"j" * 32, "ds").surrogate("US_SSN", "123-45-6789") != a.surrogate("US_SSN", "123-45-6789")


def test_pseudonyms_keep_shape_and_never_echo() -> None:
    p = Pseudonymizer(KEY, "ds")
    emp = p.surrogate("EMPLOYEE_ID", "EMP-204518")
    assert emp.startswith("EMP-") and emp[4:].isdigit() and emp != "EMP-204518"
    word = p.surrogate("PROJECT", "Falcon")
    assert word != "Falcon" and len(word) == 6 and word[0].isupper()
    assert p.surrogate("PERSON", "Ann").count(" ") == 0
    assert p.surrogate("PROJECT", "---") == "<PROJECT>"


def test_policy_refuses_a_bad_regex() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not a valid regular expression"):
        PiiPolicy.model_validate(
            {"custom_recognizers": [{"entity": "X_ID", "patterns": [{"name": "x", "regex": "(["}]}]}
        )
    with pytest.raises(ValidationError, match="chunk_overlap_chars"):
        PiiPolicy.model_validate({"max_chunk_chars": 1000, "chunk_overlap_chars": 600})
