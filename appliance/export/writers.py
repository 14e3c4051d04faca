"""Write exported records to a temporary file beside the destination, in JSON Lines, CSV or Parquet.

The caller moves the finished file into place with ``os.replace`` (atomic on one filesystem), so a
reader never sees a partial export and a refused or failed export leaves no file behind.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from appliance.errors import BadInput

FORMATS = ("jsonl", "csv", "parquet")


def sha256_path(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def temp_beside(dest: Path, suffix: str = ".tmp") -> Path:
    """A new, empty private file in ``dest``'s directory (same filesystem, so the rename is atomic).

    Its name carries the writer's pid (``.NAME.PID.XXXX.tmp``) so that :func:`sweep_stale_temps` can tell
    the leftovers of a killed export from the temporary file of an export still running.
    """
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.{os.getpid()}.", suffix=suffix, dir=dest.parent)
    os.close(fd)
    return Path(name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def sweep_stale_temps(dest: Path) -> int:
    """Delete temporary files beside ``dest`` left by exports whose process died (kill -9, power loss)."""
    removed = 0
    head = f".{dest.name}."
    for p in dest.parent.glob(f"{glob.escape(head)}*.tmp"):
        pid = p.name[len(head) :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")


def _csv(path: Path, rows: Sequence[dict[str, Any]], columns: list[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def _parquet(path: Path, rows: Sequence[dict[str, Any]], columns: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({c: pa.array([r.get(c) for r in rows], type=pa.string()) for c in columns})
    pq.write_table(table, str(path))


def write_temp(dest: Path, rows: Sequence[dict[str, Any]], fmt: str) -> Path:
    """Write ``rows`` (dicts of strings) in ``fmt`` to a synced temporary file beside ``dest``; returns it."""
    if fmt not in FORMATS:
        raise BadInput(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    columns = list(rows[0]) if rows else ["text"]
    tmp = temp_beside(dest)
    try:
        {
            "jsonl": lambda: _jsonl(tmp, rows),
            "csv": lambda: _csv(tmp, rows, columns),
            "parquet": lambda: _parquet(tmp, rows, columns),
        }[fmt]()
        _fsync(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def read_back(path: Path, fmt: str) -> list[dict[str, Any]]:
    """Records of an export file (for tests and verification tools)."""
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    if fmt == "csv":
        with open(path, encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    if fmt == "parquet":
        import pyarrow.parquet as pq

        records: list[dict[str, Any]] = pq.read_table(str(path)).to_pylist()
        return records
    raise BadInput(f"unknown export format {fmt!r}")
