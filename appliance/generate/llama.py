"""llama.cpp (llama-cpp-python, low-level API) behind :class:`GenerationBackend` — the only ``llama_cpp`` import.

Soft prompts go in through a batch with an embedding buffer (``llama_batch_init(n, n_embd, 1)``), the way
multimodal projectors feed image embeddings. Rows are raw input embeddings in HF ``inputs_embeds`` space:
llama.cpp scales Gemma's *token* embeddings by sqrt(n_embd) but not embeddings given in a batch, which is
exactly the HF convention, so arrays go in unchanged for every architecture.

Every native object (model, contexts, batches) is owned by an ``ExitStack`` and freed by ``close()`` in
reverse order of creation; nothing waits for the garbage collector.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import llama_cpp
import numpy as np

from appliance.cpu import idle_cores
from appliance.errors import BadInput, ConfigError
from appliance.generate.backend import GenerationBackend
from appliance.generate.engine import Scheduler, prefix_length
from appliance.generate.jobs import Completion, Job, Prefix, SamplingParams

log = logging.getLogger("appliance.llama")
_CTX_ALIGN = 256


def _log_errors(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    if level == 4:  # GGML_LOG_LEVEL_ERROR (ggml.h: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5)
        log.error("llama.cpp: %s", text.decode("utf-8", "replace").rstrip())


_log_errors_only = llama_cpp.llama_log_callback(_log_errors)  # the C callback: kept alive by this module
llama_cpp.llama_log_set(_log_errors_only, ctypes.c_void_p(0))
llama_cpp.llama_backend_init()


def system_info() -> str:
    """llama.cpp's compiled CPU features, e.g. ``CPU : SSE3 = 1 | AVX2 = 1 | ... | REPACK = 1 |``."""
    info: bytes = llama_cpp.llama_print_system_info()
    return info.decode("utf-8", "replace").strip()


def library_version() -> str:
    return str(getattr(llama_cpp, "__version__", "unknown"))


def default_threads() -> int:
    """Threads for ``n_threads=0``: the cores not already busy (1-minute load), at least one.

    ggml's threads meet at a barrier after every graph node; when another process holds a core, a thread
    waiting there loses whole scheduler slices (measured: 2 threads on a loaded 2-core host, 0.6-3.5 s per
    decode step instead of ~0.1-0.3 s with one). libgomp's spin count could be lowered (GOMP_SPINCOUNT), but
    it is read once, when libgomp loads, which in the CLI is torch's doing; so the thread count follows the
    idle cores instead (:func:`appliance.cpu.idle_cores`, which the trainer uses too).
    """
    return idle_cores()


