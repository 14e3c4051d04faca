"""PII benchmark: per data set, span-level recall of direct identifiers, precision and over-redaction, and the
batched scan's speed — for the appliance's engine under the shipped default policy (packs included).

Data sets (see ``bench/pii_sets.py`` and each set's PROVENANCE.md): the public, licensed ones —
``synthetic`` (presidio-research's templated set, MIT), ``aci-dialogue`` and ``aci-note`` (ACI-BENCH's
lower-case doctor–patient transcripts and their visit notes, CC BY 4.0; gold = patient-name occurrences
only) — and the hand-made smoke sets ``hm-*`` (written with the rules, not held out). The figure line is
over the public sets only.

Scores (``\\w+`` tokens; a prediction is a span the pipeline would change — types the policy allows, such as
DATE_TIME, are not predictions):

* direct recall — a gold direct-identifier span (:data:`DIRECT`) counts as found when every one of its tokens
  but a courtesy title ("Mr", "Dr") is covered by predictions (of any type: "would it be removed");
* precision — the share of predicted spans that overlap a gold span of any type (quasi-identifiers such as
  LOCATION, DATE_TIME or AGE are gold too, so removing them is not counted against precision);
* over-redaction — the share of tokens outside every gold span that a prediction changes;
* headers — on sets with upper-case section headers: how many header tokens a prediction changes.

Speed: records/s of the batched scan (``engine.analyze``) over the synthetic texts, repeated; the load
average is printed with it. Nothing here is tuned to individual records.

Run: nice -n 19 .venv/bin/python bench/pii.py [--repeat 2] [--limit N] [--show-misses [all]] [--false-top N]
     [--sets aci-dialogue,hm-transcript]
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections import Counter
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

from pii_sets import Record, hand_made_sets, header_tokens, public_sets

from appliance.pii import lexicon

DIRECT = frozenset(
    {
        "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS",
        "STREET_ADDRESS", "US_DRIVER_LICENSE", "DRIVER_LICENSE", "PASSPORT_NUMBER", "NATIONAL_ID",
        "SOCIAL_HANDLE", "CASE_NUMBER", "MEDICAL_RECORD_NUMBER", "CUSTOMER_ID", "DATE_OF_BIRTH", "ACCOUNT_NUMBER",
    }
)  # fmt: skip
_TOKEN = re.compile(r"\w+")
# the appliance's courtesy titles, the peers' of UK judgments, and a police rank ("Officer Barnes")
TITLES = lexicon.TITLES | {"lady", "lord", "officer"}
Pred = list[tuple[int, int]]


def _overlaps(s: int, e: int, spans: Pred) -> bool:
    return any(ps < e and s < pe for ps, pe in spans)


def _found(text: str, s: int, e: int, pred: Pred) -> bool:
    """Every token of the gold span is covered, except a courtesy title (TAB's spans include "Mr", "Dr"; a name
    whose title stays is still removed)."""
    tokens = [m for m in _TOKEN.finditer(text) if m.start() < e and s < m.end()]
    inside = [_overlaps(*m.span(), pred) for m in tokens if m.group().casefold() not in TITLES]
    return bool(inside) and all(inside)


def score(records: list[Record], predicted: list[Pred]) -> dict[str, Any]:
    """Span-level direct recall, span precision, token over-redaction and header tokens changed, for one set."""
    found: Counter[str] = Counter()
    missed: Counter[str] = Counter()
    pred_n = pred_ok = clean = clean_hit = head = head_hit = 0
    for (text, gold), pred in zip(records, predicted, strict=True):
        for s, e, label in gold:
            if label in DIRECT:
                (found if _found(text, s, e, pred) else missed)[label] += 1
        golds = [(s, e) for s, e, _ in gold]
        pred_n += len(pred)
        pred_ok += sum(_overlaps(s, e, golds) for s, e in pred)
        for m in _TOKEN.finditer(text):
            if not _overlaps(*m.span(), golds):
                clean += 1
                clean_hit += _overlaps(*m.span(), pred)
        heads = [h for h in header_tokens(text) if not _overlaps(*h, golds)]  # a capitalised name is no header
        head += len(heads)
        head_hit += sum(_overlaps(s, e, pred) for s, e in heads)
    n = sum(found.values()) + sum(missed.values())
    return {
        "records": len(records),
        "direct": n,
        "recall": sum(found.values()) / n if n else 1.0,
        "precision": pred_ok / pred_n if pred_n else 1.0,
        "predicted": pred_n,
        "over": clean_hit / clean if clean else 0.0,
        "headers": f"{head_hit}/{head}" if head else "-",
        "missed": missed,
    }


def appliance_pipeline() -> tuple[Any, list[str]]:
    """The pipeline under the shipped default policy, and the policy's packs."""
    from appliance.pii import PiiPipeline
    from appliance.policy import default_policy_path, load_policy_file

    policy = load_policy_file(default_policy_path()).pii
    return PiiPipeline.from_policy(policy, key=b"bench" * 8, dataset="bench"), list(policy.packs)


