"""A learned reward: a logistic regression over trace features, trained on hand-labelled traces.

Features are a hashed bag of words (query, response and tool names, log counts, L2-normalised) and
a few numbers: tool success rate, whether tools were used, how many, task completion rate, and the
response's length. Hashing uses CRC32, so features are the same in every process. The model is
saved as safetensors (weights) plus JSON (settings); nothing is pickled.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from recursa.traces.models import ExecutionTrace
from recursa.traces.rewards import Reward, RewardResult

_WORD = re.compile(r"\w+")
_NUMERIC_FEATURES = 5


def trace_features(trace: ExecutionTrace, buckets: int) -> torch.Tensor:
    """The feature vector of `trace`: `buckets` hashed word counts, then the numeric features."""
    words = torch.zeros(buckets)
    tokens = _WORD.findall(f"{trace.query} {trace.final_response}".lower())
    tokens += [f"tool:{call.name}" for call in trace.tool_calls]
    for token in tokens:
        words[zlib.crc32(token.encode()) % buckets] += 1.0
    words = torch.log1p(words)
    words = words / words.norm().clamp_min(1e-8)
    tasks_done = sum(task.status == "completed" for task in trace.tasks) / len(trace.tasks) if trace.tasks else 0.0
    numeric = torch.tensor([
        trace.tool_success_rate or 0.0,
        float(bool(trace.tool_calls)),
        math.log1p(len(trace.tool_calls)) / 3,
        tasks_done,
        math.log1p(len(trace.final_response)) / 10,
    ])
    return torch.cat([words, numeric])


class LearnedReward(Reward):
    """The probability that a person would label the trace good, from a classifier fitted on labels."""

    name = "learned"
    default_weight = 1.0

    def __init__(self, weight: float | None = None, *, buckets: int = 2048):
        super().__init__(weight)
        self.buckets = buckets
        self.model = torch.nn.Linear(buckets + _NUMERIC_FEATURES, 1)
        self.fitted = False

    def fit(self, traces: Sequence[ExecutionTrace], *, epochs: int = 300, lr: float = 0.1,
            weight_decay: float = 1e-4, seed: int = 0) -> LearnedReward:
        """Train on the traces that carry a hand label (`trace.label`); both labels must occur."""
        labelled = [trace for trace in traces if trace.label is not None]
        labels = torch.tensor([1.0 if trace.label else 0.0 for trace in labelled])
        if len(set(labels.tolist())) < 2:
            raise ValueError("LearnedReward.fit needs labelled traces of both kinds (good and bad)")
        features = torch.stack([trace_features(trace, self.buckets) for trace in labelled])
        torch.manual_seed(seed)
        self.model.reset_parameters()
        optimizer = torch.optim.Adam(self.model.parameters(), lr=lr, weight_decay=weight_decay)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        for _ in range(epochs):
            optimizer.zero_grad()
            loss_fn(self.model(features).squeeze(-1), labels).backward()
            optimizer.step()
        self.fitted = True
        return self

    def probability(self, trace: ExecutionTrace) -> float:
        """The model's probability that `trace` is good."""
        if not self.fitted:
            raise RuntimeError("LearnedReward is not trained: call fit() or load() first")
        with torch.no_grad():
            return torch.sigmoid(self.model(trace_features(trace, self.buckets))).item()

    def score(self, trace: ExecutionTrace) -> RewardResult:
        probability = self.probability(trace)
        return self._result(probability, probability >= 0.5)

    def save(self, directory: str | Path) -> None:
        """Write `model.safetensors` and `config.json` to `directory`."""
        if not self.fitted:
            raise RuntimeError("LearnedReward is not trained: nothing to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({key: value.contiguous() for key, value in self.model.state_dict().items()},
                  str(directory / "model.safetensors"))
        (directory / "config.json").write_text(json.dumps({"buckets": self.buckets, "weight": self.weight}))

    @classmethod
    def load(cls, directory: str | Path, weight: float | None = None) -> LearnedReward:
        """A trained reward from `save`'s directory; `weight` overrides the saved one."""
        directory = Path(directory)
        config = json.loads((directory / "config.json").read_text())
        reward = cls(config["weight"] if weight is None else weight, buckets=config["buckets"])
        reward.model.load_state_dict(load_file(str(directory / "model.safetensors")))
        reward.fitted = True
        return reward
