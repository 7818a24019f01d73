r"""Losses built on mixing: MoCHi's synthetic hard negatives and i-Mix's virtual labels."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gcl.losses import functional as GF
from gcl.losses._checks import check_count, check_positive

__all__ = ["IMixLoss", "MoCHiLoss"]


class MoCHiLoss(nn.Module):
    r"""MoCo's InfoNCE with the synthetic hard negatives of `MoCHi
    <https://arxiv.org/abs/2010.01028>`_ (Kalantidis et al., NeurIPS 2020).

    For each query :math:`q` with key :math:`k^+` and memory negatives :math:`Q`,
    :func:`~gcl.losses.mochi_mix` adds :math:`s + s'` per-query negatives :math:`H(q)`
    mixed from the :math:`N` hardest entries of :math:`Q` (and the query itself):

    .. math::
        \ell = -\log \frac{e^{q^\top k^+/\tau}}{e^{q^\top k^+/\tau}
        + \sum_{n \in Q} e^{q^\top n/\tau} + \sum_{h \in H(q)} e^{q^\top h/\tau}}.

    The synthetic points carry no gradient. Queries, keys and negatives are
    L2-normalised (``normalize=True``); the synthetic points are always
    normalised, as in the paper, so ``normalize=False`` is for inputs that are
    unit vectors already. This is :class:`~gcl.losses.InfoNCE` in its
    :meth:`~gcl.losses.InfoNCE.moco` form plus the extra negatives.

    Args:
        temperature (float, optional): :math:`\tau > 0`. (default: :obj:`0.2`)
        num_hardest (int, optional): :math:`N`. (default: :obj:`1024`)
        num_synthetic_negatives (int, optional): :math:`s`. (default: :obj:`1024`)
        num_synthetic_query_mix (int, optional): :math:`s'`. (default: :obj:`128`)
        normalize (bool, optional): L2-normalise embeddings. (default: :obj:`True`)

    Shapes:
        - **input:** ``query`` :math:`(B, d)`, ``key`` :math:`(B, d)`, ``negatives``
          :math:`(K, d)`
        - **output:** scalar

    Example:
        >>> loss_fn = MoCHiLoss(num_hardest=64, num_synthetic_negatives=32, num_synthetic_query_mix=8)
        >>> q, k, queue = torch.randn(8, 16), torch.randn(8, 16), torch.randn(256, 16)
        >>> loss = loss_fn(q, k, queue)
    """

    def __init__(
        self,
        temperature: float = 0.2,
        num_hardest: int = 1024,
        num_synthetic_negatives: int = 1024,
        num_synthetic_query_mix: int = 128,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        check_positive("temperature", temperature)
        check_count("num_hardest", num_hardest)
        check_count("num_synthetic_negatives", num_synthetic_negatives, minimum=0)
        check_count("num_synthetic_query_mix", num_synthetic_query_mix, minimum=0)
        self.temperature = temperature
        self.num_hardest = num_hardest
        self.num_synthetic_negatives = num_synthetic_negatives
        self.num_synthetic_query_mix = num_synthetic_query_mix
        self.normalize = normalize

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        negatives: Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        return GF.mochi_loss(
            query,
            key,
            negatives,
            temperature=self.temperature,
            num_hardest=self.num_hardest,
            num_synthetic_negatives=self.num_synthetic_negatives,
            num_synthetic_query_mix=self.num_synthetic_query_mix,
            generator=generator,
            normalize=self.normalize,
        )

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, num_hardest={self.num_hardest}, "
            f"num_synthetic_negatives={self.num_synthetic_negatives}, "
            f"num_synthetic_query_mix={self.num_synthetic_query_mix}, normalize={self.normalize}"
        )


class IMixLoss(nn.Module):
    r"""The virtual-label loss of `i-Mix <https://arxiv.org/abs/2010.08887>`_
    (Lee et al., ICLR 2021).

    Each sample of the batch is its own class. The inputs are mixed with
    :func:`~gcl.losses.imix_mix`, :math:`\tilde{x}_i = \lambda x_i + (1-\lambda) x_{\pi(i)}`,
    and the mixed queries are classified against the keys of the clean second view
    with mixed virtual labels:

    .. math::
        \ell_i = \lambda\, \mathrm{CE}\big(\mathbf{s}_i / \tau,\ i\big)
        + (1 - \lambda)\, \mathrm{CE}\big(\mathbf{s}_i / \tau,\ \pi(i)\big),
        \qquad \mathbf{s}_{ij} = \tilde{q}_i^\top k_j,

    averaged over the batch. Optional memory ``negatives`` are appended as extra columns
    (the MoCo form). Keys are gathered across ranks.

    Args:
        temperature (float, optional): :math:`\tau > 0`. (default: :obj:`0.2`)
        normalize (bool, optional): L2-normalise embeddings. (default: :obj:`True`)

    Shapes:
        - **input:** ``query`` :math:`(N, d)`, ``key`` :math:`(N, d)`, ``permutation``
          :math:`(N)`, ``coefficient`` float, ``negatives`` :math:`(K, d)` (optional)
        - **output:** scalar

    Example:
        >>> from gcl.losses import imix_mix
        >>> x, x_view2 = torch.randn(8, 16), torch.randn(8, 16)
        >>> mixed = imix_mix(x, alpha=1.0)
        >>> loss = IMixLoss(0.2)(mixed.inputs, x_view2, mixed.permutation, mixed.coefficient)
    """

    def __init__(self, temperature: float = 0.2, normalize: bool = True) -> None:
        super().__init__()
        check_positive("temperature", temperature)
        self.temperature = temperature
        self.normalize = normalize

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        permutation: Tensor,
        coefficient: float,
        negatives: Tensor | None = None,
    ) -> Tensor:
        return GF.imix_loss(
            query,
            key,
            permutation,
            coefficient,
            negatives,
            temperature=self.temperature,
            normalize=self.normalize,
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, normalize={self.normalize}"
