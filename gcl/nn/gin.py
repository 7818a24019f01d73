r"""The GIN graph encoder used by InfoGraph, GraphCL and their successors."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import (
    GINConv,
    GINEConv,
    global_add_pool,
    global_max_pool,
    global_mean_pool,
)

from gcl._checks import check_switch
from gcl.nn._checkpoint import recomputed
from gcl.nn._utils import (
    EncoderOutput,
    check_dropout,
    check_float_features,
    check_inputs,
    check_positive,
    is_index_pairs,
    observed,
    resolve_batch,
)
from gcl.nn.aggregate import Adjacency, gin_aggregate, supports_sparse_aggregation

__all__ = ["GIN"]

READOUTS: dict[str, Callable[..., Tensor]] = {
    "sum": global_add_pool,
    "mean": global_mean_pool,
    "max": global_max_pool,
}


LAYOUTS = ("graphcl", "ogb")


def _mlp(in_channels: int, hidden_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_channels, hidden_channels),
        nn.ReLU(),
        nn.Linear(hidden_channels, hidden_channels),
    )


def _ogb_mlp(in_channels: int, hidden_channels: int, batch_norm: bool) -> nn.Sequential:
    r"""The OGB leaderboard GIN's MLP: Linear(F, 2H)–BN(2H)–ReLU–Linear(2H, H)."""
    return nn.Sequential(
        nn.Linear(in_channels, 2 * hidden_channels),
        nn.BatchNorm1d(2 * hidden_channels) if batch_norm else nn.Identity(),
        nn.ReLU(),
        nn.Linear(2 * hidden_channels, hidden_channels),
    )


@functools.cache  # read on every forward of an OGB GIN (its edge features' width)
def _ogb_encoders() -> tuple[type[nn.Module], type[nn.Module], int, int]:
    r"""OGB's atom and bond encoders and the numbers of atom and bond features they read."""
    try:
        from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder
        from ogb.utils.features import get_atom_feature_dims, get_bond_feature_dims
    except ImportError as err:  # pragma: no cover - ogb is a declared dependency
        raise ImportError(
            "GIN(ogb_mol=True) needs the 'ogb' package for its atom and bond "
            "encoders; install it with 'pip install ogb'"
        ) from err
    return AtomEncoder, BondEncoder, len(get_atom_feature_dims()), len(get_bond_feature_dims())


def _check_edge_features(edge_attr: Tensor, edge_index: Tensor, width: int) -> None:
    r"""Refuses edge features that are not one ``width``-column row per edge (OGB's encoders and
    GINE's projection would otherwise drop missing columns or broadcast a single row)."""
    if edge_attr.dim() != 2 or edge_attr.size(1) != width:
        raise ValueError(f"edge features must be a [num_edges, {width}] matrix for this GIN "
                         f"(got shape {tuple(edge_attr.shape)})")
    if is_index_pairs(edge_index) and edge_attr.size(0) != edge_index.size(1):
        raise ValueError(f"edge features have {edge_attr.size(0)} rows for {edge_index.size(1)} edges")


def _micro_batch_groups(order: np.ndarray, sizes: np.ndarray, graphs: int | None,
                        nodes: int | None) -> list[np.ndarray]:
    r"""``order`` cut into consecutive runs of at most ``graphs`` graphs and ``nodes`` nodes (a
    graph with more nodes than that alone), ``sizes`` being every graph's node count."""
    if nodes is None:
        step = len(order) if graphs is None else graphs
        return [order[first:first + step] for first in range(0, len(order), step)]
    cuts, count, total = [], 0, 0
    for position, graph in enumerate(order):
        size = int(sizes[graph])
        if count and ((graphs is not None and count == graphs) or total + size > nodes):
            cuts.append(position)
            count, total = 0, 0
        count, total = count + 1, total + size
    return np.split(order, cuts)


