"""Projection heads and classifiers: layer layout of the papers and exact outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gcl.nn import Classifier, ProjectionHead


def test_graphcl_head_is_linear_relu_linear() -> None:
    head = ProjectionHead(96, 96, 96)
    layers = list(head.mlp)
    assert [type(m) for m in layers] == [nn.Linear, nn.ReLU, nn.Linear]
    x = torch.randn(5, 96)
    first, last = layers[0], layers[2]
    expected = (x @ first.weight.t() + first.bias).relu() @ last.weight.t() + last.bias
    assert torch.allclose(head(x), expected, atol=1e-6)


def test_head_variants() -> None:
    grace = ProjectionHead(32, 64, 32, activation="elu")
    assert [type(m) for m in grace.mlp] == [nn.Linear, nn.ELU, nn.Linear]
    deep = ProjectionHead(16, 8, 4, num_layers=3, batch_norm=True)
    assert [type(m) for m in deep.mlp] == [
        nn.Linear,
        nn.BatchNorm1d,
        nn.ReLU,
        nn.Linear,
        nn.BatchNorm1d,
        nn.ReLU,
        nn.Linear,
    ]
    assert deep(torch.randn(6, 16)).shape == (6, 4)
    assert [type(m) for m in ProjectionHead(16, 8, 4, num_layers=1).mlp] == [nn.Linear]
    before = deep.mlp[0].weight.clone()
    deep.reset_parameters()
    assert not torch.equal(before, deep.mlp[0].weight)
    assert repr(grace) == (
        "ProjectionHead(32, 64, 32, num_layers=2, batch_norm=False, activation='elu')"
    )


def test_hgpsl_classifier_layout_and_dropout() -> None:
    clf = Classifier(256, [128, 64], 3, dropout=0.5)
    linears = [m for m in clf.mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(256, 128), (128, 64), (64, 3)]
    assert [type(m) for m in clf.mlp] == [
        nn.Linear,
        nn.ReLU,
        nn.Dropout,
        nn.Linear,
        nn.ReLU,
        nn.Dropout,
        nn.Linear,
    ]
    x = torch.randn(10, 256)
    clf.eval()
    h = x
    for linear in linears[:-1]:
        h = (h @ linear.weight.t() + linear.bias).relu()
    expected = h @ linears[-1].weight.t() + linears[-1].bias
    assert torch.allclose(clf(x), expected, atol=1e-5)
    clf.train()
    assert not torch.allclose(clf(x), expected, atol=1e-5)
    assert Classifier(8, 4, 2).hidden_channels == (4,)
    numpy_width = Classifier(8, np.int64(4), 2)  # a NumPy integer is one width too
    assert numpy_width.hidden_channels == (4,) and type(numpy_width.hidden_channels[0]) is int
    assert repr(numpy_width) == repr(Classifier(8, 4, 2))
    assert [type(m) for m in Classifier(8, [], 2).mlp] == [nn.Linear]


def test_rejects_bad_hyperparameters() -> None:
    with pytest.raises(ValueError, match="activation must be one of"):
        ProjectionHead(4, 4, 4, activation="swish")
    with pytest.raises(ValueError, match=r"num_layers must be a positive integer \(got 0\)"):
        ProjectionHead(4, 4, 4, num_layers=0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\) \(got 1.2\)"):
        Classifier(4, [4], 2, dropout=1.2)
    with pytest.raises(ValueError, match="hidden_channels"):
        Classifier(4, [4, 0], 2)
