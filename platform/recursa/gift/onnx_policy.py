"""Run an exported gift policy with ONNX Runtime: no torch, no RLlib at serving time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort

from recursa.gift.config import GiftEnvConfig

Precision = Literal["fp32", "int8"]
SETTINGS = "policy.json"


def onnx_file(precision: Precision) -> str:
    """The file name of the exported policy at a precision."""
    return f"policy.{precision}.onnx"


class OnnxPolicy:
    """Greedy actions for batches of gift observations from an exported ONNX policy."""

    def __init__(self, export_dir: str | Path, precision: Precision = "int8", threads: int = 1):
        export_dir = Path(export_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(export_dir / onnx_file(precision)), options,
                                            providers=["CPUExecutionProvider"])
        self.env_config = GiftEnvConfig(**json.loads((export_dir / SETTINGS).read_text())["env"])
        self.precision = precision

    def logits(self, observations: np.ndarray, action_mask: np.ndarray) -> np.ndarray:
        """Masked action logits [B, A] for observations [B, tokens, dim] and masks [B, A]."""
        feed = {"observations": observations.astype(np.float32), "action_mask": action_mask.astype(np.float32)}
        return self.session.run(None, feed)[0]

    def act(self, observations: list[dict[str, np.ndarray]]) -> list[int]:
        """The greedy action of each observation, one batch per number of candidates."""
        actions = [0] * len(observations)
        by_size: dict[int, list[int]] = {}
        for i, observation in enumerate(observations):
            by_size.setdefault(len(observation["observations"]), []).append(i)
        for group in by_size.values():
            tokens = np.stack([observations[i]["observations"] for i in group])
            masks = np.stack([observations[i]["action_mask"] for i in group])
            for i, action in zip(group, self.logits(tokens, masks).argmax(-1).tolist()):
                actions[i] = action
        return actions
