"""Issue 15 §5: every fact the gate reads is bound to the audit chain — charges, kept outputs, prompts.

Rows are edited with the sqlite3 module, as anyone who can write the workspace could; the events are left
alone. The export must then fail with exit 4 and write nothing, whatever the gate's policy says.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from gate_fixtures import seed_workspace, write_policy

from appliance.budget.ledger import dataset_units, insert_charge_in_tx, most_charged, unit_spent
from appliance.config import Workspace
from appliance.context import Context
from appliance.curate.kept import outputs_digest
from appliance.db import transaction
from appliance.errors import ChainBroken
from appliance.gate.bound import check_outputs, check_records
from appliance.generate.runner import resume
from appliance.ingest.digest import record_keys_digest, records_digest, splits_digest
from appliance.probes.inputs import load_inputs
from appliance.store import batches
from appliance.store.datasets import unit_rows
from appliance.train.plan import TrainRequest
from appliance.train.trainer import train

# --- charges are gate facts bound to the chain (§5) ----------------------------------------------------------


def _export(cli, batch: str, tmp_path: Path):
    tmp_path.mkdir(exist_ok=True)
    return cli("export", batch, "--out", str(tmp_path / "o.jsonl"))


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE privacy_charges SET epsilon = 0.1",
        "UPDATE privacy_charges SET status = 'released'",
        "DELETE FROM unit_charges WHERE rowid IN (SELECT rowid FROM unit_charges LIMIT 1)",
        "DELETE FROM unit_charges; DELETE FROM privacy_charges",
    ],
)
def test_an_edited_charge_is_exit_4(cli, workspace: Path, tmp_path: Path, sql: str):
    b = seed_workspace(workspace)
    con = sqlite3.connect(workspace / "appliance.db")
    con.executescript(sql)
    con.close()
    res = _export(cli, b, tmp_path)
    assert res.exit_code == 4, res.output
    assert "privacy charge" in res.output and not (tmp_path / "o.jsonl").exists()


def test_gate_refuses_a_record_over_the_cap_through_another_dataset(cli, workspace: Path, tmp_path: Path):
    b = seed_workspace(workspace, epsilon=3.0)
    ctx = Context.open(Workspace(workspace), actor="tester")
    with transaction(ctx.db) as conn:
        conn.execute(
            "INSERT INTO datasets (name, created_at, source_sha256, policy_sha256) VALUES ('copy', 'now', ?, ?)",
            ("sha256:" + "1" * 64, ctx.policy_sha256),
        )
        units = dataset_units(conn, "bank")
        insert_charge_in_tx(conn, "copy", epsilon=14.0, delta=1e-7, accountant="rdp", actor="t", units=units)
    assert unit_spent(ctx.db.conn)[next(iter(units))].epsilon == pytest.approx(17.0)
    ctx.close()
    res = _export(cli, b, tmp_path)
    assert res.exit_code == 3 and '"check": "record_epsilon"' in res.output


@pytest.mark.parametrize("gate", [{}, {"enabled": False}, {"enabled": False, "require_dp": False}])
def test_sqlite_edit_of_a_non_dp_prompt_is_exit_4(cli, workspace: Path, tmp_path: Path, gate: dict):
    """The issue's attack, verbatim: flip a --no-dp prompt to DP with sqlite3, leave the events alone —
    whatever the gate's policy says (the facts are checked before any policy is applied)."""
    write_policy(workspace, gate=gate)
    b = seed_workspace(workspace, dp=False)
    con = sqlite3.connect(workspace / "appliance.db")
    with con:
        con.execute("UPDATE prompts SET dp=1, exportable=1")
    con.close()
    res = _export(cli, b, tmp_path)
    assert res.exit_code == 4, res.output
    assert "audit event" in res.output and not (tmp_path / "o.jsonl").exists()


def test_legacy_charges_are_charged_to_their_records_and_bound(cli, workspace: Path, tmp_path: Path):
    """A charge written before per-record charges existed (no unit rows, no event) is bound by the migration."""
    from appliance.budget.ledger import bind_legacy_charges

    write_policy(workspace, privacy={"max_total_delta": 1e-4})
    b = seed_workspace(workspace, epsilon=3.0)
    ctx = Context.open(Workspace(workspace), actor="tester")
    with transaction(ctx.db) as conn:
        conn.execute(
            "INSERT INTO privacy_charges (dataset, prompt_id, epsilon, delta, accountant, composition, created_at)"
            " VALUES ('bank', NULL, 2.0, 1e-6, 'rdp', 'basic', 'then')"
        )
    ctx.close()
    assert _export(cli, b, tmp_path).exit_code == 4  # a charge without its event is not a fact
    ctx = Context.open(Workspace(workspace), actor="tester")
    with transaction(ctx.db) as conn:
        assert bind_legacy_charges(conn) == 1
    worst = most_charged(ctx.db.conn, "bank")
    assert worst is not None and worst[1].epsilon == pytest.approx(5.0)
    assert ctx.ledger.events(kind="budget.bind")[-1].actor == "migration"
    ctx.close()
    assert _export(cli, b, tmp_path).exit_code == 0


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE outputs SET text = 'my name is Alice Example' WHERE idx = 0",
        "UPDATE outputs SET label = 'secret_label' WHERE idx = 1",
        "UPDATE outputs SET status = 'dropped' WHERE idx = 2",
        "INSERT INTO outputs (batch_id, idx, text, n_tokens, findings, status, created_at)"
        " VALUES ('b-test', 99, 'an injected record', 3, '[]', 'kept', 'now')",
    ],
)
def test_kept_outputs_edited_after_curation_are_exit_4(cli, workspace: Path, tmp_path: Path, sql: str):
    """What export writes (the kept outputs' text and label) is bound to the curate.run event."""
    b = seed_workspace(workspace)
    con = sqlite3.connect(workspace / "appliance.db")
    with con:
        con.execute(sql)
    con.close()
    res = _export(cli, b, tmp_path)
    assert res.exit_code == 4, res.output
    assert "kept outputs differ from its audit event" in res.output and not (tmp_path / "o.jsonl").exists()


