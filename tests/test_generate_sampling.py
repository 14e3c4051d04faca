"""The numpy sampler: golden cases for each filter, and the empirical distribution of the draw."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from appliance.generate.backend import SamplingParams
from appliance.generate.sampling import apply_repeat_penalty, candidates, keep_sorted, sample_rows

PROBS = np.array([0.5, 0.3, 0.15, 0.05])
LOGITS = np.log(PROBS).astype(np.float32)


def _params(**kw: object) -> SamplingParams:
    base = {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}
    return SamplingParams(**{**base, **kw})  # type: ignore[arg-type]


def test_repeat_penalty_divides_positive_and_multiplies_negative() -> None:
    x = np.array([[2.0, -2.0, 1.0], [2.0, -2.0, 1.0]], dtype=np.float32)
    apply_repeat_penalty(x, [[0, 1, 0], []], penalty=2.0, last_n=64)
    np.testing.assert_allclose(x, [[1.0, -4.0, 1.0], [2.0, -2.0, 1.0]])


def test_repeat_penalty_only_looks_at_last_n() -> None:
    x = np.array([[2.0, 2.0, 2.0]], dtype=np.float32)
    apply_repeat_penalty(x, [[0, 1, 2]], penalty=2.0, last_n=1)
    np.testing.assert_allclose(x, [[2.0, 2.0, 1.0]])


def test_candidates_min_p_prefilter_or_top_k() -> None:
    x = np.array([[0.1, 3.0, -1.0, 2.0, 2.5], [0.0, 0.0, 0.0, 0.0, 5.0]], dtype=np.float32)
    by_min_p = candidates(x, top_k=0, min_p=float(np.exp(-1.0)))  # keep logit >= max - 1
    assert [sorted(ids.tolist()) for ids, _ in by_min_p] == [[1, 3, 4], [4]]
    by_top_k = candidates(x, top_k=2, min_p=0.0)
    assert sorted(by_top_k[0][0].tolist()) == [1, 4]
    assert 4 in by_top_k[1][0].tolist() and len(by_top_k[1][0]) == 2  # a tie for second place: either zero
    everything = candidates(x, top_k=0, min_p=0.0)
    assert [len(ids) for ids, _ in everything] == [5, 5]


def test_keep_sorted_orders_by_logit_then_id() -> None:
    ids, z = keep_sorted(np.array([7, 3, 5]), np.array([1.0, 2.0, 2.0], dtype=np.float32), _params())
    assert ids.tolist() == [3, 5, 7]
    np.testing.assert_allclose(z, [0.0, 0.0, -1.0])


@pytest.mark.parametrize(
    ("top_p", "min_p", "top_k", "kept"),
    [
        (1.0, 0.0, 0, 4),
        (0.5, 0.0, 0, 1),  # 0.5 alone reaches 0.5
        (0.7, 0.0, 0, 2),  # 0.5 + 0.3 >= 0.7
        (0.81, 0.0, 0, 3),
        (1.0, 0.25, 0, 3),  # 0.15 >= 0.25 * 0.5; 0.05 is not
        (1.0, 0.5, 0, 2),
        (0.7, 0.25, 0, 2),
        (1.0, 0.0, 2, 2),
        (0.9, 0.0, 3, 3),  # renormalised over the top 3: mass before the 3rd = 0.8 / 0.95 = 0.84 < 0.9
        (0.8, 0.0, 3, 2),  # ... but not < 0.8
    ],
)
def test_top_k_top_p_min_p_keep_the_expected_prefix(top_p: float, min_p: float, top_k: int, kept: int) -> None:
    ids, _ = keep_sorted(np.arange(4), LOGITS, _params(top_p=top_p, min_p=min_p, top_k=top_k))
    assert ids.tolist() == list(range(kept))


def test_temperature_zero_is_argmax_after_penalty() -> None:
    x = np.array([[1.0, 0.9, 0.0]], dtype=np.float32)
    out = sample_rows(x, [[0]], np.array([0.5]), _params(temperature=0.0, repeat_penalty=2.0))
    assert out.tolist() == [1]


def test_uniform_draw_maps_to_cdf() -> None:
    p = _params(top_p=0.7)  # keeps tokens 0 and 1 with renormalised probs 0.625 / 0.375
    rows = np.repeat(LOGITS[None, :], 3, axis=0)
    out = sample_rows(rows.copy(), [[], [], []], np.array([0.1, 0.6, 0.7]), p)
    assert out.tolist() == [0, 0, 1]


def test_empirical_distribution_matches_temperature_scaled_softmax() -> None:
    n = 40_000
    rng = np.random.default_rng(0)
    rows = np.repeat(LOGITS[None, :], n, axis=0)
    out = sample_rows(rows, [[] for _ in range(n)], rng.random(n), _params(temperature=2.0))
    expected = PROBS**0.5 / (PROBS**0.5).sum()
    freq = np.bincount(out, minlength=4) / n
    np.testing.assert_allclose(freq, expected, atol=0.01)


def test_rows_are_independent() -> None:
    x = np.stack([LOGITS, LOGITS[::-1]])
    out = sample_rows(x.copy(), [[], []], np.array([0.0, 0.0]), _params())
    assert out.tolist() == [0, 3]


class _Pieces:
    """A decoder that only turns token ids into text, from a table (no end token)."""

    def __init__(self, table: dict[int, bytes]) -> None:
        self.table = table

    def is_eog(self, tok: int) -> bool:
        return False

    def piece(self, tok: int) -> bytes:
        return self.table[tok]


def _one_slot(table: dict[int, bytes], stop: tuple[str, ...]) -> tuple[Any, Any]:
    """A one-slot scheduler over ``table`` with these stop strings, and its slot, ready for ``_accept``."""
    from appliance.generate.backend import Job, Prefix
    from appliance.generate.engine import Scheduler, _Slot

    sched = Scheduler(_Pieces(table), 1, None, SamplingParams(stop=stop, max_tokens=10))  # type: ignore[arg-type]
    slot = _Slot(job=Job(0, Prefix(key="k", tokens=(5,)), seed=0), plens=[1], rng=np.random.default_rng(0))
    return sched, slot


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("What's wrong with my card?\"", "What's wrong with my card?"),
        ('Is my card on its way?" \n', "Is my card on its way?"),
        ('She said "hi"', 'She said "hi"'),  # the quotes pair up
        ('"Card blocked"', '"Card blocked"'),
        ('He wrote "wait" and left"', 'He wrote "wait" and left'),
        ("no quotes at all", "no quotes at all"),
        ("Can someone help me with a top up?)", "Can someone help me with a top up?"),  # the keywords' ")"
        ("What is the exchange rate (rate)?", "What is the exchange rate (rate)?"),  # pairs up
        ("Is my card (the new one) here (yet)", "Is my card (the new one) here (yet)"),
        ("Thanks :)", "Thanks :)"),  # an emoticon closes nothing
        ("It failed :( why?)", "It failed :( why?"),
        ("a) lost b) stolen)", "a) lost b) stolen)"),  # an earlier unopened ")" too: not a stray closer, kept
    ],
)
def test_a_closing_quote_or_parenthesis_the_text_never_opened_is_not_kept(text: str, kept: str) -> None:
    from appliance.punctuation import without_unopened_closer

    assert without_unopened_closer(text) == kept


def test_a_text_that_ends_loses_its_unopened_quote_and_a_cut_off_one_keeps_it() -> None:
    sched, slot = _one_slot({1: b"Hi there", 2: b'?"', 3: b"\n"}, ("\n",))
    assert sched._accept(slot, 1) is None and sched._accept(slot, 2) is None
    done = sched._accept(slot, 3)
    assert done is not None and done.finish_reason == "stop" and done.text == "Hi there?"
    sched, slot = _one_slot({1: b'Hi there?"'}, ())
    slot.tokens.extend([0] * 9)  # one token short of max_tokens
    done = sched._accept(slot, 1)
    assert done is not None and done.finish_reason == "length" and done.text == 'Hi there?"'


def test_a_stop_string_ends_a_text_but_never_stops_one_before_it_begins() -> None:
    """Leading newlines (the model's habit after a prompt ending in a newline) do not end an empty output."""
    sched, slot = _one_slot({1: b"\n", 2: b"Hi", 3: b" there", 4: b"\nmore"}, ("\n",))
    assert sched._accept(slot, 1) is None and sched._accept(slot, 1) is None  # leading newlines: go on
    assert sched._accept(slot, 2) is None and sched._accept(slot, 3) is None
    done = sched._accept(slot, 4)
    assert done is not None and done.finish_reason == "stop" and done.text == "\n\nHi there"


def test_guided_logits_amplify_the_prompt_over_its_prior_among_plausible_tokens() -> None:
    from appliance.generate.sampling import guided_logits, log_softmax

    p = np.log(np.array([[0.5, 0.4, 0.09, 0.01]]))
    q = np.log(np.array([[0.8, 0.1, 0.05, 0.05]]))
    out = guided_logits(p.astype(np.float32), [q.astype(np.float32)], guidance=1.0, min_p=0.05)
    lp, lq = np.log([0.5, 0.4, 0.09]), np.log([0.8, 0.1, 0.05])
    np.testing.assert_allclose(out[0, :3], 2 * lp - lq, rtol=1e-5)
    assert out[0, 3] == -np.inf  # 0.01 < 0.05 * 0.5: implausible under the prompt, whatever the prior says
    assert int(np.argmax(out)) == 1  # the prior's favourite (token 0) loses to what training moved toward
    zero = guided_logits(p.astype(np.float32), [q.astype(np.float32)], guidance=0.0, min_p=0.0)
    np.testing.assert_allclose(zero[0, :3], log_softmax(p)[0, :3], rtol=1e-5)  # g = 0: p itself (cut 0.05)
    assert zero[0, 3] == -np.inf


def test_label_contrast_leans_toward_the_records_own_label_against_another() -> None:
    """contrast "labels": q is another label's distribution under the same prompt, so log p − log q is the
    log-likelihood ratio of the row's own label against it; several guides give the mean of their distributions."""
    from appliance.generate.sampling import guided_logits, log_mean_exp

    own = np.log(np.array([[0.5, 0.3, 0.2]]))
    a, b = np.log(np.array([[0.7, 0.1, 0.2]])), np.log(np.array([[0.6, 0.05, 0.35]]))
    out = guided_logits(own.astype(np.float32), [a.astype(np.float32)], 1.0, 0.0)
    np.testing.assert_allclose(out, 2 * own - a, rtol=1e-5)
    assert int(np.argmax(out)) == 1  # the token this label wants more than the other does wins over the common one
    both = guided_logits(own.astype(np.float32), [a.astype(np.float32), b.astype(np.float32)], 1.0, 0.0)
    np.testing.assert_allclose(both, 2 * own - log_mean_exp([a, b]), rtol=1e-5)
    np.testing.assert_allclose(log_mean_exp([a, b]), np.log((np.exp(a) + np.exp(b)) / 2), rtol=1e-6)
    with pytest.raises(ValueError, match="at least one guide"):
        guided_logits(own.astype(np.float32), [], 1.0, 0.0)


def test_log_mean_exp_keeps_a_token_no_distribution_allows_at_minus_infinity() -> None:
    from appliance.generate.sampling import log_mean_exp

    x = np.array([[np.log(0.5), -np.inf]])
    y = np.array([[np.log(0.25), -np.inf]])
    out = log_mean_exp([x, y])
    np.testing.assert_allclose(out[0, 0], np.log(0.375))
    assert out[0, 1] == -np.inf


class _PairDecoder:
    """A fake decoder whose next-token logits depend only on the sequence's prefix key: the soft prompt
    prefers 'a' a little, its prior prefers 'a' a lot. Records every step's (sequence, token) feed."""

    ROWS: ClassVar[dict[str, np.ndarray]] = {
        "soft": np.log(np.array([0.5, 0.4, 0.09, 0.01])),
        "prior": np.log(np.array([0.8, 0.1, 0.05, 0.05])),
    }

    def __init__(self) -> None:
        self.key: dict[int, str] = {}
        self.fed: list[list[tuple[int, int, int]]] = []

    def prefill(self, seq: int, prefix: object) -> np.ndarray:
        self.key[seq] = str(prefix.key)  # type: ignore[attr-defined]
        return self.ROWS[self.key[seq]].astype(np.float32)

    def copy(self, src: int, dst: int, keep: int) -> None:
        self.key[dst] = self.key[src]

    def truncate(self, seq: int, keep: int) -> None:
        pass

    def step(self, seqs: list[int], tokens: list[int], positions: list[int]) -> np.ndarray:
        self.fed.append(list(zip(seqs, tokens, positions, strict=True)))
        return np.stack([self.ROWS[self.key[s]] for s in seqs]).astype(np.float32)

    def piece(self, tok: int) -> bytes:
        return b"ab\n?"[tok : tok + 1]

    def is_eog(self, tok: int) -> bool:
        return tok == 3

    @property
    def eog_ids(self) -> list[int]:
        return [3]


@pytest.mark.parametrize(("guidance", "text"), [(0.0, "aaa"), (1.0, "bbb")])
def test_the_scheduler_decodes_each_guided_job_beside_its_guide(guidance: float, text: str) -> None:
    from appliance.generate.backend import Job, Prefix
    from appliance.generate.engine import Scheduler

    soft = Prefix(key="soft", tokens=(0, 0), soft_prompt=np.zeros((2, 4), dtype=np.float32), bos=False)
    prior = Prefix(key="prior", tokens=(1, 1, 1), bos=False)
    params = SamplingParams(temperature=0.0, repeat_penalty=1.0, max_tokens=3, min_p=0.05, guidance=guidance)
    dec = _PairDecoder()
    jobs = [Job(i, soft, seed=i, guides=(prior,) if guidance else ()) for i in range(3)]
    done = sorted(Scheduler(dec, 2, None, params).run(jobs), key=lambda c: c.index)  # type: ignore[arg-type]
    assert [c.text for c in done] == [text] * 3
    for feed in dec.fed:
        if guidance:  # pairs: the job's sequence (even id, prefix 4 positions) and its guide (odd id, 3)
            assert len(feed) % 2 == 0
            for (s0, t0, p0), (s1, t1, p1) in zip(feed[0::2], feed[1::2], strict=True):
                assert (s1, t1) == (s0 + 1, t0) and s0 % 2 == 0 and p0 - p1 == 1
                assert dec.key[s0] == "soft" and dec.key[s1] == "prior"
        else:
            assert all(dec.key[s] == "soft" for s, _, _ in feed)


def test_the_scheduler_decodes_each_job_beside_every_guide_and_contrasts_with_their_mean() -> None:
    """Width 1 + 2: a job and two guide prefixes are fed the same tokens, in consecutive sequences, and the token
    comes from the row contrasted with the mean of the two guides' distributions — which here picks another token
    than either guide alone would."""
    from appliance.generate.backend import Job, Prefix
    from appliance.generate.engine import Scheduler

    class _Labels(_PairDecoder):
        ROWS: ClassVar[dict[str, np.ndarray]] = {
            "own": np.log(np.array([0.34, 0.33, 0.32, 0.01])),
            "x": np.log(np.array([0.01, 0.2, 0.78, 0.01])),
            "y": np.log(np.array([0.78, 0.2, 0.01, 0.01])),
        }

    def pre(key: str) -> Prefix:
        return Prefix(key=key, tokens=(0,), soft_prompt=np.zeros((2, 4), dtype=np.float32), bos=False)

    params = SamplingParams(
        temperature=0.0, repeat_penalty=1.0, max_tokens=3, min_p=0.05, guidance=1.0, contrast="labels"
    )

    def texts(guides: tuple[Prefix, ...], dec: _Labels) -> list[str]:
        jobs = [Job(i, pre("own"), seed=i, guides=guides) for i in range(2)]
        done = Scheduler(dec, 2, None, params, guides=len(guides)).run(jobs)  # type: ignore[arg-type]
        return [c.text for c in sorted(done, key=lambda c: c.index)]

    assert texts((pre("x"),), _Labels()) == ["aaa"] * 2  # against x alone: the token x dislikes most
    assert texts((pre("y"),), _Labels()) == ["\n\n\n"] * 2  # against y alone: the token y dislikes most
    dec = _Labels()
    assert texts((pre("x"), pre("y")), dec) == ["bbb"] * 2  # against their mean: the token both give 0.2
    for feed in dec.fed:
        assert len(feed) % 3 == 0
        for (s0, t0, _), (s1, t1, _), (s2, t2, _) in zip(feed[0::3], feed[1::3], feed[2::3], strict=True):
            assert (s1, s2) == (s0 + 1, s0 + 2) and t0 == t1 == t2
            assert (dec.key[s0], dec.key[s1], dec.key[s2]) == ("own", "x", "y")
    with pytest.raises(ValueError, match="needs 2 guide prefix"):
        list(Scheduler(dec, 1, None, params, guides=2).run([Job(0, pre("own"), seed=0, guides=(pre("x"),))]))  # type: ignore[arg-type]


def test_a_guided_job_without_a_guide_is_an_error() -> None:
    from appliance.generate.backend import Job, Prefix
    from appliance.generate.engine import Scheduler

    params = SamplingParams(temperature=0.0, max_tokens=2, guidance=1.0)
    with pytest.raises(ValueError, match="needs 1 guide prefix"):
        list(Scheduler(_PairDecoder(), 1, None, params).run([Job(0, Prefix(key="soft"), seed=0)]))  # type: ignore[arg-type]


def test_an_end_token_never_ends_a_text_before_it_begins() -> None:
    """A prompt whose first choice is the end token (a DP prompt did this for one label of a public two-label
    set: every output empty) still writes a text; once the text has a word, the end token ends it."""
    from appliance.generate.backend import Job, Prefix
    from appliance.generate.engine import Scheduler

    class _EndFirst(_PairDecoder):
        ROWS: ClassVar[dict[str, np.ndarray]] = {"soft": np.log(np.array([0.3, 0.05, 0.05, 0.6]))}

    soft = Prefix(key="soft", tokens=(0,), soft_prompt=np.zeros((2, 4), dtype=np.float32), bos=False)
    params = SamplingParams(temperature=0.0, repeat_penalty=1.0, max_tokens=5, min_p=0.0)
    done = list(Scheduler(_EndFirst(), 2, None, params).run([Job(0, soft, seed=0)]))  # type: ignore[arg-type]
    assert [(c.text, c.finish_reason) for c in done] == [("a", "eos")]


def test_a_json_like_end_text_also_stops_at_its_closing_bracket() -> None:
    """``"}`` ends a record; a noisy prompt also writes ``.}`` — the bare closing bracket ends it too, listed
    after the full end text, and a text that ends properly loses its whole end text, not only the bracket."""
    from appliance.generate.plan import _with_end_stops

    assert _with_end_stops(("\n\n",), '"}') == ("\n\n", '"}', "}", '", "', '","')
    assert _with_end_stops(("\n\n", '"}'), '"}') == ("\n\n", '"}', "}", '", "', '","')
    assert _with_end_stops(("\n\n",), "\n") == ("\n\n", "\n")  # no bracket: only the end text
    assert _with_end_stops(("\n\n",), "}") == ("\n\n", "}")

    stops = _with_end_stops(("\n\n",), '"}')
    # ... and a record whose string closes into a next field ('Hi.", "label": …') ends there too
    for toks, want in (((1, 2), "Hi."), ((1, 3, 4), "Hi there"), ((1, 5), "Hi.")):
        sched, slot = _one_slot({1: b"Hi", 2: b".}", 3: b" there", 4: b'"}', 5: b'.", "label'}, stops)
        done = None
        for t in toks:
            done = sched._accept(slot, t)
        assert done is not None and done.finish_reason == "stop" and done.text == want


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("no parentheses", None),
        ("a (b) c", None),
        ("top up?)", 7),
        ("first) then (x) and)", 5),  # the first unopened one, not the last
        ("Thanks :) really", None),  # an emoticon closes nothing
        ("(:) x)", None),  # the emoticon is skipped: the last ")" closes the first "("
    ],
)
def test_first_unopened_paren_is_found_in_one_pass(text: str, at: int | None) -> None:
    from appliance.punctuation import first_unopened_paren

    assert first_unopened_paren(text) == at
