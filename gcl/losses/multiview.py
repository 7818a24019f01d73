r"""Contrastive Multiview Coding over :math:`M \ge 2` views."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from gcl.losses import functional as GF
from gcl.losses._checks import check_positive

__all__ = ["MultiviewContrastiveLoss"]

_MODES = ("full", "core")


class MultiviewContrastiveLoss(nn.Module):
    r"""The multiview loss of `Contrastive Multiview Coding
    <https://arxiv.org/abs/1906.05849>`_ (Tian et al., ECCV 2020).

    For two views, :math:`\mathcal{L}(V_i, V_j) = \mathcal{L}^{V_i \to V_j} +
    \mathcal{L}^{V_j \to V_i}`, where :math:`\mathcal{L}^{V_i \to V_j}` is the cross-view
    InfoNCE with anchors from :math:`V_i` and candidates (the positive and :math:`N-1`
    negatives) from :math:`V_j`. Over :math:`M` views:

    .. math::
        \mathcal{L}_{\text{full}} = \sum_{1 \le i < j \le M} \mathcal{L}(V_i, V_j),
        \qquad
        \mathcal{L}_{\text{core}} = \sum_{j=2}^{M} \mathcal{L}(V_1, V_j).

    Pair terms are summed as in the paper, so with :math:`M = 2` the loss is twice
    :class:`~gcl.losses.InfoNCE` with ``intra_view_negatives=False``. The paper's
    memory-bank NCE approximation is not used: this is the full softmax over the batch
    (gathered across ranks).

    Args:
        temperature (float, optional): :math:`\tau > 0`. (default: :obj:`0.07`)
        mode (str, optional): ``'full'`` (full graph) or ``'core'`` (core view = view 0).
            (default: :obj:`'full'`)
        normalize (bool, optional): L2-normalise embeddings. (default: :obj:`True`)

    Shapes:
        - **input:** ``views``: list of :math:`M` tensors :math:`(N, d)`
        - **output:** scalar

    Example:
        >>> loss_fn = MultiviewContrastiveLoss(temperature=0.07, mode="core")
        >>> views = [torch.randn(16, 32) for _ in range(3)]
        >>> loss = loss_fn(views)
    """

    def __init__(
        self, temperature: float = 0.07, mode: str = "full", normalize: bool = True
    ) -> None:
        super().__init__()
        check_positive("temperature", temperature)
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES} (got {mode!r})")
        self.temperature = temperature
        self.mode = mode
        self.normalize = normalize

    def forward(self, views: Sequence[Tensor]) -> Tensor:
        return GF.multiview_contrastive_loss(
            views, temperature=self.temperature, mode=self.mode, normalize=self.normalize
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, mode={self.mode!r}, normalize={self.normalize}"
