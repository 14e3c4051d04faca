"""What a batch will do, resolved and validated before anything runs; rebuilt identically on resume.

A plan fixes the mode (soft prompt or few-shot), the verified model, the sampling settings, the seed and
the label of every output index. Everything a resume needs is stored in ``batches.params``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, get_args

from appliance.context import Context
from appliance.errors import BadInput, PolicyViolation
from appliance.generate.jobs import SamplingParams
from appliance.generate.prompts import PromptMeta, artifact_path, check_model, get_prompt, newest_dp_prompt
from appliance.models.registry import verified_path
from appliance.policy.schema import GuidanceContrast
from appliance.store import datasets

# contrast "labels" decodes each output beside this many other labels (the other labels of the prompt in turn, by
# the output's index). One: on six public BANKING77 intents one other label per output did as well
# as the mean of all five others (detection AUC of random outputs 0.885 against 0.880, after DP selection 0.852
# against 0.854; bench/RESULTS.md, session 17) at a third of the decoding
MAX_LABEL_GUIDES = 1
CONTRASTS: tuple[str, ...] = get_args(GuidanceContrast)


@dataclass(frozen=True)
class GenerateOptions:
    """The command line of ``appliance generate``; None means "policy default"."""

    dataset: str
    n: int
    prompt_id: str | None = None
    few_shot: int | None = None
    label: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    guidance: float | None = None
    contrast: str | None = None
    max_tokens: int | None = None
    seed: int | None = None
    batch: int | None = None
    model: str | None = None


@dataclass(frozen=True)
class Plan:
    dataset: str
    n: int
    mode: str  # softprompt | fewshot
    prompt: dict[str, Any] | None
    model_name: str
    model_path: Path
    model_sha256: str
    sampling: SamplingParams
    seed: int
    batch: int
    few_shot: int | None
    labels: list[str | None]
    label_arg: str | None
    weights: str = "native"  # native | f16 (appliance.generate.weights)
    backend: str = "llama.cpp"  # the engine's provider (appliance.generate.providers); a batch keeps its own

    @property
    def guides_per_output(self) -> int:
        """Guide sequences each output decodes beside its own: 0 unguided, 1 against the prior, else one per
        other label it is contrasted with (:data:`MAX_LABEL_GUIDES`)."""
        if self.sampling.guidance <= 0.0:
            return 0
        if self.sampling.contrast == "labels":  # plan_new allows it only for two or more labels
            return max(1, min(len(self.meta.labels or ()) - 1, MAX_LABEL_GUIDES))
        return 1

    @property
    def meta(self) -> PromptMeta:
        return PromptMeta.parse(self.prompt["meta"] if self.prompt else None)

    @property
    def exportable(self) -> bool:
        return self.mode == "softprompt" and bool(self.prompt and self.prompt["exportable"])

    def label_of(self, idx: int) -> str | None:
        """Contiguous, even blocks: index i gets the label of its block (contract: spread N evenly)."""
        per, extra = divmod(self.n, len(self.labels))
        start = 0
        for j, label in enumerate(self.labels):
            size = per + (1 if j < extra else 0)
            if idx < start + size:
                return label
            start += size
        raise IndexError(idx)

    def params_json(self) -> dict[str, Any]:
        return {
            "sampling": self.sampling.as_dict(),
            "seed": self.seed,
            "batch": self.batch,
            "few_shot": self.few_shot,
            "labels": self.labels,
            "backend": self.backend,
            "weights": self.weights,
        }


def job_seed(seed: int, idx: int) -> int:
    """Output ``idx``'s own RNG seed: the same (seed, idx) always gives the same sequence."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{idx}".encode()).digest()[:8], "little")


def dataset_labels(ctx: Context, dataset: str) -> list[str]:
    return datasets.labels(ctx.db, dataset)


def _require_dataset(ctx: Context, name: str) -> None:
    datasets.require(ctx.db, name, "import seeds first with `appliance seeds import`")


