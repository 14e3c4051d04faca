"""Whether a text is written in lower case, as speech-recognition transcripts are (pure, no Presidio).

The name recognizer (:mod:`appliance.pii.names`), the precision pass and name propagation read names
differently in such a text, where a capital letter is no evidence of a name.
"""

from __future__ import annotations

import regex

LOWERCASE_SHARE = 0.05  # a text with at most this share of capitalised words is "written in lower case"
_UPPER_START = regex.compile(r"\b\p{Lu}")
_WORDS_ANY = regex.compile(r"\b\p{L}")


def written_in_lower_case(text: str) -> bool:
    """At most :data:`LOWERCASE_SHARE` of the text's words (and at least three words) start with a capital."""
    n = len(_WORDS_ANY.findall(text))
    return n >= 3 and len(_UPPER_START.findall(text)) <= LOWERCASE_SHARE * n
