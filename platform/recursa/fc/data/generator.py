"""Seeded, deterministic function-calling examples over the function catalogue (`catalogue`).

Each example draws from its own random stream keyed by (seed, index), so example i is the same
whatever n is, ids are stable, and a stream of any length needs little memory. An example first
picks its category (shares in CATEGORY_SHARES), which says what its calls look like:

- simple: the only function offered is called once;
- multiple: one call, the function hidden among distractors (often same-domain near misses);
- parallel: one function called several times with different arguments (with or without
  distractors);
- parallel_multiple: several different functions called from one request;
- irrelevance: no offered function fits the request (a same-domain near miss, other domains'
  functions, or an off-topic request), so there are no calls.

Every argument is recoverable from the query: numbers in digits or words, booleans as phrases,
enum values verbatim or as a listed synonym, other strings verbatim, except derived ones. A
derived argument (see `canonical`) is passed in a canonical format the parameter's description
states, and the query words it otherwise: "March 3rd, 2025" for "2025-03-03", "7 pm" for "19:00",
"Austin, Texas" for "Austin, TX", "euros" for "EUR". A derived value is never written in its
query as a word of its own: an example whose query happens to contain one is drawn again.
Optional arguments the query leaves out are left out of the call. Function names come in
snake_case, camelCase and dotted styles, and argument names follow the style. FunctionSpec
objects are cached and shared between examples: treat them as read-only.

The values of a call are drawn in `drawing` and said in `wording`; this module picks which
functions to call and to offer, turns them into schema objects, and is the public API.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from recursa.fc.data import canonical, phrasing
from recursa.fc.data.catalogue import DOMAINS
from recursa.fc.data.catalogue.framing import OFF_TOPIC
from recursa.fc.data.drawing import _SCALARS, _item, _parallel_args, _sample_args
from recursa.fc.data.dsl import Fn, Param
from recursa.fc.data.schema import FCExample
from recursa.fc.data.wording import _call_phrase, _call_request, _context, _parallel_phrase
from recursa.tools.schema import FunctionCall, FunctionSpec, ParamSpec

CATEGORY_SHARES: dict[str, float] = {
    "simple": 0.15, "multiple": 0.45, "parallel": 0.15, "parallel_multiple": 0.10, "irrelevance": 0.15,
}
MAX_FUNCTIONS = 6
NAME_STYLES: dict[str, float] = {"snake": 0.45, "camel": 0.2, "dotted": 0.25, "dotted_camel": 0.1}
NEAR_MISS_RATE = 0.55  # chance a distractor comes from a target's own domain
DESCRIPTION_VARIANTS = 3
MAX_ATTEMPTS = 8  # draws of an example before one whose query writes out a derived value is kept

_ENTRIES: tuple[tuple[str, Fn], ...] = tuple((d, f) for d, fns in DOMAINS.items() for f in fns)
_BY_DOMAIN: dict[str, tuple[int, ...]] = {
    d: tuple(i for i, (domain, _) in enumerate(_ENTRIES) if domain == d) for d in DOMAINS
}
_INDEX = {f.name: i for i, (_, f) in enumerate(_ENTRIES)}
_CLASHES: dict[int, frozenset[int]] = {
    i: frozenset({_INDEX[o] for o in f.overlaps}
                 | {j for j, (_, g) in enumerate(_ENTRIES) if f.name in g.overlaps})
    for i, (_, f) in enumerate(_ENTRIES)
}
_PARALLEL_OK: tuple[int, ...] = tuple(
    i for i, (_, f) in enumerate(_ENTRIES) if any(p.required and p.type in _SCALARS for p in f.params)
)

# What a category builder returns: the query, catalogue indexes offered, and (index, arguments) calls.
Built = tuple[str, list[int], list[tuple[int, dict[str, Any]]]]


# --- offering functions --------------------------------------------------------------------------

def _compatible(candidate: int, targets: list[int]) -> bool:
    """Whether `candidate` is neither a target nor able to serve a target's request."""
    return all(candidate != t and candidate not in _CLASHES[t] for t in targets)


def _distractors(rng: random.Random, targets: list[int], count: int, near_miss_rate: float = NEAR_MISS_RATE,
                 same_domain: bool = True) -> list[int]:
    """Up to `count` functions that do not fit the targets' requests, often from their domains."""
    domains = {_ENTRIES[t][0] for t in targets}
    siblings = [j for d in sorted(domains) for j in _BY_DOMAIN[d]]
    chosen: list[int] = []
    for _ in range(count * 10):
        if len(chosen) == count:
            break
        near = siblings and rng.random() < near_miss_rate
        j = rng.choice(siblings) if near else rng.randrange(len(_ENTRIES))
        if j in chosen or not _compatible(j, targets) or (not same_domain and _ENTRIES[j][0] in domains):
            continue
        chosen.append(j)
    return chosen


