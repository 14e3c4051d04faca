"""`appliance train`: plan a run, check the privacy budget, train the soft prompt, store and audit it.

Order matters: the policy checks and the budget reservation happen *before* the model is loaded or any
record is tokenized, so a refused run trains nothing. Seeds come from the train split only; the holdout split
is used for evaluation. The reported losses are operator diagnostics computed on the data without noise: they
are not covered by ε and never leave the workspace's database and audit log.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import torch

from appliance.budget.ledger import BudgetLedger
from appliance.context import Context
from appliance.cpu import idle_cores
from appliance.gate.bound import check_records
from appliance.train import canaries as canary_store
from appliance.train import keywords as kw
from appliance.train.artifact import PromptRecord, new_prompt_id, store, write_artifact
from appliance.train.data import DatasetRecords, declared_public, load_records
from appliance.train.dp import make_private, os_seeded_generator, poisson_loader
from appliance.train.layout import Example, Layout, build_examples, collate
from appliance.train.lm import FrozenLM, load_frozen
from appliance.train.loop import LoopStats, StepCallback, length_chunks, run_steps
from appliance.train.plan import Plan, TrainRequest, check_request, make_plan, scaled_lr
from appliance.train.precision import Precision, resolve
from appliance.train.public_prior import InitPrompt, extrapolate, load_init
from appliance.train.softprompt import SoftPrompt, init_rows, mean_nll, prior_ids, public_basis


class _StepArgs(TypedDict):
    """The arguments both of :meth:`_Run._optimise`'s :func:`run_steps` calls share."""

    lm: FrozenLM | None
    layout: Layout | None
    prompt: SoftPrompt
    total_steps: int
    steps_per_epoch: int
    max_physical: int
    on_step: StepCallback | None


@dataclass
class TrainResult:
    prompt_id: str
    plan: Plan
    epsilon: float | None
    noise_multiplier: float | None
    noise_mode: str | None
    stats: LoopStats
    holdout_loss: float | None
    holdout_loss_initial: float | None
    dataset_epsilon_spent: float | None
    n_train: int
    n_canaries: int
    precision: Precision
    label_keywords: dict[str, list[str]] | None = None  # the DP-released words per label (None: none reserved)
    public_data: bool = False  # trained on a dataset imported as public data (a public prior)
    prior_extrapolation: float | None = None  # training.prior_extrapolation applied to the stored rows, or None
    holdout_loss_as_trained: float | None = None  # the holdout loss before that extrapolation


def train(
    ctx: Context,
    req: TrainRequest,
    *,
    on_step: StepCallback | None = None,
    on_phase: Callable[[str], None] | None = None,
    lm: FrozenLM | None = None,
) -> TrainResult:
    """Train one soft prompt on ``req.dataset`` and store it (see the module docstring for the order of checks)."""
    public = declared_public(ctx.db.conn, req.dataset)  # a public corpus: no canaries to plant, nothing to probe
    check_request(ctx, req, public=public)
    pol = ctx.policy
    data = load_records(ctx.db, req.dataset, holdout_limit=pol.training.eval_max_records)
    plant = pol.privacy.canaries.count > 0 and not public
    planted = canary_store.draw(pol.privacy.canaries, data.labels) if plant else []
    plan = make_plan(
        ctx, req, len(data.train) + len(planted) * pol.privacy.canaries.repeats, labelled=bool(data.labels)
    )
    ledger = BudgetLedger(ctx.db, pol.privacy)
    reservation = None
    if plan.dp is not None:
        check_records(ctx.db.conn, req.dataset)  # the cap is checked on the keys the import bound
        reservation = ledger.reserve(
            req.dataset,
            epsilon=plan.dp.epsilon,
            delta=plan.dp.delta,
            accountant=pol.privacy.accountant,
            actor=ctx.actor,
            policy_sha256=ctx.policy_sha256,
        )
    precision = resolve(pol.training.precision)
    run = _Run(ctx, plan, data, planted, reservation, precision, on_step, on_phase or (lambda _s: None), public)
    threads = torch.get_num_threads()
    torch.set_num_threads(idle_cores())  # oversubscribed OpenMP threads stall at every barrier (appliance.cpu)
    try:
        return run.execute(lm)
    except BaseException:
        if reservation is not None:
            ledger.release(reservation)
        for rel in run.written:
            (ctx.ws.home / rel).unlink(missing_ok=True)
        raise
    finally:
        torch.set_num_threads(threads)


