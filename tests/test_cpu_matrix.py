"""A tiny `make cpu-matrix`: the probe on the host CPU, and a pre-AVX2 CPU (qemu-user's Nehalem, when
qemu-x86_64 is installed) refused with the appliance's one-line error instead of dying of SIGILL."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.models.registry import get_spec, locate

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
PROBE = REPO / "packaging" / "cpu_matrix_probe.py"


@pytest.fixture
def model() -> Path:
    path = locate(get_spec("smollm2-135m"))
    if path is None:
        pytest.fail("default model missing: run `make models`")
    return path


def test_host_runs_every_case(model: Path) -> None:
    p = subprocess.run(
        [sys.executable, str(PROBE), str(model), str(model), "--tokens", "2"], capture_output=True, text=True
    )
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.splitlines()[-1])
    assert set(out["cases"]) == {"fewshot/native", "softprompt/native", "fewshot/f16", "softprompt/f16"}
    assert all(c["ok"] and c["tokens"] == 4 for c in out["cases"].values())


def test_pre_avx2_cpu_is_refused_cleanly(model: Path) -> None:
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        pytest.skip("qemu-x86_64 not installed (apt-get install qemu-user; `make cpu-matrix` installs it)")
    env = {**os.environ, "PYTHONPATH": site.getsitepackages()[0]}
    python = os.path.realpath(sys.executable)
    p = subprocess.run(
        [qemu, "-cpu", "Nehalem", python, str(PROBE), str(model), str(model)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert p.returncode == 3, (p.returncode, p.stderr[-2000:])
    refused = json.loads(p.stdout.splitlines()[-1])["refused"]
    assert refused.startswith("this CPU lacks avx, avx2, fma, f16c") and "\n" not in refused
