"""Recognizers declared in the policy: regex patterns with context words, and deny-lists.

Each ``pii.custom_recognizers`` entry becomes one or two Presidio ``PatternRecognizer``s (patterns;
deny-list); ``pii.context_words`` extends the context of the predefined recognizers of a type.
"""

from __future__ import annotations

from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerRegistry

from appliance.pii.builtin import make
from appliance.policy.schema import CustomRecognizer, PiiPolicy

LANGUAGE = "en"


def custom_recognizers(spec: CustomRecognizer) -> list[EntityRecognizer]:
    """Presidio recognizers for one policy entry."""
    out: list[EntityRecognizer] = []
    base = f"policy_{spec.entity.lower()}"
    if spec.patterns:
        out.append(
            PatternRecognizer(
                supported_entity=spec.entity,
                name=f"{base}_patterns",
                supported_language=LANGUAGE,
                patterns=[Pattern(p.name, p.regex, p.score) for p in spec.patterns],
                context=list(spec.context) or None,  # type: ignore[arg-type]  # Presidio: List[str] = None
            )
        )
    if spec.deny_list:
        out.append(
            PatternRecognizer(
                supported_entity=spec.entity,
                name=f"{base}_deny_list",
                supported_language=LANGUAGE,
                deny_list=list(spec.deny_list),
                context=list(spec.context) or None,  # type: ignore[arg-type]  # Presidio: List[str] = None
            )
        )
    return out


def apply_policy(registry: RecognizerRegistry, policy: PiiPolicy) -> None:
    """Add the policy's built-in and custom recognizers and context words to ``registry``."""
    for name in policy.builtin_recognizers:
        registry.add_recognizer(make(name))
    for spec in policy.custom_recognizers:
        for rec in custom_recognizers(spec):
            registry.add_recognizer(rec)
    for entity, words in policy.context_words.items():
        for rec in registry.recognizers:
            if entity in rec.supported_entities:
                rec.context = list(dict.fromkeys([*(rec.context or []), *words]))
