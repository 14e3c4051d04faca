"""Holdout split: deterministic by record hash, exact fraction, duplicates never straddle splits."""

from __future__ import annotations

import random

import pytest

from appliance.ingest.split import assign_splits, holdout_target, record_key


def texts(n: int) -> list[str]:
    return [f"seed record number {i}" for i in range(n)]


def test_split_is_deterministic_and_order_independent() -> None:
    t = texts(500)
    a = dict(zip(t, assign_splits([record_key(x) for x in t], 0.2), strict=True))
    shuffled = t[:]
    random.Random(7).shuffle(shuffled)
    b = dict(zip(shuffled, assign_splits([record_key(x) for x in shuffled], 0.2), strict=True))
    assert a == b
    assert list(a.values()).count("holdout") == 100


@pytest.mark.parametrize(
    ("n", "fraction", "expected"), [(0, 0.2, 0), (1, 0.5, 0), (2, 0.2, 1), (3, 0.9, 2), (10, 0.25, 2)]
)
def test_holdout_target(n: int, fraction: float, expected: int) -> None:
    assert holdout_target(n, fraction) == expected


def test_small_datasets_get_both_splits() -> None:
    for n in range(2, 30):
        splits = assign_splits([record_key(x) for x in texts(n)], 0.2)
        assert "train" in splits and "holdout" in splits


def test_duplicates_share_a_split() -> None:
    t = texts(50) + texts(50)[:20] * 3
    keys = [record_key(x) for x in t]
    seen: dict[str, str] = {}
    for k, s in zip(keys, assign_splits(keys, 0.3), strict=True):
        assert seen.setdefault(k, s) == s


def test_key_is_content_defined() -> None:
    assert record_key("a") == record_key(" A ") != record_key("b")  # normalised: case and spacing do not count
    assert len(record_key("x")) == 64


def test_group_keys_joins_records_through_shared_subjects_and_texts() -> None:
    from appliance.ingest.split import group_keys

    keys = ["k3", "k1", "k2", "k4", "k3", "k5"]
    subjects = ["s1", "s2", "s1", None, "s9", None]
    # k3 and k2 share s1; k3 appears again under s9: one group {k2, k3} with representative k2
    assert group_keys(keys, subjects) == ["k2", "k1", "k2", "k4", "k2", "k5"]
    assert group_keys(keys, [None] * 6) == keys  # without subjects: the text keys unchanged
