r"""GRACE / GCA: node-level contrast of two augmented views of one graph."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from gcl.losses import InfoNCE
from gcl.methods.barlow import encode_nodes
from gcl.methods.base import Augmentation, check_features


class GRACE(nn.Module):
    r"""GRACE from `"Deep Graph Contrastive Representation Learning"
    <https://arxiv.org/abs/2006.04131>`_ (Zhu et al., 2020); with
    centrality-adaptive augmentations it is GCA, `"Graph Contrastive Learning
    with Adaptive Augmentation" <https://arxiv.org/abs/2010.14945>`_ (Zhu et
    al., WWW 2021).

    Node :math:`n` in view 1 and the same node in view 2 are positives; every
    other node of both views is a negative (symmetric InfoNCE with intra-view
    negatives):

    .. math::
        \ell(u_n, v_n) = -\log \frac{e^{\theta(u_n, v_n)/\tau}}
        {e^{\theta(u_n, v_n)/\tau} + \sum_{m \neq n} e^{\theta(u_n, v_m)/\tau}
        + \sum_{m \neq n} e^{\theta(u_n, u_m)/\tau}}

    Args:
        encoder (nn.Module): Node encoder ``encoder(x, edge_index) -> [N, d]``.
        augment1 (callable): First view of the graph.
        augment2 (callable): Second view.
        head (nn.Module): Projection head (GRACE: two layers with ELU).
        temperature (float): :math:`\tau`. (default: :obj:`0.5`)
        loss (nn.Module, optional): Overrides the default InfoNCE.
    """

    def __init__(self, encoder: nn.Module, augment1: Augmentation, augment2: Augmentation, head: nn.Module,
                 temperature: float = 0.5, loss: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.augment1 = augment1
        self.augment2 = augment2
        self.head = head
        self.loss = loss if loss is not None else InfoNCE(
            temperature=temperature, symmetric=True, intra_view_negatives=True)

    def forward(self, data: Any) -> Tensor:
        check_features(data)
        z1 = self.head(encode_nodes(self.encoder, self.augment1(data)))
        z2 = self.head(encode_nodes(self.encoder, self.augment2(data)))
        return self.loss(z1, z2)

    def embed(self, data: Any) -> Tensor:
        r"""Node embeddings of the un-augmented graph (before the head)."""
        check_features(data)
        return encode_nodes(self.encoder, data).detach()
