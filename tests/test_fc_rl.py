"""RL fine-tuning by execution: the one-step env, its action layout, the RLlib module, PPO from a YAML
config, resumed from its RLlib checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from recursa.core.config import ConfigError
from recursa.core.trm import TRMConfig
from recursa.fc import decode
from recursa.fc.artifact import load_fc_model, save_fc_model
from recursa.fc.config import TrainFCRLConfig
from recursa.fc.data.generator import corpus_text, generate_examples
from recursa.fc.decode import decode_calls
from recursa.fc.env import FunctionCallingEnv
from recursa.fc.features import ABSENT, ENUM, GENERATE, IGNORE, TAG_O, collate
from recursa.fc.model import FunctionCallingTRM
from recursa.fc.module import FunctionCallerModule
from recursa.fc.ppo import greedy_action
from recursa.fc.tokenizer import SentencePieceTokenizer


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny untrained tool caller saved like a supervised run's model directory."""
    tokenizer = SentencePieceTokenizer.train(corpus_text(generate_examples(300, seed=3)), vocab_size=600)
    torch.manual_seed(0)
    model = FunctionCallingTRM(TRMConfig(hidden_size=32, num_heads=4, T=1, n=1), tokenizer.vocab_size)
    return save_fc_model(model, tokenizer, tmp_path_factory.mktemp("fc") / "model")


def env_for(model_dir, **config) -> FunctionCallingEnv:
    return FunctionCallingEnv({"tokenizer_dir": str(model_dir / "tokenizer"), "examples": 60, "seed": 11, **config})


def module_for(model_dir, env: FunctionCallingEnv) -> FunctionCallerModule:
    settings = json.loads((model_dir / "model.json").read_text())
    return FunctionCallerModule(observation_space=env.observation_space, action_space=env.action_space,
                                model_config={"trm": settings["trm"], "vocab_size": settings["vocab_size"],
                                              "init_from": str(model_dir)})


def gold_action(env: FunctionCallingEnv) -> np.ndarray:
    """The action that spells out the example's gold calls (from the training targets)."""
    targets = env.featurizer.encode(env.example).targets
    parts = {name: np.zeros(block.action_shape, dtype=np.int64) for name, block in
             ((b.name, b) for b in env.layout.blocks)}
    parts["pointer"][()] = targets["pointer"]
    parts["counts"][: len(targets["counts"])] = targets["counts"]
    p, k, lq = targets["tags"].shape
    parts["modes"][:p, :k] = np.where(targets["modes"] == IGNORE, ABSENT, targets["modes"])
    parts["enum"][:p, :k] = np.maximum(targets["enum_target"], 0)
    parts["tags"][:p, :k, :lq] = np.where(targets["tags"] == IGNORE, TAG_O, targets["tags"])
    return np.concatenate([parts[b.name].reshape(-1) for b in env.layout.blocks])


def test_the_gold_action_earns_full_reward_and_no_call_earns_nothing(model_dir):
    env = env_for(model_dir)
    scored = parallel = 0
    for index in range(len(env.examples)):
        observation, _ = env.reset(options={"index": index})
        assert env.observation_space.contains(observation)
        features = env.featurizer.encode(env.example)
        if not env.example.calls or not features.aligned or (features.targets["modes"] == GENERATE).any():
            continue  # generated text is not part of the RL action
        action = gold_action(env)
        assert env.action_space.contains(action)
        _, reward, terminated, _, info = env.step(action)
        assert terminated and reward == pytest.approx(1.0), (env.example.query, env.example.calls)
        assert env.step(np.zeros_like(action))[1] == 0.0
        scored += 1
        parallel += len(env.example.calls) > 1
    assert scored >= 20 and parallel >= 3


def test_the_greedy_action_decodes_to_the_supervised_calls(model_dir):
    env = env_for(model_dir)
    module = module_for(model_dir, env)
    model, featurizer = load_fc_model(model_dir)
    module.caller.no_call_bias = model.no_call_bias = 100.0  # always call: every head is decoded
    with_arguments = 0
    for index in range(12):
        observation, _ = env.reset(options={"index": index})
        features = featurizer.encode(env.example, with_targets=False)
        features.mode_allowed &= decode.choosable_modes()  # the modes the env acts on
        with torch.no_grad():
            (expected,) = decode_calls(model(collate([features])), [features], env.featurizer.tokenizer)
        choices = decode.CallChoices(**env.layout.split(greedy_action(module, observation)))
        assert decode.calls_from_choices(choices, features) == expected, env.example.query
        with_arguments += any(call.arguments for call in expected)
    assert with_arguments >= 3


