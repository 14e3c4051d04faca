"""`seeds import --labels dp`: the label set chosen by DP partition selection (Gaussian thresholding),
charged to every record like a training run. The math is checked against its definitions; the import runs
with the test-double PII pipeline of test_ingest_public_schema (Presidio is tested in test_cli_seeds.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from appliance.budget.ledger import BudgetLedger, dataset_spent
from appliance.config import Workspace
from appliance.context import Context
from appliance.errors import BadInput, BudgetExhausted
from appliance.ingest import import_seeds
from appliance.ingest.partition import _adp_delta, analytic_sigma, select_labels, threshold
from tests.test_ingest_public_schema import NamePipeline, _csv


@pytest.mark.parametrize(("eps", "delta"), [(0.5, 1e-6), (1.0, 1e-6), (4.0, 1e-5)])
def test_analytic_sigma_is_the_smallest_noise_meeting_the_definition(eps: float, delta: float) -> None:
    """Balle & Wang's condition holds at σ and fails just below it; below ε = 1 it beats the classical
    σ = √(2 ln(1.25/δ)) / ε."""
    sigma = analytic_sigma(eps, delta)
    assert _adp_delta(sigma, eps) <= delta < _adp_delta(sigma * 0.999, eps)
    if eps < 1.0:
        assert sigma < np.sqrt(2 * np.log(1.25 / delta)) / eps


def test_a_single_units_label_passes_the_threshold_with_probability_delta() -> None:
    sigma = analytic_sigma(1.0, 5e-7)
    tau = threshold(sigma, 5e-7)
    assert norm.sf((tau - 1.0) / sigma) == pytest.approx(5e-7, rel=1e-6)


def test_frequent_labels_are_selected_and_a_rare_one_is_not() -> None:
    units = {f"u{i}": "card" for i in range(200)} | {f"v{i}": "fees" for i in range(150)} | {"w0": "rare"}
    for seed in range(200):
        sel = select_labels(units, epsilon=1.0, delta=1e-6, rng=np.random.default_rng(seed))
        assert sel.labels == ["card", "fees"]  # sorted; "rare" would pass with probability ≤ 5e-7 per draw
        assert sel.n_candidates == 3 and sel.threshold > 1.0


ROWS = (
    [(f"Where is my card number {i}?", "card") for i in range(60)]
    + [(f"Why was I charged fee {i}?", "fees") for i in range(60)]
    + [("A question only two people asked.", "rare"), ("Another rare question here.", "rare")]
)


@pytest.fixture
def ctx(workspace: Path):
    c = Context.open(Workspace(workspace), actor="tester")
    yield c
    c.close()


def _privacy(ctx: Context, **values: object) -> None:
    ctx.policy = ctx.policy.model_copy(update={"privacy": ctx.policy.privacy.model_copy(update=values)})


def test_dp_selection_drops_the_rare_label_and_charges_every_record(ctx: Context, tmp_path: Path) -> None:
    s = import_seeds(ctx, _csv(tmp_path / "s.csv", ROWS), dataset="d", label_field="category",
                     select_labels_dp=True, pipeline=NamePipeline())  # fmt: skip
    assert s.labels_public == ["card", "fees"] and s.n_label_dropped == 2 and s.n_records == 120
    labels = {r[0] for r in ctx.db.conn.execute("SELECT DISTINCT label FROM records WHERE dataset = 'd'")}
    assert labels == {"card", "fees"}
    payload = json.loads(ctx.db.conn.execute("SELECT payload FROM events WHERE kind = 'seeds.import'").fetchone()[0])
    sel = payload["label_selection"]
    assert payload["labels_public"] == ["card", "fees"]
    assert sel["mechanism"] == "gaussian-thresholding" and sel["epsilon"] == 1.0 and sel["n_candidates"] == 3
    assert sel["delta"] == 1e-6  # default δ: min(1/(10·N), 1e-6), N = 1000 ≥ 122 records
    # all 122 records were the mechanism's input: every one is charged, the dropped ones too
    charge = ctx.db.conn.execute("SELECT id, epsilon, status, n_units FROM privacy_charges").fetchall()
    assert [(e, st, n) for _, e, st, n in charge] == [(1.0, "charged", 122)]
    assert dataset_spent(ctx.db.conn, "d").epsilon == 1.0
    view = BudgetLedger(ctx.db, ctx.policy.privacy).view("d")
    assert view.most_charged is not None and view.most_charged.epsilon == 1.0


def test_split_counts_are_those_of_the_records_kept(ctx: Context, tmp_path: Path) -> None:
    """Records of an unselected label are dropped after the split: the counts stored and printed are the kept
    records' (some of the dropped ones were holdout, so counting splits before the choice got both wrong)."""
    rare = [(f"A rare question, variant {i}.", "rare") for i in range(8)]
    s = import_seeds(ctx, _csv(tmp_path / "s.csv", ROWS[:120] + rare), dataset="d", label_field="category",
                     select_labels_dp=True, pipeline=NamePipeline())  # fmt: skip
    assert s.labels_public == ["card", "fees"] and s.n_label_dropped == 8 and s.n_records == 120
    stored = dict(ctx.db.conn.execute("SELECT split, COUNT(*) FROM records WHERE dataset = 'd' GROUP BY split"))
    assert (s.n_train, s.n_holdout) == (stored["train"], stored["holdout"])
    row = ctx.db.conn.execute("SELECT n_records, n_train, n_holdout FROM datasets WHERE name = 'd'").fetchone()
    assert tuple(row) == (120, stored["train"], stored["holdout"])


