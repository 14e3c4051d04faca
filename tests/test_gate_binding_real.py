"""The gate's row-to-event binding against the events the real stages write: import (declared labels) → train
(DP, real Opacus) → generate (llama.cpp) → curate → evaluate, then every fact the gate gathers verifies
against its audit event, and an edited row is exit 4. (The probe record's binding is exercised with a real
`probe.run` event in test_probe_runner.py::test_export_runs_the_probes_when_missing.)"""

from __future__ import annotations

import json
import re

import pytest
from _train_data import banking_csv, seed_model_cache
from typer.testing import CliRunner

from appliance.cli.main import app
from appliance.config import Workspace
from appliance.context import Context
from appliance.errors import ChainBroken
from appliance.export.service import get_batch
from appliance.gate.facts import gather

pytestmark = pytest.mark.slow

CATEGORIES = ["card_arrival", "exchange_rate", "top_up_failed"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("binding") / "home"
    runner = CliRunner()

    def cli(*args: str):
        res = runner.invoke(app, ["--home", str(home), "--actor", "tester", *args], catch_exceptions=False)
        assert res.exit_code == 0, (args, res.output)
        return res

    cli("init")
    from appliance.policy.loader import set_values

    # 12-token outputs are cut off by design here; the label check (what this test reads) stays on
    set_values(home / "policy.yaml", {"drop_unfinished": False}, header="# test: short outputs kept")
    seed_model_cache(home)
    seeds = banking_csv(home.parent / "s.csv", n=30, categories=CATEGORIES)
    cli(
        "seeds",
        "import",
        str(seeds),
        "--dataset",
        "bank",
        "--label-field",
        "category",
        "--labels",
        ",".join(CATEGORIES),
    )
    out = cli("train", "bank", "--epsilon", "4", "--epochs", "1", "--batch-size", "64", "--virtual-tokens", "4").stdout
    pid = re.search(r"prompt (\S+)", out).group(1)
    res = cli("generate", "bank", "--prompt", pid, "--n", "12", "--max-tokens", "12", "--seed", "1", "--json")
    batch = json.loads(res.stdout.strip().splitlines()[-1])["id"]
    cli("curate", batch)
    cli("evaluate", batch)
    return {"home": home, "batch": batch, "prompt": pid}


def test_real_stage_events_bind_every_gate_fact(pipeline):
    ctx = Context.open(Workspace(pipeline["home"]), actor="tester")
    try:
        bf = gather(ctx.db, get_batch(ctx, pipeline["batch"]))  # raises ChainBroken on any mismatch
        assert bf.facts.dp and bf.facts.curated and bf.facts.evaluated and bf.labels_public
        assert bf.prompt is not None and bf.prompt["id"] == pipeline["prompt"]
        # the run charged every train record its accounted ε (the per-record ledger, bound by train.run)
        assert bf.facts.record_epsilon == pytest.approx(bf.facts.epsilon)
        assert bf.facts.record_delta == pytest.approx(bf.facts.delta)
        # curation read the batch with its own DP generator (real llama.cpp scoring under all three labels)
        (payload,) = ctx.db.conn.execute(
            "SELECT payload FROM events WHERE kind = 'curate.run' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        check = json.loads(payload)["label_check"]
        assert check["label_consistency"] == "on" and check["labels"] == len(CATEGORIES)
        # the verbatim-overlap check's chance baseline: held-out real records' overlap rate, and its allowance
        event = json.loads(payload)
        assert 0.0 <= event["holdout_leak_rate"] <= 1.0 and event["leak_allowance"] >= 0
    finally:
        ctx.close()


@pytest.mark.parametrize(
    ("table", "column", "factor"),
    [
        ("prompts", "epsilon", 0.25),
        ("prompts", "clip_norm", 4.0),  # not a field the gate compares: caught by the row's content hash
        ("privacy_charges", "epsilon", 0.25),
        ("curations", "kept_pii_hits", None),
        ("evaluations", "mauve", 0.5),
    ],
)
def test_an_edited_real_row_is_caught(pipeline, table, column, factor):
    """The row is edited with any SQLite client, then restored: while edited, gathering the facts is exit 4."""
    ctx = Context.open(Workspace(pipeline["home"]), actor="tester")
    conn = ctx.db.conn
    (rowid, old) = conn.execute(f"SELECT rowid, {column} FROM {table} ORDER BY rowid DESC LIMIT 1").fetchone()
    new = old * factor if factor is not None else old + 1
    try:
        with conn:
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (new, rowid))
        with pytest.raises(ChainBroken, match="audit event"):
            gather(ctx.db, get_batch(ctx, pipeline["batch"]))
    finally:
        with conn:
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (old, rowid))
        gather(ctx.db, get_batch(ctx, pipeline["batch"]))  # restored: binds again
        ctx.close()
