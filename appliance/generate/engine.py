"""Continuous batching over a multi-sequence KV cache, independent of the native library.

A :class:`Decoder` exposes the few cache operations the scheduler needs. The scheduler keeps ``n_slots``
sequences alive: a prefix (soft prompt + instruction) is decoded once, into the first slot that needs it,
and copied to every other slot that starts with the same prefix; a finished slot keeps its prefix and only
drops the tokens it generated, so the next job with that prefix starts at once. Each decode step feeds
one token for every live sequence, and every sequence samples from its own random stream.

llama.cpp puts only sequences with consecutive ids in one micro-batch when each has its own KV stream, and
ggml multiplies a single column with other kernels than several. So once no job is waiting, finished slots
are filled by moving live sequences up (one KV stream copy each), keeping the live ones contiguous and next
to the decoder's pad stream: every step is one micro-batch of two or more rows, whatever the batch size,
and a sequence's logits — hence, with its own seed, its text — do not depend on ``--batch``.

With guidance (``SamplingParams.guidance`` > 0) every job brings ``w − 1`` more prefixes, its ``guides`` (the
runner gives one: the public prior, or the same prompt with another label): slot ``i`` then owns the ``w``
consecutive sequences ``w·i`` (the prefix) to ``w·i + w − 1`` (the guides), all are fed each sampled token,
and the token is drawn from their rows combined (:func:`sampling.guided_logits`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from appliance.generate.jobs import Completion, Job, Prefix, SamplingParams
from appliance.generate.sampling import guided_logits, sample_rows
from appliance.punctuation import without_unopened_closer


class Decoder(Protocol):
    """Native cache operations on one context with ``n_slots`` sequences."""

    def prefill(self, seq: int, prefix: Prefix) -> np.ndarray:
        """Decode ``prefix`` into an empty sequence from position 0; returns the last position's logits."""
        ...

    def copy(self, src: int, dst: int, keep: int) -> None:
        """Make ``dst`` hold ``src``'s first ``keep`` positions (and nothing else)."""
        ...

    def truncate(self, seq: int, keep: int) -> None:
        """Drop a sequence's positions >= ``keep`` (``keep=0`` empties it)."""
        ...

    def step(self, seqs: Sequence[int], tokens: Sequence[int], positions: Sequence[int]) -> np.ndarray:
        """Decode one token per listed sequence; returns logits (len(seqs), n_vocab), a view valid until next call."""
        ...

    def piece(self, token: int) -> bytes: ...

    def is_eog(self, token: int) -> bool: ...

    @property
    def eog_ids(self) -> list[int]: ...


@dataclass
class _Slot:
    job: Job
    plens: list[int]  # prefix length of each of the slot's sequences (the job's prefix, then its guides)
    rng: np.random.Generator
    tokens: list[int] = field(default_factory=list)
    text: bytearray = field(default_factory=bytearray)
    pending: int | None = None  # sampled, not yet decoded


def prefix_length(prefix: Prefix, bos_id: int | None) -> int:
    return int(prefix.bos and bos_id is not None) + prefix.n_soft + len(prefix.tokens)