class _Run:
    def __init__(
        self,
        ctx: Context,
        plan: Plan,
        data: DatasetRecords,
        planted: list[canary_store.Canary],
        reservation: int | None,
        precision: Precision,
        on_step: StepCallback | None,
        phase: Callable[[str], None],
        public: bool = False,
    ) -> None:
        self.ctx, self.plan, self.data, self.planted = ctx, plan, data, planted
        self.precision = precision
        self.reservation, self.on_step, self.phase = reservation, on_step, phase
        self.prompt_id = new_prompt_id()
        self.written: list[str] = []
        self.keywords: dict[str, list[tuple[str, float]]] = {}  # DP-released (word, noisy count) per label
        self.public = public  # the dataset was imported as public data (seeds import --public)
        self.init: InitPrompt | None = None  # the public prompt this run starts from (train --init-prompt)
        self.extrapolation: float | None = None  # training.prior_extrapolation, when applied to this run's rows
        self.as_trained_loss: float | None = None  # the holdout loss before it

    def execute(self, lm: FrozenLM | None) -> TrainResult:
        pol, plan = self.ctx.policy, self.plan
        self.phase("loading model")
        name = plan.req.model or pol.generation.default_model
        lm = lm if lm is not None and lm.name == name else load_frozen(self.ctx.ws, name)
        t = pol.training
        self.keywords = self._release_keywords(lm)
        layout = Layout.for_training(
            t, lm, k=plan.k, labelled=bool(self.data.labels), label_keywords=kw.keywords_only(self.keywords)
        )
        records = self.data.train + canary_store.training_records(self.planted, pol.privacy.canaries.repeats)
        examples = build_examples(lm.encode, layout, [r[0] for r in records], [r[1] for r in records])
        hold = build_examples(lm.encode, layout, [r[0] for r in self.data.holdout], [r[1] for r in self.data.holdout])
        step = t.max_physical_batch
        hold_batches = [collate(chunk) for chunk in length_chunks(hold, step)]  # mean_nll sums: order-free
        basis = public_basis(lm.model.get_input_embeddings().weight, t.subspace_rank) if t.subspace_rank else None
        if plan.req.init_prompt is not None:
            self.init = load_init(self.ctx, plan.req.init_prompt, lm)
        start = self.init.rows if self.init is not None else init_rows(lm, t.init_text, plan.k)
        prompt = SoftPrompt(start, basis)
        lm = lm.at(self.precision)  # forward passes (bf16: bf16 weights); the prompt and its DP step stay float32
        self.phase("scoring the initial prompt on the holdout split")
        initial = mean_nll(lm, layout, prompt.rows(), hold_batches) if hold_batches else None
        self.phase(f"training ({self.precision.name})")
        epsilon, sigma, noise_mode, stats = self._optimise(lm, layout, prompt, examples)
        self.phase("scoring the trained prompt on the holdout split")
        rows = prompt.rows()
        if self.init is not None and t.prior_extrapolation != 1.0:
            # post-processing with public constants (the prior's rows, the policy's s): the (ε, δ) is unchanged
            self.as_trained_loss = mean_nll(lm, layout, rows, hold_batches) if hold_batches else None
            self.extrapolation = t.prior_extrapolation
            rows = extrapolate(self.init.rows, rows, self.extrapolation)
        final = mean_nll(lm, layout, rows, hold_batches) if hold_batches else None
        self.phase("saving")
        total = self._store(lm, layout, rows, epsilon, sigma, noise_mode, stats, initial, final)
        return TrainResult(
            self.prompt_id,
            plan,
            epsilon,
            sigma,
            noise_mode,
            stats,
            final,
            initial,
            total,
            len(self.data.train),
            len(self.planted),
            self.precision,
            kw.keywords_only(self.keywords) if plan.keywords_noise is not None else None,
            self.public,
            self.extrapolation,
            self.as_trained_loss,
        )

    def _release_keywords(self, lm: FrozenLM) -> dict[str, list[tuple[str, float]]]:
        """Each label's DP keywords with their noisy counts ({} when the run reserved none): the noisy
        histogram of :mod:`appliance.train.keywords` over the train split, one unit per record (the relation every
        other part of the run is accounted in; a subject's k records are covered by group privacy, as for
        DP-SGD). Canaries do not vote. The noise is numpy's PCG64 seeded with 128 bits from the OS CSPRNG, as
        curation's DP selection draws it: no guessable seed, but not a cryptographic generator, whatever
        ``privacy.secure_noise`` says for DP-SGD's noise."""
        sigma = self.plan.keywords_noise
        if sigma is None or not self.data.labels:
            return {}
        self.phase("releasing the label keywords (DP)")
        units = [[(text, label)] for text, label in self.data.train if label is not None]
        hist = kw.unit_counts(units, self.data.labels, kw.candidate_words(lm.tokenizer.get_vocab()))
        noisy = kw.noisy(hist, sigma, np.random.default_rng(secrets.randbits(128)))
        del hist  # only the noisy counts leave this method
        cfg = self.ctx.policy.training.label_keywords
        return kw.top_words(noisy, per_label=cfg.per_label, floor=cfg.threshold_sigmas * sigma)

    def _optimise(self, lm: FrozenLM, layout: Layout, prompt: SoftPrompt, examples: list[Example]) -> tuple[Any, ...]:
        plan, pol = self.plan, self.ctx.policy
        # full rows: lr is relative to the embeddings' scale; subspace coefficients are already in those units
        lr = plan.lr if prompt.basis is not None else scaled_lr(lm, plan.lr)
        optimizer = torch.optim.Adam(prompt.parameters(), lr=lr)
        common: _StepArgs = {
            "lm": lm,
            "layout": layout,
            "prompt": prompt,
            "total_steps": plan.total_steps,
            "steps_per_epoch": plan.steps_per_epoch,
            "max_physical": pol.training.max_physical_batch,
            "on_step": self.on_step,
        }
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Full backward hook.*")
            warnings.filterwarnings("ignore", message=".*Optimal order is the largest alpha.*")
            target = plan.dp
            if target is None:
                loader = poisson_loader(
                    examples,
                    sample_rate=plan.sample_rate,
                    steps_per_epoch=plan.steps_per_epoch,
                    generator=os_seeded_generator(),
                )
                stats = run_steps(
                    **common, forward=prompt, optimizer=optimizer, loader=loader, dp=False, epsilon_so_far=lambda: 0.0
                )
                return None, None, None, stats
            delta = target.delta
            parts = make_private(
                prompt,
                optimizer,
                examples,
                target_epsilon=target.epsilon,
                delta=delta,
                epochs=plan.epochs,
                steps_per_epoch=plan.steps_per_epoch,
                max_grad_norm=plan.clip,
                accountant=pol.privacy.accountant,
                secure_noise=pol.privacy.secure_noise,
                also=target.also,
            )
            shown = [0.0]

            def eps_so_far() -> float:  # prv is slow to evaluate: refresh it every 10 steps for the progress bar
                if pol.privacy.accountant == "rdp" or parts.steps % 10 == 0 or parts.steps == plan.total_steps:
                    shown[0] = parts.epsilon(delta)
                return shown[0]

            try:
                stats = run_steps(
                    **common,
                    forward=parts.module,
                    optimizer=parts.optimizer,
                    loader=parts.loader,
                    dp=True,
                    epsilon_so_far=eps_so_far,
                )
                epsilon = parts.epsilon(delta)
            finally:
                parts.module._close()  # remove Opacus hooks from the prompt module
        return epsilon, parts.noise_multiplier, parts.noise_mode, stats

    def _store(
        self,
        lm: FrozenLM,
        layout: Layout,
        rows: torch.Tensor,
        epsilon: float | None,
        sigma: float | None,
        noise_mode: str | None,
        stats: LoopStats,
        initial: float | None,
        final: float | None,
    ) -> float | None:
        plan, pol, dp = self.plan, self.ctx.policy, self.plan.dp is not None
        can = pol.privacy.canaries
        canary_info = None
        if self.planted:
            rel, sha = canary_store.write(self.ctx.ws, self.prompt_id, plan.req.dataset, self.planted, can.repeats)
            self.written.append(rel)
            canary_info = {
                "count": len(self.planted),
                "repeats": can.repeats,
                "digits": can.digits,
                "file": rel,
                "sha256": sha,
            }
        clip_norm = plan.clip if dp else None
        accountant = pol.privacy.accountant if dp else None
        facts = {
            "model_sha256": lm.sha256,
            "dataset": plan.req.dataset,
            "k": plan.k,
            "epsilon": epsilon,
            "delta": plan.delta,
            "noise_multiplier": sigma,
            "sample_rate": plan.sample_rate,
            "steps": stats.steps,
            "clip_norm": clip_norm,
            "accountant": accountant,
            "noise_mode": noise_mode,
            "dp": int(dp),
            "composition": "basic" if dp else None,
            # σ of the DP selection histogram reserved in this ε (composed with DP-SGD by the accountant), or None
            "dp_selection_noise": plan.selection_noise,
            # σ of the label-keyword histogram released at training in this ε, or None
            "label_keywords_noise": plan.keywords_noise,
        }
        art_rel, art_sha = write_artifact(self.ctx.ws.home, self.prompt_id, rows.numpy(), facts)
        self.written.append(art_rel)
        run_facts = {
            "target_epsilon": plan.req.epsilon if dp else None,
            "subspace_rank": pol.training.subspace_rank or None,
            "trainable_dims": plan.k * (pol.training.subspace_rank or lm.n_embd),
            "epochs": plan.epochs,
            "batch_size": plan.batch_size,
            "lr": plan.lr,
            "noise_mode": noise_mode,
            "secure_noise_policy": pol.privacy.secure_noise,
            "holdout_loss_initial": _finite(initial),
            # the stored rows are prior + s * (trained - prior) (None: as trained), and the loss as trained
            "prior_extrapolation": self.extrapolation,
            "holdout_loss_as_trained": _finite(self.as_trained_loss),
            "dp_selection_noise": facts["dp_selection_noise"],
            "label_keywords_noise": facts["label_keywords_noise"],
            **self.precision.as_dict(),
        }
        meta = {
            **layout.meta(self.data.labels),
            **run_facts,
            "canaries": canary_info,
            "init_text_sha256": "sha256:" + hashlib.sha256(pol.training.init_text.encode()).hexdigest(),
            # the prompt trained on public records alone this run started from (None: the init text's rows)
            "init_prompt": self.init.facts() if self.init is not None else None,
            # trained on records declared public alone (seeds import --public): may start a DP run
            "public_data": self.public,
            # the public prior's tokens (the untrained prompt's rows): generation's guidance contrasts with them
            "prior_token_ids": prior_ids(lm, pol.training.init_text, plan.k),
        }
        rec = PromptRecord(
            self.prompt_id,
            plan.req.dataset,
            lm.name,
            lm.sha256,
            plan.k,
            lm.n_embd,
            dp,
            epsilon,
            plan.delta,
            sigma,
            plan.sample_rate,
            stats.steps,
            clip_norm,
            accountant,
            stats.train_loss,
            final,
            art_rel,
            art_sha,
            meta,
        )
        audit = {
            **run_facts,
            "composition": facts["composition"],
            "n_train": len(self.data.train),
            "n_holdout_eval": len(self.data.holdout),
            "n_canaries": len(self.planted),
            "canary_repeats": can.repeats if self.planted else 0,
            "canaries_sha256": canary_info["sha256"] if canary_info else None,
            "empty_batches": stats.empty_batches,
            "init_prompt": meta["init_prompt"],
            "public_data": self.public,
        }
        if self.keywords:  # DP outputs: the released words with their noisy counts (the exact counts never)
            audit["label_keywords"] = {lab: [[w, round(c, 2)] for w, c in ws] for lab, ws in self.keywords.items()}
        if not dp:
            audit["warning"] = "NON_DP_NOT_EXPORTABLE"
        return store(self.ctx, rec, reservation=self.reservation, audit=audit)


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None
