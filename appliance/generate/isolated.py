"""llama.cpp decoding in a child process, so that a crash in native code cannot take the caller with it.

:class:`IsolatedBackend` is a :class:`GenerationBackend` whose text operations (tokenize, chat template,
sizes) use a vocabulary-only model in this process, and whose decoding (``generate``, ``prompt_logits``) runs
in a worker (:mod:`appliance.generate.worker`) started on first use and kept for the backend's life. Jobs go
to the worker and completions come back as they finish, over a socket pair (pickles between two processes of
this appliance, nothing else). If the worker dies (SIGSEGV in a kernel, SIGKILL by the OOM killer), the
caller gets :class:`DecoderCrashed` — an ordinary exception, so a batch keeps what it stored and stays
resumable — instead of the whole process dying with a bare "Segmentation fault".
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from appliance.child import module_argv
from appliance.errors import ApplianceError
from appliance.generate.backend import GenerationBackend
from appliance.generate.jobs import Completion, Job, SamplingParams

# signals that mean llama.cpp's own code failed (not a kill from outside, such as SIGKILL by the OOM killer)
NATIVE_FAULTS = ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT")


class DecoderCrashed(ApplianceError):
    """Raised when the llama.cpp worker process dies (a native crash, or killed) while decoding."""

    def __init__(self, message: str, signal_name: str = "") -> None:
        super().__init__(message)
        self.signal_name = signal_name

    @property
    def native_fault(self) -> bool:
        return self.signal_name in NATIVE_FAULTS


def _signame(rc: int | None) -> str:
    if rc is None:
        return "no exit status"
    if rc < 0:
        try:
            return signal.Signals(-rc).name
        except ValueError:
            return f"signal {-rc}"
    return f"exit {rc}"


class IsolatedBackend(GenerationBackend):
    """The llama.cpp backend with its decoding in a child process (same options as ``LlamaCppBackend``)."""

    def __init__(self, model_path: Path, *, use_extra_bufts: bool, **options: Any) -> None:
        from appliance.generate.llama import LlamaCppBackend

        self.model_path = Path(model_path)
        self.use_extra_bufts = use_extra_bufts
        self._options = {**options, "use_extra_bufts": use_extra_bufts}
        self._text = LlamaCppBackend(self.model_path, vocab_only=True, use_extra_bufts=False)
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._sizes: dict[str, int] = {}
        try:
            self._start()  # load errors (and load-time crashes) surface here, before any batch exists
        except BaseException:
            self.close()
            raise

    # -- text: in this process --------------------------------------------------------------------
    @property
    def n_embd(self) -> int:  # a vocab-only model has no embedding width: the worker's loaded model tells
        return self._sizes["n_embd"]

    @property
    def n_vocab(self) -> int:
        return self._sizes["n_vocab"]

    @property
    def bos_token_id(self) -> int | None:
        return self._text.bos_token_id

    def tokenize(self, text: str, *, add_bos: bool, special: bool = False) -> list[int]:
        return self._text.tokenize(text, add_bos=add_bos, special=special)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self._text.detokenize(ids)

    def chat_prompt(self, messages: Sequence[tuple[str, str]]) -> str | None:
        return self._text.chat_prompt(messages)

    # -- decoding: in the worker ------------------------------------------------------------------
    def _start(self) -> Connection:
        if self._conn is not None:
            return self._conn
        ours, theirs = socket.socketpair()
        try:
            self._proc = subprocess.Popen(
                module_argv("appliance.generate.worker", str(theirs.fileno())),
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        self._conn.send(("init", str(self.model_path), self._options))
        self._sizes = self._recv()[1]  # ("ready", sizes), or the worker's load error raised here
        return self._conn

    def _recv(self) -> tuple[str, Any]:
        assert self._conn is not None
        try:
            kind, value = self._conn.recv()
        except (EOFError, OSError):
            raise self._crashed() from None
        if kind == "error":
            raise value
        return kind, value

    def _crashed(self) -> DecoderCrashed:
        rc = None
        if self._proc is not None:
            try:
                rc = self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                rc = self._proc.wait()
        self._drop()
        return DecoderCrashed(
            f"llama.cpp stopped ({_signame(rc)}) while decoding with {self.model_path.name}"
            f" (extra buffer types {'on' if self.use_extra_bufts else 'off'})",
            _signame(rc),
        )

    def _drop(self) -> None:
        """Forget the worker (killing it if it still runs): the next call starts a fresh one."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._proc = None

    def prompt_logits(
        self, soft_prompt: np.ndarray | None, token_ids: Sequence[int], *, prefix_bos: bool = True
    ) -> np.ndarray:
        conn = self._start()
        conn.send(("logits", soft_prompt, [int(t) for t in token_ids], prefix_bos))
        logits: np.ndarray = self._recv()[1]
        return logits

    def generate(
        self,
        jobs: Sequence[Job],
        params: SamplingParams,
        *,
        batch: int = 8,
        on_step: Callable[[int], None] | None = None,
    ) -> Iterator[Completion]:
        if not jobs:
            return
        conn = self._start()
        conn.send(("generate", list(jobs), params, batch))
        finished = False
        try:
            while True:
                kind, value = self._recv()
                if kind == "step":
                    if on_step is not None:
                        on_step(value)
                elif kind == "done":
                    yield value
                else:  # "end"
                    finished = True
                    return
        finally:
            if not finished:  # the caller stopped early (Ctrl-C, an error): the worker is mid-batch
                self._drop()

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send(("close", None))
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        self._text.close()

    def __del__(self) -> None:  # a backend dropped without close() must not leave its worker running
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()


def die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this process when its parent dies (a killed CLI leaves no worker)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
