"""Can llama.cpp's CPU kernels run this model on this CPU? A one-time self-test in a child process.

llama.cpp puts weights in *extra buffer types* (CPU repack, AMX) when the CPU has kernels for them; on some
CPU/model pairs those kernels have crashed the process (SIGSEGV on an AMX server with a Q4_1 model). A crash
cannot be caught in-process, so the test decodes a few tokens in a child: first with extra buffer types, and,
if that child dies, again without them. The verdict is cached per (model sha256, CPU features, llama.cpp
version, build) in a machine-level cache directory, so it runs once per machine and model. A child killed by
SIGILL means the CPU lacks an instruction set the llama.cpp build requires (its baseline is set in
``packaging/llama-cpp.env``): that is a one-line error naming the missing flags, never a crash.

This module does not import ``llama_cpp`` in the calling process (the import itself may execute AVX2 code);
only the child does, through :mod:`appliance.generate.llama`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TypedDict

from appliance.child import module_argv
from appliance.cpu import cpu_flags
from appliance.errors import ConfigError

CACHE_ENV = "APPLIANCE_CACHE_DIR"  # read by appliance.models.cache
FORCE_ENV = "APPLIANCE_EXTRA_BUFTS"  # "0" / "1": skip the test and use this setting (recorded as forced)
CRASH_ENV = "APPLIANCE_SELFTEST_SIMULATE"  # tests only: "segv" (with extra buffer types) or "sigill"
TIMEOUT_S = 600.0  # an emulated CPU (qemu) decodes slowly
VERSION = 1
# The x86-64-v3 floor of the portable build (packaging/llama-cpp.env); checked by name when a child dies of SIGILL.
BASELINE = ("sse3", "ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "bmi2")
# llama_print_system_info() names -> CPU flag names (as /proc/cpuinfo and numpy spell them, lower case)
_SYSINFO_FLAGS = {
    "SSE3": "sse3",
    "SSSE3": "ssse3",
    "AVX": "avx",
    "AVX2": "avx2",
    "F16C": "f16c",
    "FMA": "fma",
    "BMI2": "bmi2",
    "AVX_VNNI": "avx_vnni",
    "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16",
    "AMX_INT8": "amx_int8",
}


class CpuUnsupported(ConfigError):
    """Raised when the CPU lacks an instruction set the installed llama.cpp build was compiled for (SIGILL)."""


class BackendUnusable(ConfigError):
    """Raised when llama.cpp crashes on this model and CPU even with extra buffer types off."""


@dataclass(frozen=True)
class Verdict:
    """Whether extra buffer types are safe for a model on this machine, and how that was decided."""

    extra_bufts: bool
    outcome: str  # ok | fallback:<signal> | forced
    key: str
    model_sha256: str
    cpu_flags_sha256: str
    llama_cpp_version: str
    build_sha256: str
    system_info: str
    checked_at: str
    seconds: float
    cached: bool = False

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def build_features(self) -> list[str]:
        """The llama.cpp build's enabled CPU features (``AVX2``, ``REPACK`` ...) from its system info."""
        return sorted(set(re.findall(r"(\w+) = 1\b", self.system_info)))

    def audit(self) -> dict[str, object]:
        """The verdict as an audit payload (no free text)."""
        d = {k: v for k, v in self.as_dict().items() if k != "system_info"}
        return {**d, "build_features": self.build_features}


class _Identity(TypedDict):
    """The fields of a :class:`Verdict` that say which model, machine and build it is for."""

    key: str
    model_sha256: str
    cpu_flags_sha256: str
    llama_cpp_version: str
    build_sha256: str


# -- what the key is made of ----------------------------------------------------------------------------
def missing_flags(required: tuple[str, ...] = BASELINE) -> list[str]:
    have = cpu_flags()
    return [f for f in required if f not in have]


@cache
def llama_cpp_version() -> str:
    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        return "not installed"


