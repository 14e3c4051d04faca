"""The curation decision: one reason per output (or None = kept), from texts and per-output counters.

Pure function of the outputs alone. Filters apply in a fixed order and the first one that fires names
the reason: PII still present → unfinished (cut off at ``generation.max_tokens``, when
``curation.drop_unfinished``) → quality (too short, too long, non-text, repetitive, garbled) → label echo (the
whole text is a label's name or words, e.g. "fiat_currency_support": a public label, not a record) → prompt echo
(the label prefix's own text or keywords' parenthetical, :mod:`appliance.curate.echo`) → exact duplicate → near
duplicate → semantic duplicate (when ``curation.semantic_dup_cosine`` is set: sentence embeddings, passed in as
``vectors``). Off-label outputs (the DP generator's own reading of the label, the costly check)
are dropped later, by :func:`appliance.curate.run.curate_batch`, after the DP selection.
Deduplication only looks at outputs that passed every earlier filter, so each duplicate group keeps its first
clean member.

No filter here reads the private seeds: selecting outputs by their similarity to a training record is
a data-dependent choice outside DP (Ganev & De Cristofaro 2023), so what is released stays
post-processing of the DP generator. Verbatim overlap with the seeds is still counted (``leak_hits``),
but only the gate reads it, and it refuses the whole export instead of shaping it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from appliance.curate.dedup import EXACT, NEAR, SEMANTIC, exact_duplicates, near_duplicates, semantic_duplicates
from appliance.curate.echo import PromptText, echoes_prompt
from appliance.curate.filters import GARBLED, LEAK, quality_reason
from appliance.policy.schema import CurationPolicy
from appliance.policy.templates import label_words

OUTPUT_PII = "output_pii"
GENERATION_PII = "pii"  # set by `appliance generate` when the output scan dropped the record
# ``leak`` no longer comes out of :func:`decide`; it stays so that older curations still read back.
OFF_LABEL = "off_label"  # the DP generator itself reads the output as another label (curate/consistency.py)
UNFINISHED = "unfinished"  # the output hit max_tokens before EOS or a stop string: cut mid-sentence
LABEL_ECHO = "label_echo"  # the whole output is a label's name or words, not a record
PROMPT_ECHO = "prompt_echo"  # the output repeats the label prefix's template text or keywords' parenthetical
REASONS = (
    GENERATION_PII, OUTPUT_PII, LEAK, UNFINISHED, "too_short", "too_long", "non_text", "repetitive", GARBLED,
    LABEL_ECHO, PROMPT_ECHO, OFF_LABEL, EXACT, NEAR, SEMANTIC,
)  # fmt: skip


def label_echoes(labels: Iterable[str]) -> set[tuple[str, ...]]:
    """The word sequences an output echoing a label would have: ``Fiat currency support.`` has the words of
    ``fiat_currency_support``. The label set is public schema; an output that is only a label is no record."""
    return {words for words in (tuple(label_words(lab)) for lab in labels if lab) if words}


def pii_hits(findings: list[dict[str, Any]], *, count_pseudonyms: bool) -> int:
    """Findings that mean PII is still present: not ``allow``; surrogates (``pseudonymize``) only on request.

    A pseudonymised type's surrogate is itself a fake name, e-mail, ... that the same engine finds
    again on re-scan; counting it would drop every output the generation-time scan pseudonymised.
    """
    skip = {"allow"} if count_pseudonyms else {"allow", "pseudonymize"}
    return sum(1 for f in findings if f.get("action") not in skip)


def decide(
    texts: Sequence[str],
    *,
    pii: Sequence[int],
    policy: CurationPolicy,
    finish_reasons: Sequence[str | None] | None = None,
    labels: Iterable[str] = (),
    prompt: PromptText | None = None,
    vectors: Callable[[Sequence[int]], np.ndarray] | None = None,
) -> list[str | None]:
    """The reason each text is dropped, or None when it is kept (the seeds play no part).

    ``finish_reasons`` (the engine's ``eos`` / ``stop`` / ``length`` per output; None for unknown, as in
    batches from before it was stored) lets ``policy.drop_unfinished`` drop outputs cut off at the token limit.
    ``labels``: the batch's label set (public schema); an output that is only a label's words is ``label_echo``.
    ``prompt``: the soft prompt's label prefix (public template, DP keywords); an output repeating it is
    ``prompt_echo``.
    ``vectors``: the L2-normalised sentence embeddings of the texts at the given indices, for
    ``policy.semantic_dup_cosine`` (called once, on the outputs every other filter kept).
    """
    echoes = label_echoes(labels)
    finish = list(finish_reasons) if finish_reasons is not None else [None] * len(texts)
    if not (len(texts) == len(pii) == len(finish)):
        raise ValueError("texts, pii and finish_reasons must have the same length")
    reasons: list[str | None] = []
    for text, p, fin in zip(texts, pii, finish, strict=True):
        if p > 0 and policy.output_pii_action == "drop":
            reasons.append(OUTPUT_PII)
        elif fin == "length" and policy.drop_unfinished:
            reasons.append(UNFINISHED)
        else:
            reason = quality_reason(text, policy)
            if reason is None and tuple(label_words(text)) in echoes:
                reason = LABEL_ECHO
            elif reason is None and prompt is not None and echoes_prompt(text, prompt):
                reason = PROMPT_ECHO
            reasons.append(reason)
    clean = [i for i, r in enumerate(reasons) if r is None]
    for local in exact_duplicates([texts[i] for i in clean]):
        reasons[clean[local]] = EXACT
    clean = [i for i, r in enumerate(reasons) if r is None]
    near = near_duplicates([texts[i] for i in clean], threshold=policy.near_dup_jaccard, num_perm=policy.minhash_perm)
    for local in near:
        reasons[clean[local]] = NEAR
    if policy.semantic_dup_cosine is not None:
        if vectors is None:
            raise ValueError("curation.semantic_dup_cosine is set: pass the outputs' sentence embeddings as vectors")
        clean = [i for i, r in enumerate(reasons) if r is None]
        for local in semantic_duplicates(vectors(clean), threshold=policy.semantic_dup_cosine):
            reasons[clean[local]] = SEMANTIC
    return reasons
