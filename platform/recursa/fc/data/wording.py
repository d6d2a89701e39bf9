"""Wording a request: how a query says the values drawn for one or several calls.

A value is said by its parameter's clause templates ("in {v}"), inlined into a verb or noun
phrase, or grouped for parallel calls ("for Paris and for Rome"); the sentence frames come from
`phrasing`. Apart from the drawing and from the example building because this is the part that
decides what a query reads like, and the part most often tuned.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from functools import cache
from typing import Any

from recursa.fc.data import canonical, phrasing
from recursa.fc.data.catalogue.framing import CONTEXTS
from recursa.fc.data.drawing import _item
from recursa.fc.data.dsl import Fn, Param

FRONT_RATE = 0.12  # chance a clause is moved before the request
CONTEXT_RATE = 0.15  # chance a request opens with a sentence of context
FRONTABLE = ("in ", "on ", "for ", "at ", "from ", "during ", "over ", "within ", "starting ")
_SLOT = re.compile(r"\{(\w+)\}")


def _say(rng: random.Random, param: Param, value: Any) -> str:
    """A value as the query says it, without its clause."""
    if param.derive:
        return canonical.KINDS[param.derive].say(rng, value)
    if param.options:
        synonyms = next(s for v, s in param.options if v == value)
        return rng.choice(synonyms) if synonyms and rng.random() < 0.5 else value
    if param.type == "array":
        return phrasing.join_list(rng, [_say(rng, _item(param), v) for v in value])
    if param.type == "object":
        return phrasing.join_list(rng, [_clause(rng, f, value[f.name]) for f in param.fields if f.name in value])
    if param.type in ("integer", "float"):
        return phrasing.say_quantity(rng, value, param.unit, param.spoken)
    return value


def _clause(rng: random.Random, param: Param, value: Any, template: str | None = None) -> str:
    """The clause that mentions one argument ("in Paris", "for the next 3 days", "including tax")."""
    if param.type == "boolean":
        return rng.choice(param.yes if value else param.no)
    return (template or rng.choice(param.clauses)).replace("{v}", _say(rng, param, value))


@cache
def _slots(phrase: str) -> frozenset[str]:
    """Names of the parameters a phrase inlines."""
    return frozenset(_SLOT.findall(phrase))


def _phrase(rng: random.Random, fn: Fn, inlinable: Iterable[str], allow_noun: bool) -> tuple[str, bool]:
    """A verb or noun phrase whose inline slots are all `inlinable`, and whether it is a noun."""
    allowed = set(inlinable)
    if allow_noun and fn.nouns and rng.random() < 0.35:
        nouns = [n for n in fn.nouns if _slots(n) <= allowed]
        if nouns:
            return rng.choice(nouns), True
    return rng.choice([v for v in fn.verbs if _slots(v) <= allowed]), False


def _inline(rng: random.Random, fn: Fn, phrase: str, args: dict[str, Any]) -> str:
    """`phrase` with its slots replaced by the values said aloud."""
    params = {p.name: p for p in fn.params}
    return _SLOT.sub(lambda m: _say(rng, params[m.group(1)], args[m.group(1)]), phrase)


def _clauses(rng: random.Random, fn: Fn, args: dict[str, Any], skip: frozenset[str]) -> list[tuple[str, bool]]:
    """Clauses for the arguments not inlined, each with whether it may open the sentence."""
    params = [p for p in fn.params if p.name in args and p.name not in skip]
    if not fn.ordered and rng.random() < 0.5:
        rng.shuffle(params)
    clauses = []
    for p in params:
        template = rng.choice(p.clauses) if p.clauses else None
        frontable = not fn.ordered and template is not None and template.startswith(FRONTABLE)
        clauses.append((_clause(rng, p, args[p.name], template), frontable))
    return clauses


def _body(rng: random.Random, texts: list[str]) -> str:
    """Clauses joined into the tail of a request."""
    return (", " if rng.random() < 0.15 else " ").join(texts)


def _context(rng: random.Random, domain: str | None) -> str:
    """Sometimes a sentence of context from the domain or a general one, else ""."""
    if rng.random() >= CONTEXT_RATE:
        return ""
    own = CONTEXTS.get(domain, ()) if domain else ()
    return rng.choice(own + phrasing.CONTEXTS)


def _call_request(rng: random.Random, domain: str, fn: Fn, args: dict[str, Any]) -> str:
    """A complete request for one call."""
    phrase, noun = _phrase(rng, fn, args, allow_noun=True)
    clauses = _clauses(rng, fn, args, _slots(phrase))
    front = ""
    frontable = [c for c in clauses if c[1]]
    if frontable and rng.random() < FRONT_RATE:
        chosen = rng.choice(frontable)
        clauses.remove(chosen)
        front = chosen[0]
    body = _body(rng, [text for text, _ in clauses])
    return phrasing.request(rng, _inline(rng, fn, phrase, args), body, noun=noun, front=front,
                            context=_context(rng, domain))


def _call_phrase(rng: random.Random, fn: Fn, args: dict[str, Any]) -> str:
    """A verb phrase with its clauses, to chain with other requests."""
    phrase, _ = _phrase(rng, fn, args, allow_noun=False)
    body = _body(rng, [text for text, _ in _clauses(rng, fn, args, _slots(phrase))])
    return _inline(rng, fn, phrase, args) + (f" {body}" if body else "")


def _parallel_phrase(rng: random.Random, fn: Fn, calls: list[dict[str, Any]],
                     allow_noun: bool) -> tuple[str, bool, str]:
    """Phrase, noun flag and body for several calls of one function ("for Paris and for Rome")."""
    first = calls[0]
    vary = [p for p in fn.params if any(c.get(p.name) != first.get(p.name) for c in calls)]
    varying = {p.name for p in vary}
    shared = {k: v for k, v in first.items() if k not in varying}
    phrase, noun = _phrase(rng, fn, shared, allow_noun)
    shared_texts = [text for text, _ in _clauses(rng, fn, shared, _slots(phrase))]
    templates = {p.name: rng.choice(p.clauses) for p in vary}
    groups = [" ".join(_clause(rng, p, call[p.name], templates[p.name]) for p in vary) for call in calls]
    parts = [_body(rng, shared_texts)] if shared_texts else []
    position = len(parts) if fn.ordered else rng.randrange(len(parts) + 1)
    parts.insert(position, phrasing.join_groups(rng, groups))
    return _inline(rng, fn, phrase, shared), noun, " ".join(parts)
