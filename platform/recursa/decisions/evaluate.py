"""A decision agent on a test file: seed 004's four figures (accuracy against the ground truth where
the file has it, mean reward under the component calculator, format-error rate, sample errors).

A test file is JSON lines, one decision to make per line: `{"state": {...}, "ground_truth": {...}}`
(`ground_truth` optional). The reward of a decision is what its agent type's format judges it would
earn against the ground truth, combined with the agent type's weights: the same calculator that
scores the application's decisions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recursa.decisions.formats import DecisionFormat
from recursa.traces.components import ComponentRewardCalculator

SAMPLE_ERRORS = 5


@dataclass(frozen=True)
class DecisionExample:
    """One line of a test file."""

    line: int
    state: Any
    truth: Any = None


def read_test_file(path: str | Path, skip_bad: bool = False) -> tuple[list[DecisionExample], list[str]]:
    """The examples of a test file, and the reasons of the lines skipped.

    A bad line raises ValueError naming its number, unless `skip_bad`.
    """
    examples, skipped = [], []
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                examples.append(_example(number, line))
            except ValueError as error:
                reason = f"{path}:{number}: {error}"
                if not skip_bad:
                    raise ValueError(reason) from None
                skipped.append(reason)
    if not examples:
        raise ValueError(f"{path}: no test examples")
    return examples, skipped


def _example(number: int, line: str) -> DecisionExample:
    try:
        record = json.loads(line)
    except ValueError as error:
        raise ValueError(f"not JSON ({error})") from None
    if not isinstance(record, dict) or "state" not in record:
        raise ValueError('expected an object with "state" (and optionally "ground_truth")')
    unknown = set(record) - {"state", "ground_truth"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    return DecisionExample(number, record["state"], record.get("ground_truth"))


def score_outputs(examples: list[DecisionExample], outputs: list[str], prompt_format: DecisionFormat,
                  calculator: ComponentRewardCalculator) -> dict[str, Any]:
    """The four figures of a model's outputs, one per example."""
    judged, right, malformed = 0, 0, 0
    rewards: list[float] = []
    errors: list[dict[str, Any]] = []
    for example, output in zip(examples, outputs, strict=True):
        try:
            decision, problem = prompt_format.parse(output), None
        except ValueError as error:
            decision, problem = None, str(error)
            malformed += 1
        if example.truth is not None:
            judged += 1
            correct = decision is not None and decision == example.truth
            right += correct
            rewards.append(calculator.compute(prompt_format.judge(decision, example.truth, example.state)).reward)
            if not correct and problem is None:
                problem = "wrong decision"
        if problem is not None and len(errors) < SAMPLE_ERRORS:
            errors.append({"line": example.line, "output": output.strip(), "expected": example.truth,
                           "error": problem})
    return {
        "examples": len(examples),
        "with_ground_truth": judged,
        "accuracy": right / judged if judged else None,
        "mean_reward": sum(rewards) / len(rewards) if rewards else None,
        "format_error_rate": malformed / len(examples),
        "sample_errors": errors,
    }


def generate_decisions(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy continuations of the prompts, batched."""
    from recursa.llm.agent import LLMAgent

    return LLMAgent(model, tokenizer, max_new_tokens=max_new_tokens, batch_size=32).complete(prompts)


def evaluate_model(model, tokenizer, examples: list[DecisionExample], prompt_format: DecisionFormat,
                   calculator: ComponentRewardCalculator, max_new_tokens: int = 32) -> dict[str, Any]:
    """The four figures of `model` on the examples."""
    outputs = generate_decisions(model, tokenizer, [prompt_format.prompt(e.state) for e in examples], max_new_tokens)
    return score_outputs(examples, outputs, prompt_format, calculator)


def evaluate_with_base(model, tokenizer, examples: list[DecisionExample], prompt_format: DecisionFormat,
                       calculator: ComponentRewardCalculator, max_new_tokens: int = 32) -> dict[str, Any]:
    """A PEFT model's figures beside its base's (the adapter switched off) on the same examples."""
    with model.disable_adapter():
        base = evaluate_model(model, tokenizer, examples, prompt_format, calculator, max_new_tokens)
    return {"base": base, "fine_tuned": evaluate_model(model, tokenizer, examples, prompt_format, calculator,
                                                    max_new_tokens)}
