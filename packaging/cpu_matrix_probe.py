"""One CPU of `make cpu-matrix`: the appliance's generation path on llama.cpp, a few tokens per case.

Runs in one process (under ``qemu-x86_64 -cpu MODEL`` the whole interpreter is emulated; a child process would
run natively, so nothing here spawns one): the appliance's CPU check (a CPU below the build's baseline is
refused with the one-line error ``appliance generate`` prints), then llama.cpp loaded through
``appliance.generate.llama`` and, for native and F16 weights, a few-shot prefix and a soft prompt (raw
embeddings), decoded as a batch of two sequences. Prints one JSON object; exit 0 ok, 3 refused (clean).

    python packaging/cpu_matrix_probe.py NATIVE.gguf F16.gguf [--no-extra-bufts] [--tokens N] [--positions P]

``--positions P`` keeps only the last P prefix positions of each case (the prefix is still built by the
appliance: chat template, tokenizer, soft prompt rows): an emulated CPU decodes about one position per
several seconds, so the matrix feeds it the same code paths with short inputs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.errors import ApplianceError
from appliance.generate import selftest

EXAMPLES = ["My card was declined at the shop this morning.", "How long does a transfer to another bank take?"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("native", type=Path)
    ap.add_argument("f16", type=Path)
    ap.add_argument("--no-extra-bufts", action="store_true")
    ap.add_argument("--tokens", type=int, default=4)
    ap.add_argument("--positions", type=int, default=0, help="keep only this many prefix positions (0: all)")
    a = ap.parse_args()
    out: dict[str, object] = {"cpu_flags": sorted(f for f in selftest.cpu_flags() if f in selftest.BASELINE)}
    try:
        selftest.check_cpu(a.native)
    except ApplianceError as exc:
        out.update(ok=False, refused=str(exc))
        print(json.dumps(out))
        return 3
    from appliance.generate.backend import Job, Prefix, SamplingParams
    from appliance.generate.embeddings import token_embeddings
    from appliance.generate.fewshot import fewshot_prefix
    from appliance.generate.llama import LlamaCppBackend, system_info

    out["system_info"] = system_info()
    params = SamplingParams(temperature=0.0, max_tokens=a.tokens, ignore_eos=True)
    cases = {}
    for weights, path in (("native", a.native), ("f16", a.f16)):
        with LlamaCppBackend(path, n_ctx=512, n_seq_max=2, n_threads=1, use_extra_bufts=not a.no_extra_bufts) as be:
            soft = token_embeddings(a.native, be.tokenize("Write one more customer support ticket:", add_bos=False))
            fs = fewshot_prefix(be, EXAMPLES, None, key="fs")
            suffix = tuple(be.tokenize("\nTicket:", add_bos=False))
            if a.positions:
                fs = Prefix(key="fs", tokens=fs.tokens[-a.positions :])
                soft, suffix = soft[: max(1, a.positions - 1)], suffix[-1:]
            prefixes = {"fewshot": fs, "softprompt": Prefix(key="sp", tokens=suffix, soft_prompt=soft)}
            for mode, prefix in prefixes.items():
                t0 = time.perf_counter()
                done = list(be.generate([Job(0, prefix, 1), Job(1, prefix, 2)], params, batch=2))
                ok = len(done) == 2 and all(c.n_tokens == a.tokens for c in done)
                cases[f"{mode}/{weights}"] = {
                    "ok": ok,
                    "tokens": sum(c.n_tokens for c in done),
                    "seconds": round(time.perf_counter() - t0, 2),
                    "text": done[0].text if done else "",
                }
        del soft
    out["cases"] = cases
    out["ok"] = all(c["ok"] for c in cases.values())
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
