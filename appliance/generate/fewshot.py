"""The few-shot hard-prompt baseline: k training seeds pasted into the prompt as examples.

This is the baseline the DP soft prompt has to beat, and it is not private: the (redacted) seed texts are
in the model's input, so outputs can copy them. Batches made this way are never exportable and their
audit events say ``raw_seeds_in_prompt: true``. Examples come from the training split only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sqlite_utils

from appliance.errors import BadInput
from appliance.generate.backend import GenerationBackend
from appliance.generate.jobs import Prefix
from appliance.store import datasets


def train_examples(db: sqlite_utils.Database, dataset: str, label: str | None) -> list[tuple[int, str]]:
    """(record id, text) of the dataset's training records (of ``label`` when given), in id order."""
    found = datasets.split_rows(db, dataset, "train", label=label, select="id, text")
    return [(int(r["id"]), str(r["text"])) for r in found]


def pick(pool: Sequence[tuple[int, str]], k: int, seed: int) -> list[tuple[int, str]]:
    """``k`` distinct examples drawn with the job's own seed (fewer if the pool is smaller)."""
    if not pool:
        raise BadInput("the dataset has no training records to use as few-shot examples")
    rng = np.random.default_rng([seed, 0x5EED])
    chosen = rng.choice(len(pool), size=min(k, len(pool)), replace=False)
    return [pool[int(i)] for i in chosen]


def instruction(examples: Sequence[str], label: str | None) -> str:
    about = f" labelled {label!r}" if label is not None else ""
    shown = "\n\n".join(f"Example {i + 1}:\n{text.strip()}" for i, text in enumerate(examples))
    return (
        f"Here are {len(examples)} example texts{about} from a dataset.\n\n{shown}\n\n"
        f"Write one new text{about} in the same style and format. Reply with the text only."
    )


def fewshot_prefix(backend: GenerationBackend, examples: Sequence[str], label: str | None, key: str) -> Prefix:
    """The prompt as the model's chat template renders it, or a plain completion prompt if it has none."""
    text = instruction(examples, label)
    chat = backend.chat_prompt([("user", text)])
    if chat is not None:
        ids = backend.tokenize(chat, add_bos=False, special=True)
        if ids and ids[0] == backend.bos_token_id:  # the template wrote BOS itself
            return Prefix(key=key, tokens=tuple(ids[1:]))
        return Prefix(key=key, tokens=tuple(ids))
    plain = f"{text}\n\nExample {len(examples) + 1}:\n"
    return Prefix(key=key, tokens=tuple(backend.tokenize(plain, add_bos=False)))
