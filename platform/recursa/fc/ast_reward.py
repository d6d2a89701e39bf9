"""Score predicted function calls against BFCL-style ground truth, by BFCL's AST rules for Python.

A prediction is valid when it calls the right functions with the required parameters, only
declared parameters, values of the declared types, and values among the possible answers.
Ground truth gives, per expected call, `{function: {param: [acceptable values]}}`; `""` among
the values means the parameter may be omitted. Strings are compared after `normalize_string`.

Predictions may be anything a model produced: a malformed one scores invalid, never raises.
Malformed ground truth (an answer naming a function that is not offered) raises ValueError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from recursa.fc.data.schema import FCExample, PossibleAnswer
from recursa.tools.schema import FunctionCall, FunctionSpec, ParamSpec

_SIMPLE_OR_MULTIPLE = frozenset({"simple", "simple_python", "live_simple", "multiple", "live_multiple"})
_PARALLEL = frozenset({"parallel", "parallel_multiple", "live_parallel", "live_parallel_multiple"})
_IRRELEVANCE = frozenset({"irrelevance", "live_irrelevance"})
_RELEVANCE = frozenset({"live_relevance"})

_OMITTED = ""  # among possible answers: the parameter may be left out
_STRING_TYPES = frozenset({"string", "any"})  # BFCL checks `any` as a string
_IGNORED_CHARACTERS = re.compile(r"[ ,./\-_*^]")
_SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "float": (float, int),
    "boolean": (bool,),
}


@dataclass(frozen=True)
class AstResult:
    """Whether a prediction passes, and if not, which rule it broke."""

    valid: bool
    error: str | None = None


_VALID = AstResult(True)


def _invalid(error: str) -> AstResult:
    return AstResult(False, error)


# --- value comparison ---------------------------------------------------------------------


def normalize_string(text: str) -> str:
    """BFCL's string normalisation: drop spaces and `,./-_*^`, lower-case, `'` becomes `"`."""
    return _IGNORED_CHARACTERS.sub("", text).lower().replace("'", '"')


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _equal(value: Any, literal: Any) -> bool:
    """Whether a value equals a literal: strings normalised, int equal to float, bool only to bool."""
    if isinstance(value, bool) or isinstance(literal, bool):
        return type(value) is type(literal) and value == literal
    if isinstance(value, str) and isinstance(literal, str):
        return normalize_string(value) == normalize_string(literal)
    if _is_number(value) and _is_number(literal):
        return value == literal
    if _is_sequence(value) and _is_sequence(literal):
        return len(value) == len(literal) and all(map(_equal, value, literal))
    if isinstance(value, dict) and isinstance(literal, dict):
        return value.keys() == literal.keys() and all(_equal(v, literal[k]) for k, v in value.items())
    return type(value) is type(literal) and value == literal


def _dict_matches(value: dict, answer: dict[str, list]) -> bool:
    """A dict against `{key: [options]}`: known keys, accepted values, only keys with "" left out."""
    for key, item in value.items():
        if key not in answer or not any(_equal(item, option) for option in answer[key]):
            return False
    return all(_OMITTED in options for key, options in answer.items() if key not in value)


def _matches(value: Any, answer: Any) -> bool:
    """Whether a value matches one possible answer, whose dicts (also in lists) list options per key."""
    if isinstance(answer, dict):
        return isinstance(value, dict) and _dict_matches(value, answer)
    if isinstance(answer, list) and _is_sequence(value):
        return len(value) == len(answer) and all(map(_matches, value, answer))
    return _equal(value, answer)


# --- types -------------------------------------------------------------------------------


def _json_type(value: Any) -> type:
    return list if isinstance(value, tuple) else type(value)


def _has_answer_type(value: Any, options: list) -> bool:
    return any(_json_type(value) is _json_type(option) for option in options if option != _OMITTED)


def _has_declared_type(value: Any, spec: ParamSpec) -> bool:
    """Whether a value has the declared type, elements of arrays aside."""
    if spec.type == "any":
        return True
    if spec.type == "object":
        return isinstance(value, dict)
    if spec.type == "array":
        return _is_sequence(value)
    return type(value) in _SCALAR_TYPES[spec.type]


