r"""Hierarchical graph pooling with structure learning (HGP-SL) and its
building blocks: node information scores, per-graph top-:math:`k` selection,
edge filtering and :math:`k`-hop candidate edges."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import add_remaining_self_loops, coalesce, cumsum, scatter, softmax

from gcl._checks import check_switch
from gcl.nn._utils import (
    check_positive,
    inverse_degree,
    require_index_pairs,
    resolve_batch,
)
from gcl.nn.aggregate import Adjacency, neighbour_sum, supports_sparse_aggregation
from gcl.nn.sparsemax import sparsemax

__all__ = [
    "HGPSLPool",
    "PoolOutput",
    "filter_edges",
    "full_graph_edges",
    "k_hop_edges",
    "node_information_score",
    "topk_per_graph",
]

SCORE_NORMALIZATIONS = ("rw", "sym")


class PoolOutput(NamedTuple):
    r"""Result of :class:`HGPSLPool`.

    Attributes:
        x (Tensor): Features of the kept nodes, :obj:`[N', F]`.
        edge_index (Tensor): Edges of the pooled graphs, :obj:`[2, E']`.
        edge_weight (Tensor, optional): Their weights, :obj:`[E']` (``None``
            only without structure learning and without input weights).
        batch (Tensor): Graph of every kept node, :obj:`[N']`, sorted.
        perm (Tensor): Index of every kept node in the input, :obj:`[N']`.
    """

    x: Tensor
    edge_index: Tensor
    edge_weight: Tensor | None
    batch: Tensor
    perm: Tensor


def node_information_score(
    x: Tensor,
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    normalization: str = "rw",
) -> Tensor:
    r"""The node information score of `HGP-SL <https://arxiv.org/abs/1911.05954>`_:
    how badly a node's features are reconstructed from its neighbours,

    .. math::
        p_i = \big\Vert \big[(\mathbf{I} - \mathbf{D}^{-1}\mathbf{A})\mathbf{H}\big]_i
        \big\Vert_1 = \Big\Vert \mathbf{h}_i - \frac{1}{d_i}
        \sum_{j \to i} w_{ji}\, \mathbf{h}_j \Big\Vert_1,

    with :math:`d_i = \sum_{j \to i} w_{ji}` (``normalization="rw"``, the
    paper's formula). ``normalization="sym"`` uses
    :math:`w_{ji} / \sqrt{d_j d_i}` with out-degrees :math:`d`, as the authors'
    reference code does. Messages flow from ``edge_index[0]`` to
    ``edge_index[1]``; on undirected graphs the neighbourhood is the usual one.
    Isolated nodes score :math:`\Vert \mathbf{h}_i \Vert_1`.

    Args:
        x (Tensor): Node features :obj:`[N, F]`.
        edge_index (Tensor): Edge indices :obj:`[2, E]`.
        edge_weight (Tensor, optional): Edge weights :obj:`[E]`; ones when
            omitted. (default: :obj:`None`)
        normalization (str, optional): ``"rw"`` or ``"sym"``. (default: :obj:`"rw"`)

    Returns:
        Tensor: Scores of shape :obj:`[N]`.
    """
    if normalization not in SCORE_NORMALIZATIONS:
        raise ValueError(
            f"normalization must be one of {SCORE_NORMALIZATIONS} (got {normalization!r})"
        )
    num_nodes = x.size(0)
    src, dst = edge_index
    if edge_weight is None:
        edge_weight = torch.ones(src.numel(), dtype=x.dtype, device=x.device)
    if normalization == "rw":
        deg = scatter(edge_weight, dst, 0, num_nodes, reduce="sum")
        norm = edge_weight * inverse_degree(deg)[dst]
    else:
        deg = scatter(edge_weight, src, 0, num_nodes, reduce="sum")
        inv_sqrt = inverse_degree(deg, sqrt=True)
        norm = inv_sqrt[src] * edge_weight * inv_sqrt[dst]
    if supports_sparse_aggregation(x):  # one sparse product, no [E, F] message tensor
        neighbourhood = neighbour_sum(x, Adjacency(edge_index, num_nodes, x.dtype, edge_weight=norm))
    else:
        neighbourhood = scatter(norm.unsqueeze(-1) * x[src], dst, 0, num_nodes, reduce="sum")
    return (x - neighbourhood).abs().sum(dim=-1)


def topk_per_graph(score: Tensor, ratio: float, batch: Tensor, num_graphs: int) -> Tensor:
    r"""Indices of the :math:`\lceil \mathrm{ratio} \cdot n_g \rceil` highest
    scores of every graph :math:`g` (at least one node of every non-empty
    graph), all graphs at once.

    Args:
        score (Tensor): Node scores :obj:`[N]`.
        ratio (float): Fraction of nodes to keep, in :math:`(0, 1]`.
        batch (Tensor): Graph of every node :obj:`[N]` (need not be sorted).
        num_graphs (int): Number of graphs.

    Returns:
        Tensor: Kept node indices, ordered by graph and, within a graph, by
        decreasing score (ties keep input order).
    """
    order = torch.argsort(score, descending=True, stable=True)
    order = order[torch.argsort(batch[order], stable=True)]
    counts = scatter(torch.ones_like(batch), batch, 0, num_graphs, reduce="sum")
    # The small tolerance makes e.g. ratio=0.3 on 10 nodes keep 3, not 4,
    # although 0.3 * 10 rounds to 3.0000000000000004 in floating point.
    k = (ratio * counts.to(torch.float64) - 1e-9).ceil().to(torch.long)
    k = torch.minimum(k.clamp(min=1), counts)
    sorted_batch = batch[order]
    rank = torch.arange(order.numel(), device=score.device) - cumsum(counts)[sorted_batch]
    return order[rank < k[sorted_batch]]


def filter_edges(
    edge_index: Tensor, edge_weight: Tensor | None, perm: Tensor, num_nodes: int
) -> tuple[Tensor, Tensor | None]:
    r"""The edges between kept nodes, relabelled to positions in ``perm``.

    Args:
        edge_index (Tensor): Edge indices :obj:`[2, E]`.
        edge_weight (Tensor, optional): Edge weights :obj:`[E]`.
        perm (Tensor): Kept node indices :obj:`[N']`.
        num_nodes (int): Number of nodes before filtering.

    Returns:
        tuple[Tensor, Tensor | None]: Edge indices :obj:`[2, E']` and weights.
    """
    mapping = torch.full((num_nodes,), -1, dtype=torch.long, device=edge_index.device)
    mapping[perm] = torch.arange(perm.numel(), device=edge_index.device)
    new_index = mapping[edge_index]
    keep = (new_index >= 0).all(dim=0)
    return new_index[:, keep], None if edge_weight is None else edge_weight[keep]


def _segment_arange(lengths: Tensor) -> Tensor:
    # [0, .., l_0 - 1, 0, .., l_1 - 1, ...] for non-negative lengths.
    total = torch.arange(int(lengths.sum()), device=lengths.device)
    starts = torch.repeat_interleave(cumsum(lengths)[:-1], lengths)
    return total - starts


def k_hop_edges(
    edge_index: Tensor, num_nodes: int, num_hops: int, source_mask: Tensor | None = None
) -> Tensor:
    r"""All pairs :math:`(i, j)` joined by a walk of :math:`1` to
    :math:`k` edges, i.e. the sparsity pattern of
    :math:`\mathbf{A} + \mathbf{A}^2 + \dots + \mathbf{A}^k`.

    Walks of even length make every non-isolated node its own neighbour. On
    the CPU the pattern comes from SciPy's sparse products (compiled code, no
    sort per hop); elsewhere each extra hop joins the current pairs with the
    edge list in compressed-row form on the device. Neither needs torch-sparse
    or a dense :math:`N \times N` matrix, and both give the same pairs in the
    same order.

    Args:
        edge_index (Tensor): Edge indices :obj:`[2, E]`.
        num_nodes (int): Number of nodes.
        num_hops (int): Longest walk :math:`k \ge 1`.
        source_mask (Tensor, optional): Boolean :obj:`[N]`; only walks starting
            at these nodes are followed (they may pass through any node). A
            mask of another dtype is refused (0/1 integers would index nodes).
            (default: :obj:`None`)

    Returns:
        Tensor: Coalesced edge indices (sorted by row, then column).
    """
    check_positive("num_hops", num_hops)
    if source_mask is not None and (source_mask.dtype != torch.bool or source_mask.shape != (num_nodes,)):
        raise ValueError(f"source_mask must be a boolean tensor of shape [{num_nodes}] (got {source_mask.dtype} "
                         f"of shape {tuple(source_mask.shape)}); convert a 0/1 mask with .bool()")
    if edge_index.device.type == "cpu":
        mask = None if source_mask is None else source_mask.numpy()
        rows, cols = _k_hop_pattern(edge_index.numpy(), num_nodes, num_hops, mask)
        return torch.from_numpy(np.stack([rows, cols])).to(edge_index.dtype)
    return _k_hop_edges_torch(edge_index, num_nodes, num_hops, source_mask)


def _k_hop_pattern(
    edge_index: np.ndarray, num_nodes: int, num_hops: int, source_mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    r"""Rows and columns of :func:`k_hop_edges`' pairs, sorted by row and then
    column, from SciPy's sparse products of the 0/1 adjacency."""
    from scipy.sparse import csr_matrix

    row, col = edge_index.astype(np.int64, copy=False)
    shape = (num_nodes, num_nodes)
    # int32 counts cannot overflow: every product's entries are reset to 1 before the next
    adjacency = csr_matrix((np.ones(row.size, dtype=np.int32), (row, col)), shape=shape)
    adjacency.sum_duplicates()
    adjacency.data[:] = 1
    start = adjacency
    if source_mask is not None:
        chosen = source_mask[row]
        start = csr_matrix((np.ones(int(chosen.sum()), dtype=np.int32), (row[chosen], col[chosen])), shape=shape)
        start.sum_duplicates()
        start.data[:] = 1
    reach, frontier = start, start
    for _ in range(num_hops - 1):
        if frontier.nnz == 0:
            break
        frontier = frontier @ adjacency  # counts of walks, all positive: no entry cancels out
        frontier.data[:] = 1
        reach = reach + frontier
    reach.sum_duplicates()  # sorted columns within every row, as coalesce orders them
    rows = np.repeat(np.arange(num_nodes, dtype=np.int64), np.diff(reach.indptr))
    return rows, reach.indices.astype(np.int64)


