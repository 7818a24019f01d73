"""A training method for the loop's tests that records the graphs of every step."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class Recorder(nn.Module):
    """Records which graphs each step trains on (``batch.idx``); the loss is a simple function of them."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))
        self.seen: list[list[int]] = []

    def forward(self, batch: Any) -> Tensor:
        self.seen.append(batch.idx.tolist())
        return self.weight * batch.x.sum() / batch.x.size(0)
