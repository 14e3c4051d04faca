"""The PII bench's evaluation sets: each a list of (text, gold spans), with where it comes from.

Public, licensed, shipped with their provenance (nothing is fetched when the bench runs):

* ``synthetic`` — presidio-research's ``synth_dataset_v2.json`` (MIT; ``../shared/data/pii_presidio_synth``,
  its PROVENANCE.md): 1,500 templated sentences with Faker values, span-annotated.
* ``aci-dialogue``, ``aci-note`` — ACI-BENCH (CC BY 4.0; ``bench/data/aci_bench``, its PROVENANCE.md): 207
  role-played doctor–patient conversations in lower-case speech-recognition style, and their written visit
  notes. Gold = every whole-word occurrence of the encounter's patient first and family name (from the
  metadata); the doctor's name words are gold of type ``CLINICIAN`` (not scored for recall). Nothing else is
  annotated, so precision there is a lower bound and over-redaction an upper bound.
* ``tab-legal`` — ten ECHR judgments of the Text Anonymization Benchmark's test split (MIT; ``bench/data/tab_echr``,
  its PROVENANCE.md), with the union of its annotators' DIRECT and QUASI mentions. Gold for recall: the DIRECT
  person mentions (``PERSON``) and DIRECT codes (application numbers, ``CASE_NUMBER``); every QUASI mention
  (other people such as judges and lawyers, dates, places, organisations, codes) is gold for precision only.
  Entities TAB marks as needing no masking ("the Government", "the Convention", "Article 3") are not gold: a
  finding there is a false alarm.
* ``ids-incidents`` — "PII-synthetic_dataset" (MIT; ``bench/data/pii_synthetic_ids``, its PROVENANCE.md): 149
  short incident reports dense with structured identifiers (SSNs, passports, driver's licences, tax and patient
  IDs, account numbers, Aadhaar/PAN, user names), each with a list of entity strings and labels. Gold = every
  occurrence of a listed string in its text; strings not in the text verbatim are dropped. The lists are not
  complete (an unlisted name or number is there), so precision is a lower bound.

Hand-made smoke sets (``bench/data/{transcript,legal,clinical,forum}.txt``): small texts written for this
bench by the session that wrote the rules — a check of each style and failure mode, never held out.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYNTH = HERE.parent.parent / "shared" / "data" / "pii_presidio_synth" / "synth_dataset_v2.json"
ACI = HERE / "data" / "aci_bench"
ACI_SPLITS = ("train", "valid", "clinicalnlp_taskB_test1", "clinicalnlp_taskC_test2", "clef_taskC_test3")
HAND_MADE = ("transcript", "legal", "clinical", "forum")
TAB = HERE / "data" / "tab_echr" / "docs.jsonl"
# TAB (identifier type, entity type) -> the bench's gold type; DIRECT types the bench scores for recall
_TAB_DIRECT = {"PERSON": "PERSON", "CODE": "CASE_NUMBER"}

IDS = HERE / "data" / "pii_synthetic_ids" / "pii_syn_nano_en.json"
# the set's labels -> the bench's direct types; any other label (organisations, titles, systems, passwords, routing
# numbers, which name a bank) is gold for precision only
_IDS_DIRECT = {
    "PERSON": "PERSON", "EMAIL": "EMAIL_ADDRESS", "PHONE": "PHONE_NUMBER", "SSN": "US_SSN", "IBAN": "IBAN_CODE",
    "CREDIT_CARD": "CREDIT_CARD", "PASSPORT": "PASSPORT_NUMBER", "PASSPORT_NUM": "PASSPORT_NUMBER",
    **dict.fromkeys(("DRIVER_LICENSE", "DRIVERS_LICENSE", "DRIVER_LICENSE_NUM", "LICENSE"), "DRIVER_LICENSE"),
    **dict.fromkeys(("TAX_ID", "TAXID", "PAN", "AADHAR", "VOTER_ID"), "NATIONAL_ID"),
    **dict.fromkeys(("ACCOUNT", "ACCOUNT_NUMBER", "ACCOUNT_NUM", "BANK_ACCOUNT", "BANK_ACCOUNT_NUM"), "ACCOUNT_NUMBER"),
    **dict.fromkeys(("PATIENT_ID", "PID", "MEDICAL_RECORD"), "MEDICAL_RECORD_NUMBER"),
    **dict.fromkeys(("INSURANCE_ID", "INSURANCE_POLICY_NUM", "EMPLOYEE_ID", "POLICE_ID_NUM"), "CUSTOMER_ID"),
    **dict.fromkeys(("USERID", "USER_ID", "USERNAME"), "SOCIAL_HANDLE"),
}  # fmt: skip

_LEADING_LABEL = re.compile(r"(?:[^\W\d]+\.?(?::\s*|\s+))+")
_LOWER_WORDS = re.compile(r"(?:[a-z]+(?:\s+|$))+")

Gold = list[tuple[int, int, str]]
Record = tuple[str, Gold]

_MARK = re.compile(r"\[\[([A-Z_]+)\|(.+?)\]\]", re.S)
# a section header: a line (or a line's start up to a colon) in capitals, e.g. "REVIEW OF SYSTEMS", "HPI:"
HEADER = re.compile(r"^[ \t]*([A-Z][A-Z0-9 ,/&()'-]*[A-Z)])[ \t]*(?::|$)", re.M)


def parse_marked(block: str) -> Record:
    """Text and gold spans from ``[[TYPE|text]]`` markup."""
    out: list[str] = []
    gold: Gold = []
    pos = length = 0
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


def load_hand_made(name: str) -> list[Record]:
    """One hand-made set: blank-line separated blocks, ``#`` lines are comments."""
    lines = (HERE / "data" / f"{name}.txt").read_text(encoding="utf-8").splitlines()
    text = "\n".join(ln for ln in lines if not ln.startswith("#"))
    return [parse_marked(b.strip("\n")) for b in re.split(r"\n[ \t]*\n", text) if b.strip()]


