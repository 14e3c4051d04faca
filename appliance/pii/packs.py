"""Domain packs (``pii.packs``) merged into the ``pii`` section the engine and the pipeline use.

A pack (``policies/packs/NAME.yaml``, validated as :class:`appliance.policy.schema.PiiPack`) adds custom
recognizers, allow-list terms and patterns, context words and rules for its own entity types. The
policy's own settings win: a type the policy lists keeps the policy's rule.
"""

from __future__ import annotations

from appliance.policy.schema import PiiPolicy, load_pack


def effective(policy: PiiPolicy) -> PiiPolicy:
    """``policy`` with its packs merged in (and ``packs`` emptied, so merging twice changes nothing)."""
    if not policy.packs:
        return policy
    data = policy.model_dump(mode="json")
    for name in policy.packs:
        pack = load_pack(name).model_dump(mode="json")
        data["custom_recognizers"] += pack["custom_recognizers"]
        data["allow_list"] = list(dict.fromkeys([*data["allow_list"], *pack["allow_list"]]))
        data["allow_patterns"] = list(dict.fromkeys([*data["allow_patterns"], *pack["allow_patterns"]]))
        for entity, words in pack["context_words"].items():
            data["context_words"][entity] = list(dict.fromkeys([*data["context_words"].get(entity, []), *words]))
        for entity, rule in pack["entities"].items():
            data["entities"].setdefault(entity, rule)
    data["packs"] = []
    return PiiPolicy.model_validate(data)
