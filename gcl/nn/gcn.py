r"""The GCN node encoder of node-level contrastive methods (GRACE, GCA, G-BT)."""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GCNConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from gcl._checks import check_switch
from gcl.nn._checkpoint import recomputed
from gcl.nn._utils import (
    check_dropout,
    check_float_features,
    check_inputs,
    check_positive,
    is_index_pairs,
    make_activation,
    observed,
)
from gcl.nn.aggregate import Adjacency, neighbour_sum, supports_sparse_aggregation

__all__ = ["GCN"]


class GCN(nn.Module):
    r"""A stack of graph convolutions from `"Semi-supervised Classification with
    Graph Convolutional Networks" <https://arxiv.org/abs/1609.02907>`_, laid out
    as the node encoders of `GRACE <https://arxiv.org/abs/2006.04131>`_, `GCA
    <https://arxiv.org/abs/2010.14945>`_ and `Graph Barlow Twins
    <https://arxiv.org/abs/2106.02466>`_:

    .. math::
        \mathbf{H}^{(l)} = \sigma\Big(\mathrm{BN}\big(\hat{\mathbf{D}}^{-1/2}
        \hat{\mathbf{A}} \hat{\mathbf{D}}^{-1/2} \mathbf{H}^{(l-1)}
        \mathbf{W}^{(l)}\big)\Big),

    with :math:`\hat{\mathbf{A}} = \mathbf{A} + \mathbf{I}`, optional batch
    normalisation and activation :math:`\sigma`.

    Paper settings, with ``d`` the embedding size:

    - GRACE / GCA: ``GCN(F, 2 * d, num_layers=2, out_channels=d,
      activation="prelu")`` (activation after every layer, also the last;
      the reference code shares one PReLU across layers, here each layer has
      its own).
    - Graph Barlow Twins: ``GCN(F, 2 * d, num_layers=2, out_channels=d,
      batch_norm=True, batch_norm_momentum=0.01, plain_last=True)``
      (GCN–BN–PReLU, then a plain GCN layer).

    Args:
        in_channels (int): Node feature size.
        hidden_channels (int): Width of the hidden layers (and of the output
            when ``out_channels`` is omitted).
        num_layers (int, optional): Number of GCN layers. (default: :obj:`2`)
        activation (str, optional): ``"prelu"``, ``"relu"``, ``"elu"``,
            ``"leaky_relu"``, ``"tanh"`` or ``"identity"``. (default: :obj:`"prelu"`)
        batch_norm (bool, optional): Batch-normalise before each activation.
            (default: :obj:`False`)
        dropout (float, optional): Dropout after each activation.
            (default: :obj:`0.0`)
        out_channels (int, optional): Width of the last layer.
            (default: :obj:`hidden_channels`)
        plain_last (bool, optional): Leave normalisation, activation and
            dropout out of the last layer. (default: :obj:`False`)
        batch_norm_momentum (float, optional): Momentum of the batch-norm
            running statistics. (default: :obj:`0.1`)
        activation_checkpointing (bool, optional): When gradients are
            recorded, each layer keeps only its input for the backward pass and
            runs again there (same outputs, gradients, dropout masks and running
            statistics; forward hooks on the layers run twice), as
            :class:`gcl.nn.GIN`'s option. (default: :obj:`False`)

    The layers are PyG ``GCNConv`` modules; their normalised neighbourhood sum
    runs as one sparse product each way over an adjacency built once per
    forward pass (:func:`gcl.nn.aggregate.neighbour_sum`) instead of message
    passing (edge weights that require grad get their gradient per edge), except
    for half precision, autocast, a sparse adjacency in place of ``edge_index``,
    and convolutions with hooks or PyG explainer masks, which run PyG's own
    ``forward``.

    Shapes:
        - **input:** node features :math:`(N, F_{in})`, edge indices
          :math:`(2, E)`, edge weights :math:`(E)` (optional)
        - **output:** node embeddings :math:`(N, F_{out})`

    Example:
        >>> import torch
        >>> encoder = GCN(8, 32, num_layers=2, out_channels=16)
        >>> x = torch.randn(4, 8)
        >>> edge_index = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
        >>> encoder(x, edge_index).shape
        torch.Size([4, 16])
    """

    # class-level default: a GCN pickled before this option existed still runs
    activation_checkpointing: bool = False

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        num_layers: int = 2,
        activation: str = "prelu",
        batch_norm: bool = False,
        dropout: float = 0.0,
        out_channels: int | None = None,
        plain_last: bool = False,
        batch_norm_momentum: float = 0.1,
        activation_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        check_positive("in_channels", in_channels)
        check_positive("hidden_channels", hidden_channels)
        check_positive("num_layers", num_layers)
        if out_channels is not None:
            check_positive("out_channels", out_channels)
        check_dropout(dropout)
        batch_norm = check_switch("batch_norm", batch_norm)
        plain_last = check_switch("plain_last", plain_last)
        activation_checkpointing = check_switch("activation_checkpointing", activation_checkpointing)
        if not 0.0 <= batch_norm_momentum <= 1.0:
            raise ValueError(f"batch_norm_momentum must be in [0, 1] (got {batch_norm_momentum})")
        make_activation(activation)  # validates the name before any layer is built

        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = hidden_channels if out_channels is None else out_channels
        self.num_layers = num_layers
        self.activation = activation
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.plain_last = plain_last
        self.activation_checkpointing = activation_checkpointing

        widths = [in_channels] + [hidden_channels] * (num_layers - 1) + [self.out_channels]
        self.convs = nn.ModuleList(GCNConv(widths[i], widths[i + 1]) for i in range(num_layers))
        num_wrapped = num_layers - 1 if plain_last else num_layers
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(widths[i + 1], momentum=batch_norm_momentum)
            if batch_norm
            else nn.Identity()
            for i in range(num_wrapped)
        )
        self.acts = nn.ModuleList(make_activation(activation) for _ in range(num_wrapped))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Re-initialise all learnable parameters and batch-norm statistics."""
        for conv in self.convs:
            conv.reset_parameters()  # type: ignore[operator]
        for module in [*self.norms, *self.acts]:
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        r"""Embed every node.

        Args:
            x (Tensor): Node features.
            edge_index (Tensor): Edge indices.
            edge_weight (Tensor, optional): Edge weights. (default: :obj:`None`)
        """
        check_inputs(x, edge_index, self.in_channels)
        check_float_features(x)
        if edge_weight is not None and is_index_pairs(edge_index) and (
                edge_weight.dim() != 1 or edge_weight.numel() != edge_index.size(1)):
            raise ValueError(f"edge_weight must hold one weight per edge ({edge_index.size(1)}) "
                             f"(got shape {tuple(edge_weight.shape)})")
        adjacency: Adjacency | None = None
        if (is_index_pairs(edge_index) and supports_sparse_aggregation(x)
                and all(map(_plain, self.convs)) and not any(map(observed, self.convs))):
            # The normalised adjacency (self-loops, symmetric degree normalisation) once for
            # every layer, as a sparse matrix: no [E, F] message tensor, forward or backward.
            looped, weights = gcn_norm(edge_index.long(), edge_weight, x.size(0), dtype=x.dtype)
            adjacency = Adjacency(looped, x.size(0), x.dtype, edge_weight=weights)
        recompute = self.activation_checkpointing and torch.is_grad_enabled()
        for layer in range(self.num_layers):
            if recompute:
                x = self._recomputed_layer(layer, x, edge_index, edge_weight, adjacency)
            else:
                x = self._layer(layer, x, edge_index, edge_weight, adjacency)
        return x

    def _layer(self, layer: int, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None,
               adjacency: Adjacency | None) -> Tensor:
        r"""Layer ``layer``: convolution, then (but after a plain last one) normalisation,
        activation and dropout."""
        conv = self.convs[layer]
        x = conv(x, edge_index, edge_weight) if adjacency is None else _gcn_layer(conv, x, adjacency)
        if layer < len(self.acts):
            x = self.acts[layer](self.norms[layer](x))
            x = F.dropout(x, p=self.dropout, training=self.training)
        return x

    def _recomputed_layer(self, layer: int, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None,
                          adjacency: Adjacency | None) -> Tensor:
        r""":meth:`_layer` under activation checkpointing (:func:`gcl.nn._checkpoint.recomputed`)."""
        modules: list[nn.Module] = [self.convs[layer]]
        if layer < len(self.acts):
            modules += [self.norms[layer], self.acts[layer]]

        def run(x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> Tensor:
            return self._layer(layer, x, edge_index, edge_weight, adjacency)

        # dropout is the layer's only randomness ("rrelu" is a leaky ReLU of fixed slope here)
        return recomputed(self, modules, run, (x, edge_index, edge_weight), random=self.training and self.dropout > 0)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
            f"num_layers={self.num_layers}, out_channels={self.out_channels}, "
            f"activation={self.activation!r}, batch_norm={self.batch_norm}, "
            f"plain_last={self.plain_last}"
            f"{', activation_checkpointing=True' if self.activation_checkpointing else ''})"
        )


def _plain(conv: nn.Module) -> bool:
    r"""Whether ``conv`` is a ``GCNConv`` as :class:`GCN` builds it (normalised, with
    self-loops, no cache), whose ``forward`` :func:`_gcn_layer` computes."""
    return (isinstance(conv, GCNConv) and conv.normalize and conv.add_self_loops and not conv.improved
            and not conv.cached and conv.flow == "source_to_target")


def _gcn_layer(conv: nn.Module, x: Tensor, adjacency: Adjacency) -> Tensor:
    r"""What ``GCNConv.forward`` computes, with its sum over the normalised adjacency."""
    gcn = cast(GCNConv, conv)
    out = neighbour_sum(gcn.lin(x), adjacency)
    return out if gcn.bias is None else out + gcn.bias
