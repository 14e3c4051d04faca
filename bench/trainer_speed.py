"""Trainer speed: the DP step in fp32 and in bf16 autocast, on the same batches, side by side in one run.

The step is the trainer's own (:func:`appliance.train.loop.logical_step`: Opacus per-sample gradients of the soft
prompt, clipping, noise, Adam) at the demo's schedule (batch 64, physical batches of 8, 16 virtual tokens, the demo's
label verbaliser). ``bench/pipeline.py`` calls :func:`time_steps` on its workspace after the whole pipeline; this
script times the step alone, so that it runs where the pipeline cannot: on a lent device machine's CPU, where the
98 MB GGUF cannot travel (the device tool carries at most 64 MiB). There ``--random-weights`` builds the model from
the machine-level cache's ``config.json`` and tokenizer with random weights: the same shapes and the same
floating-point work, so the same seconds (not the same losses — never use it for anything but time).

Data: public BANKING77 train rows (``../shared/data/banking77/train.csv``, CC BY 4.0) of the demo's six intents,
or ``--csv`` (columns ``text``, ``category``). ``--threads`` lists torch thread counts to time (each count times
every path); bf16 where the CPU has no bf16 units is emulated by oneDNN (slow) and is timed only with
``--force-bf16``. Ends with one line per thread count:
``trainer step T threads: fp32 X s, bf16 Y s (S× fp32); batch B, N tokens/batch; CPU: units``
Example: ``.venv/bin/python bench/trainer_speed.py --threads 2``.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import torch  # noqa: E402

from appliance.train.precision import bf16_units, resolve  # noqa: E402

CSV = REPO.parent / "shared" / "data" / "banking77" / "train.csv"


def time_steps(
    base: Any, layout: Any, examples: list[Any], training: Any, privacy: Any, *, steps: int, paths: list[str]
) -> dict[str, dict[str, float]]:
    """Median seconds of the trainer's DP step in each precision of ``paths`` ("fp32", "bf16"), on the same
    ``steps + 1`` fixed batches of ``examples`` (the first a warm-up) and from the same initial prompt; also the
    tokens per batch. ``training`` and ``privacy`` are the policy's sections (batch, lr, clip, accountant)."""
    from appliance.train.dp import make_private
    from appliance.train.loop import logical_step
    from appliance.train.plan import scaled_lr
    from appliance.train.softprompt import SoftPrompt, init_rows

    bs = training.batch_size
    batches = [examples[i * bs : (i + 1) * bs] for i in range(steps + 1)]
    init = init_rows(base, training.init_text, training.virtual_tokens)
    out: dict[str, dict[str, float]] = {}
    for name in paths:
        lm = base.at(resolve(name))
        prompt = SoftPrompt(init)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parts = make_private(
                prompt,
                torch.optim.Adam(prompt.parameters(), lr=scaled_lr(lm, training.lr)),
                examples,
                target_epsilon=4.0,
                delta=1e-6,
                epochs=training.epochs,
                steps_per_epoch=max(1, len(examples) // bs),
                max_grad_norm=training.max_grad_norm,
                accountant=privacy.accountant,
                secure_noise=privacy.secure_noise,
            )
            times = []
            for i, batch in enumerate(batches):
                t0 = time.perf_counter()
                logical_step(
                    lm=lm,
                    layout=layout,
                    prompt=prompt,
                    forward=parts.module,
                    optimizer=parts.optimizer,
                    examples=batch,
                    dp=True,
                    max_physical=training.max_physical_batch,
                )
                if i > 0:  # the first is a warm-up
                    times.append(time.perf_counter() - t0)
                    print(f"  {name} trainer step {i}: {times[-1]:.2f} s", flush=True)
            parts.module._close()
        out[name] = {"step": statistics.median(times)}
    n_tok = sum(len(e.ids) for b in batches[1:] for e in b) / max(1, len(batches) - 1)
    for row in out.values():
        row.update(tokens_per_batch=n_tok, batch=float(bs))
    return out


def demo_policy() -> Any:
    """The shipped policy with the demo's domain and schedule (no DP keywords: they add a word or two)."""
    import yaml
    from quality import set_dotted

    from appliance.demo.settings import DEMO_DOMAIN, DEMO_EPOCHS, DEMO_SCHEDULE
    from appliance.policy.loader import default_policy_path, parse_policy

    doc = yaml.safe_load(default_policy_path().read_text(encoding="utf-8"))
    sets: dict[str, Any] = {**DEMO_DOMAIN, **DEMO_SCHEDULE, "training.epochs": DEMO_EPOCHS}
    return parse_policy(set_dotted(doc, sets), "default + demo settings")


def random_lm(model_dir: Path) -> Any:
    """A FrozenLM of ``model_dir``'s architecture and tokenizer with random weights (timing only)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from appliance.train.lm import FrozenLM, _freeze

    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    tok.padding_side = "right"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(str(model_dir), local_files_only=True))
    return FrozenLM(_freeze(model.float()), tok, model_dir.name, "sha256:random", model_dir, add_bos=False)


def main() -> None:
    from appliance.demo.settings import DEMO_LABELS
    from appliance.train.layout import Layout, build_examples

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, default=None, help="a cache 'torch' folder (default: the real model)")
    ap.add_argument("--random-weights", action="store_true", help="random weights of --model-dir's shapes (time only)")
    ap.add_argument("--csv", type=Path, default=CSV)
    ap.add_argument("--threads", default="", help="comma-separated torch thread counts (default: torch's own)")
    ap.add_argument("--steps", type=int, default=3, help="steps timed per path after one warm-up")
    ap.add_argument("--force-bf16", action="store_true", help="time bf16 also where the CPU has no bf16 units")
    args = ap.parse_args()

    policy = demo_policy()
    if args.random_weights:
        if args.model_dir is None:
            ap.error("--random-weights needs --model-dir")
        base = random_lm(args.model_dir)
    else:
        from appliance.config import Workspace
        from appliance.train.lm import load_frozen

        base = load_frozen(Workspace(Path.cwd()), policy.generation.default_model)
    labels = set(DEMO_LABELS.split(","))
    with args.csv.open(newline="", encoding="utf-8") as fh:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(fh) if r["category"] in labels]
    layout = Layout.for_training(policy.training, base, k=policy.training.virtual_tokens, labelled=True)
    examples = build_examples(base.encode, layout, [t for t, _ in rows], [c for _, c in rows])
    units = "+".join(bf16_units()) or "none"
    paths = ["fp32"] + (["bf16"] if units != "none" or args.force_bf16 else [])
    counts = [int(x) for x in args.threads.split(",") if x.strip()] or [torch.get_num_threads()]
    weights = "random weights" if args.random_weights else "real weights"
    print(f"{len(examples)} examples; paths {paths}; bf16 units: {units}; {weights}", flush=True)
    lines = []
    for n in counts:
        torch.set_num_threads(n)
        res = time_steps(base, layout, examples, policy.training, policy.privacy, steps=args.steps, paths=paths)
        fp32 = res["fp32"]["step"]
        bf16 = "no bf16"
        if "bf16" in res:
            bf16 = f"bf16 {res['bf16']['step']:.2f} s ({fp32 / res['bf16']['step']:.2f}× fp32)"
        lines.append(
            f"trainer step {n} threads: fp32 {fp32:.2f} s, {bf16}; batch {res['fp32']['batch']:.0f}, "
            f"{res['fp32']['tokens_per_batch']:.0f} tokens/batch; CPU: {units}"
        )
        print(lines[-1], flush=True)
    if len(lines) > 1:  # the table again, in one place, after the runs' progress output
        print("\n".join(lines))


if __name__ == "__main__":
    main()
