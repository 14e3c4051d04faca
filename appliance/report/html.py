"""Render :class:`ReportData` as one self-contained HTML page: inline CSS and SVG, no scripts, no fetches.

Every value is escaped. The page carries counts, metrics, ids, hashes and timestamps only — the data
a compliance officer signs off on, never a seed or an output (label names and DP-released keywords are public or DP).
"""

from __future__ import annotations

from html import escape

from appliance.report import sections as S
from appliance.report.data import ReportData

CSS = """
:root { --ok: #1e7b34; --bad: #b3261e; --muted: #666; --line: #d0d0d0; }
* { box-sizing: border-box; }
body { font: 13px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #111; margin: 0 auto;
       max-width: 1100px; padding: 24px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; border-bottom: 2px solid #111; padding-bottom: 3px;
     margin-top: 28px; } h3 { font-size: 14px; margin: 16px 0 6px; }
.meta, .muted { color: var(--muted); } code, .hash { font: 11px/1.3 ui-monospace, Menlo, Consolas, monospace;
     word-break: break-all; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 9px; color: #fff; font-weight: 600; font-size: 11px; }
.ok { background: var(--ok); } .bad { background: var(--bad); } .warn { background: #b36b00; }
.fail { color: var(--bad); font-weight: 600; } .pass { color: var(--ok); }
.summary { display: grid; grid-template-columns: repeat(4, 1fr); gap: 8px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.card b { display: block; font-size: 18px; } figure { margin: 8px 0; } figure svg { max-width: 100%; height: auto; }
.probe { display: grid; grid-template-columns: 1fr 330px; gap: 12px; align-items: start; }
section { page-break-inside: auto; } p.note { color: #333; font-size: 12px; margin: 4px 0; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5px; }
  h2 { page-break-after: avoid; } table, figure, .card, .probe { page-break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  @page { size: A4; margin: 14mm; }
}
"""


SECTIONS = (
    S.summary_section,
    S.chain_section,
    S.datasets_section,
    S.runs_section,
    S.pii_section,
    S.probes_section,
    S.gate_section,
    S.exports_section,
    S.activity_section,
)


def render(d: ReportData) -> str:
    scope = f"dataset <b>{escape(d.dataset)}</b>" if d.dataset else "all datasets"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy"'
        " content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        f"<title>Compliance report — synthetic data appliance</title><style>{CSS}</style></head><body>"
        f'<header><h1>Compliance report — synthetic data appliance</h1><p class="meta">Scope: {scope}. Generated'
        f" {escape(d.generated_at)} by {escape(d.actor)}. Effective policy <code>{escape(d.policy_sha256)}</code>.</p>"
        "</header>"
        + "".join(f(d) for f in SECTIONS)
        + '<footer class="muted"><p>Self-contained: no scripts, no external resources.</p></footer>'
        "</body></html>\n"
    )