def _simple(rng: random.Random) -> Built:
    """One function, offered alone and called once."""
    target = rng.randrange(len(_ENTRIES))
    domain, fn = _ENTRIES[target]
    args = _sample_args(rng, fn)
    return _call_request(rng, domain, fn, args), [target], [(target, args)]


def _multiple(rng: random.Random) -> Built:
    """One call; the function is offered among 1-5 distractors."""
    query, offered, calls = _simple(rng)
    return query, offered + _distractors(rng, offered, rng.randint(1, MAX_FUNCTIONS - 1)), calls


def _parallel(rng: random.Random) -> Built:
    """Several calls of one function, sometimes offered among distractors."""
    target = rng.choice(_PARALLEL_OK)
    domain, fn = _ENTRIES[target]
    calls = _parallel_args(rng, fn)
    phrase, noun, body = _parallel_phrase(rng, fn, calls, allow_noun=True)
    offered = [target]
    if rng.random() < 0.6:
        offered += _distractors(rng, offered, rng.randint(1, MAX_FUNCTIONS - 2))
    query = phrasing.request(rng, phrase, body, noun=noun, context=_context(rng, domain))
    return query, offered, [(target, c) for c in calls]


def _parallel_multiple(rng: random.Random) -> Built:
    """Two or three different functions requested together (one of them perhaps several times)."""
    targets = [rng.randrange(len(_ENTRIES))]
    # The other targets are picked like distractors: distinct, not overlapping, often same-domain.
    targets += _distractors(rng, targets, 1 if rng.random() < 0.7 else 2, near_miss_rate=0.4)
    phrases, calls = [], []
    parallel_slot = rng.randrange(len(targets)) if rng.random() < 0.3 else -1
    for slot, target in enumerate(targets):
        fn = _ENTRIES[target][1]
        if slot == parallel_slot and target in _PARALLEL_OK:
            target_calls = _parallel_args(rng, fn)
            phrase, _, body = _parallel_phrase(rng, fn, target_calls, allow_noun=False)
            phrases.append(f"{phrase} {body}")
        else:
            target_calls = [_sample_args(rng, fn)]
            phrases.append(_call_phrase(rng, fn, target_calls[0]))
        calls += [(target, c) for c in target_calls]
    offered = targets + _distractors(rng, targets, rng.randint(0, MAX_FUNCTIONS - len(targets)))
    return phrasing.chained_request(rng, phrases, _context(rng, _ENTRIES[targets[0]][0])), offered, calls


def _irrelevance(rng: random.Random) -> Built:
    """A request no offered function serves: near miss, another domain, or off topic."""
    count = rng.randint(1, MAX_FUNCTIONS)
    roll = rng.random()
    if roll < 0.2:
        return phrasing.dressed(rng, rng.choice(OFF_TOPIC), _context(rng, None)), _distractors(rng, [], count), []
    query, targets, _ = _simple(rng)
    if roll < 0.65:
        offered = _distractors(rng, targets, count, near_miss_rate=0.9)
    else:
        offered = _distractors(rng, targets, count, near_miss_rate=0.0, same_domain=False)
    return query, offered, []


_BUILDERS = {
    "simple": _simple, "multiple": _multiple, "parallel": _parallel,
    "parallel_multiple": _parallel_multiple, "irrelevance": _irrelevance,
}


def _derived_values(params: tuple[Param, ...], args: dict[str, Any]) -> Iterator[str]:
    """The values of derived parameters among `args`, inside arrays and objects too."""
    for p in params:
        if p.name in args:
            yield from _derived_in(p, args[p.name])


def _derived_in(param: Param, value: Any) -> Iterator[str]:
    if param.derive:
        yield value
    elif param.type == "array":
        for item in value:
            yield from _derived_in(_item(param), item)
    elif param.type == "object":
        yield from _derived_values(param.fields, value)


def _has_derived(param: Param) -> bool:
    return bool(param.derive) or (param.item is not None and _has_derived(param.item)) or any(
        _has_derived(f) for f in param.fields)


_WITH_DERIVED = frozenset(i for i, (_, f) in enumerate(_ENTRIES) if any(_has_derived(p) for p in f.params))


def _writes_derived(built: Built) -> bool:
    """Whether the query happens to write out a derived value (elsewhere: "US" in "the US Open")."""
    query, _, calls = built
    return any(canonical.written_in(query, value) for i, args in calls if i in _WITH_DERIVED
               for value in _derived_values(_ENTRIES[i][1].params, args))


def _build(rng: random.Random, category: str) -> Built:
    """An example of `category`, drawn again while its query writes out a derived value."""
    for _ in range(MAX_ATTEMPTS - 1):
        built = _BUILDERS[category](rng)
        if not _writes_derived(built):
            return built
    return _BUILDERS[category](rng)


