"""The few-shot baseline's pieces: examples from the training split only, seeded picks, the chat template."""

from __future__ import annotations

from pathlib import Path

import pytest
from _generate_data import TICKETS, add_dataset

from appliance.config import Workspace
from appliance.context import Context
from appliance.errors import BadInput
from appliance.generate.fewshot import fewshot_prefix, instruction, pick, train_examples
from appliance.generate.llama import LlamaCppBackend
from appliance.models.registry import verified_path


def test_examples_come_from_the_training_split_only(workspace: Path) -> None:
    add_dataset(workspace, "t", TICKETS, ["a" if i % 2 else "b" for i in range(len(TICKETS))])
    ctx = Context.open(Workspace.resolve(workspace))
    try:
        pool = train_examples(ctx.db, "t", None)
        holdout = {r[0] for r in ctx.db.conn.execute("SELECT id FROM records WHERE split = 'holdout'")}
        assert len(pool) == 8 and holdout and not holdout & {i for i, _ in pool}
        assert {t for _, t in train_examples(ctx.db, "t", "a")} <= {TICKETS[i] for i in range(1, 10, 2)}
    finally:
        ctx.close()


def test_pick_is_seeded_distinct_and_bounded() -> None:
    pool = [(i, f"text {i}") for i in range(20)]
    assert pick(pool, 4, seed=1) == pick(pool, 4, seed=1)
    assert pick(pool, 4, seed=1) != pick(pool, 4, seed=2)
    assert len({i for i, _ in pick(pool, 4, seed=3)}) == 4
    assert len(pick(pool[:2], 5, seed=3)) == 2
    with pytest.raises(BadInput, match="no training records"):
        pick([], 3, seed=0)


@pytest.mark.slow
def test_prefix_uses_the_chat_template_with_special_tokens() -> None:
    text = instruction(["first example", "second example"], "billing")
    assert "Example 2:\nsecond example" in text and "'billing'" in text
    with LlamaCppBackend(verified_path("smollm2-135m")[1], n_ctx=256, n_threads=1) as be:
        prefix = fewshot_prefix(be, ["first example", "second example"], None, key="k")
        im_start = be.tokenize("<|im_start|>", add_bos=False, special=True)
        assert len(im_start) == 1 and prefix.tokens[0] == im_start[0]
        assert "second example" in be.detokenize(prefix.tokens)
        assert be.detokenize(prefix.tokens).rstrip().endswith("assistant")
