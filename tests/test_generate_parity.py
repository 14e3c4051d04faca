"""Soft-prompt injection parity: a text's own token embeddings, fed as raw embeddings, act like the text.

The embeddings are dequantized from the GGUF's ``token_embd`` tensor with the ``gguf`` package (times
sqrt(n_embd) for Gemma, HF's ``inputs_embeds`` convention). Measured on this build: bit-identical logits
for both models (max |Δlogit| = 0). Tolerance asserted, per position after the injected text: same arg-max
token, max |Δlogit| <= 1e-3 (logits span ~50), KL(tokens ‖ embeddings) <= 1e-6 nats.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from appliance.generate.backend import Job, Prefix, SamplingParams
from appliance.generate.embeddings import token_embeddings
from appliance.generate.llama import LlamaCppBackend
from appliance.models.registry import get_spec, locate, verified_path

pytestmark = pytest.mark.slow

TEXT = "The invoice for order 4471 was sent to the customer on Monday, and the payment"
TAIL = " arrived two days later. The support team closed the ticket after"
MAX_DLOGIT = 1e-3
MAX_KL = 1e-6


@pytest.fixture(scope="module", params=["smollm2-135m", "gemma3-270m"])
def model(request: pytest.FixtureRequest) -> Iterator[tuple[str, object, LlamaCppBackend]]:
    if locate(get_spec(request.param)) is None:
        pytest.skip(f"{request.param} not fetched (run `make models`)")
    _, path, _ = verified_path(request.param)
    with LlamaCppBackend(path, n_ctx=256, n_seq_max=4, n_threads=1) as be:
        yield request.param, path, be


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def test_embedded_text_gives_the_logits_of_the_text(model: tuple[str, object, LlamaCppBackend]) -> None:
    name, path, be = model
    head = be.tokenize(TEXT, add_bos=False)
    tail = be.tokenize(TAIL, add_bos=False)
    emb = token_embeddings(path, head)  # type: ignore[arg-type]
    assert emb.shape == (len(head), be.n_embd)

    via_tokens = be.prompt_logits(None, head + tail)[len(head) :]
    via_embd = be.prompt_logits(emb, tail)
    assert via_embd.shape == via_tokens.shape == (len(tail), be.n_vocab)

    assert (via_embd.argmax(-1) == via_tokens.argmax(-1)).all(), name
    assert float(np.abs(via_embd - via_tokens).max()) <= MAX_DLOGIT, name
    lp, lq = _log_softmax(via_tokens), _log_softmax(via_embd)
    kl = (np.exp(lp) * (lp - lq)).sum(-1)
    assert float(kl.max()) <= MAX_KL, (name, kl.max())


def test_bos_and_prefix_bos_flag(model: tuple[str, object, LlamaCppBackend]) -> None:
    name, _, be = model
    ids = be.tokenize(TEXT, add_bos=False)
    with_bos = be.prompt_logits(None, ids)
    without = be.prompt_logits(None, ids, prefix_bos=False)
    if be.bos_token_id is None:
        np.testing.assert_array_equal(with_bos, without)
    else:
        assert name.startswith("gemma")
        assert be.tokenize(TEXT, add_bos=True) == [be.bos_token_id, *ids]
        assert not np.allclose(with_bos, without)


def test_greedy_after_embedded_text_continues_like_the_text(model: tuple[str, object, LlamaCppBackend]) -> None:
    _, path, be = model
    head = be.tokenize(TEXT, add_bos=False)
    greedy = SamplingParams(temperature=0.0, repeat_penalty=1.0, max_tokens=10)
    by_text = next(iter(be.generate([Job(0, Prefix("t", tokens=tuple(head)), seed=0)], greedy, batch=1)))
    soft = token_embeddings(path, head)  # type: ignore[arg-type]
    jobs = [Job(i, Prefix("e", soft_prompt=soft), seed=i) for i in range(3)]
    by_embd = list(be.generate(jobs, greedy, batch=3))
    assert all(c.tokens == by_text.tokens for c in by_embd)
