"""The BFCL AST scorer: one test per rule, its passing and its failing side, and real BFCL records."""

import importlib.util
import json
from pathlib import Path

import pytest

from recursa.fc.ast_reward import (
    AstResult,
    check_irrelevance,
    check_multiple,
    check_parallel,
    check_relevance,
    check_simple,
    normalize_string,
    possible_answers_from_calls,
    score_example,
)
from recursa.fc.data.schema import FCExample
from recursa.tools.schema import FunctionCall, FunctionSpec, ParamSpec

WEATHER = FunctionSpec(
    name="get_weather",
    parameters=[
        ParamSpec(name="city", type="string"),
        ParamSpec(name="days", type="integer"),
        ParamSpec(name="temperature", type="float", required=False),
        ParamSpec(name="unit", type="string", required=False, default="celsius"),
        ParamSpec(name="detailed", type="boolean", required=False),
        ParamSpec(name="tags", type="array", required=False, items=ParamSpec(name="tag")),
        ParamSpec(name="hours", type="array", required=False, items=ParamSpec(name="hour", type="integer")),
        ParamSpec(name="filters", type="object", required=False),
        ParamSpec(name="language", type="string", required=False),  # offered, absent from the answer
    ],
)
WEATHER_ANSWER = {
    "get_weather": {
        "city": ["San Francisco, CA", "SF"],
        "days": [3],
        "temperature": [20.0],  # optional in the function, yet the answer wants it
        "unit": ["celsius", ""],
        "detailed": [True, ""],
        "tags": [["Rain", "wind"], ""],
        "hours": [[6, 12], ""],
        "filters": [{"kind": ["storm"], "level": [2, ""]}, ""],
    }
}
BASE_ARGUMENTS = {"city": "San Francisco, CA", "days": 3, "temperature": 20.0}

ADD = FunctionSpec(
    name="add", parameters=[ParamSpec(name="a", type="integer"), ParamSpec(name="b", type="integer")]
)
GREET = FunctionSpec(name="greet", parameters=[ParamSpec(name="name")])


def weather(**changes) -> AstResult:
    """Score a get_weather call made of the base arguments with some changed (None removes one)."""
    arguments = {**BASE_ARGUMENTS, **changes}
    arguments = {name: value for name, value in arguments.items() if value is not None}
    return check_simple(FunctionCall(name="get_weather", arguments=arguments), WEATHER, WEATHER_ANSWER)


def add(a, b) -> FunctionCall:
    return FunctionCall(name="add", arguments={"a": a, "b": b})


def add_answer(a: list, b: list) -> dict:
    return {"add": {"a": a, "b": b}}


def assert_fails(result: AstResult, fragment: str) -> None:
    assert not result.valid
    assert fragment in result.error


# --- one call ------------------------------------------------------------------------------


def test_the_expected_call_passes():
    assert weather() == AstResult(True, None)


def test_wrong_function_name_fails():
    call = FunctionCall(name="get_wether", arguments=BASE_ARGUMENTS)
    assert_fails(check_simple(call, WEATHER, WEATHER_ANSWER), "wrong function name")


def test_missing_required_parameter_fails():
    assert_fails(weather(days=None), "missing required parameter 'days'")


def test_optional_parameter_may_be_omitted_only_when_the_answer_allows_it():
    assert weather(unit=None).valid  # "" among its possible answers
    assert_fails(weather(temperature=None), "omitted parameter 'temperature'")


@pytest.mark.parametrize("name", ["country", "language"])
def test_parameter_not_declared_or_not_in_the_answer_is_unexpected(name):
    assert_fails(weather(**{name: "US"}), f"unexpected parameter '{name}'")


def test_int_where_float_expected_passes():
    assert weather(temperature=20).valid


def test_float_where_int_expected_fails():
    assert_fails(weather(days=3.0), "type mismatch for 'days': expected integer")


@pytest.mark.parametrize(("name", "value"), [("days", True), ("detailed", 1)])
def test_bool_and_int_are_distinct_types(name, value):
    assert weather(detailed=True).valid
    assert_fails(weather(**{name: value}), f"type mismatch for '{name}'")


@pytest.mark.parametrize("city", ["san francisco,ca", "San-Francisco CA.", "s.f.", "SAN_FRANCISCO/CA"])
def test_strings_compared_after_normalisation(city):
    assert weather(city=city).valid


@pytest.mark.parametrize("city", ["Los Angeles", "San Francisco CA!", "San Fran"])
def test_a_different_string_fails(city):
    assert_fails(weather(city=city), "value of 'city' not among possible answers")


def test_normalisation_strips_bfcl_punctuation_lowercases_and_unifies_quotes():
    assert normalize_string("Jan. 28, 2021 a-b_c*d^e/f 'Q'") == 'jan282021abcdef"q"'
    assert normalize_string("a!b?c\td") == "a!b?c\td"  # nothing else is stripped


