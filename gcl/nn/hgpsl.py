r"""The HGP-SL graph encoder: GCN layers interleaved with structure-learning
pooling."""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GCNConv, global_max_pool, global_mean_pool
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import scatter

from gcl._checks import check_switch
from gcl.nn._utils import (
    EncoderOutput,
    check_dropout,
    check_float_features,
    check_inputs,
    check_positive,
    inverse_degree,
    is_index_pairs,
    observed,
    require_index_pairs,
    resolve_batch,
)
from gcl.nn.aggregate import Adjacency, supports_sparse_aggregation
from gcl.nn.gcn import _gcn_layer
from gcl.nn.pool import HGPSLPool

__all__ = ["HGPSL"]


def _source_degree_norm(
    edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int, dtype: torch.dtype
) -> Tensor:
    # Pooled graphs are directed and already carry (learned) self-loops, so the
    # convolution normalises with source out-degrees and adds no loops, as the
    # authors' GCN layer does.
    src, dst = edge_index
    if edge_weight is None:
        edge_weight = torch.ones(src.numel(), dtype=dtype, device=edge_index.device)
    deg = scatter(edge_weight, src, 0, num_nodes, reduce="sum")
    inv_sqrt = inverse_degree(deg, sqrt=True)
    return inv_sqrt[src] * edge_weight * inv_sqrt[dst]


