"""Stored ``events`` rows as they are, for checks that recompute their hashes (:mod:`appliance.gate.bound`).

Rows come back as dicts of the seven stored columns, the payload still the canonical JSON text that was hashed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

EventRow = dict[str, Any]
_COLS = ("seq", "ts", "actor", "kind", "payload", "prev_hash", "hash")
_SELECT = f"SELECT {', '.join(_COLS)} FROM events"


def _row(values: Sequence[Any] | None) -> EventRow | None:
    return None if values is None else dict(zip(_COLS, values[: len(_COLS)], strict=True))


def at(conn: sqlite3.Connection, seq: int) -> EventRow | None:
    """The event with sequence number ``seq``, or None."""
    return _row(conn.execute(f"{_SELECT} WHERE seq = ?", (seq,)).fetchone())


def _query(conn: sqlite3.Connection, kinds: Sequence[str], match: dict[str, Any], order: str) -> sqlite3.Cursor:
    marks = ", ".join("?" * len(kinds))
    where = "".join(f" AND json_extract(payload, '$.{key}') = ?" for key in match)
    return conn.execute(f"{_SELECT} WHERE kind IN ({marks}){where} ORDER BY seq {order}", (*kinds, *match.values()))


def _matching(
    conn: sqlite3.Connection, kinds: Sequence[str], match: dict[str, Any], *, newest: bool
) -> EventRow | None:
    """The earliest (or newest) event of one of ``kinds`` whose payload holds every ``key: value`` of ``match``."""
    return _row(_query(conn, kinds, match, "DESC" if newest else "ASC").fetchone())


def all_matching(conn: sqlite3.Connection, kinds: Sequence[str], match: dict[str, Any]) -> list[EventRow]:
    """Every event of one of ``kinds`` whose payload holds every ``key: value`` of ``match``, oldest first."""
    return [r for r in map(_row, _query(conn, kinds, match, "ASC").fetchall()) if r is not None]


def first_with(conn: sqlite3.Connection, kinds: Sequence[str], key: str, value: Any) -> EventRow | None:
    """The earliest event of one of ``kinds`` whose payload has ``key`` equal to ``value``, or None."""
    return _matching(conn, kinds, {key: value}, newest=False)


def last_matching(conn: sqlite3.Connection, kind: str, match: dict[str, Any]) -> EventRow | None:
    """The newest event of ``kind`` whose payload holds every ``key: value`` of ``match``, or None."""
    return _matching(conn, (kind,), match, newest=True)


def latest_by(conn: sqlite3.Connection, kinds: Sequence[str], key: str) -> dict[Any, EventRow]:
    """For each value of payload ``key`` among events of ``kinds``, the newest event carrying it."""
    marks = ", ".join("?" * len(kinds))
    latest: dict[Any, EventRow] = {}
    for values in conn.execute(
        f"SELECT {', '.join(_COLS)}, json_extract(payload, '$.{key}') FROM events WHERE kind IN ({marks})"
        f" AND json_extract(payload, '$.{key}') IS NOT NULL ORDER BY seq",
        tuple(kinds),
    ):
        row = _row(values)
        assert row is not None
        latest[values[-1]] = row
    return latest


def any_of_kind(conn: sqlite3.Connection, kind: str) -> bool:
    """Whether the chain holds an event of ``kind``."""
    return conn.execute("SELECT 1 FROM events WHERE kind = ? LIMIT 1", (kind,)).fetchone() is not None
