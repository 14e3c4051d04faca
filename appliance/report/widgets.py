"""Small HTML building blocks for the report: escaped values, tables, badges, shortened hashes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any


def fmt(x: Any, nd: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{nd}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{nd}f}".rstrip("0").rstrip(".") or "0"
    return escape(str(x))


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str = "none recorded") -> str:
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    if not body:
        body = f'<tr><td colspan="{len(headers)}" class="muted">{escape(empty)}</td></tr>'
    return (
        "<table><thead><tr>"
        + "".join(f"<th>{escape(h)}</th>" for h in headers)
        + f"</tr></thead><tbody>{body}</tbody></table>"
    )


def badge(ok: bool, yes: str = "OK", no: str = "FAILED") -> str:
    return f'<span class="badge {"ok" if ok else "bad"}">{escape(yes if ok else no)}</span>'


def short(h: Any, n: int = 16) -> str:
    return f'<span class="hash" title="{escape(str(h))}">{escape(str(h)[: 7 + n])}…</span>' if h else "—"
