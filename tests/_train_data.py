"""Helpers for the trainer's tests: a dequantized-model cache built once per machine, and small seed files.

Dequantizing the GGUF into torch takes 15–60 s; the trainer caches it per workspace under
``artifacts/cache/<sha256>/``. Tests build that cache once in ``.pytest_cache/appliance-model-cache`` (or
``APPLIANCE_TEST_MODEL_CACHE``) with the trainer's own code and link it into each test workspace.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
from pathlib import Path

from _shared_data import find_shared_data

from appliance.config import Workspace
from appliance.models.registry import verified_path
from appliance.train.lm import _build_cache, cache_dir

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("APPLIANCE_TEST_MODEL_CACHE", REPO / ".pytest_cache" / "appliance-model-cache"))


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def seed_model_cache(home: Path, model: str = "smollm2-135m") -> None:
    """Put the model's dequantized cache into the workspace at ``home`` (built on first use)."""
    _, path, sha = verified_path(model, Workspace(home))
    src = CACHE / sha.removeprefix("sha256:")
    if not (src / "manifest.json").is_file():
        _build_cache(path, sha, src)
    dst = cache_dir(Workspace(home), sha)
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst, copy_function=_link_or_copy)


def banking_csv(path: Path, *, n: int, categories: list[str] | None = None, seed: int = 0) -> Path:
    """A CSV (text, category) of ``n`` BANKING77 training questions, optionally from some categories only."""
    with open(find_shared_data() / "banking77" / "train.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if categories is None or r["category"] in categories]
    random.Random(seed).shuffle(rows)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["text", "category"])
        w.writeheader()
        w.writerows(rows[:n])
    return path
