"""How many cores this process may use now: the cores not already busy (1-minute load average), at least one.

Compute threads that meet at a barrier (ggml's graph nodes, torch's OpenMP regions) lose whole scheduler
slices when another process holds one of their cores: on a loaded 2-core host two torch threads made DP
training steps 3–5× slower than their CPU time alone suggests. Every stage sizes its thread or worker count
with :func:`idle_cores`.
"""

from __future__ import annotations

import os


def cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def idle_cores(*, own_load: float = 0.0) -> int:
    """Cores minus the 1-minute load average (``own_load``: this process's share of that load, added back),
    rounded, between 1 and :func:`cores`."""
    n = cores()
    try:
        idle = n - os.getloadavg()[0] + own_load
    except OSError:
        return n
    return max(1, min(n, int(idle + 0.5)))
