"""Reward by execution: sandboxed implementations built from the schema."""

from __future__ import annotations

import pytest

from recursa.fc.data.generator import generate_examples
from recursa.fc.data.schema import FCExample
from recursa.fc.execution_reward import ExecutionScorer, Sandbox, execute, execution_reward
from recursa.tools.schema import FunctionCall, FunctionSpec, ParamSpec

AREA = FunctionSpec(name="geometry.area", parameters=[
    ParamSpec(name="base", type="float"), ParamSpec(name="height", type="integer"),
    ParamSpec(name="unit", type="string", enum=["cm", "m"], required=False, default="cm"),
    ParamSpec(name="tags", type="array", items=ParamSpec(name="items", type="string"), required=False),
    ParamSpec(name="origin", type="object", required=False, properties=[
        ParamSpec(name="x", type="integer"), ParamSpec(name="y", type="integer")]),
])
EXAMPLE = FCExample(id="e", query="area", functions=[AREA],
                    calls=[FunctionCall(name="geometry.area", arguments={"base": 3, "height": 4})])


def call(**arguments) -> FunctionCall:
    return FunctionCall(name="geometry.area", arguments=arguments)


def test_equal_results_despite_spelled_out_default_and_float_spelling():
    assert execution_reward([call(base=3.0, height=4, unit="cm")], EXAMPLE) == 1.0


@pytest.mark.parametrize("arguments", [
    {"base": 3, "height": 4.0},  # a float is not an integer
    {"base": "3", "height": 4},  # a string is not a number
    {"base": 3, "height": 4, "unit": "inch"},  # enums are closed
    {"base": 3},  # required argument missing
    {"base": 3, "height": 4, "colour": "red"},  # undeclared argument
    {"base": 3, "height": 4, "origin": {"x": 1}},  # nested required field missing
])
def test_bad_calls_fail_to_execute(arguments):
    assert execute([call(**arguments)], [AREA]) == [None]
    assert execution_reward([call(**arguments)], EXAMPLE) == 0.0


def test_wrong_function_and_extra_calls_are_penalised():
    assert execute([FunctionCall(name="nope", arguments={})], [AREA]) == [None]
    assert execution_reward([call(base=3, height=4), call(base=1, height=1)], EXAMPLE) == 0.5
    assert execution_reward([], EXAMPLE) == 0.0


def test_no_call_examples_reward_abstaining():
    abstain = EXAMPLE.model_copy(update={"calls": []})
    assert execution_reward([], abstain) == 1.0
    assert execution_reward([call(base=3, height=4)], abstain) == 0.0


def test_every_generated_gold_call_executes():
    for example in generate_examples(300, seed=5):
        assert None not in execute(example.calls, example.functions), example.id
        assert execution_reward(example.calls, example) == 1.0


def test_a_scorer_runs_the_gold_calls_once_and_scores_like_execution_reward(monkeypatch):
    runs = []
    run = Sandbox.run
    monkeypatch.setattr(Sandbox, "run", lambda self, calls: runs.append(len(calls)) or run(self, calls))
    scorer = ExecutionScorer(EXAMPLE)
    predictions = [[call(base=3, height=4)], [call(base=3)], [call(base=3, height=4), call(base=1, height=1)]]
    rewards = [scorer.reward(p) for p in predictions]
    assert runs == [1, 1, 1, 2], "gold calls once, then each prediction once"
    monkeypatch.setattr(Sandbox, "run", run)
    assert rewards == [execution_reward(p, EXAMPLE) for p in predictions] == [1.0, 0.0, 0.5]
