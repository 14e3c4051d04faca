"""Audit chain: pure hashing, tamper detection (each kind), concurrency, payload guard."""

from __future__ import annotations

import json
import multiprocessing as mp
import sqlite3
from pathlib import Path

import pytest

from appliance.audit.chain import GENESIS, event_hash, verify_rows
from appliance.audit.guard import check_payload
from appliance.audit.ledger import AuditLedger
from appliance.config import Workspace
from appliance.db import connect, migrate
from appliance.errors import ChainBroken, UnsafePayload


def make_ledger(path: Path, n: int = 10) -> AuditLedger:
    db = connect(path)
    migrate(db)
    led = AuditLedger(db)
    for i in range(n):
        led.append("test.event", {"i": i, "n": n}, actor="alice")
    return led


def test_event_hash_golden() -> None:
    h = event_hash(GENESIS, 1, "2026-01-01T00:00:00.000000Z", "alice", "k", '{"a":1}')
    assert h.startswith("sha256:") and len(h) == 7 + 64
    # any field change changes the hash
    assert h != event_hash(GENESIS, 1, "2026-01-01T00:00:00.000000Z", "bob", "k", '{"a":1}')
    assert h != event_hash(GENESIS, 2, "2026-01-01T00:00:00.000000Z", "alice", "k", '{"a":1}')
    assert h == event_hash(GENESIS, 1, "2026-01-01T00:00:00.000000Z", "alice", "k", '{"a":1}')


def test_clean_chain_verifies(tmp_path: Path) -> None:
    led = make_ledger(tmp_path / "a.db", 50)
    res = led.verify()
    assert res.ok and res.count == 50
    assert res.head_hash == led.head()[1]


@pytest.mark.parametrize("n", [0, 1, 2, 17])
def test_no_false_alarms(tmp_path: Path, n: int) -> None:
    assert make_ledger(tmp_path / "a.db", n).verify().ok


def _tamper(conn: sqlite3.Connection, kind: str) -> int:
    """Apply one tamper; return the first seq verify must report."""
    if kind == "edit_payload":
        conn.execute('UPDATE events SET payload = \'{"i":99,"n":10}\' WHERE seq = 4')
        return 4
    if kind == "edit_actor":
        conn.execute("UPDATE events SET actor = 'mallory' WHERE seq = 6")
        return 6
    if kind == "edit_ts":
        conn.execute("UPDATE events SET ts = '2000-01-01T00:00:00.000000Z' WHERE seq = 2")
        return 2
    if kind == "delete_middle":
        conn.execute("DELETE FROM events WHERE seq = 5")
        return 5
    if kind == "delete_first":
        conn.execute("DELETE FROM events WHERE seq = 1")
        return 1
    if kind == "insert":
        # shift rows 5.. up by one and insert a forged event at 5 with a self-consistent hash
        conn.execute("UPDATE events SET seq = seq + 1000 WHERE seq >= 5")
        conn.execute("UPDATE events SET seq = seq - 999 WHERE seq >= 1000")
        prev = conn.execute("SELECT hash FROM events WHERE seq = 4").fetchone()[0]
        ts = "2026-01-01T00:00:00.000000Z"
        h = event_hash(prev, 5, ts, "mallory", "forged", "{}")
        conn.execute(
            "INSERT INTO events (seq, ts, actor, kind, payload, prev_hash, hash) VALUES (5, ?, 'mallory', 'forged',"
            " '{}', ?, ?)",
            (ts, prev, h),
        )
        return 6
    if kind == "reorder":
        a = conn.execute("SELECT ts, actor, kind, payload, prev_hash, hash FROM events WHERE seq = 3").fetchone()
        b = conn.execute("SELECT ts, actor, kind, payload, prev_hash, hash FROM events WHERE seq = 7").fetchone()
        upd = "UPDATE events SET ts=?, actor=?, kind=?, payload=?, prev_hash=?, hash=? WHERE seq=?"
        conn.execute(upd, (*b, 3))
        conn.execute(upd, (*a, 7))
        return 3
    if kind == "rehash_edit":
        # edit and recompute this row's hash: the next row's prev_hash no longer matches
        row = conn.execute("SELECT ts, actor, kind, prev_hash FROM events WHERE seq = 4").fetchone()
        payload = '{"i":42,"n":10}'
        conn.execute(
            "UPDATE events SET payload = ?, hash = ? WHERE seq = 4",
            (payload, event_hash(row[3], 4, row[0], row[1], row[2], payload)),
        )
        return 5
    raise AssertionError(kind)


