"""Calibrating the call / no-call decision on held-in data.

The no-call logit is learned on generated phrasing; on other data it can fire too often (or too
rarely). Calibration picks the bias subtracted from it that maximises balanced accuracy of the
decision "call or not" on examples whose answer is known (for BFCL: the live categories, which
are for development; the non-live ones stay held out).
"""

from __future__ import annotations

import numpy as np
import torch

from recursa.fc.artifact import batched_outputs
from recursa.fc.data.schema import FCExample
from recursa.fc.features import Featurizer
from recursa.fc.model import FunctionCallingTRM

BIASES = np.round(np.arange(-4.0, 12.01, 0.25), 2)


def call_margins(model: FunctionCallingTRM, featurizer: Featurizer, examples: list[FCExample],
                 batch_size: int = 64) -> np.ndarray:
    """Per example: no-call logit minus the best function logit (positive means no call)."""
    margins = []
    for _, output in batched_outputs(model, featurizer, examples, batch_size):
        pointer = output.pointer
        best_function = pointer[:, 1:].max(-1).values if pointer.shape[1] > 1 else torch.full_like(pointer[:, 0], -1e4)
        margins.append((pointer[:, 0] + model.no_call_bias - best_function).numpy())
    return np.concatenate(margins)


def calibrate_no_call(model: FunctionCallingTRM, featurizer: Featurizer, examples: list[FCExample]) -> dict:
    """The bias with the best balanced accuracy of call / no-call, and the accuracies before and after."""
    margins = call_margins(model, featurizer, examples)
    should_call = np.array([bool(e.calls) for e in examples])

    def balanced(bias: float) -> float:
        calls = margins - bias <= 0
        recalls = [np.mean(calls[should_call]) if should_call.any() else 1.0,
                   np.mean(~calls[~should_call]) if (~should_call).any() else 1.0]
        return float(np.mean(recalls))

    scores = [balanced(b) for b in BIASES]
    best = float(BIASES[int(np.argmax(scores))])
    return {"no_call_bias": best, "balanced_accuracy_before": balanced(0.0), "balanced_accuracy_after": max(scores),
            "examples": len(examples)}
