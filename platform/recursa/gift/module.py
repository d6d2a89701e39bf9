"""The TRM as an RLlib policy (new API stack): TorchRLModule + ValueFunctionAPI, action masking.

The observation is a set of tokens (token 0: the user and the episode, marked by its type flag;
tokens 1..K: candidate items). Tokens are projected to the TRM's width and form x; the TRM
(attention, no positions) recurses on (y, z) at a fixed depth; the heads read the answer state y:
  - global actions (finish, the tools) and the value from y at token 0,
  - "recommend item i" from y at token 1 + i (a pointer over the candidates), and with per-item
    tools (gift.focus) "call tool j on item i" there too: `actions_per_item` logits per candidate.
Masked actions get a logit of FLOAT_MIN, so they are never sampled and carry no gradient.
No parameter depends on K: the candidates are a set, and a policy trained at one K acts at any other.

Recursion `per_step` (the default) starts every step from the learned (y, z) and runs all T
cycles. `across_steps` makes (y, z) the module's recurrent state (RLlib's STATE_IN/STATE_OUT):
each step runs T cycles from where the last step's left off, so the reasoning accumulates over
the episode at a fraction of the depth per step. Each step is then one of the TRM's deep
supervision steps: its carry comes in detached, and gradients stay within the step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.torch_utils import FLOAT_MIN
from torch import nn

from recursa.core.rllib_warnings import drop_false_rlmodule_config_warning
from recursa.core.trm import Carry, TRMConfig, TRMCore
from recursa.gift.config import Recursion

drop_false_rlmodule_config_warning()  # built with the current constructor arguments; see there

def observation_batch(observation: dict[str, Any]) -> dict[str, Any]:
    """One environment observation as a module batch of one."""
    return {Columns.OBS: {key: torch.from_numpy(value)[None] for key, value in observation.items()}}


class TRMPolicyModule(TorchRLModule, ValueFunctionAPI):
    """Policy and value heads on a Tiny Recursive Model trunk.

    model_config: the trunk's `TRMConfig` fields, `num_global_actions` (actions read from token 0),
    `actions_per_item` (actions read from each candidate token, 1 unless the tools are per item)
    and `recursion` (`Recursion`; "per_step" when absent). The trunk's sequence is the
    observation's tokens, which may number differently from the spaces it was built with (any K).
    """

    def setup(self) -> None:
        obs_space = self.observation_space["observations"]
        num_tokens, token_dim = obs_space.shape
        config = dict(self.model_config)  # RLlib merges its default model config into ours
        self.num_global_actions = int(config["num_global_actions"])
        self.recursion: Recursion = config.get("recursion", "per_step")
        if self.recursion not in ("per_step", "across_steps"):
            raise ValueError(f"recursion must be per_step or across_steps, got {self.recursion!r}")
        self.actions_per_item = int(config.get("actions_per_item", 1))
        if self.num_global_actions + (num_tokens - 1) * self.actions_per_item != self.action_space.n:
            raise ValueError("action space must be num_global_actions + actions_per_item per candidate token")
        trunk = {key: value for key, value in config.items() if key in TRMConfig.model_fields}
        self.trm_config = TRMConfig(**{**trunk, "seq_len": None})
        if self.trm_config.mixer != "attention":
            raise ValueError("the gift policy's mixer must be attention: its candidates are a set of any size")
        self.token_dim = token_dim
        hidden = self.trm_config.hidden_size
        self.embed = nn.Linear(token_dim, hidden, bias=False)
        self.trm = TRMCore(self.trm_config)
        self.global_head = nn.Linear(hidden, self.num_global_actions)
        self.item_head = nn.Linear(hidden, self.actions_per_item)
        self.value_head = nn.Linear(hidden, 1)
        for head in (self.global_head, self.item_head):  # near-uniform initial policy
            nn.init.normal_(head.weight, std=0.01)
            nn.init.zeros_(head.bias)

    def answer_state(self, batch: dict[str, Any]) -> torch.Tensor:
        """The TRM's answer y, [B, tokens, hidden], for a batch of observations (per-step recursion)."""
        tokens = batch[Columns.OBS]["observations"]
        x = self.embed(tokens)
        return self.trm(x).y

    def get_initial_state(self) -> dict[str, np.ndarray]:
        """The recurrent state at an episode's start: the learned (y, z) for the spaces' tokens
        (nothing with per-step recursion, which makes the module stateless for RLlib)."""
        if self.recursion == "per_step":
            return {}
        y, z = self.trm.initial_carry(1, self.observation_space["observations"].shape[0])
        return {"y": y[0].detach().cpu().numpy(), "z": z[0].detach().cpu().numpy()}

    def carried_answer_states(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Across-steps recursion over a batch of sequences [B, time, tokens, dim] from STATE_IN:
        the answers [B, time, tokens, hidden] and the state after the last step."""
        tokens = batch[Columns.OBS]["observations"]
        if tokens.dim() != 4:
            raise ValueError(f"across-steps recursion takes observations [B, time, tokens, dim], got {tuple(tokens.shape)}")
        state = batch[Columns.STATE_IN]
        carry: Carry = (state["y"], state["z"])
        answers = []
        for step in range(tokens.shape[1]):
            out = self.trm(self.embed(tokens[:, step]), carry=carry)
            answers.append(out.y)
            carry = out.carry
        return torch.stack(answers, dim=1), {"y": carry[0], "z": carry[1]}

    def one_cycle(self, observations: torch.Tensor, action_mask: torch.Tensor, carry: Carry | None = None,
                  ) -> tuple[torch.Tensor, torch.Tensor, Carry]:
        """One recursion cycle from `carry` (the learned start when None): the masked logits and the
        halting logit of its answer, and the carry for the next cycle. `T` of these make a forward."""
        out = self.trm(self.embed(observations), carry=carry, T=1)
        return self.logits(out.y, action_mask), out.q_logit, out.carry

    @torch.no_grad()
    def halting_logits(self, observations: torch.Tensor, action_mask: torch.Tensor, threshold: float,
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference that stops recursing early: cycles run one at a time, and a row stops once its Q
        head says its answer has settled (sigmoid(q) >= threshold), at the latest after T cycles.
        Returns the masked logits [B, A] and the cycles each row ran [B]."""
        batch = observations.shape[0]
        logits = torch.empty(action_mask.shape, dtype=torch.float32)
        cycles = torch.zeros(batch, dtype=torch.long)
        running, carry = torch.arange(batch), None
        for cycle in range(1, self.trm_config.T + 1):
            cycle_logits, q_logit, carry = self.one_cycle(observations[running], action_mask[running], carry)
            settled = torch.sigmoid(q_logit) >= threshold if cycle < self.trm_config.T else torch.ones_like(q_logit, dtype=torch.bool)
            logits[running[settled]] = cycle_logits[settled]
            cycles[running[settled]] = cycle
            running, carry = running[~settled], (carry[0][~settled], carry[1][~settled])
            if len(running) == 0:
                break
        return logits, cycles

    def logits(self, y: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        """Masked action logits [..., A] from answer states y [..., tokens, hidden]."""
        logits = torch.cat([self.global_head(y[..., 0, :]), self.item_head(y[..., 1:, :]).flatten(-2)], dim=-1)
        return torch.where(action_mask > 0, logits, torch.full_like(logits, FLOAT_MIN))

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self._forward_train(batch)

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.recursion == "per_step":
            y = self.answer_state(batch)
        else:
            y, out[Columns.STATE_OUT] = self.carried_answer_states(batch)
        out[Columns.ACTION_DIST_INPUTS] = self.logits(y, batch[Columns.OBS]["action_mask"])
        out[Columns.EMBEDDINGS] = y[..., 0, :]
        return out

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        if embeddings is None:
            embeddings = self._forward_train(batch)[Columns.EMBEDDINGS]
        return self.value_head(embeddings).squeeze(-1)

    def step_logits(self, observation: dict[str, np.ndarray], carry: Carry | None = None,
                    ) -> tuple[torch.Tensor, Carry | None]:
        """The masked logits [A] for one environment observation and, with across-steps recursion,
        the carry the next step of the episode starts from (None starts an episode)."""
        batch = observation_batch(observation)
        with torch.no_grad():
            if self.recursion == "per_step":
                return self.forward_inference(batch)[Columns.ACTION_DIST_INPUTS][0], None
            obs = batch[Columns.OBS]
            if carry is None:
                carry = self.trm.initial_carry(1, obs["observations"].shape[1])
            batch = {Columns.OBS: {key: value[:, None] for key, value in obs.items()},
                     Columns.STATE_IN: {"y": carry[0], "z": carry[1]}}
            out = self.forward_inference(batch)
        return out[Columns.ACTION_DIST_INPUTS][0, 0], (out[Columns.STATE_OUT]["y"], out[Columns.STATE_OUT]["z"])
