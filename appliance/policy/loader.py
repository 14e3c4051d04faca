"""Load and validate policy files; hash the effective policy.

The effective policy is the workspace's ``policy.yaml`` if it has one, else the shipped
``policies/default.yaml``. Its SHA-256 (over canonical JSON of the validated model, defaults
included) goes into the audit event of every run.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from appliance.audit.chain import canonical_json
from appliance.config import Workspace, shipped_file
from appliance.errors import BadInput, ConfigError
from appliance.policy.schema import Policy


def default_policy_path() -> Path:
    return shipped_file("policies/default.yaml")


def _describe(err: ErrorDetails) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{loc}: unknown key (check spelling; see `appliance policy show` for the allowed keys)"
    allowed = ""
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        allowed = f"; allowed: {ctx['expected']}"
    got = err.get("input")
    got_s = f" (got {got!r})" if isinstance(got, str | int | float | bool) else ""
    return f"{loc}: {err['msg']}{allowed}{got_s}"


def parse_policy(data: Any, source: str) -> Policy:
    """Validate a parsed YAML/JSON document; raise :class:`ConfigError` naming file and key path."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a policy must be a mapping of sections (pii, privacy, gate, ...)")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"invalid policy {source}: {problems}") from None


def load_policy_file(path: Path) -> Policy:
    if not path.exists():
        raise ConfigError(f"policy file {path} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"invalid policy {path}: not valid YAML{where}") from None
    return parse_policy(data, str(path))


def policy_hash(policy: Policy) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(policy.model_dump(mode="json")).encode()).hexdigest()


def effective_policy_path(ws: Workspace) -> Path:
    return ws.policy_path if ws.policy_path.exists() else default_policy_path()


def load_effective(ws: Workspace) -> tuple[Policy, str, Path]:
    """The effective policy, its hash and the file it came from."""
    path = effective_policy_path(ws)
    pol = load_policy_file(path)
    return pol, policy_hash(pol), path


def set_numbers(path: Path, values: Mapping[str, float | int], *, header: str) -> None:
    """Set numeric keys of a policy YAML file in place (see :func:`set_values`)."""
    set_values(path, values, header=header)


# a key's value on its line: a double-quoted string, a flow list, or a plain scalar; a trailing comment is kept
_VALUE = r'(?:"(?:[^"\\\n]|\\.)*"|\[[^\]\n]*\]|[^#\n]*?)'


def set_values(path: Path, values: Mapping[str, bool | float | int | str | list[str]], *, header: str) -> None:
    """Set keys of a policy YAML file in place, its comments and layout kept, under a ``header`` comment.

    Each key (e.g. ``holdout_fraction``, or ``dp_selection.enabled`` inside the ``dp_selection:`` block) must
    occur on exactly one line of the file (of its block); values are written as
    JSON, which YAML reads as the same number, string or list. The result is not validated here — the next
    :class:`~appliance.context.Context` that opens the workspace does that.
    """
    text = path.read_text(encoding="utf-8")
    for key, value in values.items():
        plain = isinstance(value, int | float) and not isinstance(value, bool)
        rendered = repr(value) if plain else json.dumps(value, ensure_ascii=False)
        *parents, leaf = key.split(".")
        start, end = _block(text, parents, path, key)
        pattern = rf"(?m)^(\s+{re.escape(leaf)}:)[ \t]*{_VALUE}([ \t]*#.*)?$"

        def put(m: re.Match[str], v: str = rendered) -> str:
            return f"{m.group(1)} {v}{m.group(2) or ''}"

        block, n = re.subn(pattern, put, text[start:end])
        if n != 1:
            raise BadInput(f"{path}: expected one {key} line to set, found {n}")
        text = text[:start] + block + text[end:]
    path.write_text(header.rstrip("\n") + "\n" + text, encoding="utf-8")


def _block(text: str, parents: list[str], path: Path, key: str) -> tuple[int, int]:
    """The span of ``text`` under the nested mapping keys ``parents`` (each an indented ``name:`` line, the
    block ending at the next line indented no deeper); the whole text when there are none."""
    start, end = 0, len(text)
    for name in parents:
        m = re.compile(rf"(?m)^([ \t]*){re.escape(name)}:[ \t]*(#.*)?$").search(text, start, end)
        if m is None:
            raise BadInput(f"{path}: expected a {name}: block for {key}")
        indent = len(m.group(1))
        start = m.end()
        nxt = re.compile(rf"(?m)^[ \t]{{0,{indent}}}[^ \t\n#]").search(text, start, end)
        end = nxt.start() if nxt else end
    return start, end
