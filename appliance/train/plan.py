"""A training run's plan: the request with the policy's defaults filled in, the Poisson rate, steps and δ.

Also the policy checks that come before anything else (``--epsilon`` required for DP runs; ``--no-dp`` only
when ``privacy.allow_non_dp`` is true).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from appliance.budget.accounting import default_delta, planned_steps
from appliance.context import Context
from appliance.errors import BadInput, PolicyViolation
from appliance.train.lm import FrozenLM


@dataclass(frozen=True)
class TrainRequest:
    """What the operator asked for; ``None`` means the policy's ``training`` default."""

    dataset: str
    epsilon: float | None
    delta: float | None = None
    epochs: int | None = None
    virtual_tokens: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    max_grad_norm: float | None = None
    model: str | None = None
    dp: bool = True


@dataclass(frozen=True)
class Plan:
    req: TrainRequest
    epochs: int
    k: int
    lr: float
    batch_size: int
    clip: float
    n: int  # training examples, canaries included
    steps_per_epoch: int
    sample_rate: float
    total_steps: int
    delta: float | None


def make_plan(ctx: Context, req: TrainRequest, n: int) -> Plan:
    """Resolve defaults and derive the Poisson rate, the step count and δ (policy, or 1/n^1.1)."""
    t = ctx.policy.training
    epochs, k = req.epochs or t.epochs, req.virtual_tokens or t.virtual_tokens
    bs, clip, lr = req.batch_size or t.batch_size, req.max_grad_norm or t.max_grad_norm, req.lr or t.lr
    if min(epochs, k, bs) < 1 or k > 256:
        raise BadInput("--epochs and --batch-size must be at least 1, --virtual-tokens between 1 and 256")
    if not (clip > 0 and lr > 0):
        raise BadInput("--max-grad-norm and --lr must be positive")
    m = math.ceil(n / bs)
    q = 1.0 / m
    delta = None
    if req.dp:
        delta = req.delta if req.delta is not None else (ctx.policy.privacy.delta or default_delta(n))
        if not 0 < delta < 1.0 / n:
            raise BadInput(f"--delta must be in (0, 1/n) = (0, {1.0 / n:.3g}) for n={n} training records")
    return Plan(req, epochs, k, lr, bs, clip, n, m, q, planned_steps(epochs=epochs, sample_rate=q), delta)


def check_request(ctx: Context, req: TrainRequest) -> None:
    """Refuse what the policy forbids before anything else happens."""
    if req.dp:
        if req.epsilon is None or not req.epsilon > 0:
            raise BadInput("--epsilon must be a positive number (or pass --no-dp for the non-DP control)")
    elif not ctx.policy.privacy.allow_non_dp:
        raise PolicyViolation(
            "non-DP training is refused: policy key privacy.allow_non_dp is false — set it to true in the workspace"
            " policy only for the probes' control experiment (its prompts are never exportable)"
        )


def scaled_lr(lm: FrozenLM, lr: float) -> float:
    """``lr`` is relative to the model's embedding scale: Adam moves each coordinate by about lr × std(E)."""
    return lr * float(lm.model.get_input_embeddings().weight.detach().std())
