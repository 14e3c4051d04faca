"""Issue 15 §2/§3: the budget follows records (or declared subjects), not dataset names, and caps Σδ per record.

A test-double PII pipeline replaces names (as in test_ingest_public_schema.py), so imports run without
Presidio; training refusals happen before the model is loaded, so the CLI tests need no model either.
"""

from __future__ import annotations

import csv
import json
import math
import re
import sqlite3
from pathlib import Path

import pytest

from appliance.budget import BudgetLedger
from appliance.budget.composition import Spent, group_charge, unit_overruns
from appliance.budget.ledger import dataset_units, most_charged
from appliance.budget.units import RECORD, SUBJECT, record_unit, subject_unit, units_digest
from appliance.config import Workspace
from appliance.context import Context
from appliance.errors import BadInput, BudgetExhausted
from appliance.ingest import import_seeds
from appliance.pii.pipeline import PiiResult
from appliance.policy.schema import PrivacyPolicy

NAMES = ["Alice", "Bruno", "Chen", "Dora", "Emil", "Fatima"]


class _Engine:
    def describe(self) -> dict:
        return {"engine": "test-double", "model_sha256": "sha256:" + "0" * 64}


class NamePipeline:
    """Pseudonymises the names above per dataset (as the real pipeline does), finds nothing else."""

    engine = _Engine()
    _re = re.compile(r"\b(" + "|".join(NAMES) + r")\b")

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset

    def scan(self, texts: list[str]) -> list[list[dict]]:
        return [[] for _ in texts]

    def process(self, texts: list[str]) -> list[PiiResult]:
        return [
            PiiResult(self._re.sub(f"Name{len(self.dataset)}", t), False, [], key_text=self._re.sub("<PERSON>", t))
            for t in texts
        ]


TOPICS = ["card", "transfer", "balance", "pin", "fee", "loan", "savings", "mortgage", "refund", "limit"]


def _rows(n: int = 30) -> list[dict[str, str]]:
    return [
        {
            "text": f"{NAMES[i % len(NAMES)]} asks about the {TOPICS[i % len(TOPICS)]} question number {i}",
            "person": f"cust-{i % 7}",
        }
        for i in range(n)
    ]


def _jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def ctx(workspace: Path):
    c = Context.open(Workspace(workspace), actor="tester")
    yield c
    c.close()


def _import(ctx: Context, path: Path, dataset: str, **kw):
    return import_seeds(ctx, path, dataset=dataset, pipeline=NamePipeline(dataset), **kw)  # type: ignore[arg-type]


def _reserve(ctx: Context, dataset: str, eps: float, delta: float = 1e-6) -> int:
    return BudgetLedger(ctx.db, ctx.policy.privacy).reserve(
        dataset, epsilon=eps, delta=delta, accountant="rdp", actor="tester", policy_sha256=ctx.policy_sha256
    )


# --- pure functions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("eps", "delta", "k", "want"),
    [
        (1.0, 1e-6, 1, (1.0, 1e-6)),
        (1.0, 1e-6, 2, (2.0, 2 * math.e * 1e-6)),
        (0.5, 1e-7, 3, (1.5, 3 * math.exp(1.0) * 1e-7)),
        (4.0, 1e-6, 400, (1600.0, 1.0)),  # δ capped at 1, no overflow
    ],
)
def test_group_charge_golden(eps, delta, k, want):
    e, d = group_charge(epsilon=eps, delta=delta, size=k)
    assert e == pytest.approx(want[0]) and d == pytest.approx(want[1])


def test_unit_keys_are_normalised_hashes_never_text():
    assert record_unit("Call <PERSON>  now") == record_unit("call <person> now")
    assert record_unit("call <PERSON> now") != record_unit("call <PERSON> later")
    k = record_unit("call <PERSON> now")
    assert re.fullmatch(r"[0-9a-f]{64}", k)
    assert subject_unit(b"k" * 32, "cust-1") == subject_unit(b"k" * 32, " cust-1 ")
    assert subject_unit(b"k" * 32, "cust-1") != subject_unit(b"j" * 32, "cust-1")  # keyed: not a bare hash
    assert units_digest([("record", "a", 1), ("subject", "b", 2)]) == units_digest(
        [("subject", "b", 2), ("record", "a", 1)]
    )


def test_unit_overruns_counts_records_and_groups_subjects():
    spent = {(RECORD, "a"): Spent(15.0, 1e-6, 2)}
    run = {(RECORD, "a"): 1, (RECORD, "b"): 1, (SUBJECT, "s"): 3}
    over = {o.kind: o for o in unit_overruns(spent, run, epsilon=2.0, delta=1e-6, epsilon_cap=16, delta_cap=1e-5)}
    assert over["record"].units == 2 and over["record"].over_epsilon == 1 and over["record"].max_epsilon == 17.0
    # a subject with 3 records: 3ε = 6 (under the cap), 3·e^4·δ ≈ 1.6e-4 (over Σδ 1e-5)
    assert over["subject"].over_epsilon == 0 and over["subject"].over_delta == 1


# --- the ledger follows records, not dataset names -----------------------------------------------------------


