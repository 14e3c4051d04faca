"""The soft prompt a batch was generated from, as curation's prompt-dependent steps read it.

One lookup for the label check and the prompt-echo filter (:mod:`appliance.curate.run`) and the DP selection
(:mod:`appliance.curate.dp_selection`): a few-shot batch has none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from appliance.context import Context
from appliance.store import prompts

if TYPE_CHECKING:
    from appliance.generate.prompts import PromptMeta


def soft_prompt(ctx: Context, batch: dict[str, Any]) -> tuple[dict[str, Any] | None, PromptMeta] | None:
    """(prompt row — None when it is missing —, its parsed meta) for a soft-prompt batch; None for a few-shot one."""
    if batch.get("mode") != "softprompt" or not batch.get("prompt_id"):
        return None
    from appliance.generate.prompts import PromptMeta

    prompt = prompts.get(ctx.db, batch["prompt_id"])
    return prompt, PromptMeta.parse((prompt or {}).get("meta"))


def soft_prompt_row(ctx: Context, batch: dict[str, Any]) -> dict[str, Any] | None:
    """The prompt row of a soft-prompt batch; None for a few-shot batch or a missing row."""
    soft = soft_prompt(ctx, batch)
    return None if soft is None else soft[0]