def _type_ok(value: Any, spec: ParamSpec, options: list) -> bool:
    """The declared type, array elements checked against `items`; failing that, BFCL's 'variable' rule:
    a value of the same type as one of the possible answers passes."""
    if not _has_declared_type(value, spec):
        return _has_answer_type(value, options)
    if spec.type != "array" or spec.items is None:
        return True
    elements = [element for option in options if isinstance(option, list) for element in option]
    return all(_type_ok(element, spec.items, elements) for element in value)


def _value_ok(value: Any, spec: ParamSpec, options: list) -> bool:
    """Whether a value is among the options; a string standing in for another type (a variable name,
    "dontcare") must match exactly, as in BFCL."""
    if isinstance(value, str) and spec.type not in _STRING_TYPES:
        return value in options
    return any(_matches(value, option) for option in options)


# --- one call ------------------------------------------------------------------------------


def _argument_error(name: Any, value: Any, function: FunctionSpec, options: list | None) -> str | None:
    """Why one predicted argument fails, or None when it passes."""
    spec = function.param(name) if isinstance(name, str) else None
    if spec is None or options is None:
        return f"unexpected parameter {name!r}"
    if not _type_ok(value, spec, options):
        return f"type mismatch for {name!r}: expected {spec.type}"
    if not _value_ok(value, spec, options):
        return f"value of {name!r} not among possible answers"
    return None


def check_simple(call: FunctionCall, function: FunctionSpec, answer: PossibleAnswer) -> AstResult:
    """Check one predicted call against the expected call `answer` to `function`."""
    expected = answer.get(function.name)
    if expected is None:
        raise ValueError(f"the answer {list(answer)} has no entry for function {function.name!r}")
    if not isinstance(call, FunctionCall):
        return _invalid(f"prediction is not a FunctionCall but {type(call).__name__}")
    if call.name != function.name:
        return _invalid(f"wrong function name {call.name!r}, expected {function.name!r}")
    arguments = call.arguments
    if not isinstance(arguments, dict):
        return _invalid(f"arguments are not a dict but {type(arguments).__name__}")
    for spec in function.parameters:
        if spec.required and spec.name not in arguments:
            return _invalid(f"missing required parameter {spec.name!r}")
    for name, value in arguments.items():
        error = _argument_error(name, value, function, expected.get(name))
        if error:
            return _invalid(error)
    for name, options in expected.items():
        if name not in arguments and _OMITTED not in options:
            return _invalid(f"omitted parameter {name!r} is not optional in the answer")
    return _VALID


# --- several calls ---------------------------------------------------------------------------


def _as_list(calls: Any) -> list | None:
    """Predictions as a list (None counts as no call); None when they are not a list at all."""
    if calls is None:
        return []
    return list(calls) if _is_sequence(calls) else None


def _expected_function(answer: PossibleAnswer, functions: list[FunctionSpec]) -> FunctionSpec:
    """The offered function an expected call names."""
    if len(answer) != 1:
        raise ValueError(f"an expected call names exactly one function, got {list(answer)}")
    name = next(iter(answer))
    function = next((f for f in functions if f.name == name), None)
    if function is None:
        raise ValueError(f"expected function {name!r} is not among the functions offered")
    return function


def _count_error(calls: list, expected: int) -> AstResult:
    return _invalid(f"wrong number of calls: expected {expected}, got {len(calls)}")


def check_multiple(
    calls: list[FunctionCall], functions: list[FunctionSpec], answers: list[PossibleAnswer]
) -> AstResult:
    """One expected call, to the function among `functions` that the answer names."""
    if len(answers) != 1:
        raise ValueError(f"check_multiple expects one answer, got {len(answers)}")
    predicted = _as_list(calls)
    if predicted is None:
        return _invalid("predictions are not a list")
    if len(predicted) != 1:
        return _count_error(predicted, 1)
    return check_simple(predicted[0], _expected_function(answers[0], functions), answers[0])