def _align(n: int) -> int:
    return max(_CTX_ALIGN, -(-n // _CTX_ALIGN) * _CTX_ALIGN)


class _Session:
    """One llama.cpp context with ``n_seq`` independent KV streams, plus reusable input batches.

    One more stream, ``pad_seq`` (the highest id), exists only so that no decode step carries a single token:
    ggml multiplies a one-column activation with a different kernel (vec_dot) than two or more (GEMM), and the
    last bits of the logits would then depend on how many sequences happen to be live. The scheduler keeps
    live sequences contiguous and ending at ``n_seq - 1`` (llama.cpp splits non-consecutive streams into
    separate micro-batches), so a lone live sequence always sits next to the pad.
    """

    def __init__(self, backend: LlamaCppBackend, *, n_seq: int, n_ctx_seq: int, n_batch: int, stack: ExitStack):
        self.b = backend
        self.n_seq = n_seq
        self.pad_seq = n_seq
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = (n_seq + 1) * _align(n_ctx_seq)
        params.n_batch = params.n_ubatch = n_batch
        params.n_seq_max = n_seq + 1
        params.n_threads = params.n_threads_batch = backend.n_threads
        params.kv_unified = False  # each sequence attends over its own stream only
        params.no_perf = True
        ctx = llama_cpp.llama_init_from_model(backend._model, params)
        if ctx is None:
            raise ConfigError(f"llama.cpp could not create a context for {n_seq} sequences × {n_ctx_seq} tokens")
        stack.callback(llama_cpp.llama_free, ctx)
        self.ctx = ctx
        self.mem = llama_cpp.llama_get_memory(ctx)
        self.n_ctx_seq = llama_cpp.llama_n_ctx_seq(ctx)
        self.n_batch = llama_cpp.llama_n_batch(ctx)
        self.tok = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        stack.callback(llama_cpp.llama_batch_free, self.tok)
        self.emb = llama_cpp.llama_batch_init(self.n_batch, backend.n_embd, 1)
        stack.callback(llama_cpp.llama_batch_free, self.emb)
        self._tok_ids = np.ctypeslib.as_array(self.tok.token, shape=(self.n_batch,))
        self._emb_buf = np.ctypeslib.as_array(self.emb.embd, shape=(self.n_batch, backend.n_embd))

    # -- low level -------------------------------------------------------------------------------
    def _fill(
        self, batch: llama_cpp.llama_batch, n: int, seqs: Sequence[int], pos: Sequence[int], out: Sequence[bool]
    ) -> None:
        batch.n_tokens = n
        for i in range(n):
            batch.pos[i] = pos[i]  # type: ignore[call-overload]  # llama_cpp types pos 2-D; it is POINTER(llama_pos)
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seqs[i]
            batch.logits[i] = out[i]

    def _decode(self, batch: llama_cpp.llama_batch) -> None:
        rc = llama_cpp.llama_decode(self.ctx, batch)
        if rc == 1:
            raise ConfigError("llama.cpp found no free KV cache slot — lower --batch or --max-tokens")
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with code {rc}")

    def _logits(self, n: int) -> np.ndarray:
        ptr = llama_cpp.llama_get_logits(self.ctx)
        return np.ctypeslib.as_array(ptr, shape=(n, self.b.n_vocab))

    def feed_tokens(self, seq: int, ids: Sequence[int], start: int, outputs: str) -> list[np.ndarray]:
        """Decode ``ids`` into ``seq`` from ``start``; ``outputs``: 'none' | 'last' | 'all' logits rows (copied)."""
        rows: list[np.ndarray] = []
        for c0 in range(0, len(ids), self.n_batch):
            chunk = ids[c0 : c0 + self.n_batch]
            n = len(chunk)
            last_chunk = c0 + n >= len(ids)
            out = [outputs == "all" or (outputs == "last" and last_chunk and i == n - 1) for i in range(n)]
            self._tok_ids[:n] = chunk
            self._fill(self.tok, n, [seq] * n, range(start + c0, start + c0 + n), out)
            self._decode(self.tok)
            if any(out):
                rows.append(self._logits(sum(out)).copy())
        return rows

    def force(self, seqs: Sequence[int], ids: Sequence[Sequence[int]], start: int) -> list[np.ndarray]:
        """Teacher forcing: decode ``ids[i]`` into sequence ``seqs[i]`` from position ``start`` (each already
        holds ``start`` positions), as few decode calls as ``n_batch`` allows, and return each sequence's logits
        rows ((len(ids[i]), n_vocab), copied); row t follows token t."""
        out: list[list[np.ndarray]] = [[] for _ in seqs]
        pending = [(k, t) for k in range(len(seqs)) for t in range(len(ids[k]))]  # sequence-major
        for c0 in range(0, len(pending), self.n_batch):
            part = pending[c0 : c0 + self.n_batch]
            n = len(part)
            self._tok_ids[:n] = [ids[k][t] for k, t in part]
            self._fill(self.tok, n, [seqs[k] for k, _ in part], [start + t for _, t in part], [True] * n)
            self._decode(self.tok)
            logits = self._logits(n)
            for row, (k, _) in enumerate(part):
                out[k].append(logits[row].copy())
        return [np.stack(r) if r else np.zeros((0, self.b.n_vocab), dtype=np.float32) for r in out]

    def feed_embeddings(self, seq: int, rows: np.ndarray, start: int, last_logits: bool) -> np.ndarray | None:
        """Decode raw input embeddings (k, n_embd) into ``seq`` from ``start``."""
        k = rows.shape[0]
        logits = None
        for c0 in range(0, k, self.n_batch):
            n = min(self.n_batch, k - c0)
            self._emb_buf[:n] = rows[c0 : c0 + n]
            out = [last_logits and c0 + i == k - 1 for i in range(n)]
            self._fill(self.emb, n, [seq] * n, range(start + c0, start + c0 + n), out)
            self._decode(self.emb)
            if any(out):
                logits = self._logits(1)[0].copy()
        return logits

    # -- Decoder protocol (appliance.generate.engine) --------------------------------------------
    def prefill(self, seq: int, prefix: Prefix) -> np.ndarray:
        pos = 0
        last: np.ndarray | None = None
        if prefix.bos and self.b.bos_token_id is not None:
            only = prefix.n_soft == 0 and not prefix.tokens
            rows = self.feed_tokens(seq, [self.b.bos_token_id], 0, "last" if only else "none")
            last = rows[0][0] if rows else None
            pos = 1
        if prefix.soft_prompt is not None:
            last = self.feed_embeddings(seq, prefix.soft_prompt, pos, last_logits=not prefix.tokens)
            pos += prefix.n_soft
        if prefix.tokens:
            last = self.feed_tokens(seq, list(prefix.tokens), pos, "last")[-1][-1]
        if last is None:
            raise BadInput("an empty prefix cannot start a sequence (no BOS, soft prompt or tokens)")
        return last

    def copy(self, src: int, dst: int, keep: int) -> None:
        llama_cpp.llama_memory_seq_rm(self.mem, dst, -1, -1)
        llama_cpp.llama_memory_seq_cp(self.mem, src, dst, -1, -1)
        llama_cpp.llama_memory_seq_rm(self.mem, dst, keep, -1)

    def truncate(self, seq: int, keep: int) -> None:
        llama_cpp.llama_memory_seq_rm(self.mem, seq, keep, -1)

    def step(self, seqs: Sequence[int], tokens: Sequence[int], positions: Sequence[int]) -> np.ndarray:
        n = len(seqs)
        if n == 1 and seqs[0] == self.pad_seq - 1:  # see the class docstring: pad to two columns
            llama_cpp.llama_memory_seq_rm(self.mem, self.pad_seq, -1, -1)
            seqs, tokens, positions = [seqs[0], self.pad_seq], [tokens[0], tokens[0]], [positions[0], 0]
        m = len(seqs)
        self._tok_ids[:m] = tokens
        self._fill(self.tok, m, seqs, positions, [True] * m)
        self._decode(self.tok)
        return self._logits(m)[:n]

    def piece(self, token: int) -> bytes:
        return self.b.piece(token)

    def is_eog(self, token: int) -> bool:
        return token in self.b.eog_set

    @property
    def eog_ids(self) -> list[int]:
        return sorted(self.b.eog_set)


class LlamaCppBackend(GenerationBackend):
    """A GGUF model loaded with llama.cpp. ``n_ctx`` is the longest sequence (prefix + output) allowed.

    ``use_extra_bufts``: let llama.cpp put weights in extra buffer types (CPU repack, AMX), whose kernels
    have crashed on some CPU/model pairs; :mod:`appliance.generate.selftest` decides it per model and CPU
    (None: ask it). ``vocab_only``: load the vocabulary and hyperparameters only (text operations; no decoding).
    """

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 2048,
        n_threads: int = 0,
        n_seq_max: int = 8,
        n_batch: int = 512,
        use_extra_bufts: bool | None = None,
        vocab_only: bool = False,
    ) -> None:
        self._stack = ExitStack()
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.n_seq_max = n_seq_max
        self.n_batch = n_batch
        if use_extra_bufts is None and not vocab_only:
            from appliance.generate.selftest import extra_bufts_safe

            use_extra_bufts = extra_bufts_safe(self.model_path).extra_bufts
        self.use_extra_bufts = bool(use_extra_bufts)
        self.vocab_only = vocab_only
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = 0
        mparams.use_extra_bufts = self.use_extra_bufts
        mparams.vocab_only = vocab_only
        model = llama_cpp.llama_model_load_from_file(str(self.model_path).encode("utf-8"), mparams)
        if model is None:
            raise ConfigError(f"llama.cpp could not load {self.model_path.name}; is it a GGUF model file?")
        self._stack.callback(llama_cpp.llama_model_free, model)
        self._model = model
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self._n_embd = int(llama_cpp.llama_model_n_embd_inp(model))
        self._n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        bos = int(llama_cpp.llama_vocab_bos(self._vocab))
        self._bos = bos if bos >= 0 and llama_cpp.llama_vocab_get_add_bos(self._vocab) else None
        self.eog_set = frozenset(t for t in range(self._n_vocab) if llama_cpp.llama_vocab_is_eog(self._vocab, t))
        self._pieces: dict[int, bytes] = {}
        self._single: _Session | None = None

    # -- properties and text --------------------------------------------------------------------
    @property
    def n_embd(self) -> int:
        return self._n_embd

    @property
    def n_vocab(self) -> int:
        return self._n_vocab

    @property
    def bos_token_id(self) -> int | None:
        return self._bos

    def tokenize(self, text: str, *, add_bos: bool, special: bool = False) -> list[int]:
        raw = text.encode("utf-8")
        cap = len(raw) + 8
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(self._vocab, raw, len(raw), buf, cap, False, special)
        if n < 0:
            cap = -n
            buf = (llama_cpp.llama_token * cap)()
            n = llama_cpp.llama_tokenize(self._vocab, raw, len(raw), buf, cap, False, special)
        ids = list(buf[:n])
        return [self._bos, *ids] if add_bos and self._bos is not None else ids

    def piece(self, token: int) -> bytes:
        cached = self._pieces.get(token)
        if cached is None:
            buf = ctypes.create_string_buffer(64)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, 64, 0, False)
            cached = self._pieces[token] = buf.raw[: max(n, 0)]
        return cached

    def detokenize(self, ids: Sequence[int]) -> str:
        return b"".join(self.piece(int(t)) for t in ids).decode("utf-8", errors="ignore")

    def chat_prompt(self, messages: Sequence[tuple[str, str]]) -> str | None:
        tmpl = llama_cpp.llama_model_chat_template(self._model, None)
        if not tmpl:
            return None
        enc = [(r.encode("utf-8"), c.encode("utf-8")) for r, c in messages]
        msgs = (llama_cpp.llama_chat_message * len(enc))(*[llama_cpp.llama_chat_message(r, c) for r, c in enc])
        size = 2 * sum(len(r) + len(c) for r, c in enc) + 256
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_chat_apply_template(tmpl, msgs, len(enc), True, buf, size)
        if n > size:
            buf = ctypes.create_string_buffer(n + 1)
            n = llama_cpp.llama_chat_apply_template(tmpl, msgs, len(enc), True, buf, n + 1)
        return buf.raw[:n].decode("utf-8") if n >= 0 else None

    # -- sessions -----------------------------------------------------------------------------------
    @contextmanager
    def session(self, *, n_seq: int, n_ctx_seq: int) -> Iterator[_Session]:
        """A context for ``n_seq`` sequences of up to ``n_ctx_seq`` tokens, freed on exit."""
        if self._model is None:
            raise RuntimeError("backend is closed")
        if self.vocab_only:
            raise RuntimeError("a vocab-only backend cannot decode")
        with ExitStack() as stack:
            yield _Session(self, n_seq=n_seq, n_ctx_seq=n_ctx_seq, n_batch=self.n_batch, stack=stack)

    def _check_soft(self, soft: np.ndarray | None) -> np.ndarray | None:
        if soft is None:
            return None
        arr = np.ascontiguousarray(soft, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[1] != self._n_embd:
            raise BadInput(f"soft prompt has shape {tuple(arr.shape)}; this model needs (k, {self._n_embd})")
        return arr

    def prompt_logits(
        self, soft_prompt: np.ndarray | None, token_ids: Sequence[int], *, prefix_bos: bool = True
    ) -> np.ndarray:
        soft = self._check_soft(soft_prompt)
        prefix = Prefix(key="logits", soft_prompt=soft, bos=prefix_bos)
        total = prefix_length(prefix, self._bos) + len(token_ids)
        if total > self.n_ctx:
            raise BadInput(f"{total} positions exceed the context of {self.n_ctx} tokens")
        if self._single is None:
            self._single = self._stack.enter_context(self.session(n_seq=1, n_ctx_seq=self.n_ctx))
        s = self._single
        llama_cpp.llama_memory_clear(s.mem, True)
        pos = 0
        if prefix_bos and self._bos is not None:
            s.feed_tokens(0, [self._bos], 0, "none")
            pos = 1
        if soft is not None:
            s.feed_embeddings(0, soft, pos, last_logits=False)
            pos += soft.shape[0]
        rows = s.feed_tokens(0, [int(t) for t in token_ids], pos, "all")
        if not rows:
            return np.zeros((0, self._n_vocab), dtype=np.float32)
        return np.concatenate(rows, axis=0).astype(np.float32, copy=False)

    def continuation_logprobs(
        self, prefix: Prefix, seqs: Sequence[Sequence[int]], *, n_par: int = 16
    ) -> list[np.ndarray] | None:
        from appliance.generate.forcing import shared_prefix_logprobs

        return shared_prefix_logprobs(self, prefix, seqs, n_par=n_par)

    def generate(
        self,
        jobs: Sequence[Job],
        params: SamplingParams,
        *,
        batch: int = 8,
        on_step: Callable[[int], None] | None = None,
    ) -> Iterator[Completion]:
        if self._model is None:
            raise RuntimeError("backend is closed")
        if not jobs:
            return
        guides = len(jobs[0].guides) if params.guidance > 0.0 else 0  # guided: each job decodes its guides too
        if params.guidance > 0.0 and (not guides or any(len(j.guides) != guides for j in jobs)):
            raise ValueError("guided jobs need guide prefixes, the same number for every job of one call")
        width = 1 + guides
        if batch < 1 or batch * width > self.n_seq_max:
            why = f" with guidance ({width} sequences per output)" if guides else ""
            raise BadInput(f"--batch {batch} is outside 1..{self.n_seq_max // width}{why}")
        jobs = [
            Job(j.index, self._soft(j.prefix), j.seed, tuple(self._soft(g) for g in j.guides[:guides])) for j in jobs
        ]
        heads = [p for j in jobs for p in (j.prefix, *j.guides)]
        longest = max(prefix_length(p, self._bos) for p in heads) + params.max_tokens + 1
        if longest > self.n_ctx:
            raise BadInput(f"prompt plus --max-tokens needs {longest} positions; the context holds {self.n_ctx}")
        n_slots = min(batch, len(jobs))
        with self.session(n_seq=n_slots * width, n_ctx_seq=longest) as sess:
            yield from Scheduler(sess, n_slots, self._bos, params, guides).run(jobs, on_step)

    def _soft(self, prefix: Prefix) -> Prefix:
        return _with_soft(prefix, self._check_soft(prefix.soft_prompt))

    def close(self) -> None:
        self._single = None
        self._stack.close()
        self._model = None


def _with_soft(prefix: Prefix, soft: np.ndarray | None) -> Prefix:
    if soft is prefix.soft_prompt:
        return prefix
    return Prefix(key=prefix.key, tokens=prefix.tokens, soft_prompt=soft, bos=prefix.bos)
