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

from appliance.config import Workspace
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


def test_the_trainers_prompt_row_hashes_as_a_plain_select_reads_it(workspace: Path) -> None:
    """``train.artifact.store`` writes a dict row and binds its hash into the audit event; that hash is the one a
    plain ``SELECT *`` of the row gives (what the gate recomputes), and an edit to any column is caught."""
    from appliance.audit.chain import row_digest
    from appliance.context import Context
    from appliance.db import transaction
    from appliance.errors import ChainBroken
    from appliance.gate import bound
    from appliance.store import prompts
    from appliance.train.artifact import PromptRecord, store

    ctx = Context.open(Workspace(workspace), actor="tester")
    try:
        with transaction(ctx.db) as conn:
            datasets.insert_dataset(conn, {"name": "ds", "created_at": "t", "source_sha256": "s", "policy_sha256": "p"})
        rec = PromptRecord(
            id="sp-1", dataset="ds", model_name="m", model_sha256="sha256:" + "0" * 64, k=4, n_embd=8, dp=False,
            epsilon=None, delta=None, noise_multiplier=None, sample_rate=0.1, steps=3, clip_norm=1.0, accountant=None,
            train_loss=2.5, holdout_loss=float("nan"), artifact_path="artifacts/prompts/sp-1.safetensors",
            artifact_sha256="sha256:" + "1" * 64, meta={"labels": ["a", "b"]},
        )  # fmt: skip
        assert store(ctx, rec, reservation=None, audit={}) is None
        cur = ctx.db.conn.execute("SELECT * FROM prompts WHERE id = 'sp-1'")
        plain = dict(zip([c[0] for c in cur.description], cur.fetchone(), strict=True))
        event = ctx.ledger.events("train.non_dp")[-1].payload
        assert event["row_sha256"] == row_digest(plain) and event["row_columns"] == sorted(plain)
        assert plain["label"] is None and plain["holdout_loss"] is None and plain["dp"] == plain["exportable"] == 0
        row = prompts.get(ctx.db, "sp-1")
        assert row == plain
        bound.check_prompt(ctx.db.conn, row)
        ctx.db.conn.execute("UPDATE prompts SET clip_norm = 9.0 WHERE id = 'sp-1'")
        with pytest.raises(ChainBroken, match="content hash"):
            bound.check_prompt(ctx.db.conn, prompts.get(ctx.db, "sp-1") or {})
    finally:
        ctx.close()
