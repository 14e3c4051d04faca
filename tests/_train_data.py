"""Helpers for the trainer's tests: the dequantized-model cache built before a test times anything, and seed files.

Dequantizing the GGUF into torch takes 15–60 s; the trainer caches it once per machine
(:mod:`appliance.models.cache`). The tests' machine cache is ``.pytest_cache/appliance-cache`` (conftest sets
``APPLIANCE_CACHE_DIR``), so it is built once and shared by every test workspace.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

from _shared_data import find_shared_data
from click.testing import Result
from typer.testing import CliRunner

from appliance.cli.main import app
from appliance.config import Workspace
from appliance.models.registry import verified_path
from appliance.train.lm import cache_dir, ensure_cache


def link_or_copy(src: str, dst: str) -> None:
    """Hard-link ``src`` to ``dst`` (a copy across file systems); for ``shutil.copytree(copy_function=...)``."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def seed_model_cache(home: Path, model: str = "smollm2-135m") -> Path:
    """The model's dequantized cache in the machine-level cache (built on first use); ``home`` finds the model."""
    _, path, sha = verified_path(model, Workspace(home))
    ensure_cache(path, sha, cache_dir(sha))
    return cache_dir(sha)


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


def bank_workspace(root: Path, categories: list[str], *, n: int = 30) -> tuple[Path, Callable[..., Result]]:
    """A fresh workspace ``root/home`` (actor ``tester``) with ``n`` BANKING77 questions of ``categories`` imported
    as the labelled dataset ``bank`` and the model's cache seeded; returns the home and a CLI runner for it."""
    home = root / "home"
    runner = CliRunner()

    def cli(*args: str) -> Result:
        return runner.invoke(app, ["--home", str(home), "--actor", "tester", *args], catch_exceptions=False)

    assert cli("init").exit_code == 0
    seed_model_cache(home)
    seeds = banking_csv(root / "s.csv", n=n, categories=categories)
    # labels inside, nothing spent at import: the tests built on this workspace charge only what they train
    res = cli("seeds", "import", str(seeds), "--dataset", "bank", "--label-field", "category", "--labels", "none")
    assert res.exit_code == 0, res.output
    return home, cli
