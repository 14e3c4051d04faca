"""Policy stage: validated YAML files that decide what every other stage may do."""

from appliance.policy.loader import (
    default_policy_path,
    load_effective,
    load_policy_file,
    parse_policy,
    policy_hash,
)
from appliance.policy.schema import PiiAction, Policy

__all__ = [
    "PiiAction",
    "Policy",
    "default_policy_path",
    "load_effective",
    "load_policy_file",
    "parse_policy",
    "policy_hash",
]
