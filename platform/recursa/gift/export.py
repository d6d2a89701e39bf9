"""Export the gift policy to ONNX (fp32) and quantize it to int8 with ONNX Runtime.

Dynamic quantization stores the weights of matrix products as int8 and quantizes activations
on the fly. The report compares the held-out reward of the PyTorch policy, the fp32 export and
the int8 export on the same users, and the file sizes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process
from ray.rllib.core.columns import Columns

from recursa.core.artifact import write_artifact
from recursa.gift.config import MAX_CANDIDATES, MIN_CANDIDATES
from recursa.gift.evaluate import evaluate_policy, module_policy
from recursa.gift.halting import evaluate_halting, halting_summary
from recursa.gift.module import TRMPolicyModule
from recursa.gift.onnx_policy import CYCLE, INITIAL_CARRY, SETTINGS, OnnxPolicy, onnx_file
from recursa.gift.policies import Policy, carrying_state
from recursa.gift.policy_io import WEIGHTS, load_policy, saved_halting_threshold


class _LogitsOnly(torch.nn.Module):
    """The policy's step from the learned start as a function of two tensors (what ONNX export
    needs): every step of a per-step policy, the first step of one that carries its recursion."""

    def __init__(self, module: TRMPolicyModule):
        super().__init__()
        self.module = module

    def forward(self, observations: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        batch = {Columns.OBS: {"observations": observations, "action_mask": action_mask}}
        return self.module.logits(self.module.answer_state(batch), action_mask)


class _OneCycle(torch.nn.Module):
    """One recursion cycle from a carry (y, z): logits, halting logit and the next carry."""

    def __init__(self, module: TRMPolicyModule):
        super().__init__()
        self.module = module

    def forward(self, observations: torch.Tensor, action_mask: torch.Tensor, y: torch.Tensor, z: torch.Tensor):
        logits, q_logit, (y, z) = self.module.one_cycle(observations, action_mask, (y, z))
        return logits, q_logit, y, z


def _export_int8(wrapper: torch.nn.Module, example: tuple, names: tuple[list[str], list[str]], shapes: dict,
                 fp32: Path, int8: Path) -> None:
    """`wrapper` to ONNX at fp32, then dynamically quantized to int8 with ONNX Runtime."""
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "raw.onnx"
        torch.onnx.export(wrapper.eval(), example, raw, dynamo=True, external_data=False, input_names=names[0],
                          output_names=names[1], dynamic_shapes=shapes, verbose=False)
        # The exporter's intermediate shape annotations trip ONNX's shape inference; drop them.
        graph = onnx.load(raw)
        del graph.graph.value_info[:]
        onnx.save(graph, raw)
        # ONNX Runtime's pre-processing folds the weight transposes into the initializers, so
        # that quantization finds (and shrinks) every matrix product's weights.
        quant_pre_process(str(raw), str(fp32), skip_symbolic_shape=True)
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8)


def export_gift_policy(policy_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Write policy.{fp32,int8}.onnx (all T cycles), cycle.{fp32,int8}.onnx and initial_carry.npy
    (one cycle at a time, for halting) and policy.json to `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    module, _ = load_policy(policy_dir)
    observation_space, num_actions = module.observation_space["observations"], module.action_space.n
    observations, mask = torch.zeros(2, *observation_space.shape), torch.ones(2, num_actions)
    # Batch and candidate count are dynamic: the action mask has one entry per candidate token too.
    batch, tokens = torch.export.Dim("batch"), torch.export.Dim("tokens", min=MIN_CANDIDATES + 1, max=MAX_CANDIDATES + 1)
    per_item = module.actions_per_item
    shapes = {"observations": {0: batch, 1: tokens},
              "action_mask": {0: batch, 1: per_item * tokens + module.num_global_actions - per_item}}
    _export_int8(_LogitsOnly(module), (observations, mask), (["observations", "action_mask"], ["logits"]), shapes,
                 out / onnx_file("fp32"), out / onnx_file("int8"))
    y, z = (state.contiguous() for state in module.trm.initial_carry(2, observation_space.shape[0]))
    _export_int8(_OneCycle(module), (observations, mask, y, z),
                 (["observations", "action_mask", "y", "z"], ["logits", "q_logit", "y_next", "z_next"]),
                 {**shapes, "y": {0: batch, 1: tokens}, "z": {0: batch, 1: tokens}},
                 out / onnx_file("fp32", CYCLE), out / onnx_file("int8", CYCLE))
    np.save(out / INITIAL_CARRY, torch.stack([module.trm.y_init, module.trm.z_init]).detach().numpy())
    shutil.copy(Path(policy_dir) / "policy.json", out / SETTINGS)
    write_artifact(out, "gift-export", "recursa.gift.export.export_gift_policy", source=str(Path(policy_dir).resolve()))
    return {"fp32": out / onnx_file("fp32"), "int8": out / onnx_file("int8"), "settings": out / SETTINGS}


def onnx_env_policy(policy: OnnxPolicy) -> Policy:
    """An evaluation policy (env, observation) -> action backed by an ONNX session, carrying the
    policy's recurrent state, if any, through each episode."""

    def step(observation: dict, carry):
        actions, carries = policy.step([observation], [carry])
        return actions[0], carries[0]

    return carrying_state(step)


def gift_export_report(policy_dir: str | Path, out_dir: str | Path, users: int, seed: int) -> dict:
    """Held-out reward and size of the PyTorch policy, the fp32 and the int8 export."""
    out = Path(out_dir)
    module, env_config = load_policy(policy_dir)
    rewards = {"torch_fp32": evaluate_policy(env_config, module_policy(module), users, seed)["mean_reward"]}
    for precision in ("fp32", "int8"):
        policy = OnnxPolicy(out, precision, halting_threshold=0)  # full depth; halting is measured below
        rewards[f"onnx_{precision}"] = evaluate_policy(env_config, onnx_env_policy(policy), users, seed)["mean_reward"]
    sizes = {"torch_fp32": (Path(policy_dir) / WEIGHTS).stat().st_size,
             "onnx_fp32": (out / onnx_file("fp32")).stat().st_size,
             "onnx_int8": (out / onnx_file("int8")).stat().st_size}
    report = {"model": "gift_policy", "held_out_users": users, "seed": seed, "mean_reward": rewards,
              "reward_lost_int8": rewards["torch_fp32"] - rewards["onnx_int8"], "bytes": sizes,
              "int8_size_ratio": sizes["onnx_int8"] / sizes["onnx_fp32"]}
    threshold = saved_halting_threshold(policy_dir)
    if threshold is not None:
        report["halting"] = {"torch_fp32": evaluate_halting(env_config, module, threshold, users, seed,
                                                            rewards["torch_fp32"])}
        policy = OnnxPolicy(out, "int8", halting_threshold=threshold)
        reward = evaluate_policy(env_config, onnx_env_policy(policy), users, seed)["mean_reward"]
        report["halting"]["onnx_int8"] = halting_summary(rewards["onnx_int8"], reward,
                                                         policy.cycles_run / policy.decisions, policy.cycles, threshold)
    (out / "export_report.json").write_text(json.dumps(report, indent=2))
    return report