def _pick_prompt(ctx: Context, opts: GenerateOptions) -> dict[str, Any] | None:
    if opts.few_shot is not None:
        if opts.prompt_id is not None:
            raise BadInput("use either --prompt or --few-shot, not both")
        if opts.few_shot < 1:
            raise BadInput("--few-shot K needs K >= 1 examples")
        if not ctx.policy.generation.allow_few_shot:
            raise PolicyViolation("policy generation.allow_few_shot is false: few-shot puts raw seeds in the prompt")
        return None
    if opts.prompt_id is not None:
        row = get_prompt(ctx.db, opts.prompt_id)
        if row["dataset"] != opts.dataset:
            raise BadInput(f"prompt {row['id']} was trained on dataset {row['dataset']!r}, not {opts.dataset!r}")
        return row
    newest = newest_dp_prompt(ctx.db, opts.dataset)
    if newest is None:
        raise BadInput(
            f"dataset {opts.dataset!r} has no exportable DP prompt — run `appliance train {opts.dataset}` "
            "or pass --few-shot K"
        )
    return newest


def _labels(ctx: Context, opts: GenerateOptions, prompt: dict[str, Any] | None) -> list[str | None]:
    known = dataset_labels(ctx, opts.dataset)
    if opts.label is not None and opts.label not in known:
        shown = ", ".join(known[:10]) or "none — the dataset is unlabelled"
        raise BadInput(f"label {opts.label!r} is not in dataset {opts.dataset!r} (labels: {shown})")
    if prompt is None:
        return [opts.label] if opts.label is not None else (list(known) or [None])
    meta = PromptMeta.parse(prompt["meta"])
    if meta.label_template:
        if opts.label is not None:
            return [opts.label]
        return list(meta.labels or known) or [None]
    if prompt["label"] is not None:
        if opts.label is not None and opts.label != prompt["label"]:
            raise BadInput(f"prompt {prompt['id']} generates label {prompt['label']!r} only, not {opts.label!r}")
        return [prompt["label"]]
    if opts.label is not None:
        raise BadInput(f"prompt {prompt['id']} was trained without labels; --label needs a labelled prompt")
    return [None]


def _sampling(ctx: Context, opts: GenerateOptions) -> SamplingParams:
    g = ctx.policy.generation
    s = SamplingParams(
        temperature=g.temperature if opts.temperature is None else opts.temperature,
        top_p=g.top_p if opts.top_p is None else opts.top_p,
        top_k=g.top_k,
        min_p=g.min_p,
        repeat_penalty=g.repeat_penalty,
        max_tokens=g.max_tokens if opts.max_tokens is None else opts.max_tokens,
        stop=tuple(g.stop),
        guidance=g.guidance if opts.guidance is None else opts.guidance,
        contrast=g.guidance_contrast if opts.contrast is None else opts.contrast,
    )
    if s.contrast not in CONTRASTS:
        raise BadInput(f"--contrast must be one of {', '.join(CONTRASTS)}")
    if not 0.0 <= s.temperature <= 5.0:
        raise BadInput("--temperature must be between 0 and 5")
    if not 0.0 < s.top_p <= 1.0:
        raise BadInput("--top-p must be in (0, 1]")
    if not 0.0 <= s.guidance <= 10.0:
        raise BadInput("--guidance must be between 0 (off) and 10")
    if not 1 <= s.max_tokens <= 4096:
        raise BadInput("--max-tokens must be between 1 and 4096")
    return s


CLOSERS = "}]"  # a record format's closing bracket: a text inside the record never holds it bare


# where a JSON-lines record's text closes and another field of the same object opens: the prompt writes
# 'I can help you.", "description": "…' (9 of 240 outputs of a DP prompt on public SMS texts, bench/RESULTS.md)
NEXT_FIELD = ('", "', '","')


def _with_end_stops(stop: tuple[str, ...], end_text: str) -> tuple[str, ...]:
    """Stop at the text the prompt was trained to end a record with, then at that text's closing bracket
    alone: with ``"}``, a noisy prompt also ends records as ``.}`` or ``}`` ("Hi.} I'm so glad.}", a second
    record run on after the first, bench/RESULTS.md). The full end text is listed first, so it is the one cut
    at when both match. An end text that closes a JSON string and object (``"}``) also stops where the string
    closes and a next field opens (:data:`NEXT_FIELD`)."""
    closing = end_text.rstrip()[-1:]
    extra = [end_text] + ([closing] if closing and closing in CLOSERS and closing != end_text else [])
    if end_text.strip().startswith('"') and closing == "}":
        extra += NEXT_FIELD
    return (*stop, *(e for e in extra if e not in stop))


