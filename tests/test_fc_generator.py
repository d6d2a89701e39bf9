"""The function-calling generator: deterministic, varied, and every expected call derivable from its query.

String arguments are copied from the query, except enum values (said or given as a synonym) and
derived values, which the query words differently from their canonical form ("March 3rd, 2025"
for "2025-03-03").
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from recursa.fc.data import canonical, catalogue, dsl, phrasing
from recursa.fc.data.catalogue import framing
from recursa.fc.data.generator import CATEGORY_SHARES, corpus_text, generate_examples, generate_to_file, iter_examples
from recursa.fc.data.pools import COMPOSITES, POOLS
from recursa.fc.data.schema import FCExample
from recursa.tools.schema import ParamSpec

N = 2000
FUNCTIONS = {f.name: (d, f) for d, fns in catalogue.DOMAINS.items() for f in fns}


@pytest.fixture(scope="module")
def examples() -> list[FCExample]:
    return generate_examples(N, seed=3)


def _canonical(name: str) -> str:
    """Catalogue name of a styled name: "weather.getWeatherForecast" -> "get_weather_forecast"."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name.rsplit(".", 1)[-1]).lower()


def _catalogue_param(params: tuple[dsl.Param, ...], styled: str) -> dsl.Param:
    return next(p for p in params if p.name == _canonical(styled))


def _check_value(spec: ParamSpec, param: dsl.Param, value: Any, query: str) -> None:
    """`value` has the declared type and can be read off the query (or derived from it)."""
    if spec.type == "string":
        assert isinstance(value, str)
        if param.derive:
            assert canonical.KINDS[param.derive].pattern.fullmatch(value), (param.derive, value)
            assert not canonical.written_in(query, value), (value, query)
            assert len(value) <= 2 or value not in query, (value, query)
        elif spec.enum:
            assert value in spec.enum
            said = (value, *next(s for v, s in param.options if v == value))
            assert any(s in query for s in said), (value, query)
        else:
            assert value in query, (value, query)
    elif spec.type in ("integer", "float"):
        assert isinstance(value, int if spec.type == "integer" else float) and not isinstance(value, bool)
        assert any(form in query for form in phrasing.number_forms(value)), (value, query)
    elif spec.type == "boolean":
        assert isinstance(value, bool)
    elif spec.type == "array":
        assert isinstance(value, list) and value
        for item in value:
            _check_value(spec.items, param.item, item, query)
    elif spec.type == "object":
        assert isinstance(value, dict)
        fields = {p.name: p for p in spec.properties}
        assert set(value) <= set(fields)
        assert all(p.name in value for p in spec.properties if p.required)
        for key, item in value.items():
            _check_value(fields[key], _catalogue_param(param.fields, key), item, query)


def test_same_seed_same_examples_and_prefix_stable():
    first = [e.model_dump() for e in generate_examples(300, seed=7)]
    assert first == [e.model_dump() for e in generate_examples(300, seed=7)]
    assert first[:50] == [e.model_dump() for e in iter_examples(50, seed=7)]
    assert first != [e.model_dump() for e in generate_examples(300, seed=8)]


def test_ids_unique_and_source_generated(examples):
    assert len({e.id for e in examples}) == N
    assert {e.source for e in examples} == {"generated"}


def test_categories_in_intended_shares(examples):
    counts = Counter(e.category for e in examples)
    assert set(counts) == set(CATEGORY_SHARES)
    for category, share in CATEGORY_SHARES.items():
        assert abs(counts[category] / N - share) < 0.03, (category, counts[category])


def test_calls_match_offered_functions_and_query(examples):
    for example in examples:
        offered = {f.name: f for f in example.functions}
        assert len(offered) == len(example.functions) <= 6
        for call in example.calls:
            spec = offered[call.name]
            _, fn = FUNCTIONS[_canonical(call.name)]
            declared = {p.name: p for p in spec.parameters}
            assert set(call.arguments) <= set(declared)
            assert all(p.name in call.arguments for p in spec.parameters if p.required)
            for name, value in call.arguments.items():
                _check_value(declared[name], _catalogue_param(fn.params, name), value, example.query)


def _string_arguments(example: FCExample) -> Iterator[tuple[dsl.Param, str]]:
    """Each string argument of the example's calls with its catalogue parameter."""
    def walk(param: dsl.Param, value: Any) -> Iterator[tuple[dsl.Param, str]]:
        if param.type == "string":
            yield param, value
        elif param.type == "array":
            for item in value:
                yield from walk(param.item, item)
        elif param.type == "object":
            for key, item in value.items():
                yield from walk(_catalogue_param(param.fields, key), item)

    for call in example.calls:
        _, fn = FUNCTIONS[_canonical(call.name)]
        for name, value in call.arguments.items():
            yield from walk(_catalogue_param(fn.params, name), value)


