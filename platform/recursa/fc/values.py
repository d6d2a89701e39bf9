"""Where argument values sit in a query, and how copied text becomes a typed JSON value.

Numbers may be written in digits ("3.5", "1,200") or in words ("twenty five"); words are read
with text2num. Strings are found verbatim, then case-insensitively, always as whole words.
"""

from __future__ import annotations

import re
from typing import Any

from text_to_num import text2num

_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?![\d])")
_WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")
_MAX_NUMBER_WORDS = 6

Span = tuple[int, int]


_SIGN_WORDS = ("minus ", "negative ")
_HALF = " and a half"


def parse_number(text: str) -> float | None:
    """A number from digits or English words ("minus twelve", "six and a half"), or None."""
    cleaned = text.strip().replace(",", "")
    try:
        return float(cleaned)
    except ValueError:
        pass
    words = cleaned.lower()
    sign = -1.0 if words.startswith(_SIGN_WORDS) else 1.0
    if sign < 0:
        words = words.split(" ", 1)[1]
    half = 0.5 if words.endswith(_HALF) else 0.0
    words = words.removesuffix(_HALF)
    try:
        return sign * (float(text2num(words, "en")) + half)
    except (ValueError, TypeError):
        return None


def number_mentions(text: str) -> list[tuple[Span, float]]:
    """Every number written in `text` with its character span: digit runs, then word runs."""
    found = [((m.start(), m.end()), float(m.group().replace(",", ""))) for m in _NUMBER.finditer(text)]
    words = list(_WORD.finditer(text))
    i = 0
    while i < len(words):
        best = None
        for j in range(min(len(words), i + _MAX_NUMBER_WORDS) - 1, i - 1, -1):
            span = (words[i].start(), words[j].end())
            value = parse_number(text[span[0]:span[1]])
            if value is not None and _only_spaces_between(text, words, i, j):
                best = (span, value, j)
                break
        if best:
            found.append((best[0], best[1]))
            i = best[2] + 1
        else:
            i += 1
    return sorted(found)


def _only_spaces_between(text: str, words: list[re.Match], i: int, j: int) -> bool:
    return all(text[words[k].end():words[k + 1].start()].strip() in ("", "-") for k in range(i, j))


def locate_value(text: str, value: Any, taken: set[Span] | None = None) -> Span | None:
    """The character span of `value` in `text` (first unused occurrence), or None."""
    taken = taken or set()
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        for span, number in number_mentions(text):
            if span not in taken and abs(number - float(value)) < 1e-9:
                return span
        return None
    needle = str(value)
    if not needle:
        return None
    for haystack, probe in ((text, needle), (text.lower(), needle.lower())):
        start = haystack.find(probe)
        while start >= 0:
            span = (start, start + len(probe))
            if span not in taken and _whole_words(text, span):
                return span
            start = haystack.find(probe, start + 1)
    return None


def _whole_words(text: str, span: Span) -> bool:
    """Whether a span neither starts nor ends inside a word: "FR" is not in "from", and copied
    spans are widened to whole words when decoded."""
    start, end = span
    cuts_start = start > 0 and text[start - 1].isalnum() and text[start].isalnum()
    cuts_end = end < len(text) and text[end - 1].isalnum() and text[end].isalnum()
    return not (cuts_start or cuts_end)


def convert(text: str, param_type: str) -> Any:
    """Copied text as a value of the parameter's type; None when it does not parse."""
    text = text.strip()
    if param_type == "integer":
        number = parse_number(text)
        return int(number) if number is not None and float(number).is_integer() else None
    if param_type == "float":
        return parse_number(text)
    return text