def test_the_distribution_scores_only_the_choices_that_shape_the_calls(model_dir):
    env = env_for(model_dir)
    module = module_for(model_dir, env)
    observation, _ = env.reset(options={"index": 0})
    batch = {Columns.OBS: {k: torch.from_numpy(v)[None] for k, v in observation.items()}}
    with torch.no_grad():
        inputs = module.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS]
    distribution = module.get_exploration_action_dist_cls().from_logits(inputs)
    action = distribution.sample()
    assert env.action_space.contains(action[0].numpy())
    assert int(env.layout.split(action)["pointer"][0]) <= len(env.example.functions)
    num_query = int(observation["query_mask"].sum())
    assert (env.layout.split(action)["tags"][0, :, :, num_query:] == TAG_O).all(), "no tag outside the query"
    assert torch.isfinite(distribution.logp(action)).all() and torch.isfinite(distribution.entropy()).all()

    no_call = action.clone()
    env.layout.split(no_call)["pointer"][:] = 0
    pointer_logp = distribution.logits["pointer"].log_softmax(-1)[0, 0]
    assert torch.allclose(distribution.logp(no_call), pointer_logp), "no call: only the pointer counts"
    assert int(distribution.to_deterministic().sample()[0, 0]) == int(distribution.logits["pointer"][0].argmax())


def test_modes_that_choices_cannot_express_are_masked(model_dir, monkeypatch):
    env = env_for(model_dir)
    monkeypatch.setattr(decode, "CHOICE_MODES", decode.CHOICE_MODES - {"enum"})
    for index in range(len(env.examples)):
        observation, _ = env.reset(options={"index": index})
        assert not observation["mode_allowed"][:, ENUM].any()
    assert any(env.featurizer.encode(e).mode_allowed[:, ENUM].any() for e in env.examples)


def rl_config(model_dir, tmp_path, **updates) -> TrainFCRLConfig:
    settings = {"name": "rl", "runs_dir": str(tmp_path), "checkpoint": str(model_dir), "iterations": 1,
                "checkpoint_every": 1, "data": {"examples": 50, "held_out": 20},
                "ppo": {"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1}, **updates}
    return TrainFCRLConfig.model_validate(settings)


@pytest.mark.parametrize(("text", "expected"), [
    ("ppo:\n  lr: -1\n", "error: ppo.lr: "),
    ("ppo:\n  train_batch_size: 64\n  minibatch_size: 128\n", "minibatch_size must not exceed"),
    ("runners:\n  num_env_runners: -1\n", "error: runners.num_env_runners: "),
    ("iteratons: 3\n", "error: iteratons: unknown key"),
])
def test_a_bad_fc_rl_config_exits_2_naming_the_field(recursa_cli, tmp_path, text, expected):
    (tmp_path / "rl.yaml").write_text(text)
    code, stderr = recursa_cli(["train", "fc-rl", "--config", tmp_path / "rl.yaml"])
    assert code == 2 and expected in stderr, stderr


def test_fc_rl_without_a_supervised_model_exits_2_naming_the_path(recursa_cli, tmp_path):
    (tmp_path / "rl.yaml").write_text(f"checkpoint: {tmp_path / 'nowhere'}\n")
    code, stderr = recursa_cli(["train", "fc-rl", "--config", tmp_path / "rl.yaml"])
    assert code == 2 and "checkpoint:" in stderr and "nowhere" in stderr


def test_resuming_nothing_and_overwriting_a_run_are_config_errors(model_dir, tmp_path):
    from recursa.fc.ppo import finetune_fc, prepare_run

    config = rl_config(model_dir, tmp_path)
    with pytest.raises(ConfigError, match=r"^resume: no checkpoint"):
        finetune_fc(config, resume=True)
    (prepare_run(config, resume=False) / "checkpoints" / "iter_0001").mkdir()
    with pytest.raises(ConfigError, match="--resume"):
        finetune_fc(config)
    moved = config.model_copy(update={"checkpoint": str(tmp_path / "other")})
    with pytest.raises(ConfigError, match=r"^resume: checkpoint must match"):
        prepare_run(moved, resume=True)


@pytest.mark.slow
def test_ppo_fine_tunes_resumes_from_its_checkpoint_and_saves_a_loadable_model(ray_session, model_dir, tmp_path):
    from recursa.fc.ppo import finetune_fc

    config = rl_config(model_dir, tmp_path)
    first = finetune_fc(config)
    run = tmp_path / "rl"
    assert (run / "checkpoints" / "iter_0001").is_dir() and (run / "config.yaml").is_file()
    assert len(first["return_mean_per_iteration"]) == 1

    report = finetune_fc(config.model_copy(update={"iterations": 2}), resume=True)
    assert json.loads((run / "rl_report.json").read_text()) == report
    assert report["return_mean_per_iteration"][0] == first["return_mean_per_iteration"][0], "resume continues"
    assert len(report["return_mean_per_iteration"]) == 2 and report["env_steps"] == 2 * 64
    assert report["held_out_reward_before"] == first["held_out_reward_before"]
    assert 0.0 <= report["held_out_reward_after"] <= 1.0
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["iter_0001", "iter_0002"]
    model, _ = load_fc_model(run / "model")
    before, _ = load_fc_model(model_dir)
    moved = any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), before.state_dict().values()))
    assert moved, "PPO changed the weights"