def _join_single_nodes(groups: list[np.ndarray], sizes: np.ndarray) -> list[np.ndarray]:
    r"""``groups`` without a group of a single node, which batch norm in training cannot normalise.
    The graph holding such a node leaves its group (graphs without nodes stay behind); two such
    graphs form a group together, and an odd one out joins the nearest group of more nodes (before
    it, else after it) or, where there is none, the last pair. A group so exceeds the limits of
    :func:`_micro_batch_groups` by at most one graph and one node (two where no group held more
    than one node). Unchanged when the groups hold fewer than two nodes in all; groups left
    without graphs are dropped."""
    totals = np.array([int(sizes[members].sum()) for members in groups])
    lone = np.flatnonzero(totals == 1)
    if lone.size == 0 or totals.sum() < 2:
        return groups
    groups = list(groups)
    singles = {}
    for i in lone:
        singles[i] = groups[i][sizes[groups[i]] > 0]
        groups[i] = groups[i][sizes[groups[i]] == 0]
    for first, second in zip(lone[0::2], lone[1::2]):
        groups[first] = np.concatenate([groups[first], singles[first], singles[second]])
    if lone.size % 2:
        odd = lone[-1]
        larger = np.flatnonzero(totals > 1)
        if larger.size:
            before = larger[larger < odd]
            target = before[-1] if before.size else larger[0]
        else:  # every group held one node at most: the last pair (at least two nodes exist)
            target = lone[-3]
        groups[target] = np.concatenate([groups[target], singles[odd]])
    return [members for members in groups if members.size]


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    r"""``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])`` without the loop."""
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(int(counts.sum()))


def _gin_layer(conv: nn.Module, x: Tensor, adjacency: Adjacency) -> Tensor:
    r"""What ``GINConv.forward`` computes, with the neighbourhood sum of :func:`gin_aggregate`."""
    gin = cast(GINConv, conv)
    return cast(Tensor, gin.nn(gin_aggregate(x, adjacency, gin.eps)))


