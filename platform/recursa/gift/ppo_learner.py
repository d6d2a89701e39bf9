"""The gift policy's PPO learner: RLlib's PPO loss plus two optional terms for fine-tuning a
behaviour-cloned policy.

Measured (bench/gift_rl_after_bc.py, docs/benchmarks.md): after the warm start, plain PPO spreads
the sharp cloned policy (entropy 0.4 -> 1.1 over 40 iterations with or without an entropy bonus,
with a smaller step, and with the value head refitted to the clone's returns), so the sampled
return falls while the greedy policy improves. Near-optimal, the standardised advantages are
mostly noise, and noise in the logits of a peaked distribution raises its entropy.

- An entropy ceiling (`entropy_target`, a value or a schedule over env steps): the loss gains
  `alpha * entropy`, and after every update `alpha` moves by `entropy_target_rate * (entropy -
  target)`, never below 0 (a Lagrange multiplier, as SAC tunes its temperature). Below the target
  PPO runs unchanged; above it, the policy is pulled back. Allowed to turn into a bonus, the
  multiplier made the entropy swing between 0.2 and 1.0 within a few iterations.
- A KL penalty to a reference policy (`bc_kl_coeff`): KL(reference || policy), its weight decaying
  linearly to zero by `bc_kl_until` env steps. The reference is the BC policy, or with `bc_kl_ema`
  an exponential moving average of the policy's weights that starts there (a reference that lags).
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME
from ray.rllib.utils.schedules.scheduler import Scheduler

ANCHOR_PATH, KL_COEFF, KL_UNTIL, ANCHOR_EMA = "bc_anchor_path", "bc_kl_coeff", "bc_kl_until", "bc_kl_ema"
ENTROPY_TARGET, ENTROPY_TARGET_RATE = "entropy_target", "entropy_target_rate"


def _masked_mean(values: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
    """The mean over real steps: sequences (a policy with recurrent state) are zero-padded."""
    return values[batch[Columns.LOSS_MASK]].mean() if Columns.LOSS_MASK in batch else values.mean()


class GiftPPOLearner(PPOTorchLearner):
    """`learner_config_dict`: ENTROPY_TARGET (None for off) and its rate; ANCHOR_PATH (the BC
    module's `save_to_path`, None for no KL term), the KL weight at the start, the env steps by
    which it has decayed to zero, and the reference's moving-average rate (0 keeps the BC policy)."""

    def build(self) -> None:
        super().build()
        settings = self.config.learner_config_dict
        self._anchor = None
        if settings.get(ANCHOR_PATH):
            self._anchor = RLModule.from_checkpoint(settings[ANCHOR_PATH]).to(self._device).eval()
            for parameter in self._anchor.parameters():
                parameter.requires_grad_(False)
        self._kl_weight = float(settings.get(KL_COEFF, 0.0))
        self._alpha = 0.0  # the entropy penalty's weight, tuned to keep the entropy under the target
        self._entropies: list[float] = []
        target = settings.get(ENTROPY_TARGET)
        self._entropy_target = None if target is None else Scheduler(target)

    def before_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().before_gradient_based_update(timesteps=timesteps)
        settings = self.config.learner_config_dict
        env_steps = timesteps.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0)
        if self._entropy_target is not None:
            self._entropy_target.update(env_steps)
        if self._anchor is not None:
            progress = env_steps / settings[KL_UNTIL]
            self._kl_weight = float(settings[KL_COEFF]) * max(0.0, 1.0 - progress)

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        settings = self.config.learner_config_dict
        if self._entropy_target is not None and self._entropies:
            mean_entropy = sum(self._entropies) / len(self._entropies)
            target = float(self._entropy_target.get_current_value())
            self._alpha = max(0.0, self._alpha + float(settings[ENTROPY_TARGET_RATE]) * (mean_entropy - target))
        self._entropies.clear()
        rate = float(settings.get(ANCHOR_EMA, 0.0))
        if self._anchor is not None and rate:
            with torch.no_grad():
                for anchor, current in zip(self._anchor.parameters(), self.module[DEFAULT_MODULE_ID].parameters()):
                    anchor.lerp_(current, rate)

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out) -> torch.Tensor:
        loss = super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        if self._entropy_target is None and self._anchor is None:
            return loss  # plain PPO
        logp = torch.log_softmax(fwd_out[Columns.ACTION_DIST_INPUTS], -1)
        allowed = batch[Columns.OBS]["action_mask"] > 0
        if self._entropy_target is not None:
            entropy = _masked_mean(-torch.where(allowed, logp.exp() * logp, torch.zeros_like(logp)).sum(-1), batch)
            self._entropies.append(float(entropy.detach()))
            self.metrics.log_value((module_id, "entropy_alpha"), self._alpha, window=1)
            self.metrics.log_value((module_id, "entropy_target"), float(self._entropy_target.get_current_value()),
                                   window=1)
            loss = loss + self._alpha * entropy
        if self._anchor is not None:
            with torch.no_grad():
                anchor_batch = {key: batch[key] for key in (Columns.OBS, Columns.STATE_IN) if key in batch}
                anchor_logits = self._anchor.forward_train(anchor_batch)[Columns.ACTION_DIST_INPUTS]
            anchor_logp = torch.log_softmax(anchor_logits, -1)
            terms = torch.where(allowed, anchor_logp.exp() * (anchor_logp - logp), torch.zeros_like(logp))
            kl = _masked_mean(terms.sum(-1), batch)
            self.metrics.log_value((module_id, "bc_kl"), kl.detach(), window=1)
            self.metrics.log_value((module_id, "bc_kl_weight"), self._kl_weight, window=1)
            loss = loss + self._kl_weight * kl
        return loss
