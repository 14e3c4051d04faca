"""Import decisions that are about privacy, not PII: the split is made on the redacted text, and labels
are public schema declared with --labels (others dropped and counted). A test-double PII pipeline
replaces names, so these run without Presidio (the real engine is tested in test_cli_seeds.py)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from appliance.cli.seeds import parse_labels
from appliance.config import Workspace
from appliance.context import Context
from appliance.errors import BadInput
from appliance.ingest import import_seeds
from appliance.ingest.split import record_key
from appliance.pii.pipeline import PiiResult

NAMES = ["Alice", "Bruno", "Chen", "Dora", "Emil", "Fatima", "Goran", "Hana", "Ivo", "Jana",
         "Karim", "Lena", "Milan", "Nora", "Oskar", "Petra", "Quentin", "Rosa", "Samir", "Tereza"]  # fmt: skip


class _Engine:
    def describe(self) -> dict:
        return {"engine": "test-double", "model_sha256": "sha256:" + "0" * 64}


class NamePipeline:
    """Redacts the names above to <PERSON>, finds nothing else."""

    engine = _Engine()
    _re = re.compile(r"\b(" + "|".join(NAMES) + r")\b")

    def scan(self, texts: list[str]) -> list[list[dict]]:
        return [[] for _ in texts]

    def process(self, texts: list[str]) -> list[PiiResult]:
        return [PiiResult(self._re.sub("<PERSON>", t), False, []) for t in texts]


@pytest.fixture
def ctx(workspace: Path):
    c = Context.open(Workspace(workspace), actor="tester")
    yield c
    c.close()


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "category"])
        w.writerows(rows)
    return path


def _records(ctx: Context, dataset: str) -> list[tuple[str, str, str | None]]:
    sql = "SELECT text, split, label FROM records WHERE dataset = ? ORDER BY id"
    return ctx.db.conn.execute(sql, (dataset,)).fetchall()


def test_records_identical_after_redaction_never_straddle_the_split(ctx, tmp_path: Path) -> None:
    """20 records differ only in a name; after redaction they are one text, so they share one split."""
    same = [(f"Please call {n} about my card.", "card") for n in NAMES]
    other = [(f"Question number {i} about fees.", "fees") for i in range(60)]
    assert len({t for t, _ in same}) == 20  # 20 different raw texts, one redacted text
    s = import_seeds(ctx, _csv(tmp_path / "s.csv", same + other), dataset="d", label_field="category",
                     labels=["card", "fees"], pipeline=NamePipeline())  # fmt: skip
    rows = _records(ctx, "d")
    splits = {sp for t, sp, _ in rows if t == "Please call <PERSON> about my card."}
    assert len([r for r in rows if r[0] == "Please call <PERSON> about my card."]) == 20
    assert len(splits) == 1
    assert s.n_holdout > 0 and s.n_train > 0


def test_split_key_is_the_normalised_redacted_text() -> None:
    assert record_key("Call <PERSON>  now") == record_key("call <person> now") != record_key("Call <PHONE> now")


def test_labels_not_declared_public_are_dropped_and_counted(ctx, tmp_path: Path) -> None:
    rows = [(f"text {i} about billing", "billing") for i in range(6)] + [
        (f"text {i} about a bug", "bug") for i in range(6)
    ]
    rows += [("my rare condition", "rare_diagnosis"), ("another rare one", "rare_other")]
    s = import_seeds(ctx, _csv(tmp_path / "s.csv", rows), dataset="d", label_field="category",
                     labels=["billing", "bug", "refund"], pipeline=NamePipeline())  # fmt: skip
    assert s.n_label_dropped == 2 and s.n_records == 12 and s.n_read == 14
    assert {lab for _, _, lab in _records(ctx, "d")} == {"billing", "bug"}
    (ev,) = ctx.ledger.events(kind="seeds.import")
    assert ev.payload["labels_public"] == ["billing", "bug", "refund"] and ev.payload["n_label_dropped"] == 2
    assert "rare_diagnosis" not in str(ev.payload)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"label_field": "category", "labels": ["nope", "never"]}, "matches no record"),
        ({"label_field": None, "labels": ["billing"]}, "--label-field"),
        ({"label_field": "category", "labels": [" ", ""]}, "empty"),
    ],
)
def test_bad_labels_are_bad_input_and_write_nothing(ctx, tmp_path: Path, kw: dict, message: str) -> None:
    path = _csv(tmp_path / "s.csv", [("a billing question", "billing"), ("a bug report", "bug")])
    with pytest.raises(BadInput, match=message):
        import_seeds(ctx, path, dataset="d", pipeline=NamePipeline(), **kw)
    assert ctx.db.conn.execute("SELECT COUNT(*) FROM datasets").fetchone()[0] == 0
    assert not ctx.ledger.events(kind="seeds.import")


def test_labels_option_accepts_a_list_or_a_file(tmp_path: Path) -> None:
    f = tmp_path / "labels.txt"
    f.write_text("billing\nbug,refund\n", encoding="utf-8")
    assert parse_labels("billing,bug") == ["billing", "bug"]
    assert parse_labels(f"@{f}") == ["billing", "bug", "refund"]
    assert parse_labels(None) is None
    with pytest.raises(BadInput, match="cannot read"):
        parse_labels(f"@{tmp_path / 'missing.txt'}")


def test_a_prompts_labels_are_the_public_set_not_those_trained_on(ctx, tmp_path: Path) -> None:
    """Whether a label appears in the outputs must not hang on one record: the training data's label set is the
    declared one, "refund" included though no record holds it; an import whose DP choice picked no label
    trains unlabelled (its labels stay stored, never released)."""
    from appliance.train.data import load_records, public_labels

    rows = [(f"Question number {i} about fees.", "fees") for i in range(30)] + [("Where is my card?", "card")]
    import_seeds(ctx, _csv(tmp_path / "s.csv", rows), dataset="d", label_field="category",
                 labels=["card", "fees", "refund"], pipeline=NamePipeline())  # fmt: skip
    data = load_records(ctx.db, "d", holdout_limit=10)
    assert public_labels(ctx.db, "d") == ["card", "fees", "refund"] and data.labels == ["card", "fees", "refund"]
    few = [("Card question one.", "card"), ("Fee question one.", "fees"), ("Card question two.", "card")]
    import_seeds(ctx, _csv(tmp_path / "f.csv", few), dataset="f", label_field="category", select_labels_dp=True,
                 pipeline=NamePipeline())  # fmt: skip
    unlabelled = load_records(ctx.db, "f", holdout_limit=10)
    assert public_labels(ctx.db, "f") == [] and unlabelled.labels is None
    assert all(lab is None for _, lab in unlabelled.train)


def test_a_public_corpus_is_declared_in_its_import_event_with_its_labels(ctx, tmp_path: Path) -> None:
    """`seeds import --public`: the records are a published corpus, so their label set is public without a
    declaration or a DP choice (nothing charged), and the dataset reads as public; another import does not."""
    from appliance.train.data import declared_public, load_records

    rows = [(f"Question number {i} about fees.", "fees") for i in range(12)] + [("Where is my card?", "card")]
    s = import_seeds(ctx, _csv(tmp_path / "p.csv", rows), dataset="pub", label_field="category", public_data=True,
                     pipeline=NamePipeline())  # fmt: skip
    assert s.public_data and s.labels_public == ["card", "fees"] and s.label_selection is None
    (ev,) = ctx.ledger.events(kind="seeds.import")
    assert ev.payload["public_data"] is True and ev.payload["labels_public"] == ["card", "fees"]
    assert declared_public(ctx.db.conn, "pub") and load_records(ctx.db, "pub", holdout_limit=5).labels == [
        "card",
        "fees",
    ]
    assert ctx.db.conn.execute("SELECT COUNT(*) FROM privacy_charges").fetchone()[0] == 0
    import_seeds(ctx, _csv(tmp_path / "q.csv", rows), dataset="priv", label_field="category", labels=["fees"],
                 pipeline=NamePipeline())  # fmt: skip
    assert not declared_public(ctx.db.conn, "priv") and not declared_public(ctx.db.conn, "nope")


def test_a_public_corpus_refuses_a_dp_label_selection(ctx, tmp_path: Path) -> None:
    path = _csv(tmp_path / "p.csv", [("a billing question", "billing"), ("a bug report", "bug")])
    with pytest.raises(BadInput, match="--public data needs no DP label selection"):
        import_seeds(ctx, path, dataset="pub", label_field="category", select_labels_dp=True, public_data=True,
                     pipeline=NamePipeline())  # fmt: skip
    assert ctx.db.conn.execute("SELECT COUNT(*) FROM datasets").fetchone()[0] == 0
