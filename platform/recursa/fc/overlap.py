"""Word overlap between a query and the schema, as small categorical features.

Learned piece embeddings only know the words of the training corpus; whether a query word also
names a function or a parameter is a signal that holds for any vocabulary. Each slot gets one
match id: query tokens say whether their word occurs in a parameter's name and in a function's
name or description; function and parameter slots say what share of the content words of their
name, and of their description, the query contains (none, under half, half or more, all).
"""

from __future__ import annotations

import re
from functools import lru_cache

from recursa.fc.values import Span

_WORD = re.compile(r"[A-Za-z]+|\d+")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
STOPWORDS = frozenset({
    "a", "an", "the", "of", "for", "to", "in", "on", "at", "by", "with", "from", "and", "or", "is", "are", "be", "it",
    "this", "that", "as", "into", "about", "me", "my", "i", "you", "your", "please", "can", "could", "would", "will",
    "should", "do", "does", "get", "set", "given", "use", "using", "which", "what", "when", "where", "who", "how",
    "its"
})
SHARE_BUCKETS = 4
QUERY_MATCHES = 4  # query token: (in a parameter name) x (in a function name or description)
SCHEMA_MATCHES = SHARE_BUCKETS * SHARE_BUCKETS  # (share of name words) x (share of description words)
QUERY_BASE, FUNCTION_BASE = 1, 1 + QUERY_MATCHES
PARAM_BASE = FUNCTION_BASE + SCHEMA_MATCHES
NUM_MATCH_IDS = PARAM_BASE + SCHEMA_MATCHES  # id 0: slots without a match feature


def normalize(word: str) -> str:
    """Lower case with a plural or verb -s dropped, so "prices" matches "price"."""
    word = word.lower()
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


@lru_cache(maxsize=65_536)
def content_words(text: str) -> frozenset[str]:
    """Normalised words of an identifier or sentence, stopwords left out (cached: schemas repeat
    across examples, and each name and description is read twice per example)."""
    spaced = _CAMEL.sub(r"\1 \2", text)
    return frozenset(w for w in map(normalize, _WORD.findall(spaced)) if w not in STOPWORDS)


def word_spans(text: str) -> list[tuple[Span, str]]:
    """Each word of `text` (letters or digits) with its character span, normalised."""
    return [((m.start(), m.end()), normalize(m.group())) for m in _WORD.finditer(text)]


def query_match_ids(spans: list[tuple[Span, str]], offsets: list[Span], param_words: set[str],
                    function_words: set[str]) -> list[int]:
    """Per query token (character `offsets`): the match id of the words of `spans` (`word_spans`
    of the query) it overlaps."""
    out = []
    for start, end in offsets:
        words = [w for (a, b), w in spans if a < end and b > start and w not in STOPWORDS]
        in_param = any(w in param_words for w in words)
        in_function = any(w in function_words for w in words)
        out.append(QUERY_BASE + int(in_param) + 2 * int(in_function))
    return out


def share_bucket(words: frozenset[str], query_words: set[str]) -> int:
    """0 when none of `words` (or no words at all) are in the query, 1 under half, 2 half or more, 3 all."""
    if not words:
        return 0
    share = len(words & query_words) / len(words)
    return 0 if share == 0 else 1 if share < 0.5 else 2 if share < 1 else 3


def schema_match_id(base: int, name: str, description: str, query_words: set[str]) -> int:
    """Match id of a function (base FUNCTION_BASE) or parameter (PARAM_BASE) slot."""
    return base + share_bucket(content_words(name), query_words) + \
        SHARE_BUCKETS * share_bucket(content_words(description), query_words)
