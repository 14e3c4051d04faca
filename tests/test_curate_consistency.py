"""Label consistency (curate/consistency.py): the DP generator's own class posterior, pure decision + scoring."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from appliance.curate.consistency import consistent, score_labels
from appliance.curate.decide import OFF_LABEL, decide
from appliance.policy.schema import CurationPolicy


def test_consistent_is_the_argmax_of_the_generators_own_scores() -> None:
    scores = np.array([[-10.0, -12.0, -15.0], [-10.0, -9.0, -15.0], [-7.0, -7.0, -20.0], [-30.0, -31.0, -29.5]])
    assert consistent(scores, [0, 0, 0, 2]) == [True, False, False, True]  # a tie is not consistent
    assert consistent(scores, [0, 0, 0, 2], margin=1.0) == [True, False, False, False]  # 0.5 nats is not > 1
    assert consistent(np.zeros((2, 1)), [0, 0]) == [True, True]  # one label: nothing to confuse it with
    with pytest.raises(ValueError):
        consistent(scores, [0])


class _Scorer:
    """Log-probabilities that favour the label whose name occurs in the text (a stand-in for the LLM)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def logprobs_many(
        self, texts: Sequence[str], labels: Sequence[str | None], *, with_prompt: bool = True
    ) -> list[np.ndarray]:
        assert with_prompt, "the check must score with the trained (DP) prompt"
        self.calls.append(tuple(str(x) for x in labels))
        return [np.array([-1.0, -1.0 if lab in t else -3.0]) for t, lab in zip(texts, labels, strict=True)]


def test_score_labels_scores_every_text_under_every_label() -> None:
    scorer = _Scorer()
    texts = ["my card is lost", "what is the rate", "my pin is blocked"]
    s = score_labels(scorer, texts, ["card", "rate", "pin"])
    assert s.shape == (3, 3) and len(scorer.calls) == 3
    assert s.argmax(axis=1).tolist() == [0, 1, 2]
    assert consistent(s, [0, 0, 2]) == [True, False, True]


def test_decide_leaves_the_label_check_to_curate_batch() -> None:
    """The costly check runs after the DP selection (tests/test_curate_run.py); decide never drops off-label."""
    texts = ["Where is my new card?", "Hi", "Why was I charged for the cash?", "Where is my new card?"]
    reasons = decide(texts, pii=[0] * 4, policy=CurationPolicy())
    assert reasons == [None, "too_short", None, "exact_duplicate"] and OFF_LABEL not in reasons
    with pytest.raises(ValueError):
        decide(texts, pii=[0], policy=CurationPolicy())
