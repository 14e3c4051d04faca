"""`appliance models list|verify`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from appliance.cli.common import console, new_app, print_json, state
from appliance.errors import ChecksumMismatch, ConfigError
from appliance.models.registry import gguf_architecture, load_registry, locate, sha256_file

app = new_app("List and verify the pinned local models.")


def _rows(ctx: typer.Context, check: bool, only: str | None = None) -> list[dict[str, Any]]:
    default, specs = load_registry()
    ws = state(ctx).ws
    rows = []
    for name, spec in specs.items():
        if only is not None and name != only:
            continue
        path = locate(spec, ws)
        row = {
            "name": name,
            "default": name == default,
            "file": spec.file,
            "path": str(path) if path else None,
            "size": path.stat().st_size if path else None,
            "sha256": spec.sha256,
            "architecture": gguf_architecture(path) if path else None,
            "license": spec.license,
            "status": "missing" if path is None else "present",
        }
        if check and path is not None:
            row["status"] = "ok" if sha256_file(path) == spec.sha256 else "CHECKSUM MISMATCH"
            if row["status"] == "ok":
                row["kernels"] = _kernels(path, "sha256:" + spec.sha256)
        rows.append(row)
    return rows


def _kernels(path: Path, sha256: str) -> dict[str, Any]:
    """The llama.cpp self-test verdict for this model on this machine (runs the test once, then cached)."""
    from appliance.generate.selftest import BackendUnusable, CpuUnsupported, extra_bufts_safe

    try:
        v = extra_bufts_safe(path, sha256)
    except (CpuUnsupported, BackendUnusable) as exc:
        return {"extra_bufts": None, "outcome": "unusable", "error": str(exc)}
    return {**v.audit(), "system_info": v.system_info}


def _table(rows: list[dict[str, Any]]) -> Table:
    kernels = any("kernels" in r for r in rows)
    t = Table(
        "name",
        "file",
        "size",
        "sha256",
        "architecture",
        "license",
        "status",
        *(["extra buffer types"] if kernels else []),
    )
    for r in rows:
        size = f"{r['size'] / 1e6:.1f} MB" if r["size"] else "-"
        name = r["name"] + (" (default)" if r["default"] else "")
        cells = [name, r["file"], size, r["sha256"][:16] + "…", r["architecture"] or "-", r["license"], r["status"]]
        if kernels:
            k = r.get("kernels")
            cells.append("-" if k is None else f"{_onoff(k['extra_bufts'])} ({k['outcome']})")
        t.add_row(*cells)
    return t


def _onoff(v: bool | None) -> str:
    return "n/a" if v is None else ("on" if v else "off")


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List pinned models: file, size, sha256, GGUF architecture, license, whether fetched."""
    rows = _rows(ctx, check=False)
    if as_json:
        print_json({"models": rows})
    else:
        console.print(_table(rows))


@app.command("verify")
def verify(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="model name (default: every fetched model)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Check fetched models against their pinned SHA-256 (exit 4 on a mismatch) and self-test llama.cpp on them."""
    rows = _rows(ctx, check=True, only=name)
    if name is not None and not rows:
        raise ConfigError(f"unknown model {name!r}; see `appliance models list`")
    if as_json:
        print_json({"models": rows})
    else:
        console.print(_table(rows))
    bad = [r["name"] for r in rows if r["status"] == "CHECKSUM MISMATCH"]
    if bad:
        raise ChecksumMismatch(f"checksum mismatch for {', '.join(bad)} — delete the file(s) and run `make models`")
    missing = [r["name"] for r in rows if r["status"] == "missing" and (r["default"] or name)]
    if missing:
        raise ConfigError(f"model(s) not fetched: {', '.join(missing)} — run `make models`")
    unusable = [r["kernels"]["error"] for r in rows if (r.get("kernels") or {}).get("outcome") == "unusable"]
    if unusable:
        raise ConfigError(unusable[0])