TAMPERS = ["edit_payload", "edit_actor", "edit_ts", "delete_middle", "delete_first", "insert", "reorder", "rehash_edit"]


@pytest.mark.parametrize("kind", TAMPERS)
def test_each_tamper_detected(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "a.db"
    make_ledger(path, 10).db.conn.close()
    conn = sqlite3.connect(path, isolation_level=None)
    expected = _tamper(conn, kind)
    conn.close()
    led = AuditLedger(connect(path))
    res = led.verify()
    assert not res.ok
    assert res.first_break is not None and res.first_break.seq == expected, res.first_break
    with pytest.raises(ChainBroken) as exc:
        led.verify_or_raise()
    assert exc.value.seq == expected


def test_verify_rows_pure() -> None:
    rows = []
    prev = GENESIS
    for seq in range(1, 4):
        h = event_hash(prev, seq, "t", "a", "k", "{}")
        rows.append((seq, "t", "a", "k", "{}", prev, h))
        prev = h
    assert verify_rows(rows)[2] is None
    assert verify_rows(rows[1:])[2].seq == 1  # first event missing


def _append_many(path: str, actor: str, n: int) -> None:
    db = connect(Path(path))
    led = AuditLedger(db)
    for i in range(n):
        led.append("concurrent.append", {"i": i}, actor=actor)
    db.conn.close()


def test_concurrent_appends_from_two_processes(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    make_ledger(path, 1).db.conn.close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), f"p{j}", 150)) for j in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    led = AuditLedger(connect(path))
    res = led.verify()
    assert res.ok and res.count == 301
    actors = {e.actor for e in led.events()}
    assert {"p0", "p1"} <= actors


@pytest.mark.parametrize(
    "payload",
    [
        {"text": "x" * 200},
        {"nested": {"list": ["ok", "y" * 97]}},
        {"bad": float("nan")},
        {"obj": object()},
        {"k" * 100: 1},
        {"short": "John Smith lives at 12 Elm St"},
        {"multi": "a\nb"},
    ],
)
def test_guard_rejects_free_text(payload: dict) -> None:
    with pytest.raises(UnsafePayload):
        check_payload(payload)


def test_guard_allows_hashes_ids_metrics() -> None:
    check_payload(
        {
            "sha": "sha256:" + "ab" * 32,
            "bare": "cd" * 32,
            "id": "ds-01",
            "counts": {"PERSON": 3},
            "auc": 0.51,
            "ok": True,
            "none": None,
            "list": [1, 2.5, "x"],
        }
    )


def test_append_rejects_unsafe_payload_and_leaves_chain(tmp_path: Path) -> None:
    led = make_ledger(tmp_path / "a.db", 3)
    with pytest.raises(UnsafePayload):
        led.append("seeds.import", {"record": "John Smith lives at 12 Elm Street and his SSN is 123-45-6789 ok"})
    assert led.verify().count == 3


def test_signed_head_and_rewrite_detection(tmp_path: Path) -> None:
    from appliance.audit import signing

    ws = Workspace(tmp_path / "ws")
    ws.ensure_dirs()
    signing.ensure_keypair(ws.keys)
    led = make_ledger(tmp_path / "a.db", 5)
    head = led.signed_head(ws.keys)
    led.check_head(head, ws.keys)
    # a forged signature fails
    from appliance.errors import SignatureInvalid

    with pytest.raises(SignatureInvalid):
        led.check_head({**head, "hash": "sha256:" + "0" * 64}, ws.keys)
    # a whole-chain rewrite, consistent in itself, does not contain the signed head
    led.db.conn.execute("DELETE FROM events")
    for i in range(7):
        led.append("test.event", {"i": i, "rewritten": True}, actor="mallory")
    assert led.verify().ok
    with pytest.raises(ChainBroken):
        led.check_head(head, ws.keys)
    assert json.loads(json.dumps(head))["seq"] == 5


@pytest.mark.parametrize("kind", ["none", "edit_payload", "reorder", "delete_middle"])
def test_parallel_verify_matches_sequential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    import appliance.audit.ledger as ledger_mod

    monkeypatch.setattr(ledger_mod, "PARALLEL_MIN", 5)
    path = tmp_path / "p.db"
    make_ledger(path, 40).db.conn.close()
    expected = None
    if kind != "none":
        conn = sqlite3.connect(path, isolation_level=None)
        expected = _tamper(conn, kind)
        conn.close()
    led = AuditLedger(connect(path))
    par = led.verify(workers=2)
    seq = led.verify(workers=1)
    assert par == seq
    assert (par.first_break.seq if par.first_break else None) == expected
