"""Fitting a tool-calling TRM to a handful of examples, for tests that need a model that works."""

from __future__ import annotations

import torch

from recursa.fc.model import FunctionCallingTRM, fc_loss


def fit_until_correct(model: FunctionCallingTRM, batch: dict[str, torch.Tensor], steps: int, lr: float) -> bool:
    """AdamW with clipping until every example of `batch` is right (or `steps` run out); whether it is."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in range(steps):
        loss, parts = fc_loss(model(batch), batch)
        if parts["correct"].all():
            return True
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return bool(fc_loss(model(batch), batch)[1]["correct"].all())
