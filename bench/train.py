"""Trainer benchmark: DP vs non-DP step time on identical batches, peak RSS, holdout NLL before/after an ε run.

1. Seeds: ``--n`` BANKING77 training questions (plus the policy's holdout share) imported with the appliance's
   own ``seeds import`` into a fresh workspace (``bench/out/train-<model>``).
2. Step time: one soft prompt under Opacus (DP-SGD: per-sample gradients, clipping, noise) and one plain
   (non-DP) prompt take turns on the *same* fixed batches of ``--batch-size`` examples (order alternated
   every step, so load drift on a shared machine hits both alike). The figure line's ratio is of the median
   per-step CPU time of this process (threads included), which other jobs on a shared machine disturb far
   less than wall time; the wall-time ratio is in the table too. The same DP step with its physical chunks
   taken in arrival order (as before session 22) instead of shortest first (``appliance.train.loop.length_chunks``)
   takes turns with them, for the padding's cost side by side.
3. Quality: a real ``train`` run (ε = ``--epsilon``, the policy's other defaults unless given) reports the
   holdout NLL (nats/token) of the initial and of the trained prompt, and the ε the accountant gives.
4. Peak RSS of this process (model loaded from the dequantized cache, which is built beforehand in a
   subprocess so that one-off dequantization does not count).

Prints a table and ends with one line:
``dp/nodp step time ratio: X; epsilon E; holdout nll before B after A``.
Example: ``.venv/bin/python bench/train.py --model gemma3-270m``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from appliance.config import Workspace  # noqa: E402
from appliance.context import Context  # noqa: E402
from appliance.train import loop  # noqa: E402
from appliance.train.dp import make_private  # noqa: E402
from appliance.train.layout import Example, Layout, build_examples  # noqa: E402
from appliance.train.lm import load_frozen  # noqa: E402
from appliance.train.loop import logical_step  # noqa: E402
from appliance.train.plan import TrainRequest, scaled_lr  # noqa: E402
from appliance.train.softprompt import SoftPrompt, init_rows  # noqa: E402
from appliance.train.trainer import train  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))
from _train_data import banking_csv  # noqa: E402


def cli(home: Path, *args: str) -> str:
    env = {**os.environ, "APPLIANCE_ACTOR": "bench"}
    proc = subprocess.run(
        [sys.executable, "-m", "appliance.cli.main", "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-2000:])
        raise SystemExit(f"appliance {' '.join(args[:2])} failed with exit {proc.returncode}")
    return proc.stdout


def prepare(args: argparse.Namespace) -> Path:
    home = REPO / "bench" / "out" / f"train-{args.model}"
    if home.exists() and not args.reuse:
        shutil.rmtree(home)
    if not Workspace(home).exists():
        cli(home, "init")
        seeds = banking_csv(home.parent / f"train-seeds-{args.model}.csv", n=int(args.n / 0.8), seed=1)
        cli(home, "seeds", "import", str(seeds), "--dataset", "bench", "--text-field", "text")
    # dequantize (or link the tests' cached copy) in a subprocess: its peak memory is not the trainer's
    code = "import sys; sys.path.insert(0, 'tests'); from pathlib import Path; import _train_data as d; "
    code += f"d.seed_model_cache(Path({str(home)!r}), {args.model!r})"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    return home


def _arrival_chunks(examples: Sequence[Example], max_physical: int) -> list[list[Example]]:
    return [list(examples[i : i + max_physical]) for i in range(0, len(examples), max_physical)]


@contextmanager
def arrival_order() -> Iterator[None]:
    """Physical chunks in the Poisson batch's own order (the trainer before session 22), for the timing only."""
    shipped = loop.length_chunks
    loop.length_chunks = _arrival_chunks
    try:
        yield
    finally:
        loop.length_chunks = shipped


