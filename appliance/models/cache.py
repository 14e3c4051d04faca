"""The machine-level cache: files derived from a pinned model, built once per machine for every workspace.

Root: ``APPLIANCE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/synth-appliance``, else
``~/.cache/synth-appliance``. Derived model files live under ``<root>/models/<model sha256>/`` (the
dequantized torch model in ``torch/``, the F16 GGUF as ``f16.gguf``), keyed by the hash of the verified GGUF
they come from; the llama.cpp self-test verdicts under ``<root>/selftest/``. Directories are created 0700.

What a cached file holds is checked by its owner module against a SHA-256 written when it was built; a file
that does not match is refused or rebuilt, never used. Two processes building the same file at once are
serialised by :func:`build_lock` (an exclusive ``flock`` on a sibling ``.lock`` file, released by the kernel
when its holder dies), and every build writes to a temporary name and renames it into place, so a reader
never sees half a file. The cache is as trusted as the OS account that owns it: whoever can rewrite both a
file and its hash can also rewrite a workspace's database; every run's audit event records the hash of the
weights it actually used.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE_ENV = "APPLIANCE_CACHE_DIR"
_APP = "synth-appliance"


def cache_root() -> Path:
    """``APPLIANCE_CACHE_DIR``, else ``$XDG_CACHE_HOME/synth-appliance``, else ``~/.cache/synth-appliance``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / _APP


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with mode 0700 and return it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def model_dir(model_sha256: str) -> Path:
    """Where the files derived from the model with this hash live: ``<root>/models/<hex>``."""
    return cache_root() / "models" / model_sha256.removeprefix("sha256:")


@contextmanager
def build_lock(target: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``target`` (a file or directory about to be built) while the block runs.

    Waits for another process building the same target; the caller re-checks the target once it holds the
    lock. Leftover temporaries of a build that crashed (``.<name>.tmp-*``) are removed first.
    """
    private_dir(target.parent)
    with open(target.parent / f".{target.name}.lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            for stale in target.parent.glob(f".{target.name}.tmp-*"):
                if stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
                else:
                    stale.unlink(missing_ok=True)
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def temp_name(target: Path) -> Path:
    """A temporary sibling of ``target`` that :func:`build_lock` cleans up if its build crashed."""
    return target.parent / f".{target.name}.tmp-{os.getpid()}"
