"""Drawing argument values for a function template: pools, numbers, enums, arrays and objects.

Every draw comes from the example's own random stream, in a fixed order, so an example is the
same whenever it is generated. Apart from the wording because a value is drawn once and then
said in many ways (see `wording`); the generator draws the calls first and words them after.
"""

from __future__ import annotations

import random
import re
import string
from functools import cache
from typing import Any

from recursa.fc.data import canonical, phrasing
from recursa.fc.data.dsl import Fn, Param
from recursa.fc.data.pools import COMPOSITES, POOLS

OPTIONAL_RATE = 0.45  # chance an optional parameter is mentioned (and passed)
_SCALARS = ("string", "integer", "float")
_TOKEN = re.compile(r"\{(\w+)(?:\|(lower|title))?\}|[#&^]")
_CHARACTERS = {"#": string.digits, "&": string.digits[1:], "^": string.ascii_uppercase}


def _draw_pool(rng: random.Random, pool: str) -> str:
    """A value of a plain pool, or a composite pool's template filled in."""
    if pool in POOLS:
        return rng.choice(POOLS[pool])
    parts = []
    for text, token, case in _steps(rng.choice(COMPOSITES[pool])):
        parts.append(text)
        if token:
            parts.append(_fill_token(rng, token, case))
    return "".join(parts)


@cache
def _steps(template: str) -> tuple[tuple[str, str, str], ...]:
    """A template as (text, token, case) steps: the text before a token ("#", "&", "^" or a pool
    name, "" at the end) and how to case the token's value ("lower", "title" or "")."""
    steps, start = [], 0
    for match in _TOKEN.finditer(template):
        steps.append((template[start:match.start()], match.group(1) or match.group(0), match.group(2) or ""))
        start = match.end()
    return (*steps, (template[start:], "", ""))


def _fill_token(rng: random.Random, token: str, case: str) -> str:
    """A random digit, non-zero digit, capital letter, or draw from the referenced pool (re-cased)."""
    if token in _CHARACTERS:
        return rng.choice(_CHARACTERS[token])
    value = _draw_pool(rng, token)
    if case == "lower":
        return value.lower()
    return phrasing.capitalize(value) if case == "title" else value


def _source(param: Param) -> Any:
    """What two string parameters share when they must not take the same value in one call."""
    return param.options or param.pool or param.derive


def _draw_string(rng: random.Random, param: Param) -> str:
    """An enum value, a canonical value of a derived kind, or a pool value."""
    if param.options:
        return rng.choice(param.options)[0]
    if param.derive:
        return canonical.KINDS[param.derive].draw(rng)
    assert param.pool is not None, f"string parameter {param.name!r} has no pool"  # `dsl.text` sets one
    return _draw_pool(rng, param.pool)


def _item(param: Param) -> Param:
    """The item template of an array parameter (`dsl.listing` always sets one)."""
    assert param.item is not None, f"array parameter {param.name!r} has no item template"
    return param.item


def _draw(rng: random.Random, param: Param, taken: set) -> Any:
    """A value for `param`; a string avoids values already `taken` from the same source."""
    if param.type == "boolean":
        return rng.random() < 0.5
    if param.type == "integer":
        return int(param.low) + param.step * rng.randint(0, int(param.high - param.low) // param.step)
    if param.type == "float":
        return round(rng.uniform(param.low, param.high), param.decimals) + 0.0
    if param.type == "array":
        return _draw_items(rng, _item(param), rng.randint(param.min_items, param.max_items))
    if param.type == "object":
        return {f.name: _draw(rng, f, set()) for f in param.fields if f.required or rng.random() < OPTIONAL_RATE}
    for _ in range(10):
        value = _draw_string(rng, param)
        if (_source(param), value) not in taken:
            break
    taken.add((_source(param), value))
    return value


def _draw_items(rng: random.Random, item: Param, count: int) -> list[Any]:
    """Up to `count` distinct values drawn like `item`."""
    values: list[Any] = []
    for _ in range(count * 5):
        value = _draw(rng, item, set())
        if value not in values:
            values.append(value)
        if len(values) == count:
            break
    return values


def _sample_args(rng: random.Random, fn: Fn) -> dict[str, Any]:
    """Arguments for one call: every required parameter, each optional one sometimes."""
    taken: set = set()
    return {p.name: _draw(rng, p, taken) for p in fn.params if p.required or rng.random() < OPTIONAL_RATE}


def _parallel_args(rng: random.Random, fn: Fn) -> list[dict[str, Any]]:
    """2-4 calls of `fn` sharing all arguments but one or two required scalars."""
    base = _sample_args(rng, fn)
    scalars = [p for p in fn.params if p.required and p.type in _SCALARS]
    vary = rng.sample(scalars, 2 if len(scalars) > 1 and rng.random() < 0.25 else 1)
    count = rng.choice((2, 2, 2, 3, 3, 4))
    calls, seen = [base], {tuple(base[p.name] for p in vary)}
    for _ in range(count * 10):
        call = dict(base)
        taken = {(_source(p), call[p.name]) for p in fn.params
                 if p not in vary and p.type == "string" and p.name in call}
        for p in vary:
            call[p.name] = _draw(rng, p, taken)
        signature = tuple(call[p.name] for p in vary)
        if signature not in seen:
            seen.add(signature)
            calls.append(call)
        if len(calls) == count:
            break
    return calls