class Scheduler:
    """Runs jobs through a :class:`Decoder`, ``n_slots`` at a time, yielding completions as they finish.

    The decoder holds ``n_slots × width`` sequences: width ``1 + guides`` when ``params.guidance`` > 0 (each
    job's prefix and its ``guides`` guide prefixes), else 1.
    """

    def __init__(
        self, decoder: Decoder, n_slots: int, bos_id: int | None, params: SamplingParams, guides: int = 1
    ) -> None:
        self.dec = decoder
        self.n_slots = n_slots
        self.bos_id = bos_id
        self.params = params
        self.width = 1 + guides if params.guidance > 0.0 else 1
        self.stops = [s.encode("utf-8") for s in params.stop if s]
        self.slots: list[_Slot | None] = [None] * n_slots
        self.seq_prefix: list[str | None] = [None] * (n_slots * self.width)
        self.prefix_logits: dict[str, np.ndarray] = {}

    def _seqs(self, i: int) -> range:
        return range(i * self.width, (i + 1) * self.width)

    def _members(self, job: Job) -> list[Prefix]:
        if self.width == 1:
            return [job.prefix]
        if len(job.guides) != self.width - 1:
            raise ValueError(
                f"job {job.index}: guidance {self.params.guidance} needs {self.width - 1} guide prefix(es),"
                f" got {len(job.guides)}"
            )
        return [job.prefix, *job.guides]

    def run(self, jobs: Sequence[Job], on_step: Callable[[int], None] | None = None) -> Iterator[Completion]:
        pending = deque(jobs)
        fresh: list[int] = []
        while pending or any(s is not None for s in self.slots):
            for i in range(self.n_slots):
                if self.slots[i] is None and pending:
                    self._assign(i, pending.popleft())
                    fresh.append(i)
            if fresh:
                yield from self._sample(fresh, self._first_logits(fresh), on_step)
                fresh = []
            if not pending:
                self._compact()
            live = [(i, s, s.pending) for i, s in enumerate(self.slots) if s is not None and s.pending is not None]
            if not live:
                continue
            seqs = [q for i, _, _ in live for q in self._seqs(i)]
            tokens = [tok for _, _, tok in live for _ in range(self.width)]
            positions = [p + len(s.tokens) - 1 for _, s, _ in live for p in s.plens]
            logits = self.dec.step(seqs, tokens, positions)
            for _, s, _ in live:
                s.pending = None
            yield from self._sample([i for i, _, _ in live], logits, on_step)

    def _assign(self, i: int, job: Job) -> None:
        plens: list[int] = []
        for seq, prefix in zip(self._seqs(i), self._members(job), strict=True):
            key = prefix.key
            plen = prefix_length(prefix, self.bos_id)
            holder = next((q for q, k in enumerate(self.seq_prefix) if k == key and q != seq), None)
            if self.seq_prefix[seq] == key and key in self.prefix_logits:
                self.dec.truncate(seq, plen)
            elif holder is not None and key in self.prefix_logits:
                self.dec.copy(holder, seq, plen)
            else:
                self.dec.truncate(seq, 0)
                self.prefix_logits[key] = np.array(self.dec.prefill(seq, prefix), dtype=np.float32)
            self.seq_prefix[seq] = key
            plens.append(plen)
        live_keys = set(self.seq_prefix)
        for stale in [k for k in self.prefix_logits if k not in live_keys]:
            del self.prefix_logits[stale]
        self.slots[i] = _Slot(job, plens, np.random.default_rng(job.seed))

    def _compact(self) -> None:
        """Keep the live sequences on the highest slots, contiguous (see the module docstring)."""
        live = [i for i, s in enumerate(self.slots) if s is not None]
        low = self.n_slots - len(live)
        movers = [i for i in live if i < low]
        holes = [i for i in range(low, self.n_slots) if self.slots[i] is None]
        for src, dst in zip(movers, holes, strict=True):
            s = self.slots[src]
            assert s is not None
            for qs, qd, plen in zip(self._seqs(src), self._seqs(dst), s.plens, strict=True):
                self.dec.copy(qs, qd, plen + len(s.tokens))
                self.seq_prefix[qd] = self.seq_prefix[qs]
            self.slots[dst], self.slots[src] = s, None

    def _first_logits(self, idx: list[int]) -> np.ndarray:
        return np.stack([self.prefix_logits[str(self.seq_prefix[q])] for i in idx for q in self._seqs(i)])

    def _sample(
        self, idx: list[int], logits: np.ndarray, on_step: Callable[[int], None] | None
    ) -> Iterator[Completion]:
        slots = [s for s in (self.slots[i] for i in idx) if s is not None]
        if self.width > 1:
            w = self.width
            logits = guided_logits(
                logits[0::w],
                [logits[j::w] for j in range(1, w)],
                self.params.guidance,
                self.params.min_p,
            )
        if self.params.ignore_eos:
            logits[:, self.dec.eog_ids] = -np.inf
        else:  # an end token ends a text, never stops one before it begins (an empty output is no record)
            empty = [r for r, s in enumerate(slots) if not s.text.strip()]
            if empty:
                logits[np.ix_(empty, self.dec.eog_ids)] = -np.inf
        uniforms = np.array([s.rng.random() for s in slots])
        chosen = sample_rows(logits, [s.tokens for s in slots], uniforms, self.params)
        if on_step is not None:
            on_step(len(idx))
        for i, s, tok in zip(idx, slots, chosen.tolist(), strict=True):
            done = self._accept(s, int(tok))
            if done is not None:
                self.slots[i] = None
                yield done

    def _accept(self, s: _Slot, tok: int) -> Completion | None:
        if self.dec.is_eog(tok) and not self.params.ignore_eos:
            return self._finish(s, "eos")
        s.tokens.append(tok)
        before = len(s.text)
        s.text += self.dec.piece(tok)
        for stop in self.stops:
            at = s.text.find(stop, max(0, before - len(stop) + 1))
            if at >= 0 and s.text[:at].strip():  # a stop string ends a text, never stops one before it begins
                del s.text[at:]
                return self._finish(s, "stop")
        if len(s.tokens) >= self.params.max_tokens:
            return self._finish(s, "length")
        s.pending = tok
        return None

    @staticmethod
    def _finish(s: _Slot, reason: str) -> Completion:
        text = bytes(s.text).decode("utf-8", errors="ignore")
        if reason != "length":  # a text that ended, not one cut off
            text = without_unopened_closer(text)
        return Completion(index=s.job.index, text=text, tokens=list(s.tokens), finish_reason=reason)
