"""Generation throughput: plain sequential llama-cpp-python vs the appliance's batched soft-prompt engine.

Same model, same machine, same sampling settings and the same number of generated tokens (EOS is banned in
both so every sequence runs to --tokens), measured in one process:

  (a) ``Llama(verbose=False).create_completion(...)`` called once per sequence, as a user would write it;
  (b) ``LlamaCppBackend.generate`` with a soft prompt (the token embeddings of an instruction text, so the
      prompt means something), --batch sequences decoded per step, the prefix KV cache shared.

Also reported: the memory-bandwidth bound (weights are streamed once per decode step: model bytes ×
steps/s against a measured copy bandwidth) and the process's peak RSS.

    .venv/bin/python bench/generation.py [--model smollm2-135m] [--seqs 32] [--tokens 128] [--batch 32]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# libgomp's own default spin, stated so that both runs see the same OpenMP behaviour whatever was set outside.
os.environ.setdefault("GOMP_SPINCOUNT", "300000")

from appliance.generate.backend import Job, Prefix, SamplingParams
from appliance.generate.embeddings import token_embeddings
from appliance.generate.llama import LlamaCppBackend
from appliance.generate.weights import batch_weights
from appliance.models.registry import verified_path

INSTRUCTION = "Write one more customer support ticket like the ones in this dataset:"
SUFFIX = "\nTicket:"


def copy_bandwidth_gbs(mb: int = 256, reps: int = 5) -> float:
    """Best-of-``reps`` numpy copy bandwidth (bytes read + written per second)."""
    src = np.ones(mb * (1 << 20) // 8)
    dst = np.empty_like(src)
    best = 0.0
    for _ in range(reps):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = max(best, 2 * src.nbytes / (time.perf_counter() - t))
    return best / 1e9


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_sequential(path: Path, n_seqs: int, n_tokens: int, s: SamplingParams, threads: int) -> tuple[int, float]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=512, n_threads=threads, n_threads_batch=threads, verbose=False)
    try:
        bias = {int(t): float("-inf") for t in (llm.token_eos(),)}
        prompt = INSTRUCTION + SUFFIX
        total, t0 = 0, time.perf_counter()
        for i in range(n_seqs):
            out = llm.create_completion(
                prompt,
                max_tokens=n_tokens,
                temperature=s.temperature,
                top_p=s.top_p,
                top_k=s.top_k,
                min_p=s.min_p,
                repeat_penalty=s.repeat_penalty,
                seed=i,
                logit_bias=bias,
            )
            total += int(out["usage"]["completion_tokens"])  # type: ignore[index]
        return total, time.perf_counter() - t0
    finally:
        llm.close()


def run_batched(
    path: Path, weights: Path, n_seqs: int, s: SamplingParams, threads: int, batch: int
) -> tuple[int, float, int]:
    """The engine on ``weights`` (the model itself, or its F16 derivative); the soft prompt comes from ``path``."""
    with LlamaCppBackend(weights, n_ctx=512, n_threads=threads, n_seq_max=batch) as be:
        soft = token_embeddings(path, be.tokenize(INSTRUCTION, add_bos=False))
        prefix = Prefix(key="bench", tokens=tuple(be.tokenize(SUFFIX, add_bos=False)), soft_prompt=soft)
        jobs = [Job(i, prefix, seed=i) for i in range(n_seqs)]
        steps = 0

        def count(_n: int) -> None:
            nonlocal steps
            steps += 1

        t0 = time.perf_counter()
        total = sum(c.n_tokens for c in be.generate(jobs, s, batch=batch, on_step=count))
        return total, time.perf_counter() - t0, steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--seqs", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--weights", choices=["f16", "native"], default="f16", help="engine weights (policy default f16)")
    ap.add_argument("--also-native", action="store_true", help="also time the engine on the native weights")
    a = ap.parse_args()
    threads = a.threads or len(os.sched_getaffinity(0))  # all cores: the bench measures the machine
    spec, path, digest = verified_path(a.model)
    weights = batch_weights(path, digest)[0] if a.weights == "f16" else path  # the machine-level model cache
    model_mb = path.stat().st_size / 1e6
    weights_mb = weights.stat().st_size / 1e6
    s = SamplingParams(
        temperature=0.9, top_p=0.95, top_k=50, min_p=0.05, repeat_penalty=1.1, max_tokens=a.tokens, ignore_eos=True
    )
    bw = copy_bandwidth_gbs()
    load0 = os.getloadavg()[0]
    seq_tok, seq_s = run_sequential(path, a.seqs, a.tokens, s, threads)
    bat_tok, bat_s, steps = run_batched(path, weights, a.seqs, s, threads, a.batch)
    native = run_batched(path, path, a.seqs, s, threads, a.batch) if a.also_native and weights != path else None
    load1 = os.getloadavg()[0]
    seq_tps, bat_tps = seq_tok / seq_s, bat_tok / bat_s
    rss = peak_rss_mb()

    rows = [
        ("model", f"{spec.name} ({model_mb:.0f} MB)"),
        ("threads / load avg before, after", f"{threads} / {load0:.2f}, {load1:.2f}"),
        ("sequences × max tokens", f"{a.seqs} × {a.tokens}"),
        ("(a) sequential create_completion", f"{seq_tok} tokens in {seq_s:.2f} s = {seq_tps:.1f} tok/s"),
        (
            f"(b) batched engine, soft prompt, {a.weights} weights",
            f"{bat_tok} tokens in {bat_s:.2f} s = {bat_tps:.1f} tok/s (batch {a.batch}, {steps} sampling steps)",
        ),
        *(
            [
                (
                    "(b') same engine, native weights",
                    f"{native[0]} tokens in {native[1]:.2f} s = {native[0] / native[1]:.1f} tok/s",
                )
            ]
            if native
            else []
        ),
        ("copy bandwidth (numpy, r+w)", f"{bw:.1f} GB/s"),
        ("(a) weight traffic", f"{model_mb * seq_tps / 1e3:.1f} GB/s = {model_mb * seq_tps / 1e3 / bw:.0%} of copy bw"),
        ("(a) bound at copy bandwidth", f"{bw * 1e3 / model_mb:.0f} tok/s (one weight pass per token)"),
        (
            "(b) weight traffic",
            f"{weights_mb * steps / bat_s / 1e3:.1f} GB/s (one pass of {weights_mb:.0f} MB per step)",
        ),
        ("peak RSS (both runs)", f"{rss:.0f} MB"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 60}")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(
        f"batched/sequential tokens/s ratio: {bat_tps / seq_tps:.2f} "
        f"(sequential {seq_tps:.1f} tok/s, batched {bat_tps:.1f} tok/s, peak RSS {rss:.0f} MB)"
    )


if __name__ == "__main__":
    main()
