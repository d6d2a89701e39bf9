"""Every saved or exported model directory describes itself in artifact.json, and
`open_artifact` opens any of them (or the run holding one), or says in one line which path was
wrong, what it expected there and the command that makes one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from recursa.core.artifact import ARTIFACT_FILE, open_artifact, write_artifact
from recursa.core.config import ConfigError
from recursa.core.trm import TRMConfig
from recursa.fc.artifact import save_fc_model
from recursa.fc.export import INT8_WEIGHTS, export_fc_int8
from recursa.fc.features import Featurizer
from recursa.fc.model import FunctionCallingTRM
from recursa.fc.tokenizer import CharTokenizer
from recursa.gift.config import GiftEnvConfig
from recursa.gift.env import NUM_GLOBAL_ACTIONS, gift_spaces
from recursa.gift.export import export_gift_policy
from recursa.gift.module import TRMPolicyModule
from recursa.gift.policy_io import save_policy
from recursa.llm.config import LLMModelSettings, LoRASettings
from recursa.llm.export import merge_adapter
from recursa.llm.models import load_causal_lm, save_adapter


@pytest.fixture(scope="module")
def gift_policy(tmp_path_factory) -> Path:
    env = GiftEnvConfig(num_items=60, num_users=20)
    observation_space, action_space = gift_spaces(env.num_candidates)
    torch.manual_seed(0)
    module = TRMPolicyModule(observation_space=observation_space, action_space=action_space, model_config={
        "hidden_size": 16, "num_layers": 1, "num_heads": 2, "T": 1, "n": 1, "num_global_actions": NUM_GLOBAL_ACTIONS})
    return save_policy(module, env, tmp_path_factory.mktemp("gift_run") / "policy")


@pytest.fixture(scope="module")
def fc_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    featurizer = Featurizer(CharTokenizer.train(["What is the weather in Paris?"]))
    model = FunctionCallingTRM(TRMConfig(hidden_size=32, num_heads=4, T=1, n=1), featurizer.tokenizer.vocab_size)
    return save_fc_model(model.eval(), featurizer.tokenizer, tmp_path_factory.mktemp("fc_run") / "model")


@pytest.fixture(scope="module")
def adapter(tiny_llm, tmp_path_factory) -> Path:
    model, tokenizer = load_causal_lm(LLMModelSettings(path=str(tiny_llm), lora=LoRASettings(r=2, alpha=4)))
    return save_adapter(model, tokenizer, tmp_path_factory.mktemp("llm_run") / "adapter")


def test_each_writer_describes_its_directory_and_opens_as_its_kind(gift_policy, fc_model, adapter, tiny_llm,
                                                                     tmp_path):
    written = {
        "gift-policy": gift_policy,
        "gift-export": export_gift_policy(gift_policy, tmp_path / "gift_export")["settings"].parent,
        "fc-model": fc_model,
        "fc-int8": export_fc_int8(fc_model, tmp_path / "fc_export"),
        "lora-adapter": adapter,
        "llm-merged": (merge_adapter(adapter, tmp_path / "merged"), tmp_path / "merged")[1],
        "llm-base": tiny_llm,
    }
    for kind, directory in written.items():
        artifact = open_artifact(directory, expect=kind)
        assert artifact.kind == kind and artifact.path == directory
        assert artifact.format_version == 1 and artifact.producer.recursa
        on_disk = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}
        assert set(artifact.files) <= on_disk and ARTIFACT_FILE not in artifact.files
    assert "policy.safetensors" in open_artifact(gift_policy, "gift-policy").files
    assert "policy.int8.onnx" in open_artifact(tmp_path / "gift_export", "gift-export").files
    assert INT8_WEIGHTS in open_artifact(tmp_path / "fc_export", "fc-int8").files
    assert "tokenizer/" in "".join(open_artifact(fc_model, "fc-model").files)


def test_a_run_directory_opens_the_model_it_holds(gift_policy, fc_model, adapter):
    for model_dir, kind in ((gift_policy, "gift-policy"), (fc_model, "fc-model"), (adapter, "lora-adapter")):
        assert open_artifact(model_dir.parent, expect=kind).path == model_dir


def test_one_of_several_expected_kinds_is_accepted(gift_policy, fc_model):
    assert open_artifact(gift_policy, expect=("gift-policy", "fc-model")).kind == "gift-policy"
    assert open_artifact(fc_model, expect=("gift-policy", "fc-model")).kind == "fc-model"


def _error(path: Path, expect) -> str:
    with pytest.raises(ConfigError) as error:
        open_artifact(path, expect=expect)
    message = str(error.value)
    assert len(message.splitlines()) == 1
    return message


def test_a_missing_directory_is_named_with_what_was_expected(tmp_path):
    message = _error(tmp_path / "nowhere", "gift-policy")
    assert message.startswith(f"{tmp_path / 'nowhere'}: expected a gift-policy (artifact.json)")
    assert "`recursa train gift`" in message


def test_a_directory_without_artifact_json_is_named(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    message = _error(tmp_path, ("fc-model", "fc-int8"))
    assert message.startswith(f"{tmp_path}: expected a fc-model or fc-int8 (artifact.json), found a directory without")
    assert "`recursa train fc`" in message


def test_a_model_of_the_wrong_kind_is_named_with_the_kind_found(fc_model):
    message = _error(fc_model, "gift-policy")
    assert message.startswith(f"{fc_model}: expected a gift-policy") and "found a fc-model" in message


def test_a_malformed_artifact_json_names_the_file(tmp_path):
    (tmp_path / ARTIFACT_FILE).write_text(json.dumps({"kind": "fc-model"}))
    assert str(tmp_path / ARTIFACT_FILE) in _error(tmp_path, "fc-model")


def test_writers_may_record_their_own_fields(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\0")
    write_artifact(tmp_path, "fc-model", "a test", source="runs/x")
    artifact = open_artifact(tmp_path, "fc-model")
    assert artifact.files == ["weights.bin"] and artifact.model_extra == {"source": "runs/x"}
    assert artifact.producer.by == "a test"


def test_exporting_an_empty_directory_exits_2_naming_it(recursa_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    code, stderr = recursa_cli(["export", "trm", "--checkpoint", tmp_path / "empty", "--out", tmp_path / "out"])
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    assert f"{tmp_path / 'empty'}: expected a gift-policy or fc-model" in lines[0]
    assert "Traceback" not in stderr and not (tmp_path / "out").exists()
