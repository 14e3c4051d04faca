"""Read seed files (JSONL, CSV, TXT) into records with line numbers; never echo their content.

Every problem is reported as ``line N: <reason>`` where the reason names the field or the parse error
but never quotes the text, so messages are safe to print and to log. Whole-file problems (binary,
empty, wrong header) raise :class:`BadInput` at once; per-record problems are collected so that the
importer can refuse the file or, with ``--skip-bad``, skip those lines.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.errors import BadInput

FORMATS = ("jsonl", "csv", "txt")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".txt": "txt", ".text": "txt"}
_MAX_FIELD_NAME = 64
MAX_LABEL = 64


@dataclass(frozen=True)
class SeedRecord:
    """One readable record: ``index`` is its position among good records, ``line`` where it starts."""

    index: int
    line: int
    text: str
    label: str | None = None
    subject: str | None = None  # the declared subject id (never stored: only its keyed hash is)


@dataclass(frozen=True)
class BadRecord:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ReadResult:
    fmt: str
    source_sha256: str
    records: list[SeedRecord] = field(default_factory=list)
    bad: list[BadRecord] = field(default_factory=list)


def detect_format(path: Path, fmt: str | None) -> str:
    """The explicit ``--format`` or one inferred from the file extension."""
    if fmt:
        if fmt not in FORMATS:
            raise BadInput(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
        return fmt
    guessed = _EXTENSIONS.get(path.suffix.lower())
    if guessed is None:
        raise BadInput(f"cannot tell the format of {path.name} from its extension — pass --format jsonl|csv|txt")
    return guessed


def read_seeds(
    path: Path,
    *,
    fmt: str | None = None,
    text_field: str = "text",
    label_field: str | None = None,
    subject_field: str | None = None,
) -> ReadResult:
    """Read ``path``; raise :class:`BadInput` for whole-file problems, collect per-line ones."""
    if not path.is_file():  # first: a directory or a typo has no format to guess
        raise BadInput(f"{path} is not a readable file — check the path")
    kind = detect_format(path, fmt)
    for name in (text_field, label_field, subject_field):
        if name is not None and not 0 < len(name) <= _MAX_FIELD_NAME:
            raise BadInput(f"field names must be 1 to {_MAX_FIELD_NAME} characters")
    if kind == "txt" and label_field:
        raise BadInput("TXT files have no fields: --label-field needs a JSONL or CSV file")
    if kind == "txt" and subject_field:
        raise BadInput("TXT files have no fields: --subject-field needs a JSONL or CSV file")
    if subject_field is not None and subject_field in (text_field, label_field):
        raise BadInput("--subject-field must name its own field, not the text or the label field")
    data = path.read_bytes()
    if b"\x00" in data:
        raise BadInput(f"{path.name} looks like a binary file (NUL bytes) — give a UTF-8 JSONL, CSV or TXT file")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        raise BadInput(f"{path.name} is empty — nothing to import")
    result = ReadResult(fmt=kind, source_sha256="sha256:" + hashlib.sha256(data).hexdigest())
    text = data.decode("utf-8", errors="surrogateescape")
    fields = Fields(text_field, label_field, subject_field)
    rows = {"jsonl": _jsonl, "csv": _csv, "txt": _txt}[kind](text, fields)
    for item in rows:
        if isinstance(item, BadRecord):
            result.bad.append(item)
        else:
            line, body, label, subject = item
            problem = (
                _unicode_problem(body)
                or (label is not None and _unicode_problem(label))
                or (subject is not None and _unicode_problem(subject))
            )
            if problem:
                result.bad.append(BadRecord(line, problem))
            else:
                result.records.append(SeedRecord(len(result.records), line, body, label, subject))
    return result


@dataclass(frozen=True)
class Fields:
    text: str
    label: str | None = None
    subject: str | None = None


Row = tuple[int, str, str | None, str | None] | BadRecord


def _unicode_problem(value: str) -> str | None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8 — re-encode the file as UTF-8"
    return None


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for i, line in enumerate(text.split("\n"), start=1):
        yield i, line.removesuffix("\r")


def _txt(text: str, _fields: Fields) -> Iterator[Row]:
    for no, line in _lines(text):
        if line.strip():
            yield no, line, None, None


def _field(obj: dict[str, Any], name: str, what: str, no: int) -> str | BadRecord:
    if name not in obj:
        return BadRecord(no, f"missing {what} field {name!r}")
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return BadRecord(no, f"{what} field {name!r} must be a string")
    return str(value)


def _jsonl(text: str, fields: Fields) -> Iterator[Row]:
    for no, line in _lines(text):
        if not line.strip():
            continue
        if _unicode_problem(line):
            yield BadRecord(no, "not valid UTF-8 — re-encode the file as UTF-8")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield BadRecord(no, f"malformed JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            yield BadRecord(no, "expected a JSON object per line")
            continue
        yield from _pick(obj, no, fields)


def _pick(obj: dict[str, Any], no: int, fields: Fields) -> Iterator[Row]:
    text_field, label_field = fields.text, fields.label
    body = _field(obj, text_field, "text", no)
    if isinstance(body, BadRecord):
        yield body
        return
    if not isinstance(obj[text_field], str):
        yield BadRecord(no, f"text field {text_field!r} must be a string")
        return
    if not body.strip():
        yield BadRecord(no, f"text field {text_field!r} is empty")
        return
    label = None
    if label_field is not None:
        got = _field(obj, label_field, "label", no)
        if isinstance(got, BadRecord):
            yield got
            return
        if len(got) > MAX_LABEL or "\n" in got or not got.strip():
            yield BadRecord(no, f"label field {label_field!r} must be a category name of 1 to {MAX_LABEL} characters")
            return
        label = got
    subject = None
    if fields.subject is not None:
        got = _field(obj, fields.subject, "subject", no)
        if isinstance(got, BadRecord) or not got.strip():
            yield BadRecord(
                no,
                f"subject field {fields.subject!r} is missing or empty — every record needs its subject's id when"
                " --subject-field is given (add it, or pass --skip-bad to leave such records out)",
            )
            return
        subject = got
    yield no, body, label, subject


def _csv(text: str, fields: Fields) -> Iterator[Row]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    prev = 0
    while True:
        start = prev + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            prev = reader.line_num
            if header is None:
                raise BadInput(f"line {start}: malformed CSV header ({exc}) — fix the file") from None
            yield BadRecord(start, f"malformed CSV ({exc})")
            continue
        prev = reader.line_num
        if not row:
            continue
        if header is None:
            header = [h.strip() for h in row]
            missing = [f for f in (fields.text, fields.label, fields.subject) if f is not None and f not in header]
            if missing:
                raise BadInput(
                    f"the CSV header (line {start}, {len(header)} columns) has no column {missing[0]!r} — "
                    "pass --text-field/--label-field/--subject-field naming header columns"
                )
            continue
        if len(row) != len(header):
            yield BadRecord(start, f"expected {len(header)} CSV fields, got {len(row)}")
            continue
        if any(_unicode_problem(cell) for cell in row):
            yield BadRecord(start, "not valid UTF-8 — re-encode the file as UTF-8")
            continue
        yield from _pick(dict(zip(header, row, strict=True)), start, fields)
