"""Hardware profiles: the defaults recursa sizes from CPUs, memory and GPUs, and how configs override them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from recursa.core.config import load_config
from recursa.core.hardware import cluster_hardware, detect_hardware, profile_for, with_profile
from recursa.fc.config import TrainFCConfig
from recursa.gift.config import TrainGiftConfig
from recursa.llm.config import TrainLLMConfig

REPO = Path(__file__).resolve().parents[1]
RECURSA = Path(sys.executable).parent / "recursa"


def test_laptop_profile_is_the_config_defaults():
    profile = profile_for(cpus=2, memory_gb=8, gpus=0)
    gift = TrainGiftConfig()
    assert (profile.env_runners, profile.envs_per_env_runner, profile.cpus_per_env_runner) == (
        gift.runners.num_env_runners, gift.runners.num_envs_per_env_runner, gift.runners.num_cpus_per_env_runner)
    assert (profile.train_batch_size, profile.minibatch_size) == (gift.ppo.train_batch_size, gift.ppo.minibatch_size)
    assert (profile.learners, profile.gpus_per_learner) == (1, 0)
    assert profile.llm_batch_size == TrainLLMConfig().training.batch_size
    assert profile.serve_replicas == 1


def test_32_core_box_runs_a_runner_per_spare_core_and_a_larger_batch():
    profile = profile_for(cpus=32, memory_gb=128, gpus=0)
    assert profile.env_runners == 30  # two cores left for the driver and the learner
    assert profile.cpus_per_env_runner == 1.0
    assert profile.env_runners * profile.cpus_per_env_runner <= 32
    assert profile.train_batch_size > 2000 and profile.train_batch_size % profile.minibatch_size == 0
    # every environment contributes at least one step per iteration's batch
    assert profile.train_batch_size >= profile.env_runners * profile.envs_per_env_runner
    assert (profile.learners, profile.gpus_per_learner) == (1, 0)
    assert profile.serve_replicas == 8


def test_gpu_box_runs_one_learner_per_gpu():
    profile = profile_for(cpus=16, memory_gb=64, gpus=4)
    assert (profile.learners, profile.gpus_per_learner) == (4, 1)
    assert profile.llm_batch_size > profile_for(cpus=16, memory_gb=64, gpus=0).llm_batch_size
    assert profile.serve_replicas == 4


def test_little_memory_caps_the_env_runners():
    assert profile_for(cpus=16, memory_gb=4, gpus=0).env_runners == 4
    assert profile_for(cpus=16, memory_gb=0.5, gpus=0).env_runners == 2  # never fewer than the laptop's


BIG = profile_for(cpus=32, memory_gb=128, gpus=2)


def test_explicit_yaml_values_win_and_unset_ones_take_the_profile(tmp_path):
    path = tmp_path / "gift.yaml"
    path.write_text("runners:\n  num_env_runners: 3\nppo:\n  lr: 0.001\n")
    config = with_profile(load_config(path, TrainGiftConfig), BIG)
    assert config.runners.num_env_runners == 3  # written in the YAML
    assert config.runners.num_envs_per_env_runner == BIG.envs_per_env_runner
    assert config.runners.num_cpus_per_env_runner == BIG.cpus_per_env_runner
    assert (config.ppo.train_batch_size, config.ppo.minibatch_size) == (BIG.train_batch_size, BIG.minibatch_size)
    assert config.ppo.lr == 0.001


def test_a_yaml_batch_size_keeps_the_pair_as_written(tmp_path):
    path = tmp_path / "gift.yaml"
    path.write_text("ppo:\n  train_batch_size: 1000\n")
    config = with_profile(load_config(path, TrainGiftConfig), BIG)
    assert (config.ppo.train_batch_size, config.ppo.minibatch_size) == (1000, 250)


def test_shipped_configs_keep_every_value_they_write():
    for name, model in [("gift_ppo", TrainGiftConfig), ("fc_small", TrainFCConfig), ("llm_sft", TrainLLMConfig)]:
        written = load_config(REPO / "jobs" / "configs" / f"{name}.yaml", model)
        sized = with_profile(written, BIG)
        assert sized.model_dump(include=_written_fields(written)) == written.model_dump(include=_written_fields(written))
    gift = with_profile(load_config(REPO / "jobs/configs/gift_ppo.yaml", TrainGiftConfig), BIG)
    assert gift.runners.num_env_runners == 2  # gift_ppo.yaml sets it
    assert gift.runners.num_cpus_per_env_runner == BIG.cpus_per_env_runner  # it does not set this one


def _written_fields(model) -> dict:
    """The fields a YAML wrote, as pydantic's `include` mapping."""
    return {name: _written_fields(getattr(model, name)) if hasattr(getattr(model, name), "model_fields_set") else True
            for name in model.model_fields_set}


def test_workers_and_llm_batch_follow_the_gpus():
    fc = with_profile(TrainFCConfig(), BIG)
    assert (fc.workers.num_workers, fc.workers.use_gpu) == (2, True)
    assert fc.workers.cpus_per_worker == TrainFCConfig().workers.cpus_per_worker
    llm = with_profile(TrainLLMConfig(), BIG)
    assert (llm.workers.num_workers, llm.workers.use_gpu, llm.training.batch_size) == (2, True, BIG.llm_batch_size)
    assert llm.workers.cpus_per_worker == 1.0  # TrainLLMConfig's own default, not WorkerSettings'
    explicit = TrainLLMConfig.model_validate({"workers": {"num_workers": 1, "use_gpu": False},
                                              "training": {"batch_size": 8}})
    kept = with_profile(explicit, BIG)
    assert (kept.workers.num_workers, kept.workers.use_gpu, kept.training.batch_size) == (1, False, 8)


def test_detected_hardware_is_this_machine():
    hardware = detect_hardware()
    assert 1 <= hardware.cpus <= os.cpu_count()
    assert hardware.memory_gb > 0.5
    assert hardware.gpus >= 0


def test_doctor_json_reports_this_machine(tmp_path):
    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:1", "RAY_TMPDIR": str(tmp_path)}  # never reach a cluster
    result = subprocess.run([str(RECURSA), "doctor", "--json"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    hardware = detect_hardware()
    assert report["cpus"] == hardware.cpus and report["gpus"] == hardware.gpus
    assert report == json.loads(profile_for(*hardware).model_dump_json())
    assert list(tmp_path.iterdir()) == []  # no Ray session was started


def test_doctor_table_names_the_config_field_behind_each_default(tmp_path):
    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:1", "RAY_TMPDIR": str(tmp_path), "COLUMNS": "200"}
    result = subprocess.run([str(RECURSA), "doctor"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    for field in ("runners.num_env_runners", "ppo.train_batch_size", "workers.num_workers", "training.batch_size"):
        assert field in result.stdout


def test_training_on_the_2_cpu_test_ray_keeps_the_laptop_defaults(ray_session):
    hardware = cluster_hardware()
    assert (hardware.cpus, hardware.gpus) == (2, 0)
    assert with_profile(TrainGiftConfig(), profile_for(*hardware)) == TrainGiftConfig()
    assert with_profile(TrainLLMConfig(), profile_for(*hardware)) == TrainLLMConfig()
