"""What this process may use of the CPU: how many cores are idle now, and which instruction sets it has.

How many cores: the cores not already busy (threads runnable right now), at least one.

Compute threads that meet at a barrier (ggml's graph nodes, torch's OpenMP regions) lose whole scheduler
slices when another process holds one of their cores: on a loaded 2-core host two torch threads made DP
training steps 3–5× slower than their CPU time alone suggests. Every stage sizes its thread or worker count
with :func:`idle_cores`.
"""

from __future__ import annotations

import os
import statistics
import time
from functools import cache
from pathlib import Path

# numpy's CPU feature names -> the names /proc/cpuinfo uses (lower case)
_NUMPY_FLAGS = {"SSE41": "sse4_1", "SSE42": "sse4_2", "FMA3": "fma", "AVX512F": "avx512f"}


def cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def busy_cores(*, samples: int = 5, interval_s: float = 0.04, stat: str = "/proc/stat") -> float:
    """Threads other than the caller that are runnable right now: the median over ``samples`` reads of the
    kernel's run queue (``procs_running`` in /proc/stat, which counts the reading thread itself), taken
    ``interval_s`` apart. The 1-minute load average where /proc/stat cannot be read.

    The run queue, not the load average: a stage that starts just after a busy one (the probes after training,
    in the demo) would read the finished stage's load for about a minute and use half the cores it has.
    """
    reads: list[int] = []
    for i in range(samples):
        try:
            with open(stat, encoding="ascii") as fh:
                running = next(int(line.split()[1]) for line in fh if line.startswith("procs_running"))
        except (OSError, StopIteration, ValueError, IndexError):
            break
        reads.append(max(0, running - 1))
        if i + 1 < samples:
            time.sleep(interval_s)
    if reads:
        return float(statistics.median(reads))
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def idle_cores(*, own_load: float = 0.0) -> int:
    """Cores minus the threads already runnable (:func:`busy_cores`; ``own_load``: this process's own share of
    them, added back), rounded, between 1 and :func:`cores`."""
    n = cores()
    idle = n - busy_cores() + own_load
    return max(1, min(n, int(idle + 0.5)))


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's instruction-set flags, lower case.

    numpy's own CPUID probe first (it sees the CPU this process runs on, also under an emulator, where
    /proc/cpuinfo still describes the host), then /proc/cpuinfo for the flags numpy does not probe (bmi2, amx).
    """
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as feats  # type: ignore[no-redef]
    probed = {_NUMPY_FLAGS.get(k, k.lower()): bool(on) for k, on in feats.items()}
    flags = {f for f, on in probed.items() if on}
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("flags"):
                flags |= {f for f in line.split(":", 1)[1].split() if f not in probed}
                break
    except OSError:
        pass
    return frozenset(flags)