@pytest.mark.parametrize("tags", [["rain", "Wind"], ["RAIN ", "w-i-n-d"], ("Rain", "wind")])
def test_list_elements_normalised_and_tuple_accepted(tags):
    assert weather(tags=tags).valid


@pytest.mark.parametrize("tags", [["wind", "rain"], ["rain"], ["rain", "wind", "rain"]])
def test_list_order_and_length_matter(tags):
    assert_fails(weather(tags=tags), "value of 'tags' not among possible answers")


def test_list_element_types_are_checked():
    assert weather(hours=[6, 12]).valid
    assert_fails(weather(hours=[6, "12"]), "type mismatch for 'hours': expected array")


@pytest.mark.parametrize(
    "filters", [{"kind": "Storm"}, {"kind": "storm", "level": 2}, {"level": 2.0, "kind": "STORM"}]
)
def test_nested_dict_values_among_their_possible_answers(filters):
    assert weather(filters=filters).valid


@pytest.mark.parametrize(
    "filters", [{"kind": "storm", "level": 3}, {"kind": "storm", "extra": 1}, {"level": 2}, {}]
)
def test_nested_dict_with_wrong_value_unknown_or_missing_key_fails(filters):
    assert_fails(weather(filters=filters), "value of 'filters' not among possible answers")


def test_dict_where_object_expected_only():
    assert_fails(weather(filters="storm"), "type mismatch for 'filters': expected object")


def test_value_typed_like_the_answers_passes_as_in_bfcl_but_matches_exactly():
    """BFCL lets a value of the answers' type through ("dontcare" for an integer); it must then be exact."""
    answer = add_answer([1], ["dontcare", None])
    assert check_simple(add(1, "dontcare"), ADD, answer).valid
    assert check_simple(add(1, None), ADD, answer).valid
    assert_fails(check_simple(add(1, "DontCare"), ADD, answer), "value of 'b' not among possible answers")
    assert_fails(check_simple(add(1, None), ADD, add_answer([1], [2])), "type mismatch for 'b'")


# --- several calls -------------------------------------------------------------------------


def test_multiple_picks_the_function_by_the_answer_name():
    answers = [{"greet": {"name": ["Ada"]}}]
    greet = FunctionCall(name="greet", arguments={"name": "ada"})
    assert check_multiple([greet], [ADD, GREET], answers).valid
    assert_fails(check_multiple([add(1, 2)], [ADD, GREET], answers), "wrong function name")
    assert_fails(check_multiple([add(1, 2), add(1, 2)], [ADD, GREET], answers), "wrong number of calls")


def test_parallel_matches_in_any_order():
    answers = [add_answer([1], [2]), {"greet": {"name": ["Ada"]}}]
    greet = FunctionCall(name="greet", arguments={"name": "Ada"})
    assert check_parallel([add(1, 2), greet], [ADD, GREET], answers).valid
    assert check_parallel([greet, add(1, 2)], [ADD, GREET], answers).valid


@pytest.mark.parametrize("count", [1, 3])
def test_parallel_wrong_count_fails(count):
    answers = [add_answer([1], [2]), add_answer([3], [4])]
    calls = [add(1, 2), add(3, 4), add(5, 6)][:count]
    assert_fails(check_parallel(calls, [ADD], answers), "wrong number of calls")


def test_one_prediction_cannot_satisfy_two_expected_calls():
    assert check_parallel([add(1, 2), add(1, 2)], [ADD], [add_answer([1], [2])] * 2).valid
    result = check_parallel([add(1, 2), add(1, 2)], [ADD], [add_answer([1], [2]), add_answer([3], [4])])
    assert_fails(result, "no predicted call matches expected call 1")


def test_parallel_finds_a_matching_even_when_greedy_assignment_would_not():
    answers = [add_answer([1, 3], [2]), add_answer([1], [2])]  # the first accepts either prediction
    assert check_parallel([add(1, 2), add(3, 2)], [ADD], answers).valid


def test_irrelevance_and_relevance():
    assert check_irrelevance([]).valid and check_irrelevance(None).valid
    assert_fails(check_irrelevance([add(1, 2)]), "expected no call")
    assert check_relevance([add(1, 2)]).valid
    assert_fails(check_relevance([]), "expected a call")


# --- examples ------------------------------------------------------------------------------


def example(category=None, calls=(), possible_answers=None) -> FCExample:
    return FCExample(id="x", query="q", functions=[ADD, GREET], calls=list(calls),
                     possible_answers=possible_answers, category=category)


def test_score_example_dispatches_on_the_bfcl_category():
    answers = [add_answer([1], [2])]
    assert score_example([add(1, 2)], example("simple_python", possible_answers=answers)).valid
    assert_fails(score_example([add(1, 2)] * 2, example("live_multiple", possible_answers=answers)),
                 "wrong number of calls: expected 1")
    parallel = example("parallel", possible_answers=[*answers, add_answer([3], [4])])
    assert score_example([add(3, 4), add(1, 2)], parallel).valid
    assert_fails(score_example([add(1, 2)], example("live_irrelevance")), "expected no call")


