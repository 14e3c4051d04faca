"""The optimisation loop: DP-SGD (Opacus) or the non-DP control, over the same Poisson batches.

One *logical* step per Poisson batch, exactly the planned number of steps. A logical batch larger than
``max_physical`` examples is run in physical chunks (memory is bounded whatever Poisson draws): under DP each
chunk's per-sample gradients are clipped and summed by Opacus (``signal_skip_step``, as Opacus's
``BatchMemoryManager`` does) and the noise is added once, at the end of the logical batch. The chunks take the
batch's examples shortest first (:func:`length_chunks`), so each pads to about its own length: the sum of the
clipped per-sample gradients, hence the step and its (ε, δ), does not depend on the order. An empty Poisson
batch is still a DP step: Opacus clips nothing, adds the noise and counts the step (skipping it would reveal
that the batch was empty).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from appliance.cpu import cores, idle_cores
from appliance.train.layout import Example, Layout, collate
from appliance.train.lm import FrozenLM
from appliance.train.softprompt import SoftPrompt, batch_loss

# on_step(step, total_steps, batch_loss_or_None, epsilon_so_far)
StepCallback = Callable[[int, int, float | None, float], None]


class ThreadWidener:
    """Raises torch's thread count to the idle cores when training started on fewer (another process was busy
    then) and that load has gone; checked between steps, at most every ``every_s`` seconds. It never lowers
    the count mid-run: this process's own threads would read as the load."""

    def __init__(self, every_s: float = 30.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s, self.clock = every_s, clock
        self.last = clock()

    def __call__(self) -> int:
        now, threads = self.clock(), torch.get_num_threads()
        if threads < cores() and now - self.last >= self.every_s:
            self.last = now
            idle = idle_cores()
            if idle > threads:
                torch.set_num_threads(idle)
                return idle
        return threads


@dataclass(frozen=True)
class StepResult:
    loss: float | None  # mean per-sample NLL of the logical batch (None when it was empty)
    nll_sum: float
    n_tokens: int


def length_chunks(examples: Sequence[Example], max_physical: int) -> list[list[Example]]:
    """``examples`` shortest first, in chunks of at most ``max_physical``: a chunk is right-padded to its longest
    example, so random chunks of the demo's records pad to 1.39× their tokens and sorted ones to 1.07×
    (bench/RESULTS.md, session 22)."""
    ordered = sorted(examples, key=lambda e: len(e.ids))
    return [ordered[i : i + max_physical] for i in range(0, len(ordered), max_physical)]


def logical_step(
    *,
    lm: FrozenLM | None,
    layout: Layout | None,
    prompt: SoftPrompt,
    forward: torch.nn.Module,
    optimizer: Any,
    examples: Sequence[Example],
    dp: bool,
    max_physical: int,
) -> StepResult:
    """One optimiser step over a logical batch; ``forward`` is the Opacus-wrapped prompt (DP) or the prompt."""
    b = len(examples)
    if b == 0:
        if dp:
            batch_loss(lm, layout, forward(prompt.index(0)), collate([])).per_sample.sum().backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return StepResult(None, 0.0, 0)
    chunks = length_chunks(examples, max_physical)
    loss_sum, nll, ntok = 0.0, 0.0, 0
    for j, chunk in enumerate(chunks):
        last = j == len(chunks) - 1
        res = batch_loss(lm, layout, forward(prompt.index(len(chunk))), collate(chunk))
        if dp:
            res.per_sample.mean().backward()  # Opacus rescales by the chunk size: exact per-sample gradients
            optimizer.signal_skip_step(do_skip=not last)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        else:
            (res.per_sample.sum() / b).backward()
            if last:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        loss_sum += float(res.per_sample.detach().sum())
        nll += res.nll_sum
        ntok += res.n_tokens
    return StepResult(loss_sum / b, nll, ntok)


@dataclass
class LoopStats:
    steps: int = 0
    empty_batches: int = 0
    tail_nll: float = 0.0  # token NLL summed over the last epoch's steps
    tail_tokens: int = 0
    seconds: float = 0.0

    @property
    def train_loss(self) -> float:
        return self.tail_nll / self.tail_tokens if self.tail_tokens else float("nan")


def run_steps(
    *,
    lm: FrozenLM | None,
    layout: Layout | None,
    prompt: SoftPrompt,
    forward: torch.nn.Module,
    optimizer: Any,
    loader: Iterable[Sequence[Example]],
    total_steps: int,
    steps_per_epoch: int,
    dp: bool,
    max_physical: int,
    epsilon_so_far: Callable[[], float],
    on_step: StepCallback | None = None,
) -> LoopStats:
    """Run ``total_steps`` logical steps over the loader's Poisson batches (lists of examples)."""
    stats = LoopStats()
    t0 = time.perf_counter()
    widen = ThreadWidener()
    tail_from = total_steps - steps_per_epoch
    while stats.steps < total_steps:
        for examples in loader:
            if stats.steps >= total_steps:
                break
            res = logical_step(
                lm=lm,
                layout=layout,
                prompt=prompt,
                forward=forward,
                optimizer=optimizer,
                examples=examples,
                dp=dp,
                max_physical=max_physical,
            )
            stats.steps += 1
            stats.empty_batches += int(not examples)
            if stats.steps > tail_from:
                stats.tail_nll += res.nll_sum
                stats.tail_tokens += res.n_tokens
            if on_step:
                on_step(stats.steps, total_steps, res.loss, epsilon_so_far() if dp else 0.0)
            widen()
    stats.seconds = time.perf_counter() - t0
    return stats
