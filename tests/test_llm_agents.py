"""Action environments, the episode runner, the math demo, a custom domain and the LLM records."""

from __future__ import annotations

import sys
from pathlib import Path

import datasets
import pytest

from recursa.llm.actions import (
    MALFORMED_PENALTY,
    ActionParseError,
    AgentState,
    BaseAgent,
    NoisyAgent,
    parse_action,
    resolve_action_env,
    run_episodes,
)
from recursa.llm.datasets import dpo_records, kto_records, read_records, sft_records, trace_records, write_records
from recursa.llm.math_env import (
    REWARDS,
    ExpertMathAgent,
    LinearEquation,
    LinearEquationEnv,
    RandomMathAgent,
    sample_equations,
)
from recursa.traces.engine import group_normalise
from recursa.traces.models import ExecutionTrace

EXAMPLES = Path(__file__).parents[1] / "examples"


class ScriptedAgent(BaseAgent):
    """Writes the given outputs in order."""

    def __init__(self, outputs: list[str]) -> None:
        self.outputs = iter(outputs)

    def select_action(self, state: AgentState) -> str:
        return next(self.outputs)


EQUATION = LinearEquation(3, 7, 16)  # 3x + 7 = 16


def play(outputs: list[str], problem: LinearEquation = EQUATION):
    return next(run_episodes(LinearEquationEnv, ScriptedAgent(outputs), [problem]))


@pytest.mark.parametrize("text, expected", [
    ("Action: subtract_terms(7)", ("subtract_terms", "7")),
    (" divide_terms( 3 )\nmore text", ("divide_terms", "3")),
    ("\n\nAction:state_answer(3)", ("state_answer", "3")),
])
def test_parse_action_reads_the_first_action_line(text, expected):
    assert parse_action(text) == expected


@pytest.mark.parametrize("text", ["", "subtract 7", "Action: (7)", "Action: subtract_terms 7"])
def test_parse_action_rejects_malformed_output(text):
    with pytest.raises(ActionParseError):
        parse_action(text)


def test_expert_solves_every_equation_shape_step_by_step():
    problems = sample_equations(300, seed=0)
    assert {(p.a == 1, (p.b > 0) - (p.b < 0)) for p in problems} >= {(False, 1), (False, -1), (True, 1), (True, -1),
                                                                       (False, 0)}
    episodes = list(run_episodes(LinearEquationEnv, ExpertMathAgent(), problems))
    assert all(t.success and t.format_errors == 0 for t in episodes)
    solved = play(["Action: identify_operation(subtract)", "Action: subtract_terms(7)", "Action: divide_terms(3)",
                   "Action: state_answer(3)"])
    assert [s.observation for s in solved.steps] == ["Yes: subtract first. 3x + 7 = 16", "3x = 9", "x = 3",
                                                     "Correct: x = 3"]
    assert solved.total_reward == REWARDS["identify"] + 2 * REWARDS["transform"] + REWARDS["answer"]


def test_each_action_has_its_own_reward_and_wrong_steps_cost():
    episode = play(["Action: divide_terms(3)", "Action: add_terms(7)", "Action: subtract_terms(7)",
                    "Action: state_answer(4)"])
    assert [s.reward for s in episode.steps] == [REWARDS["wrong_step"], REWARDS["wrong_step"], REWARDS["transform"],
                                                 REWARDS["wrong_answer"]]
    assert not episode.success and len(episode.steps) == 4


def test_malformed_action_is_an_observation_and_a_penalty_not_a_crash():
    episode = play(["I think x is 3", "Action: fly_away(1)", "Action: subtract_terms(seven)",
                    "Action: subtract_terms(7)", "Action: divide_terms(3)", "Action: state_answer(3)"])
    assert [s.valid for s in episode.steps] == [False, False, True, True, True, True]
    assert episode.steps[0].reward == MALFORMED_PENALTY and "Invalid action" in episode.steps[0].observation
    assert "unknown action 'fly_away'" in episode.steps[1].observation
    assert "needs an integer" in episode.steps[2].observation
    assert episode.format_errors == 2
    assert episode.success  # the episode went on after the mistakes, and the agent recovered
    assert "Invalid action" in episode.steps[1].prompt  # the agent sees its mistake in the transcript
    cut_short = play(["nonsense"] * LinearEquationEnv.max_steps)
    assert len(cut_short.steps) == LinearEquationEnv.max_steps and not cut_short.success


def test_random_agent_is_far_below_the_expert():
    problems = sample_equations(200, seed=1)
    random_success = sum(t.success for t in run_episodes(LinearEquationEnv, RandomMathAgent(0), problems))
    assert random_success < 0.2 * len(problems)


def test_noisy_expert_makes_mistakes_the_environment_penalises():
    problems = sample_equations(200, seed=2)
    episodes = list(run_episodes(LinearEquationEnv, NoisyAgent(ExpertMathAgent(), 0.3, seed=0), problems))
    rates = sum(t.success for t in episodes) / len(episodes)
    assert 0.3 < rates < 0.98
    assert any(s.reward < 0 for t in episodes for s in t.steps)