def _fits(calls: list, function: FunctionSpec, answer: PossibleAnswer) -> list[AstResult]:
    return [check_simple(call, function, answer) for call in calls]


def _assign(expected: int, fits: list[list[AstResult]], owner: dict[int, int], seen: set[int]) -> bool:
    """Kuhn's augmenting step: find expected call `expected` a fitting prediction, reassigning others."""
    for predicted, result in enumerate(fits[expected]):
        if result.valid and predicted not in seen:
            seen.add(predicted)
            if predicted not in owner or _assign(owner[predicted], fits, owner, seen):
                owner[predicted] = expected
                return True
    return False


def _closest_error(results: list[AstResult]) -> str:
    """The most telling failure among a row of results: one from a call to the right function if any."""
    errors = [r.error for r in results if r.error]
    named = [e for e in errors if not e.startswith("wrong function name")]
    return (named or errors or ["no predicted call"])[0]


def check_parallel(
    calls: list[FunctionCall], functions: list[FunctionSpec], answers: list[PossibleAnswer]
) -> AstResult:
    """Match predicted calls to expected calls one-to-one, in any order; counts must be equal."""
    predicted = _as_list(calls)
    if predicted is None:
        return _invalid("predictions are not a list")
    if len(predicted) != len(answers):
        return _count_error(predicted, len(answers))
    fits = [_fits(predicted, _expected_function(answer, functions), answer) for answer in answers]
    owner: dict[int, int] = {}  # predicted call -> the expected call it stands for
    for expected, answer in enumerate(answers):
        if not _assign(expected, fits, owner, set()):
            reason = _closest_error(fits[expected])
            return _invalid(f"no predicted call matches expected call {expected} {list(answer)}: {reason}")
    return _VALID


def check_irrelevance(calls: list[FunctionCall]) -> AstResult:
    """Valid iff no call was made."""
    predicted = _as_list(calls)
    if predicted is None:
        return _invalid("predictions are not a list")
    return _invalid(f"expected no call, got {len(predicted)}") if predicted else _VALID


def check_relevance(calls: list[FunctionCall]) -> AstResult:
    """Valid iff at least one call was made (BFCL's relevance rule: the calls themselves are not checked)."""
    predicted = _as_list(calls)
    if predicted is None:
        return _invalid("predictions are not a list")
    return _VALID if predicted else _invalid("expected a call, got none")


# --- examples --------------------------------------------------------------------------------


def _as_answer(value: Any) -> Any:
    """A call's value as one possible answer: dicts (also inside lists) list one option per key."""
    if isinstance(value, dict):
        return {key: [item] for key, item in value.items()}
    if _is_sequence(value):
        return [_as_answer(item) for item in value]
    return value


def _answer_from_call(call: FunctionCall, function: FunctionSpec | None) -> PossibleAnswer:
    params = {name: [_as_answer(value)] for name, value in call.arguments.items()}
    for spec in function.parameters if function else []:
        if not spec.required and spec.name not in params:
            default = [] if spec.default is None else [_as_answer(spec.default)]
            params[spec.name] = [_OMITTED, *default]
    return {call.name: params}


def possible_answers_from_calls(example: FCExample) -> list[PossibleAnswer]:
    """Ground truth from an example's calls: each value its only option; an optional parameter absent
    from a call may be omitted or given its default."""
    functions = {f.name: f for f in example.functions}
    return [_answer_from_call(call, functions.get(call.name)) for call in example.calls]


def score_example(predicted: list[FunctionCall], example: FCExample) -> AstResult:
    """Score predicted calls by the rule of the example's BFCL category; other examples (generated ones)
    by the parallel rule, or the irrelevance rule when no call is expected."""
    if example.category in _IRRELEVANCE:
        return check_irrelevance(predicted)
    if example.category in _RELEVANCE:
        return check_relevance(predicted)
    answers = example.possible_answers or possible_answers_from_calls(example)
    if example.category in _SIMPLE_OR_MULTIPLE:
        return check_multiple(predicted, example.functions, answers)
    if example.category in _PARALLEL or answers:
        return check_parallel(predicted, example.functions, answers)
    return check_irrelevance(predicted)
