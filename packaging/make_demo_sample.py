"""Build the demo sample shipped in the repo: a small BANKING77 subset (CC BY 4.0) with planted fake PII.

Deterministic: 6 intents × 120 queries from ../shared/data/banking77 — the first rows per intent of
``train.csv`` in file order, then of ``test.csv`` where the training file has fewer (lost_or_stolen_card has
82) — then fake PII (names, emails, phone numbers, card numbers — generated, not real) planted in
every 6th record so the PII scan has something to do. Run from the repo root:
    .venv/bin/python packaging/make_demo_sample.py
"""

from __future__ import annotations

import csv
import random
import shutil
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"
DEST = Path(__file__).resolve().parents[1] / "appliance" / "demo" / "data"
INTENTS = [
    "card_arrival",
    "exchange_rate",
    "lost_or_stolen_card",
    "top_up_failed",
    "pin_blocked",
    "cash_withdrawal_charge",
]
PER_INTENT = 120  # DP at ε = 4 learns from records: 90 per intent train after the 0.25 holdout
PLANTS = [
    "Hi, this is {name}. {text}",
    "{text} You can email me at {email}.",
    "{text} Call me back on {phone} please.",
    "{text} My card number is {card}.",
    "My name is {name} and {lower}",
]
NAMES = ["Maria Gonzalez", "James Whitfield", "Aisha Khan", "Peter Novak", "Linda Okafor", "Tomasz Zielinski"]


def main() -> None:
    rng = random.Random(20261121)
    rows: dict[str, list[str]] = {k: [] for k in INTENTS}
    for part in ("train.csv", "test.csv"):
        with open(SRC / part, newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                if r["category"] in rows and len(rows[r["category"]]) < PER_INTENT:
                    rows[r["category"]].append(r["text"].strip())
    out = []
    for label in INTENTS:
        for text in rows[label]:
            out.append((text, label))
    rng.shuffle(out)
    planted = []
    for i, (text, label) in enumerate(out):
        if i % 6 == 0:
            text = text if text[-1] in ".?!" else text + "."
            name = rng.choice(NAMES)
            tmpl = PLANTS[(i // 6) % len(PLANTS)]
            text = tmpl.format(
                name=name,
                text=text,
                lower=text[0].lower() + text[1:],
                email=name.lower().replace(" ", ".") + "@example.com",
                phone=f"(555) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
                card="4111 1111 1111 1111",
            )
        planted.append((text, label))
    DEST.mkdir(parents=True, exist_ok=True)
    with open(DEST / "banking77_sample.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "category"])
        w.writerows(planted)
    shutil.copyfile(SRC / "LICENSE", DEST / "LICENSE-BANKING77")
    print(f"wrote {len(planted)} records to {DEST / 'banking77_sample.csv'}")


if __name__ == "__main__":
    main()
