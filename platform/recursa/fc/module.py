"""The tool-calling TRM as an RLlib policy for `FunctionCallingEnv`.

The module runs `FunctionCallingTRM` on the observed slots cut to the longest example of the
batch (the batch `collate` would build, so the outputs equal supervised inference), pads its
heads back to the action layout's fixed sizes and hands them to `CallDistribution`. Padding is
constant, so it carries no gradient. The value reads the CLS answer state. Weights start from a
supervised model directory (`init_from`) when given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.nn.functional as F
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from safetensors.torch import load_file
from torch import Tensor, nn

from recursa.core.rllib_warnings import drop_false_rlmodule_config_warning
from recursa.core.trm import TRMConfig
from recursa.fc.artifact import embedding_spec
from recursa.fc.distribution import CallDistribution, distribution_inputs
from recursa.fc.env import ActionLayout
from recursa.fc.features import SLOT_FIELDS, FCLimits
from recursa.fc.model import NEG, FCOutput, FunctionCallingTRM, outside_query_is_o

drop_false_rlmodule_config_warning()  # built with the current constructor arguments; see there


def model_batch(obs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Padded observations as the model's input batch, cut to the longest example's sizes."""
    def longest(mask: Tensor) -> int:
        return max(1, int(mask.sum(-1).max()))

    slots, query = longest(obs["slot_mask"]), longest(obs["query_mask"])
    functions, params = longest(obs["function_mask"]), longest(obs["param_mask"])
    enums = longest(obs["enum_owner"] > 0)
    batch = {name: obs[name][:, :slots].long() for name in SLOT_FIELDS}
    batch["slot_mask"] = obs["slot_mask"][:, :slots].bool()
    batch["query_mask"] = obs["query_mask"][:, :query].bool()
    batch["function_slots"] = obs["function_slots"][:, :functions].long()
    batch["function_mask"] = obs["function_mask"][:, :functions].bool()
    batch["param_slots"] = obs["param_slots"][:, :params].long()
    batch["param_mask"] = obs["param_mask"][:, :params].bool()
    batch["enum_slots"] = obs["enum_slots"][:, :enums].long()
    batch["enum_param"] = obs["enum_owner"][:, :enums].long() - 1
    batch["mode_allowed"] = obs["mode_allowed"][:, :params].bool()
    return batch


def _pad(x: Tensor, shape: tuple[int, ...], value: float) -> Tensor:
    """x [B, *s] padded at the end of every dim after the batch to [B, *shape]."""
    widths = []
    for have, want in zip(reversed(x.shape[1:]), reversed(shape)):
        widths += [0, want - have]
    return F.pad(x, widths, value=value)


def layout_heads(output: FCOutput, batch: dict[str, Tensor], layout: ActionLayout) -> dict[str, Tensor]:
    """The model's heads padded to the layout's sizes: padding loses to any real choice (pointer,
    modes, enum), is a constant (counts), or is O (tags)."""
    def size(name: str) -> tuple[int, ...]:
        return (*layout.block(name).shape, layout.block(name).categories)

    lq = layout.block("tags").shape[-1]
    query_mask = _pad(batch["query_mask"].float(), (lq,), 0.0).bool()
    return {
        "pointer": _pad(output.pointer, size("pointer"), NEG),
        "counts": _pad(output.counts, size("counts"), 0.0),
        "modes": _pad(output.modes, size("modes"), NEG),
        "enum": _pad(output.enum, size("enum"), NEG),
        "tags": outside_query_is_o(_pad(output.tags, size("tags"), 0.0), query_mask),
    }


class FunctionCallerModule(TorchRLModule, ValueFunctionAPI):
    """model_config: `trm` (the trunk's `TRMConfig` fields), `vocab_size`, optional `embedding` (a
    pretrained embedding's spec, as model.json records it) and `init_from` (model dir)."""

    def setup(self) -> None:
        config = self.model_config
        self.limits = FCLimits()
        self.layout = ActionLayout.for_limits(self.limits)
        self.caller = FunctionCallingTRM(TRMConfig(**config["trm"]), int(config["vocab_size"]), self.limits,
                                         embedding_spec(config))
        if config.get("init_from"):
            self.caller.load_state_dict(load_file(Path(config["init_from"]) / "model.safetensors"))
        self.value_head = nn.Linear(self.caller.config.hidden_size, 1)
        self.action_dist_cls = CallDistribution.get_partial_dist_cls(layout=self.layout)

    def _outputs(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        inputs = model_batch(batch[Columns.OBS])
        output = self.caller(inputs)
        params = self.layout.block("modes").shape[0]
        owner = inputs["function_id"].gather(1, inputs["param_slots"]) - 1
        param_function = _pad(owner.masked_fill(~inputs["param_mask"], -1), (params,), -1)
        required = _pad(inputs["required"].gather(1, inputs["param_slots"]) * inputs["param_mask"], (params,), 0)
        heads = layout_heads(output, inputs, self.layout)
        return distribution_inputs(heads, param_function, required), output.carry[0][:, 0]

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        logits, _ = self._outputs(batch)
        return {Columns.ACTION_DIST_INPUTS: logits}

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        logits, state = self._outputs(batch)
        return {Columns.ACTION_DIST_INPUTS: logits, Columns.EMBEDDINGS: state}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> Tensor:
        if embeddings is None:
            embeddings = self._outputs(batch)[1]
        return self.value_head(embeddings).squeeze(-1)
