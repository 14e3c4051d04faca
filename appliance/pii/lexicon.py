"""Word lists the name rules consult, built once per process (pure lookups, no model).

* ``NAMES`` — first names and surnames from Faker's English-locale person providers (MIT licence), case-folded.
* ``COMMON`` — the most frequent English words from ``wordfreq`` (code Apache-2.0, word data CC BY-SA 4.0;
  the package is a dependency, its data is read from the installed package, never downloaded).
* ``EVERYDAY`` — names that are first of all ordinary words ("will", "may", "hope", "young"): Faker's own
  English lorem word list, spaCy's stop words, calendar words and the few hundred most frequent words.

A capitalised word that is a common word and not a name ("Convention", "Court", "Review") is vocabulary;
a name lexicon entry that is not everyday ("stephanie", "miller", "james") may be a name in any case.
"""

from __future__ import annotations

import importlib
from functools import cache

NAME_LOCALES = ("en_US", "en_GB", "en_IE", "en_IN", "en_NZ")
COMMON_WORDS = 30_000  # wordfreq's top-n English words (Zipf frequency >= about 3.1)
EVERYDAY_ZIPF = 5.5  # a name this frequent as a word ("will", "may", "way") is read as the word

CALENDAR = frozenset(
    {
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february",
        "march", "april", "may", "june", "july", "august", "september", "october", "november", "december",
    }
)  # fmt: skip


@cache
def names() -> frozenset[str]:
    """Case-folded first names and surnames (Faker's English locales)."""
    out: set[str] = set()
    for locale in NAME_LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for attr in dir(provider):
            if attr.startswith(("first_names", "last_names")):
                value = getattr(provider, attr)
                if isinstance(value, dict | tuple | list | set | frozenset):
                    out.update(str(v).casefold() for v in value)
    return frozenset(w for w in out if w.isalpha() and len(w) > 1)


@cache
def common_words() -> frozenset[str]:
    """The most frequent English words (wordfreq, case-folded)."""
    from wordfreq import top_n_list

    return frozenset(top_n_list("en", COMMON_WORDS))


@cache
def everyday() -> frozenset[str]:
    """Name-lexicon words that are first of all ordinary English words."""
    from faker.providers.lorem.en_US import Provider as Lorem
    from spacy.lang.en.stop_words import STOP_WORDS
    from wordfreq import top_n_list, zipf_frequency

    frequent = {w for w in top_n_list("en", 2_000) if zipf_frequency(w, "en") >= EVERYDAY_ZIPF}
    words = {w.casefold() for w in Lorem.word_list} | set(STOP_WORDS) | CALENDAR | frequent
    return frozenset(words & names())


def is_name(word: str) -> bool:
    """A lexicon name that is not first of all an everyday word."""
    w = word.casefold()
    return w in names() and w not in everyday()


def is_vocabulary(word: str) -> bool:
    """A common English word that is not a (non-everyday) name, or a calendar word."""
    w = word.casefold()
    return w in CALENDAR or (w in common_words() and not is_name(w))


def is_rare(word: str) -> bool:
    """Neither a common word nor a lexicon name: unexplained (a foreign name, a typo, a product)."""
    w = word.casefold()
    return w not in common_words() and w not in names()
