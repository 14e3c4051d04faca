"""`appliance evaluate BATCH [--reference holdout|FILE] [--json]`: detection AUC, label fidelity, TSTR, MAUVE,
diversity and length, each with its sample size."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from appliance.cli.common import console, print_json, state


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else ("-" if v is None else str(v))


def evaluate(
    ctx: typer.Context,
    batch: str = typer.Argument(..., help="a curated batch id (run `appliance curate BATCH` first)"),
    reference: str = typer.Option(
        "holdout", "--reference", help="'holdout' (the dataset's holdout split) or a JSONL/CSV/TXT file"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the metrics record as JSON"),
) -> None:
    """Evaluate a curated batch's kept outputs: detection AUC, label fidelity, TSTR, MAUVE, diversity, length."""
    from appliance.evaluate import evaluate_batch

    c = state(ctx).open()
    try:
        report = evaluate_batch(c, batch, reference=reference)
    finally:
        c.close()
    if as_json:
        print_json(report.as_dict())
        return
    mt = report.metrics
    table = Table(title=f"evaluation of {report.batch_id} vs {report.reference}")
    table.add_column("metric")
    table.add_column("synthetic", justify="right")
    table.add_column("reference", justify="right")
    table.add_row("samples", str(report.n_synthetic), str(report.n_reference))
    rel = mt.get("reliability") or {}

    def flag(metric: str) -> str:
        r = rel.get(metric)
        return "" if r is None or r["reliable"] else f" (unreliable: n={r['n']} < {r['min_n']})"

    table.add_row("MAUVE" + flag("mauve"), _fmt(mt["mauve"]), "")
    for key in ("distinct_1", "distinct_2", "distinct_3", "self_bleu", "mean_pairwise_distance"):
        table.add_row(key, _fmt(mt["synthetic"][key]), _fmt(mt["reference"][key]))
    length = mt["length"]
    table.add_row("mean words", _fmt(length["synthetic"]["mean"]), _fmt(length["reference"]["mean"]))
    console.print(table)
    detectors = (
        ("detection", "detection AUC", "0.5 = indistinguishable", "detection_auc"),
        (
            "lexical_detection",
            "lexical detection AUC",
            "word and character n-grams: wording, punctuation, case; reported, not gated",
            "lexical_detection_auc",
        ),
    )
    for key, name, note, metric in detectors:
        d = mt.get(key)
        if d:
            console.print(
                f"{name}: {d['auc']:.4f} (95% CI {d['ci_low']:.3f}–{d['ci_high']:.3f}; {note};"
                f" n={d['n_real']} per side, {d['folds']}-fold){flag(metric)}",
                markup=False,
            )
    _print_fixed_n(mt.get("fixed_n"))
    f = mt.get("fidelity")
    if f:
        ceiling = "" if f["real_holdout_accuracy"] is None else f"; real holdout {f['real_holdout_accuracy']:.4f}"
        console.print(
            f"label fidelity: {f['fidelity']:.4f} (n={f['n_synthetic']}, classifier on {f['n_train']} real records"
            f"{ceiling}){flag('label_fidelity')}",
            markup=False,
        )
    t = mt["tstr"]
    if t:
        masked = t.get("masked") or {}
        console.print(
            f"TSTR: accuracy trained on synthetic {t['acc_synthetic']:.4f}, on real {t['acc_real']:.4f}, "
            f"ratio {_fmt(t['ratio'])}; label words masked: ratio {_fmt(masked.get('ratio'))} "
            f"(n={t['n_train']} per side, {t['n_labels']} labels, {t['n_test']} test){flag('tstr')}",
            markup=False,
        )
    console.print(f"embeddings: {report.embedding_model} {report.embedding_sha256}", markup=False)
    console.print(f"evaluation {report.evaluation_id}; audit event {report.event_seq}", markup=False)


def _print_fixed_n(fx: dict[str, Any] | None) -> None:
    """Both detection AUCs at one n per side, the figure that compares batches of different sizes."""
    if not fx:
        return
    if "skipped" in fx:
        console.print(
            f"detection AUCs at n={fx['n']} per side: not computed ({fx['n_synthetic']} outputs,"
            f" {fx['n_reference']} reference records; curation.eval_fixed_n sets n)",
            markup=False,
        )
        return
    d, lx = fx["detection"], fx["lexical_detection"]
    console.print(
        f"detection AUCs at n={fx['n']} per side (mean ± sd of {fx['draws']} subsamples; compares batches of different"
        f" sizes, the AUC rises with n): detection {d['auc']:.4f} ± {d['sd']:.3f},"
        f" lexical {lx['auc']:.4f} ± {lx['sd']:.3f}",
        markup=False,
    )
