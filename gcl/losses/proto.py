r"""ProtoNCE of Prototypical Contrastive Learning."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from gcl.losses import functional as GF
from gcl.losses._checks import check_positive

__all__ = ["ProtoNCELoss"]


class ProtoNCELoss(nn.Module):
    r"""The ProtoNCE loss of `Prototypical Contrastive Learning
    <https://arxiv.org/abs/2005.04966>`_ (Li et al., ICLR 2021): an instance-wise
    InfoNCE term plus a prototype term averaged over :math:`M` clusterings.

    .. math::
        \mathcal{L} = -\log\frac{e^{v \cdot v'/\tau}}{\sum_{j=0}^{r} e^{v \cdot v'_j/\tau}}
        - \frac{1}{M}\sum_{m=1}^{M} \log
        \frac{e^{v \cdot c^m_s/\phi^m_s}}{\sum_{j=1}^{k_m} e^{v \cdot c^m_j/\phi^m_j}},

    averaged over queries :math:`v`, where :math:`v'` is the key, :math:`v'_j` the
    negatives (the memory ``negatives`` if given, MoCo-style, else the other keys of
    the batch), :math:`c^m_s` the prototype of the query's cluster in clustering
    :math:`m` and :math:`\phi^m` the concentrations (see
    :func:`~gcl.losses.estimate_concentration`). All prototypes of a clustering are used
    as negatives (the reference code samples :math:`r` of them when there are more).
    Without clusterings (e.g. during warm-up) only the instance term is returned.
    Clusterings come from :func:`~gcl.losses.kmeans` on memory features.

    Args:
        temperature (float, optional): :math:`\tau > 0` of the instance term.
            (default: :obj:`0.2`)
        normalize (bool, optional): L2-normalise embeddings and prototypes.
            (default: :obj:`True`)

    Shapes:
        - **input:** ``query`` :math:`(B, d)`, ``key`` :math:`(B, d)`, ``negatives``
          :math:`(K, d)`, per clustering: assignments :math:`(B)`, prototypes
          :math:`(k_m, d)`, concentrations :math:`(k_m)`
        - **output:** scalar

    Example:
        >>> loss_fn = ProtoNCELoss(temperature=0.2)
        >>> q, k = torch.randn(8, 16), torch.randn(8, 16)
        >>> loss = loss_fn(q, k, torch.randn(64, 16), [torch.randint(4, (8,))],
        ...                [torch.randn(4, 16)], [torch.full((4,), 0.2)])
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
        negatives: Tensor | None = None,
        cluster_assignments: Sequence[Tensor] | None = None,
        prototypes: Sequence[Tensor] | None = None,
        concentrations: Sequence[Tensor] | None = None,
    ) -> Tensor:
        return GF.proto_nce_loss(
            query,
            key,
            negatives,
            cluster_assignments,
            prototypes,
            concentrations,
            temperature=self.temperature,
            normalize=self.normalize,
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, normalize={self.normalize}"