def test_derived_arguments_cover_every_kind_in_a_tenth_of_strings(examples):
    strings = [pair for e in examples for pair in _string_arguments(e)]
    kinds = Counter(param.derive for param, _ in strings if param.derive)
    assert set(kinds) == set(canonical.KINDS)
    assert 0.07 < sum(kinds.values()) / len(strings) < 0.16


def test_dates_times_places_and_slugs_are_said_in_everyday_ways():
    def forms(kind: str, value: str) -> set[str]:
        return set(canonical.KINDS[kind].forms(value))

    assert {"March 14, 2025", "the 14th of March 2025", "Friday, March 14, 2025", "3/14/2025", "14.03.2025",
            "March fourteenth, 2025"} <= forms("date", "2025-03-14")
    assert {"7:30 pm", "half past seven in the evening", "seven thirty pm"} <= forms("time", "19:30")
    assert {"quarter to ten in the morning", "9:45 am"} <= forms("time", "09:45")
    assert {"noon", "12 pm"} <= forms("time", "12:00")
    assert "10:30 am" not in forms("time", "10:30") and "half past ten in the morning" in forms("time", "10:30")
    assert forms("city_state", "Salt Lake City, UT") == {"Salt Lake City, Utah", "Salt Lake City in Utah"}
    assert forms("currency_code", "JPY") == {"Japanese yen", "yen"}
    assert forms("slug", "budget-tracker") == {"Budget Tracker", "Budget tracker", "budget tracker"}


def _every_value(kind: str) -> list[str]:
    """Every value a kind can draw (slugs: a sample)."""
    if kind == "date":
        return [(date(2024, 1, 1) + timedelta(days=d)).isoformat() for d in range(3 * 366)]
    if kind == "time":
        return [f"{h:02d}:{m:02d}" for h in range(24) for m in range(0, 60, 5)]
    if kind == "city_state":
        return [f"{city}, {state}" for city, state in canonical.US_CITIES]
    tables = {"state": canonical.US_STATES, "country_code": canonical.COUNTRIES,
              "currency_code": canonical.CURRENCIES, "language_code": canonical.LANGUAGES}
    if kind in tables:
        return list(tables[kind])
    rng = random.Random(0)
    return [canonical.KINDS[kind].draw(rng) for _ in range(300)]


@pytest.mark.parametrize("kind", sorted(canonical.KINDS))
def test_no_way_of_saying_a_derived_value_contains_it(kind):
    rng = random.Random(1)
    assert all(canonical.KINDS[kind].pattern.fullmatch(canonical.KINDS[kind].draw(rng)) for _ in range(300))
    for value in _every_value(kind):
        forms = canonical.KINDS[kind].forms(value)
        assert forms and all(value not in form for form in forms), (value, forms)


def test_call_counts_follow_category(examples):
    for example in examples:
        names = [c.name for c in example.calls]
        if example.category == "irrelevance":
            assert names == []
        elif example.category == "simple":
            assert len(names) == 1 and len(example.functions) == 1
        elif example.category == "multiple":
            assert len(names) == 1 and len(example.functions) >= 2
        elif example.category == "parallel":
            assert len(names) >= 2 and len(set(names)) == 1
            assert len({str(c.arguments) for c in example.calls}) == len(names)
        else:
            assert len(set(names)) >= 2


def test_distractors_and_near_misses(examples):
    assert sum(len(e.functions) >= 2 for e in examples) / N > 0.7
    same_domain = sum(
        len({FUNCTIONS[_canonical(f.name)][0] for f in e.functions}) < len(e.functions) for e in examples
    )
    assert same_domain / N > 0.3
    near_miss_irrelevance = [
        e for e in examples if e.category == "irrelevance" and len(e.functions) >= 2
        and len({FUNCTIONS[_canonical(f.name)][0] for f in e.functions}) == 1
    ]
    assert near_miss_irrelevance


def test_every_param_type_enum_and_default_used(examples):
    specs: list[ParamSpec] = []
    stack = [p for e in examples for f in e.functions for p in f.parameters]
    while stack:
        spec = stack.pop()
        specs.append(spec)
        stack += ([spec.items] if spec.items else []) + (spec.properties or [])
    assert {s.type for s in specs} >= {"string", "integer", "float", "boolean", "array", "object"}
    assert any(s.enum for s in specs)
    assert any(s.items and s.items.type == t for s in specs for t in ("string", "integer", "float"))
    assert any(not s.required and s.default is not None for s in specs)
    assert any(not s.required for s in specs) and any(s.required for s in specs)


def test_optional_arguments_sometimes_omitted(examples):
    seen, omitted = 0, 0
    for example in examples:
        for call in example.calls:
            spec = next(f for f in example.functions if f.name == call.name)
            optional = [p.name for p in spec.parameters if not p.required]
            seen += sum(name in call.arguments for name in optional)
            omitted += sum(name not in call.arguments for name in optional)
    assert seen > 500 and omitted > 500


