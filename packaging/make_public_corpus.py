"""Build the demo's public corpus: BANKING77 queries of intents the demo and the quality bench never use.

The demo trains its public prior on it (``seeds import --public`` → ``train --no-dp``) before the DP run on
the sample starts from that prior (``train --init-prompt``). Deterministic: of BANKING77's 77 intents
(``categories.json`` order) it leaves out the demo sample's 6 and the first 12 others (the intents
``bench/quality.py`` tunes and measures on, so that the bench can measure this prior on intents it has not
seen), and takes 40 queries of each of the remaining 59 from ``train.csv`` with numpy's default_rng(0), in
a shuffled order. Run from the repo root:
    .venv/bin/python packaging/make_public_corpus.py
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"
DEST = Path(__file__).resolve().parents[1] / "appliance" / "demo" / "data" / "banking77_public.csv"
DEMO_INTENTS = {"card_arrival", "exchange_rate", "lost_or_stolen_card", "top_up_failed", "pin_blocked",
                "cash_withdrawal_charge"}  # fmt: skip
BENCH_INTENTS = 12  # bench/quality.py's choose_intents(k, offset) draws from the first non-demo intents
PER_INTENT = 40


def main() -> None:
    cats = [c for c in json.loads((SRC / "categories.json").read_text()) if c not in DEMO_INTENTS]
    public = cats[BENCH_INTENTS:]
    by: dict[str, list[str]] = {c: [] for c in public}
    with (SRC / "train.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["category"] in by:
                by[row["category"]].append(row["text"])
    rng = np.random.default_rng(0)
    rows: list[tuple[str, str]] = []
    for c in public:
        pick = rng.choice(len(by[c]), size=min(PER_INTENT, len(by[c])), replace=False)
        rows += [(by[c][int(i)], c) for i in pick]
    with DEST.open("w", newline="", encoding="utf-8") as out:
        w = csv.writer(out)
        w.writerow(["text", "category"])
        w.writerows(rows[int(i)] for i in rng.permutation(len(rows)))
    print(f"{DEST}: {len(rows)} queries, {len(public)} intents")


if __name__ == "__main__":
    main()
