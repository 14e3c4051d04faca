"""The probes' scorer predicts a record the way the trainer laid it out: text tokens, then its end."""

from __future__ import annotations

import json

from appliance.probes.scoring import LikelihoodScorer


class _Words:
    """A tokenizer stand-in: the scorer's layout logic only needs ids."""

    def tokenize(self, text: str, add_bos: bool = False) -> list[int]:
        return [100 + len(w) for w in text.split()]


def _scorer(meta: dict) -> LikelihoodScorer:
    row = {"meta": json.dumps({"end_token_id": 2, "max_text_tokens": 3, **meta})}
    return LikelihoodScorer.from_prompt(_Words(), None, row)  # type: ignore[arg-type]


def test_a_record_ends_with_the_end_token_or_the_prompts_end_text() -> None:
    assert _scorer({}).record_ids("a bb") == [101, 102, 2]
    assert _scorer({"end_text": "END MARK"}).record_ids("a bb") == [101, 102, 103, 104]
    assert _scorer({"end_text": "END"}).record_ids("a bb ccc dddd") == [101, 102, 103]  # cut: no end


def test_the_label_context_reads_the_prompts_label_descriptions() -> None:
    """Curation's label check and the probes score each label's context as the trainer built it."""
    from appliance.generate.prompts import PromptMeta

    meta = {"label_template": "About {label_description}:", "label_descriptions": {"pin_blocked": "a b"}}
    scorer = _scorer(meta)
    assert scorer.context_ids("pin_blocked") == [105, 101, 102]  # "About a b:"
    assert scorer.context_ids("card_arrival") == [105, 104, 108]  # no description: "About card arrival:"
    assert PromptMeta.parse(json.dumps(meta)).label_descriptions == {"pin_blocked": "a b"}
