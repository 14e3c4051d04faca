"""Run a batch: sample outputs, PII-scan each one, store it with its counters in one transaction.

Promises: nothing reaches the database before the PII pipeline (same engine and policy as the seeds) has
processed it; an output index is stored at most once (UNIQUE(batch_id, idx)); an interrupted batch keeps
every stored output and ``resume`` produces exactly the missing indices. llama.cpp decodes in a child process
(:mod:`appliance.generate.isolated`) with the extra buffer types its self-test allows
(:mod:`appliance.generate.selftest`), so a native crash interrupts the batch like Ctrl-C does, with a one-line
error, instead of killing the command. Audit events carry the model and prompt hashes, the kernel choice,
counts and throughput, never text.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from appliance.audit import rows as event_rows
from appliance.audit.ledger import append_in_tx
from appliance.context import Context
from appliance.curate.kept import outputs_digest
from appliance.db import transaction, utc_now
from appliance.errors import BadInput
from appliance.generate import providers, store
from appliance.generate.backend import GenerationBackend
from appliance.generate.fewshot import fewshot_prefix, pick, train_examples
from appliance.generate.isolated import DecoderCrashed
from appliance.generate.jobs import Job, Prefix
from appliance.generate.plan import GenerateOptions, Plan, job_seed, plan_new, plan_resume
from appliance.generate.prompts import artifact_path, load_embeddings
from appliance.generate.providers import Setup
from appliance.policy.templates import render_label_template
from appliance.train.canaries import load as load_canaries


class Reporter(Protocol):
    def start(self, total: int, done: int) -> None: ...
    def tokens(self, n: int) -> None: ...
    def record(self) -> None: ...


class _Quiet:
    def start(self, total: int, done: int) -> None: ...
    def tokens(self, n: int) -> None: ...
    def record(self) -> None: ...


@dataclass
class RunResult:
    batch_id: str
    status: str
    n_requested: int
    n_stored: int
    n_new: int
    n_dropped: int
    n_findings: int
    tokens: int
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.batch_id,
            "status": self.status,
            "n_requested": self.n_requested,
            "n_stored": self.n_stored,
            "n_new": self.n_new,
            "n_dropped_pii": self.n_dropped,
            "n_findings": self.n_findings,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 3),
            "tokens_per_s": round(self.tokens_per_s, 2),
        }


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a batch: what finished is stored; ``result`` says how far it got."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(result.batch_id)
        self.result = result


@contextmanager
def _backend(ctx: Context, plan: Plan) -> Iterator[tuple[GenerationBackend, Setup]]:
    """The plan's engine (``generation.backend`` when the batch began) ready for it: its weights
    (``generation.weights``), its kernel self-test (audited when it ran now), and the backend, decoding in a
    child process."""
    g = ctx.policy.generation
    provider = providers.get(plan.backend)
    setup = provider.setup(plan.model_path, plan.model_sha256, weights=plan.weights)
    if setup.selftest_event is not None:
        ctx.record("generate.selftest", setup.selftest_event)
    with provider.build(
        setup,
        isolate=True,
        n_ctx=g.n_ctx,
        n_threads=g.threads,
        n_seq_max=plan.batch * (1 + plan.guides_per_output),  # guided: the guide sequences beside each job
    ) as backend:
        yield backend, setup


def _prefixes(ctx: Context, plan: Plan, backend: GenerationBackend, todo: list[int]) -> list[Job]:
    jobs: list[Job] = []
    if plan.mode == "softprompt":
        assert plan.prompt is not None
        emb = load_embeddings(artifact_path(ctx.ws, plan.prompt), plan.prompt, backend.n_embd)
        meta = plan.meta
        heads: dict[str | None, tuple[Prefix, Prefix]] = {}

        def head_of(label: str | None) -> tuple[Prefix, Prefix]:
            """(the trained prompt then the label's text, the public prior's tokens then the same text)."""
            if label not in heads:
                templ = meta.label_template
                text = (
                    render_label_template(templ, label, meta.label_descriptions, meta.label_keywords)
                    if templ and label is not None
                    else meta.suffix_text
                )
                ids = tuple(backend.tokenize(text, add_bos=False)) if text else ()
                heads[label] = (
                    Prefix(key=f"soft:{label}", tokens=ids, soft_prompt=emb, bos=meta.prefix_bos),
                    Prefix(key=f"prior:{label}", tokens=meta.prior_token_ids + ids, bos=meta.prefix_bos),
                )
            return heads[label]

        n_guides = plan.guides_per_output
        for i in todo:
            label = plan.label_of(i)
            head, prior = head_of(label)
            guides: tuple[Prefix, ...] = ()
            if n_guides and plan.sampling.contrast == "labels":
                others = [x for x in meta.labels or () if x != label]
                start = i % len(others)
                guides = tuple(head_of(others[(start + j) % len(others)])[0] for j in range(n_guides))
            elif n_guides:
                guides = (prior,)  # the same context after the public prior's tokens instead of the trained rows
            jobs.append(Job(i, head, job_seed(plan.seed, i), guides))
        return jobs
    pools: dict[str | None, list[tuple[int, str]]] = {}
    for i in todo:
        label = plan.label_of(i)
        if label not in pools:
            pools[label] = train_examples(ctx.db, plan.dataset, label)
        seed = job_seed(plan.seed, i)
        examples = pick(pools[label], plan.few_shot or 1, seed)
        jobs.append(Job(i, fewshot_prefix(backend, [t for _, t in examples], label, key=f"fs:{i}"), seed))
    return jobs


def _audit_base(ctx: Context, plan: Plan, batch_id: str, setup: Setup) -> dict[str, Any]:
    base: dict[str, Any] = {
        "batch_id": batch_id,
        "dataset": plan.dataset,
        "mode": plan.mode,
        "model": plan.model_name,
        "model_sha256": plan.model_sha256,
        "weights": plan.weights,
        "backend": plan.backend,
        "weights_sha256": setup.sha256,
        "extra_bufts": setup.extra_bufts,
        "kernel_selftest": setup.kernel_selftest,
        "prompt_id": plan.prompt["id"] if plan.prompt else None,
        "prompt_sha256": plan.prompt["artifact_sha256"] if plan.prompt else None,
        "raw_seeds_in_prompt": plan.mode == "fewshot",
        "policy_sha256": ctx.policy_sha256,
    }
    if plan.mode == "fewshot":
        base["few_shot_k"] = plan.few_shot
    return base


def start(ctx: Context, opts: GenerateOptions, reporter: Reporter | None = None) -> RunResult:
    """Create a batch and run it to completion (Ctrl-C or kill: what finished stays stored)."""
    plan = plan_new(ctx, opts)
    with _backend(ctx, plan) as (backend, setup):
        if plan.prompt is not None:  # width and shape checks before the batch exists
            load_embeddings(artifact_path(ctx.ws, plan.prompt), plan.prompt, backend.n_embd)
        batch_id = store.new_batch_id()
        with transaction(ctx.db) as conn:
            store.insert_batch(
                conn,
                {
                    "id": batch_id,
                    "dataset": plan.dataset,
                    "mode": plan.mode,
                    "prompt_id": plan.prompt["id"] if plan.prompt else None,
                    "label": plan.label_arg,
                    "model_name": plan.model_name,
                    "model_sha256": plan.model_sha256,
                    "params": _json(plan.params_json()),
                    "n_requested": plan.n,
                    "status": "running",
                    "exportable": int(plan.exportable),
                    "created_at": utc_now(),
                    "runner": store.runner_id(),
                },
            )
            append_in_tx(
                conn,
                "generate.start",
                {
                    **_audit_base(ctx, plan, batch_id, setup),
                    "n_requested": plan.n,
                    "n_labels": len(plan.labels),
                    "exportable": plan.exportable,
                    "seed": plan.seed,
                    "batch": plan.batch,
                    "sampling": _audit_sampling(plan),
                    "binds_outputs": True,  # its generate.finish / generate.interrupted events bind the outputs
                },
            )
        base = _audit_base(ctx, plan, batch_id, setup)
        return _run(ctx, plan, backend, batch_id, reporter or _Quiet(), base, setup)


def resume(ctx: Context, batch_id: str, reporter: Reporter | None = None) -> RunResult:
    """Finish an interrupted batch: generate exactly the indices that have no stored output."""
    row = store.get_batch(ctx.db, batch_id)
    if row["status"] == "running" and store.runner_alive(row["runner"]):
        raise BadInput(f"batch {batch_id} is still being generated by process {row['runner']}")
    if event_rows.last_matching(ctx.db.conn, "generate.finish", {"batch_id": batch_id}) is not None:
        store.set_status(ctx.db, batch_id, "complete")  # finished (its outputs bound) — whatever the row says
        row["status"] = "complete"
    if row["status"] == "complete":
        n = len(store.done_indices(ctx.db, batch_id))
        return RunResult(batch_id, "complete", row["n_requested"], n, 0, 0, 0, 0, 0.0)
    plan = plan_resume(ctx, row)
    with _backend(ctx, plan) as (backend, setup):
        store.set_status(ctx.db, batch_id, "running", runner=store.runner_id())
        missing = plan.n - len(store.done_indices(ctx.db, batch_id))
        base = _audit_base(ctx, plan, batch_id, setup)
        ctx.record("generate.resume", {**base, "n_missing": missing})
        return _run(ctx, plan, backend, batch_id, reporter or _Quiet(), base, setup)


def _run(
    ctx: Context,
    plan: Plan,
    backend: GenerationBackend,
    batch_id: str,
    reporter: Reporter,
    base: dict[str, Any],
    setup: Setup,
) -> RunResult:
    from appliance.pii import PiiPipeline

    stats = {"new": 0, "dropped": 0, "findings": 0, "tokens": 0}
    t0 = time.perf_counter()

    def close(status: str, **why: Any) -> RunResult:
        done = store.done_indices(ctx.db, batch_id)
        stored = len(done)
        result = RunResult(
            batch_id,
            status,
            plan.n,
            stored,
            stats["new"],
            stats["dropped"],
            stats["findings"],
            stats["tokens"],
            time.perf_counter() - t0,
        )
        kind = "generate.finish" if status == "complete" else "generate.interrupted"
        # the outputs stored so far are bound now (an interrupted run names which): the probes and the gate check
        # them against every such event, so an output edited after any of them is exit 4
        bound: dict[str, Any] = {"outputs_sha256": outputs_digest(ctx.db.conn, batch_id)}
        if status != "complete":
            bound["outputs_idx"] = sorted(done)
        ctx.record(kind, {**base, **result.as_dict(), **why, **bound})
        store.set_status(ctx.db, batch_id, status)  # after the event: a batch marked complete has its outputs bound
        return result

    try:
        pipe = PiiPipeline.from_context(ctx, plan.dataset)
        # the canary search reads each raw text here, before the PII scan: a canary written in its template's
        # context ("my account number is …") is redacted on the way in and could not be found afterwards
        canary_secrets = [c.secret for c in load_canaries(ctx.ws, plan.prompt)] if plan.prompt is not None else []
        done = store.done_indices(ctx.db, batch_id)
        jobs = _prefixes(ctx, plan, backend, [i for i in range(plan.n) if i not in done])
        reporter.start(plan.n, len(done))
        last = time.perf_counter()
        for c in backend.generate(jobs, plan.sampling, batch=plan.batch, on_step=reporter.tokens):
            res = pipe.process([c.text])[0]
            out = store.StoredOutput(
                idx=c.index,
                text=res.text if res.text is not None and not res.dropped else "",
                label=plan.label_of(c.index),
                n_tokens=c.n_tokens,
                findings=list(res.findings),
                status="dropped" if res.dropped else "new",
                reason="pii" if res.dropped else None,
                finish_reason=c.finish_reason,
                canary_hits=sum(1 for secret in canary_secrets if secret in c.text),
            )
            now = time.perf_counter()
            with transaction(ctx.db) as conn:
                store.insert_outputs(conn, batch_id, [out])
                store.add_progress(conn, batch_id, c.n_tokens, now - last)
            last = now
            stats["new"] += 1
            stats["dropped"] += int(res.dropped)
            stats["findings"] += len(res.findings)
            stats["tokens"] += c.n_tokens
            reporter.record()
    except KeyboardInterrupt:
        raise BatchInterrupted(close("interrupted")) from None
    except DecoderCrashed as exc:
        r = close("interrupted", reason="decoder_crashed", signal=exc.signal_name)
        after = ""
        changed = providers.get(plan.backend).crashed(setup, exc.signal_name) if exc.native_fault else None
        if changed is not None:  # the provider changed its kernel choice: audit it, in its own words
            ctx.record("generate.selftest", changed.event)
            after = f"; {changed.note}"
        raise DecoderCrashed(
            f"{exc}; batch {batch_id} keeps its {r.n_stored}/{r.n_requested} stored outputs{after}"
            f" — finish it with `appliance generate --resume {batch_id}`",
            exc.signal_name,
        ) from None
    except BaseException:
        close("interrupted")
        raise
    return close("complete")


def _audit_sampling(plan: Plan) -> dict[str, Any]:
    """Sampling settings for the audit log: stop strings (may hold newlines) as a count and a hash."""
    s = plan.sampling.as_dict()
    stop = s.pop("stop")
    return {**s, "n_stop": len(stop), "stop_sha256": "sha256:" + hashlib.sha256(_json(stop).encode()).hexdigest()}


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