def test_runner_plays_episodes_in_lock_step_and_keeps_their_index():
    calls = []

    class Recorder(ExpertMathAgent):
        def select_actions(self, states):
            calls.append(len(states))
            return super().select_actions(states)

    problems = sample_equations(5, seed=3)
    episodes = list(run_episodes(LinearEquationEnv, Recorder(), problems))
    assert calls[0] == 5 and len(calls) == max(len(t.steps) for t in episodes)
    assert sorted(t.index for t in episodes) == list(range(5))
    assert all(t.problem == problems[t.index] for t in episodes)


def test_trajectory_becomes_a_trace():
    episode = play(["Action: identify_operation(subtract)", "oops", "Action: subtract_terms(7)",
                    "Action: divide_terms(3)", "Action: state_answer(3)"])
    trace = episode.to_trace()
    assert isinstance(trace, ExecutionTrace) and trace.agent_type == "math"
    assert trace.query == "Solve for x: 3x + 7 = 16" and len(trace.reasoning_steps) == 5
    assert trace.reward == episode.total_reward and trace.metadata["format_errors"] == 1


def test_environments_resolve_by_name_or_import_path(monkeypatch):
    assert resolve_action_env("math") is LinearEquationEnv
    monkeypatch.syspath_prepend(str(EXAMPLES))
    custom = resolve_action_env("custom_domain:UnitConversionEnv")
    episodes = list(run_episodes(custom, custom.expert(), custom.sample_problems(20, 0)))
    assert all(t.success for t in episodes)
    for spec in ["nope", "recursa.llm.math_env:Nope", "recursa.llm.math_env:LinearEquation"]:
        with pytest.raises(ValueError):
            resolve_action_env(spec)
    sys.modules.pop("custom_domain", None)


def test_sft_records_weight_steps_by_their_episode_return():
    good = play(["Action: identify_operation(subtract)", "Action: subtract_terms(7)", "Action: divide_terms(3)",
                 "Action: state_answer(3)"])
    clumsy = play(["Action: divide_terms(3)", "Action: subtract_terms(7)", "Action: divide_terms(3)",
                   "Action: state_answer(3)"])
    failed = play(["Action: state_answer(4)"])
    records = sft_records([good, clumsy, failed])
    assert {r["completion"] for r in records} >= {" subtract_terms(7)", " state_answer(3)"}
    weights = {r["weight"] for r in records}
    assert max(weights) == 1.0 and min(weights) == pytest.approx(clumsy.total_reward / good.total_reward)
    assert all(r["prompt"].endswith("Action:") for r in records)
    assert len(sft_records([good, clumsy], min_reward=good.total_reward)) == 4


def test_kto_and_dpo_records_from_step_rewards():
    episode = play(["Action: divide_terms(3)", "Action: subtract_terms(7)", "Action: divide_terms(3)",
                    "Action: state_answer(3)"])
    kto = kto_records([episode])
    assert [r["label"] for r in kto] == [False, True, True, True]
    pairs = dpo_records([*kto, {"prompt": kto[0]["prompt"], "completion": " subtract_terms(7)", "label": True}])
    assert pairs == [{"prompt": kto[0]["prompt"], "chosen": " subtract_terms(7)", "rejected": " divide_terms(3)"}]


def test_trace_records_use_hand_labels_first():
    traces = [ExecutionTrace(query="a", final_response="x", label=True), ExecutionTrace(query="b", final_response="y"),
              ExecutionTrace(query="c", prompt="P", final_response="z")]
    assert trace_records(traces) == [{"prompt": "a", "completion": "x", "label": True}]
    assert [r["label"] for r in trace_records(traces, labels=[False, False, True])] == [True, False, True]
    assert trace_records(traces, labels=[False, False, True])[2]["prompt"] == "P"


def test_group_advantages_are_normalised_within_the_group():
    assert group_normalise([1.0, 2.0, 3.0]) == pytest.approx([-1.2247, 0.0, 1.2247], abs=1e-3)
    assert group_normalise([5.0, 5.0]) == [0.0, 0.0]
    assert group_normalise([0.0, 10.0]) == pytest.approx([-1.0, 1.0], abs=1e-5)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_records_round_trip_and_load_with_hugging_face_datasets(tmp_path, suffix):
    episodes = list(run_episodes(LinearEquationEnv, ExpertMathAgent(), sample_equations(4, seed=4)))
    records = kto_records(episodes)
    path = write_records(records, tmp_path / f"kto{suffix}")
    assert read_records(path) == records
    loaded = datasets.load_dataset("json" if suffix == ".jsonl" else "parquet", data_files=str(path), split="train")
    assert loaded.column_names == ["prompt", "completion", "label"] and len(loaded) == len(records)
    with pytest.raises(ValueError):
        write_records(records, tmp_path / "kto.csv")