def _convolve(conv: nn.Module, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> Tensor:
    r"""``conv(x, edge_index, edge_weight)``, with the neighbourhood sum as one sparse product
    each way (:func:`gcl.nn.aggregate.neighbour_sum`; learnt weights get their gradient
    per edge) instead of message passing, whose :math:`[E, F]` message tensors dominate the
    encoder's time on the dense learnt graphs. PyG's own ``forward`` runs where that sum
    does not apply: half precision, autocast, a sparse adjacency, hooks or explainer masks,
    or settings the encoder does not use."""
    if not (isinstance(conv, GCNConv) and is_index_pairs(edge_index) and supports_sparse_aggregation(x)
            and not conv.improved and not conv.cached and conv.flow == "source_to_target"
            and (conv.add_self_loops or not conv.normalize) and not observed(conv)):
        return cast(Tensor, conv(x, edge_index, edge_weight))
    num_nodes = x.size(0)
    if conv.normalize:  # the first layer: self-loops and symmetric normalisation, as GCNConv adds them
        edge_index, edge_weight = gcn_norm(edge_index.long(), edge_weight, num_nodes, dtype=x.dtype)
    return _gcn_layer(conv, x, Adjacency(edge_index, num_nodes, x.dtype, edge_weight=edge_weight))


class HGPSL(nn.Module):
    r"""The graph encoder of `"Hierarchical Graph Pooling with Structure
    Learning" <https://arxiv.org/abs/1911.05954>`_ (Zhang et al., AAAI 2020).

    ``num_layers`` GCN layers with ReLU; after each of the first
    ``num_layers - 1`` a :class:`~gcl.nn.HGPSLPool` keeps a fraction of the
    nodes and learns the pooled graph's edges. Every level :math:`l` (after
    each pooling, and after the last convolution) is read out with max and
    mean pooling, and the levels are summed:

    .. math::
        \mathbf{s}^{(l)} = \Big[\max_{i \in G} \mathbf{h}^{(l)}_i \,\Big\Vert\,
        \tfrac{1}{n_G^{(l)}}\sum_{i \in G} \mathbf{h}^{(l)}_i\Big],
        \qquad
        \mathbf{h}_G = \sum_{l=1}^{L} \mathrm{ReLU}\big(\mathbf{s}^{(l)}\big).

    The first layer is a standard GCN layer (self-loops, symmetric
    normalisation). Later layers run on the pooled graphs and add no loops,
    as the authors' code does: with structure learning these are the learned,
    directed graphs, which hold self-loops, and the learned weights are
    normalised as :math:`w_{ij} / \sqrt{d_i d_j}` with out-degrees :math:`d`;
    without it (``structure_learning=False``) they are the induced subgraphs,
    without self-loops, so a kept node without kept neighbours gets only the
    layer's bias there. Graphs smaller than the ratio allows keep at least one
    node per level; graphs without edges keep working (with structure learning
    each kept node then sees itself).

    The convolutions and the pooling's node scores sum over neighbours by
    sparse products (:func:`gcl.nn.aggregate.neighbour_sum`; the learnt edge
    weights get their gradient per edge) rather than by message passing, whose
    :math:`[E, F]` message tensors dominate the time on the dense learnt graphs;
    the candidate pairs of ``sample_neighbor`` come from SciPy's sparse products
    on the CPU. Half precision, autocast and convolutions with hooks run PyG's
    message passing.

    For supervised training, put :class:`~gcl.nn.Classifier` with
    ``Classifier(2 * h, [h, h // 2], num_classes, dropout=0.5)`` on top — the
    paper's MLP.

    The defaults follow the paper's formulas. The authors' code differs in
    two places: it scores nodes with the symmetric normalisation and learns
    edges among nodes up to four hops apart (its ``k_hop = 3`` applies a
    two-hop expansion twice): ``score_normalization="sym", num_hops=4``. It
    also loads the TU data sets with their continuous node attributes
    (``gcl.data.load_dataset(name, use_node_attr=True)``), and its README
    trains without dropout, with pooling ratio 0.8 on NCI1 and Mutagenicity
    and two layers on ENZYMES (see ``benchmarks/configs/hgpsl-tu.yaml``).

    Args:
        in_channels (int): Node feature size.
        hidden_channels (int, optional): Width :math:`h` of every layer.
            (default: :obj:`128`)
        num_layers (int, optional): Number of GCN layers (pooling layers are
            one fewer). (default: :obj:`3`)
        pooling_ratio (float, optional): Fraction of nodes kept per pooling,
            in :math:`(0, 1]`. (default: :obj:`0.5`)
        sample_neighbor (bool, optional): Learn edges only within the
            :math:`k`-hop neighbourhood. (default: :obj:`True`)
        sparse_attention (bool, optional): Sparsemax (else softmax) edge
            normalisation. (default: :obj:`True`)
        structure_learning (bool, optional): Learn the pooled structure (else
            keep induced subgraphs). (default: :obj:`True`)
        attention_weight (float, optional): :math:`\lambda`, weight of the
            existing edges in the structure-learning scores. (default: :obj:`1.0`)
        dropout (float, optional): Dropout after each convolution.
            (default: :obj:`0.0`)
        num_hops (int, optional): :math:`k` for ``sample_neighbor``.
            (default: :obj:`3`)
        score_normalization (str, optional): ``"rw"`` (paper) or ``"sym"``
            (reference code) node information score. (default: :obj:`"rw"`)

    Shapes:
        - **input:** node features :math:`(N, F_{in})`, edge indices
          :math:`(2, E)`, batch vector :math:`(N)` (optional)
        - **output:** :class:`EncoderOutput` with ``graph`` :math:`(B, 2h)` and
          ``node`` :math:`(N, h)`, the first layer's node embeddings

    Example:
        >>> import torch
        >>> encoder = HGPSL(3, hidden_channels=16)
        >>> x = torch.randn(5, 3)
        >>> edge_index = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])
        >>> batch = torch.tensor([0, 0, 0, 1, 1])
        >>> out = encoder(x, edge_index, batch, num_graphs=2)
        >>> out.graph.shape, out.node.shape
        (torch.Size([2, 32]), torch.Size([5, 16]))
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 128,
        num_layers: int = 3,
        pooling_ratio: float = 0.5,
        sample_neighbor: bool = True,
        sparse_attention: bool = True,
        structure_learning: bool = True,
        attention_weight: float = 1.0,
        dropout: float = 0.0,
        num_hops: int = 3,
        score_normalization: str = "rw",
    ) -> None:
        super().__init__()
        check_positive("in_channels", in_channels)
        check_positive("hidden_channels", hidden_channels)
        check_positive("num_layers", num_layers)
        check_dropout(dropout)
        # checked here too: a single layer builds no pooling layer that would check them
        sample_neighbor = check_switch("sample_neighbor", sample_neighbor)
        sparse_attention = check_switch("sparse_attention", sparse_attention)
        structure_learning = check_switch("structure_learning", structure_learning)
        if not 0.0 < pooling_ratio <= 1.0:
            raise ValueError(f"pooling_ratio must be in (0, 1] (got {pooling_ratio})")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.pooling_ratio = pooling_ratio
        self.dropout = dropout

        self.convs = nn.ModuleList([GCNConv(in_channels, hidden_channels)])
        self.convs.extend(
            GCNConv(hidden_channels, hidden_channels, normalize=False)
            for _ in range(num_layers - 1)
        )
        self.pools = nn.ModuleList(
            HGPSLPool(
                hidden_channels,
                ratio=pooling_ratio,
                sample_neighbor=sample_neighbor,
                sparse_attention=sparse_attention,
                structure_learning=structure_learning,
                attention_weight=attention_weight,
                num_hops=num_hops,
                score_normalization=score_normalization,
            )
            for _ in range(num_layers - 1)
        )
        self.reset_parameters()

    @property
    def out_channels(self) -> int:
        r"""Size of the graph embedding: ``2 * hidden_channels``."""
        return 2 * self.hidden_channels

    def reset_parameters(self) -> None:
        r"""Re-initialise all learnable parameters."""
        for module in [*self.convs, *self.pools]:
            module.reset_parameters()

    def _readout(self, x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        # (torch.segment_reduce's maximum would be faster over the pooled, grouped nodes, but its
        # backward gives every tied maximum the whole gradient, where scatter splits it: ties are
        # common here, structurally equivalent nodes embed alike, and the doubled gradients cost
        # the HGP-SL table's PROTEINS row three points)
        return torch.cat([global_max_pool(x, batch, num_graphs), global_mean_pool(x, batch, num_graphs)], dim=-1)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        batch: Tensor | None = None,
        num_graphs: int | None = None,
    ) -> EncoderOutput:
        r"""Encode a batch of graphs.

        Args:
            x (Tensor): Node features.
            edge_index (Tensor): Edge indices ``[2, E]`` (not a sparse
                adjacency: the pooling selects and relabels edges).
            batch (Tensor, optional): Graph of every node; all nodes form one
                graph when omitted. (default: :obj:`None`)
            num_graphs (int, optional): Number of graphs :math:`B`. Defaults to
                ``batch.max() + 1``, which synchronises with the device and
                drops trailing empty graphs; pass ``data.num_graphs`` to avoid
                both. (default: :obj:`None`)
        """
        check_inputs(x, edge_index, self.in_channels)
        require_index_pairs("HGPSL", edge_index)
        check_float_features(x)
        batch, num_graphs = resolve_batch(x, batch, num_graphs)
        x = F.relu(_convolve(self.convs[0], x, edge_index, None))
        x = F.dropout(x, p=self.dropout, training=self.training)
        node = x
        edge_weight: Tensor | None = None
        graph = x.new_zeros(num_graphs, self.out_channels)
        for conv, pool in zip(self.convs[1:], self.pools):
            x, edge_index, edge_weight, batch, _ = pool(
                x, edge_index, edge_weight, batch, num_graphs
            )
            graph = graph + F.relu(self._readout(x, batch, num_graphs))
            norm = _source_degree_norm(edge_index, edge_weight, x.size(0), x.dtype)
            x = F.relu(_convolve(conv, x, edge_index, norm))
            x = F.dropout(x, p=self.dropout, training=self.training)
        graph = graph + F.relu(self._readout(x, batch, num_graphs))
        return EncoderOutput(graph=graph, node=node)

    def __repr__(self) -> str:
        pool = self.pools[0] if len(self.pools) else None
        extra = (
            ""
            if pool is None
            else (
                f", sample_neighbor={pool.sample_neighbor}, "
                f"sparse_attention={pool.sparse_attention}, "
                f"structure_learning={pool.structure_learning}"
            )
        )
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
            f"num_layers={self.num_layers}, pooling_ratio={self.pooling_ratio}{extra})"
        )