def test_reimport_under_a_new_name_does_not_open_a_fresh_cap(ctx: Context, tmp_path: Path):
    src = _jsonl(tmp_path / "s.jsonl", _rows())
    _import(ctx, src, "first")
    _import(ctx, src, "again")  # same file, new name, different pseudonyms
    assert dataset_units(ctx.db.conn, "first") == dataset_units(ctx.db.conn, "again")
    _reserve(ctx, "first", 8.0)
    _reserve(ctx, "first", 7.0)
    with pytest.raises(BudgetExhausted) as exc:
        _reserve(ctx, "again", 2.0)
    msg = str(exc.value)
    n_train = ctx.db.conn.execute("SELECT n_train FROM datasets WHERE name = 'again'").fetchone()[0]
    assert f"{n_train} of its {n_train} records past privacy.dataset_epsilon_cap 16" in msg
    assert "every dataset name" in msg and "1 of 16 remaining" in msg
    ev = ctx.ledger.events(kind="budget.refused")[-1].payload
    assert ev["units_over"]["record"]["epsilon"] == n_train and ev["most_charged_epsilon"] == pytest.approx(15.0)
    _reserve(ctx, "again", 1.0)  # up to the cap is allowed
    view = BudgetLedger(ctx.db, ctx.policy.privacy).view("again")
    assert view.spent.epsilon == pytest.approx(1.0)  # runs on this name ...
    assert view.most_charged == Spent(pytest.approx(16.0), pytest.approx(3e-6), 3)  # ... and on its records


def test_overlapping_import_is_charged_only_on_the_shared_records(ctx: Context, tmp_path: Path):
    rows = _rows(30)
    _import(ctx, _jsonl(tmp_path / "a.jsonl", rows[:20]), "a")
    _import(ctx, _jsonl(tmp_path / "b.jsonl", rows[10:]), "b")
    _reserve(ctx, "a", 8.0)
    _reserve(ctx, "a", 8.0)
    shared = set(dataset_units(ctx.db.conn, "a")) & set(dataset_units(ctx.db.conn, "b"))
    assert shared
    with pytest.raises(BudgetExhausted, match=rf"{len(shared)} of its \d+ records past"):
        _reserve(ctx, "b", 1.0)


def test_delta_is_capped_per_record(ctx: Context, tmp_path: Path):
    _import(ctx, _jsonl(tmp_path / "s.jsonl", _rows()), "d")
    for _ in range(3):
        _reserve(ctx, "d", 1.0, delta=3e-6)
    with pytest.raises(
        BudgetExhausted, match=r"past privacy\.max_total_delta 1e-05 \(per record: Σδ would reach 1\.2e-05"
    ):
        _reserve(ctx, "d", 1.0, delta=3e-6)
    worst = most_charged(ctx.db.conn, "d")
    assert worst is not None and worst[1].delta == pytest.approx(9e-6)


def test_policy_max_total_delta_is_validated():
    assert PrivacyPolicy().max_total_delta == 1e-5
    assert "one record" in (PrivacyPolicy.model_fields["max_total_delta"].description or "")
    assert "one record" in (PrivacyPolicy.model_fields["dataset_epsilon_cap"].description or "")
    with pytest.raises(ValueError, match="max_total_delta"):
        PrivacyPolicy(delta=1e-4, max_total_delta=1e-5)


# --- subjects ------------------------------------------------------------------------------------------------


def test_subject_field_makes_the_person_the_unit(ctx: Context, tmp_path: Path):
    src = _jsonl(tmp_path / "s.jsonl", _rows(30))
    s = _import(ctx, src, "people", subject_field="person")
    assert s.n_subjects == 7
    units = dataset_units(ctx.db.conn, "people")
    subjects = {k: m for k, m in units.items() if k[0] == SUBJECT}
    assert len(subjects) <= 7 and sum(subjects.values()) == s.n_train
    # the subject id is stored nowhere, not even as a bare hash
    dump = "\n".join(ctx.db.conn.iterdump())
    assert "cust-3" not in dump and "person" in dump  # the field name is recorded, its values are not
    ev = ctx.ledger.events(kind="seeds.import")[-1].payload
    assert ev["budget_unit"] == "subject" and ev["subject_field"] == "person" and ev["n_subjects"] == 7
    # a subject with k records in a run is charged kε (group privacy) ...
    biggest = max(subjects.values())
    ledger = BudgetLedger(ctx.db, PrivacyPolicy(max_total_delta=1e-3))
    ledger.reserve("people", epsilon=0.5, delta=1e-9, accountant="rdp", actor="t", policy_sha256="x")
    worst = most_charged(ctx.db.conn, "people")
    assert worst is not None and worst[0] == SUBJECT and worst[1].epsilon == pytest.approx(0.5 * biggest)
    # ... so a run every record could afford is refused for the person
    with pytest.raises(BudgetExhausted, match=r"subjects? past privacy\.dataset_epsilon_cap"):
        ledger.reserve("people", epsilon=8.0, delta=1e-9, accountant="rdp", actor="t", policy_sha256="x")


