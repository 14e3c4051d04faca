"""Compliance report: one self-contained HTML page (chain, budgets, runs, PII, probes, gate, exports, activity)."""

from __future__ import annotations

from pathlib import Path

from appliance.context import Context
from appliance.db import utc_now


def build_report(ctx: Context, dataset: str | None = None) -> str:
    """The report's HTML for the whole workspace or one dataset."""
    from appliance.report.data import gather
    from appliance.report.html import render

    return render(gather(ctx, dataset, utc_now()))


def write_report(ctx: Context, out: Path, dataset: str | None = None) -> Path:
    """Write the report atomically (temporary file beside ``out``, then rename)."""
    html = build_report(ctx, dataset)
    out = out.expanduser().resolve()
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return out
