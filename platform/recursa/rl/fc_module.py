"""The tool-calling TRM as an RLlib policy for `FunctionCallingEnv` (MultiDiscrete actions).

The module runs `FunctionCallingTRM` on the padded slots and lays its heads out in the action's
order: the function pointer; per parameter the mode logits (first call); the span start (B
score of each query token) and end (I-or-B score) logits; the enum pointer. Masked choices keep
the model's large negative logits. The value reads the CLS answer state. Weights start from a
supervised model directory (`init_from`) when given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchMultiCategorical
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from safetensors.torch import load_file
from torch import nn

from recursa.fc.features import SLOT_FIELDS, TAG_B, TAG_I, FCLimits
from recursa.fc.model import NEG, FunctionCallingTRM
from recursa.models.trm import TRMConfig


class FunctionCallerModule(TorchRLModule, ValueFunctionAPI):
    """model_config: `trm` (TRMConfig fields), `vocab_size`, optional `init_from` (model dir)."""

    def setup(self) -> None:
        config = self.model_config
        self.limits = FCLimits()
        self.caller = FunctionCallingTRM(TRMConfig(**config["trm"]), int(config["vocab_size"]), self.limits)
        if config.get("init_from"):
            self.caller.load_state_dict(load_file(Path(config["init_from"]) / "model.safetensors"))
        self.value_head = nn.Linear(self.caller.config.hidden_size, 1)
        self.action_dist_cls = TorchMultiCategorical.get_partial_dist_cls(
            input_lens=[int(size) for size in self.action_space.nvec])

    def _batch(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = {name: obs[name].long() for name in SLOT_FIELDS}
        batch["slot_mask"] = obs["slot_mask"].bool()
        batch["query_mask"] = obs["query_mask"].bool()
        batch["function_slots"] = obs["function_slots"].long()
        batch["function_mask"] = obs["function_mask"].bool()
        batch["param_slots"] = obs["param_slots"].long()
        batch["param_mask"] = obs["param_mask"].bool()
        batch["enum_slots"] = obs["enum_slots"].long()
        batch["enum_param"] = obs["enum_owner"].long() - 1
        batch["mode_allowed"] = obs["mode_allowed"].bool()
        return batch

    def _outputs(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = self._batch(batch[Columns.OBS])
        output = self.caller(inputs)
        tags = output.tags[:, :, 0]  # [B, P, Lq, 3], first call
        outside = ~inputs["query_mask"][:, None, :]
        start = tags[..., TAG_B].masked_fill(outside, NEG)
        end = torch.maximum(tags[..., TAG_B], tags[..., TAG_I]).masked_fill(outside, NEG)
        logits = torch.cat([
            output.pointer,
            output.modes[:, :, 0].flatten(1),
            start.flatten(1),
            end.flatten(1),
            output.enum[:, :, 0].flatten(1),
        ], dim=-1)
        return logits, output.carry[0][:, 0]

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        logits, _ = self._outputs(batch)
        return {Columns.ACTION_DIST_INPUTS: logits}

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        logits, state = self._outputs(batch)
        return {Columns.ACTION_DIST_INPUTS: logits, Columns.EMBEDDINGS: state}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        if embeddings is None:
            embeddings = self._outputs(batch)[1]
        return self.value_head(embeddings).squeeze(-1)
