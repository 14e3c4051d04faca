"""Generation engines come from a provider registry (``generation.backend``): the runner asks the policy's
provider for the weights, the kernel choice and the backend, and never names llama.cpp. Orchestration (a batch,
its crash, its resume, its audit) is tested here with a double registered through that registry
(``mock_backend`` in conftest.py); the real engine's own tests are in test_generate_*.py."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from _generate_data import TICKETS, add_dataset, add_prompt
from _mock_backend import MockProvider

from appliance.config import Workspace
from appliance.context import Context
from appliance.errors import EXIT_BAD_INPUT, ConfigError
from appliance.export.service import get_batch
from appliance.generate import providers
from appliance.policy.schema import GenerationPolicy
from appliance.probes.inputs import load_inputs
from appliance.probes.probes import CanaryProbe
from appliance.train import canaries
from appliance.train.canaries import Canary


def _events(home: Path, kind: str) -> list[dict]:
    with sqlite3.connect(str(home / "appliance.db")) as conn:
        rows = conn.execute("SELECT payload FROM events WHERE kind = ? ORDER BY seq", (kind,))
        return [json.loads(r[0]) for r in rows]


def _backend(home: Path, kind: str) -> None:
    doc = yaml.safe_load((home / "policy.yaml").read_text())
    doc["generation"]["backend"] = kind
    (home / "policy.yaml").write_text(yaml.safe_dump(doc))


def test_llama_cpp_is_the_built_in_default() -> None:
    assert GenerationPolicy().backend == "llama.cpp" and providers.DEFAULT_KIND == "llama.cpp"
    assert "llama.cpp" in providers.kinds()
    assert providers.get("llama_cpp") is providers.get("llamacpp") is providers.get("llama.cpp")
    providers.unregister("llama.cpp")  # the built-in provider stays
    assert "llama.cpp" in providers.kinds()


def test_unknown_backend_is_a_configuration_error_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown generation backend 'nope'; known: llama\.cpp") as err:
        providers.get("nope")
    assert err.value.exit_code == EXIT_BAD_INPUT


def test_a_registered_double_is_found_and_removed(mock_backend) -> None:
    assert providers.get("mock") is mock_backend and "mock" in providers.kinds()
    providers.unregister("mock")
    assert "mock" not in providers.kinds()
    providers.register(mock_backend)  # the fixture removes it again


def test_generate_with_an_unknown_backend_stores_nothing(cli: Callable, workspace: Path, mock_backend) -> None:
    add_dataset(workspace, "tickets", TICKETS)
    _backend(workspace, "nope")
    res = cli("generate", "tickets", "--n", "3", "--few-shot", "2")
    assert res.exit_code == EXIT_BAD_INPUT
    assert "unknown generation backend 'nope'; known: llama.cpp, mock" in res.output
    with sqlite3.connect(str(workspace / "appliance.db")) as conn:
        assert conn.execute("SELECT COUNT(*) FROM batches").fetchone()[0] == 0
    assert mock_backend.builds == []


@pytest.mark.slow  # the runner scans every output with the real PII pipeline (Presidio)
def test_the_runner_drives_the_policys_engine_through_a_crash_and_a_resume(
    cli: Callable, workspace: Path, mock_backend
) -> None:
    """The batch decodes with the registered double (in its "child process": isolate=True), a native fault
    after two outputs interrupts it with one line and the provider's changed kernel choice is audited; resume
    produces exactly the three missing outputs on the batch's own engine (the policy names another one by then);
    the events name the engine and its kernel choice."""
    add_dataset(workspace, "tickets", TICKETS)
    _backend(workspace, "mock")
    mock_backend.crash_after = 2
    res = cli("generate", "tickets", "--n", "5", "--few-shot", "2", "--batch", "2", "--seed", "3")
    assert res.exit_code == 1, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "SIGSEGV" in lines[0] and "generate --resume b-" in lines[0], res.stderr
    assert "; the mock engine changed" in lines[0]  # the provider's own words, not llama.cpp's
    assert mock_backend.crashes == ["SIGSEGV"]
    assert mock_backend.builds[0]["isolate"] is True and mock_backend.builds[0]["n_seq_max"] == 2
    with sqlite3.connect(str(workspace / "appliance.db")) as conn:
        bid, status = conn.execute("SELECT id, status FROM batches").fetchone()
    assert status == "interrupted"
    start = _events(workspace, "generate.start")[-1]
    assert (start["backend"], start["kernel_selftest"], start["extra_bufts"]) == ("mock", "n/a", False)
    assert [e.get("outcome") for e in _events(workspace, "generate.selftest")] == [None, "fallback:generate-SIGSEGV"]

    mock_backend.crash_after = None
    _backend(workspace, "nope")  # the batch resumes on its own engine, whatever the policy says now
    res = cli("generate", "--resume", bid, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.splitlines()[-1])["n_new"] == 3
    assert _events(workspace, "generate.resume")[-1]["backend"] == "mock"
    with sqlite3.connect(str(workspace / "appliance.db")) as conn:
        stored = dict(conn.execute("SELECT idx, text FROM outputs WHERE batch_id = ? ORDER BY idx", (bid,)))
    assert sorted(stored) == [0, 1, 2, 3, 4]
    assert all(stored[i] == mock_backend.text_for(i) for i in stored)


class _FlatScorer:
    """Every text equally likely (exposure carries no signal): only the output search can find the canary."""

    def logprobs_many(self, texts, labels, with_prompt=True):
        return [np.array([-1.0, -1.0]) for _ in texts]


@pytest.mark.slow  # the real PII pipeline (Presidio) and a prompt built with the real model's tokenizer
def test_a_canary_the_pii_scan_redacts_is_counted_in_the_raw_output(
    cli: Callable, workspace: Path, mock_backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The canary template ("my account number is …") is the kind of text the PII scan redacts on the way in,
    so an output that reproduced a canary would be stored without its secret. `generate` counts the secrets in
    each raw text before the scan; the canary probe reads that count, PII-dropped outputs included."""
    add_dataset(workspace, "tickets", TICKETS)
    pid = add_prompt(workspace, "tickets")
    secret = "80263571"
    ws = Workspace.resolve(workspace)
    rel, digest = canaries.write(ws, pid, "tickets", [Canary(secret, None, "my account number is {secret}", 8)], 1)
    with sqlite3.connect(str(workspace / "appliance.db")) as conn:
        meta = json.loads(conn.execute("SELECT meta FROM prompts WHERE id = ?", (pid,)).fetchone()[0])
        meta["canaries"] = {"count": 1, "repeats": 1, "digits": 8, "file": rel, "sha256": digest}
        conn.execute("UPDATE prompts SET meta = ? WHERE id = ?", (json.dumps(meta), pid))
    _backend(workspace, "mock")
    leaked = f"Please refund the order, my account number is {secret}."
    monkeypatch.setattr(mock_backend, "text_for", lambda i: leaked if i == 1 else MockProvider.text_for(i))
    res = cli("generate", "tickets", "--n", "3", "--prompt", pid, "--seed", "3")
    assert res.exit_code == 0, res.output
    with sqlite3.connect(str(workspace / "appliance.db")) as conn:
        bid = conn.execute("SELECT id FROM batches").fetchone()[0]
        rows = conn.execute("SELECT idx, text, canary_hits FROM outputs WHERE batch_id = ? ORDER BY idx", (bid,))
        stored = {idx: (text, hits) for idx, text, hits in rows}
    assert all(secret not in text for text, _ in stored.values()), "the scan redacted it before storage"
    assert [stored[i][1] for i in range(3)] == [0, 1, 0]
    ctx = Context.open(ws)
    try:
        inputs = load_inputs(ctx, get_batch(ctx, bid))
        inputs._scorer = _FlatScorer()  # type: ignore[assignment]
        found = CanaryProbe().run(inputs)
    finally:
        ctx.close()
    assert found["output_hits"] == 1 and found["n_outputs_searched"] == 3
    assert found["n_outputs_searched_before_pii_scan"] == 3