def test_no_label_selected_keeps_every_record_with_its_labels_inside(ctx: Context, tmp_path: Path) -> None:
    few = [("Card question one.", "card"), ("Fee question one.", "fees"), ("Card question two.", "card")]
    s = import_seeds(ctx, _csv(tmp_path / "s.csv", few), dataset="d", label_field="category",
                     select_labels_dp=True, pipeline=NamePipeline())  # fmt: skip
    assert s.labels_public == [] and s.n_records == 3 and s.n_label_dropped == 0
    assert dataset_spent(ctx.db.conn, "d").epsilon == 1.0  # the draw happened: it is charged


def test_a_second_selection_past_the_records_cap_is_refused_before_drawing(ctx: Context, tmp_path: Path) -> None:
    """The budget follows the records: the same file under another name is refused (exit 3), nothing stored."""
    _privacy(ctx, dataset_epsilon_cap=1.5, max_epsilon_per_run=1.5)
    src = _csv(tmp_path / "s.csv", ROWS)
    import_seeds(ctx, src, dataset="d1", label_field="category", select_labels_dp=True, pipeline=NamePipeline())
    with pytest.raises(BudgetExhausted, match="label selection") as err:
        import_seeds(ctx, src, dataset="d2", label_field="category", select_labels_dp=True, pipeline=NamePipeline())
    assert err.value.exit_code == 3
    assert ctx.db.conn.execute("SELECT COUNT(*) FROM datasets WHERE name = 'd2'").fetchone()[0] == 0
    assert ctx.db.conn.execute("SELECT COUNT(*) FROM privacy_charges").fetchone()[0] == 1


def test_a_charge_that_lands_between_the_check_and_the_store_refuses_the_import(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check before drawing and the charge are two moments: the ledger checks the records' caps again inside
    the import's own transaction, so a charge on the same records that lands in between (another import of the
    file under another name) refuses this one, and nothing of it is stored."""
    import appliance.ingest.importer as importer

    _privacy(ctx, dataset_epsilon_cap=1.5, max_epsilon_per_run=1.5)
    src = _csv(tmp_path / "s.csv", ROWS)
    select = importer._select

    def racing_select(c: Context, summary, rows):  # the other import commits after this one's check
        out = select(c, summary, rows)
        monkeypatch.setattr(importer, "_select", select)
        import_seeds(ctx, src, dataset="other", label_field="category", select_labels_dp=True, pipeline=NamePipeline())
        return out

    monkeypatch.setattr(importer, "_select", racing_select)
    with pytest.raises(BudgetExhausted, match="refused at the label selection's charge") as err:
        import_seeds(ctx, src, dataset="d", label_field="category", select_labels_dp=True, pipeline=NamePipeline())
    assert err.value.exit_code == 3
    names = [n for (n,) in ctx.db.conn.execute("SELECT name FROM datasets ORDER BY name")]
    assert names == ["other"]
    assert ctx.db.conn.execute("SELECT COUNT(*) FROM privacy_charges").fetchone()[0] == 1


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"label_field": None}, "pass --label-field"),
        ({"labels": ["card"]}, "not both"),
        ({"subject_field": "category"}, "--subject-field"),
    ],
)
def test_dp_selection_needs_a_label_field_and_no_declared_set_or_subjects(
    ctx: Context, tmp_path: Path, kw: dict, message: str
) -> None:
    args = {"label_field": "category", **kw}
    with pytest.raises(BadInput, match=message):
        import_seeds(ctx, _csv(tmp_path / "s.csv", ROWS), dataset="d", select_labels_dp=True,
                     pipeline=NamePipeline(), **args)  # fmt: skip


def test_without_labels_the_cli_chooses_the_set_by_dp_selection(cli, workspace: Path, tmp_path: Path) -> None:
    """Issue 15 §1's interface: `--label-field` without `--labels` runs the DP choice (charged and said);
    `--labels none` keeps the labels inside and spends nothing; with `--subject-field` a set must be declared,
    so there the labels stay inside."""
    src = _csv(tmp_path / "s.csv", ROWS)
    res = cli("seeds", "import", str(src), "--dataset", "auto", "--label-field", "category")
    assert res.exit_code == 0, res.output
    assert "labels chosen by DP partition selection" in res.output and "card, fees" in res.output
    ctx = Context.open(Workspace(workspace), actor="tester")
    try:
        (ev,) = ctx.ledger.events(kind="seeds.import")
        assert ev.payload["labels_public"] == ["card", "fees"] and ev.payload["label_selection"]["charge_id"]
        assert dataset_spent(ctx.db.conn, "auto").epsilon == pytest.approx(ctx.policy.privacy.label_selection_epsilon)
    finally:
        ctx.close()
    res = cli("seeds", "import", str(src), "--dataset", "inside", "--label-field", "category", "--labels", "none")
    assert res.exit_code == 0 and "stay inside" in res.output and "DP partition" not in res.output.split("note")[0]
    res = cli("seeds", "import", str(src), "--dataset", "nofield", "--labels", "none")
    assert res.exit_code == 1 and "pass --label-field" in res.output
    subj = tmp_path / "subj.csv"
    subj.write_text("text,category,who\n" + "".join(f"{t},{c},p{i % 9}\n" for i, (t, c) in enumerate(ROWS)))
    res = cli("seeds", "import", str(subj), "--dataset", "people", "--label-field", "category",
              "--subject-field", "who")  # fmt: skip
    assert res.exit_code == 0 and "stay inside" in res.output, res.output
    ctx = Context.open(Workspace(workspace), actor="tester")
    try:
        assert dataset_spent(ctx.db.conn, "inside").epsilon == 0.0
        assert dataset_spent(ctx.db.conn, "people").epsilon == 0.0
    finally:
        ctx.close()
