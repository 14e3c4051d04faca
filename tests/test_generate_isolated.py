"""The worker-process backend: same completions and logits as in-process decoding, errors come back as the
same exceptions, and the worker never outlives the process that started it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from appliance.errors import BadInput
from appliance.generate.backend import Job, Prefix, SamplingParams
from appliance.generate.embeddings import token_embeddings
from appliance.generate.isolated import IsolatedBackend
from appliance.generate.llama import LlamaCppBackend
from appliance.models.registry import get_spec, locate

pytestmark = pytest.mark.slow
OPTS = {"n_ctx": 256, "n_seq_max": 2, "n_threads": 1, "use_extra_bufts": True}


@pytest.fixture(scope="module")
def model() -> Path:
    path = locate(get_spec("smollm2-135m"))
    if path is None:
        pytest.fail("default model missing: run `make models`")
    return path


def test_worker_decodes_exactly_like_in_process(model: Path) -> None:
    with LlamaCppBackend(model, **OPTS) as local, IsolatedBackend(model, **OPTS) as iso:
        assert (iso.n_embd, iso.n_vocab, iso.bos_token_id) == (local.n_embd, local.n_vocab, local.bos_token_id)
        ids = iso.tokenize("My card was declined", add_bos=False)
        assert ids == local.tokenize("My card was declined", add_bos=False)
        assert iso.chat_prompt([("user", "hi")]) == local.chat_prompt([("user", "hi")])
        soft = token_embeddings(model, ids)
        assert np.array_equal(iso.prompt_logits(soft, ids[:2]), local.prompt_logits(soft, ids[:2]))
        prefix = Prefix(key="p", tokens=tuple(ids[-2:]), soft_prompt=soft)
        jobs = [Job(i, prefix, seed=100 + i) for i in range(3)]
        params = SamplingParams(max_tokens=8)
        steps: list[int] = []
        got = {c.index: c.tokens for c in iso.generate(jobs, params, batch=2, on_step=steps.append)}
        want = {c.index: c.tokens for c in local.generate(jobs, params, batch=2)}
        assert got == want and sum(steps) == sum(len(t) for t in got.values())
        with pytest.raises(BadInput, match="--batch 9"):
            list(iso.generate(jobs, params, batch=9))
        assert len(list(iso.generate(jobs[:1], params, batch=1))) == 1  # the worker survives a forwarded error


def test_worker_ignores_modules_in_the_working_directory(model: Path, tmp_path: Path, monkeypatch) -> None:
    # a session once ran the demo from a folder holding its own copy.py; `python -m` put that folder first on the
    # worker's sys.path, the standard library's copy was shadowed, and generation failed before loading the model
    (tmp_path / "copy.py").write_text("raise SystemExit('the working directory shadowed the standard library')\n")
    monkeypatch.chdir(tmp_path)
    with IsolatedBackend(model, **OPTS) as iso:
        assert iso.n_vocab > 0 and iso.tokenize("My card", add_bos=False)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state  # a zombie waiting for its new parent to reap it has already exited


def test_worker_dies_with_its_parent(model: Path) -> None:
    code = (
        "import os, sys\n"
        "from appliance.generate.isolated import IsolatedBackend\n"
        "b = IsolatedBackend(sys.argv[1], n_ctx=128, n_seq_max=1, n_threads=1, use_extra_bufts=True)\n"
        "print(b._proc.pid, flush=True)\n"
        f"os.kill(os.getpid(), {int(signal.SIGKILL)})\n"
    )
    p = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, timeout=300)
    assert p.returncode == -signal.SIGKILL
    worker = int(p.stdout.split()[0])
    deadline = time.monotonic() + 10
    while not _gone(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(worker), f"worker {worker} outlived its parent"
