"""Dict rows in and out: the helpers every store module builds on.

Reads go through sqlite-utils' ``rows_where`` and ``query`` (a dict per row, never a column read by position).
Writes use ``conn.execute`` with the row's own keys as the column list, so they run inside the caller's
:func:`appliance.db.transaction`: sqlite-utils' ``insert`` wraps itself in ``with conn:``, which would commit
that transaction early. Table and column names come from the store modules, never from input; values are
always bound parameters. Every function takes a sqlite-utils Database or the connection of an open transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlite_utils

Db = sqlite_utils.Database | sqlite3.Connection
Row = dict[str, Any]


def database(db: Db) -> sqlite_utils.Database:
    """``db`` as a sqlite-utils Database (a connection inside a transaction is wrapped, not reopened)."""
    return (
        db
        if isinstance(db, sqlite_utils.Database)
        else sqlite_utils.Database(db, recursive_triggers=False, execute_plugins=False)
    )


def connection(db: Db) -> sqlite3.Connection:
    return db.conn if isinstance(db, sqlite_utils.Database) else db


def rows(
    db: Db,
    table: str,
    where: str | None = None,
    args: Sequence[Any] = (),
    *,
    select: str = "*",
    order_by: str | None = None,
    limit: int | None = None,
) -> list[Row]:
    """Every row of ``table`` matching ``where`` (bound ``args``), as dicts."""
    return list(database(db)[table].rows_where(where, list(args), select=select, order_by=order_by, limit=limit))


def first(
    db: Db, table: str, where: str, args: Sequence[Any] = (), *, select: str = "*", order_by: str | None = None
) -> Row | None:
    """The first matching row (in ``order_by`` order), or None."""
    found = rows(db, table, where, args, select=select, order_by=order_by, limit=1)
    return found[0] if found else None


def query(db: Db, sql: str, args: Sequence[Any] = ()) -> list[Row]:
    """Rows of a query over several tables (a join, a count per group), as dicts."""
    return list(database(db).query(sql, list(args)))


def value(db: Db, sql: str, args: Sequence[Any] = ()) -> Any:
    """The first column of the first row of ``sql``, or None when it returns no row."""
    row = connection(db).execute(sql, list(args)).fetchone()
    return None if row is None else row[0]


def exists(db: Db, table: str, where: str, args: Sequence[Any] = ()) -> bool:
    return value(db, f"SELECT 1 FROM {table} WHERE {where} LIMIT 1", args) is not None


def has_table(db: Db, table: str) -> bool:
    return exists(db, "sqlite_master", "type = 'table' AND name = ?", (table,))


def insert(db: Db, table: str, row: Mapping[str, Any], *, or_ignore: bool = False) -> int:
    """Insert one dict row (its keys are the columns); returns the new rowid."""
    cols = ", ".join(row)
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    cur = connection(db).execute(
        f"{verb} INTO {table} ({cols}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
    )
    return int(cur.lastrowid or 0)


def insert_many(db: Db, table: str, many: Iterable[Mapping[str, Any]], *, or_ignore: bool = False) -> int:
    """Insert dict rows that share one set of keys; returns how many rows changed."""
    batch = list(many)
    if not batch:
        return 0
    cols = list(batch[0])
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    conn = connection(db)
    before = conn.total_changes
    conn.executemany(
        f"{verb} INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        [tuple(r[c] for c in cols) for r in batch],
    )
    return conn.total_changes - before


def update(db: Db, table: str, values: Mapping[str, Any], where: str, args: Sequence[Any] = ()) -> int:
    """Set ``values`` on the rows matching ``where``; returns how many rows changed."""
    sets = ", ".join(f"{c} = ?" for c in values)
    cur = connection(db).execute(f"UPDATE {table} SET {sets} WHERE {where}", (*values.values(), *args))
    return int(cur.rowcount)
