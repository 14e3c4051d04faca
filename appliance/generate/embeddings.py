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


def _field_str(reader: object, key: str) -> str | None:
    fld = reader.fields.get(key)  # type: ignore[attr-defined]
    if fld is None:
        return None
    return bytes(fld.parts[fld.data[0]]).decode("utf-8", "replace")


def token_embeddings(model_path: Path, ids: Sequence[int]) -> np.ndarray:
    """Rows ``ids`` of the model's input embedding table as float32 ``(len(ids), n_embd)``."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(str(model_path), "r")
    tensor = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
    if tensor is None:
        raise BadInput(f"{Path(model_path).name} has no token_embd.weight tensor")
    rows = np.asarray(tensor.data)[np.asarray(ids, dtype=np.int64)]
    emb = np.asarray(dequantize(rows, tensor.tensor_type), dtype=np.float32).reshape(len(ids), -1)
    arch = _field_str(reader, "general.architecture") or ""
    if arch.startswith("gemma"):
        emb = emb * np.float32(np.sqrt(emb.shape[1]))
    return np.ascontiguousarray(emb)
