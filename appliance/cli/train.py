"""`appliance train DATASET --epsilon E [...]`: train a DP soft prompt and charge the dataset's budget."""

from __future__ import annotations

import math
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from appliance.cli.common import console, err_console, print_json, state


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _result(res: Any) -> dict[str, Any]:
    """What the text output says, as one JSON object."""
    plan = res.plan
    return {
        "prompt_id": res.prompt_id,
        "dataset": plan.req.dataset,
        "dp": plan.req.dp,
        "epsilon": _num(res.epsilon) if plan.req.dp else None,
        "target_epsilon": plan.req.epsilon,
        "delta": plan.delta,
        "noise_multiplier": _num(res.noise_multiplier),
        "dp_selection_noise": plan.selection_noise,
        "label_keywords_noise": plan.keywords_noise,
        "label_keywords": res.label_keywords,
        "noise_mode": res.noise_mode,
        "sample_rate": plan.sample_rate,
        "steps": res.stats.steps,
        "epochs": plan.epochs,
        "clip": plan.clip,
        "dataset_epsilon_spent": _num(res.dataset_epsilon_spent),
        "train_loss": _num(res.stats.train_loss),
        "holdout_loss": _num(res.holdout_loss),
        "holdout_loss_initial": _num(res.holdout_loss_initial),
        "prior_extrapolation": res.prior_extrapolation,
        "holdout_loss_as_trained": _num(res.holdout_loss_as_trained),
        "n_train": res.n_train,
        "n_canaries": res.n_canaries,
        "init_prompt": plan.req.init_prompt,
        "public_data": res.public_data,
        **res.precision.as_dict(),
    }


def _fmt(x: float | None, spec: str = ".4f") -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, spec)


class _Bar:
    """Progress on stderr (steps, loss, ε so far), started only once the run has passed its checks."""

    def __init__(self, *, dp: bool) -> None:
        self.dp = dp
        self.progress: Progress | None = None
        self.task = TaskID(0)

    def phase(self, name: str) -> None:
        if self.progress is None:
            if not self.dp:
                err_console.print("WARNING: --no-dp trains WITHOUT differential privacy; the prompt is not exportable")
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"), TextColumn("ε {task.fields[eps]}"), TimeElapsedColumn(),
                console=err_console,
            )  # fmt: skip
            self.progress.start()
            self.task = self.progress.add_task(name, total=None, loss="-", eps="-" if self.dp else "∞ (no DP)")
        self.progress.update(self.task, description=name)

    def step(self, step: int, total: int, loss: float | None, eps: float) -> None:
        if self.progress is None:
            return
        fields: dict[str, Any] = {"loss": f"{loss:.4f}"} if loss is not None else {}  # Progress.update's **fields
        if self.dp:
            fields["eps"] = f"{eps:.3f}"
        self.progress.update(self.task, completed=step, total=total, **fields)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def train_command(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="dataset to train on (its train split)"),
    epsilon: float | None = typer.Option(None, "--epsilon", help="target ε of this run (required unless --no-dp)"),
    delta: float | None = typer.Option(None, "--delta", help="δ (default: privacy.delta or min(1/(10N), 1e-6))"),
    epochs: int | None = typer.Option(None, "--epochs", help="passes over the data (default: policy)"),
    virtual_tokens: int | None = typer.Option(None, "--virtual-tokens", help="soft prompt length k (default: policy)"),
    lr: float | None = typer.Option(None, "--lr", help="Adam step relative to the model's embedding scale"),
    batch_size: int | None = typer.Option(None, "--batch-size", help="expected Poisson batch size (default: policy)"),
    max_grad_norm: float | None = typer.Option(None, "--max-grad-norm", help="per-sample clipping norm C"),
    model: str | None = typer.Option(None, "--model", help="model name from `appliance models list`"),
    no_dp: bool = typer.Option(
        False,
        "--no-dp",
        help="non-DP run: the probes' control (policy privacy.allow_non_dp must be true), or a public prior on a"
        " dataset imported with --public",
    ),
    init_prompt: str | None = typer.Option(
        None,
        "--init-prompt",
        help="start from this prompt instead of training.init_text: one trained on a dataset imported with"
        " `seeds import --public` alone (the public prior; this run's ε covers its own records as before)",
    ),
    as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object (last line)"),
) -> None:
    """Train a differentially private soft prompt on DATASET and print its id, ε spent and losses."""
    from appliance.train.plan import TrainRequest
    from appliance.train.trainer import train

    if epsilon is None and not no_dp:
        raise typer.BadParameter("--epsilon is required (or pass --no-dp for the non-DP control run)")
    req = TrainRequest(
        dataset=dataset, epsilon=None if no_dp else epsilon, delta=delta, epochs=epochs,
        virtual_tokens=virtual_tokens, lr=lr, batch_size=batch_size, max_grad_norm=max_grad_norm, model=model,
        dp=not no_dp, init_prompt=init_prompt,
    )  # fmt: skip
    c = state(ctx).open()
    bar = _Bar(dp=not no_dp)
    try:
        res = train(c, req, on_step=bar.step, on_phase=bar.phase)
    finally:
        bar.stop()
        c.close()
    if as_json:
        print_json(_result(res))
        return
    console.print(f"prompt {res.prompt_id}")
    if res.plan.req.dp:
        console.print(
            f"epsilon spent {_fmt(res.epsilon)} (target {res.plan.req.epsilon:g}, delta {res.plan.delta:.3g}, "
            f"noise multiplier {_fmt(res.noise_multiplier)}, sample rate {res.plan.sample_rate:.4g}, "
            f"{res.stats.steps} steps, clip {res.plan.clip:g}, noise {res.noise_mode})"
        )
        if res.plan.selection_noise is not None:
            console.print(
                f"the epsilon includes curation's DP selection (one histogram, noise multiplier"
                f" {res.plan.selection_noise:g}), composed with DP-SGD: curate one batch of this prompt to use it"
            )
        if res.label_keywords is not None:
            words = "; ".join(f"{lab}: {', '.join(ws) or '(none)'}" for lab, ws in sorted(res.label_keywords.items()))
            console.print(
                "the epsilon includes the label keywords (one histogram, noise multiplier"
                f" {res.plan.keywords_noise:g}), composed with DP-SGD; released: {words}"
            )
        console.print(f"dataset {req.dataset}: epsilon spent in total {_fmt(res.dataset_epsilon_spent)}")
    elif res.public_data:
        console.print(
            f"no epsilon spent: {req.dataset} was imported as public data; the prompt is a public prior (not"
            " exportable): start a DP run from it with"
            f" `appliance train DATASET --epsilon E --init-prompt {res.prompt_id}`"
        )
    else:
        console.print("epsilon spent inf (non-DP control run: not exportable)")
    if req.init_prompt is not None:
        console.print(f"started from the public prompt {req.init_prompt} (trained on public records alone)")
    if res.prior_extrapolation is not None:
        console.print(
            f"stored prior + {res.prior_extrapolation:g} x (trained - prior) (training.prior_extrapolation;"
            f" post-processing, no epsilon): holdout loss as trained {_fmt(res.holdout_loss_as_trained)}"
        )
    console.print(
        f"train loss {_fmt(res.stats.train_loss)}  holdout loss {_fmt(res.holdout_loss)} "
        f"(initial prompt {_fmt(res.holdout_loss_initial)})"
    )
    console.print(f"precision {res.precision.name} ({res.precision.reason})")
