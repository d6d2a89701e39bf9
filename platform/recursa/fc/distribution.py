"""The policy's distribution over `FunctionCallingEnv` actions (see `ActionLayout`).

Every head is a block of independent categoricals given the state: pointer, counts, modes, enum
values, tags. The fallback shortlist is a ranking without replacement (Plackett-Luce, sampled by
Gumbel top-k) over the tags' copy scores, so it has no logits of its own. The inputs are those
logits, flattened in layout order, then each parameter's function (-1 for padding) and whether it
is required (`distribution_inputs`).

`logp` counts only the choices that shape the calls: the counts when a function is called; a
parameter's mode for the calls its function gets; its tags in span mode, its fallback in span
mode when required, its enum value in enum mode. The other choices are sampled too but cannot
change the reward, and leaving them out keeps their noise out of PPO's ratio and gradient.
`entropy` and `kl` sum over the choices the greedy action uses (the shortlist by its first pick).
"""

from __future__ import annotations

import math

import torch
from ray.rllib.core.distribution.distribution import Distribution
from ray.rllib.core.distribution.torch.torch_distribution import TorchDeterministic
from torch import Tensor

from recursa.fc.decode import copy_scores, shortlist
from recursa.fc.env import ActionLayout
from recursa.fc.features import ENUM, SPAN

HEADS = ("pointer", "counts", "modes", "enum", "tags")  # the blocks with logits, in layout order


def distribution_inputs(heads: dict[str, Tensor], param_function: Tensor, required: Tensor) -> Tensor:
    """[B, D] inputs of `CallDistribution`: `heads` (name -> [B, *shape, categories], at the
    layout's sizes), then param_function [B, P] (-1 for padding) and required [B, P]."""
    flat = [heads[name].flatten(1) for name in HEADS]
    return torch.cat([*flat, param_function.float(), required.float()], dim=-1)


def _per_row(values: Tensor, keep: Tensor) -> Tensor:
    """Sum of `values` where `keep`, per row of the batch."""
    return torch.where(keep, values, 0.0).reshape(len(values), -1).sum(-1)


def _shortlist_logp(scores: Tensor, picks: Tensor) -> Tensor:
    """Plackett-Luce log-probability of ranked picks [..., m] over scores [..., n]: each pick is a
    softmax over the entries not picked before."""
    taken = torch.zeros_like(scores, dtype=torch.bool)
    total = torch.zeros(picks.shape[:-1], dtype=scores.dtype)
    for i in range(picks.shape[-1]):
        pick = picks[..., i:i + 1]
        total = total + scores.gather(-1, pick).squeeze(-1) - scores.masked_fill(taken, -torch.inf).logsumexp(-1)
        taken = taken.scatter(-1, pick, True)
    return total


def _entropy(logits: Tensor) -> Tensor:
    return -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1)


def _kl(logits: Tensor, other: Tensor) -> Tensor:
    return (logits.softmax(-1) * (logits.log_softmax(-1) - other.log_softmax(-1))).sum(-1)


class CallDistribution(Distribution):
    """Structured call choices; build with `from_logits(inputs, layout=...)`."""

    def __init__(self, logits: dict[str, Tensor], param_function: Tensor, required: Tensor, layout: ActionLayout):
        super().__init__()
        self.logits, self.layout = logits, layout
        self.copy = copy_scores(logits["tags"])  # [B, P, K, Lq]: the fallback's scores
        self.param_function, self.required = param_function, required

    @staticmethod
    def required_input_dim(space=None, *, layout: ActionLayout, **kwargs) -> int:
        heads = sum(math.prod(layout.block(name).shape) * layout.block(name).categories for name in HEADS)
        return heads + 2 * layout.block("modes").shape[0]

    @classmethod
    def from_logits(cls, logits: Tensor, *, layout: ActionLayout, **kwargs) -> CallDistribution:
        parts, start = {}, 0
        for name in HEADS:
            block = layout.block(name)
            size = math.prod(block.shape) * block.categories
            parts[name] = logits[..., start:start + size].reshape(logits.shape[:-1] + block.shape + (block.categories,))
            start += size
        params = layout.block("modes").shape[0]
        param_function = logits[..., start:start + params].round().long()
        required = logits[..., start + params:start + 2 * params] > 0.5
        return cls(parts, param_function, required, layout)

    def _flat(self, parts: dict[str, Tensor]) -> Tensor:
        return torch.cat([parts[b.name].reshape(len(self.copy), -1) for b in self.layout.blocks], dim=-1)

    def _greedy(self) -> dict[str, Tensor]:
        parts = {name: logits.argmax(-1) for name, logits in self.logits.items()}
        parts["fallback"] = shortlist(self.copy, self.layout.block("fallback").picks)
        return parts

    def _relevant(self, parts: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per block, which choices of the action `parts` shape its calls (see the module docstring)."""
        pointer, modes = parts["pointer"], parts["modes"]
        calling = pointer > 0
        first = (pointer - 1).clamp(min=0)[:, None]
        counts = parts["counts"].scatter(1, first, parts["counts"].gather(1, first).clamp(min=1)) * calling[:, None]
        calls = counts.gather(1, self.param_function.clamp(min=0)) * (self.param_function >= 0)  # [B, P]
        active = torch.arange(modes.shape[-1]) < calls[..., None]  # [B, P, K]
        span = active & (modes == SPAN)
        return {"pointer": torch.ones_like(calling), "counts": calling[:, None].expand_as(counts),
                "modes": active, "enum": active & (modes == ENUM), "tags": span[..., None].expand_as(parts["tags"]),
                "fallback": span & self.required[..., None]}

    def sample(self) -> Tensor:
        parts = {name: torch.distributions.Categorical(logits=logits).sample() for name, logits in self.logits.items()}
        gumbel = -torch.empty_like(self.copy).exponential_().log()
        parts["fallback"] = shortlist(self.copy + gumbel, self.layout.block("fallback").picks)
        return self._flat(parts)

    def rsample(self, *args, **kwargs) -> Tensor:
        raise NotImplementedError("discrete choices have no reparameterised sample")

    def logp(self, value: Tensor, **kwargs) -> Tensor:
        parts = self.layout.split(value.long())
        relevant = self._relevant(parts)
        total = _per_row(_shortlist_logp(self.copy, parts["fallback"]), relevant["fallback"])
        for name, logits in self.logits.items():
            chosen = logits.log_softmax(-1).gather(-1, parts[name][..., None]).squeeze(-1)
            total = total + _per_row(chosen, relevant[name])
        return total

    def entropy(self, **kwargs) -> Tensor:
        relevant = self._relevant(self._greedy())
        total = _per_row(_entropy(self.copy), relevant["fallback"])
        for name, logits in self.logits.items():
            total = total + _per_row(_entropy(logits), relevant[name])
        return total

    def kl(self, other: CallDistribution, **kwargs) -> Tensor:
        relevant = self._relevant(self._greedy())
        total = _per_row(_kl(self.copy, other.copy), relevant["fallback"])
        for name, logits in self.logits.items():
            total = total + _per_row(_kl(logits, other.logits[name]), relevant[name])
        return total

    def to_deterministic(self) -> TorchDeterministic:
        """The greedy action: what `recursa.fc.decode.greedy_choices` chooses."""
        return TorchDeterministic(loc=self._flat(self._greedy()))
