"""Cost of running llama.cpp safely: the one-time kernel self-test and decoding in a worker process.

Same model, same jobs, same process: ``LlamaCppBackend.generate`` in-process vs ``IsolatedBackend.generate``
(the worker process `appliance generate` uses), alternated ``--reps`` times; plus the worker's start-up (its
model load included) and one fresh self-test (two children at most; cached afterwards).

    .venv/bin/python bench/isolation.py [--seqs 16] [--tokens 48] [--batch 8] [--reps 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.generate import selftest
from appliance.generate.backend import Job, Prefix, SamplingParams
from appliance.generate.embeddings import token_embeddings
from appliance.generate.isolated import IsolatedBackend
from appliance.generate.llama import LlamaCppBackend
from appliance.models.registry import verified_path


def _jobs(be, path: Path, n: int) -> list[Job]:
    soft = token_embeddings(path, be.tokenize("Write one more customer support ticket:", add_bos=False))
    prefix = Prefix(key="b", tokens=tuple(be.tokenize("\nTicket:", add_bos=False)), soft_prompt=soft)
    return [Job(i, prefix, seed=i) for i in range(n)]


def _time(be, jobs: list[Job], s: SamplingParams, batch: int) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = sum(c.n_tokens for c in be.generate(jobs, s, batch=batch))
    return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--seqs", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    _, path, digest = verified_path(a.model)
    s = SamplingParams(max_tokens=a.tokens, ignore_eos=True)
    opts = {"n_ctx": 512, "n_threads": a.threads, "n_seq_max": a.batch}
    os.environ[selftest.CACHE_ENV] = tempfile.mkdtemp(prefix="bench-selftest-")
    t0 = time.perf_counter()
    verdict = selftest.extra_bufts_safe(path, digest)
    t_selftest = time.perf_counter() - t0
    t0 = time.perf_counter()
    iso = IsolatedBackend(path, use_extra_bufts=verdict.extra_bufts, **opts)
    t_start = time.perf_counter() - t0
    inproc = LlamaCppBackend(path, use_extra_bufts=verdict.extra_bufts, **opts)
    jobs = _jobs(inproc, path, a.seqs)
    rates: dict[str, list[float]] = {"in-process": [], "worker": []}
    load0 = os.getloadavg()[0]
    try:
        for _ in range(a.reps):
            for name, be in (("in-process", inproc), ("worker", iso)):
                n, dt = _time(be, jobs, s, a.batch)
                rates[name].append(n / dt)
    finally:
        iso.close()
        inproc.close()
    load1 = os.getloadavg()[0]
    med = {k: statistics.median(v) for k, v in rates.items()}
    rows = [
        ("model / threads / load before, after", f"{a.model} / {a.threads} / {load0:.2f}, {load1:.2f}"),
        ("self-test, fresh (child decode)", f"{t_selftest:.2f} s → extra buffer types {verdict.extra_bufts}"),
        ("worker start (spawn + model load)", f"{t_start:.2f} s"),
        (f"in-process, {a.seqs} seqs × {a.tokens} tok, batch {a.batch}", f"{med['in-process']:.1f} tok/s (median)"),
        ("worker process, same jobs", f"{med['worker']:.1f} tok/s (median)"),
        ("worker / in-process", f"{med['worker'] / med['in-process']:.3f}"),
    ]
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    print(
        f"isolation: worker/in-process {med['worker'] / med['in-process']:.3f}, worker start {t_start:.2f} s, "
        f"self-test {t_selftest:.2f} s (once per model and machine)"
    )


if __name__ == "__main__":
    main()
