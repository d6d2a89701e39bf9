"""The training skeleton: each recipe puts its model and every batch on the device it is given.

No GPU is needed to check that. The stand-in device function returns the `meta` device and, in
the Ray Train worker, hooks every module's forward: the first forward records the devices of the
module's parameters and tensor inputs, then stops the run. A recipe that left its model or a batch
on the CPU shows `cpu` there (as it would on a GPU worker).
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import pytest
import torch
from ray import cloudpickle

from recursa.core.config import ConfigError
from recursa.core.training import Placement, adamw_with_warmup, check_run_dir

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the stand-in runs in Ray Train workers


class _Stop(Exception):
    """Ends the run once the first forward is recorded."""


class MetaDevice:
    """A device function for `Placement`: `meta`, and a record of the first forward pass."""

    def __init__(self, record: Path):
        self.record = record

    def __call__(self) -> torch.device:
        record = self.record

        def first_forward(module, args):
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            tensors += [v for a in args if isinstance(a, dict) for v in a.values() if isinstance(v, torch.Tensor)]
            parameters = list(module.parameters(recurse=False))
            if not tensors or not parameters:
                return
            record.write_text(json.dumps({"module": type(module).__name__,
                                          "inputs": sorted({t.device.type for t in tensors}),
                                          "parameters": sorted({p.device.type for p in parameters})}))
            raise _Stop

        self.hook = torch.nn.modules.module.register_module_forward_pre_hook(first_forward)
        return torch.device("meta")


def run_until_first_forward(fit, record: Path) -> dict:
    with pytest.raises(Exception, match="_Stop"):  # the stand-in ends the run, before any error of its own
        fit(MetaDevice(record))
    return json.loads(record.read_text())


@pytest.mark.slow
def test_the_tool_caller_recipe_trains_where_the_device_function_says(ray_session, tmp_path):
    from recursa.core.runtime import fit_on_ray_train
    from recursa.fc.train import prepare_run, train_loop
    from test_fc_training import tiny_config

    config = tiny_config(tmp_path)
    run_dir = prepare_run(config, resume=False)
    seen = run_until_first_forward(
        lambda device_fn: fit_on_ray_train(train_loop, config, config.workers, run_dir, "fc", False, device_fn),
        tmp_path / "record.json")
    assert seen["inputs"] == ["meta"] and seen["parameters"] == ["meta"], seen


@pytest.mark.slow
def test_the_sft_recipe_trains_where_the_device_function_says(ray_session, tmp_path, tiny_llm):
    from recursa.core.runtime import fit_on_ray_train
    from recursa.llm.sft import train_loop
    from recursa.llm.train import prepare_llm_run
    from test_llm_training import config

    settings = config(tmp_path, tiny_llm)
    run_dir = prepare_llm_run(settings, resume=False)
    seen = run_until_first_forward(
        lambda device_fn: fit_on_ray_train(train_loop, settings, settings.workers, run_dir, "sft", False, device_fn),
        tmp_path / "record.json")
    assert seen["inputs"] == ["meta"] and seen["parameters"] == ["meta"], seen


def test_the_grpo_update_moves_each_minibatch_to_the_placement(tmp_path, tiny_llm):
    """The GRPO learner's step on a model the placement holds (in process: rollouts need Ray)."""
    from recursa.llm.batches import encode_pairs
    from recursa.llm.config import LLMModelSettings
    from recursa.llm.grpo import grpo_update
    from recursa.llm.models import load_causal_lm
    from test_llm_training import config

    settings = config(tmp_path, tiny_llm)
    model, tokenizer = load_causal_lm(LLMModelSettings(path=str(tiny_llm), lora=settings.model.lora))
    record = tmp_path / "record.json"
    device_fn = MetaDevice(record)
    placement = Placement(device_fn)
    try:
        model.to(placement.device)
        batch = encode_pairs(tokenizer, ["x = 1 + 1", "y = 2 * 3"], [" add_terms(2)", " state_answer(6)"], 64)
        optimizer, _ = adamw_with_warmup(model.parameters(), lr=1e-3, weight_decay=0.0, warmup_steps=0,
                                         total_steps=1)
        with pytest.raises(_Stop):
            grpo_update(model, model, batch, torch.tensor([1.0, -1.0]), optimizer, settings,
                        torch.Generator().manual_seed(0), placement)
    finally:
        device_fn.hook.remove()  # the hook is global: this test runs in pytest's own process
    seen = json.loads(record.read_text())
    assert seen["inputs"] == ["meta"] and seen["parameters"] == ["meta"], seen


def test_a_new_run_refuses_a_started_directory_and_resume_needs_one(tmp_path):
    check_run_dir(tmp_path / "fresh", resume=False, started=("model",), resumable_from="config.yaml")
    (tmp_path / "model").mkdir()
    with pytest.raises(ConfigError, match="pass --resume or pick another name"):
        check_run_dir(tmp_path, resume=False, started=("model",), resumable_from="config.yaml")
    with pytest.raises(ConfigError, match=r"nothing to resume at .* \(no config\.yaml\)"):
        check_run_dir(tmp_path, resume=True, started=("model",), resumable_from="config.yaml")
    (tmp_path / "config.yaml").write_text("{}")
    check_run_dir(tmp_path, resume=True, started=("model",), resumable_from="config.yaml")


def test_the_schedule_warms_up_then_decays_to_its_floor():
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer, scheduler = adamw_with_warmup([weight], lr=1.0, weight_decay=0.0, warmup_steps=4, total_steps=20,
                                             min_lr_ratio=0.1)
    rates = []
    for _ in range(20):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert rates[:5] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert all(a >= b for a, b in itertools.pairwise(rates[4:])) and rates[-1] == pytest.approx(0.1, abs=0.01)
    _, constant = adamw_with_warmup([weight], lr=1.0, weight_decay=0.0, warmup_steps=0, total_steps=20,
                                    decay="constant")
    assert constant.get_last_lr()[0] == 1.0
