"""Quotes and parentheses a text closes without opening them: pure functions read by two stages.

Generation cuts such a closer at a text's end (:func:`without_unopened_closer`: the model closing a record it
imagined quoted, or the label prefix's "(keywords)" parenthetical); curation drops a text that has one anywhere
else (:func:`appliance.curate.filters.garbled_punctuation`). Neither stage owns the other, so the rule lives here.
"""

from __future__ import annotations

import re

# emoticons close or open a parenthesis that prose does not pair: ":)", ";-)", ":((", "=)"
_EMOTICON = r"[:;=]-?[()]+"
_PAREN_OR_EMOTICON = re.compile(rf"{_EMOTICON}|[()]")


def first_unopened_paren(text: str) -> int | None:
    """The index of the first ")" in ``text`` that closes a "(" the text never opened (emoticons such as ":)"
    aside), or None: one left-to-right pass."""
    depth = 0
    for m in _PAREN_OR_EMOTICON.finditer(text):
        mark = m.group()
        if mark == "(":
            depth += 1
        elif mark == ")":
            if depth == 0:
                return m.start()
            depth -= 1
    return None


def closes_unopened_paren(text: str) -> bool:
    """True when a ")" closes a "(" that ``text`` never opened (emoticons such as ":)" aside): the model closing
    the label prefix's "(keywords)" parenthetical ('Can someone help me with a top up?)' — 27 of 480 outputs of
    one demo draw, against 6 of BANKING77's 10,003 training queries with any ")"; bench/RESULTS.md, session 20)."""
    return first_unopened_paren(text) is not None


def without_unopened_closer(text: str) -> str:
    """``text`` without a closing double quote or parenthesis at its end that it never opened: the model closing a
    record it imagined quoted ('What's wrong with my card?"' — 104 of 480 outputs of one demo draw, where
    curation's odd-quote check then dropped good texts; bench/RESULTS.md, session 16) or the label prefix's
    parenthetical, when that closer is the text's only unopened one. A text whose quotes and parentheses pair up
    is kept."""
    body = text.rstrip()
    if body.endswith('"') and body.count('"') % 2 == 1:
        return body[:-1].rstrip()
    if body.endswith(")") and first_unopened_paren(body) == len(body) - 1:
        return body[:-1].rstrip()
    return text
