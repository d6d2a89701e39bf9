"""PPO anchored to the behaviour-cloned policy: RLlib's PPO loss plus a KL penalty to the BC policy
whose weight decays linearly to zero.

Measured (bench/gift_rl_after_bc.py, docs/benchmarks.md): after the warm start, plain PPO spreads
the sharp cloned policy (entropy 0.4 -> 1.1 over 40 iterations with or without an entropy bonus, and
with the value head refitted to the clone's returns), so the sampled return falls while the greedy
policy improves. KL(BC || policy) holds the policy near the clone while its advantages are still
noisy, and lets go as training goes on.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

ANCHOR_PATH, KL_COEFF, KL_UNTIL, ANCHOR_EMA = "bc_anchor_path", "bc_kl_coeff", "bc_kl_until", "bc_kl_ema"


class BCAnchoredPPOLearner(PPOTorchLearner):
    """`learner_config_dict`: the BC module's path (`save_to_path`), the KL weight at the start and
    the env steps by which it has decayed to zero."""

    def build(self) -> None:
        super().build()
        settings = self.config.learner_config_dict
        self._anchor = RLModule.from_checkpoint(settings[ANCHOR_PATH]).to(self._device).eval()
        for parameter in self._anchor.parameters():
            parameter.requires_grad_(False)
        self._kl_weight = float(settings[KL_COEFF])

    def before_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().before_gradient_based_update(timesteps=timesteps)
        settings = self.config.learner_config_dict
        progress = timesteps.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0) / settings[KL_UNTIL]
        self._kl_weight = float(settings[KL_COEFF]) * max(0.0, 1.0 - progress)

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        rate = float(self.config.learner_config_dict.get(ANCHOR_EMA, 0.0))
        if rate:
            with torch.no_grad():
                for anchor, current in zip(self._anchor.parameters(), self.module[DEFAULT_MODULE_ID].parameters()):
                    anchor.lerp_(current, rate)

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out) -> torch.Tensor:
        loss = super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        with torch.no_grad():
            anchor_batch = {key: batch[key] for key in (Columns.OBS, Columns.STATE_IN) if key in batch}
            anchor_logits = self._anchor.forward_train(anchor_batch)[Columns.ACTION_DIST_INPUTS]
        allowed = batch[Columns.OBS]["action_mask"] > 0
        anchor_logp = torch.log_softmax(anchor_logits, -1)
        logp = torch.log_softmax(fwd_out[Columns.ACTION_DIST_INPUTS], -1)
        terms = torch.where(allowed, anchor_logp.exp() * (anchor_logp - logp), torch.zeros_like(logp))
        kl_per_step = terms.sum(-1)
        # Sequences (a policy with recurrent state) are zero-padded; the loss mask marks real steps.
        kl = kl_per_step[batch[Columns.LOSS_MASK]].mean() if Columns.LOSS_MASK in batch else kl_per_step.mean()
        self.metrics.log_value((module_id, "bc_kl"), kl.detach(), window=1)
        self.metrics.log_value((module_id, "bc_kl_weight"), self._kl_weight, window=1)
        return loss + self._kl_weight * kl
