r"""Frozen copies of modules for momentum (EMA) encoders."""

from __future__ import annotations

import copy
from typing import TypeVar

from torch import nn

__all__ = ["momentum_copy"]

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def momentum_copy(module: ModuleT) -> ModuleT:
    r"""A deep copy of ``module`` whose parameters take no gradient, to serve as
    the key encoder of `MoCo <https://arxiv.org/abs/1911.05722>`_-style methods
    such as LCGNN. The copy is then moved towards the online module with
    :func:`gcl.losses.update_momentum`,

    .. math::
        \theta_k \leftarrow m\,\theta_k + (1 - m)\,\theta_q .

    Buffers (e.g. batch-norm statistics) are copied too and the copy keeps the
    original's train/eval mode. Register the copy as a submodule so that
    ``state_dict()`` checkpoints it.

    Args:
        module (torch.nn.Module): The online module.

    Returns:
        torch.nn.Module: An independent copy with ``requires_grad=False`` on
        every parameter.

    Example:
        >>> from torch import nn
        >>> key = momentum_copy(nn.Linear(4, 2))
        >>> any(p.requires_grad for p in key.parameters())
        False
    """
    clone = copy.deepcopy(module)
    for parameter in clone.parameters():
        parameter.requires_grad_(False)
    return clone
