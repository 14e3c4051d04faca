"""`appliance audit report`: a self-contained compliance report, rendered in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from gate_fixtures import GOOD_SUMMARY, TEXTS, seed_workspace

SECTIONS = ["chain", "datasets", "training", "pii", "probes", "gate", "exports", "activity"]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _flags(profile: Path) -> list[str]:
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ]


@pytest.fixture
def report(cli, workspace, tmp_path) -> Path:
    """A workspace with one passed export and one refused batch, and its report."""
    good = seed_workspace(workspace)
    bad = seed_workspace(workspace, batch_id="b-bad", summary={**GOOD_SUMMARY, "mia_auc_upper": 0.93}, dp=False)
    assert cli("export", good, "--out", str(tmp_path / "ok.jsonl")).exit_code == 0
    assert cli("export", bad, "--out", str(tmp_path / "no.jsonl")).exit_code == 3
    out = tmp_path / "report.html"
    res = cli("audit", "report", "--out", str(out))
    assert res.exit_code == 0, res.output
    return out


def test_report_is_self_contained_and_complete(report, workspace):
    html = report.read_text(encoding="utf-8")
    for sec in SECTIONS:
        assert f'<section id="{sec}">' in html
    assert "INTACT" in html and "REFUSED" in html and "PASSED" in html and "NON-DP" in html
    assert "Trust model" in html and "the workspace's own" in html  # where the key lives, what an owner can forge
    assert "basic composition" in html and "add/remove-one-record" in html
    assert "refuses the whole export" in html and "retries included" in html  # what the guarantee covers
    assert "to within one batch size" in html and "public label set" in html
    assert "mia_auc: 0.93 (threshold &lt;= 0.65)" in html
    assert "PERSON" in html and "<svg" in html and "@media print" in html
    assert "<script" not in html and "<link" not in html and "<img" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "url(" not in html.replace("url(#", "")  # only in-document SVG references
    for t in TEXTS:  # records never reach the report
        assert t not in html and t.replace("my", "our") not in html


def test_report_for_one_dataset_and_unknown_dataset(cli, report, tmp_path):
    res = cli("audit", "report", "--out", str(tmp_path / "r2.html"), "--dataset", "bank")
    assert res.exit_code == 0 and "dataset <b>bank</b>" in (tmp_path / "r2.html").read_text()
    assert cli("audit", "report", "--out", str(tmp_path / "r3.html"), "--dataset", "nope").exit_code == 1
    assert cli("audit", "report", "--out", str(tmp_path / "no" / "r.html")).exit_code == 1


def test_report_on_an_empty_workspace(cli, workspace, tmp_path):
    res = cli("audit", "report", "--out", str(tmp_path / "r.html"))
    assert res.exit_code == 0
    assert "none recorded" in (tmp_path / "r.html").read_text()


@pytest.mark.slow  # starts a real headless Chromium
@pytest.mark.skipif(_chromium() is None, reason="Chromium not installed (Debian package `chromium`; `make chromium`)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    from matplotlib.image import imread

    browser = _chromium()
    assert browser is not None
    shot = tmp_path / "report.png"
    url = report.as_uri()
    subprocess.run(
        [
            browser,
            *_flags(tmp_path / "profile-shot"),
            "--hide-scrollbars",
            "--window-size=1280,2400",
            f"--screenshot={shot}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    img = imread(str(shot))[..., :3]
    assert img.shape[0] >= 2000 and img.shape[1] >= 1200
    non_white = (img.mean(axis=2) < 0.92).mean()
    assert non_white > 0.02, f"screenshot looks blank ({non_white:.4f} non-white)"
    assert float(np.std(img)) > 0.05
    dom = subprocess.run(
        [browser, *_flags(tmp_path / "profile-dom"), "--dump-dom", url],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    for sec in SECTIONS:
        assert f'id="{sec}"' in dom
    assert dom.count("<svg") >= 3 and "Compliance report" in dom


def test_trust_model_says_where_the_key_lives() -> None:
    from appliance.report.sections import trust_model

    assert "outside the workspace" in trust_model(True) and "--pubkey" in trust_model(True)
    assert "cannot be read now" in trust_model(True, usable=False)
    assert "re-sign" in trust_model(False) and "APPLIANCE_SIGNING_KEY" in trust_model(False)