def _k_hop_edges_torch(
    edge_index: Tensor, num_nodes: int, num_hops: int, source_mask: Tensor | None
) -> Tensor:
    r""":func:`k_hop_edges` with tensor operations on the edges' device."""
    adj = coalesce(edge_index, num_nodes=num_nodes)
    start = adj if source_mask is None else adj[:, source_mask[adj[0]]]
    if num_hops == 1 or start.size(1) == 0:
        return start
    out_degree = scatter(torch.ones_like(adj[0]), adj[0], 0, num_nodes, reduce="sum")
    row_ptr = cumsum(out_degree)
    reach, frontier = start, start
    for _ in range(num_hops - 1):
        # Extend every pair (i, j) by each edge (j, l) to (i, l).
        fan_out = out_degree[frontier[1]]
        src = torch.repeat_interleave(frontier[0], fan_out)
        pos = torch.repeat_interleave(row_ptr[frontier[1]], fan_out) + _segment_arange(fan_out)
        frontier = coalesce(torch.stack([src, adj[1][pos]]), num_nodes=num_nodes)
        reach = coalesce(torch.cat([reach, frontier], dim=1), num_nodes=num_nodes)
    return reach


def full_graph_edges(batch: Tensor, num_graphs: int) -> Tensor:
    r"""Every ordered pair :math:`(i, j)`, self-pairs included, of nodes in the
    same graph, for a **sorted** batch vector; :math:`\sum_g n_g^2` edges.

    Args:
        batch (Tensor): Sorted graph of every node :obj:`[N]`.
        num_graphs (int): Number of graphs.

    Returns:
        Tensor: Edge indices, grouped by source node.
    """
    counts = scatter(torch.ones_like(batch), batch, 0, num_graphs, reduce="sum")
    ptr = cumsum(counts)
    row_len = counts[batch]
    row = torch.repeat_interleave(torch.arange(batch.numel(), device=batch.device), row_len)
    col = ptr[batch[row]] + _segment_arange(row_len)
    return torch.stack([row, col])


