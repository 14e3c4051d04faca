"""Token embeddings read straight from a GGUF file (``token_embd.weight``, dequantized with ``gguf``).

Returned rows are in HF ``inputs_embeds`` space, the space soft prompts live in: for the Gemma family that
includes the sqrt(n_embd) factor llama.cpp applies to token input. Used to build reference soft prompts
(a text's own embeddings must behave exactly like the text) and to initialise prompts without torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from appliance.errors import BadInput
from appliance.generate.ggufinfo import read_header, tensor_rows


def token_embeddings(model_path: Path, ids: Sequence[int]) -> np.ndarray:
    """Rows ``ids`` of the model's input embedding table as float32 ``(len(ids), n_embd)``."""
    header = read_header(Path(model_path))
    info = header.tensors.get("token_embd.weight")
    if info is None:
        raise BadInput(f"{Path(model_path).name} has no token_embd.weight tensor")
    emb = tensor_rows(Path(model_path), info, np.asarray(ids, dtype=np.int64))
    if header.architecture.startswith("gemma"):
        emb = emb * np.float32(np.sqrt(emb.shape[1]))
    return np.ascontiguousarray(emb)
