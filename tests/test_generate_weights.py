"""F16 batch weights: exact dequantized values, byte-identical other tensors, a verified cache, close logits."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader
from gguf.quants import dequantize

from appliance.generate import weights
from appliance.generate.backend import Job, Prefix, SamplingParams
from appliance.generate.llama import LlamaCppBackend
from appliance.generate.weights import batch_weights, slow_tensors
from appliance.models.cache import model_dir
from appliance.models.registry import get_spec, locate, sha256_file, verified_path

pytestmark = pytest.mark.slow

TEXT = "Please update the shipping address on my open order to the new office, and send a receipt"


@pytest.fixture(scope="module")
def native() -> tuple[Path, str]:
    _, path, digest = verified_path("smollm2-135m")
    return path, digest


@pytest.fixture(scope="module")
def f16(native: tuple[Path, str]) -> tuple[Path, str]:
    """In the tests' machine-level cache (conftest), so the F16 file is built once for every test and run."""
    path, digest = batch_weights(*native)
    assert path == model_dir(native[1]) / "f16.gguf"
    return path, digest


def test_q4_1_tensors_become_their_dequantized_values_the_rest_is_copied(
    native: tuple[Path, str], f16: tuple[Path, str]
) -> None:
    src, dst = GGUFReader(str(native[0]), "r"), GGUFReader(str(f16[0]), "r")
    assert f16[1] == "sha256:" + sha256_file(f16[0]) != native[1]
    assert slow_tensors(native[0]) > 0 and slow_tensors(f16[0]) == 0
    out = {t.name: t for t in dst.tensors}
    assert [t.name for t in src.tensors] == list(out)
    q4 = [t.name for t in src.tensors if t.tensor_type.name == "Q4_1"]
    checked = set(q4[:: max(1, len(q4) // 6)])  # values of every 6th converted tensor; types of all
    for t in src.tensors:
        o = out[t.name]
        if t.tensor_type.name == "Q4_1":
            assert o.tensor_type.name == "F16"
            if t.name not in checked:
                continue
            want = dequantize(np.asarray(t.data), t.tensor_type).astype(np.float16)
            np.testing.assert_array_equal(np.asarray(o.data).reshape(want.shape), want)
        else:
            assert o.tensor_type == t.tensor_type
            assert np.asarray(o.data).tobytes() == np.asarray(t.data).tobytes()
    skip = {"GGUF.tensor_count", "GGUF.kv_count"}
    assert {k for k in src.fields if k not in skip} == {k for k in dst.fields if k not in skip}


def test_cache_is_reused_and_a_tampered_file_is_rebuilt(
    native: tuple[Path, str],
    f16: tuple[Path, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, digest = f16
    mtime = path.stat().st_mtime_ns
    assert batch_weights(*native) == (path, digest)
    assert path.stat().st_mtime_ns == mtime
    # a tampered copy in another cache is detected and rebuilt (conversion replaced by a copy of the good file)
    cache = tmp_path / "cache"
    cache.mkdir()
    bad = cache / path.name
    shutil.copyfile(path, bad)
    shutil.copyfile(path.with_suffix(".gguf.sha256"), cache / (path.name + ".sha256"))
    with open(bad, "r+b") as fh:
        fh.seek(bad.stat().st_size - 10)
        fh.write(b"\x00\x01\x02")
    rebuilt: list[Path] = []

    def fake_convert(src: Path, dst: Path) -> None:
        rebuilt.append(src)
        shutil.copyfile(path, dst)

    monkeypatch.setattr(weights, "_convert", fake_convert)
    assert batch_weights(*native, cache) == (bad, digest)
    assert rebuilt == [native[0]] and "sha256:" + sha256_file(bad) == digest


def test_models_without_slow_tensors_are_used_as_they_are(tmp_path: Path) -> None:
    spec = get_spec("gemma3-270m")
    path = locate(spec)
    if path is None:
        pytest.skip("gemma3-270m not fetched")
    digest = "sha256:" + spec.sha256
    assert batch_weights(path, digest, tmp_path) == (path, digest)
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def pair(native: tuple[Path, str], f16: tuple[Path, str]) -> Iterator[tuple[LlamaCppBackend, LlamaCppBackend]]:
    with (
        LlamaCppBackend(native[0], n_ctx=256, n_threads=1) as a,
        LlamaCppBackend(f16[0], n_ctx=256, n_threads=1) as b,
    ):
        yield a, b


def test_f16_logits_track_the_quantized_kernels(pair: tuple[LlamaCppBackend, LlamaCppBackend]) -> None:
    """Same weights, different kernels (8-bit activations vs f32): top-1 agrees, KL stays tiny."""
    a, b = pair
    ids = a.tokenize(TEXT, add_bos=False)
    assert b.tokenize(TEXT, add_bos=False) == ids
    la, lb = a.prompt_logits(None, ids).astype(np.float64), b.prompt_logits(None, ids).astype(np.float64)
    pa = np.exp(la - la.max(-1, keepdims=True))
    pa /= pa.sum(-1, keepdims=True)
    lsa = np.log(pa)
    lsb = lb - lb.max(-1, keepdims=True)
    lsb -= np.log(np.exp(lsb).sum(-1, keepdims=True))
    kl = (pa * (lsa - lsb)).sum(-1)
    # top-1 may differ only where the reference is nearly tied between its two best tokens (kernel rounding
    # decides a near-tie; the portable AVX2 build and an AVX-512 build break different ties)
    top2 = np.sort(pa, axis=-1)[:, -2:]
    differ = la.argmax(-1) != lb.argmax(-1)
    assert differ.mean() <= 0.2 and bool(np.all(top2[differ, 1] - top2[differ, 0] < 0.1)), (differ, top2[differ])
    assert float(kl.mean()) < 0.01 and float(kl.max()) < 0.05


def test_f16_outputs_do_not_depend_on_batch_size(pair: tuple[LlamaCppBackend, LlamaCppBackend]) -> None:
    """GEMM kernels differ from the one-row kernel; the scheduler keeps every step a multi-row micro-batch."""
    _, be = pair
    prefix = Prefix("p", tokens=tuple(be.tokenize("Customer ticket:\n", add_bos=False)))
    params = SamplingParams(max_tokens=16)
    jobs = [Job(i, prefix, seed=40 + i) for i in range(7)]
    runs = {b: {c.index: c.tokens for c in be.generate(jobs, params, batch=b)} for b in (1, 2, 5, 8)}
    assert runs[1] == runs[2] == runs[5] == runs[8]
