"""Seed file readers: formats, line numbers, and every bad-input case (messages never quote text)."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import BadInput
from appliance.ingest.readers import detect_format, read_seeds

SECRET = "Zanzibar-Quokka-4471"


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    p = tmp_path / name
    p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return p


def test_jsonl_records_keep_line_numbers_and_labels(tmp_path: Path) -> None:
    p = write(tmp_path, "s.jsonl", '{"text": "a", "y": "x"}\n\n{"text": "b\\nc", "y": 3}\n')
    r = read_seeds(p, label_field="y")
    assert r.fmt == "jsonl" and not r.bad
    assert [(x.index, x.line, x.text, x.label) for x in r.records] == [(0, 1, "a", "x"), (1, 3, "b\nc", "3")]
    assert r.source_sha256.startswith("sha256:")


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ('{"text": "ok"}\n{"text": "' + SECRET + '"\n', 2, "malformed JSON"),
        ('{"text": "ok"}\n{"body": "' + SECRET + '"}\n', 2, "missing text field 'text'"),
        ('{"text": "ok"}\n\n\n{"text": 42}\n', 4, "must be a string"),
        ('{"text": "ok"}\n["' + SECRET + '"]\n', 2, "expected a JSON object"),
        ('{"text": "   "}\n', 1, "is empty"),
        ('{"text": "\\ud800 lone surrogate"}\n', 1, "not valid UTF-8"),
    ],
)
def test_jsonl_bad_lines_are_named_without_content(tmp_path: Path, content: str, line: int, reason: str) -> None:
    r = read_seeds(write(tmp_path, "s.jsonl", content))
    assert len(r.bad) == 1
    assert r.bad[0].line == line
    assert reason in str(r.bad[0])
    assert SECRET not in str(r.bad[0])


def test_non_utf8_bytes_name_the_line(tmp_path: Path) -> None:
    p = write(tmp_path, "s.jsonl", b'{"text": "fine"}\n{"text": "caf\xe9 ' + SECRET.encode() + b'"}\n')
    r = read_seeds(p)
    assert [b.line for b in r.bad] == [2]
    assert "UTF-8" in r.bad[0].reason
    assert [x.text for x in r.records] == ["fine"]


def test_txt_non_utf8_and_missing_label_support(tmp_path: Path) -> None:
    r = read_seeds(write(tmp_path, "s.txt", b"one\n\xff\xfe two\n\nthree\r\n"))
    assert [(x.line, x.text) for x in r.records] == [(1, "one"), (4, "three")]
    assert [b.line for b in r.bad] == [2]
    with pytest.raises(BadInput, match="--label-field"):
        read_seeds(write(tmp_path, "t.txt", "a\n"), label_field="y")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"\n  \n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b'{"text": "a"}\x00\n', "binary"),
    ],
)
def test_whole_file_problems(tmp_path: Path, data: bytes, match: str) -> None:
    with pytest.raises(BadInput, match=match):
        read_seeds(write(tmp_path, "s.jsonl", data))


def test_csv_quoted_newlines_are_one_record(tmp_path: Path) -> None:
    data = 'id,text,label\n1,"first line\nsecond line, with comma",a\n2,"say ""hi""",b\n'
    r = read_seeds(write(tmp_path, "s.csv", data), label_field="label")
    assert not r.bad
    assert [(x.line, x.text, x.label) for x in r.records] == [
        (2, "first line\nsecond line, with comma", "a"),
        (4, 'say "hi"', "b"),
    ]


def test_csv_malformed_rows_are_named(tmp_path: Path) -> None:
    data = 'text,label\nok,a\n"bad"x,b\nfine,c\nshort\n"unterminated,d\nmore\n'
    r = read_seeds(write(tmp_path, "s.csv", data))
    assert [x.text for x in r.records] == ["ok", "fine"]
    assert [b.line for b in r.bad] == [3, 5, 6]
    assert "malformed CSV" in r.bad[0].reason and "expected 2 CSV fields" in r.bad[1].reason


def test_csv_header_without_text_column(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no column 'text'") as exc:
        read_seeds(write(tmp_path, "s.csv", f"{SECRET},b\n1,2\n"))
    assert SECRET not in str(exc.value)


def test_bom_is_ignored(tmp_path: Path) -> None:
    r = read_seeds(write(tmp_path, "s.csv", b"\xef\xbb\xbftext\nhello\n"))
    assert [x.text for x in r.records] == ["hello"]


def test_format_detection(tmp_path: Path) -> None:
    assert detect_format(Path("a.ndjson"), None) == "jsonl"
    assert detect_format(Path("a.data"), "csv") == "csv"
    with pytest.raises(BadInput, match="--format"):
        detect_format(Path("a.data"), None)
    with pytest.raises(BadInput, match="not a readable file"):
        read_seeds(tmp_path / "missing.jsonl")
    # a directory or a missing file without a known extension: the path is the problem, not the format
    for path in (tmp_path, tmp_path / "missing.data"):
        with pytest.raises(BadInput, match="not a readable file"):
            read_seeds(path)
