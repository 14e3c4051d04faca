"""PII benchmark: per data set, span-level recall of direct identifiers, precision and over-redaction, and the
batched scan's speed — for the appliance's engine under the shipped default policy (packs included).

Data sets:

* ``synthetic`` — presidio-research's ``synth_dataset_v2.json`` (MIT; ../shared/data/pii_presidio_synth, see
  its PROVENANCE.md): 1,500 templated sentences with Faker values.
* ``transcript``, ``legal``, ``clinical``, ``forum`` — small hand-made texts written for this bench in those
  styles (``bench/data/*.txt``; every name and number invented; gold spans marked ``[[TYPE|text]]``). They
  are small and were written by the same people as the rules: read their figures as a smoke test of each
  style, not as a held-out measurement.

Scores (``\\w+`` tokens; a prediction is a span the pipeline would change — types the policy allows, such as
DATE_TIME, are not predictions):

* direct recall — a gold direct-identifier span (:data:`DIRECT`) counts as found when every one of its tokens
  is covered by predictions (of any type: "would it be removed");
* precision — the share of predicted spans that overlap a gold span of any type (quasi-identifiers such as
  LOCATION, DATE_TIME or AGE are gold too, so removing them is not counted against precision);
* over-redaction — the share of tokens outside every gold span that a prediction changes.

Speed: records/s of the batched scan (``engine.analyze``) over the synthetic texts, repeated; the load
average is printed with it. Nothing here is tuned to individual records.

Run: .venv/bin/python bench/pii.py [--repeat 2] [--limit N] [--show-misses [all]]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

HERE = Path(__file__).resolve().parent
SYNTH = HERE.parent.parent / "shared" / "data" / "pii_presidio_synth" / "synth_dataset_v2.json"
HAND_MADE = ("transcript", "legal", "clinical", "forum")

DIRECT = frozenset(
    {
        "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS",
        "STREET_ADDRESS", "US_DRIVER_LICENSE", "DRIVER_LICENSE", "PASSPORT_NUMBER", "NATIONAL_ID",
        "SOCIAL_HANDLE", "CASE_NUMBER", "MEDICAL_RECORD_NUMBER", "CUSTOMER_ID", "DATE_OF_BIRTH",
    }
)  # fmt: skip
_TOKEN = re.compile(r"\w+")
_MARK = re.compile(r"\[\[([A-Z_]+)\|(.+?)\]\]", re.S)

Gold = list[tuple[int, int, str]]


def parse_marked(block: str) -> tuple[str, Gold]:
    """Text and gold spans from ``[[TYPE|text]]`` markup."""
    out, gold, pos = [], [], 0
    length = 0
    for m in _MARK.finditer(block):
        plain = block[pos : m.start()]
        out.append(plain)
        length += len(plain)
        gold.append((length, length + len(m.group(2)), m.group(1)))
        out.append(m.group(2))
        length += len(m.group(2))
        pos = m.end()
    out.append(block[pos:])
    return "".join(out), gold


def load_hand_made(name: str) -> list[tuple[str, Gold]]:
    lines = [ln for ln in (HERE / "data" / f"{name}.txt").read_text(encoding="utf-8").splitlines()]
    text = "\n".join(ln for ln in lines if not ln.startswith("#"))
    return [parse_marked(b.strip("\n")) for b in re.split(r"\n[ \t]*\n", text) if b.strip()]


def load_synth(limit: int | None) -> list[tuple[str, Gold]]:
    data = json.loads(SYNTH.read_text(encoding="utf-8"))[:limit]
    return [
        (r["full_text"], [(s["start_position"], s["end_position"], s["entity_type"]) for s in r["spans"]]) for r in data
    ]


def score(records: list[tuple[str, Gold]], predicted: list[list[tuple[int, int]]]) -> dict:
    """Span-level direct recall, span precision and token over-redaction for one data set."""
    found, missed = Counter(), Counter()
    pred_n = pred_ok = 0
    clean = clean_hit = 0
    for (text, gold), pred in zip(records, predicted, strict=True):
        tokens = [m.span() for m in _TOKEN.finditer(text)]
        covered = [any(s < te and ts < e for s, e in pred) for ts, te in tokens]
        for s, e, label in gold:
            if label not in DIRECT:
                continue
            inside = [c for (ts, te), c in zip(tokens, covered, strict=True) if ts < e and s < te]
            (found if inside and all(inside) else missed)[label] += 1
        for s, e in pred:
            pred_n += 1
            pred_ok += any(s < ge and gs < e for gs, ge, _ in gold)
        for (ts, te), c in zip(tokens, covered, strict=True):
            if not any(ts < ge and gs < te for gs, ge, _ in gold):
                clean += 1
                clean_hit += c
    n = sum(found.values()) + sum(missed.values())
    return {
        "records": len(records),
        "direct": n,
        "recall": sum(found.values()) / n if n else 1.0,
        "precision": pred_ok / pred_n if pred_n else 1.0,
        "predicted": pred_n,
        "over": clean_hit / clean if clean else 0.0,
        "missed": missed,
        "found": found,
    }


def appliance_pipeline():
    from appliance.pii import PiiPipeline
    from appliance.policy import default_policy_path, load_policy_file

    policy = load_policy_file(default_policy_path()).pii
    return PiiPipeline.from_policy(policy, key=b"bench" * 8, dataset="bench")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None, help="only the first N synthetic records")
    ap.add_argument("--repeat", type=int, default=2, help="the synthetic texts are scanned this often for speed")
    ap.add_argument(
        "--show-misses", nargs="?", const="hand", help="print misses and false alarms (hand-made sets; all: all sets)"
    )
    args = ap.parse_args()

    sets = {"synthetic": load_synth(args.limit)} | {name: load_hand_made(name) for name in HAND_MADE}
    t0 = time.perf_counter()
    pipe = appliance_pipeline()
    pipe.engine.analyze(["warm up: Dr. Smith"])
    load_s = time.perf_counter() - t0

    results = {}
    for name, records in sets.items():
        spans = pipe.spans([t for t, _ in records])
        predicted = [[(s.start, s.end) for s in sp] for sp in spans]
        results[name] = score(records, predicted)
        if args.show_misses and (name != "synthetic" or args.show_misses == "all"):
            for (text, gold), pred in zip(records, predicted, strict=True):
                for s, e, label in gold:
                    if label in DIRECT and not all(any(ps < te and ts < pe for ps, pe in pred)
                                                   for ts, te in (m.span() for m in _TOKEN.finditer(text))
                                                   if ts < e and s < te):  # fmt: skip
                        print(f"  miss {name}: {label} {text[s:e]!r}")
                for ps, pe in pred:
                    if not any(ps < ge and gs < pe for gs, ge, _ in gold):
                        print(f"  false {name}: {text[ps:pe]!r}")

    packs = ", ".join(load_default_packs()) or "none"
    print(f"# appliance engine, shipped default policy (packs: {packs}); load {load_s:.1f} s")
    print(f"{'data set':<11} {'records':>7} {'direct':>6} | {'recall':>6} {'precision':>9} {'predicted':>9} | "
          f"{'over-redaction':>14} | missed direct spans by type")  # fmt: skip
    for name, r in results.items():
        missed = ", ".join(f"{k} {v}" for k, v in sorted(r["missed"].items())) or "-"
        print(
            f"{name:<11} {r['records']:>7} {r['direct']:>6} | {r['recall']:>6.3f} {r['precision']:>9.3f} "
            f"{r['predicted']:>9} | {r['over']:>14.3f} | {missed}"
        )

    texts = [t for t, _ in sets["synthetic"]] * args.repeat
    engine = pipe.engine
    c0, t1 = os.times(), time.perf_counter()
    engine.analyze(texts)
    secs = time.perf_counter() - t1
    c1 = os.times()
    cpu = (c1.user + c1.system + c1.children_user + c1.children_system) - (
        c0.user + c0.system + c0.children_user + c0.children_system
    )
    rps = len(texts) / secs
    print(
        f"batched scan: {len(texts)} synthetic records in {secs:.1f} s ({engine.n_process()} proc.), "
        f"{1000 * cpu / len(texts):.2f} CPU ms/record; load average {os.getloadavg()[0]:.1f}"
    )
    recalls = [r["recall"] for r in results.values()]
    precisions = [r["precision"] for r in results.values()]
    total_direct = sum(r["direct"] for r in results.values())
    recall = sum(r["recall"] * r["direct"] for r in results.values()) / total_direct
    total_pred = sum(r["predicted"] for r in results.values())
    precision = sum(r["precision"] * r["predicted"] for r in results.values()) / total_pred
    print(
        f"pii: direct recall {recall:.3f} (min over sets {min(recalls):.3f}), precision {precision:.3f} "
        f"(min over sets {min(precisions):.3f}), records/s {rps:.0f}"
    )


def load_default_packs() -> list[str]:
    from appliance.policy import default_policy_path, load_policy_file

    return list(getattr(load_policy_file(default_policy_path()).pii, "packs", []))


if __name__ == "__main__":
    main()
