"""The batched engine on the real SmolLM2 model: KV-prefix sharing, determinism, stops, limits, cleanup."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.errors import BadInput
from appliance.generate.backend import Job, Prefix, SamplingParams
from appliance.generate.embeddings import token_embeddings
from appliance.generate.llama import LlamaCppBackend
from appliance.models.registry import verified_path

pytestmark = pytest.mark.slow

INSTRUCTION = "Write a short note about the weather in the city today."
SUFFIX = "\nNote:"


@pytest.fixture(scope="module")
def model_path() -> Path:
    return verified_path("smollm2-135m")[1]


@pytest.fixture(scope="module")
def be(model_path: Path) -> Iterator[LlamaCppBackend]:
    with LlamaCppBackend(model_path, n_ctx=512, n_seq_max=8, n_threads=1) as backend:
        yield backend


@pytest.fixture(scope="module")
def soft(be: LlamaCppBackend, model_path: Path) -> np.ndarray:
    return token_embeddings(model_path, be.tokenize(INSTRUCTION, add_bos=False))


def _prefix(be: LlamaCppBackend, soft: np.ndarray, key: str = "p", suffix: str = SUFFIX) -> Prefix:
    return Prefix(key=key, tokens=tuple(be.tokenize(suffix, add_bos=False)), soft_prompt=soft)


GREEDY = SamplingParams(temperature=0.0, repeat_penalty=1.0, max_tokens=12, stop=())
SAMPLED = SamplingParams(temperature=0.9, top_p=0.95, top_k=50, min_p=0.05, repeat_penalty=1.1, max_tokens=16)


def _run(be: LlamaCppBackend, jobs: list[Job], params: SamplingParams, batch: int) -> dict[int, list[int]]:
    return {c.index: c.tokens for c in be.generate(jobs, params, batch=batch)}


def test_greedy_batched_equals_teacher_forced_argmax(be: LlamaCppBackend, soft: np.ndarray) -> None:
    """Every slot that got the prefix by KV copy decodes exactly what step-by-step argmax gives."""
    p = _prefix(be, soft)
    out = _run(be, [Job(i, p, seed=i) for i in range(4)], GREEDY, batch=4)
    ref: list[int] = []
    for _ in range(GREEDY.max_tokens):
        logits = be.prompt_logits(soft, list(p.tokens) + ref)
        nxt = int(np.argmax(logits[-1]))
        if nxt in be.eog_set:
            break
        ref.append(nxt)
    assert all(tokens == ref for tokens in out.values()), (out, ref)


def test_same_seed_same_outputs_and_seeds_matter(be: LlamaCppBackend, soft: np.ndarray) -> None:
    p = _prefix(be, soft)
    jobs = [Job(i, p, seed=100 + i) for i in range(6)]
    first, second = _run(be, jobs, SAMPLED, batch=3), _run(be, jobs, SAMPLED, batch=3)
    assert first == second
    other = _run(be, [Job(i, p, seed=900 + i) for i in range(6)], SAMPLED, batch=3)
    assert other != first
    assert len({tuple(t) for t in first.values()}) > 1  # different seeds inside one batch diverge


def test_outputs_do_not_depend_on_batch_size(be: LlamaCppBackend, soft: np.ndarray) -> None:
    p = _prefix(be, soft)
    jobs = [Job(i, p, seed=7 + i) for i in range(8)]
    assert _run(be, jobs, SAMPLED, batch=1) == _run(be, jobs, SAMPLED, batch=8)


def _guide(be: LlamaCppBackend) -> Prefix:
    """The prior the soft prompt is contrasted with: the instruction as text tokens, then the same suffix."""
    return Prefix(key="g", tokens=tuple(be.tokenize(INSTRUCTION + SUFFIX, add_bos=False)))


def _forced_guided(be: LlamaCppBackend, main: Prefix, guides: tuple[Prefix, ...], params: SamplingParams) -> list[int]:
    """Greedy tokens by teacher forcing: each step's argmax of ``main``'s row guided by the ``guides``' rows, every
    row scored from scratch after its own prefix (its soft prompt, if any, then its tokens) and the tokens so far."""
    from appliance.generate.sampling import guided_logits

    ref: list[int] = []
    for _ in range(params.max_tokens):
        rows = [be.prompt_logits(p.soft_prompt, list(p.tokens) + ref)[-1:] for p in (main, *guides)]
        nxt = int(np.argmax(guided_logits(rows[0], rows[1:], params.guidance, params.min_p)[0]))
        if nxt in be.eog_set:
            break
        ref.append(nxt)
    return ref


def test_guided_greedy_equals_teacher_forced_guided_argmax(be: LlamaCppBackend, soft: np.ndarray) -> None:
    """With guidance every slot decodes its guide beside it: greedy tokens are the argmax of the two
    teacher-forced rows combined, with the guide's KV copied between slots like the prefix's."""
    p, g = _prefix(be, soft[:6]), _guide(be)
    params = SamplingParams(**{**GREEDY.__dict__, "guidance": 1.5, "min_p": 0.05})
    out = _run(be, [Job(i, p, seed=i, guides=(g,)) for i in range(3)], params, batch=3)
    ref = _forced_guided(be, p, (g,), params)
    plain = _run(be, [Job(0, p, seed=0)], GREEDY, batch=1)[0]
    assert all(tokens == ref for tokens in out.values()), (out, ref)
    assert ref != plain  # guidance changed what was written


def test_label_contrast_greedy_equals_the_teacher_forced_contrast(be: LlamaCppBackend, soft: np.ndarray) -> None:
    """Guides that are other labels' prefixes (the same soft prompt, another label's text) decode beside each
    slot; greedy tokens are the argmax of the own row against the guides' teacher-forced rows, for one guide (what
    contrast "labels" runs) and for two (the mean of their distributions)."""
    own, x, y = (_prefix(be, soft[:6], key, suffix=f"\nTopic: {t}\nNote:") for key, t in
                 (("own", "rain"), ("x", "sun"), ("y", "snow")))  # fmt: skip
    params = SamplingParams(**{**GREEDY.__dict__, "guidance": 1.0, "min_p": 0.05, "contrast": "labels"})
    plain = _run(be, [Job(0, own, seed=0)], GREEDY, batch=1)[0]
    for guides in ((x,), (x, y)):
        out = _run(be, [Job(i, own, seed=i, guides=guides) for i in range(3)], params, batch=2)
        ref = _forced_guided(be, own, guides, params)
        assert all(tokens == ref for tokens in out.values()), (guides, out, ref)
        assert ref != plain  # the contrast changed what was written
    with pytest.raises(BadInput, match="3 sequences per output"):
        _run(be, [Job(i, own, seed=i, guides=(x, y)) for i in range(3)], params, batch=3)  # 9 > the backend's 8


def test_a_guide_shares_its_kv_with_jobs_whose_prefix_it_is(be: LlamaCppBackend, soft: np.ndarray) -> None:
    """What contrast "labels" runs: one label's prefix is another label's guide (the same key, so the scheduler
    copies KV between them). Jobs alternating (own | x) and (x | own) over two slots each give what teacher
    forcing gives for their own pair."""
    own, x = (_prefix(be, soft[:6], key, suffix=f"\nTopic: {t}\nNote:") for key, t in (("own", "rain"), ("x", "sun")))
    params = SamplingParams(**{**GREEDY.__dict__, "guidance": 1.0, "min_p": 0.05, "contrast": "labels"})
    jobs = [Job(i, own, seed=i, guides=(x,)) if i % 2 == 0 else Job(i, x, seed=i, guides=(own,)) for i in range(5)]
    out = _run(be, jobs, params, batch=2)
    expect = {0: _forced_guided(be, own, (x,), params), 1: _forced_guided(be, x, (own,), params)}
    assert all(out[j.index] == expect[j.index % 2] for j in jobs), (out, expect)
    assert expect[0] != expect[1]


def test_guided_outputs_do_not_depend_on_batch_size(be: LlamaCppBackend, soft: np.ndarray) -> None:
    p, g = _prefix(be, soft[:6]), _guide(be)
    params = SamplingParams(**{**SAMPLED.__dict__, "guidance": 1.0})
    jobs = [Job(i, p, seed=7 + i, guides=(g,)) for i in range(6)]
    assert _run(be, jobs, params, batch=1) == _run(be, jobs, params, batch=4)
    with pytest.raises(BadInput, match="with guidance"):
        _run(be, jobs, params, batch=5)  # 5 jobs x 2 sequences > the backend's 8


def test_mixed_prefixes_share_and_switch_kv(be: LlamaCppBackend, soft: np.ndarray) -> None:
    """Jobs with two different prefixes through 3 slots give what each job gives on its own."""
    a, b = _prefix(be, soft, "a"), _prefix(be, soft[:5], "b", suffix="\nTitle:")
    jobs = [Job(i, a if i % 3 else b, seed=i) for i in range(7)]
    together = _run(be, jobs, GREEDY, batch=3)
    alone = {j.index: _run(be, [j], GREEDY, batch=1)[j.index] for j in jobs}
    assert together == alone
    assert together[0] != together[1]


def test_stop_strings_and_max_tokens(be: LlamaCppBackend, soft: np.ndarray) -> None:
    p = _prefix(be, soft)
    free = next(iter(be.generate([Job(0, p, seed=1)], GREEDY, batch=1)))
    assert free.n_tokens > 3
    stop = free.text[len(free.text) // 2 :][:3]
    cut = next(iter(be.generate([Job(0, p, seed=1)], SamplingParams(**{**GREEDY.__dict__, "stop": (stop,)}), batch=1)))
    assert cut.finish_reason == "stop"
    assert stop not in cut.text and free.text.startswith(cut.text)
    short = next(iter(be.generate([Job(0, p, seed=1)], SamplingParams(**{**GREEDY.__dict__, "max_tokens": 3}))))
    assert short.n_tokens == 3 and short.finish_reason == "length"


def test_ignore_eos_runs_to_max_tokens(be: LlamaCppBackend, soft: np.ndarray) -> None:
    params = SamplingParams(**{**SAMPLED.__dict__, "max_tokens": 40, "ignore_eos": True})
    out = list(be.generate([Job(i, _prefix(be, soft), seed=i) for i in range(3)], params, batch=3))
    assert [c.n_tokens for c in out] == [40, 40, 40]


def test_bad_requests(be: LlamaCppBackend, soft: np.ndarray) -> None:
    with pytest.raises(BadInput, match="shape"):
        list(be.generate([Job(0, Prefix(key="w", soft_prompt=soft[:, :100]), seed=0)], GREEDY))
    with pytest.raises(BadInput, match="context"):
        list(be.generate([Job(0, _prefix(be, soft), seed=0)], SamplingParams(max_tokens=600)))
    with pytest.raises(BadInput, match="batch"):
        list(be.generate([Job(0, _prefix(be, soft), seed=0)], GREEDY, batch=9))


def test_close_frees_the_model(model_path: Path) -> None:
    be = LlamaCppBackend(model_path, n_ctx=256, n_seq_max=2, n_threads=1)
    be.prompt_logits(None, be.tokenize("hello", add_bos=False))
    be.close()
    with pytest.raises(RuntimeError, match="closed"):
        list(be.generate([Job(0, Prefix(key="x", tokens=(1, 2)), seed=0)], GREEDY))
