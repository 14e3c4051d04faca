"""Batches and outputs in SQLite: create, append finished outputs atomically, find what is missing."""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from appliance.db import transaction, utc_now
from appliance.errors import NotFound


@dataclass(frozen=True)
class StoredOutput:
    idx: int
    text: str
    label: str | None
    n_tokens: int
    findings: list[dict[str, Any]]
    status: str
    reason: str | None
    finish_reason: str | None


def new_batch_id() -> str:
    return "b-" + secrets.token_hex(6)


def runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _rows(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [c[0] for c in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def insert_batch(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    cols = ", ".join(row)
    conn.execute(f"INSERT INTO batches ({cols}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))


def get_batch(db: sqlite_utils.Database, batch_id: str) -> dict[str, Any]:
    rows = _rows(db.conn.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)))
    if not rows:
        raise NotFound(f"unknown batch {batch_id!r} — see `appliance batches list`")
    row = rows[0]
    row["params"] = json.loads(row["params"])
    return row


def list_batches(db: sqlite_utils.Database, dataset: str | None = None) -> list[dict[str, Any]]:
    sql = (
        "SELECT b.*, (SELECT COUNT(*) FROM outputs o WHERE o.batch_id = b.id) AS n_outputs,"
        " (SELECT COUNT(*) FROM outputs o WHERE o.batch_id = b.id AND o.status = 'dropped') AS n_dropped"
        " FROM batches b"
    )
    args: tuple[Any, ...] = ()
    if dataset:
        sql += " WHERE b.dataset = ?"
        args = (dataset,)
    rows = _rows(db.conn.execute(sql + " ORDER BY b.created_at, b.id", args))
    for r in rows:
        r["params"] = json.loads(r["params"])
    return rows


def done_indices(db: sqlite_utils.Database, batch_id: str) -> set[int]:
    return {r[0] for r in db.conn.execute("SELECT idx FROM outputs WHERE batch_id = ?", (batch_id,))}


def get_outputs(db: sqlite_utils.Database, batch_id: str, limit: int | None = None) -> list[StoredOutput]:
    sql = (
        "SELECT idx, text, label, n_tokens, findings, status, reason, finish_reason FROM outputs"
        " WHERE batch_id = ? ORDER BY idx"
    )
    args: tuple[Any, ...] = (batch_id,)
    if limit is not None:
        sql += " LIMIT ?"
        args = (batch_id, limit)
    return [
        StoredOutput(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7]) for r in db.conn.execute(sql, args)
    ]


def insert_outputs(conn: sqlite3.Connection, batch_id: str, outputs: Sequence[StoredOutput]) -> None:
    """Append outputs inside the caller's transaction; UNIQUE(batch_id, idx) makes duplicates impossible."""
    now = utc_now()
    conn.executemany(
        "INSERT INTO outputs (batch_id, idx, text, label, n_tokens, findings, status, reason, finish_reason,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                batch_id,
                o.idx,
                o.text,
                o.label,
                o.n_tokens,
                json.dumps(o.findings, sort_keys=True),
                o.status,
                o.reason,
                o.finish_reason,
                now,
            )
            for o in outputs
        ],
    )


def add_progress(conn: sqlite3.Connection, batch_id: str, n_tokens: int, seconds: float) -> None:
    conn.execute(
        "UPDATE batches SET n_tokens = n_tokens + ?, gen_seconds = gen_seconds + ? WHERE id = ?",
        (n_tokens, seconds, batch_id),
    )


def set_status(db: sqlite_utils.Database, batch_id: str, status: str, *, runner: str | None = None) -> None:
    finished = utc_now() if status == "complete" else None
    with transaction(db) as conn:
        conn.execute(
            "UPDATE batches SET status = ?, runner = ?, finished_at = COALESCE(?, finished_at) WHERE id = ?",
            (status, runner, finished, batch_id),
        )


def runner_alive(runner: str | None) -> bool:
    """True when ``runner`` (host:pid) names a live process on this host other than this one."""
    if not runner or ":" not in runner:
        return False
    host, _, pid = runner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
