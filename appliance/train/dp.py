"""DP-SGD wiring with Opacus: Poisson sampling, per-sample clipping and Gaussian noise on the soft prompt.

Noise and sampling randomness (``noise_mode`` in the artifact metadata and audit event):

- ``torchcsprng``: Opacus ``secure_mode`` — a CSPRNG for noise and sampling, and noise drawn as a sum of
  several Gaussians against floating-point attacks (Opacus ``_generate_noise``). Used when ``torchcsprng``
  imports and ``privacy.secure_noise`` is true.
- ``os-seeded``: ``torchcsprng`` has no build for this torch (2.13; its last release, 0.2.1 of 2021, targets
  torch 1.8), so the noise and the Poisson sampler use torch's Mersenne-Twister generators, each seeded with 64
  bits from the OS CSPRNG (``os.urandom``) per run — no fixed or guessable seed. Caveat: Mersenne Twister is not
  a cryptographic generator, and Gaussian samples computed in floating point are not exactly Gaussian, so an
  adversary who sees the trained prompt could in principle exploit the gaps between representable values
  (Mironov 2012; Jin et al. 2022, arXiv:2112.05307) — the (ε, δ) proof assumes ideal real-valued noise.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from opacus import PrivacyEngine
from opacus.utils.uniform_sampler import UniformWithReplacementSampler
from torch.utils.data import DataLoader

from appliance.budget.accounting import Mechanism, history_epsilon, noise_multiplier_for, planned_steps
from appliance.train.layout import Example

NOISE_CSPRNG = "torchcsprng"
NOISE_OS_SEEDED = "os-seeded"


def csprng_available() -> bool:
    try:
        import torchcsprng  # noqa: F401
    except ImportError:
        return False
    return True


def os_seeded_generator() -> torch.Generator:
    """A torch generator seeded with 64 bits from the OS CSPRNG."""
    return torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little"))


def poisson_loader(
    examples: list[Example], *, sample_rate: float, steps_per_epoch: int, generator: Any
) -> DataLoader[Any]:
    """Lists of examples, each example in each list independently with probability ``sample_rate`` (lists may be
    empty); the training loop splits them into physical batches."""
    sampler = UniformWithReplacementSampler(
        num_samples=len(examples), sample_rate=sample_rate, generator=generator, steps=steps_per_epoch
    )
    return DataLoader(examples, batch_sampler=sampler, collate_fn=list)  # type: ignore[arg-type]


@dataclass
class PrivateParts:
    module: Any  # GradSampleModule around the soft prompt
    optimizer: Any  # DPOptimizer
    loader: DataLoader[Any]
    engine: PrivacyEngine
    noise_mode: str
    also: tuple[Mechanism, ...] = ()  # mechanisms reserved on the same records, composed into every ε reported

    @property
    def noise_multiplier(self) -> float:
        return float(self.optimizer.noise_multiplier)

    def epsilon(self, delta: float) -> float:
        """ε of the steps taken so far composed with the reserved mechanisms (0 before any step)."""
        acc = self.engine.accountant
        if not acc.history:
            return 0.0
        return history_epsilon([*acc.history, *self.also], delta=delta, accountant=acc.mechanism())

    @property
    def steps(self) -> int:
        return sum(int(s) for _, _, s in self.engine.accountant.history)


def make_private(
    prompt: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    examples: list[Example],
    *,
    target_epsilon: float,
    delta: float,
    epochs: int,
    steps_per_epoch: int,
    max_grad_norm: float,
    accountant: str,
    secure_noise: bool,
    also: tuple[Mechanism, ...] = (),
) -> PrivateParts:
    """Wrap the prompt and optimizer with Opacus for (``target_epsilon``, ``delta``) after ``epochs`` epochs.

    The Poisson rate is ``1 / steps_per_epoch`` (Opacus derives it from the loader's length the same way).
    With mechanisms ``also`` reserved on the same records, σ is calibrated so that DP-SGD composed with them
    stays within ``target_epsilon`` (:func:`appliance.budget.accounting.noise_multiplier_for`).
    """
    secure = secure_noise and csprng_available()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Opacus warns when secure_mode is off; the mode is audited instead
        engine = PrivacyEngine(accountant=accountant, secure_mode=secure)
    sample_gen = engine.secure_rng if secure else os_seeded_generator()
    loader = poisson_loader(
        examples, sample_rate=1.0 / steps_per_epoch, steps_per_epoch=steps_per_epoch, generator=sample_gen
    )
    sigma = noise_multiplier_for(
        target_epsilon=target_epsilon,
        delta=delta,
        sample_rate=1.0 / steps_per_epoch,
        steps=planned_steps(epochs=epochs, sample_rate=1.0 / steps_per_epoch),
        accountant=accountant,
        also=also,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Poisson sampling.*")
        warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")
        module, dp_optimizer, loader = engine.make_private(
            module=prompt,
            optimizer=optimizer,
            data_loader=loader,
            noise_multiplier=sigma,
            max_grad_norm=max_grad_norm,
            poisson_sampling=False,  # the loader above already samples Poisson, with our generator
            noise_generator=None if secure else os_seeded_generator(),
            grad_sample_mode="hooks",
        )
    module.forbid_grad_accumulation()
    return PrivateParts(module, dp_optimizer, loader, engine, NOISE_CSPRNG if secure else NOISE_OS_SEEDED, also)
