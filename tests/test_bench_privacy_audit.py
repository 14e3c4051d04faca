"""The one-run audit's arithmetic (bench/privacy_audit.py): bounds from guess counts, and the score ranking."""

from __future__ import annotations

import importlib.util
import math
import random
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "privacy_audit.py"


@pytest.fixture(scope="module")
def pa() -> ModuleType:
    spec = importlib.util.spec_from_file_location("privacy_audit", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_all_guesses_right_bound_matches_closed_form(pa: ModuleType) -> None:
    # r = k: P[Bin(k, p) >= k] = p^k = beta, so p = beta^(1/k) and eps = log(p / (1 - p))
    k, beta = 20, 0.05
    p = beta ** (1 / k)
    assert pa.eps_lower_bound(k, k, beta) == pytest.approx(math.log(p / (1 - p)), abs=1e-6)


def test_chance_level_guesses_give_no_bound(pa: ModuleType) -> None:
    assert pa.eps_lower_bound(40, 20, 0.05) == 0.0
    assert pa.eps_lower_bound(0, 0, 0.05) == 0.0


def test_more_right_guesses_never_lower_the_bound(pa: ModuleType) -> None:
    bounds = [pa.eps_lower_bound(40, r, 0.05) for r in range(20, 41)]
    assert bounds == sorted(bounds) and bounds[-1] > 2.0


def test_audit_separable_scores_and_random_scores(pa: ModuleType) -> None:
    member = [i % 2 == 0 for i in range(80)]
    perfect = [float(m) + i * 1e-3 for i, m in enumerate(member)]
    best = pa.audit(perfect, member, [5, 10, 20, 40])
    assert best["correct"] == best["k"] == 80 and best["eps_lower"] > 2.0
    rng = random.Random(0)
    noise = [rng.random() for _ in member]
    assert pa.audit(noise, member, [5, 10, 20, 40])["eps_lower"] < 1.0
    assert pa.score_auc(perfect, member) == 1.0
    assert pa.score_auc([1.0] * 80, member) == 0.5
