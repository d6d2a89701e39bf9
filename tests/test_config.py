"""Configs: unknown keys and bad values are one-line ConfigErrors naming the dotted field; the
cross-field rules hold; files that are missing or not YAML are ConfigErrors; dump/load round-trips;
one trunk config for every TRM; tune configs hold their training config (inline or a path)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from recursa.core.config import ConfigError, dump_config, load_config, parse_config
from recursa.core.trm import TRMConfig
from recursa.fc.config import TrainFCConfig, TrainFCRLConfig, TuneFCConfig
from recursa.gift.config import GiftEnvConfig, TrainGiftConfig, TuneGiftConfig


def load_yaml(tmp_path, text: str, model=TrainGiftConfig):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(path, model)


def config_error(tmp_path, text: str, model=TrainGiftConfig) -> str:
    with pytest.raises(ConfigError) as info:
        load_yaml(tmp_path, text, model)
    message = str(info.value)
    assert "\n" not in message, f"not one line: {message!r}"
    return message


def test_defaults_load_and_fit_a_laptop():
    config = load_config(None, TrainGiftConfig)
    assert config == TrainGiftConfig()
    assert config.ppo.minibatch_size <= config.ppo.train_batch_size
    assert config.env.max_recommendations <= config.env.num_candidates
    assert config.runners.num_env_runners * config.runners.num_cpus_per_env_runner <= 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ppo:\n  lrr: 0.1\n", "ppo.lrr: unknown key"),
        ("env:\n  num_cadidates: 4\n", "env.num_cadidates: unknown key"),
        ("itertions: 3\n", "itertions: unknown key"),
        ("model:\n  hidden: 32\n", "model.hidden: unknown key"),
    ],
)
def test_unknown_key_names_the_dotted_field(tmp_path, text, expected):
    assert config_error(tmp_path, text) == expected


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("ppo:\n  lr: -1\n", "ppo.lr"),
        ("ppo:\n  gamma: 1.5\n", "ppo.gamma"),
        ("env:\n  split: val\n", "env.split"),
        ("runners:\n  num_env_runners: -1\n", "runners.num_env_runners"),
        ("env:\n  num_candidates: many\n", "env.num_candidates"),
        ("env:\n  tool_failure_rate: 2\n", "env.tool_failure_rate"),
        ("model:\n  mixer: rnn\n", "model.mixer"),
        ("iterations: 0\n", "iterations"),
        ("bc:\n  episodes: 1\n", "bc.episodes"),
    ],
)
def test_bad_value_names_the_field(tmp_path, text, field):
    message = config_error(tmp_path, text)
    assert message.startswith(f"{field}: "), message
    assert len(message) > len(field) + 2  # and says why


def test_split_error_lists_the_allowed_values(tmp_path):
    message = config_error(tmp_path, "env:\n  split: val\n")
    assert "train" in message and "test" in message


def test_more_recommendations_than_candidates_is_rejected(tmp_path):
    message = config_error(tmp_path, "env:\n  num_candidates: 4\n  max_recommendations: 5\n")
    assert message.startswith("env"), message
    assert "max_recommendations" in message
    with pytest.raises(ValueError):
        GiftEnvConfig(num_candidates=4, max_recommendations=5)
    assert GiftEnvConfig(num_candidates=4, max_recommendations=4).max_recommendations == 4


def test_minibatch_larger_than_train_batch_is_rejected(tmp_path):
    message = config_error(tmp_path, "ppo:\n  train_batch_size: 100\n  minibatch_size: 200\n")
    assert "minibatch_size" in message and "train_batch_size" in message
    ok = load_yaml(tmp_path, "ppo:\n  train_batch_size: 200\n  minibatch_size: 200\n")
    assert ok.ppo.minibatch_size == 200


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml", TrainGiftConfig)
    with pytest.raises(ConfigError):
        load_config(tmp_path, TrainGiftConfig)  # a directory is not a config file


def test_invalid_yaml_is_a_one_line_config_error(tmp_path):
    message = config_error(tmp_path, "ppo: [\n  lr: 1\n")
    assert message.startswith("config:") and "YAML" in message


def test_top_level_must_be_a_mapping(tmp_path):
    assert config_error(tmp_path, "- a\n- b\n").startswith("config:")


def test_empty_file_gives_defaults(tmp_path):
    assert load_yaml(tmp_path, "") == TrainGiftConfig()


def test_values_from_yaml_are_applied(tmp_path):
    config = load_yaml(tmp_path, "iterations: 7\nenv:\n  split: test\n  tool_cost: 0.05\nppo:\n  lr: 0.001\n")
    assert config.iterations == 7
    assert config.env.split == "test" and config.env.tool_cost == 0.05
    assert config.ppo.lr == 0.001
    assert config.env.num_candidates == GiftEnvConfig().num_candidates  # the rest stays default


def test_parse_config_raises_config_error_not_validation_error():
    with pytest.raises(ConfigError, match=r"^env\.seed: "):
        parse_config({"env": {"seed": "x"}}, TrainGiftConfig)


def test_dump_then_load_round_trips(tmp_path):
    config = TrainGiftConfig(
        name="roundtrip",
        iterations=3,
        time_budget_s=12.5,
        env=GiftEnvConfig(split="test", num_candidates=6, max_recommendations=2, tool_cost=0.03),
        ppo={"lr": 1e-3, "train_batch_size": 256, "minibatch_size": 64},
        runners={"num_env_runners": 0},
    )
    path = tmp_path / "resolved.yaml"
    dump_config(config, path)
    assert load_config(path, TrainGiftConfig) == config
    # resolved: every field is written, defaults included
    written = yaml.safe_load(path.read_text())
    assert set(written) == set(TrainGiftConfig.model_fields)
    assert set(written["env"]) == set(GiftEnvConfig.model_fields)
    assert written["env"]["data_dir"] is None


def test_default_sub_configs_are_not_shared():
    first = TrainGiftConfig()
    first.env.seed = 42
    assert TrainGiftConfig().env.seed == 0


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("name", "model"), [
    ("gift_ppo", TrainGiftConfig), ("gift_pbt", TuneGiftConfig), ("fc_small", TrainFCConfig),
    ("fc_bfcl", TrainFCConfig), ("fc_asha", TuneFCConfig), ("fc_rl", TrainFCRLConfig),
])
def test_every_job_config_in_the_repository_loads(name, model):
    load_config(REPO / "jobs" / "configs" / f"{name}.yaml", model)


def test_a_tune_base_given_as_a_path_loads_that_training_yaml_relative_to_the_tune_yaml(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "ppo.yaml").write_text("name: ppo\nppo:\n  lr: 0.002\nmodel:\n  T: 3\n")
    (tmp_path / "tune").mkdir()
    (tmp_path / "tune" / "pbt.yaml").write_text("name: pbt\nbase: ../train/ppo.yaml\npbt:\n  population: 3\n")
    config = load_config(tmp_path / "tune" / "pbt.yaml", TuneGiftConfig)
    assert config.base == load_config(tmp_path / "train" / "ppo.yaml", TrainGiftConfig)
    assert (config.base.ppo.lr, config.base.model.T, config.pbt.population) == (0.002, 3, 3)
    assert config.train_config().name == "pbt"  # trials run under the search's name

    dump_config(config, tmp_path / "resolved.yaml")  # resolved: the base is written out inline
    assert isinstance(yaml.safe_load((tmp_path / "resolved.yaml").read_text())["base"], dict)
    assert load_config(tmp_path / "resolved.yaml", TuneGiftConfig) == config


def test_an_error_in_an_included_base_names_the_file_and_its_field(tmp_path):
    (tmp_path / "asha_base.yaml").write_text("model:\n  hidden: 64\n")
    message = config_error(tmp_path, "base: asha_base.yaml\n", model=TuneFCConfig)
    assert message == "base: asha_base.yaml: model.hidden: unknown key"


def test_the_gift_policy_and_the_tool_caller_share_one_trunk_config(tmp_path):
    gift = load_yaml(tmp_path, "model:\n  preset: tiny\n  T: 2\n")
    tool_caller = load_yaml(tmp_path, "model:\n  preset: tiny\n  T: 2\n", model=TrainFCConfig)
    assert isinstance(gift.model, TRMConfig) and isinstance(tool_caller.model, TRMConfig)
    assert gift.model.model_dump() == tool_caller.model.model_dump()
    assert (gift.model.hidden_size, gift.model.T, gift.model.n) == (128, 2, 6)


def test_the_tool_caller_keeps_its_own_trunk_defaults_and_rejects_the_mlp_mixer(tmp_path):
    assert load_yaml(tmp_path, "model:\n  T: 3\n", model=TrainFCConfig).model.hidden_size == 128
    assert load_yaml(tmp_path, "model:\n  T: 3\n").model.hidden_size == 64
    message = config_error(tmp_path, "model:\n  mixer: mlp\n", model=TrainFCConfig)
    assert message.startswith("model.mixer: the tool caller needs the attention mixer")


def test_a_run_config_saved_before_the_trunk_config_still_loads(tmp_path):
    config = load_yaml(tmp_path, "model:\n  hidden_size: 32\n  num_layers: 2\n  num_heads: 4\n  mixer: attention\n"
                                 "  T: 3\n  n: 1\n")
    assert (config.model.hidden_size, config.model.T, config.model.n) == (32, 3, 1)
    fc = load_yaml(tmp_path, "model:\n  preset: null\n  hidden_size: 64\n  num_layers: 2\n  num_heads: 4\n"
                             "  mixer: attention\n  T: 2\n  n: 2\n", model=TrainFCConfig)
    assert fc.model.hidden_size == 64
