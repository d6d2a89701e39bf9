"""Held-out scores of a tool-calling TRM on generated examples: what training reports each epoch
and what export compares its int8 model by."""

from __future__ import annotations

import json

from recursa.fc.artifact import predict_calls
from recursa.fc.ast_reward import score_example
from recursa.fc.data.schema import FCExample
from recursa.fc.execution_reward import execution_reward
from recursa.fc.features import Featurizer
from recursa.fc.model import FunctionCallingTRM


def evaluate_dev(model: FunctionCallingTRM, featurizer: Featurizer, dev: list[FCExample]) -> dict[str, float]:
    """Function accuracy, exact match, AST accuracy and execution reward of greedy calls on dev."""
    predictions = predict_calls(model, featurizer, dev)
    function_ok = exact = ast = executed = 0.0
    for example, calls in zip(dev, predictions):
        function_ok += sorted(c.name for c in calls) == sorted(c.name for c in example.calls)
        exact += _canonical(calls) == _canonical(example.calls)
        ast += score_example(calls, example).valid
        executed += execution_reward(calls, example)
    n = max(len(dev), 1)
    return {"function_accuracy": function_ok / n, "exact_match": exact / n, "ast_accuracy": ast / n,
            "execution_reward": executed / n}


def _canonical(calls) -> list[str]:
    return sorted(json.dumps([c.name, c.arguments], sort_keys=True, default=str) for c in calls)
