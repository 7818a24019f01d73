r"""Label-aware contrastive losses: SupCon (with its KCL variant) and LCGNN's label contrast."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gcl.losses import functional as GF
from gcl.losses._checks import check_count, check_positive

__all__ = ["LabelContrastiveLoss", "SupConLoss"]


class SupConLoss(nn.Module):
    r"""The supervised contrastive loss of `Khosla et al. <https://arxiv.org/abs/2004.11362>`_
    (NeurIPS 2020), optionally with the :math:`k`-positive variant KCL of `Kang et al.
    <https://openreview.net/forum?id=OqtLIabPTit>`_ (ICLR 2021).

    All :math:`N V` embeddings (``V`` views of ``N`` samples) are anchors. With
    :math:`A(i)` every other embedding and :math:`P(i) \subseteq A(i)` those sharing
    the anchor's label:

    .. math::
        \mathcal{L} = \frac{1}{|I'|} \sum_{i \in I'} \frac{-\tau/\tau_b}{|P(i)|}
        \sum_{p \in P(i)} \log
        \frac{\exp(z_i^\top z_p / \tau)}{\sum_{a \in A(i)} \exp(z_i^\top z_a / \tau)},

    where :math:`I'` are the anchors with at least one positive (the others have an
    undefined term and are left out; with :math:`V \ge 2` that is every anchor, and if
    none has one the loss is 0). ``labels=None`` makes each sample its own class, which
    is SimCLR's loss. With ``k_positives`` the positives from *other* samples are
    subsampled uniformly to at most :math:`k` per anchor (own other views always stay;
    the denominator is unchanged), drawn from ``generator`` when one is given.

    Args:
        temperature (float, optional): :math:`\tau > 0`. (default: :obj:`0.1`)
        base_temperature (float, optional): :math:`\tau_b`; :obj:`None` sets
            :math:`\tau_b = \tau` (no rescaling). (default: :obj:`None`)
        k_positives (int, optional): KCL's :math:`k`; :obj:`None` keeps all positives.
            (default: :obj:`None`)
        normalize (bool, optional): L2-normalise features. (default: :obj:`True`)

    Shapes:
        - **input:** ``features`` :math:`(N, V, d)` or :math:`(N, d)`, ``labels`` :math:`(N)`
        - **output:** scalar

    Example:
        >>> loss_fn = SupConLoss(temperature=0.1)
        >>> features, labels = torch.randn(16, 2, 64), torch.randint(3, (16,))
        >>> loss = loss_fn(features, labels)
    """

    def __init__(
        self,
        temperature: float = 0.1,
        base_temperature: float | None = None,
        k_positives: int | None = None,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        check_positive("temperature", temperature)
        if base_temperature is not None:
            check_positive("base_temperature", base_temperature)
        check_count("k_positives", k_positives, optional=True)
        self.temperature = temperature
        self.base_temperature = base_temperature
        self.k_positives = k_positives
        self.normalize = normalize

    def forward(
        self,
        features: Tensor,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        return GF.sup_con_loss(
            features,
            labels,
            temperature=self.temperature,
            base_temperature=self.base_temperature,
            k_positives=self.k_positives,
            generator=generator,
            normalize=self.normalize,
        )

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, base_temperature={self.base_temperature}, "
            f"k_positives={self.k_positives}, normalize={self.normalize}"
        )


class LabelContrastiveLoss(nn.Module):
    r"""The label contrastive loss of `LCGNN <https://arxiv.org/abs/2101.05486>`_
    (Ren et al., DASFAA 2021): queries contrasted with a labelled memory of keys, where
    every key with the query's label is a positive.

    .. math::
        \mathcal{L} = -\frac{1}{|B'|} \sum_{i \in B'} \log
        \frac{\sum_{j: y_j = y_i} \exp(q_i^\top k_j / \tau)}{\sum_{j=1}^{K} \exp(q_i^\top k_j / \tau)}

    with L2-normalised :math:`q, k`, and :math:`B'` the queries that have at least one
    same-label key (the others are left out; the loss is 0 if there are none). The keys
    usually come from a momentum encoder and a :class:`~gcl.losses.MemoryQueue` or
    :class:`~gcl.losses.MemoryBank` that stores labels; they are used as given on every
    rank (memories are replicated), only the mean runs over the global batch.

    Args:
        temperature (float, optional): :math:`\tau > 0`. (default: :obj:`0.07`)
        normalize (bool, optional): L2-normalise queries and keys. (default: :obj:`True`)

    Shapes:
        - **input:** ``query`` :math:`(B, d)`, ``query_labels`` :math:`(B)`,
          ``keys`` :math:`(K, d)`, ``key_labels`` :math:`(K)`
        - **output:** scalar

    Example:
        >>> loss_fn = LabelContrastiveLoss(temperature=0.07)
        >>> q, y = torch.randn(8, 32), torch.randint(2, (8,))
        >>> loss = loss_fn(q, y, torch.randn(100, 32), torch.randint(2, (100,)))
    """

    def __init__(self, temperature: float = 0.07, normalize: bool = True) -> None:
        super().__init__()
        check_positive("temperature", temperature)
        self.temperature = temperature
        self.normalize = normalize

    def forward(
        self, query: Tensor, query_labels: Tensor, keys: Tensor, key_labels: Tensor
    ) -> Tensor:
        return GF.label_contrastive_loss(
            query,
            query_labels,
            keys,
            key_labels,
            temperature=self.temperature,
            normalize=self.normalize,
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, normalize={self.normalize}"
