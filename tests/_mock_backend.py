"""A generation engine double, registered through the real provider registry (``appliance.generate.providers``)
the way simonw/llm's conftest registers its mock model: byte-level tokens, canned completions, and a crash on
demand. Orchestration tests (runner, resume, audit) use it instead of the real model; capability tests keep
the real llama.cpp."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from appliance.generate.backend import GenerationBackend
from appliance.generate.isolated import DecoderCrashed
from appliance.generate.jobs import Completion, Job, SamplingParams
from appliance.generate.providers import CrashResponse, Provider, Setup

KIND = "mock"


class MockBackend(GenerationBackend):
    """Text is bytes; the completion of job i is ``text_for(i)``; ``crash_after`` completions, then SIGSEGV."""

    def __init__(self, provider: MockProvider, options: dict[str, Any]) -> None:
        self.provider, self.options, self.closed = provider, options, False

    @property
    def n_embd(self) -> int:
        return 576

    @property
    def n_vocab(self) -> int:
        return 256

    @property
    def bos_token_id(self) -> int | None:
        return None

    def tokenize(self, text: str, *, add_bos: bool, special: bool = False) -> list[int]:
        return list(text.encode("utf-8"))

    def detokenize(self, ids: Sequence[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    def chat_prompt(self, messages: Sequence[tuple[str, str]]) -> str | None:
        return None

    def prompt_logits(
        self, soft_prompt: np.ndarray | None, token_ids: Sequence[int], *, prefix_bos: bool = True
    ) -> np.ndarray:
        return np.zeros((len(token_ids), self.n_vocab), dtype=np.float32)

    def generate(
        self,
        jobs: Sequence[Job],
        params: SamplingParams,
        *,
        batch: int = 8,
        on_step: Callable[[int], None] | None = None,
    ) -> Iterator[Completion]:
        for job in jobs:
            if self.provider.crash_after is not None and self.provider.completed >= self.provider.crash_after:
                raise DecoderCrashed("the mock decoder died of SIGSEGV", "SIGSEGV")
            text = self.provider.text_for(job.index)
            ids = self.tokenize(text, add_bos=False)
            if on_step:
                on_step(len(ids))
            self.provider.completed += 1
            yield Completion(job.index, text, ids, "stop")

    def close(self) -> None:
        self.closed = True


class MockProvider(Provider):
    kind = KIND

    def __init__(self) -> None:
        self.crash_after: int | None = None
        self.completed = 0
        self.builds: list[dict[str, Any]] = []
        self.crashes: list[str] = []

    @staticmethod
    def text_for(index: int) -> str:
        return f"Synthetic support ticket number {index} about a late delivery."

    def setup(self, model_path: Path, model_sha256: str, *, weights: str) -> Setup:
        return Setup(model_path, model_sha256, extra_bufts=False, kernel_selftest="n/a", selftest_event={"mock": 1})

    def build(self, setup: Setup, *, isolate: bool, **options: Any) -> GenerationBackend:
        self.builds.append({"isolate": isolate, **options})
        return MockBackend(self, options)

    def crashed(self, setup: Setup, signal_name: str) -> CrashResponse | None:
        self.crashes.append(signal_name)
        return CrashResponse({"mock": 1, "outcome": f"fallback:generate-{signal_name}"}, "the mock engine changed")
