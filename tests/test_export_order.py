"""The order an export writes: each label spread evenly through the file (appliance.export.order)."""

from __future__ import annotations

from pathlib import Path

from _curate_data import add_batch, add_dataset, open_ctx

from appliance.export.order import spread_labels
from appliance.export.service import kept_records


def _labels(records: list[dict]) -> list[str | None]:
    return [r.get("label") for r in records]


def test_grouped_labels_are_spread_and_each_label_keeps_its_order() -> None:
    grouped = [{"text": f"a{i}", "label": "a"} for i in range(4)] + [{"text": f"b{i}", "label": "b"} for i in range(2)]
    out = spread_labels(grouped)
    assert sorted(r["text"] for r in out) == sorted(r["text"] for r in grouped)  # nothing added or dropped
    assert [r["text"] for r in out if r["label"] == "a"] == ["a0", "a1", "a2", "a3"]
    assert [r["text"] for r in out if r["label"] == "b"] == ["b0", "b1"]
    assert _labels(out) == ["a", "b", "a", "a", "b", "a"]  # a at 1/8, 3/8, 5/8, 7/8; b at 1/4, 3/4


def test_every_prefix_holds_each_label_in_about_its_share() -> None:
    sizes = {"card_arrival": 30, "exchange_rate": 12, "pin_blocked": 5}
    grouped = [{"text": f"{lab}{i}", "label": lab} for lab, n in sizes.items() for i in range(n)]
    out = spread_labels(grouped)
    total = len(out)
    for k in range(1, total + 1):
        head = _labels(out[:k])
        for lab, n in sizes.items():
            assert abs(head.count(lab) - k * n / total) <= 1.0, (k, lab)
    assert set(_labels(out[:8])) == set(sizes)


def test_one_label_or_none_keeps_the_given_order() -> None:
    recs = [{"text": f"t{i}"} for i in range(5)]
    assert spread_labels(recs) == recs
    same = [{"text": f"t{i}", "label": "x"} for i in range(5)]
    assert spread_labels(same) == same
    assert spread_labels([]) == []


def test_kept_records_of_a_labelled_batch_are_spread_and_of_an_unlabelled_one_in_idx_order(workspace: Path) -> None:
    ctx = open_ctx(workspace)
    try:
        add_dataset(ctx, "bank", [("seed", "a")], [("held", "b")])
        add_batch(ctx, "b-lab", "bank", [(f"a{i}", "a") for i in range(3)] + [(f"b{i}", "b") for i in range(3)])
        ctx.db.conn.execute("UPDATE outputs SET status = 'kept' WHERE batch_id = 'b-lab' AND text != 'a1'")
        labeled = kept_records(ctx, "b-lab", labeled=True)
        assert [r["text"] for r in labeled] == ["b0", "a0", "b1", "a2", "b2"]  # b at 1/6, 1/2, 5/6; a at 1/4, 3/4
        assert all(set(r) == {"text", "label"} for r in labeled)
        plain = kept_records(ctx, "b-lab", labeled=False)
        assert [r["text"] for r in plain] == ["a0", "a2", "b0", "b1", "b2"]  # idx order, no label written
    finally:
        ctx.close()
