"""The appliance's SQLite database: connection settings and schema migrations.

The schema modules (:mod:`appliance.store.migrations`, and the audit chain's own) register their migrations
with :func:`migration`; applied migrations are recorded in the ``_migrations`` table so an officer can see
the schema history.
"""

from __future__ import annotations

import importlib
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

# Schema modules, in data-flow order: the audit chain's, then the store's (appliance/store/migrations/).
SCHEMA_MODULES = [
    "appliance.audit.schema",
    "appliance.store.migrations.core",
    "appliance.store.migrations.budget",
    "appliance.store.migrations.generate",
    "appliance.store.migrations.curate",
    "appliance.store.migrations.evaluate",
    "appliance.store.migrations.probes",
    "appliance.store.migrations.gate",
    "appliance.store.migrations.export",
]

Migration = Callable[[sqlite_utils.Database], None]
_MIGRATIONS: dict[str, tuple[str, Migration]] = {}


def migration(key: str, name: str) -> Callable[[Migration], Migration]:
    """Register a migration under a unique, ordered key such as ``"0001_audit_events"``."""

    def deco(fn: Migration) -> Migration:
        if key in _MIGRATIONS:
            raise ValueError(f"duplicate migration key {key!r}")
        _MIGRATIONS[key] = (name, fn)
        return fn

    return deco


def utc_now() -> str:
    """UTC timestamp with microseconds, ISO 8601 with a Z suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def connect(path: Path) -> sqlite_utils.Database:
    """Open the database in WAL mode with a busy timeout, in autocommit (explicit transactions)."""
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return sqlite_utils.Database(conn)


@contextmanager
def transaction(db: sqlite_utils.Database, immediate: bool = True) -> Iterator[sqlite3.Connection]:
    """One atomic transaction (``BEGIN IMMEDIATE`` by default, so writers serialise up front)."""
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply every registered migration not yet recorded; returns the keys applied now."""
    for mod in SCHEMA_MODULES:
        importlib.import_module(mod)
    applied_now: list[str] = []
    with transaction(db):
        db.conn.execute(
            "CREATE TABLE IF NOT EXISTS _migrations (key TEXT PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL)"
        )
        done = {r[0] for r in db.conn.execute("SELECT key FROM _migrations")}
        for key in sorted(_MIGRATIONS):
            if key in done:
                continue
            name, fn = _MIGRATIONS[key]
            fn(db)
            db.conn.execute("INSERT INTO _migrations (key, name, applied_at) VALUES (?, ?, ?)", (key, name, utc_now()))
            applied_now.append(key)
    return applied_now
