"""`appliance generate` / `appliance batches` end to end: real model, real PII pipeline, real SQLite."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from _generate_data import TICKETS, add_dataset, add_prompt

from appliance.models.registry import get_spec, locate

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
FAST = ["--max-tokens", "12", "--seed", "3"]


def _db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(home / "appliance.db"))


def _outputs(home: Path, batch_id: str) -> list[tuple[int, str, str | None, str]]:
    with _db(home) as conn:
        return list(
            conn.execute("SELECT idx, text, label, status FROM outputs WHERE batch_id = ? ORDER BY idx", (batch_id,))
        )


def _events(home: Path, kind: str) -> list[dict]:
    with _db(home) as conn:
        return [
            json.loads(r[0]) for r in conn.execute("SELECT payload FROM events WHERE kind = ? ORDER BY seq", (kind,))
        ]


def _set_generation_policy(home: Path, **values: object) -> None:
    policy = yaml.safe_load((home / "policy.yaml").read_text())
    policy["generation"].update(values)
    (home / "policy.yaml").write_text(yaml.safe_dump(policy))


@pytest.fixture
def ds(workspace: Path) -> Path:
    """A dataset; one thread (robust on a busy CI host) and native weights (no F16 cache build per test)."""
    _set_generation_policy(workspace, threads=1, weights="native")
    add_dataset(workspace, "tickets", TICKETS)
    return workspace


def test_generate_with_prompt_stores_outputs_and_audits(cli: Callable, ds: Path) -> None:
    pid = add_prompt(ds, "tickets")
    res = cli("generate", "tickets", "--n", "6", "--prompt", pid, "--batch", "4", *FAST, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["n_stored"] == 6 and out["n_new"] == 6 and out["status"] == "complete"
    assert out["tokens"] > 0 and out["tokens_per_s"] > 0
    rows = _outputs(ds, out["id"])
    assert [r[0] for r in rows] == list(range(6))
    start, finish = _events(ds, "generate.start")[-1], _events(ds, "generate.finish")[-1]
    for ev in (start, finish):
        assert ev["model_sha256"] == "sha256:" + get_spec("smollm2-135m").sha256
        assert ev["prompt_id"] == pid and ev["prompt_sha256"].startswith("sha256:")
        assert ev["policy_sha256"].startswith("sha256:") and ev["raw_seeds_in_prompt"] is False
    assert finish["n_new"] == 6 and finish["tokens"] == out["tokens"]
    with _db(ds) as conn:
        payloads = " ".join(r[0] for r in conn.execute("SELECT payload FROM events"))
    assert all(text[:20] not in payloads for _, text, _, _ in rows if len(text) >= 20)
    assert all(t[:30] not in payloads for t in TICKETS)


def test_same_seed_same_outputs_batch_1_and_8(cli: Callable, ds: Path) -> None:
    pid = add_prompt(ds, "tickets")
    texts = []
    for batch in ("1", "8", "8"):
        res = cli("generate", "tickets", "--n", "8", "--prompt", pid, "--batch", batch, *FAST, "--json")
        assert res.exit_code == 0, res.output
        texts.append([r[1] for r in _outputs(ds, json.loads(res.stdout)["id"])])
    assert texts[0] == texts[1] == texts[2]
    res = cli("generate", "tickets", "--n", "8", "--prompt", pid, "--max-tokens", "12", "--seed", "4", "--json")
    assert [r[1] for r in _outputs(ds, json.loads(res.stdout)["id"])] != texts[0]


def test_default_prompt_is_newest_exportable_dp_prompt(cli: Callable, ds: Path) -> None:
    res = cli("generate", "tickets", "--n", "2", *FAST)
    assert res.exit_code == 1
    assert "appliance train" in res.stderr and "--few-shot" in res.stderr
    old = add_prompt(ds, "tickets", created_at="2026-01-01T00:00:00.000000Z")
    new = add_prompt(ds, "tickets", created_at="2026-02-01T00:00:00.000000Z")
    add_prompt(ds, "tickets", dp=False, created_at="2026-03-01T00:00:00.000000Z")
    res = cli("generate", "tickets", "--n", "2", *FAST, "--json")
    assert res.exit_code == 0, res.output
    with _db(ds) as conn:
        row = conn.execute("SELECT prompt_id, exportable FROM batches WHERE id = ?", (json.loads(res.stdout)["id"],))
        assert row.fetchone() == (new, 1)
    assert old != new


def test_few_shot_baseline_is_audited_and_policy_gated(cli: Callable, ds: Path) -> None:
    res = cli("generate", "tickets", "--n", "3", "--few-shot", "2", "--batch", "3", *FAST, "--json")
    assert res.exit_code == 0, res.output
    bid = json.loads(res.stdout)["id"]
    assert len(_outputs(ds, bid)) == 3
    ev = _events(ds, "generate.start")[-1]
    assert ev["raw_seeds_in_prompt"] is True and ev["mode"] == "fewshot" and ev["few_shot_k"] == 2
    assert ev["exportable"] is False
    _set_generation_policy(ds, allow_few_shot=False)
    res = cli("generate", "tickets", "--n", "3", "--few-shot", "2", *FAST)
    assert res.exit_code == 3 and "allow_few_shot" in res.stderr


def test_labelled_dataset_spreads_n_across_labels(cli: Callable, workspace: Path) -> None:
    _set_generation_policy(workspace, threads=1, weights="native")
    labels = ["billing" if i % 2 else "bug" for i in range(len(TICKETS))]
    add_dataset(workspace, "lab", TICKETS, labels)
    pid = add_prompt(workspace, "lab", label_template="\nCategory: {label}\nTicket:", labels=["billing", "bug"])
    res = cli("generate", "lab", "--n", "5", "--prompt", pid, *FAST, "--json")
    assert res.exit_code == 0, res.output
    got = [r[2] for r in _outputs(workspace, json.loads(res.stdout)["id"])]
    assert got == ["billing", "billing", "billing", "bug", "bug"]
    res = cli("generate", "lab", "--n", "3", "--prompt", pid, "--label", "bug", *FAST, "--json")
    assert {r[2] for r in _outputs(workspace, json.loads(res.stdout)["id"])} == {"bug"}
    res = cli("generate", "lab", "--n", "3", "--few-shot", "2", *FAST, "--json")
    assert [r[2] for r in _outputs(workspace, json.loads(res.stdout)["id"])] == ["billing", "billing", "bug"]
    res = cli("generate", "lab", "--n", "3", "--prompt", pid, "--label", "nope", *FAST)
    assert res.exit_code == 1 and "nope" in res.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch", "--n", "2", "--few-shot", "2"], "unknown dataset"),
        (["tickets", "--n", "2", "--prompt", "p-missing"], "unknown prompt"),
        (["tickets", "--n", "0", "--few-shot", "2"], "--n must be"),
        (["tickets", "--n", "-4", "--few-shot", "2"], "--n must be"),
        (["tickets", "--n", "2"], "appliance train"),
        (["tickets", "--few-shot", "2"], "usage"),
        (["--resume", "b-nosuch"], "unknown batch"),
    ],
)
def test_bad_input_exits_1(cli: Callable, ds: Path, args: list[str], message: str) -> None:
    res = cli("generate", *args)
    assert res.exit_code == 1, res.output
    assert message in res.stderr
    assert res.stderr.startswith("error: ")  # one line: no blank line from a progress bar that never started


def test_guidance_decodes_the_prior_beside_the_prompt_and_is_recorded(cli: Callable, ds: Path) -> None:
    """A prompt with a recorded prior is guided when asked (--guidance 1; the shipped default 0 is off); a prompt
    without a prior is not guided; the batch params and the audit event say which."""
    guided = add_prompt(ds, "tickets", prior="Write one more example like the ones in this dataset:")
    plain = add_prompt(ds, "tickets")
    got = {}
    runs = [("on", guided, ["--guidance", "1"]), ("off", guided, []), ("none", plain, ["--guidance", "1"])]
    for name, pid, extra in runs:
        res = cli("generate", "tickets", "--n", "3", "--prompt", pid, "--batch", "2", *FAST, *extra, "--json")
        assert res.exit_code == 0, res.output
        bid = json.loads(res.stdout)["id"]
        with _db(ds) as conn:
            params = json.loads(conn.execute("SELECT params FROM batches WHERE id = ?", (bid,)).fetchone()[0])
        got[name] = (params["sampling"]["guidance"], _events(ds, "generate.start")[-1]["sampling"]["guidance"])
        got[name + "_texts"] = [t for _, t, _, _ in _outputs(ds, bid)]
    assert got["on"] == (1.0, 1.0) and got["off"] == (0.0, 0.0) and got["none"] == (0.0, 0.0)
    assert got["on_texts"] != got["off_texts"]  # same seed: guidance changed what was written
    bad = cli("generate", "tickets", "--n", "2", "--prompt", guided, "--guidance", "11")
    assert bad.exit_code == 1 and "--guidance must be" in bad.stderr


def test_label_contrast_decodes_the_other_labels_beside_each_output_and_is_recorded(
    cli: Callable, workspace: Path
) -> None:
    """--contrast labels guides a labelled prompt against its other label (recorded in the batch params
    and the audit event, and it changes what is written); an unlabelled prompt refuses it when asked, and falls
    back to the prior when the policy asks; a bad value exits 1."""
    _set_generation_policy(workspace, threads=1, weights="native")
    labels = ["billing" if i % 2 else "bug" for i in range(len(TICKETS))]
    add_dataset(workspace, "lab", TICKETS, labels)
    prior = "Write one more example like the ones in this dataset:"
    pid = add_prompt(
        workspace, "lab", label_template="\nCategory: {label}\nTicket:", labels=["billing", "bug"], prior=prior
    )
    got = {}
    for contrast in ("prior", "labels"):
        args = ["--n", "4", "--prompt", pid, "--batch", "2", "--guidance", "1", "--contrast", contrast]
        res = cli("generate", "lab", *args, *FAST, "--json")
        assert res.exit_code == 0, res.output
        bid = json.loads(res.stdout)["id"]
        with _db(workspace) as conn:
            params = json.loads(conn.execute("SELECT params FROM batches WHERE id = ?", (bid,)).fetchone()[0])
        assert params["sampling"]["contrast"] == contrast
        assert _events(workspace, "generate.start")[-1]["sampling"]["contrast"] == contrast
        got[contrast] = [t for _, t, _, _ in _outputs(workspace, bid)]
    assert got["prior"] != got["labels"]  # same seed: what guidance contrasts with changed what was written
    # a prompt with no recorded prior: guided against another label, but not against the prior
    noprior = add_prompt(workspace, "lab", label_template="\nCategory: {label}\nTicket:", labels=["billing", "bug"])
    for contrast, expect in (("labels", (1.0, "labels")), ("prior", (0.0, "prior"))):
        args = ["--n", "2", "--prompt", noprior, "--guidance", "1", "--contrast", contrast]
        res = cli("generate", "lab", *args, *FAST, "--json")
        assert res.exit_code == 0, res.output
        with _db(workspace) as conn:
            bid = json.loads(res.stdout)["id"]
            sampling = json.loads(conn.execute("SELECT params FROM batches WHERE id = ?", (bid,)).fetchone()[0])[
                "sampling"
            ]
        assert (sampling["guidance"], sampling["contrast"]) == expect
    bad = cli("generate", "lab", "--n", "2", "--prompt", pid, "--guidance", "1", "--contrast", "others")
    assert bad.exit_code == 1 and "--contrast must be" in bad.stderr
    add_dataset(workspace, "plain", TICKETS)
    unlabelled = add_prompt(workspace, "plain", prior=prior)
    bad = cli("generate", "plain", "--n", "2", "--prompt", unlabelled, "--guidance", "1", "--contrast", "labels")
    assert bad.exit_code == 1 and "two or more labels" in bad.stderr
    _set_generation_policy(workspace, guidance_contrast="labels")
    res = cli("generate", "plain", "--n", "2", "--prompt", unlabelled, "--guidance", "1", *FAST, "--json")
    assert res.exit_code == 0, res.output
    with _db(workspace) as conn:
        bid = json.loads(res.stdout)["id"]
        params = json.loads(conn.execute("SELECT params FROM batches WHERE id = ?", (bid,)).fetchone()[0])
    assert params["sampling"]["contrast"] == "prior"


def test_a_prompt_trained_with_an_end_text_stops_at_it(cli: Callable, ds: Path) -> None:
    """training.end_text ends each training record with that text; generation adds it to the stop strings (the
    batch's params record it), so no output runs past where the prompt learned to end a record."""
    pid = add_prompt(ds, "tickets", end_text="\n")
    res = cli("generate", "tickets", "--n", "4", "--prompt", pid, "--batch", "2", *FAST, "--json")
    assert res.exit_code == 0, res.output
    bid = json.loads(res.stdout)["id"]
    with _db(ds) as conn:
        params = json.loads(conn.execute("SELECT params FROM batches WHERE id = ?", (bid,)).fetchone()[0])
    assert "\n" in params["sampling"]["stop"]
    assert all("\n" not in t for _, t, _, _ in _outputs(ds, bid))
    plain = add_prompt(ds, "tickets")
    res = cli("generate", "tickets", "--n", "2", "--prompt", plain, *FAST, "--json")
    with _db(ds) as conn:
        row = conn.execute("SELECT params FROM batches WHERE id = ?", (json.loads(res.stdout)["id"],)).fetchone()
    assert "\n" not in json.loads(row[0])["sampling"]["stop"]  # the shipped policy's stop is "\n\n" only


def test_wrong_width_prompt_exits_1_before_creating_a_batch(cli: Callable, ds: Path) -> None:
    pid = add_prompt(ds, "tickets", width=500)
    res = cli("generate", "tickets", "--n", "2", "--prompt", pid, *FAST)
    assert res.exit_code == 1 and "(k, 576)" in res.stderr
    with _db(ds) as conn:
        assert conn.execute("SELECT COUNT(*) FROM batches").fetchone()[0] == 0


def test_prompt_for_another_model_exits_1(cli: Callable, ds: Path) -> None:
    if locate(get_spec("gemma3-270m")) is None:
        pytest.skip("gemma3-270m not fetched")
    pid = add_prompt(ds, "tickets")
    res = cli("generate", "tickets", "--n", "2", "--prompt", pid, "--model", "gemma3-270m", *FAST)
    assert res.exit_code == 1 and "smollm2-135m" in res.stderr and "gemma3-270m" in res.stderr


def test_tampered_prompt_artifact_exits_4(cli: Callable, ds: Path) -> None:
    pid = add_prompt(ds, "tickets")
    art = next((ds / "artifacts" / "prompts").glob(f"{pid}.safetensors"))
    data = bytearray(art.read_bytes())
    data[-1] ^= 0xFF
    art.write_bytes(bytes(data))
    res = cli("generate", "tickets", "--n", "2", "--prompt", pid, *FAST)
    assert res.exit_code == 4 and "sha256" in res.stderr


def test_corrupted_model_exits_4(cli: Callable, ds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    models.mkdir()
    spec = get_spec("smollm2-135m")
    copy = models / spec.file
    shutil.copyfile(REPO / "models" / spec.file, copy)
    with open(copy, "r+b") as fh:
        fh.seek(1_000_000)
        byte = fh.read(1)
        fh.seek(1_000_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setenv("APPLIANCE_MODELS_DIR", str(models))
    res = cli("generate", "tickets", "--n", "2", "--few-shot", "2", *FAST)
    assert res.exit_code == 4 and "smollm2-135m" in res.stderr


def test_batches_list_and_show(cli: Callable, ds: Path) -> None:
    pid = add_prompt(ds, "tickets")
    bid = cli("generate", "tickets", "--n", "3", "--prompt", pid, *FAST).stdout.strip()
    assert bid.startswith("b-")
    res = cli("batches", "list")
    assert res.exit_code == 0 and bid in res.stdout and "complete" in res.stdout
    listed = json.loads(cli("batches", "list", "--json").stdout)["batches"]
    assert listed[0]["id"] == bid and listed[0]["n_outputs"] == 3
    shown = json.loads(cli("batches", "show", bid, "--limit", "2", "--json").stdout)
    assert shown["batch"]["n_outputs"] == 3 and [o["idx"] for o in shown["outputs"]] == [0, 1]
    res = cli("batches", "show", bid)
    assert res.exit_code == 0 and pid in res.stdout
    assert cli("batches", "show", "b-nosuch").exit_code == 1
    res = cli("generate", "--resume", bid, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["n_new"] == 0
    assert cli("generate", "tickets", "--resume", bid).exit_code == 1


def test_resume_after_kill_9_completes_without_duplicates_or_losses(cli: Callable, ds: Path) -> None:
    pid = add_prompt(ds, "tickets")
    n = 12
    args = ["generate", "tickets", "--n", str(n), "--prompt", pid, "--batch", "2", "--max-tokens", "24", "--seed", "11"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli.main", *args],
        env=dict(os.environ),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        stored = 0
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            try:
                with _db(ds) as conn:
                    stored = conn.execute("SELECT COUNT(*) FROM outputs").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if stored >= 2:
                break
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    with _db(ds) as conn:
        bid, status = conn.execute("SELECT id, status FROM batches").fetchone()
        before = conn.execute("SELECT COUNT(*) FROM outputs").fetchone()[0]
    assert status == "running" and 2 <= before < n
    res = cli("generate", "--resume", bid, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["status"] == "complete" and out["n_stored"] == n and out["n_new"] == n - before
    rows = _outputs(ds, bid)
    assert [r[0] for r in rows] == list(range(n))
    fresh = json.loads(cli(*args[:-2], "--seed", "11", "--json").stdout)
    assert [r[1] for r in _outputs(ds, fresh["id"])] == [r[1] for r in rows]
    assert _events(ds, "generate.resume")[-1]["n_missing"] == n - before


def test_f16_weights_are_audited_and_generate(cli: Callable, ds: Path) -> None:
    _set_generation_policy(ds, weights="f16")
    pid = add_prompt(ds, "tickets")
    res = cli("generate", "tickets", "--n", "4", "--prompt", pid, *FAST, "--json")
    assert res.exit_code == 0, res.output
    assert len(_outputs(ds, json.loads(res.stdout)["id"])) == 4
    ev = _events(ds, "generate.finish")[-1]
    assert ev["weights"] == "f16" and ev["weights_sha256"].startswith("sha256:")
    assert ev["weights_sha256"] != ev["model_sha256"]


def test_gemma_soft_prompt_end_to_end(cli: Callable, ds: Path) -> None:
    if locate(get_spec("gemma3-270m")) is None:
        pytest.skip("gemma3-270m not fetched")
    pid = add_prompt(ds, "tickets", model="gemma3-270m")
    res = cli("generate", "tickets", "--n", "2", "--prompt", pid, "--batch", "2", *FAST, "--json")
    assert res.exit_code == 0, res.output
    with _db(ds) as conn:
        row = conn.execute("SELECT model_name FROM batches WHERE id = ?", (json.loads(res.stdout)["id"],)).fetchone()
    assert row == ("gemma3-270m",)
    assert len(_outputs(ds, json.loads(res.stdout)["id"])) == 2


def test_sigterm_interrupts_cleanly_and_resume_finishes(
    cli: Callable, ds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from appliance.cli import generate as gen_cli

    pid = add_prompt(ds, "tickets")
    original = gen_cli._Bar.record
    seen = []

    def record_then_terminate(self: object) -> None:
        original(self)  # type: ignore[arg-type]
        seen.append(1)
        if len(seen) == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(gen_cli._Bar, "record", record_then_terminate)
    res = cli("generate", "tickets", "--n", "6", "--prompt", pid, "--batch", "2", *FAST)
    assert res.exit_code == 130 and "--resume" in res.stderr
    with _db(ds) as conn:
        bid, status = conn.execute("SELECT id, status FROM batches").fetchone()
    assert status == "interrupted" and len(_outputs(ds, bid)) == 2
    ev = _events(ds, "generate.interrupted")[-1]
    assert ev["n_stored"] == 2 and ev["batch_id"] == bid
    monkeypatch.setattr(gen_cli._Bar, "record", original)
    res = cli("generate", "--resume", bid, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["n_new"] == 4
    assert [r[0] for r in _outputs(ds, bid)] == list(range(6))
