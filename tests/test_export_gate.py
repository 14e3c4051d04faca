"""`appliance export` through the gate, signed manifests, `audit verify --export`, four-eyes approval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gate_fixtures import GOOD_SUMMARY, TEXTS, insert_bound, insert_evaluation, seed_workspace, write_policy

from appliance.config import Workspace
from appliance.context import Context
from appliance.export.service import get_batch
from appliance.export.writers import read_back
from appliance.gate.facts import gather


def _events(home: Path, kind: str) -> list:
    ctx = Context.open(Workspace(home))
    try:
        return ctx.ledger.events(kind=kind)
    finally:
        ctx.close()


@pytest.fixture
def good(workspace: Path) -> str:
    return seed_workspace(workspace)


def test_export_passes_writes_file_and_signed_manifest(cli, workspace, good, tmp_path):
    out = tmp_path / "synthetic.jsonl"
    res = cli("export", good, "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "exported 5 records" in res.output
    rows = read_back(out, "jsonl")
    assert [r["text"] for r in rows] == [t.replace("my", "our") for t in TEXTS]
    doc = json.loads((tmp_path / "synthetic.jsonl.manifest.json").read_text())
    assert doc["dataset"] == "bank" and doc["batch"]["id"] == good and doc["prompt"]["id"] == f"pr-{good}"
    assert doc["privacy"]["epsilon"] == 3.0 and doc["privacy"]["delta"] == 1e-5 and doc["privacy"]["dp"] is True
    assert doc["model"]["sha256"] == "sha256:" + "3" * 64 and doc["policy_sha256"].startswith("sha256:")
    assert doc["file"]["records"] == 5 and doc["file"]["sha256"].startswith("sha256:")
    assert doc["gate"]["passed"] is True and {"check": "mia_auc", "passed": True} in doc["gate"]["checks"]
    assert doc["privacy"]["neighbouring"] == "add/remove one record"
    assert doc["signature"]["algorithm"] == "ed25519"
    (ev,) = _events(workspace, "export.complete")
    assert (doc["audit_head"]["seq"], doc["audit_head"]["hash"]) == (ev.seq, ev.hash)
    assert _events(workspace, "gate.passed")
    ok = cli("audit", "verify", "--export", str(tmp_path / "synthetic.jsonl.manifest.json"))
    assert ok.exit_code == 0, ok.output
    assert "OK export" in ok.output


def test_manifest_carries_no_statistic_of_private_records(cli, workspace, good, tmp_path):
    """What leaves the building: DP parameters, hashes, identities, check names and pass/fail — no values."""
    out = tmp_path / "o.jsonl"
    assert cli("export", good, "--out", str(out)).exit_code == 0
    doc = json.loads((tmp_path / "o.jsonl.manifest.json").read_text())
    assert set(doc) == {"manifest_version", "export_id", "created_at", "actor", "dataset", "batch", "prompt",
                        "model", "policy_sha256", "privacy", "gate", "approval", "file", "audit_head",
                        "signature"}  # fmt: skip
    assert all(set(c) == {"check", "passed"} for c in doc["gate"]["checks"])
    blob = json.dumps({**doc, "gate": {k: v for k, v in doc["gate"].items() if k != "checks"}})
    for private in ("auc", "loss", "median", "n_members", "n_holdout", "tstr", "quantile", "summary",
                    "metrics", "kept_pii_hits", "kept_leak_hits", "n_records", "n_train"):  # fmt: skip
        assert private not in blob, private

    def numbers(x):
        if isinstance(x, dict):
            return [n for v in x.values() for n in numbers(v)]
        if isinstance(x, list):
            return [n for v in x for n in numbers(v)]
        return [x] if isinstance(x, int | float) and not isinstance(x, bool) else []

    probe_values = {v for v in GOOD_SUMMARY.values() if isinstance(v, float)} | {0.9}  # and MAUVE 0.9
    assert not probe_values & set(numbers(doc))
    ctx = Context.open(Workspace(workspace))
    try:  # the values stay inside, for the officer
        (row,) = ctx.db.conn.execute("SELECT checks FROM gate_decisions").fetchall()
        assert any(c["check"] == "mia_auc" and c["value"] is not None for c in json.loads(row[0]))
    finally:
        ctx.close()


def test_export_hashes_recorded_for_provenance(cli, workspace, good, tmp_path):
    from appliance.curate.provenance import matches_exports

    assert cli("export", good, "--out", str(tmp_path / "o.jsonl")).exit_code == 0
    ctx = Context.open(Workspace(workspace))
    assert matches_exports(ctx.db, [TEXTS[0].replace("my", "our"), "never exported"]) == [True, False]
    ctx.close()


def test_changed_byte_in_export_fails_verification(cli, good, tmp_path):
    out = tmp_path / "o.jsonl"
    assert cli("export", good, "--out", str(out)).exit_code == 0
    data = bytearray(out.read_bytes())
    data[10] ^= 0x01
    out.write_bytes(bytes(data))
    res = cli("audit", "verify", "--export", str(tmp_path / "o.jsonl.manifest.json"))
    assert res.exit_code == 4
    assert "modified" in res.output


def test_tampered_manifest_fails_signature(cli, good, tmp_path):
    out = tmp_path / "o.jsonl"
    assert cli("export", good, "--out", str(out)).exit_code == 0
    m = tmp_path / "o.jsonl.manifest.json"
    doc = json.loads(m.read_text())
    doc["privacy"]["epsilon"] = 0.1
    m.write_text(json.dumps(doc))
    res = cli("audit", "verify", "--export", str(m))
    assert res.exit_code == 4 and "signature" in res.output


def test_rewritten_chain_fails_export_verification(cli, workspace, good, tmp_path):
    out = tmp_path / "o.jsonl"
    assert cli("export", good, "--out", str(out)).exit_code == 0
    doc = json.loads((tmp_path / "o.jsonl.manifest.json").read_text())
    ctx = Context.open(Workspace(workspace))
    ctx.db.conn.execute("UPDATE events SET hash = ? WHERE seq = ?", ("sha256:" + "f" * 64, doc["audit_head"]["seq"]))
    ctx.close()
    res = cli("audit", "verify", "--export", str(tmp_path / "o.jsonl.manifest.json"))
    assert res.exit_code == 4


def test_verify_export_missing_manifest_is_bad_input(cli, workspace, tmp_path):
    res = cli("audit", "verify", "--export", str(tmp_path / "nope.manifest.json"))
    assert res.exit_code == 1


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_formats(cli, good, tmp_path, fmt):
    out = tmp_path / f"o.{fmt}"
    res = cli("export", good, "--out", str(out), "--format", fmt)
    assert res.exit_code == 0, res.output
    assert [r["text"] for r in read_back(out, fmt)] == [t.replace("my", "our") for t in TEXTS]
    assert cli("audit", "verify", "--export", f"{out}.manifest.json").exit_code == 0


def test_export_run_subcommand_is_the_same_command(cli, good, tmp_path):
    res = cli("export", "run", good, "--out", str(tmp_path / "o.jsonl"), "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["records"] == 5


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["b-nope", "--out", "{tmp}/o.jsonl"], 1),
        (["b-test", "--out", "{tmp}/o.jsonl", "--format", "xml"], 1),
        (["b-test", "--out", "{tmp}/missing/o.jsonl"], 1),
        (["b-test"], 2),
    ],
)
def test_export_bad_input(cli, good, tmp_path, args, code):
    res = cli("export", *[a.format(tmp=tmp_path) for a in args])
    assert res.exit_code == code, res.output
    assert not (tmp_path / "o.jsonl").exists()


def test_export_never_overwrites(cli, good, tmp_path):
    out = tmp_path / "o.jsonl"
    out.write_text("keep me")
    assert cli("export", good, "--out", str(out)).exit_code == 1
    assert out.read_text() == "keep me"


def _refused(cli, home: Path, batch: str, tmp_path: Path, check: str):
    out = tmp_path / "o.jsonl"
    res = cli("export", batch, "--out", str(out))
    assert res.exit_code == 3, res.output
    assert check in res.output
    assert not out.exists() and not Path(f"{out}.manifest.json").exists()
    assert not list(tmp_path.glob(".o.jsonl*"))  # no temporary files left either
    (ev,) = _events(home, "gate.refused")
    assert check in [f["check"] for f in ev.payload["failures"]]
    return res


def test_non_dp_prompt_is_refused(cli, workspace, tmp_path):
    b = seed_workspace(workspace, dp=False)
    res = _refused(cli, workspace, b, tmp_path, "dp")
    assert '"threshold": true' in res.output and '"value": false' in res.output


def test_fewshot_batch_is_refused(cli, workspace, tmp_path):
    b = seed_workspace(workspace, mode="fewshot")
    _refused(cli, workspace, b, tmp_path, "dp")


def test_epsilon_over_cap_is_refused(cli, workspace, tmp_path):
    b = seed_workspace(workspace, epsilon=9.5)
    res = _refused(cli, workspace, b, tmp_path, "epsilon")
    assert '"value": 9.5' in res.output and '"threshold": 8.0' in res.output


@pytest.mark.parametrize(
    ("key", "check", "value", "threshold"),
    [
        ("mia_auc_upper", "mia_auc", 0.81, 0.65),
        ("tpr_at_1pct_fpr_upper", "tpr_at_1pct_fpr", 0.3, 0.2),
        ("canary_exposure_bits", "canary_exposure_bits", 19.0, 10.0),
        ("canary_output_hits", "canary_output_hits", 2, 0),
        ("dcr_ratio_lower", "dcr_ratio", 0.41, 0.8),
    ],
)
def test_probe_threshold_failures_are_refused(cli, workspace, tmp_path, key, check, value, threshold):
    """The gate compares the bounds of the 95% intervals (upper for MIA, lower for DCR), not point estimates."""
    b = seed_workspace(workspace, summary={**GOOD_SUMMARY, key: value})
    res = _refused(cli, workspace, b, tmp_path, check)
    line = next(ln for ln in res.output.splitlines() if f'"check": "{check}"' in ln)
    assert json.loads(line.strip()[2:]) == {
        "check": check,
        "value": value,
        "threshold": threshold,
        "op": ">=" if check == "dcr_ratio" else "<=",
    }


def test_point_estimate_under_the_threshold_is_not_enough(cli, workspace, tmp_path):
    """AUC 0.55 looks fine, but its interval reaches 0.7: the sample cannot show the attack fails."""
    b = seed_workspace(workspace, summary={**GOOD_SUMMARY, "mia_auc": 0.55, "mia_auc_upper": 0.7})
    _refused(cli, workspace, b, tmp_path, "mia_auc")


@pytest.mark.parametrize(
    ("kw", "check"),
    [
        ({"kept_pii": 2}, "pii_findings"),
        ({"kept_leaks": 1}, "verbatim_leaks"),
        ({"curated": False}, "curated"),
        ({"evaluated": False}, "evaluation"),
    ],
)
def test_curation_and_evaluation_failures_are_refused(cli, workspace, tmp_path, kw, check):
    b = seed_workspace(workspace, **kw)
    _refused(cli, workspace, b, tmp_path, check)


def test_only_an_evaluation_against_the_holdout_of_the_latest_curation_counts(cli, workspace, tmp_path):
    """The quality floor compares the seeds with what would leave: an evaluation against a --reference file,
    or one of an earlier curation (re-curated since, so other outputs are kept), is no evaluation."""
    b = seed_workspace(workspace, evaluated=False)
    ctx = Context.open(Workspace(workspace))
    try:
        with ctx.db.conn as conn:
            insert_evaluation(conn, b, 0.9, reference="file:sha256:" + "7" * 64)
    finally:
        ctx.close()
    res = _refused(cli, workspace, b, tmp_path, "evaluation")
    assert "run `appliance evaluate BATCH` after the latest curate" in res.output
    ctx = Context.open(Workspace(workspace))
    try:
        with ctx.db.conn as conn:
            insert_evaluation(conn, b, 0.9)  # against the holdout: it counts
        assert gather(ctx.db, get_batch(ctx, b)).facts.evaluated
        with ctx.db.conn as conn:  # curated again: the evaluation is of the outputs kept before
            cur = conn.execute("SELECT * FROM curations WHERE batch_id = ?", (b,)).fetchone()
            row = dict(zip([d[0] for d in conn.execute("SELECT * FROM curations").description], cur, strict=True))
            insert_bound(conn, "curations", {k: v for k, v in row.items() if k not in ("id", "event_seq")})
        assert not gather(ctx.db, get_batch(ctx, b)).facts.evaluated
    finally:
        ctx.close()


def test_min_mauve_is_enforced(cli, workspace, tmp_path):
    write_policy(workspace, gate={"min_mauve": 0.95})
    b = seed_workspace(workspace, mauve=0.5)
    _refused(cli, workspace, b, tmp_path, "mauve")


def test_every_failure_is_listed(cli, workspace, tmp_path):
    summary = {**GOOD_SUMMARY, "mia_auc_upper": 0.9, "dcr_ratio_lower": 0.1}
    b = seed_workspace(workspace, dp=False, summary=summary, kept_pii=3)
    res = cli("export", b, "--out", str(tmp_path / "o.jsonl"))
    assert res.exit_code == 3
    for check in ("dp", "epsilon", "mia_auc", "dcr_ratio", "pii_findings"):
        assert f'"check": "{check}"' in res.output


def test_disabled_gate_exports_and_is_audited(cli, workspace, tmp_path):
    write_policy(workspace, gate={"enabled": False})
    b = seed_workspace(workspace, summary={**GOOD_SUMMARY, "mia_auc_upper": 0.99})
    res = cli("export", b, "--out", str(tmp_path / "o.jsonl"))
    assert res.exit_code == 0 and "DISABLED" in res.output
    assert _events(workspace, "gate.disabled")
    assert json.loads((tmp_path / "o.jsonl.manifest.json").read_text())["gate"]["enabled"] is False


@pytest.mark.parametrize("gate", [{"enabled": False}, {"require_dp": False}, {"enabled": False, "require_dp": False}])
@pytest.mark.parametrize("kw", [{"dp": False}, {"mode": "fewshot"}])
def test_non_dp_and_fewshot_never_export_whatever_the_policy(cli, workspace, tmp_path, gate, kw):
    write_policy(workspace, gate=gate)
    b = seed_workspace(workspace, **kw)
    _refused(cli, workspace, b, tmp_path, "dp")


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("UPDATE prompts SET dp = 1, exportable = 1, epsilon = 1.0, delta = 1e-6", "prompt"),
        ("UPDATE batches SET mode = 'softprompt'", "batch"),
        ("UPDATE curations SET kept_leak_hits = 0, kept_pii_hits = 0", "curation"),
        ("UPDATE evaluations SET mauve = 0.99", "evaluation"),
        ("UPDATE probes SET summary = '{\"mia_auc_upper\": 0.5}'", "probe"),
    ],
)
def test_an_edited_gate_fact_is_an_integrity_failure(cli, workspace, tmp_path, sql, reason):
    """A row the gate reads that no longer matches the audit event that recorded it: exit 4, nothing written."""
    kw = {"prompt": {"dp": False}, "batch": {"mode": "fewshot"}, "curation": {"kept_leaks": 2, "kept_pii": 1}}
    b = seed_workspace(workspace, **kw.get(reason, {}))
    ctx = Context.open(Workspace(workspace))
    with ctx.db.conn:
        ctx.db.conn.execute(sql)
    ctx.close()
    out = tmp_path / "o.jsonl"
    res = cli("export", b, "--out", str(out))
    assert res.exit_code == 4, res.output
    assert reason in res.output and "audit event" in res.output
    assert not out.exists() and not _events(workspace, "gate.passed")


def test_an_evaluation_relabelled_or_a_newer_result_deleted_is_an_integrity_failure(cli, workspace, tmp_path):
    """An evaluation against a --reference file edited to read 'holdout', or the newest evaluation or probe row
    deleted to bring back an older one: exit 4, nothing written."""
    b = seed_workspace(workspace, evaluated=False)
    ctx = Context.open(Workspace(workspace))
    try:
        with ctx.db.conn as conn:
            insert_evaluation(conn, b, 0.9, reference="file:sha256:" + "7" * 64)
            conn.execute("UPDATE evaluations SET reference = 'holdout'")
    finally:
        ctx.close()
    res = cli("export", b, "--out", str(tmp_path / "o.jsonl"))
    assert res.exit_code == 4 and "column reference differs" in res.output, res.output
    for table, bind in (("evaluations", "evaluation"), ("probes", "probe"), ("curations", "curation")):
        b2 = seed_workspace(workspace, batch_id=f"b-{table}")
        ctx = Context.open(Workspace(workspace))
        try:
            with ctx.db.conn as conn:
                if table == "evaluations":
                    insert_evaluation(conn, b2, 0.9)
                elif table == "curations":
                    cur = conn.execute("SELECT * FROM curations WHERE batch_id = ?", (b2,)).fetchone()
                    cols = [d[0] for d in conn.execute("SELECT * FROM curations").description]
                    again = {k: v for k, v in zip(cols, cur, strict=True) if k not in ("id", "event_seq")}
                    insert_bound(conn, "curations", again)
                else:
                    row = conn.execute("SELECT * FROM probes WHERE batch_id = ?", (b2,)).fetchone()
                    cols = [d[0] for d in conn.execute("SELECT * FROM probes").description]
                    newer = dict(zip(cols, row, strict=True)) | {"id": f"p-{b2}-2", "created_at": "9999-01-01"}
                    insert_bound(conn, "probes", {k: v for k, v in newer.items() if k != "event_seq"})
                if table == "probes":
                    conn.execute("DELETE FROM probes WHERE id = ?", (f"p-{b2}-2",))
                else:
                    conn.execute(f"DELETE FROM {table} WHERE id = (SELECT MAX(id) FROM {table} WHERE batch_id = ?)",
                                 (b2,))  # fmt: skip
        finally:
            ctx.close()
        res = cli("export", b2, "--out", str(tmp_path / f"{table}.jsonl"))
        assert res.exit_code == 4 and "row was deleted" in res.output and bind in res.output, res.output


def test_four_eyes(cli, runner, workspace, tmp_path):
    from appliance.cli.main import app

    write_policy(workspace, approval={"required": True})
    b = seed_workspace(workspace)
    out = tmp_path / "o.jsonl"

    def as_(actor: str, *args: str):
        return runner.invoke(app, ["--actor", actor, *args], catch_exceptions=False)

    res = as_("alice", "export", b, "--out", str(out))
    assert res.exit_code == 3 and "four-eyes" in res.output and not out.exists()
    req = as_("alice", "export", "request", b, "--json")
    assert req.exit_code == 0, req.output
    rid = json.loads(req.stdout)["id"]
    same = as_("alice", "export", "approve", rid)
    assert same.exit_code == 3 and "cannot approve" in same.output
    assert as_("alice", "export", b, "--out", str(out)).exit_code == 3
    ok = as_("bob", "export", "approve", rid)
    assert ok.exit_code == 0, ok.output
    assert as_("bob", "export", "approve", rid).exit_code == 1  # already approved
    done = as_("carol", "export", b, "--out", str(out))
    assert done.exit_code == 0, done.output
    doc = json.loads((tmp_path / "o.jsonl.manifest.json").read_text())
    assert doc["approval"] == {"request_id": rid, "requested_by": "alice", "approved_by": "bob"}
    again = as_("carol", "export", b, "--out", str(tmp_path / "o2.jsonl"))
    assert again.exit_code == 3  # the approval was used up
    kinds = [e.kind for e in _events(workspace, "export.approve_refused")]
    assert kinds == ["export.approve_refused"]


def test_request_and_approve_unknown_ids(cli, workspace):
    assert cli("export", "request", "b-nope").exit_code == 1
    assert cli("export", "approve", "r-nope").exit_code == 1


def test_export_help_lists_subcommands(cli):
    res = cli("export", "--help")
    assert res.exit_code == 0
    for word in ("run", "request", "approve"):
        assert word in res.output


def test_the_manifest_names_the_public_prompt_a_dp_run_started_from() -> None:
    """A public start is a public fact of the export: the manifest carries it (None for the init text)."""
    from appliance.export.manifest import _prompt_facts

    start = {"id": "sp-pub", "dataset": "corpus", "artifact_sha256": "sha256:" + "a" * 64}
    row = {"id": "sp-dp", "dp": 1, "meta": json.dumps({"init_prompt": start, "dp_selection_noise": 4.0})}
    assert _prompt_facts(row)["init_prompt"] == start and _prompt_facts(row)["dp_selection_noise"] == 4.0
    assert _prompt_facts({"id": "sp-dp", "dp": 1, "meta": "{}"})["init_prompt"] is None
    scaled = {"id": "sp-dp", "dp": 1, "meta": json.dumps({"init_prompt": start, "prior_extrapolation": 1.5})}
    assert _prompt_facts(scaled)["prior_extrapolation"] == 1.5  # a policy constant: public
    assert _prompt_facts(row)["prior_extrapolation"] is None