def test_curation_event_binds_kept_outputs(cli, workspace: Path, tmp_path: Path):
    from appliance.curate.kept import kept_digest

    b = seed_workspace(workspace)
    ctx = Context.open(Workspace(workspace), actor="tester")
    ev = ctx.ledger.events(kind="curate.run")[-1].payload
    assert ev["kept_sha256"] == kept_digest(ctx.db.conn, b)
    ctx.close()
    assert _export(cli, b, tmp_path).exit_code == 0


@pytest.mark.parametrize("subject_field", [None, "person"])
def test_manifest_states_the_budget_unit_from_the_import_event(cli, workspace: Path, tmp_path: Path, subject_field):
    """The signed manifest says what bounds every unit over all runs: caps per record, or per declared subject."""
    import json

    from appliance.audit.ledger import append_in_tx

    b = seed_workspace(workspace)
    if subject_field:
        ctx = Context.open(Workspace(workspace), actor="tester")
        with transaction(ctx.db) as conn:
            append_in_tx(conn, "seeds.import", {"dataset": "bank", "subject_field": subject_field}, "tester")
        ctx.close()
    assert _export(cli, b, tmp_path).exit_code == 0
    doc = json.loads((tmp_path / "o.jsonl.manifest.json").read_text())
    unit = "subject" if subject_field else "record"
    assert doc["privacy"]["neighbouring"] == "add/remove one record"  # the run's own (ε, δ)
    assert doc["privacy"]["budget"] == {
        "unit": unit,
        "neighbouring": f"add/remove one {unit}",
        "epsilon_cap_per_unit": 16.0,
        "delta_cap_per_unit": 1e-5,
        "composition": "basic",
        "label_set": None,  # seed_workspace's import event declares no label set
    }


# --- the records' budget keys are bound to their import (§2 through §5) ---------------------------------------


def _bind_import_keys(workspace: Path) -> None:
    """What `seeds import` records: the hash of the stored records' budget keys (the fixture writes no event)."""
    ctx = Context.open(Workspace(workspace), actor="tester")
    rows = unit_rows(ctx.db.conn, "bank", split=None)
    digests = {"records_sha256": records_digest(rows), "splits_sha256": splits_digest(rows)}
    ctx.record("seeds.import", {"dataset": "bank", "units_sha256": record_keys_digest(rows), **digests})
    ctx.close()


def _forge_keys(workspace: Path) -> None:
    con = sqlite3.connect(workspace / "appliance.db")
    with con:
        con.execute("UPDATE records SET unit_key = 'forged' || id WHERE dataset = 'bank'")
    con.close()


def test_edited_budget_keys_are_exit_4_not_a_fresh_cap(cli, workspace: Path, tmp_path: Path):
    """The review's attack: the gate refuses a record over its cap (exit 3); rewriting every record's unit_key
    (so that they look up keys nothing was charged to) must not turn that into a signed export."""
    b = seed_workspace(workspace, epsilon=3.0)
    _bind_import_keys(workspace)
    ctx = Context.open(Workspace(workspace), actor="tester")
    with transaction(ctx.db) as conn:
        insert_charge_in_tx(conn, "bank", epsilon=14.0, delta=1e-7, accountant="rdp", actor="t",
                            units=dataset_units(conn, "bank"))  # fmt: skip
    ctx.close()
    assert _export(cli, b, tmp_path).exit_code == 3
    _forge_keys(workspace)
    res = _export(cli, b, tmp_path)
    assert res.exit_code == 4, res.output
    assert "budget keys" in res.output and not (tmp_path / "o.jsonl").exists()