def show_errors(name: str, records: list[Record], predicted: list[Pred], top: int) -> None:
    """Misses with their context, and the most frequent false alarms (lower-cased) of one set."""
    false: Counter[str] = Counter()
    for (text, gold), pred in zip(records, predicted, strict=True):
        for s, e, label in gold:
            if label in DIRECT and not _found(text, s, e, pred):
                print(f"  miss {name}: {label} {text[max(0, s - 40) : e + 20]!r}")
        golds = [(s, e) for s, e, _ in gold]
        false.update(text[ps:pe].lower() for ps, pe in pred if not _overlaps(ps, pe, golds))
    print(f"  false {name} ({sum(false.values())}): " + ", ".join(f"{t!r} {c}" for t, c in false.most_common(top)))


def table(results: dict[str, dict[str, Any]]) -> None:
    print(f"{'data set':<13} {'records':>7} {'direct':>6} | {'recall':>6} {'precision':>9} {'predicted':>9} | "
          f"{'over-redaction':>14} {'headers':>9} | missed direct spans by type")  # fmt: skip
    for name, r in results.items():
        missed = ", ".join(f"{k} {v}" for k, v in sorted(r["missed"].items())) or "-"
        print(
            f"{name:<13} {r['records']:>7} {r['direct']:>6} | {r['recall']:>6.3f} {r['precision']:>9.3f} "
            f"{r['predicted']:>9} | {r['over']:>14.3f} {r['headers']:>9} | {missed}"
        )


def scan_speed(engine: Any, texts: list[str]) -> float:
    """Records/s of one batched scan; prints CPU ms/record and the load average."""
    c0, t1 = os.times(), time.perf_counter()
    engine.analyze(texts)
    secs = time.perf_counter() - t1
    c1 = os.times()
    cpu = (c1.user + c1.system + c1.children_user + c1.children_system) - (
        c0.user + c0.system + c0.children_user + c0.children_system
    )
    print(
        f"batched scan: {len(texts)} synthetic records in {secs:.1f} s ({engine.n_process()} proc.), "
        f"{1000 * cpu / len(texts):.2f} CPU ms/record; load average {os.getloadavg()[0]:.1f}"
    )
    return len(texts) / secs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None, help="only the first N synthetic records")
    ap.add_argument("--repeat", type=int, default=2, help="the synthetic texts are scanned this often for speed")
    ap.add_argument("--show-misses", nargs="?", const="hand", help="print misses and false alarms (all: all sets)")
    ap.add_argument("--false-top", type=int, default=15, help="with --show-misses: this many false alarms per set")
    ap.add_argument("--sets", default="", help="comma-separated set names to score (default: all; no figure line)")
    args = ap.parse_args()

    public, hand = public_sets(args.limit), hand_made_sets()
    if args.sets:
        keep = set(args.sets.split(","))
        public, hand = {k: v for k, v in public.items() if k in keep}, {k: v for k, v in hand.items() if k in keep}
    t0 = time.perf_counter()
    pipe, packs = appliance_pipeline()
    pipe.engine.analyze(["warm up: Dr. Smith"])
    load_s = time.perf_counter() - t0

    results: dict[str, dict[str, Any]] = {}
    for name, records in (public | hand).items():
        t1 = time.perf_counter()
        spans = pipe.spans([t for t, _ in records])
        predicted = [[(s.start, s.end) for s in sp] for sp in spans]
        results[name] = score(records, predicted) | {"secs": time.perf_counter() - t1}
        if args.show_misses and (name in hand or args.show_misses == "all"):
            show_errors(name, records, predicted, args.false_top)

    print(f"# appliance engine, shipped default policy (packs: {', '.join(packs) or 'none'}); load {load_s:.1f} s")
    print("# public, licensed sets (aci-*: gold = patient names only, so precision is a lower bound)")
    table({k: results[k] for k in public})
    print("# hand-made smoke sets (written with the rules; not held out)")
    table({k: results[k] for k in hand})
    print("scan time per set: " + ", ".join(f"{k} {r['secs']:.1f} s" for k, r in results.items()))

    if args.sets:
        return
    rps = scan_speed(pipe.engine, [t for t, _ in public["synthetic"]] * args.repeat)
    pub = [results[k] for k in public]
    recall = sum(r["recall"] * r["direct"] for r in pub) / sum(r["direct"] for r in pub)
    precision = sum(r["precision"] * r["predicted"] for r in pub) / sum(r["predicted"] for r in pub)
    print(
        f"pii: direct recall {recall:.3f} (min over sets {min(r['recall'] for r in pub):.3f}), precision "
        f"{precision:.3f} (min over sets {min(r['precision'] for r in pub):.3f}), records/s {rps:.0f}"
    )


if __name__ == "__main__":
    main()
