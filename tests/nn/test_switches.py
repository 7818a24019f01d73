"""Boolean switches of the encoders, pooling and heads take True or False only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from torch import nn

from gcl.nn import GCN, GIN, HGPSL, HGPSLPool, ProjectionHead

SWITCHES: list[tuple[str, Callable[..., nn.Module], str]] = [
    *[("GIN", lambda **kw: GIN(7, **kw), name)
      for name in ("batch_norm", "ogb_mol", "train_eps", "activation_checkpointing")],
    *[("GCN", lambda **kw: GCN(7, 8, **kw), name) for name in ("batch_norm", "plain_last", "activation_checkpointing")],
    *[("HGPSL", lambda **kw: HGPSL(7, 8, **kw), name)
      for name in ("sample_neighbor", "sparse_attention", "structure_learning")],
    # a single layer has no pooling layer that would check them
    *[("HGPSL-1", lambda **kw: HGPSL(7, 8, num_layers=1, **kw), name)
      for name in ("sample_neighbor", "sparse_attention", "structure_learning")],
    *[("HGPSLPool", lambda **kw: HGPSLPool(7, **kw), name)
      for name in ("sample_neighbor", "sparse_attention", "structure_learning")],
    ("ProjectionHead", lambda **kw: ProjectionHead(7, 8, 4, **kw), "batch_norm"),
]


@pytest.mark.parametrize(("build", "name"), [(build, name) for _, build, name in SWITCHES],
                         ids=[f"{owner}-{name}" for owner, _, name in SWITCHES])
def test_switches_take_true_or_false_only(build: Callable[..., nn.Module], name: str) -> None:
    # a config file's "false" would otherwise read as on
    for value in ("false", "true", 0, 1, None if name != "train_eps" else 0.0):
        with pytest.raises(ValueError, match=rf"{name} must be True or False \(got {value!r}\)"):
            build(**{name: value})


@pytest.mark.parametrize(("build", "name"), [(build, name) for _, build, name in SWITCHES],
                         ids=[f"{owner}-{name}" for owner, _, name in SWITCHES])
def test_switches_take_numpy_bools_as_bools(build: Callable[..., nn.Module], name: str) -> None:
    module = build(**{name: np.False_})
    owner: Any = module.pools[0] if isinstance(module, HGPSL) and len(module.pools) else module
    if hasattr(owner, name):
        value = getattr(owner, name)
        assert value is False and type(value) is bool
