"""RL fine-tuning by execution: the one-step env, its action layout, the RLlib module, PPO."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from recursa.data.fc.generator import corpus_text, generate_examples
from recursa.data.fc.schema import FCExample
from recursa.envs.function_calling import FunctionCallingEnv, action_sizes, call_from_action
from recursa.fc.artifact import save_fc_model
from recursa.fc.features import ABSENT, ENUM, IGNORE, SPAN, TAG_B, TAG_I, FCLimits
from recursa.fc.model import FunctionCallingTRM
from recursa.models.tokenizer import SentencePieceTokenizer
from recursa.models.trm import TRMConfig
from recursa.rl.fc_module import FunctionCallerModule


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny untrained tool caller saved like a supervised run's model directory."""
    tokenizer = SentencePieceTokenizer.train(corpus_text(generate_examples(300, seed=3)), vocab_size=600)
    model = FunctionCallingTRM(TRMConfig(hidden_size=32, num_heads=4, T=1, n=1), tokenizer.vocab_size)
    return save_fc_model(model, tokenizer, tmp_path_factory.mktemp("fc") / "model")


def env_for(model_dir, **config) -> FunctionCallingEnv:
    return FunctionCallingEnv({"tokenizer_dir": str(model_dir / "tokenizer"), "examples": 60, "seed": 11, **config})


def gold_action(env: FunctionCallingEnv) -> np.ndarray:
    """The action that spells out the example's first gold call (from the training targets)."""
    limits, p_max = FCLimits(), FCLimits().max_params
    features = env.featurizer.encode(env.example)
    action = np.zeros(len(action_sizes(limits)), dtype=np.int64)
    action[0] = int(features.targets["pointer"])
    for p in range(len(features.params)):
        mode = int(features.targets["modes"][p, 0])
        action[1 + p] = ABSENT if mode == IGNORE else mode
        if mode == SPAN:
            tags = features.targets["tags"][p, 0]
            inside = np.flatnonzero((tags == TAG_B) | (tags == TAG_I))
            action[1 + p_max + p], action[1 + 2 * p_max + p] = inside[0], inside[-1]
        if mode == ENUM:
            action[1 + 3 * p_max + p] = features.targets["enum_target"][p, 0]
    return action


def copyable(example: FCExample) -> bool:
    """One call of scalars whose free-form strings are written in the query, as copy mode spells them
    (derived values such as "FR" for "France" are not, even where "fr" can be found in "from")."""
    if len(example.calls) != 1:
        return False
    call = example.calls[0]
    spec = next(f for f in example.functions if f.name == call.name)
    return all(not isinstance(v, (list, dict)) and (not isinstance(v, str) or spec.param(k).enum or v in example.query)
               for k, v in call.arguments.items())


def test_the_gold_action_earns_full_reward_and_no_call_earns_nothing(model_dir):
    env = env_for(model_dir)
    scored = 0
    for index in range(len(env.examples)):
        observation, _ = env.reset(options={"index": index})
        assert env.observation_space.contains(observation)
        example = env.example
        if not copyable(example) or not env.featurizer.encode(example).aligned:
            continue
        _, reward, terminated, _, info = env.step(gold_action(env))
        assert terminated and reward == pytest.approx(1.0), (example.query, example.calls)
        env.reset(options={"index": index})
        assert env.step(np.zeros(len(env.action_space.nvec), dtype=np.int64))[1] == 0.0
        scored += 1
    assert scored >= 10


def test_module_lays_logits_out_in_action_order(model_dir):
    env = env_for(model_dir)
    settings = json.loads((model_dir / "model.json").read_text())
    module = FunctionCallerModule(observation_space=env.observation_space, action_space=env.action_space,
                                  model_config={"trm": settings["trm"], "vocab_size": settings["vocab_size"],
                                                "init_from": str(model_dir)})
    observation, _ = env.reset(options={"index": 0})
    batch = {Columns.OBS: {k: torch.from_numpy(v)[None] for k, v in observation.items()}}
    logits = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS][0]
    sizes = [int(n) for n in env.action_space.nvec]
    assert logits.shape == (sum(sizes),)
    pointer, *_ = torch.split(logits, sizes)
    functions = len(env.example.functions)
    assert (pointer[1 + functions:] < -1e3).all(), "functions that are not offered cannot be chosen"
    start = torch.split(logits, sizes)[1 + FCLimits().max_params]
    num_query = int(observation["query_mask"].sum())
    assert (start[num_query:] < -1e3).all(), "spans start inside the query"
    action = np.array([int(part.argmax()) for part in torch.split(logits, sizes)])
    call_from_action(action, env.featurizer.encode(env.example, with_targets=False), FCLimits())


@pytest.mark.slow
def test_ppo_fine_tunes_and_saves_a_loadable_model(ray_session, model_dir, tmp_path):
    from recursa.fc.artifact import load_fc_model
    from recursa.rl.fc_ppo import finetune_fc

    report = finetune_fc(model_dir, tmp_path / "rl", iterations=1, examples=50, held_out=20)
    assert set(report) >= {"held_out_reward_before", "held_out_reward_after", "env_steps"}
    assert 0.0 <= report["held_out_reward_after"] <= 1.0
    model, _ = load_fc_model(tmp_path / "rl")
    before, _ = load_fc_model(model_dir)
    moved = any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), before.state_dict().values()))
    assert moved, "PPO changed the weights"
