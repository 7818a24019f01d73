r"""Negative-free Barlow Twins methods for graphs and for nodes."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from gcl.losses import BarlowTwinsLoss
from gcl.methods.base import Augmentation, check_features
from gcl.methods.graphcl import GraphCL


def encode_nodes(encoder: nn.Module, data: Any) -> Tensor:
    r"""Node embeddings of a node encoder (e.g. :class:`gcl.nn.GCN`) on ``data``."""
    out = encoder(data.x, data.edge_index)
    return out.node if hasattr(out, "node") else out


class GraphBarlowTwins(nn.Module):
    r"""Graph Barlow Twins from `"Graph Barlow Twins: A self-supervised
    representation learning framework for graphs"
    <https://arxiv.org/abs/2106.02466>`_ (Bielak et al., 2022): node-level,
    two augmented views of one graph, no negatives.

    .. math::
        \mathcal{L} = \sum_i (1 - C_{ii})^2 + \lambda \sum_{i \neq j} C_{ij}^2,
        \qquad C = \frac{1}{N} \tilde{H}^{(1)\top} \tilde{H}^{(2)}, \quad \lambda = 1/d

    where :math:`\tilde{H}` are the node embeddings standardised per dimension.
    With adaptive augmentations (degree-centrality edge dropping and
    unimportant-dimension masking) this is the node-level adaptive Barlow Twins.

    Args:
        encoder (nn.Module): Node encoder ``encoder(x, edge_index) -> [N, d]``.
        augment1 (callable): First view of the graph.
        augment2 (callable): Second view.
        loss (nn.Module, optional): Default :class:`~gcl.losses.BarlowTwinsLoss`
            with :math:`\lambda = 1/d` and unbiased standardisation (G-BT).
    """

    def __init__(self, encoder: nn.Module, augment1: Augmentation, augment2: Augmentation,
                 loss: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.augment1 = augment1
        self.augment2 = augment2
        self.loss = loss if loss is not None else BarlowTwinsLoss.graph_barlow_twins()

    def forward(self, data: Any) -> Tensor:
        check_features(data)
        h1 = encode_nodes(self.encoder, self.augment1(data))
        h2 = encode_nodes(self.encoder, self.augment2(data))
        return self.loss(h1, h2)

    def embed(self, data: Any) -> Tensor:
        r"""Node embeddings of the un-augmented graph."""
        check_features(data)
        return encode_nodes(self.encoder, data).detach()


class GraphLevelBarlowTwins(GraphCL):
    r"""Barlow Twins on graph embeddings: two augmented views of each graph in a
    batch, a shared graph encoder and projection head, and the Barlow Twins
    loss of `Zbontar et al. (ICML 2021) <https://arxiv.org/abs/2103.03230>`_ on
    the batch of graph embeddings. With centrality-adaptive augmentations it is
    the graph-level adaptive Barlow Twins.

    The data path is GraphCL's (:class:`~gcl.methods.GraphCL`); only the loss
    differs: no negatives, redundancy reduction of the cross-correlation.

    Args:
        encoder (nn.Module): Graph encoder returning an ``EncoderOutput``.
        augment1 (callable): First view.
        augment2 (callable): Second view.
        head (nn.Module): Projection head.
        loss (nn.Module, optional): Default :class:`~gcl.losses.BarlowTwinsLoss`
            with :math:`\lambda = 1/d` of the head output.
        joint_views (bool, optional): One encoder pass over both views, as in
            :class:`~gcl.methods.GraphCL`. (default: :obj:`False`)
    """

    def __init__(self, encoder: nn.Module, augment1: Augmentation, augment2: Augmentation, head: nn.Module,
                 loss: nn.Module | None = None, joint_views: bool = False) -> None:
        super().__init__(encoder, augment1, augment2, head,
                         loss if loss is not None else BarlowTwinsLoss.graph_barlow_twins(), joint_views)
