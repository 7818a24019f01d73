"""Momentum copies: frozen, independent, and equal to the original at creation."""

from __future__ import annotations

import torch
from torch import nn

from gcl.nn import GIN, momentum_copy


def test_copy_is_frozen_independent_and_equal() -> None:
    online = GIN(5, 8, 2)
    online.train()
    online(torch.randn(6, 5), torch.tensor([[0, 1, 2], [1, 2, 0]]))  # populate BN buffers
    key = momentum_copy(online)
    assert isinstance(key, GIN) and key.training
    assert all(not p.requires_grad for p in key.parameters())
    assert all(p.requires_grad for p in online.parameters())
    for (name, a), (_, b) in zip(online.state_dict().items(), key.state_dict().items()):
        assert torch.equal(a, b), name
        assert a.data_ptr() != b.data_ptr() or a.numel() == 0, name
    with torch.no_grad():
        next(online.parameters()).add_(1.0)
    assert not torch.equal(next(online.parameters()), next(key.parameters()))
    x, edge_index = torch.randn(4, 5), torch.tensor([[0, 1], [1, 0]])
    key.eval()
    out = key(x, edge_index).graph
    assert not out.requires_grad


def test_copy_as_submodule_is_checkpointed() -> None:
    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.online = nn.Linear(3, 2)
            self.key = momentum_copy(self.online)

    model = Pair()
    assert set(model.state_dict()) == {"online.weight", "online.bias", "key.weight", "key.bias"}
    assert len(list(p for p in model.parameters() if p.requires_grad)) == 2