def test_training_checks_the_budget_keys_before_it_reserves(workspace: Path):
    """The per-record cap is checked on the keys the import bound: a forged key is exit 4 before any charge."""
    seed_workspace(workspace)
    _bind_import_keys(workspace)
    _forge_keys(workspace)
    ctx = Context.open(Workspace(workspace), actor="tester")
    try:
        with pytest.raises(ChainBroken, match="budget keys"):
            check_records(ctx.db.conn, "bank")
        n_charges = ctx.db.conn.execute("SELECT COUNT(*) FROM privacy_charges").fetchone()[0]
        with pytest.raises(ChainBroken, match="budget keys"):
            train(ctx, TrainRequest(dataset="bank", epsilon=1.0))
        assert ctx.db.conn.execute("SELECT COUNT(*) FROM privacy_charges").fetchone()[0] == n_charges
    finally:
        ctx.close()


def _finish_generation(workspace: Path, batch: str) -> None:
    """What a completed `generate` records: the outputs' digest (index, text, label, canary count)."""
    con = sqlite3.connect(workspace / "appliance.db")
    with con:
        con.execute("UPDATE outputs SET canary_hits = CASE idx WHEN 0 THEN 2 ELSE 0 END WHERE batch_id = ?", (batch,))
    con.close()
    ctx = Context.open(Workspace(workspace), actor="tester")
    ctx.record("generate.finish", {"batch_id": batch, "outputs_sha256": outputs_digest(ctx.db.conn, batch)})
    ctx.close()


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("UPDATE outputs SET canary_hits = 0", "canary count"),
        ("UPDATE outputs SET text = 'an innocent text' WHERE idx = 1", "canary count"),
        ("UPDATE records SET split = 'holdout' WHERE id = (SELECT MIN(id) FROM records)", "splits"),
        ("UPDATE records SET text = 'another text' WHERE id = (SELECT MIN(id) FROM records)", "texts"),
    ],
)
def test_probe_inputs_edited_before_the_probe_are_exit_4(cli, workspace: Path, tmp_path: Path, sql: str, says: str):
    """The probes read every output (canary counts, texts for DCR) and the members and holdout; an edit that
    would blind them (a canary count zeroed, a member moved to the holdout) is caught by the probe and the gate."""
    b = seed_workspace(workspace)
    _bind_import_keys(workspace)
    _finish_generation(workspace, b)
    assert _export(cli, b, tmp_path / "before").exit_code == 0
    con = sqlite3.connect(workspace / "appliance.db")
    with con:
        con.executescript(sql)
    con.close()
    ctx = Context.open(Workspace(workspace), actor="tester")
    try:
        with pytest.raises(ChainBroken, match=says):
            load_inputs(ctx, dict(batches.get(ctx.db, b) or {}))
    finally:
        ctx.close()
    res = _export(cli, b, tmp_path)
    assert res.exit_code == 4 and says in res.output, res.output
    assert not (tmp_path / "o.jsonl").exists()


def test_a_status_flip_and_resume_do_not_rebind_edited_outputs(workspace: Path) -> None:
    """The review's attack: edit an output, mark the batch interrupted, `generate --resume` it — a finished batch
    is not resumed (no second generate.finish), and the first event still catches the edit."""
    b = seed_workspace(workspace)
    _finish_generation(workspace, b)
    con = sqlite3.connect(workspace / "appliance.db")
    with con:
        con.execute("UPDATE outputs SET canary_hits = 0")
        con.execute("UPDATE batches SET status = 'interrupted'")
    con.close()
    ctx = Context.open(Workspace(workspace), actor="tester")
    try:
        assert resume(ctx, b).status == "complete"
        assert len(ctx.ledger.events(kind="generate.finish")) == 1
        assert batches.get(ctx.db, b)["status"] == "complete"
        with pytest.raises(ChainBroken, match="canary count"):
            check_outputs(ctx.db.conn, b)
    finally:
        ctx.close()


def test_an_interrupted_run_binds_the_outputs_it_stored(workspace: Path) -> None:
    b = seed_workspace(workspace)
    ctx = Context.open(Workspace(workspace), actor="tester")
    try:
        digest = outputs_digest(ctx.db.conn, b, [0, 1])
        ctx.record("generate.interrupted", {"batch_id": b, "outputs_sha256": digest, "outputs_idx": [0, 1]})
        check_outputs(ctx.db.conn, b)  # intact
        ctx.db.conn.execute("UPDATE outputs SET text = 'edited' WHERE batch_id = ? AND idx = 1", (b,))
        with pytest.raises(ChainBroken, match=r"generate\.interrupted"):
            check_outputs(ctx.db.conn, b)
    finally:
        ctx.close()


def test_a_batch_whose_generation_never_finished_is_not_a_fact(workspace: Path) -> None:
    """Started by a version that binds outputs, with no finish or interruption event (the process died): the
    probes and the gate refuse it, naming `generate --resume`; a batch from before such events is not checked."""
    ctx = Context.open(Workspace(workspace), actor="tester")
    try:
        ctx.record("generate.start", {"batch_id": "b-new", "binds_outputs": True})
        with pytest.raises(ChainBroken, match="generate --resume b-new"):
            check_outputs(ctx.db.conn, "b-new")
        ctx.record("generate.start", {"batch_id": "b-old"})
        check_outputs(ctx.db.conn, "b-old")
    finally:
        ctx.close()
