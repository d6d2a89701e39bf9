"""The small language the function catalogue is written in: parameter and function templates.

A parameter says how its values are drawn (a pool in `pools`, a numeric range, enum options) and
how a query mentions it: clause templates in which "{v}" is the value as said (with its unit, when
it has one). A function's verb phrases ("get the forecast") and noun phrases ("the forecast") may
inline a parameter's value as "{name}"; the first verb phrase never does. Alternatives are written
"a|b|c". Functions listed in `overlaps` could partly serve each other's requests, so the generator
never offers one as a wrong answer for the other. A derived parameter takes its values from a kind
in `canonical` instead: the query says "March 3rd, 2025" and the call passes "2025-03-03".

Apart from the catalogue because it is its grammar: the catalogue modules are data written with
these builders, and the generator reads every template through `Param` and `Fn`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Param:
    """A parameter template: its JSON type, where values come from and how queries mention it."""

    name: str
    type: str  # string, integer, float, boolean, array, object
    description: str
    clauses: tuple[str, ...] = ()
    required: bool = True
    default: Any = None
    pool: str | None = None
    derive: str | None = None  # a kind in canonical.KINDS: the value is passed canonical, said otherwise
    low: float = 0
    high: float = 0
    step: int = 1
    decimals: int = 1
    unit: str | None = None
    spoken: bool = True  # integers may be said in words
    options: tuple[tuple[str, tuple[str, ...]], ...] = ()  # enum value -> synonyms
    yes: tuple[str, ...] = ()
    no: tuple[str, ...] = ()
    item: Param | None = None
    fields: tuple[Param, ...] = ()
    min_items: int = 2
    max_items: int = 4

    def opt(self, default: Any = None) -> Param:
        """This parameter made optional, with `default`."""
        return replace(self, required=False, default=default)

    def named(self, name: str, description: str | None = None, clauses: str | None = None) -> Param:
        """This parameter under another name (and optionally description and clauses)."""
        return replace(self, name=name, description=description or self.description,
                       clauses=_alts(clauses) if clauses else self.clauses)


@dataclass(frozen=True)
class Fn:
    """A function template: name, imperative description, how to ask for it, parameters."""

    name: str
    description: str
    verbs: tuple[str, ...]
    params: tuple[Param, ...]
    nouns: tuple[str, ...] = ()
    ordered: bool = False  # clauses read well only in declaration order
    overlaps: tuple[str, ...] = ()


def _alts(text: str) -> tuple[str, ...]:
    return tuple(text.split("|")) if text else ()


def text(name: str, description: str, pool: str, clauses: str) -> Param:
    """A string drawn from `pool`."""
    return Param(name, "string", description, _alts(clauses), pool=pool)


def derived(name: str, description: str, kind: str, clauses: str) -> Param:
    """A string in the canonical format of `kind` (see `canonical.KINDS`), worded otherwise in the query."""
    return Param(name, "string", description, _alts(clauses), derive=kind)


def integer(name: str, description: str, low: int, high: int, clauses: str, *, unit: str | None = None,
            step: int = 1, spoken: bool = True) -> Param:
    """An integer in [low, high] on a grid of `step`."""
    return Param(name, "integer", description, _alts(clauses), low=low, high=high, step=step, unit=unit,
                 spoken=spoken)


def year(name: str, description: str, low: int, high: int, clauses: str) -> Param:
    """A calendar year, always said in digits."""
    return integer(name, description, low, high, clauses, spoken=False)


def number(name: str, description: str, low: float, high: float, clauses: str, *, unit: str | None = None,
           decimals: int = 1) -> Param:
    """A float in [low, high] rounded to `decimals`."""
    return Param(name, "float", description, _alts(clauses), low=low, high=high, decimals=decimals,
                 unit=unit)


def flag(name: str, description: str, yes: str, no: str) -> Param:
    """A boolean said by a clause for true and another for false."""
    return Param(name, "boolean", description, yes=_alts(yes), no=_alts(no))


def choice(name: str, description: str, options: dict[str, str], clauses: str) -> Param:
    """An enum string; each option maps to its synonyms ("" for none)."""
    return Param(name, "string", description, _alts(clauses),
                 options=tuple((value, _alts(synonyms)) for value, synonyms in options.items()))


def listing(name: str, description: str, item: Param, clauses: str, min_items: int = 2,
            max_items: int = 4) -> Param:
    """An array of distinct values drawn like `item`."""
    return Param(name, "array", description, _alts(clauses), item=item, min_items=min_items,
                 max_items=max_items)


def group(name: str, description: str, fields: tuple[Param, ...], clauses: str) -> Param:
    """An object whose fields are mentioned together ("{v}" is the joined field clauses)."""
    return Param(name, "object", description, _alts(clauses), fields=fields)


def fn(name: str, description: str, verbs: str, params: tuple[Param, ...], nouns: str = "", *,
       ordered: bool = False, overlaps: str = "") -> Fn:
    """A function template; `verbs`, `nouns` and `overlaps` are "|"-separated."""
    return Fn(name, description, _alts(verbs), params, _alts(nouns), ordered, _alts(overlaps))
