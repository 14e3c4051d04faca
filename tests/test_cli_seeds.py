"""`appliance seeds ...` end to end: every bad input leaves the database unchanged, and raw PII
never reaches the database file (WAL included), any workspace file, or the CLI output."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # every test imports seeds through real Presidio

PLANTED = {
    "name": "Laura Whitfield",
    "email": "laura.whitfield@northwind-mail.com",
    "phone": "+1 415 555 0199",
    "ssn": "219-09-9999",
    "card": "4111 1111 1111 1111",
    "iban": "GB82WEST12345698765432",
    "address": "742 Evergreen Terrace",
}
PII_LINES = [
    f"My name is {PLANTED['name']}, write to {PLANTED['email']} or call {PLANTED['phone']}.",
    f"My SSN is {PLANTED['ssn']} and my card {PLANTED['card']} was declined.",
    f"Please move the money to IBAN {PLANTED['iban']} today.",
    f"I live at {PLANTED['address']}, Springfield.",
    f"{PLANTED['name']} will pick up the parcel on Monday.",
    "The weather was fine and nothing else happened.",
    "Can you tell me how to reset my password?",
    "I would like to close my account please.",
]


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def seeds_file(tmp_path: Path) -> Path:
    return jsonl(tmp_path / "seeds.jsonl", [{"text": t, "intent": f"i{i % 3}"} for i, t in enumerate(PII_LINES)])


def snapshot(home: Path) -> dict[str, list]:
    conn = sqlite3.connect(home / "appliance.db")
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("datasets", "records", "events")}
    finally:
        conn.close()


def output(res) -> str:
    return res.stdout + (res.stderr or "")


def test_import_list_show_and_audit(cli, workspace: Path, tmp_path: Path) -> None:
    res = cli("seeds", "import", str(seeds_file(tmp_path)), "--dataset", "support", "--label-field", "intent")
    assert res.exit_code == 0, output(res)
    assert "imported dataset support" in res.stdout and "PII findings" in res.stdout
    snap = snapshot(workspace)
    assert len(snap["datasets"]) == 1 and len(snap["records"]) == len(PII_LINES)
    splits = [r[5] for r in snap["records"]]
    assert splits.count("holdout") == round(0.2 * len(PII_LINES))
    events = [json.loads(e[4]) for e in snap["events"] if e[3] == "seeds.import"]
    assert len(events) == 1
    ev = events[0]
    assert ev["n_records"] == len(PII_LINES) and ev["n_skipped"] == 0
    assert ev["findings"]["PERSON"] >= 2 and ev["actions"]["PERSON"] == "pseudonymize"
    assert ev["model_sha256"].startswith("sha256:") and ev["policy_sha256"].startswith("sha256:")
    listed = cli("seeds", "list", "--json")
    assert json.loads(listed.stdout)["datasets"][0]["name"] == "support"
    shown = cli("seeds", "show", "support", "--limit", "3")
    assert shown.exit_code == 0 and ("<US_SSN>" in shown.stdout or "<CREDIT_CARD>" in shown.stdout)
    assert cli("audit", "verify").exit_code == 0


def test_existing_dataset_is_refused(cli, workspace: Path, tmp_path: Path) -> None:
    f = jsonl(tmp_path / "a.jsonl", [{"text": "hello there"}, {"text": "general kenobi"}])
    assert cli("seeds", "import", str(f), "--dataset", "d").exit_code == 0
    before = snapshot(workspace)
    res = cli("seeds", "import", str(f), "--dataset", "d")
    assert res.exit_code == 1 and "already exists" in res.stderr and "--dataset" in res.stderr
    assert snapshot(workspace) == before


def test_show_unknown_dataset(cli, workspace: Path) -> None:
    res = cli("seeds", "show", "nope")
    assert res.exit_code == 1 and "seeds list" in res.stderr


BAD_INPUTS = {
    "non_utf8": ("s.jsonl", b'{"text": "fine"}\n{"text": "caf\xe9 au lait"}\n', "line 2: not valid UTF-8"),
    "malformed_json": ("s.jsonl", b'{"text": "fine"}\n{"text": "broken"\n{"text": "ok"}\n', "line 2: malformed JSON"),
    "missing_field": ("s.jsonl", b'{"text": "fine"}\n\n{"body": "no text"}\n', "line 3: missing text field 'text'"),
    "empty": ("s.jsonl", b"", "is empty"),
    "binary": ("s.txt", bytes(range(256)) * 4, "binary file"),
    "csv_unterminated_quote": ("s.csv", b'text,label\n"fine",a\n"never closed,b\nmore\n', "line 3: malformed CSV"),
    "txt_with_label": ("s.txt", b"hello\n", "--label-field"),
    "unknown_extension": ("s.data", b"hello\n", "--format"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_1_and_leaves_db_unchanged(cli, workspace: Path, tmp_path: Path, case: str) -> None:
    name, data, message = BAD_INPUTS[case]
    path = tmp_path / name
    path.write_bytes(data)
    before = snapshot(workspace)
    args = ["seeds", "import", str(path), "--dataset", "bad"]
    if case == "txt_with_label":
        args += ["--label-field", "y"]
    res = cli(*args)
    assert res.exit_code == 1, output(res)
    assert res.stderr.startswith("error: ") and message in res.stderr
    assert "caf" not in res.stderr and "broken" not in res.stderr
    assert snapshot(workspace) == before


def test_skip_bad_reports_lines_and_imports_the_rest(cli, workspace: Path, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"text": "first good record"}\n{"text": "bro\n{"nope": 1}\n{"text": "second good record"}\n')
    res = cli("seeds", "import", str(path), "--dataset", "partial", "--skip-bad")
    assert res.exit_code == 0, output(res)
    assert "skipped line 2: malformed JSON" in res.stderr and "skipped line 3: missing text field" in res.stderr
    snap = snapshot(workspace)
    assert len(snap["records"]) == 2
    ev = json.loads(snap["events"][-1][4])
    assert ev["n_skipped"] == 2 and ev["skipped_lines"] == [2, 3]


def test_csv_with_quoted_newlines_imports_one_record_each(cli, workspace: Path, tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text('id,body,label\n1,"first line\nsecond line",a\n2,"plain",b\n', encoding="utf-8")
    res = cli("seeds", "import", str(path), "--dataset", "csvd", "--text-field", "body", "--label-field", "label")
    assert res.exit_code == 0, output(res)
    rows = snapshot(workspace)["records"]
    assert sorted(r[3] for r in rows) == ["first line\nsecond line", "plain"]
    assert sorted(r[4] for r in rows) == ["a", "b"]


def test_record_longer_than_max_length_with_pii_at_the_chunk_border(cli, workspace: Path, tmp_path: Path) -> None:
    policy = yaml.safe_load((workspace / "policy.yaml").read_text())
    policy["pii"].update(max_chunk_chars=2000, chunk_overlap_chars=200)
    (workspace / "policy.yaml").write_text(yaml.safe_dump(policy))
    filler = "the quarterly numbers look fine and nothing else happened here. "
    email = "border.case@northwind-mail.com"
    long_text = (filler * 40)[:1989] + " " + email + " " + filler * 80
    path = jsonl(tmp_path / "long.jsonl", [{"text": long_text}, {"text": "short one"}])
    res = cli("seeds", "import", str(path), "--dataset", "long")
    assert res.exit_code == 0, output(res)
    stored = [r[3] for r in snapshot(workspace)["records"]]
    assert len(max(stored, key=len)) > 2 * 2000
    assert not any(email in s for s in stored) and "EMAIL_ADDRESS" in res.stdout


def test_pseudonyms_consistent_and_holdout_deterministic(cli, workspace: Path, tmp_path: Path) -> None:
    rows = [{"text": f"Ticket {i}: Laura Whitfield asked about invoice {i}."} for i in range(20)]
    path = jsonl(tmp_path / "p.jsonl", rows)
    assert cli("seeds", "import", str(path), "--dataset", "p1").exit_code == 0
    assert cli("seeds", "import", str(path), "--dataset", "p2").exit_code == 0
    recs = snapshot(workspace)["records"]
    p1 = {r[2]: r for r in recs if r[1] == "p1"}
    p2 = {r[2]: r for r in recs if r[1] == "p2"}
    names = {r[3].split(": ")[1].split(" asked")[0] for r in p1.values()}
    assert len(names) == 1 and "Laura Whitfield" not in names
    assert [p1[i][5] for i in range(20)] == [p2[i][5] for i in range(20)]  # same split, record by record
    assert [r[5] for r in p1.values()].count("holdout") == 4


def test_scan_json_gives_offsets_never_values(cli, workspace: Path, tmp_path: Path) -> None:
    res = cli("seeds", "scan", str(seeds_file(tmp_path)), "--json")
    assert res.exit_code == 0, output(res)
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [obj["index"] for obj in lines] == list(range(len(PII_LINES)))
    ent = lines[1]["entities"]
    assert {e["type"] for e in ent} >= {"US_SSN", "CREDIT_CARD"}
    assert all(set(e) == {"type", "start", "end", "score"} for e in ent)
    assert PII_LINES[1][ent[0]["start"] : ent[0]["end"]] in PII_LINES[1]
    table = cli("seeds", "scan", str(seeds_file(tmp_path)))
    assert table.exit_code == 0 and "findings" in table.stdout
    for value in PLANTED.values():
        assert value not in res.stdout and value not in table.stdout
    assert snapshot(workspace)["datasets"] == []


def _workspace_bytes(home: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in home.rglob("*") if p.is_file()}


def _squash(text: str) -> str:
    """Drop whitespace and table borders, so a value wrapped across table lines is still found."""
    return "".join(c for c in text if not c.isspace() and not 0x2500 <= ord(c) <= 0x257F)


@pytest.mark.parametrize("action", ["redact", "pseudonymize"])
def test_raw_pii_never_stored_or_printed(
    cli, workspace: Path, tmp_path: Path, action: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    policy = yaml.safe_load((workspace / "policy.yaml").read_text())
    for rule in policy["pii"]["entities"].values():
        if rule["action"] != "allow":
            rule["action"] = action
    policy["pii"]["default_action"] = action
    (workspace / "policy.yaml").write_text(yaml.safe_dump(policy))
    src = seeds_file(tmp_path)
    scan = cli("seeds", "scan", str(src), "--json")
    spans = [json.loads(line)["entities"] for line in scan.stdout.splitlines()]
    for i, line in enumerate(PII_LINES):  # the proof means something only if every value was detected
        for value in PLANTED.values():
            if value in line:
                at = line.index(value)
                assert any(e["start"] <= at and at + len(value) <= e["end"] for e in spans[i]), value
    outputs = [scan, cli("seeds", "import", str(src), "--dataset", "proof", "--label-field", "intent")]
    assert outputs[-1].exit_code == 0, output(outputs[-1])
    outputs += [cli("seeds", "list"), cli("seeds", "show", "proof", "--limit", "50"), cli("audit", "log")]
    outputs.append(cli("seeds", "scan", str(src)))
    files = _workspace_bytes(workspace)
    assert any(name.endswith("appliance.db-wal") for name in files) or any(n.endswith("appliance.db") for n in files)
    for value in PLANTED.values():
        needle = value.encode()
        assert not [name for name, data in files.items() if needle in data], value
        assert not [o for o in outputs if _squash(value) in _squash(output(o))], value


def test_proof_search_finds_values_that_are_allowed(cli, workspace: Path, tmp_path: Path) -> None:
    """Control for the proof above: with PERSON allowed, the same byte search does find the name."""
    policy = yaml.safe_load((workspace / "policy.yaml").read_text())
    policy["pii"]["entities"]["PERSON"] = {"action": "allow"}
    (workspace / "policy.yaml").write_text(yaml.safe_dump(policy))
    assert cli("seeds", "import", str(seeds_file(tmp_path)), "--dataset", "control").exit_code == 0
    files = _workspace_bytes(workspace)
    assert [name for name, data in files.items() if PLANTED["name"].encode() in data]
    assert not [name for name, data in files.items() if PLANTED["ssn"].encode() in data]


def test_labels_are_category_names_kept_as_given_unless_they_hold_pii(cli, workspace: Path, tmp_path: Path) -> None:
    rows = [
        {"text": "Where is my new card?", "y": "card_arrival"},
        {"text": "Do you support fiat currencies?", "y": "fiat_currency_support"},
        {"text": "Can I pay with my phone?", "y": "apple_pay_or_google_pay"},
        {"text": "Please call me back.", "y": "laura.whitfield@northwind-mail.com"},
    ]
    path = jsonl(tmp_path / "l.jsonl", rows)
    before = snapshot(workspace)
    res = cli("seeds", "import", str(path), "--dataset", "lab", "--label-field", "y")
    assert res.exit_code == 1 and "line 4: label holds PII (EMAIL_ADDRESS)" in res.stderr
    assert "northwind" not in res.stderr and snapshot(workspace) == before
    res = cli("seeds", "import", str(path), "--dataset", "lab", "--label-field", "y", "--skip-bad")
    assert res.exit_code == 0, output(res)
    labels = sorted(r[4] for r in snapshot(workspace)["records"])
    assert labels == ["apple_pay_or_google_pay", "card_arrival", "fiat_currency_support"]


def test_policy_dropping_every_record_imports_nothing(cli, workspace: Path, tmp_path: Path) -> None:
    policy = yaml.safe_load((workspace / "policy.yaml").read_text())
    policy["pii"]["entities"]["US_SSN"] = {"action": "drop_record", "threshold": 0.3}
    (workspace / "policy.yaml").write_text(yaml.safe_dump(policy))
    path = jsonl(tmp_path / "d.jsonl", [{"text": "My SSN is 219-09-9999."}, {"text": "SSN 078-05-1120 here"}])
    before = snapshot(workspace)
    res = cli("seeds", "import", str(path), "--dataset", "gone")
    assert res.exit_code == 1 and "dropped every record (US_SSN)" in res.stderr
    assert snapshot(workspace) == before
    path = jsonl(tmp_path / "e.jsonl", [{"text": "My SSN is 219-09-9999."}, {"text": "all good here"}])
    res = cli("seeds", "import", str(path), "--dataset", "kept")
    assert res.exit_code == 0 and len(snapshot(workspace)["records"]) == 1


def test_labels_option_declares_the_public_schema(cli, workspace: Path, tmp_path: Path) -> None:
    rows = [
        {"text": "Where is my new card?", "y": "card_arrival"},
        {"text": "Do you support fiat currencies?", "y": "fiat_currency_support"},
        {"text": "Is my rare condition covered?", "y": "rare_diagnosis"},
    ]
    path = jsonl(tmp_path / "l.jsonl", rows)
    res = cli("seeds", "import", str(path), "--dataset", "lab", "--label-field", "y",
              "--labels", "card_arrival,fiat_currency_support")  # fmt: skip
    assert res.exit_code == 0, output(res)
    assert "dropped (label not in --labels)" in res.stdout and "not declared public" not in res.stderr
    assert sorted(r[4] for r in snapshot(workspace)["records"]) == ["card_arrival", "fiat_currency_support"]
    before = snapshot(workspace)
    res = cli("seeds", "import", str(path), "--dataset", "none", "--label-field", "y", "--labels", "nope")
    assert res.exit_code == 1 and "matches no record" in res.stderr and snapshot(workspace) == before
    res = cli("seeds", "import", str(path), "--dataset", "undeclared", "--label-field", "y")
    assert res.exit_code == 0 and "not declared public" in res.stderr
