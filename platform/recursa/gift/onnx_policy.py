"""Run an exported gift policy with ONNX Runtime: no torch, no RLlib at serving time.

Two graphs per precision: `policy.*.onnx` runs all T recursion cycles; `cycle.*.onnx` runs one
from a carry (y, z), starting from `initial_carry.npy`. With a halting threshold, rows run cycle
by cycle and each stops once its Q head says its answer has settled (see gift.halting).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort

from recursa.gift.config import GiftEnvConfig

Precision = Literal["fp32", "int8"]
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
        saved = settings.get("halting_threshold")
        self.halting_threshold = saved if halting_threshold is None else halting_threshold or None
        self.cycle_session = None
        if self.halting_threshold and (export_dir / onnx_file(precision, CYCLE)).is_file():
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
        batch, tokens = observations.shape[:2]
        logits = np.empty(action_mask.shape, dtype=np.float32)
        cycles = np.zeros(batch, dtype=np.int64)
        y = np.broadcast_to(self.initial_carry[0], (batch, tokens, self.initial_carry.shape[1])).astype(np.float32)
        z = np.broadcast_to(self.initial_carry[1], y.shape).astype(np.float32)
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

    def act(self, observations: list[dict[str, np.ndarray]]) -> list[int]:
        """The greedy action of each observation, one batch per number of candidates."""
        actions = [0] * len(observations)
        by_size: dict[int, list[int]] = {}
        for i, observation in enumerate(observations):
            by_size.setdefault(len(observation["observations"]), []).append(i)
        for group in by_size.values():
            tokens = np.stack([observations[i]["observations"] for i in group])
            masks = np.stack([observations[i]["action_mask"] for i in group])
            if self.cycle_session is not None:
                logits, cycles = self.halting_logits(tokens, masks)
                self.cycles_run += int(cycles.sum())
            else:
                logits = self.logits(tokens, masks)
                self.cycles_run += self.cycles * len(group)
            self.decisions += len(group)
            for i, action in zip(group, logits.argmax(-1).tolist()):
                actions[i] = action
        return actions
