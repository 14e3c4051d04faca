"""Inline SVG charts for the compliance report (matplotlib, Agg backend, fonts as paths: no external files)."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

plt.rcParams.update(
    {
        "svg.fonttype": "path",
        "svg.hashsalt": "appliance-report",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)

_COLORS = ["#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad", "#d4860b", "#555555"]


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def budget_chart(rows: Sequence[dict[str, Any]]) -> str:
    """Horizontal bars: ε of each dataset's most-charged record (or subject) against the per-record cap."""
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * max(1, len(rows))))
    names = [r["name"] for r in rows] or ["(none)"]
    spent = [r.get("unit_epsilon", r["epsilon_spent"]) for r in rows] or [0.0]
    cap = max([r["epsilon_cap"] for r in rows] or [1.0])
    colors = [_COLORS[1] if s > cap else _COLORS[0] for s in spent]
    ax.barh(names, spent, color=colors)
    ax.axvline(cap, color="#333", linestyle="--", linewidth=1)
    ax.text(cap, len(names) - 0.45, f" cap ε={cap:g}", va="bottom", fontsize=8)
    ax.set_xlabel("ε of the most-charged record (basic composition, every dataset name)")
    ax.set_xlim(0, max(cap, *spent) * 1.15)
    return _svg(fig)


def roc_chart(curves: dict[str, dict[str, list[float]]], aucs: dict[str, float], max_fpr_line: float = 0.01) -> str:
    """ROC curves of each membership attack (log-scaled FPR, as in LiRA) with the 1% FPR operating point."""
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    for i, (name, c) in enumerate(curves.items()):
        fpr = [max(f, 1e-3) for f in c["fpr"]]
        ax.step(
            fpr,
            c["tpr"],
            where="post",
            color=_COLORS[i % len(_COLORS)],
            label=f"{name} (AUC {aucs.get(name, float('nan')):.2f})",
        )
    grid = [10 ** (k / 20) for k in range(-60, 1)]
    ax.plot(grid, grid, color="#999", linestyle=":", linewidth=1, label="chance")
    ax.axvline(max_fpr_line, color="#333", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlim(1e-3, 1.0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false positive rate (holdout flagged as member)")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=7, loc="lower right")
    return _svg(fig)


def pii_chart(at_import: Counter[str], at_output: Counter[str]) -> str:
    """Grouped bars: PII findings per entity type in the seeds (import) and in generated outputs."""
    types = sorted(set(at_import) | set(at_output)) or ["(none)"]
    fig, ax = plt.subplots(figsize=(6.4, 0.6 + 0.35 * len(types)))
    ys = range(len(types))
    ax.barh([y - 0.2 for y in ys], [at_import.get(t, 0) for t in types], height=0.4, color=_COLORS[0], label="import")
    ax.barh([y + 0.2 for y in ys], [at_output.get(t, 0) for t in types], height=0.4, color=_COLORS[1], label="output")
    ax.set_yticks(list(ys), types)
    ax.invert_yaxis()
    ax.set_xlabel("findings")
    ax.legend(fontsize=7)
    return _svg(fig)