# --- schema objects ------------------------------------------------------------------------------

def _camel(name: str) -> str:
    """snake_case -> camelCase."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _function_name(domain: str, name: str, style: str) -> str:
    """A catalogue name in one of NAME_STYLES ("get_x", "getX", "domain.get_x", "domain.getX")."""
    base = _camel(name) if style in ("camel", "dotted_camel") else name
    return f"{domain}.{base}" if style.startswith("dotted") else base


def _param_spec(param: Param, camel: bool) -> ParamSpec:
    """The schema form of a parameter template (enum, items and properties included)."""
    return ParamSpec(
        name=_camel(param.name) if camel else param.name,
        type=param.type,
        description=param.description,
        required=param.required,
        default=None if param.required else param.default,
        enum=[value for value, _ in param.options] or None,
        items=_param_spec(param.item, camel) if param.item else None,
        properties=[_param_spec(f, camel) for f in param.fields] or None,
    )


@cache
def _function_spec(index: int, style: str, variant: int) -> FunctionSpec:
    """The spec of catalogue entry `index` in a name style and description wording (cached)."""
    domain, fn = _ENTRIES[index]
    camel = style in ("camel", "dotted_camel")
    return FunctionSpec(name=_function_name(domain, fn.name, style),
                        description=phrasing.describe(fn.description, variant),
                        parameters=[_param_spec(p, camel) for p in fn.params])


def _styled_args(params: tuple[Param, ...], args: dict[str, Any], camel: bool) -> dict[str, Any]:
    """Arguments keyed by the parameter names of the chosen style (objects included)."""
    styled = {}
    for p in params:
        if p.name in args:
            value = args[p.name]
            if p.type == "object":
                value = _styled_args(p.fields, value, camel)
            styled[_camel(p.name) if camel else p.name] = value
    return styled


def _example(seed: int, index: int) -> FCExample:
    """Example `index` of the stream for `seed`."""
    rng = random.Random(f"recursa-fc:{seed}:{index}")
    category = rng.choices(list(CATEGORY_SHARES), weights=list(CATEGORY_SHARES.values()))[0]
    query, offered, calls = _build(rng, category)
    rng.shuffle(offered)
    base_style = rng.choices(list(NAME_STYLES), weights=list(NAME_STYLES.values()))[0]
    mixed = rng.random() < 0.15
    styles = {i: rng.choice(list(NAME_STYLES)) if mixed else base_style for i in offered}
    specs = {i: _function_spec(i, styles[i], rng.randrange(DESCRIPTION_VARIANTS)) for i in offered}
    return FCExample(
        id=f"gen-{seed}-{index}",
        query=query,
        functions=[specs[i] for i in offered],
        calls=[FunctionCall(name=specs[i].name,
                            arguments=_styled_args(_ENTRIES[i][1].params, args, "camel" in styles[i]))
               for i, args in calls],
        source="generated",
        category=category,
    )


# --- public API ----------------------------------------------------------------------------------

def iter_examples(n: int, seed: int = 0) -> Iterator[FCExample]:
    """Stream `n` generated examples; the same (n, seed) always gives the same examples."""
    for index in range(n):
        yield _example(seed, index)


def generate_examples(n: int, seed: int = 0) -> list[FCExample]:
    """`n` generated examples as a list (see `iter_examples`)."""
    return list(iter_examples(n, seed))


def generate_to_file(n: int, seed: int, path: str | os.PathLike) -> Path:
    """Generate `n` examples and write them to a .parquet or .jsonl file; return its path."""
    from recursa.fc.data.store import write_examples

    return write_examples(iter_examples(n, seed), path)


def _name_words(name: str) -> str:
    """A function or parameter name as words: "weather.getForecast" -> "weather get Forecast"."""
    return " ".join(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace(".", " ").split())


def _param_texts(params: Iterable[ParamSpec]) -> Iterator[str]:
    for p in params:
        yield p.name
        yield p.description
        yield from (str(v) for v in p.enum or ())
        if p.items:
            yield from _param_texts([p.items])
        if p.properties:
            yield from _param_texts(p.properties)


def _strings(value: Any) -> Iterator[str]:
    """The strings inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, dict)):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _strings(item)


def corpus_text(examples: Iterable[FCExample]) -> Iterator[str]:
    """Texts a tokenizer should learn from: queries, function names (as written and as words),
    descriptions, parameter names and descriptions, enum values, and the string arguments a query
    does not write out (derived values such as "2025-03-03"), which a model has to spell out."""
    for example in examples:
        yield example.query
        for spec in example.functions:
            yield spec.name
            yield _name_words(spec.name)
            yield spec.description
            yield from _param_texts(spec.parameters)
        for call in example.calls:
            yield from (text for text in _strings(call.arguments) if not canonical.written_in(example.query, text))