@cache
def build_sha256() -> str:
    """Hash of llama-cpp-python's native libraries: a rebuild with other flags is another build."""
    try:
        files = [
            f for f in metadata.files("llama_cpp_python") or [] if ".so" in f.name or f.suffix in (".dll", ".dylib")
        ]
    except metadata.PackageNotFoundError:
        return "none"
    h = hashlib.sha256()
    for f in sorted(files, key=str):
        p = Path(str(f.locate()))
        if p.is_file():
            h.update(str(f).encode() + b"\0")
            with open(p, "rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
    return "sha256:" + h.hexdigest()


_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    st = path.stat()
    memo = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if memo not in _SHA_MEMO:
        from appliance.models.registry import sha256_file

        _SHA_MEMO[memo] = "sha256:" + sha256_file(path)
    return _SHA_MEMO[memo]


def cache_root() -> Path:
    """Machine-level: ``<cache>/selftest`` (:func:`appliance.models.cache.cache_root`)."""
    from appliance.models.cache import cache_root as machine_cache

    return machine_cache() / "selftest"


def _key(model_sha: str, flags_sha: str) -> str:
    raw = json.dumps([VERSION, model_sha, flags_sha, llama_cpp_version(), build_sha256()])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


# -- the test --------------------------------------------------------------------------------------------
def _child(model: Path, extra_bufts: bool) -> tuple[int, str]:
    """Run the decode test in a child; (returncode, stdout). A negative code is the signal that killed it."""
    cmd = module_argv("appliance.generate.selftest", str(model), "--extra-bufts", str(int(extra_bufts)))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        return -int(signal.SIGKILL), ""
    return p.returncode, p.stdout


def _signame(rc: int) -> str:
    if rc < 0:
        try:
            return signal.Signals(-rc).name
        except ValueError:
            return f"signal {-rc}"
    return f"exit {rc}"


def _sigill_error(model: Path) -> CpuUnsupported:
    gone = missing_flags()
    what = ", ".join(gone) if gone else "an instruction set it was compiled for"
    return CpuUnsupported(
        f"this CPU lacks {what}, which the installed llama.cpp build requires (x86-64-v3 baseline: AVX2, FMA, F16C,"
        f" BMI2; packaging/llama-cpp.env) — run on a Haswell (2013) or newer x86-64 CPU, or rebuild the wheel with"
        f" a lower baseline in packaging/llama-cpp.env (`make llama-wheel`); model {model.name} was not loaded"
    )


def check_cpu(model: Path) -> None:
    """Raise :class:`CpuUnsupported` if this CPU lacks a flag of the build's baseline (before llama.cpp loads)."""
    if missing_flags():
        raise _sigill_error(Path(model))


def _store(verdict: Verdict) -> None:
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".selftest.", dir=root)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(verdict.as_dict(), fh, sort_keys=True)
        os.replace(tmp, root / f"{verdict.key}.json")
    except OSError:
        pass  # an unwritable cache only means the test runs again next time


def _load(key: str) -> Verdict | None:
    try:
        doc = json.loads((cache_root() / f"{key}.json").read_text(encoding="utf-8"))
        doc["cached"] = True
        v = Verdict(**doc)
    except (OSError, ValueError, TypeError):
        return None
    return v if v.key == key else None


def lookup(model: Path, model_sha256: str | None = None) -> Verdict | None:
    """The cached verdict for ``model`` on this machine, without running anything (None if never tested)."""
    sha = model_sha256 if model_sha256 and model_sha256.startswith("sha256:") else file_sha256(model)
    return _load(_key(sha, _flags_sha()))


def _flags_sha() -> str:
    return "sha256:" + hashlib.sha256(" ".join(sorted(cpu_flags())).encode()).hexdigest()


_MEMO: dict[str, Verdict] = {}