def load_synth(limit: int | None = None) -> list[Record]:
    """presidio-research's synthetic set (the first ``limit`` records)."""
    data = json.loads(SYNTH.read_text(encoding="utf-8"))[:limit]
    return [
        (r["full_text"], [(s["start_position"], s["end_position"], s["entity_type"]) for s in r["spans"]]) for r in data
    ]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(io.StringIO(fh.read())))


def _name_spans(text: str, words: list[str], label: str) -> Gold:
    spans: Gold = []
    for w in words:
        spans += [(m.start(), m.end(), label) for m in re.finditer(rf"\b{re.escape(w)}\b", text, re.I)]
    return spans


def _names(value: str) -> list[str]:
    """Alphabetic name words of a metadata field ("Dr. Gutierrez" -> ["Gutierrez"]; "33" -> [])."""
    words = [w for w in re.findall(r"[^\W\d_]+", value) if len(w) > 1]
    return [w for w in words if w.casefold() not in {"dr", "mr", "mrs", "ms", "miss", "doctor"}]


def load_aci(column: str) -> list[Record]:
    """ACI-BENCH ``dialogue`` or ``note`` texts of all five splits, with patient (and clinician) name gold."""
    records: list[Record] = []
    for split in ACI_SPLITS:
        texts = _read_csv(ACI / f"{split}.csv.gz")
        meta = _read_csv(ACI / f"{split}_metadata.csv.gz")
        for row, info in zip(texts, meta, strict=True):
            if row["encounter_id"] != info["encounter_id"]:
                raise ValueError(f"{split}: metadata out of step at {row['encounter_id']}")
            text = row[column]
            patient = _names(info["patient_firstname"]) + _names(info["patient_familyname"])
            gold = _name_spans(text, patient, "PERSON")
            taken = {(s, e) for s, e, _ in gold}
            gold += [g for g in _name_spans(text, _names(info["doctor_name"]), "CLINICIAN") if g[:2] not in taken]
            records.append((text, sorted(gold)))
    return records


def load_tab() -> list[Record]:
    """TAB's ECHR judgments: DIRECT persons and codes as direct identifiers, every QUASI mention as quasi gold."""
    records: list[Record] = []
    for line in TAB.read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        best: dict[tuple[int, int], str] = {}
        for m in doc["mentions"]:
            direct = m["identifier_type"] == "DIRECT" and m["entity_type"] in _TAB_DIRECT
            kind = _TAB_DIRECT[m["entity_type"]] if direct else f"TAB_{m['identifier_type']}_{m['entity_type']}"
            span = (m["start"], m["end"])
            if span not in best or direct:  # a span one annotator calls DIRECT is scored as direct
                best[span] = kind
        records.append((doc["text"], sorted((s, e, t) for (s, e), t in best.items())))
    return records


def load_ids() -> list[Record]:
    """The incident reports: every occurrence of each listed entity string, typed by :data:`_IDS_DIRECT`."""
    records: list[Record] = []
    for row in json.loads(IDS.read_text(encoding="utf-8")):
        text = row["text"]
        best: dict[tuple[int, int], str] = {}
        for ent in row["NER"]:
            value, label = ent.get("entity"), ent.get("label", "")
            if not value:
                continue  # one entry names its value under another key
            direct = label in _IDS_DIRECT
            kind = _IDS_DIRECT[label] if direct else f"IDS_{label}"
            # some strings start with their label ("patient ID 108965", "DL:US98765432") or a person's role ("system
            # administrator root.access@…"): the identifier or name is what follows; a "name" in lower case only
            # ("citizen") is no name
            if kind == "PERSON":
                lead = _LOWER_WORDS.match(value)
                skip = lead.end() if lead else 0
                if skip == len(value):
                    continue
            else:  # direct identifiers only: a password's words are its own
                lead = _LEADING_LABEL.match(value) if direct and kind != "EMAIL_ADDRESS" else None
                skip = lead.end() if lead and re.search(r"\d", value[lead.end() :]) else 0
            for m in re.finditer(re.escape(value), text):
                span = (m.start() + skip, m.end())
                if span not in best or direct:
                    best[span] = kind
        records.append((text, sorted((s, e, t) for (s, e), t in best.items())))
    return records


def header_tokens(text: str) -> list[tuple[int, int]]:
    """``\\w+`` token offsets inside the text's section headers."""
    return [
        (m.start(1) + t.start(), m.start(1) + t.end()) for m in HEADER.finditer(text) for t in re.finditer(r"\w+", m[1])
    ]


def public_sets(limit: int | None = None) -> dict[str, list[Record]]:
    """The public, licensed sets, by name."""
    return {
        "synthetic": load_synth(limit),
        "aci-dialogue": load_aci("dialogue"),
        "aci-note": load_aci("note"),
        "tab-legal": load_tab(),
        "ids-incidents": load_ids(),
    }


def hand_made_sets() -> dict[str, list[Record]]:
    """The hand-made smoke sets, by name (prefixed ``hm-``)."""
    return {f"hm-{name}": load_hand_made(name) for name in HAND_MADE}