class GIN(nn.Module):
    r"""The graph isomorphism network from `"How Powerful are Graph Neural
    Networks?" <https://arxiv.org/abs/1810.00826>`_ (Xu et al., ICLR 2019), in
    the layout of the unsupervised TU encoder of InfoGraph and `GraphCL
    <https://arxiv.org/abs/2010.13902>`_: each layer is a GIN convolution with a
    two-layer MLP, then ReLU, then batch normalisation,

    .. math::
        \mathbf{h}_i^{(l)} = \mathrm{BN}\Big(\mathrm{ReLU}\big(
        \mathrm{MLP}^{(l)}\big((1 + \epsilon)\,\mathbf{h}_i^{(l-1)} +
        \textstyle\sum_{j \in \mathcal{N}(i)} \mathbf{h}_j^{(l-1)}\big)\big)\Big),

    and the graph embedding concatenates one readout per layer,

    .. math::
        \mathbf{h}_G = \big\Vert_{l=1}^{L}\;
        \mathrm{READOUT}\big(\{\mathbf{h}_i^{(l)} : i \in G\}\big),

    so the GraphCL default (32 channels, 3 layers) gives 96-d embeddings. The
    node embedding is the concatenation :math:`\Vert_l \mathbf{h}_i^{(l)}`.

    With edge features the message becomes
    :math:`\mathrm{ReLU}(\mathbf{h}_j + \mathbf{e}_{ji})` (GINE,
    `Hu et al. <https://arxiv.org/abs/1905.12265>`_), as in the OGB molecule
    GIN: ``edge_dim`` projects raw edge features linearly per layer, while
    ``ogb_mol=True`` embeds OGB's integer atom and bond features with
    ``ogb``'s :class:`AtomEncoder` (input) and one :class:`BondEncoder` per
    layer.

    ``layout="ogb"`` gives the GIN of the `OGB leaderboard
    <https://ogb.stanford.edu/docs/leader_graphprop/>`_ (without virtual
    node): batch norm inside a wider MLP and after the convolution, no ReLU
    after the last layer, and the readout of the last layer only,

    .. math::
        \mathbf{h}_i^{(l)} &= \mathrm{Dropout}\Big(\sigma_l\Big(\mathrm{BN}
        \big(\mathrm{MLP}^{(l)}\big((1 + \epsilon^{(l)})\,\mathbf{h}_i^{(l-1)} +
        \textstyle\sum_{j \in \mathcal{N}(i)} \mathbf{m}_{ji}\big)\big)\Big)\Big),

        \mathbf{h}_G &= \mathrm{READOUT}\big(\{\mathbf{h}_i^{(L)} : i \in G\}\big),

    with the message :math:`\mathbf{m}_{ji}` as above (:math:`\mathbf{h}_j`,
    or :math:`\mathrm{ReLU}(\mathbf{h}_j + \mathbf{e}_{ji})` with edge
    features), :math:`\mathrm{MLP} = \mathrm{Linear}(F, 2H)`–BN–ReLU–
    :math:`\mathrm{Linear}(2H, H)`, :math:`\sigma_l` = ReLU for
    :math:`l < L` and the identity for :math:`l = L`, learnable
    :math:`\epsilon` and mean readout by default; graph and node embeddings
    have ``hidden_channels`` features. With ``ogb_mol=True``,
    ``hidden_channels=300``, ``num_layers=5`` and ``dropout=0.5`` it is the
    leaderboard's GIN encoder; a single linear layer on :math:`\mathbf{h}_G`
    completes its model.

    Args:
        in_channels (int): Node feature size. With ``ogb_mol=True`` it must be
            the number of OGB atom features (9).
        hidden_channels (int, optional): Width of every layer. (default: :obj:`32`)
        num_layers (int, optional): Number of GIN layers. (default: :obj:`3`)
        readout (str, optional): ``"sum"``, ``"mean"`` or ``"max"`` pooling
            (of every layer with ``layout="graphcl"``, of the last one with
            ``layout="ogb"``). (default: :obj:`None`: ``"sum"`` for
            ``"graphcl"``, ``"mean"`` for ``"ogb"``)
        batch_norm (bool, optional): Batch-normalise after each layer's ReLU
            (``"graphcl"``), or inside each MLP and after each convolution
            (``"ogb"``). (default: :obj:`True`)
        dropout (float, optional): Dropout on each layer's output.
            (default: :obj:`0.0`)
        edge_dim (int, optional): Size of real-valued edge features; enables
            edge-aware messages. (default: :obj:`None`)
        ogb_mol (bool, optional): Use OGB's atom/bond encoders and edge-aware
            messages. (default: :obj:`False`)
        train_eps (bool, optional): Learn :math:`\epsilon` (OGB's GIN does;
            GraphCL keeps :math:`\epsilon = 0`). (default: :obj:`None`:
            :obj:`False` for ``"graphcl"``, :obj:`True` for ``"ogb"``)
        layout (str, optional): ``"graphcl"`` (the InfoGraph/GraphCL layer
            order and concatenated readout) or ``"ogb"`` (the OGB
            leaderboard's). (default: :obj:`"graphcl"`)
        activation_checkpointing (bool, optional): When gradients
            are recorded, each layer keeps only its input for the backward pass
            and runs again there (same dropout masks; batch-norm running
            statistics updated once). Saves the memory of the layers'
            intermediate activations (the edge messages too with edge
            features) for about one more forward pass of compute; outputs and
            gradients are unchanged. Forward hooks on the layers run twice.
            (default: :obj:`False`)
        micro_batch_size (int, optional): Encode a batch of more than this
            many graphs in micro-batches of at most ``micro_batch_size``
            graphs, and, when gradients are recorded, keep only each
            micro-batch's inputs and embeddings for the backward pass, which
            runs the micro-batches again one at a time (gradient caching,
            `Gao et al. <https://arxiv.org/abs/2101.06983>`_): the activations
            in memory are those of one micro-batch, while whatever the
            embeddings feed (a contrastive loss over the whole batch) sees
            every graph. Batch norm in training normalises each micro-batch
            on its own statistics (ghost batch norm) and updates the running
            statistics once per micro-batch; the micro-batches are then
            random groups of the batch's graphs (a permutation drawn from the
            global generator at every call), since runs of consecutive graphs
            would give the two views of a graph the same statistics, which a
            contrastive loss can tell from its negatives' (the reason for
            MoCo's shuffled batch norm). Batch statistics need two nodes: a
            micro-batch that would hold a single node (a one-node graph drawn
            alone) gives that graph to another one, which may then hold one
            graph and one node more than the limits allow (two where no
            micro-batch would hold more than one node), so that only a batch
            of a single node is refused, as batch norm refuses it. The result
            is that of encoding the micro-batches one by one. Without batch norm
            and dropout (or in evaluation mode) the micro-batches are runs of
            consecutive graphs and the result is the whole batch's; with
            dropout the masks are drawn micro-batch by micro-batch. Needs
            ``edge_index`` as index pairs, nodes grouped by graph in order (as
            PyG collates them) and no edge between two graphs; not combined with
            :class:`~torch.nn.SyncBatchNorm` in training (ranks may hold
            different numbers of micro-batches, and each synchronises).
            (default: :obj:`None`: one pass over the batch)
        micro_batch_nodes (int, optional): A budget of nodes per micro-batch,
            alone or with ``micro_batch_size``: a micro-batch is closed before
            the graph that would take it past the budget (a larger graph gets
            one of its own), so the activations in memory are bounded by nodes,
            not graphs (datasets with a few very large graphs). Micro-batches
            otherwise as with ``micro_batch_size`` (in training with batch
            norm, one that takes a one-node graph may exceed the budget by
            that node). (default: :obj:`None`)

    Shapes:
        - **input:** node features :math:`(N, F_{in})` (long :math:`(N, 9)`
          for ``ogb_mol``), edge indices :math:`(2, E)`, batch vector
          :math:`(N)` (optional), edge features :math:`(E, D)` (optional)
        - **output:** :class:`EncoderOutput` with ``graph``
          :math:`(B, L \cdot H)` and ``node`` :math:`(N, L \cdot H)`
          (:math:`(B, H)` and :math:`(N, H)` with ``layout="ogb"``)

    Example:
        >>> import torch
        >>> encoder = GIN(7, hidden_channels=32, num_layers=3)
        >>> x = torch.randn(5, 7)
        >>> edge_index = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])
        >>> batch = torch.tensor([0, 0, 0, 1, 1])
        >>> out = encoder(x, edge_index, batch, num_graphs=2)
        >>> out.graph.shape, out.node.shape
        (torch.Size([2, 96]), torch.Size([5, 96]))
        >>> GIN(7, 32, 3, layout="ogb")(x, edge_index, batch, num_graphs=2).graph.shape
        torch.Size([2, 32])
    """

    # class-level defaults: a GIN pickled before these options existed still runs
    layout: str = "graphcl"
    activation_checkpointing: bool = False
    micro_batch_size: int | None = None
    micro_batch_nodes: int | None = None

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 32,
        num_layers: int = 3,
        readout: str | None = None,
        batch_norm: bool = True,
        dropout: float = 0.0,
        edge_dim: int | None = None,
        ogb_mol: bool = False,
        train_eps: bool | None = None,
        layout: str = "graphcl",
        activation_checkpointing: bool = False,
        micro_batch_size: int | None = None,
        micro_batch_nodes: int | None = None,
    ) -> None:
        super().__init__()
        check_positive("in_channels", in_channels)
        check_positive("hidden_channels", hidden_channels)
        check_positive("num_layers", num_layers)
        check_dropout(dropout)
        batch_norm = check_switch("batch_norm", batch_norm)
        ogb_mol = check_switch("ogb_mol", ogb_mol)
        if train_eps is not None:
            train_eps = check_switch("train_eps", train_eps)
        activation_checkpointing = check_switch("activation_checkpointing", activation_checkpointing)
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS} (got {layout!r})")
        if readout is None:
            readout = "mean" if layout == "ogb" else "sum"
        if train_eps is None:
            train_eps = layout == "ogb"
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {tuple(READOUTS)} (got {readout!r})")
        if edge_dim is not None and ogb_mol:
            raise ValueError(
                f"edge_dim and ogb_mol are exclusive (got edge_dim={edge_dim}, ogb_mol=True)"
            )
        if edge_dim is not None:
            check_positive("edge_dim", edge_dim)

        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.readout = readout
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.edge_dim = edge_dim
        self.ogb_mol = ogb_mol
        self.train_eps = train_eps
        self.layout = layout
        self.activation_checkpointing = activation_checkpointing
        if micro_batch_size is not None:
            check_positive("micro_batch_size", micro_batch_size)
        self.micro_batch_size = micro_batch_size
        if micro_batch_nodes is not None:
            check_positive("micro_batch_nodes", micro_batch_nodes)
        self.micro_batch_nodes = micro_batch_nodes

        self.atom_encoder: nn.Module | None = None
        self.bond_encoders: nn.ModuleList | None = None
        first_channels = in_channels
        if ogb_mol:
            atom_encoder_cls, bond_encoder_cls, num_atom_features, _ = _ogb_encoders()
            if in_channels != num_atom_features:
                raise ValueError(
                    f"ogb_mol=True expects in_channels={num_atom_features} OGB atom "
                    f"features (got {in_channels})"
                )
            self.atom_encoder = atom_encoder_cls(hidden_channels)
            self.bond_encoders = nn.ModuleList(
                bond_encoder_cls(hidden_channels) for _ in range(num_layers)
            )
            first_channels = hidden_channels

        self.convs = nn.ModuleList()
        for layer in range(num_layers):
            channels = first_channels if layer == 0 else hidden_channels
            if layout == "ogb":
                mlp = _ogb_mlp(channels, hidden_channels, batch_norm)
            else:
                mlp = _mlp(channels, hidden_channels)
            conv: nn.Module
            if ogb_mol:
                conv = GINEConv(mlp, train_eps=train_eps)
            elif edge_dim is not None:
                conv = GINEConv(mlp, train_eps=train_eps, edge_dim=edge_dim)
            else:
                conv = GINConv(mlp, train_eps=train_eps)
            self.convs.append(conv)
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(hidden_channels) if batch_norm else nn.Identity()
            for _ in range(num_layers)
        )
        self.reset_parameters()

    @property
    def out_channels(self) -> int:
        r"""Size of the graph and node embeddings: ``num_layers * hidden_channels``
        (``hidden_channels`` with ``layout="ogb"``)."""
        if self.layout == "ogb":
            return self.hidden_channels
        return self.num_layers * self.hidden_channels

    @property
    def _edge_width(self) -> int | None:
        r"""Columns of ``edge_attr``: ``edge_dim``, or OGB's bond features with ``ogb_mol``
        (derived, not stored: a GIN pickled before the check existed has no such attribute)."""
        if self.ogb_mol:
            return _ogb_encoders()[3]
        return self.edge_dim

    @property
    def uses_edge_attr(self) -> bool:
        r"""Whether :meth:`forward` needs ``edge_attr``."""
        return self.ogb_mol or self.edge_dim is not None

    def reset_parameters(self) -> None:
        r"""Re-initialise all learnable parameters and batch-norm statistics."""
        for conv in self.convs:
            conv.reset_parameters()  # type: ignore[operator]
        for norm in self.norms:
            if isinstance(norm, nn.BatchNorm1d):
                norm.reset_parameters()
        # ogb's encoders have no reset method; mirror their own initialisation.
        for encoder in [self.atom_encoder, *(self.bond_encoders or [])]:
            if encoder is None:
                continue
            for module in encoder.modules():
                if isinstance(module, nn.Embedding):
                    nn.init.xavier_uniform_(module.weight)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        batch: Tensor | None = None,
        edge_attr: Tensor | None = None,
        num_graphs: int | None = None,
        node_embeddings: bool = True,
    ) -> EncoderOutput:
        r"""Encode a batch of graphs.

        Args:
            x (Tensor): Node features.
            edge_index (Tensor): Edge indices ``[2, E]``, or a sparse
                transposed adjacency (``torch.sparse_csr`` or ``SparseTensor``)
                as PyG's convolutions take it.
            batch (Tensor, optional): Graph of every node; all nodes form one
                graph when omitted. (default: :obj:`None`)
            edge_attr (Tensor, optional): Edge features, required with
                ``edge_dim`` or ``ogb_mol``. (default: :obj:`None`)
            num_graphs (int, optional): Number of graphs :math:`B`. Defaults to
                ``batch.max() + 1``, which synchronises with the device and
                drops trailing graphs that have no nodes left; pass
                ``data.num_graphs`` to avoid both. (default: :obj:`None`)
            node_embeddings (bool, optional): Return the node embeddings. With
                :obj:`False` ``node`` is an empty :math:`(N, 0)` tensor, and the
                ``"graphcl"`` layout pools each layer on its own instead of
                concatenating the layers' node states first (the same graph
                embeddings, without one :math:`(N, L \cdot H)` tensor).
                (default: :obj:`True`)
        """
        if self.uses_edge_attr and edge_attr is None:
            raise ValueError("this GIN uses edge features, but edge_attr is None")
        check_inputs(x, edge_index, self.in_channels)
        if self._edge_width is not None:
            _check_edge_features(cast(Tensor, edge_attr), edge_index, self._edge_width)
        if self.atom_encoder is None:
            check_float_features(x)
        batch, num_graphs = resolve_batch(x, batch, num_graphs)
        node_embeddings = check_switch("node_embeddings", node_embeddings)
        if ((self.micro_batch_size is not None and num_graphs > self.micro_batch_size)
                or (self.micro_batch_nodes is not None and x.size(0) > self.micro_batch_nodes)):
            return self._micro_batched(x, edge_index, batch, edge_attr, num_graphs, node_embeddings)
        return self._encode(x, edge_index, batch, edge_attr, num_graphs, node_embeddings)

    def _encode(self, x: Tensor, edge_index: Tensor, batch: Tensor, edge_attr: Tensor | None,
                num_graphs: int, nodes: bool = True) -> EncoderOutput:
        r""":meth:`forward` after its checks, on the whole batch at once."""
        if self.atom_encoder is not None:
            x = self.atom_encoder(x)
        if is_index_pairs(edge_index) and edge_index.dtype != torch.long:
            # PyG's GIN(E)Conv back-propagates wrongly through int32 indices (torch_geometric 2.8)
            edge_index = edge_index.long()

        states = []
        adjacency: Adjacency | None = None
        if (not self.uses_edge_attr and is_index_pairs(edge_index)
                and supports_sparse_aggregation(x) and not any(map(observed, self.convs))):
            # Sum neighbours through the sparse adjacency, built once for every layer:
            # no [E, F] message tensor, and a backward pass that is one sparse product
            # (see gcl.nn.aggregate and benchmarks/results/perf.md).
            adjacency = Adjacency(edge_index, x.size(0), x.dtype)
        recompute = self.activation_checkpointing and torch.is_grad_enabled()
        for layer in range(self.num_layers):
            if recompute:
                x = self._recomputed_layer(layer, x, edge_index, edge_attr, adjacency)
            else:
                x = self._layer(layer, x, edge_index, edge_attr, adjacency)
            states.append(x)

        readout = READOUTS[self.readout]
        if self.layout == "ogb":
            node = states[-1]
            graph = readout(node, batch, num_graphs)
        elif nodes:
            node = torch.cat(states, dim=-1)
            # Pooling acts channel by channel, so pooling the concatenation equals
            # concatenating the per-layer readouts.
            graph = readout(node, batch, num_graphs)
        else:
            graph = torch.cat([readout(state, batch, num_graphs) for state in states], dim=-1)
        if not nodes:
            node = states[-1].new_empty(states[-1].size(0), 0)
        return EncoderOutput(graph=graph, node=node)

    def _micro_batched(self, x: Tensor, edge_index: Tensor, batch: Tensor, edge_attr: Tensor | None,
                       num_graphs: int, node_embeddings: bool) -> EncoderOutput:
        r""":meth:`_encode` on micro-batches of ``micro_batch_size`` graphs (and at most
        ``micro_batch_nodes`` nodes, unless one graph has more), each recomputed in the
        backward pass when gradients are recorded; graph and node embeddings put back in the
        batch's order. In training with batch norm the micro-batches are random groups of graphs
        (one permutation per call), otherwise runs of consecutive graphs."""
        if not is_index_pairs(edge_index):
            raise ValueError("micro-batches need edge_index as [2, E] index pairs (got a sparse adjacency)")
        norms = [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)] if self.training else []
        if any(isinstance(m, nn.SyncBatchNorm) for m in norms):
            raise ValueError("micro-batches cannot be combined with SyncBatchNorm in training: ranks may hold "
                             "different numbers of micro-batches, each of which synchronises")
        normalised = bool(norms)
        if edge_index.dtype != torch.long:
            edge_index = edge_index.long()
        source_graph = batch[edge_index[0]]
        # the three layout checks read back together (one synchronisation on a GPU)
        unsorted_nodes, crossing, unsorted_edges = torch.stack([
            (batch[1:] < batch[:-1]).any(), (source_graph != batch[edge_index[1]]).any(),
            (source_graph[1:] < source_graph[:-1]).any()]).tolist()
        if unsorted_nodes:
            raise ValueError("micro-batches need the nodes grouped by graph in order (a sorted batch "
                             "vector, as PyG collates graphs)")
        if crossing:
            raise ValueError("micro-batches cannot split a batch in which an edge joins two graphs")
        edge_order: Tensor | None = None
        if unsorted_edges:
            edge_order = torch.argsort(source_graph, stable=True)
            source_graph = source_graph[edge_order]
        bounds = torch.arange(num_graphs + 1, device=batch.device)
        # every graph's node and edge range, on the host (one more synchronisation on a GPU)
        node_ptr, edge_ptr = torch.stack([torch.searchsorted(batch, bounds),
                                          torch.searchsorted(source_graph, bounds)]).cpu().numpy()
        if node_ptr[0] != 0 or node_ptr[-1] != x.size(0):  # (checked on the CPU only before: no sync there)
            raise ValueError(f"batch holds graph indices outside [0, {num_graphs}); pass data.num_graphs")
        # With batch statistics, runs of consecutive graphs would give both views of a graph the same
        # micro-batch and so the same statistics, which a contrastive loss can tell apart from the
        # negatives' (MoCo's reason to shuffle batch norm): random groups instead.
        order = torch.randperm(num_graphs).numpy() if normalised else np.arange(num_graphs)
        sizes = node_ptr[1:] - node_ptr[:-1]
        groups = _micro_batch_groups(order, sizes, self.micro_batch_size, self.micro_batch_nodes)
        if normalised:
            # a group of a single node (a one-node graph drawn alone) would make training fail at
            # random steps: its graph joins another group
            groups = _join_single_nodes(groups, sizes)
            order = np.concatenate(groups)

        recompute = torch.is_grad_enabled()
        random = self.training and self.dropout > 0
        modules: list[nn.Module] = [self]
        graphs: list[Tensor | int] = []
        nodes: Tensor | None = None  # written micro-batch by micro-batch: no second copy of them all
        device = x.device
        for members in groups:
            counts = node_ptr[members + 1] - node_ptr[members]
            total = int(counts.sum())
            if total == 0:  # every graph of the micro-batch lost its nodes: readouts of nothing
                graphs.append(members.size)
                continue
            if normalised and total == 1:  # only where the whole batch has one node (_join_single_nodes)
                raise ValueError("the batch has a single node, and batch norm in training needs more than one "
                                 "(as without micro-batches)")
            node_rows = torch.from_numpy(_ranges(node_ptr[members], counts)).to(device)
            edge_counts = edge_ptr[members + 1] - edge_ptr[members]
            edge_rows = _ranges(edge_ptr[members], edge_counts)
            # node v of graph g moves from node_ptr[g] + i to (g's start in the micro-batch) + i
            shift = np.repeat(node_ptr[members] - (np.cumsum(counts) - counts), edge_counts)
            edge_pick = torch.from_numpy(edge_rows).to(device)
            if edge_order is not None:
                edge_pick = edge_order[edge_pick]
            inputs = (x, node_rows,
                      edge_index[:, edge_pick] - torch.from_numpy(shift).to(device),
                      torch.from_numpy(np.repeat(np.arange(members.size), counts)).to(device),
                      edge_attr, edge_pick)

            def run(x: Tensor, node_index: Tensor, edge_index: Tensor, batch: Tensor, edge_attr: Tensor | None,
                    edge_pick: Tensor, count: int = members.size) -> tuple[Tensor, Tensor]:
                # the gathers run inside: the backward pass keeps the indices, not copies of the features
                attr = None if edge_attr is None else edge_attr.index_select(0, edge_pick)
                out = self._encode(x.index_select(0, node_index), edge_index, batch, attr, count, node_embeddings)
                return out.graph, out.node

            if recompute:
                graph, node = recomputed(self, modules, run, inputs, random=random)
            else:
                graph, node = run(*inputs)
            graphs.append(graph)
            if nodes is None:
                nodes = node.new_empty(x.size(0), node.size(1))
            nodes[node_rows] = node
        if nodes is None:  # no graph has a node: the plain pass says so
            return self._encode(x, edge_index, batch, edge_attr, num_graphs, node_embeddings)
        graph = torch.cat([part if isinstance(part, Tensor) else nodes.new_zeros(part, self.out_channels)
                           for part in graphs])
        if normalised:  # back to the batch's order
            graph = graph[torch.from_numpy(np.argsort(order)).to(device)]
        return EncoderOutput(graph=graph, node=nodes)

    def _layer(self, layer: int, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None,
               adjacency: Adjacency | None) -> Tensor:
        r"""Layer ``layer`` on node states ``x``: convolution, normalisation, activation, dropout."""
        conv, norm = self.convs[layer], self.norms[layer]
        if self.bond_encoders is not None:
            x = conv(x, edge_index, self.bond_encoders[layer](edge_attr))
        elif self.edge_dim is not None:
            x = conv(x, edge_index, edge_attr)
        elif adjacency is not None:
            x = _gin_layer(conv, x, adjacency)
        else:
            x = conv(x, edge_index)
        if self.layout == "ogb":
            x = norm(x)
            if layer < self.num_layers - 1:
                x = F.relu(x)
        else:
            x = norm(F.relu(x))
        return F.dropout(x, p=self.dropout, training=self.training)

    def _recomputed_layer(self, layer: int, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None,
                          adjacency: Adjacency | None) -> Tensor:
        r""":meth:`_layer` under activation checkpointing (:func:`gcl.nn._checkpoint.recomputed`)."""
        modules: list[nn.Module] = [self.convs[layer], self.norms[layer]]
        if self.bond_encoders is not None:
            modules.append(self.bond_encoders[layer])

        def run(x: Tensor, edge_index: Tensor, edge_attr: Tensor | None) -> Tensor:
            return self._layer(layer, x, edge_index, edge_attr, adjacency)

        # edge_index is an input: the recomputation then refuses one changed in place; dropout is
        # the layer's only randomness
        return recomputed(self, modules, run, (x, edge_index, edge_attr), random=self.training and self.dropout > 0)

    def __repr__(self) -> str:
        extra = ""
        if self.edge_dim is not None:
            extra += f", edge_dim={self.edge_dim}"
        if self.ogb_mol:
            extra += ", ogb_mol=True"
        if self.layout != "graphcl":
            extra += f", layout={self.layout!r}"
        if self.activation_checkpointing:
            extra += ", activation_checkpointing=True"
        if self.micro_batch_size is not None:
            extra += f", micro_batch_size={self.micro_batch_size}"
        if self.micro_batch_nodes is not None:
            extra += f", micro_batch_nodes={self.micro_batch_nodes}"
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
            f"num_layers={self.num_layers}, readout={self.readout!r}, "
            f"batch_norm={self.batch_norm}, out_channels={self.out_channels}{extra})"
        )
