"""The optimisation loops: DP-SGD (Opacus) and the non-DP control, over the same Poisson batches.

Both run exactly the planned number of steps. An empty Poisson batch is still a DP step: Opacus clips
nothing, adds the noise and counts the step (skipping it would reveal that the batch was empty).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from appliance.train.layout import Layout
from appliance.train.lm import FrozenLM
from appliance.train.softprompt import SoftPrompt, batch_loss

# on_step(step, total_steps, batch_loss_or_None, epsilon_so_far)
StepCallback = Callable[[int, int, float | None, float], None]


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
    lm: FrozenLM,
    layout: Layout,
    prompt: SoftPrompt,
    forward: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    total_steps: int,
    steps_per_epoch: int,
    dp: bool,
    epsilon_so_far: Callable[[], float],
    on_step: StepCallback | None = None,
) -> LoopStats:
    """Run ``total_steps`` optimiser steps; ``forward`` is the Opacus-wrapped prompt (DP) or the prompt itself."""
    import time

    stats = LoopStats()
    t0 = time.perf_counter()
    tail_from = total_steps - steps_per_epoch
    while stats.steps < total_steps:
        for batch in loader:
            if stats.steps >= total_steps:
                break
            b = len(batch)
            if b == 0 and not dp:
                stats.steps += 1
                stats.empty_batches += 1
                if on_step:
                    on_step(stats.steps, total_steps, None, 0.0)
                continue
            rows = forward(prompt.index(b))
            res = batch_loss(lm, layout, rows, batch)
            loss = res.per_sample.mean() if b else res.per_sample.sum()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            stats.steps += 1
            stats.empty_batches += int(b == 0)
            if stats.steps > tail_from:
                stats.tail_nll += res.nll_sum
                stats.tail_tokens += res.n_tokens
            if on_step:
                on_step(stats.steps, total_steps, float(loss.detach()) if b else None, epsilon_so_far() if dp else 0.0)
    stats.seconds = time.perf_counter() - t0
    return stats
