"""The data layer holds: SQL is written in ``appliance/store/``, ``appliance/audit/`` and ``appliance/db.py`` only.

Every other module asks :mod:`appliance.store` a question named for what it answers (issue 17). The scan reads
each module's string literals (f-strings included, docstrings excluded) and flags any that holds a SQL
statement or clause.
"""

from __future__ import annotations

import ast
import re
import sqlite3
from pathlib import Path

import pytest

from appliance.store import batches, datasets, rows

PACKAGE = Path(__file__).resolve().parent.parent / "appliance"
ALLOWED = ("store/", "audit/", "db.py")
SQL = re.compile(
    r"\b(SELECT\s+(\*|DISTINCT|COUNT|\w+\s*(,|FROM))|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
    r"|CREATE\s+(TABLE|INDEX)|ALTER\s+TABLE|DROP\s+TABLE|PRAGMA\s+\w+|WHERE\s+\w+\s*(=|IN\b|IS\b)|ORDER\s+BY\s+\w+)"
)


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def sql_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every non-docstring string literal in ``path`` that reads as SQL."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
        elif isinstance(node, ast.JoinedStr):  # each {value} reads as a name: f"UPDATE {table} SET" is SQL too
            text = "".join(v.value if isinstance(v, ast.Constant) else "x" for v in node.values)
        else:
            continue
        if SQL.search(text):
            found.append((node.lineno, text.strip()[:80]))
    return found


def test_no_sql_outside_the_store_audit_and_db_modules() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}:{line}: {text}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if not str(path.relative_to(PACKAGE)).startswith(ALLOWED)
        for line, text in sql_literals(path)
    ]
    assert offenders == [], (
        "SQL outside appliance/store (add a store function named for what it answers):\n" + "\n".join(offenders)
    )


@pytest.mark.parametrize(
    ("module", "least"),
    [("store/batches.py", 5), ("store/rows.py", 2), ("store/migrations/core.py", 1), ("audit/ledger.py", 3)],
)
def test_the_scan_sees_sql_where_it_is_allowed(module: str, least: int) -> None:
    """The scan is not vacuous: it finds the statements the allowed modules do hold."""
    assert len(sql_literals(PACKAGE / module)) >= least


def test_dict_rows_in_and_out_inside_one_transaction(tmp_path: Path) -> None:
    """Rows go in as dicts keyed by column and come back as dicts; a rolled-back insert leaves nothing."""
    from appliance.db import connect, migrate, transaction

    db = connect(tmp_path / "a.db")
    migrate(db)
    row = {"name": "ds", "created_at": "t", "source_sha256": "s", "policy_sha256": "p", "label_field": "lab"}
    with transaction(db) as conn:
        datasets.insert_dataset(conn, row)
        datasets.insert_records(
            conn,
            [
                {
                    "dataset": "ds",
                    "source_index": i,
                    "text": f"t{i}",
                    "label": "a",
                    "split": split,
                    "text_sha256": "h",
                    "created_at": "t",
                }
                for i, split in enumerate(["train", "holdout", "train"])
            ],
        )
    assert datasets.get(db, "ds") is not None and datasets.field(db, "ds", "label_field") == "lab"
    assert datasets.split_texts(db, "ds", "train") == ["t0", "t2"]
    assert datasets.split_rows(db, "ds", "holdout") == [{"text": "t1", "label": "a"}]
    assert datasets.labels(db, "ds") == ["a"]
    with pytest.raises(sqlite3.IntegrityError), transaction(db) as conn:
        batches.insert_batch(conn, {"id": "b-1", "dataset": "ds"})  # NOT NULL columns missing: refused
    assert batches.get(db, "b-1") is None
    with pytest.raises(RuntimeError), transaction(db) as conn:
        rows.insert(conn, "export_hashes", {"hash": "sha256:x", "created_at": "t"})
        raise RuntimeError("rolled back")
    assert rows.rows(db, "export_hashes") == []
