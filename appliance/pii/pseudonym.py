"""Consistent pseudonyms: the same value maps to the same fake value within a dataset.

The surrogate for ``(dataset, type, value)`` is drawn by Faker seeded with
``HMAC-SHA256(k_dataset, type || 0x00 || normalised value)``, where
``k_dataset = HMAC-SHA256(workspace key, "appliance/pseudonym/v1" || 0x00 || dataset)`` and the
workspace key is ``keys/pseudonym.key`` (32 random bytes, created by ``appliance init``). Without the
key a surrogate cannot be linked back to its value by trying candidates; with the key it can only be
recomputed, never inverted. Different datasets get unrelated surrogates.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path

from faker import Faker

from appliance.errors import ConfigError

KEY_FILE = "pseudonym.key"
_DOMAIN = b"appliance/pseudonym/v1\x00"

Generator = Callable[[Faker, str], str]


def _person(fake: Faker, value: str) -> str:
    return fake.first_name() if len(value.split()) == 1 else f"{fake.first_name()} {fake.last_name()}"


GENERATORS: dict[str, Generator] = {
    "PERSON": _person,
    "EMAIL_ADDRESS": lambda f, _v: f.safe_email(),
    "PHONE_NUMBER": lambda f, _v: f.phone_number(),
    "LOCATION": lambda f, _v: f.city(),
    "STREET_ADDRESS": lambda f, _v: f.street_address(),
    "ORGANIZATION": lambda f, _v: f.company(),
    "CREDIT_CARD": lambda f, _v: f.credit_card_number(),
    "IBAN_CODE": lambda f, _v: f.iban(),
    "IP_ADDRESS": lambda f, _v: f.ipv4_private(),
    "US_SSN": lambda f, _v: f.ssn(),
    "URL": lambda f, _v: f.url(),
    "DATE_TIME": lambda f, _v: f.date(),
    "NRP": lambda f, _v: f.country(),
}


def load_key(keys_dir: Path) -> bytes:
    """The workspace's pseudonym key; :class:`ConfigError` with the fix when it is missing."""
    path = keys_dir / KEY_FILE
    if not path.exists():
        raise ConfigError(f"pseudonym key {path} is missing — run `appliance init` to create it")
    key = path.read_bytes()
    if len(key) < 16:
        raise ConfigError(f"pseudonym key {path} is shorter than 16 bytes — restore it from backup")
    return key


def _normal(value: str) -> str:
    return " ".join(value.split()).casefold()


def _shape(digest: bytes, value: str) -> str:
    """Keep the value's shape: digits become digits; letters too unless the value is mostly an ID."""
    keep_letters = sum(c.isdigit() for c in value) >= 4
    stream = hashlib.shake_256(digest).digest(max(len(value), 1))
    out = []
    for c, b in zip(value, stream, strict=False):
        if c.isdigit():
            out.append(str(b % 10))
        elif c.isalpha() and c.isascii() and not keep_letters:
            letter = chr(ord("a") + b % 26)
            out.append(letter.upper() if c.isupper() else letter)
        else:
            out.append(c)
    return "".join(out)


def match_case(original: str, surrogate: str) -> str:
    """The surrogate in the original's letter case: lower case stays lower, ALL CAPS stays upper."""
    letters = [c for c in original if c.isalpha()]
    if not letters or original == surrogate:
        return surrogate
    if all(c.islower() for c in letters):
        return surrogate.lower()
    if all(c.isupper() for c in letters) and len(letters) > 1:
        return surrogate.upper()
    return surrogate


class Pseudonymizer:
    """Surrogates for one dataset under one workspace key; memoised per value."""

    def __init__(self, key: bytes, dataset: str, locale: str = "en_US") -> None:
        self._key = hmac.new(key, _DOMAIN + dataset.encode("utf-8"), hashlib.sha256).digest()
        self._fake = Faker(locale)
        self._memo: dict[tuple[str, str], str] = {}

    def surrogate(self, entity: str, value: str) -> str:
        """The fake value for ``value`` of type ``entity`` (never equal to the value itself)."""
        norm = _normal(value)
        memo_key = (entity, norm)
        hit = self._memo.get(memo_key)
        if hit is not None:
            return hit
        gen = GENERATORS.get(entity)
        out = value
        for attempt in range(8):
            digest = hmac.new(self._key, f"{entity}\x00{norm}\x00{attempt}".encode(), hashlib.sha256).digest()
            if gen is None:
                out = _shape(digest, value)
            else:
                self._fake.seed_instance(int.from_bytes(digest[:8], "big"))
                out = gen(self._fake, value)
            if _normal(out) != norm:
                break
        else:
            out = f"<{entity}>"  # no distinct surrogate exists (e.g. punctuation only): redact instead
        self._memo[memo_key] = out
        return out
