"""The training layout (contract 3): context, targets, truncation, right padding, empty Poisson batches."""

from __future__ import annotations

import torch

from appliance.train.layout import Layout, build_examples, collate


def _encode(text: str) -> list[int]:
    """A word-level stand-in tokenizer: the layout logic only needs ids."""
    return [100 + len(w) for w in text.split()]


def _layout(**kw) -> Layout:
    base = {"k": 4, "bos_id": None, "eos_id": 2, "suffix_text": "", "label_template": None, "max_text_tokens": 5}
    return Layout(**{**base, **kw})


def test_unlabelled_examples_predict_text_and_end_token() -> None:
    ex = build_examples(_encode, _layout(), ["a bb ccc"], [None])[0]
    assert ex.ids == (101, 102, 103, 2)
    assert ex.n_context == 0


def test_suffix_and_label_prefix_are_context_not_targets() -> None:
    lay = _layout(suffix_text="x y", label_template="Label: {label}")
    unl = build_examples(_encode, lay, ["a bb"], [None])[0]
    assert unl.ids[: unl.n_context] == (101, 101) and unl.ids[unl.n_context :] == (101, 102, 2)
    lab = build_examples(_encode, lay, ["a bb"], ["card_arrival"])[0]
    assert lab.ids[: lab.n_context] == tuple(_encode("Label: card_arrival"))
    assert lay.context_text("refund") == "Label: refund"


def test_truncated_text_has_no_end_token() -> None:
    ex = build_examples(_encode, _layout(max_text_tokens=3), ["a b c d e f"], [None])[0]
    assert ex.ids == (101, 101, 101)


def test_collate_pads_right_and_masks_targets() -> None:
    lay = _layout(suffix_text="s")
    exs = build_examples(_encode, lay, ["a bb ccc", "a"], [None, None])
    b = collate(exs)
    assert b.input_ids.tolist() == [[101, 101, 102, 103, 2], [101, 101, 2, 0, 0]]
    assert b.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert b.target_mask.tolist() == [[False, True, True, True, True], [False, True, True, False, False]]


def test_empty_poisson_batch() -> None:
    b = collate([])
    assert len(b) == 0 and b.input_ids.shape == (0, 0) and b.target_mask.dtype == torch.bool


def test_meta_carries_the_contract_keys() -> None:
    lay = _layout(bos_id=2, label_template="L: {label}\n")
    meta = lay.meta(["a", "b"])
    assert meta["prefix_text"] == "" and meta["suffix_text"] == ""
    assert meta["label_template"] == "L: {label}\n" and meta["labels"] == ["a", "b"]
    assert meta["prefix_bos"] is True and meta["end_token_id"] == 2
    assert lay.offset == 5
    unl = _layout().meta(None)
    assert unl["label_template"] is None and unl["labels"] is None and unl["prefix_bos"] is False


def test_an_end_text_ends_the_record_instead_of_the_end_token() -> None:
    """training.end_text: the record ends as the public prior would end it (its tokens are targets); a cut
    text still has no end; the prompt's meta carries the text, so generation stops at it."""
    lay = _layout(end_text="END MARK", suffix_text="s")
    ex = build_examples(_encode, lay, ["a bb"], [None])[0]
    assert ex.ids == (101, 101, 102, 103, 104)  # context "s", text "a bb", then "END MARK", no eos (2)
    b = collate([ex])
    assert b.target_mask.tolist() == [[False, True, True, True, True]]
    assert build_examples(_encode, _layout(end_text="END", max_text_tokens=2), ["a b c"], [None])[0].ids == (101, 101)
    assert lay.meta(None)["end_text"] == "END MARK" and _layout().meta(None)["end_text"] == ""


def test_label_descriptions_fill_the_template_and_travel_in_the_meta() -> None:
    """training.label_descriptions: the operator's public description of a label stands for
    {label_description}; a label without one reads as its words; the meta keeps the prompt's labels' ones."""
    lay = _layout(
        label_template="About {label_description}:",
        label_descriptions={"card_arrival": "a new card that has not come", "other": "not in this dataset"},
    )
    assert lay.context_text("card_arrival") == "About a new card that has not come:"
    assert lay.context_text("pin_blocked") == "About pin blocked:"
    meta = lay.meta(["card_arrival", "pin_blocked"])
    assert meta["label_descriptions"] == {"card_arrival": "a new card that has not come"}


def test_label_descriptions_are_validated_by_the_policy() -> None:
    import pytest
    from pydantic import ValidationError

    from appliance.policy.schema import TrainingPolicy

    ok = TrainingPolicy(label_template="About {label_description}:", label_descriptions={"a": "one line"})
    assert ok.label_descriptions == {"a": "one line"}
    for bad in ({"a": ""}, {"a": "two\nlines"}, {"a": "x" * 201}, {" ": "text"}):
        with pytest.raises(ValidationError, match="label_descriptions"):
            TrainingPolicy(label_descriptions=bad)
    with pytest.raises(ValidationError, match="label_description"):
        TrainingPolicy(label_template="About {label_meaning}:")


def test_for_training_reads_the_policy_section_the_trainer_uses() -> None:
    """Layout.for_training: the trainer's and the benchmarks' one way from a policy's training section and a model's
    BOS/end ids to a layout; unlabelled data drops the label template, the DP keywords come from the run."""
    from types import SimpleNamespace

    from appliance.policy.schema import TrainingPolicy

    t = TrainingPolicy(
        label_template="About {label_description}: {label_keywords}",
        label_descriptions={"card_arrival": "a new card"},
        suffix_text="Message:",
        end_text="\n",
        max_seq_tokens=24,
    )
    lm = SimpleNamespace(bos_id=1, eos_id=2)
    lay = Layout.for_training(t, lm, k=6, labelled=True, label_keywords={"card_arrival": ["arrive", "mail"]})
    assert (lay.k, lay.bos_id, lay.eos_id, lay.offset, lay.max_text_tokens) == (6, 1, 2, 7, 24)
    assert (lay.suffix_text, lay.end_text) == ("Message:", "\n")
    assert lay.context_text("card_arrival") == "About a new card:  (arrive, mail)"
    plain = Layout.for_training(t, lm, k=6, labelled=False)
    assert plain.label_template is None and plain.label_keywords == {}
    assert plain.context_text("card_arrival") == "Message:"