def test_a_subjects_records_share_a_split(ctx: Context, tmp_path: Path):
    _import(ctx, _jsonl(tmp_path / "s.jsonl", _rows(60)), "people", subject_field="person")
    rows = ctx.db.conn.execute("SELECT subject_key, split FROM records WHERE dataset = 'people'").fetchall()
    by_subject: dict[str, set[str]] = {}
    for subject, split in rows:
        by_subject.setdefault(subject, set()).add(split)
    assert all(len(s) == 1 for s in by_subject.values())
    assert {"train", "holdout"} == {next(iter(s)) for s in by_subject.values()}


def test_subject_group_delta_is_charged(ctx: Context, tmp_path: Path):
    _import(ctx, _jsonl(tmp_path / "s.jsonl", _rows(30)), "people", subject_field="person")
    with pytest.raises(BudgetExhausted, match=r"privacy\.max_total_delta.*k·e\^\(\(k−1\)ε\)·δ"):
        _reserve(ctx, "people", 2.0)  # 4-5 records per person: kε ≤ 10, but k·e^(2(k−1))·1e-6 > 1e-5


def test_missing_subject_is_bad_input_and_nothing_is_written(ctx: Context, tmp_path: Path):
    rows = _rows(10)
    del rows[4]["person"]
    src = _jsonl(tmp_path / "s.jsonl", rows)
    with pytest.raises(BadInput, match=r"line 5: subject field 'person' is missing or empty.*--skip-bad"):
        _import(ctx, src, "people", subject_field="person")
    assert ctx.db.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 0
    assert not ctx.ledger.events(kind="seeds.import")
    s = _import(ctx, src, "people", subject_field="person", skip_bad=True)
    assert s.skipped_lines == [5] and s.n_records == 9


def test_cli_missing_subject_field_exit_1(cli, workspace: Path, tmp_path: Path):
    rows = _rows(6)
    rows[2]["person"] = " "
    src = _jsonl(tmp_path / "s.jsonl", rows)
    res = cli("seeds", "import", str(src), "--dataset", "people", "--subject-field", "person")
    assert res.exit_code == 1 and "subject field 'person'" in res.output and "cust-" not in res.output
    c = tmp_path / "s.csv"
    with c.open("w", newline="") as fh:
        csv.writer(fh).writerows([["text"], ["hello there"]])
    res = cli("seeds", "import", str(c), "--dataset", "people", "--subject-field", "person")
    assert res.exit_code == 1 and "no column 'person'" in res.output
    assert cli("seeds", "list", "--json").stdout.count('"name"') == 0


def test_cli_train_refused_on_a_reimport_exit_3(cli, ctx: Context, tmp_path: Path):
    """`appliance train` refuses (exit 3) before loading any model when the records are spent elsewhere."""
    src = _jsonl(tmp_path / "s.jsonl", _rows())
    _import(ctx, src, "first")
    _import(ctx, src, "renamed")
    _reserve(ctx, "first", 8.0)
    _reserve(ctx, "first", 8.0)
    res = cli("train", "renamed", "--epsilon", "1")
    assert res.exit_code == 3, res.output
    assert "privacy.dataset_epsilon_cap 16" in res.output and "records past" in res.output
    out = cli("budget", "show", "renamed")
    assert out.exit_code == 0 and "most-charged record: epsilon 16.0000 of cap 16" in out.stdout
    doc = json.loads(cli("budget", "show", "renamed", "--json").stdout)
    assert doc["most_charged_epsilon"] == pytest.approx(16.0) and doc["epsilon_spent"] == 0.0
    assert doc["max_total_delta"] == 1e-5 and doc["most_charged_unit"] == "record"


def test_report_shows_the_most_charged_record(cli, ctx: Context, tmp_path: Path):
    from appliance.report import data as report_data

    src = _jsonl(tmp_path / "s.jsonl", _rows())
    _import(ctx, src, "first")
    _import(ctx, src, "renamed")
    _reserve(ctx, "first", 5.0)
    (row,) = report_data.datasets(ctx.db.conn, "renamed", 16.0, 1e-5)
    assert row["unit_epsilon"] == pytest.approx(5.0) and row["epsilon_spent"] == 0.0 and row["unit"] == "record"
    out = tmp_path / "r.html"
    assert cli("audit", "report", "--out", str(out)).exit_code == 0
    html = out.read_text(encoding="utf-8")
    assert "most-charged unit" in html and "add/remove-one-record" in html and "one subject" in html


@pytest.mark.slow
def test_cli_import_with_subject_field_real_presidio(cli, workspace: Path, tmp_path: Path):
    """The happy path through the CLI and the real PII engine: the person is the unit, the id is stored nowhere."""
    rows = [{"text": f"Please check the card payment number {i} again", "person": f"anna.k{i % 3}@example.com"}
            for i in range(12)]  # fmt: skip
    src = _jsonl(tmp_path / "s.jsonl", rows)
    res = cli("seeds", "import", str(src), "--dataset", "people", "--subject-field", "person", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    assert doc["budget_unit"] == "subject" and doc["subjects"] == 3
    assert "example.com" not in res.output
    dump = "\n".join(sqlite3.connect(workspace / "appliance.db").iterdump())
    assert "anna.k" not in dump and "example.com" not in dump