def _neighbourhood_candidates(
    edge_index: Tensor, edge_weight: Tensor, perm: Tensor, num_nodes: int, num_hops: int
) -> tuple[Tensor, Tensor]:
    r"""The candidate pairs of :class:`HGPSLPool` with ``sample_neighbor=True`` and
    their prior weights: pairs of kept nodes joined by a walk of at most
    ``num_hops`` edges that starts at a kept node, relabelled to positions in
    ``perm``, then a self-pair for every kept node; the prior of a pair is the
    summed weight of its input edges (zero for pairs without one).

    Pairs are ordered as the step-by-step construction orders them (coalesced
    in the input labels, then the self-pairs in ``perm`` order). On the CPU the
    pairs and the place of every input edge among them are found in NumPy and
    SciPy; the prior is then gathered from ``edge_weight`` by tensor operations,
    so that its gradient reaches the weights."""
    if edge_index.device.type != "cpu":
        return _neighbourhood_candidates_torch(edge_index, edge_weight, perm, num_nodes, num_hops)
    kept_np = np.zeros(num_nodes, dtype=bool)
    kept_np[perm.numpy()] = True
    edges = edge_index.numpy().astype(np.int64, copy=False)
    rows, cols = _k_hop_pattern(edges, num_nodes, num_hops, kept_np)
    inside = kept_np[cols]  # every row is a kept node already
    rows, cols = rows[inside], cols[inside]
    position = np.full(num_nodes, -1, dtype=np.int64)
    num_kept = perm.numel()
    position[perm.numpy()] = np.arange(num_kept)
    loop = rows == cols
    num_pairs = int(loop.size - loop.sum())
    candidates = np.empty((2, num_pairs + num_kept), dtype=np.int64)
    candidates[0, :num_pairs] = position[rows[~loop]]
    candidates[1, :num_pairs] = position[cols[~loop]]
    candidates[:, num_pairs:] = np.arange(num_kept)
    # Every input edge between kept nodes is a one-edge walk from a kept node, hence one of
    # the pairs: its slot is found by binary search on the pairs' (sorted) row-major keys.
    src, dst = edges
    between = np.flatnonzero(kept_np[src] & kept_np[dst])
    src, dst = src[between], dst[between]
    found = np.searchsorted(rows * num_nodes + cols, src * num_nodes + dst)
    loops_before = np.cumsum(loop) - loop
    slot = np.where(src == dst, num_pairs + position[src], found - loops_before[found])
    prior = edge_weight.new_zeros(num_pairs + num_kept).index_add(
        0, torch.from_numpy(slot), edge_weight.index_select(0, torch.from_numpy(between))
    )
    return torch.from_numpy(candidates), prior