def test_variety(examples):
    names = {f.name for e in examples for f in e.functions}
    assert len({FUNCTIONS[_canonical(n)][0] for n in names}) >= 25
    assert len(names) >= 150
    assert len({_canonical(n) for n in names}) >= 150
    assert any("." in n for n in names) and any(re.search("[a-z][A-Z]", n) for n in names)
    assert len({e.query for e in examples}) >= 1500


def test_requests_are_framed_in_many_ways(examples):
    queries = [e.query for e in examples]
    contexts = phrasing.CONTEXTS + tuple(c for domain in framing.CONTEXTS.values() for c in domain)
    share = {
        "casual": sum(q[0].islower() and q[-1] not in ".?!" for q in queries) / N,
        "lead-in": sum(q.startswith(phrasing.LEAD_INS) for q in queries) / N,
        "context": sum(any(c in q for c in contexts) for q in queries) / N,
        "first person": sum(any(o.strip() in q for o in phrasing.SELF_OPENERS) for q in queries) / N,
        "question": sum(q.rstrip().endswith("?") for q in queries) / N,
    }
    assert all(value > 0.04 for value in share.values()), share


def test_numbers_sometimes_in_words(examples):
    def in_words(example: FCExample) -> bool:
        values = [v for c in example.calls for v in c.arguments.values()]
        return any(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 100 and str(v) not in example.query
            and phrasing.number_to_words(v) in example.query for v in values
        )

    assert sum(in_words(e) for e in examples) >= 20


def test_number_words():
    assert phrasing.number_to_words(0) == "zero"
    assert phrasing.number_to_words(42) == "forty-two"
    assert phrasing.number_to_words(-7) == "minus seven"
    assert phrasing.number_to_words(2500) == "two thousand five hundred"
    assert phrasing.number_forms(2.5) == ("2.5", "two and a half")
    assert phrasing.number_forms(12500) == ("12500", "12,500")


def test_catalogue_is_consistent():
    assert len(catalogue.DOMAINS) >= 25 and len(FUNCTIONS) >= 150
    assert set(framing.CONTEXTS) <= set(catalogue.DOMAINS)
    assert len(FUNCTIONS) == sum(len(fns) for fns in catalogue.DOMAINS.values())  # names unique
    assert len({re.sub("_", "", n) for n in FUNCTIONS}) == len(FUNCTIONS)  # and unique in camelCase

    def params_of(param: dsl.Param) -> list[dsl.Param]:
        return [param] + ([param.item] if param.item else []) + [f for p in param.fields for f in params_of(p)]

    for _, fn in FUNCTIONS.values():
        names = {p.name for p in fn.params}
        assert not re.search(r"\{", fn.verbs[0]), fn.name
        for phrase in fn.verbs + fn.nouns:
            assert not phrase.startswith("{") and set(re.findall(r"\{(\w+)\}", phrase)) <= names, fn.name
        assert all(o in FUNCTIONS for o in fn.overlaps), fn.name
        for param in (q for p in fn.params for q in params_of(p)):
            assert param.unit is None or param.unit in phrasing.UNITS, param.name
            assert param.pool is None or param.pool in POOLS or param.pool in COMPOSITES
            assert param.derive is None or (param.derive in canonical.KINDS and not param.pool and not param.options)
            if param.options and param.default is not None:
                assert param.default in dict(param.options), (fn.name, param.name)
            if param.type == "boolean":
                assert param.yes and param.no
            else:
                assert param.clauses and all("{v}" in c for c in param.clauses), (fn.name, param.name)


def test_composite_pools_refer_to_known_pools():
    for name, templates in COMPOSITES.items():
        for template in templates:
            for ref in re.findall(r"\{(\w+)(?:\|\w+)?\}", template):
                assert ref in POOLS or ref in COMPOSITES, (name, ref)


def test_values_are_open_ended(examples):
    pools = Counter()
    made_up_cities, long_names = set(), set()
    for example in examples:
        for param, value in _string_arguments(example):
            pools[param.pool] += 1
            if param.pool == "place" and value not in POOLS["city"]:
                made_up_cities.add(value)
            if param.pool == "person" and len(value.split()) > 2:
                long_names.add(value)
    assert len(made_up_cities) >= 20 and len(long_names) >= 10
    assert {"company", "repo", "file_path", "email", "url"} <= set(pools)


def test_corpus_text_covers_queries_names_enums_and_derived_values(examples):
    texts = list(corpus_text(examples[:200]))
    assert all(e.query in texts for e in examples[:200])
    assert any(" " in t and "_" not in t and "." not in t for t in texts)
    enums = {str(v) for e in examples[:200] for f in e.functions for p in f.parameters for v in p.enum or ()}
    assert enums and enums <= set(texts)
    derived = {value for e in examples[:200] for param, value in _string_arguments(e) if param.derive}
    assert derived and derived <= set(texts)


def test_generate_to_file_round_trips(tmp_path):
    from recursa.fc.data.store import read_examples

    path = generate_to_file(40, 5, tmp_path / "fc.jsonl")
    assert [e.model_dump() for e in read_examples(path)] == [e.model_dump() for e in generate_examples(40, 5)]