def time_steps(ctx: Context, args: argparse.Namespace) -> dict[str, float]:
    lm = load_frozen(ctx.ws, args.model)
    t = ctx.policy.training
    layout = Layout.for_training(t, lm, k=t.virtual_tokens, labelled=False)
    texts = [r[0] for r in ctx.db.conn.execute("SELECT text FROM records WHERE dataset='bench' AND split='train'")]
    examples = build_examples(lm.encode, layout, texts, [None] * len(texts))
    bs = args.batch_size
    batches = [examples[i * bs : (i + 1) * bs] for i in range(args.timing_steps + 1)]
    init = init_rows(lm, t.init_text, t.virtual_tokens)
    dp_prompt, plain = SoftPrompt(init), SoftPrompt(init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = make_private(
            dp_prompt,
            torch.optim.Adam(dp_prompt.parameters(), lr=scaled_lr(lm, t.lr)),
            examples,
            target_epsilon=args.epsilon,
            delta=1e-5,
            epochs=1,
            steps_per_epoch=len(examples) // bs,
            max_grad_norm=t.max_grad_norm,
            accountant="rdp",
            secure_noise=True,
        )
        plain_opt = torch.optim.Adam(plain.parameters(), lr=scaled_lr(lm, t.lr))
        common = {"lm": lm, "layout": layout, "max_physical": t.max_physical_batch}

        def dp_step(batch: list) -> tuple[float, float]:
            t0, c0 = time.perf_counter(), time.process_time()
            logical_step(
                **common, prompt=dp_prompt, forward=parts.module, optimizer=parts.optimizer, examples=batch, dp=True
            )
            return time.perf_counter() - t0, time.process_time() - c0

        def plain_step(batch: list) -> tuple[float, float]:
            t0, c0 = time.perf_counter(), time.process_time()
            logical_step(**common, prompt=plain, forward=plain, optimizer=plain_opt, examples=batch, dp=False)
            return time.perf_counter() - t0, time.process_time() - c0

        def arrival_step(batch: list) -> tuple[float, float]:
            with arrival_order():
                return dp_step(batch)

        dp_step(batches[0]), plain_step(batches[0])  # warm-up
        dp_t, plain_t, arrival_t = [], [], []
        for i, batch in enumerate(batches[1:]):
            turns = [(dp_t, dp_step), (plain_t, plain_step), (arrival_t, arrival_step)]
            for out, step in turns[i % 3 :] + turns[: i % 3]:  # rotate the order: load drift hits all alike
                out.append(step(batch))
            print(
                f"  timing step {i + 1}: DP {dp_t[-1][0]:.2f} s (cpu {dp_t[-1][1]:.2f}), "
                f"non-DP {plain_t[-1][0]:.2f} s (cpu {plain_t[-1][1]:.2f}), "
                f"DP arrival-order chunks {arrival_t[-1][0]:.2f} s (cpu {arrival_t[-1][1]:.2f})",
                flush=True,
            )
        parts.module._close()
    n_tok = float(sum(len(e.ids) for b in batches[1:] for e in b) / len(batches[1:]))
    med = statistics.median
    return {
        "dp": med(t for t, _ in dp_t),
        "plain": med(t for t, _ in plain_t),
        "tokens_per_batch": n_tok,
        "dp_cpu": med(c for _, c in dp_t),
        "plain_cpu": med(c for _, c in plain_t),
        "arrival": med(t for t, _ in arrival_t),
        "arrival_cpu": med(c for _, c in arrival_t),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--n", type=int, default=256, help="training seeds")
    ap.add_argument("--epsilon", type=float, default=4.0)
    ap.add_argument("--epochs", type=int, default=None, help="default: policy training.epochs")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=None, help="default: policy training.lr")
    ap.add_argument("--timing-steps", type=int, default=8)
    ap.add_argument("--reuse", action="store_true", help="keep an existing bench workspace")
    args = ap.parse_args()

    t0 = time.perf_counter()
    home = prepare(args)
    ctx = Context.open(Workspace(home), actor="bench")
    timing = time_steps(ctx, args)
    res = train(
        ctx,
        TrainRequest(
            dataset="bench",
            epsilon=args.epsilon,
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            model=args.model,
        ),
    )
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    ratio = timing["dp_cpu"] / timing["plain_cpu"]
    rows = [
        ("model", args.model),
        ("training seeds (+ canaries)", f"{res.n_train} (+{res.n_canaries})"),
        ("batch size / tokens per timed batch", f"{args.batch_size} / {timing['tokens_per_batch']:.0f}"),
        ("median step time DP (s)", f"{timing['dp']:.2f}"),
        ("median step time non-DP (s)", f"{timing['plain']:.2f}"),
        ("median step CPU time DP / non-DP (s)", f"{timing['dp_cpu']:.2f} / {timing['plain_cpu']:.2f}"),
        ("dp/nodp wall-time ratio", f"{timing['dp'] / timing['plain']:.3f}"),
        ("dp/nodp step time ratio (CPU time)", f"{ratio:.3f}"),
        ("median DP step CPU time, chunks in arrival order (s)", f"{timing['arrival_cpu']:.2f}"),
        ("shortest-first / arrival-order DP step (CPU time)", f"{timing['dp_cpu'] / timing['arrival_cpu']:.3f}"),
        (
            "DP run: steps / sample rate / sigma",
            f"{res.stats.steps} / {res.plan.sample_rate:.4f} / {res.noise_multiplier:.3f}",
        ),
        ("DP run: epsilon (accountant) / delta", f"{res.epsilon:.3f} / {res.plan.delta:.2e}"),
        ("DP run: mean step time (s)", f"{res.stats.seconds / max(res.stats.steps, 1):.2f}"),
        ("holdout NLL before (nats/token)", f"{res.holdout_loss_initial:.4f}"),
        ("holdout NLL after (nats/token)", f"{res.holdout_loss:.4f}"),
        ("peak RSS (GB)", f"{rss_gb:.2f}"),
        ("wall time (s)", f"{time.perf_counter() - t0:.0f}"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(
        f"dp/nodp step time ratio: {ratio:.3f}; epsilon {res.epsilon:.3f}; "
        f"holdout nll before {res.holdout_loss_initial:.4f} after {res.holdout_loss:.4f}"
    )
    ctx.close()


if __name__ == "__main__":
    main()
