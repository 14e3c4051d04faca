"""A real (tiny, randomly initialised) Llama from transformers, frozen like the trainer's model: for the tests of
DP steps and gradients that need a language model but not the shipped weights."""

from __future__ import annotations

from typing import Any

import torch


def tiny_lm(*, hidden: int = 16, tie: bool = False) -> Any:
    """A FrozenLM over a 2-layer Llama with a 64-token vocabulary and ``hidden`` dimensions (seeded)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from appliance.train.lm import FrozenLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                      tie_word_embeddings=tie)  # fmt: skip
    model = LlamaForCausalLM(cfg).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return FrozenLM(model, None, "tiny", "sha256:" + "0" * 64, None, add_bos=False)
