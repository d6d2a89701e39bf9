"""Seeded, deterministic function-calling examples over the catalogue in `domains`.

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
"""

from __future__ import annotations

import os
import random
import re
import string
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from recursa.fc.data import canonical, phrasing
from recursa.fc.data.domains import COMPOSITES, CONTEXTS, DOMAINS, OFF_TOPIC, POOLS, Fn, Param
from recursa.fc.data.schema import FCExample
from recursa.tools.schema import FunctionCall, FunctionSpec, ParamSpec

CATEGORY_SHARES: dict[str, float] = {
    "simple": 0.15, "multiple": 0.45, "parallel": 0.15, "parallel_multiple": 0.10, "irrelevance": 0.15,
}
MAX_FUNCTIONS = 6
NAME_STYLES: dict[str, float] = {"snake": 0.45, "camel": 0.2, "dotted": 0.25, "dotted_camel": 0.1}
OPTIONAL_RATE = 0.45  # chance an optional parameter is mentioned (and passed)
NEAR_MISS_RATE = 0.55  # chance a distractor comes from a target's own domain
FRONT_RATE = 0.12  # chance a clause is moved before the request
CONTEXT_RATE = 0.15  # chance a request opens with a sentence of context
FRONTABLE = ("in ", "on ", "for ", "at ", "from ", "during ", "over ", "within ", "starting ")
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
_SCALARS = ("string", "integer", "float")
_PARALLEL_OK: tuple[int, ...] = tuple(
    i for i, (_, f) in enumerate(_ENTRIES) if any(p.required and p.type in _SCALARS for p in f.params)
)
_TOKEN = re.compile(r"\{(\w+)(?:\|(lower|title))?\}|[#&^]")
_CHARACTERS = {"#": string.digits, "&": string.digits[1:], "^": string.ascii_uppercase}
_SLOT = re.compile(r"\{(\w+)\}")

# What a category builder returns: the query, catalogue indexes offered, and (index, arguments) calls.
Built = tuple[str, list[int], list[tuple[int, dict[str, Any]]]]


# --- values ------------------------------------------------------------------------------------

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
    assert param.pool is not None, f"string parameter {param.name!r} has no pool"  # `domains.text` sets one
    return _draw_pool(rng, param.pool)


def _item(param: Param) -> Param:
    """The item template of an array parameter (`domains.listing` always sets one)."""
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


# --- wording -----------------------------------------------------------------------------------

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