def _neighbourhood_candidates_torch(
    edge_index: Tensor, edge_weight: Tensor, perm: Tensor, num_nodes: int, num_hops: int
) -> tuple[Tensor, Tensor]:
    r""":func:`_neighbourhood_candidates` with tensor operations on the edges' device."""
    kept = torch.zeros(num_nodes, dtype=torch.bool, device=edge_index.device)
    kept[perm] = True
    # Walks may pass through dropped nodes but must start at a kept one.
    candidates = _k_hop_edges_torch(edge_index, num_nodes, num_hops, kept)
    pattern_weight = edge_weight.new_zeros(candidates.size(1))
    candidates, prior = coalesce(
        torch.cat([candidates, edge_index], dim=1),
        torch.cat([pattern_weight, edge_weight]),
        num_nodes,
        reduce="sum",
    )
    candidates, prior = filter_edges(candidates, prior, perm, num_nodes)
    candidates, prior = add_remaining_self_loops(
        candidates, prior, fill_value=0.0, num_nodes=perm.numel()
    )
    assert prior is not None
    return candidates, prior


class HGPSLPool(nn.Module):
    r"""The pooling layer of `"Hierarchical Graph Pooling with Structure
    Learning" <https://arxiv.org/abs/1911.05954>`_ (Zhang et al., AAAI 2020).

    **Selection.** Every node gets the information score of
    :func:`node_information_score`; each graph keeps its
    :math:`\lceil r \cdot n_g \rceil` highest-scoring nodes (at least one).

    **Structure learning.** Among candidate pairs of kept nodes, edge scores

    .. math::
        e_{ij} = \sigma\big(\mathbf{a}^\top [\mathbf{h}_i \Vert \mathbf{h}_j]\big)
        + \lambda\, A_{ij}

    (:math:`\sigma` a leaky ReLU with slope 0.2, :math:`A_{ij}` the input edge
    weight, zero for non-edges) are normalised over the pairs leaving each node
    with sparsemax (``sparse_attention=True``, :func:`gcl.nn.sparsemax`) or
    softmax; pairs of weight zero are dropped. Candidates are all pairs
    within each pooled graph, or, with ``sample_neighbor=True``, only pairs
    within ``num_hops`` hops in the graph *before* pooling plus self-pairs
    (the paper's fast variant for large graphs; the authors' code composes a
    two-hop step twice, which reaches four hops). Without structure learning
    the induced subgraph is returned.

    Ties in the score are broken by input order, so, as for every top-:math:`k`
    pooling, the result is permutation invariant only up to ties (structurally
    equivalent nodes, e.g. leaves of one hub on an unweighted graph).

    Args:
        in_channels (int): Node feature size.
        ratio (float, optional): Fraction of nodes kept, in :math:`(0, 1]`.
            (default: :obj:`0.5`)
        sample_neighbor (bool, optional): Restrict candidate pairs to the
            :math:`k`-hop neighbourhood. (default: :obj:`True`)
        sparse_attention (bool, optional): Sparsemax instead of softmax.
            (default: :obj:`True`)
        structure_learning (bool, optional): Learn new edges; otherwise keep
            the induced subgraph. (default: :obj:`True`)
        attention_weight (float, optional): :math:`\lambda`, the weight of the
            existing structure in :math:`e_{ij}`. (default: :obj:`1.0`)
        num_hops (int, optional): :math:`k` for ``sample_neighbor``.
            (default: :obj:`3`)
        negative_slope (float, optional): Slope of the leaky ReLU.
            (default: :obj:`0.2`)
        score_normalization (str, optional): ``"rw"`` (paper) or ``"sym"``
            (reference code) in :func:`node_information_score`.
            (default: :obj:`"rw"`)

    Shapes:
        - **input:** node features :math:`(N, F)`, edge indices
          :math:`(2, E)`, edge weights :math:`(E)` (optional), batch
          :math:`(N)` (optional)
        - **output:** :class:`PoolOutput` with :math:`N' = \sum_g \lceil r n_g \rceil`
          nodes

    Example:
        >>> import torch
        >>> pool = HGPSLPool(4, ratio=0.5)
        >>> x = torch.randn(5, 4)
        >>> edge_index = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])
        >>> out = pool(x, edge_index, batch=torch.tensor([0, 0, 0, 1, 1]), num_graphs=2)
        >>> out.batch.tolist()
        [0, 0, 1]
    """

    def __init__(
        self,
        in_channels: int,
        ratio: float = 0.5,
        sample_neighbor: bool = True,
        sparse_attention: bool = True,
        structure_learning: bool = True,
        attention_weight: float = 1.0,
        num_hops: int = 3,
        negative_slope: float = 0.2,
        score_normalization: str = "rw",
    ) -> None:
        super().__init__()
        check_positive("in_channels", in_channels)
        check_positive("num_hops", num_hops)
        sample_neighbor = check_switch("sample_neighbor", sample_neighbor)
        sparse_attention = check_switch("sparse_attention", sparse_attention)
        structure_learning = check_switch("structure_learning", structure_learning)
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"ratio must be in (0, 1] (got {ratio})")
        if score_normalization not in SCORE_NORMALIZATIONS:
            raise ValueError(
                f"score_normalization must be one of {SCORE_NORMALIZATIONS} "
                f"(got {score_normalization!r})"
            )
        self.in_channels = in_channels
        self.ratio = ratio
        self.sample_neighbor = sample_neighbor
        self.sparse_attention = sparse_attention
        self.structure_learning = structure_learning
        self.attention_weight = attention_weight
        self.num_hops = num_hops
        self.negative_slope = negative_slope
        self.score_normalization = score_normalization
        # Without structure learning the attention vector would never receive a
        # gradient (and would trip DDP's unused-parameter check), so it is absent.
        self.att: nn.Parameter | None = None
        if structure_learning:
            self.att = nn.Parameter(torch.empty(1, 2 * in_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Re-initialise the attention vector."""
        if self.att is not None:
            nn.init.xavier_uniform_(self.att)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        batch: Tensor | None = None,
        num_graphs: int | None = None,
    ) -> PoolOutput:
        r"""Pool a batch of graphs.

        Args:
            x (Tensor): Node features.
            edge_index (Tensor): Edge indices ``[2, E]`` (not a sparse
                adjacency: the pooling selects and relabels edges).
            edge_weight (Tensor, optional): Edge weights. (default: :obj:`None`)
            batch (Tensor, optional): Graph of every node. (default: :obj:`None`)
            num_graphs (int, optional): Number of graphs; ``batch.max() + 1``
                (a device sync) when omitted. (default: :obj:`None`)
        """
        require_index_pairs("HGPSLPool", edge_index)
        num_nodes = x.size(0)
        batch, num_graphs = resolve_batch(x, batch, num_graphs)
        with torch.no_grad():  # the score only ranks the nodes: no gradient flows through it
            score = node_information_score(x, edge_index, edge_weight, self.score_normalization)
        perm = topk_per_graph(score, self.ratio, batch, num_graphs)
        x_pool, batch_pool = x[perm], batch[perm]
        if self.att is None:
            induced, induced_weight = filter_edges(edge_index, edge_weight, perm, num_nodes)
            return PoolOutput(x_pool, induced, induced_weight, batch_pool, perm)

        if edge_weight is None:
            edge_weight = torch.ones(edge_index.size(1), dtype=x.dtype, device=x.device)
        if self.sample_neighbor:
            candidates, prior = _neighbourhood_candidates(
                edge_index, edge_weight, perm, num_nodes, self.num_hops
            )
        else:
            induced, induced_weight = filter_edges(edge_index, edge_weight, perm, num_nodes)
            assert induced_weight is not None
            pairs = full_graph_edges(batch_pool, num_graphs)
            candidates, prior = coalesce(
                torch.cat([pairs, induced], dim=1),
                torch.cat([x.new_zeros(pairs.size(1)), induced_weight]),
                perm.numel(),
                reduce="sum",
            )
        assert prior is not None
        src, dst = candidates
        channels = x_pool.size(-1)
        src_term = x_pool @ self.att[0, :channels]
        dst_term = x_pool @ self.att[0, channels:]
        logits = F.leaky_relu(src_term[src] + dst_term[dst], self.negative_slope)
        logits = logits + self.attention_weight * prior
        if self.sparse_attention:
            weight = sparsemax(logits, src, perm.numel())
        else:
            weight = softmax(logits, src, num_nodes=perm.numel())
        keep = weight > 0
        return PoolOutput(x_pool, candidates[:, keep], weight[keep], batch_pool, perm)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, ratio={self.ratio}, "
            f"sample_neighbor={self.sample_neighbor}, "
            f"sparse_attention={self.sparse_attention}, "
            f"structure_learning={self.structure_learning}, "
            f"attention_weight={self.attention_weight})"
        )