def test_generated_examples_score_against_their_calls_in_any_order():
    calls = [add(1, 2), FunctionCall(name="greet", arguments={"name": "Ada"})]
    generated = example(calls=calls)
    assert score_example(list(reversed(calls)), generated).valid
    assert_fails(score_example([add(1, 2)], generated), "wrong number of calls")
    assert score_example([], example("generated")).valid
    assert_fails(score_example([add(1, 2)], example()), "expected no call")


def test_possible_answers_from_calls_let_optional_parameters_be_omitted_or_defaulted():
    arguments = {"city": "Paris", "days": 2, "filters": {"kind": "storm"}}
    call = FunctionCall(name="get_weather", arguments=arguments)
    generated = FCExample(id="w", query="q", functions=[WEATHER], calls=[call])
    (answer,) = possible_answers_from_calls(generated)
    assert answer["get_weather"]["city"] == ["Paris"]
    assert answer["get_weather"]["filters"] == [{"kind": ["storm"]}]
    assert answer["get_weather"]["unit"] == ["", "celsius"]
    assert answer["get_weather"]["detailed"] == [""]
    assert score_example([call], generated).valid
    with_unit = FunctionCall(name="get_weather", arguments={**arguments, "unit": "Celsius"})
    assert score_example([with_unit], generated).valid
    other_days = FunctionCall(name="get_weather", arguments={**arguments, "days": 3})
    assert_fails(score_example([other_days], generated), "value of 'days'")


@pytest.mark.parametrize(
    "predicted",
    [
        "add(1, 2)",
        [None],
        [{"name": "add", "arguments": {"a": 1, "b": 2}}],
        [FunctionCall.model_construct(name="add", arguments="a=1")],
        [FunctionCall.model_construct(name=None, arguments=None)],
        [FunctionCall(name="add", arguments={"a": None, "b": {"x": [object()]}})],
        [FunctionCall(name="add", arguments={"a": [1], "b": float("nan")})],
        [FunctionCall(name="no_such_function", arguments={})],
    ],
)
@pytest.mark.parametrize("category", ["simple_python", "multiple", "parallel", None])
def test_garbage_predictions_score_invalid_without_raising(predicted, category):
    result = score_example(predicted, example(category, calls=[add(1, 2)]))
    assert not result.valid and result.error


def test_ground_truth_naming_a_function_not_offered_raises():
    with pytest.raises(ValueError, match="not among the functions offered"):
        check_parallel([add(1, 2)], [GREET], [add_answer([1], [2])])


# --- real BFCL records ---------------------------------------------------------------------

_BFCL = importlib.util.find_spec("bfcl_eval")
_BFCL_TYPES = {"dict": "object", "tuple": "array"}


def _bfcl_param(name: str, spec: dict, required: bool) -> ParamSpec:
    items = spec.get("items")
    return ParamSpec(name=name, type=_BFCL_TYPES.get(spec["type"], spec["type"]), required=required,
                     default=spec.get("default"), items=_bfcl_param("item", items, True) if items else None)


def _bfcl_function(function: dict) -> FunctionSpec:
    parameters = function["parameters"]
    required = set(parameters.get("required", []))
    return FunctionSpec(name=function["name"], parameters=[
        _bfcl_param(name, spec, name in required) for name, spec in parameters["properties"].items()])


def _non_empty(options: list) -> list:
    return [option for option in options if option != ""]


def _literal(answer):
    """A value matching one possible answer: its dicts (also inside lists) take their first options."""
    if isinstance(answer, dict):
        return {key: _non_empty(options)[0] for key, options in answer.items() if _non_empty(options)}
    if isinstance(answer, list):
        return [_literal(item) for item in answer]
    return answer


def _first_value_call(answer: dict) -> FunctionCall:
    """The call of each parameter's first possible value (those that may only be omitted left out)."""
    ((name, params),) = answer.items()
    values = {param: _non_empty(options) for param, options in params.items()}
    return FunctionCall(name=name, arguments={param: _literal(v[0]) for param, v in values.items() if v})


@pytest.mark.skipif(_BFCL is None, reason="bfcl_eval is not installed")
def test_first_possible_values_of_bfcl_simple_python_score_valid():
    data = Path(_BFCL.submodule_search_locations[0]) / "data"
    questions = [json.loads(line) for line in (data / "BFCL_v4_simple_python.json").open()]
    truths = {(r := json.loads(line))["id"]: r["ground_truth"]
              for line in (data / "possible_answer/BFCL_v4_simple_python.json").open()}
    failures = []
    for record in questions:
        answers = truths[record["id"]]
        functions = [_bfcl_function(f) for f in record["function"]]
        bfcl_example = FCExample(id=record["id"], query="q", functions=functions, possible_answers=answers,
                                 source="bfcl", category="simple_python")
        result = score_example([_first_value_call(answer) for answer in answers], bfcl_example)
        if not result.valid:
            failures.append((record["id"], result.error))
    assert len(questions) > 300 and failures == []
