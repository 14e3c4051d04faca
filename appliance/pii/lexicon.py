"""Word lists the name rules consult, built once per process (pure lookups, no model).

* names — first names and surnames from Faker's person providers (MIT licence), case-folded: every entry of
  its English locales, and the entries of other Latin-script locales that are not common English words.
* common words — English words with a Zipf frequency of at least 4 (about once per 100,000 words) in
  ``wordfreq`` (code Apache-2.0, word data CC BY-SA 4.0; read from the installed package, never downloaded).
  Rarer words (most surnames: "dubois" 3.2, "patel" 3.5) are not common.
* everyday names — names that are first of all ordinary words ("will", "may", "hope", "date", "brown"):
  Faker's English lorem word list, spaCy's stop words, calendar words, words as frequent as "may" (Zipf
  5.5), and surnames that are not first names and are common words.

A capitalised common word that is no name at all ("Convention", "Court", "Review") is vocabulary; a name
that is not an everyday word ("stephanie", "miller", "james") may be a name in any letter case.
"""

from __future__ import annotations

import importlib
import importlib.util
from bisect import bisect_left
from functools import cache
from pathlib import Path

ENGLISH_LOCALES = ("en_US", "en_GB", "en_IE", "en_IN", "en_NZ", "en_KE", "en_NG", "en_PK")
OTHER_LOCALES = ("de_DE", "fr_FR", "es_ES", "es_MX", "it_IT", "pt_BR", "nl_NL", "pl_PL", "tr_TR", "sv_SE")
COMMON_ZIPF = 4.0  # a word at least this frequent in English is a common word
KNOWN_ZIPF = 2.5  # a word at least this frequent is an English word, even if a rare one
EVERYDAY_ZIPF = 5.5  # a name this frequent as a word ("will", "may", "way") is read as the word
TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam", "mme", "herr", "frau", "dame"})

CALENDAR = frozenset(
    {
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february",
        "march", "april", "may", "june", "july", "august", "september", "october", "november", "december",
    }
)  # fmt: skip


def _locale_names(locale: str, prefix: str) -> set[str]:
    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    out: set[str] = set()
    for attr in dir(provider):
        if attr.startswith(prefix):
            value = getattr(provider, attr)
            if isinstance(value, dict | tuple | list | set | frozenset):
                out.update(str(v).casefold() for v in value)
    return {w for w in out if w.replace("'", "").replace("-", "").isalpha() and len(w) > 1}


@cache
def _names(prefix: str) -> frozenset[str]:
    out: set[str] = set()
    for locale in ENGLISH_LOCALES:
        out |= _locale_names(locale, prefix)
    common = common_words()
    for locale in OTHER_LOCALES:
        out |= {w for w in _locale_names(locale, prefix) if w not in common}
    return frozenset(out)


def first_names() -> frozenset[str]:
    return _names("first_names")


@cache
def names() -> frozenset[str]:
    """Case-folded first names and surnames."""
    return first_names() | _names("last_names")


@cache
def common_words() -> frozenset[str]:
    """English words with a Zipf frequency of at least :data:`COMMON_ZIPF` (wordfreq, case-folded)."""
    from wordfreq import top_n_list, zipf_frequency

    ranked = top_n_list("en", 50_000)  # most frequent first: find where the frequency drops below the bar
    cut = bisect_left(ranked, True, key=lambda w: zipf_frequency(w, "en") < COMMON_ZIPF)
    return frozenset(ranked[:cut])


@cache
def stop_words() -> frozenset[str]:
    """spaCy's English stop words, read from spaCy's own list (``spacy/lang/en/stop_words.py``) without
    importing spaCy itself (seconds, and it pulls in its whole pipeline machinery): the pure PII modules that
    need the list stay light."""
    spec = importlib.util.find_spec("spacy")  # locates the package; does not import it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("spaCy is not installed: `make install` (the PII stage needs it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "lang" / "en" / "stop_words.py"
    loader = importlib.util.spec_from_file_location("_appliance_spacy_en_stop_words", path)
    if loader is None or loader.loader is None:
        raise ImportError(f"spaCy's English stop-word list is missing at {path}")
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return frozenset(module.STOP_WORDS)


@cache
def everyday() -> frozenset[str]:
    """Name-lexicon words that are first of all ordinary English words."""
    from faker.providers.lorem.en_US import Provider as Lorem
    from wordfreq import top_n_list, zipf_frequency

    frequent = {w for w in top_n_list("en", 2_000) if zipf_frequency(w, "en") >= EVERYDAY_ZIPF}
    surnames_only = (names() - first_names()) & common_words()
    words = {w.casefold() for w in Lorem.word_list} | stop_words() | CALENDAR | frequent | surnames_only
    return frozenset(words & names())


def is_name(word: str) -> bool:
    """A lexicon name that is not first of all an everyday word."""
    w = word.casefold()
    return w in names() and w not in everyday()


# currency names, singular and plural: capitalised in prose ("US Dollars and Euros"), and spaCy reads one as a
# PERSON ("the exchange rate between US Dollars and Euros" pseudonymised "Euros" in a demo output)
CURRENCIES = frozenset(
    {
        "euro", "euros", "dollar", "dollars", "pound", "pounds", "sterling", "yen", "yuan", "renminbi", "rupee",
        "rupees", "peso", "pesos", "franc", "francs", "krona", "kronor", "krone", "kroner", "ruble", "rubles",
        "rouble", "roubles", "zloty", "zlotys", "forint", "forints", "koruna", "shekel", "shekels", "dirham",
        "dirhams", "riyal", "riyals", "baht", "ringgit", "rupiah", "dinar", "dinars", "hryvnia", "lev", "leu",
        "lei", "bitcoin", "bitcoins", "cent", "cents", "pence",
    }
)  # fmt: skip


def is_vocabulary(word: str) -> bool:
    """A common English word that is no name at all, a calendar word, a title, or a currency that is no name."""
    w = word.casefold()
    return w in CALENDAR or w in TITLES or ((w in CURRENCIES or w in common_words()) and w not in names())


@cache
def is_known(word: str) -> bool:
    """A word English text uses at all (Zipf >= :data:`KNOWN_ZIPF`): "prescribed", "addendum" — unlike most
    foreign surnames and made-up names ("lindqvist", "koppány")."""
    from wordfreq import zipf_frequency

    return zipf_frequency(word.casefold(), "en") >= KNOWN_ZIPF


def is_rare(word: str) -> bool:
    """Neither a common word nor a lexicon name: unexplained (a foreign name, a typo, a product)."""
    w = word.casefold()
    return w not in common_words() and w not in names()