def _guided(sampling: SamplingParams, meta: PromptMeta | None, *, asked: str | None) -> SamplingParams:
    """The guidance a batch will really run, as its params record it: none for few-shot (no trained prompt to
    contrast) or for a prior contrast without a recorded prior; a policy's ``labels`` on a prompt with fewer than
    two labels falls back to ``prior`` (``--contrast labels`` there is exit 1); an unguided batch records
    ``prior`` (nothing is contrasted)."""
    if meta is None:
        return replace(sampling, guidance=0.0, contrast="prior")
    if sampling.guidance > 0.0 and sampling.contrast == "labels" and len(meta.labels or ()) < 2:
        if asked == "labels":
            raise BadInput("--contrast labels needs a prompt trained on two or more labels; use --contrast prior")
        sampling = replace(sampling, contrast="prior")
    if sampling.contrast == "prior" and not meta.prior_token_ids:
        sampling = replace(sampling, guidance=0.0)  # a prompt trained before the prior was recorded has no guide
    return sampling if sampling.guidance > 0.0 else replace(sampling, contrast="prior")


def plan_new(ctx: Context, opts: GenerateOptions) -> Plan:
    """Validate a new batch: exit 1 for bad input, 3 if the policy refuses, 4 if a checksum fails."""
    if opts.n <= 0:
        raise BadInput("--n must be a positive number of outputs")
    _require_dataset(ctx, opts.dataset)
    prompt = _pick_prompt(ctx, opts)
    meta = PromptMeta.parse(prompt["meta"]) if prompt is not None else None
    if prompt is not None and meta is not None and meta.prefix_text:
        raise BadInput(f"prompt {prompt['id']} puts text before the soft prompt, a layout generation does not use")
    labels = _labels(ctx, opts, prompt)
    sampling = _sampling(ctx, opts)
    if meta is not None and meta.end_text:
        sampling = replace(sampling, stop=_with_end_stops(sampling.stop, meta.end_text))
    sampling = _guided(sampling, meta, asked=opts.contrast)
    batch = ctx.policy.generation.batch if opts.batch is None else opts.batch
    if not 1 <= batch <= 256:
        raise BadInput("--batch must be between 1 and 256")
    name = opts.model or (prompt["model_name"] if prompt else None) or ctx.policy.generation.default_model
    spec, path, digest = verified_path(name, ctx.ws)
    if prompt is not None:
        artifact_path(ctx.ws, prompt)
        check_model(prompt, spec.name, digest)
    seed = opts.seed if opts.seed is not None else secrets.randbits(31)
    return Plan(
        dataset=opts.dataset,
        n=opts.n,
        mode="fewshot" if prompt is None else "softprompt",
        prompt=prompt,
        model_name=spec.name,
        model_path=path,
        model_sha256=digest,
        sampling=sampling,
        seed=seed,
        batch=batch,
        few_shot=opts.few_shot,
        labels=labels,
        label_arg=opts.label,
        weights=ctx.policy.generation.weights,
        backend=ctx.policy.generation.backend,
    )


def plan_resume(ctx: Context, row: dict[str, Any]) -> Plan:
    """Rebuild a stored batch's plan, re-verifying the model and the prompt artifact."""
    p = row["params"]
    spec, path, digest = verified_path(row["model_name"], ctx.ws)
    if digest != row["model_sha256"]:
        raise BadInput(
            f"batch {row['id']} used model {row['model_name']} {row['model_sha256'][7:19]}…; "
            f"the installed file is {digest[7:19]}… — restore that model file to resume"
        )
    prompt = None
    if row["mode"] == "softprompt":
        prompt = get_prompt(ctx.db, row["prompt_id"])
        artifact_path(ctx.ws, prompt)
        check_model(prompt, spec.name, digest)
    s = p["sampling"]
    sampling = replace(SamplingParams(), **{**s, "stop": tuple(s["stop"])})
    return Plan(
        dataset=row["dataset"],
        n=int(row["n_requested"]),
        mode=row["mode"],
        prompt=prompt,
        model_name=spec.name,
        model_path=path,
        model_sha256=digest,
        sampling=sampling,
        seed=int(p["seed"]),
        batch=int(p["batch"]),
        few_shot=p.get("few_shot"),
        labels=list(p["labels"]),
        label_arg=row["label"],
        weights=str(p.get("weights", "native")),  # batches stored before weights existed decoded native weights
        backend=str(p.get("backend", "llama.cpp")),  # the batch's own engine, whatever the policy says now
    )
