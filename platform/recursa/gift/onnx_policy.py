"""Run an exported gift policy with ONNX Runtime: no torch, no RLlib at serving time.

Two graphs per precision: `policy.*.onnx` runs all T recursion cycles; `cycle.*.onnx` runs one
from a carry (y, z), starting from `initial_carry.npy`. With a halting threshold, rows run cycle
by cycle and each stops once its Q head says its answer has settled (see gift.halting). A policy
whose recursion is carried across steps runs the cycle graph from each episode's last carry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort

from recursa.core.config import ConfigError
from recursa.gift.config import GiftEnvConfig

Precision = Literal["fp32", "int8"]
Carry = tuple[np.ndarray, np.ndarray]  # (y, z), each [tokens, hidden]
SETTINGS = "policy.json"
POLICY, CYCLE = "policy", "cycle"
INITIAL_CARRY = "initial_carry.npy"


def onnx_file(precision: Precision, graph: str = POLICY) -> str:
    """The file name of an exported graph at a precision."""
    return f"{graph}.{precision}.onnx"


class OnnxPolicy:
    """Greedy actions for batches of gift observations from an exported ONNX policy.

    `halting_threshold`: None for the policy's own (from policy.json, set when its Q head was
    fitted), 0 to always run all cycles. `cycles_run` and `decisions` count what `act` did.
    """

    def __init__(self, export_dir: str | Path, precision: Precision = "int8", threads: int = 1,
                 halting_threshold: float | None = None):
        export_dir = Path(export_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(export_dir / onnx_file(precision)), options,
                                            providers=["CPUExecutionProvider"])
        settings = json.loads((export_dir / SETTINGS).read_text())
        self.env_config = GiftEnvConfig(**settings["env"])
        self.precision = precision
        self.cycles = int(settings["model_config"]["T"])
        self.carries_state = settings["model_config"].get("recursion", "per_step") == "across_steps"
        saved = settings.get("halting_threshold")
        self.halting_threshold = saved if halting_threshold is None else halting_threshold or None
        if self.carries_state and self.halting_threshold:
            raise ConfigError("halting_threshold: this policy carries its recursion across steps; halting "
                              "applies to per-step recursion")
        self.cycle_session = None
        if (self.halting_threshold or self.carries_state) and (export_dir / onnx_file(precision, CYCLE)).is_file():
            self.cycle_session = ort.InferenceSession(str(export_dir / onnx_file(precision, CYCLE)), options,
                                                      providers=["CPUExecutionProvider"])
            self.initial_carry = np.load(export_dir / INITIAL_CARRY)
        self.cycles_run = self.decisions = 0

    def logits(self, observations: np.ndarray, action_mask: np.ndarray) -> np.ndarray:
        """Masked action logits [B, A] for observations [B, tokens, dim] and masks [B, A], all cycles."""
        feed = {"observations": observations.astype(np.float32), "action_mask": action_mask.astype(np.float32)}
        return self.session.run(None, feed)[0]

    def halting_logits(self, observations: np.ndarray, action_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits [B, A] with each row stopped once sigmoid(q) >= the threshold (at the latest after
        all cycles), and the cycles each row ran [B]."""
        assert self.cycle_session is not None and self.halting_threshold is not None
        batch = observations.shape[0]
        logits = np.empty(action_mask.shape, dtype=np.float32)
        cycles = np.zeros(batch, dtype=np.int64)
        y, z = self._start(observations, [None] * batch)
        running = np.arange(batch)
        threshold_logit = np.log(self.halting_threshold / (1.0 - self.halting_threshold))
        for cycle in range(1, self.cycles + 1):
            feed = {"observations": observations[running].astype(np.float32),
                    "action_mask": action_mask[running].astype(np.float32), "y": y, "z": z}
            cycle_logits, q_logit, y, z = self.cycle_session.run(None, feed)
            settled = q_logit >= threshold_logit if cycle < self.cycles else np.ones(len(running), dtype=bool)
            logits[running[settled]] = cycle_logits[settled]
            cycles[running[settled]] = cycle
            running, y, z = running[~settled], y[~settled], z[~settled]
            if len(running) == 0:
                break
        return logits, cycles

    def _start(self, observations: np.ndarray, carries: list[Carry | None]) -> tuple[np.ndarray, np.ndarray]:
        """The carries as batched (y, z), the learned start where an episode has none yet."""
        tokens, hidden = observations.shape[1], self.initial_carry.shape[1]
        start = [np.broadcast_to(self.initial_carry[:, None], (2, tokens, hidden)) if carry is None else np.stack(carry)
                 for carry in carries]
        states = np.stack(start).astype(np.float32)
        return states[:, 0], states[:, 1]

    def carried_logits(self, observations: np.ndarray, action_mask: np.ndarray, carries: list[Carry | None],
                       ) -> tuple[np.ndarray, list[Carry]]:
        """All cycles of one step from each episode's carry; the logits and the carries after."""
        assert self.cycle_session is not None
        y, z = self._start(observations, carries)
        feed = {"observations": observations.astype(np.float32), "action_mask": action_mask.astype(np.float32)}
        for _ in range(self.cycles):
            logits, _, y, z = self.cycle_session.run(None, {**feed, "y": y, "z": z})
        return logits, list(zip(y, z))

    def act(self, observations: list[dict[str, np.ndarray]]) -> list[int]:
        """The greedy action of each observation at the start of an episode (for a policy with
        per-step recursion, at any step)."""
        return self.step(observations, [None] * len(observations))[0]

    def step(self, observations: list[dict[str, np.ndarray]], carries: list[Carry | None],
             ) -> tuple[list[int], list[Carry | None]]:
        """The greedy action of each observation, one batch per number of candidates, and the carry
        its episode's next step starts from (None for per-step recursion; give None at an episode's start)."""
        actions, next_carries = [0] * len(observations), list(carries)
        by_size: dict[int, list[int]] = {}
        for i, observation in enumerate(observations):
            by_size.setdefault(len(observation["observations"]), []).append(i)
        for group in by_size.values():
            tokens = np.stack([observations[i]["observations"] for i in group])
            masks = np.stack([observations[i]["action_mask"] for i in group])
            if self.carries_state:
                logits, group_carries = self.carried_logits(tokens, masks, [carries[i] for i in group])
                for i, carry in zip(group, group_carries):
                    next_carries[i] = carry
                self.cycles_run += self.cycles * len(group)
            elif self.cycle_session is not None:
                logits, cycles = self.halting_logits(tokens, masks)
                self.cycles_run += int(cycles.sum())
            else:
                logits = self.logits(tokens, masks)
                self.cycles_run += self.cycles * len(group)
            self.decisions += len(group)
            for i, action in zip(group, logits.argmax(-1).tolist()):
                actions[i] = action
        return actions, next_carries