def extra_bufts_safe(model: Path, model_sha256: str | None = None) -> Verdict:
    """Decide (once per machine and model, cached) whether llama.cpp may use extra buffer types for ``model``.

    Raises :class:`CpuUnsupported` (SIGILL: the CPU is below the build's baseline) or :class:`BackendUnusable`.
    """
    model = Path(model)
    sha = model_sha256 if model_sha256 and model_sha256.startswith("sha256:") else file_sha256(model)
    flags_sha = _flags_sha()
    key = _key(sha, flags_sha)
    base: _Identity = {
        "key": key,
        "model_sha256": sha,
        "cpu_flags_sha256": flags_sha,
        "llama_cpp_version": llama_cpp_version(),
        "build_sha256": build_sha256(),
    }
    forced = os.environ.get(FORCE_ENV)
    if forced in ("0", "1"):
        return Verdict(forced == "1", "forced", system_info="", checked_at=_now(), seconds=0.0, **base)
    if key in _MEMO:
        return _MEMO[key]
    hit = _load(key)
    if hit is not None:
        _MEMO[key] = hit
        return hit
    check_cpu(model)  # below the baseline: no child needed to know it would die
    t0 = time.perf_counter()
    rc, out = _child(model, True)
    if rc == 0:
        verdict = Verdict(True, "ok", system_info=_info(out), checked_at=_now(), seconds=0.0, **base)
    elif rc == -signal.SIGILL:
        raise _sigill_error(model)
    else:
        first = _signame(rc)
        rc2, out2 = _child(model, False)
        if rc2 == -signal.SIGILL:
            raise _sigill_error(model)
        if rc2 != 0:
            raise BackendUnusable(
                f"llama.cpp fails on this CPU with model {model.name} ({first} with extra buffer types,"
                f" {_signame(rc2)} without) — try another model (`appliance models list`) or report the CPU model"
            )
        verdict = Verdict(False, f"fallback:{first}", system_info=_info(out2), checked_at=_now(), seconds=0.0, **base)
    verdict = replace(verdict, seconds=round(time.perf_counter() - t0, 3))
    _store(verdict)
    _MEMO[key] = replace(verdict, cached=True)
    return verdict


def record_crash(verdict: Verdict, signal_name: str) -> Verdict:
    """llama.cpp crashed in real use with extra buffer types on: cache "off" for this model and machine.

    The self-test's few tokens passed, but a longer run found a kernel fault; the next run (the batch's
    ``--resume``) then decodes without extra buffer types.
    """
    demoted = replace(verdict, extra_bufts=False, outcome=f"fallback:generate-{signal_name}", cached=False)
    demoted = replace(demoted, checked_at=_now())
    _store(demoted)
    _MEMO[demoted.key] = replace(demoted, cached=True)
    return demoted


def _info(out: str) -> str:
    try:
        return str(json.loads(out.strip().splitlines()[-1]).get("system_info", ""))
    except (ValueError, IndexError, AttributeError):
        return ""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# -- the child -------------------------------------------------------------------------------------------
def _decode_test(model: Path, extra_bufts: bool) -> dict[str, object]:
    """Everything generation does, a few tokens each: token prefill, raw-embedding prefill, batched steps."""
    import numpy as np

    from appliance.generate.jobs import Job, Prefix, SamplingParams
    from appliance.generate.llama import LlamaCppBackend, library_version, system_info

    simulate = os.environ.get(CRASH_ENV, "")
    if simulate == "sigill" or (simulate == "segv" and extra_bufts):
        os.kill(os.getpid(), signal.SIGILL if simulate == "sigill" else signal.SIGSEGV)
    with LlamaCppBackend(model, n_ctx=128, n_seq_max=2, n_threads=1, use_extra_bufts=extra_bufts) as be:
        ids = be.tokenize("The capital of France is", add_bos=False)
        logits = be.prompt_logits(None, ids)
        rng = np.random.default_rng(0)
        soft = (rng.standard_normal((2, be.n_embd)) * 0.02).astype(np.float32)
        params = SamplingParams(temperature=0.0, max_tokens=3, ignore_eos=True)
        jobs = [
            Job(0, Prefix(key="t", tokens=tuple(ids)), 1),
            Job(1, Prefix(key="s", tokens=tuple(ids[:2]), soft_prompt=soft), 2),
        ]
        done = list(be.generate(jobs, params, batch=2))
    return {
        "ok": bool(np.isfinite(logits).all()) and len(done) == 2,
        "extra_bufts": extra_bufts,
        "system_info": system_info(),
        "llama_cpp_version": library_version(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="llama.cpp decode self-test (run by the appliance in a child process)")
    ap.add_argument("model", type=Path)
    ap.add_argument("--extra-bufts", type=int, choices=(0, 1), default=1)
    args = ap.parse_args(argv)
    res = _decode_test(args.model, bool(args.extra_bufts))
    sys.stdout.write(json.dumps(res, sort_keys=True) + "\n")
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
