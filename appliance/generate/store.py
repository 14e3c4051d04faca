"""Generation's view of its batches and outputs: append finished outputs atomically, find what is missing.

The rows are read and written through :mod:`appliance.store.batches`."""

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
from appliance.store import batches


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
    canary_hits: int | None = None  # canaries whose secret the raw text held, before the PII scan (None: unknown)


def new_batch_id() -> str:
    return "b-" + secrets.token_hex(6)


def runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def insert_batch(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    batches.insert_batch(conn, row)


def get_batch(db: sqlite_utils.Database, batch_id: str) -> dict[str, Any]:
    """The ``batches`` row with its ``params`` parsed, or :class:`NotFound` (exit 1)."""
    row = batches.require(db, batch_id)
    row["params"] = json.loads(row["params"])
    return row


def list_batches(db: sqlite_utils.Database, dataset: str | None = None) -> list[dict[str, Any]]:
    rows = batches.listing(db, dataset)
    for r in rows:
        r["params"] = json.loads(r["params"])
    return rows


def done_indices(db: sqlite_utils.Database, batch_id: str) -> set[int]:
    return batches.done_indices(db, batch_id)


def get_outputs(db: sqlite_utils.Database, batch_id: str, limit: int | None = None) -> list[StoredOutput]:
    return [
        StoredOutput(
            r["idx"],
            r["text"],
            r["label"],
            r["n_tokens"],
            json.loads(r["findings"]),
            r["status"],
            r["reason"],
            r["finish_reason"],
            r["canary_hits"],
        )
        for r in batches.output_rows(db, batch_id, limit=limit)
    ]


def insert_outputs(conn: sqlite3.Connection, batch_id: str, outputs: Sequence[StoredOutput]) -> None:
    """Append outputs inside the caller's transaction; UNIQUE(batch_id, idx) makes duplicates impossible."""
    now = utc_now()
    batches.insert_outputs(
        conn,
        [
            {
                "batch_id": batch_id,
                "idx": o.idx,
                "text": o.text,
                "label": o.label,
                "n_tokens": o.n_tokens,
                "findings": json.dumps(o.findings, sort_keys=True),
                "status": o.status,
                "reason": o.reason,
                "finish_reason": o.finish_reason,
                "canary_hits": o.canary_hits,
                "created_at": now,
            }
            for o in outputs
        ],
    )


def add_progress(conn: sqlite3.Connection, batch_id: str, n_tokens: int, seconds: float) -> None:
    batches.add_progress(conn, batch_id, n_tokens, seconds)


def set_status(db: sqlite_utils.Database, batch_id: str, status: str, *, runner: str | None = None) -> None:
    finished = utc_now() if status == "complete" else None
    with transaction(db) as conn:
        batches.set_status(conn, batch_id, status, runner=runner, finished_at=finished)


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
