r"""Node and edge centralities computed per graph on a whole batch at once.

The power iterations of :func:`pagerank` and :func:`eigenvector_centrality`
run on the block-diagonal adjacency of the batch with per-graph teleport,
per-graph normalisation and per-graph stopping, so every graph gets exactly the
values :mod:`networkx` computes for it alone, without a loop over graphs.
CPU tensors iterate with SciPy sparse products and NumPy; other devices with
tensor operations.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from gcl.augment._utils import (
    check_batch,
    check_choice,
    check_edge_index,
    check_probability,
    edges_by_source,
    graph_sizes,
    is_integer,
    is_sorted,
    mask_indices,
    node_graph,
)

__all__ = [
    "CENTRALITY_KEYS",
    "degree_centrality",
    "edge_centrality",
    "eigenvector_centrality",
    "node_centrality",
    "pagerank",
    "truncated_pagerank",
]

#: Attribute under which :class:`~gcl.augment.AddCentrality` stores each kind
#: of node centrality, and where the adaptive augmentations look for it.
CENTRALITY_KEYS: dict[str, str] = {
    "degree": "degree_centrality",
    "pagerank": "pagerank",
    "eigenvector": "eigenvector_centrality",
    "pagerank-gca": "truncated_pagerank",
}

CentralityKind = Literal["degree", "pagerank", "eigenvector", "pagerank-gca"]


def _check_inputs(
    edge_index: Tensor, num_nodes: int, batch: Tensor | None, num_graphs: int | None
) -> Tensor:
    if not is_integer(num_nodes) or num_nodes < 0:
        raise ValueError(f"num_nodes must be a non-negative integer (got {num_nodes!r})")
    num_nodes = int(num_nodes)
    edge_index = check_edge_index(edge_index, num_nodes)
    check_batch(batch, num_nodes, num_graphs)
    return edge_index


def _check_iteration(tol: float, max_iter: int) -> None:
    if not tol > 0:
        raise ValueError(f"tol must be > 0 (got {tol})")
    if not is_integer(max_iter) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer (got {max_iter!r})")


def _power_setup(
    edge_index: Tensor,
    num_nodes: int,
    batch: Tensor | None,
    num_graphs: int | None,
    tol: float,
    max_iter: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""Checked inputs of a batched power iteration: ``edge_index``, the graph
    sizes, every node's graph and every node's :math:`1 / n_g` (float64), the
    uniform start vector."""
    _check_iteration(tol, max_iter)
    edge_index = _check_inputs(edge_index, num_nodes, batch, num_graphs)
    device = edge_index.device
    sizes = graph_sizes(batch, num_nodes, num_graphs, device)
    graph = node_graph(batch, num_nodes, device)
    inv_size = (1.0 / sizes.to(torch.float64).clamp_min(1))[graph]
    return edge_index, sizes, graph, inv_size


def degree_centrality(
    edge_index: Tensor,
    num_nodes: int,
    batch: Tensor | None = None,
    *,
    normalized: bool = True,
    num_graphs: int | None = None,
    self_loop_weight: int = 2,
) -> Tensor:
    r"""Degree centrality of every node within its own graph, as
    :func:`networkx.degree_centrality`:

    .. math::
        c(v) = \frac{\deg(v)}{n_{g(v)} - 1},

    where :math:`\deg(v)` counts the edges stored with target :math:`v` (for an
    undirected graph stored in both directions, its degree) and a self loop
    counts twice, as in networkx (``self_loop_weight``). Graphs with a single
    node get :math:`1`.

    Args:
        edge_index (Tensor): integer edge indices ``[2, E]``.
        num_nodes (int): number of nodes :math:`N` of the batch.
        batch (Tensor, optional): graph index of every node ``[N]``.
        normalized (bool): divide by :math:`n_g - 1` (default: :obj:`True`);
            otherwise the raw degree is returned.
        num_graphs (int, optional): number of graphs.
        self_loop_weight (int): how many times a stored self loop counts:
            ``2`` (default, networkx's) or ``1`` (GCA's code, whose degree
            counts the stored edges ``(u, v)`` by ``v``).

    Shapes:
        - **output:** :math:`[N]` in the default floating dtype.

    Example:
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> degree_centrality(edge_index, 3)
        tensor([0.5000, 1.0000, 0.5000])
    """
    if self_loop_weight not in (1, 2) or isinstance(self_loop_weight, bool):
        raise ValueError(f"self_loop_weight must be 1 or 2 (got {self_loop_weight!r})")
    edge_index = _check_inputs(edge_index, num_nodes, batch, num_graphs)
    row, col = edge_index[0], edge_index[1]
    degree = torch.bincount(col, minlength=num_nodes)
    if self_loop_weight == 2:
        degree = degree + torch.bincount(col[row == col], minlength=num_nodes)
    dtype = torch.get_default_dtype()
    degree_f = degree.to(dtype)
    if not normalized:
        return degree_f
    sizes = graph_sizes(batch, num_nodes, num_graphs, edge_index.device)
    others = (sizes - 1)[node_graph(batch, num_nodes, edge_index.device)].to(dtype)
    return torch.where(others > 0, degree_f / others.clamp_min(1), torch.ones_like(degree_f))


def pagerank(
    edge_index: Tensor,
    num_nodes: int,
    batch: Tensor | None = None,
    *,
    damping: float = 0.85,
    tol: float = 1e-6,
    max_iter: int = 100,
    num_graphs: int | None = None,
) -> Tensor:
    r"""PageRank (`Page et al., 1999 <http://ilpubs.stanford.edu:8090/422/>`_)
    of every node within its own graph, computed for all graphs of the batch
    at once with the power iteration of :func:`networkx.pagerank`:

    .. math::
        \mathbf{x}_g^{(t+1)} = \alpha \Bigl(\mathbf{P}_g^\top \mathbf{x}_g^{(t)}
        + \frac{\mathbf{1}}{n_g} \sum_{u \in D_g} x^{(t)}_u\Bigr)
        + \frac{1 - \alpha}{n_g} \mathbf{1},
        \qquad \mathbf{x}_g^{(0)} = \frac{\mathbf{1}}{n_g},

    with :math:`\mathbf{P}_g` the row-normalised adjacency of graph :math:`g`,
    :math:`D_g` its dangling nodes (no out-edges), whose mass is spread
    uniformly over the graph like the teleport. Each graph stops at the first
    iteration with :math:`\lVert \mathbf{x}_g^{(t+1)} - \mathbf{x}_g^{(t)}
    \rVert_1 < n_g \cdot \text{tol}`, exactly like networkx; graphs that do not
    converge within ``max_iter`` iterations return their last iterate (networkx
    raises instead). Parallel edges count with their multiplicity (networkx's
    ``MultiDiGraph`` convention).

    Args:
        edge_index (Tensor): integer edge indices ``[2, E]`` (directed edges
            ``source -> target``; undirected graphs store both directions).
        num_nodes (int): number of nodes :math:`N` of the batch.
        batch (Tensor, optional): graph index of every node ``[N]``.
        damping (float): :math:`\alpha` (default: :obj:`0.85`).
        tol (float): per-node tolerance (default: :obj:`1e-6`).
        max_iter (int): iteration limit (default: :obj:`100`).
        num_graphs (int, optional): number of graphs.

    Shapes:
        - **output:** :math:`[N]`, summing to 1 over every graph; computed in
          float64 and returned in the default floating dtype.

    Example:
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> pagerank(edge_index, 3)
        tensor([0.2568, 0.4865, 0.2568])
    """
    check_probability("damping", damping)
    edge_index, sizes, graph, inv_size = _power_setup(edge_index, num_nodes, batch, num_graphs, tol, max_iter)
    out_dtype = torch.get_default_dtype()
    if num_nodes == 0:
        return torch.empty(0, dtype=out_dtype, device=edge_index.device)
    dtype = torch.float64
    sizes_f = sizes.to(dtype)

    out_degree = torch.bincount(edge_index[0], minlength=num_nodes).to(dtype)
    dangling = out_degree == 0
    # The damping is folded into the source weights and the dangling share.
    source_weight = torch.where(
        dangling, torch.zeros_like(out_degree), damping / out_degree.clamp_min(1)
    )
    teleport = (1.0 - damping) * inv_size
    share = damping / sizes_f.clamp_min(1)
    if _use_scipy(edge_index):
        x = _power_iteration_scipy(
            edge_index, graph, sizes, inv_size, source_weight=source_weight,
            dangling=dangling, share=share, base=teleport, tol=tol, max_iter=max_iter,
            normalize=False,
        )
        return x.to(out_dtype)
    ops = _BatchOperators(edge_index, batch, sizes, graph, source_weight)
    if bool(dangling.any()):
        # Dangling nodes spread their mass uniformly over their own graph.
        ops.add_dangling(mask_indices(dangling), share)
    x = _power_iteration(ops, teleport, inv_size, sizes, tol, max_iter, normalize=False)
    return x.to(out_dtype)


def truncated_pagerank(
    edge_index: Tensor,
    num_nodes: int,
    batch: Tensor | None = None,
    *,
    damping: float = 0.85,
    iterations: int = 10,
    num_graphs: int | None = None,
) -> Tensor:
    r"""The PageRank scores of `GCA <https://arxiv.org/abs/2010.14945>`_'s code
    (its ``compute_pr``, centrality ``'pagerank-gca'``): a fixed number of
    damped propagation steps from all-ones scores,

    .. math::
        \mathbf{x}^{(t+1)} = (1 - \alpha)\, \mathbf{x}^{(t)}
        + \alpha\, \mathbf{P}^\top \mathbf{x}^{(t)},
        \qquad \mathbf{x}^{(0)} = \mathbf{1},

    with :math:`\mathbf{P}` the row-normalised adjacency. Unlike
    :func:`pagerank` (networkx's) there is no uniform teleport and no
    convergence test, and dangling nodes pass nothing on: a node without
    in-edges keeps :math:`(1 - \alpha)^t`. GCA's edge and feature weights
    depend on these scores only up to a common factor, so this reproduces its
    PageRank variant (GCA-PR); :func:`pagerank` gives other weights. Each step is
    local, so a batch gives every graph its own scores.

    Args:
        edge_index (Tensor): integer edge indices ``[2, E]`` (``source -> target``).
        num_nodes (int): number of nodes :math:`N` of the batch.
        batch (Tensor, optional): graph index of every node ``[N]`` (checked only).
        damping (float): :math:`\alpha` (default: :obj:`0.85`).
        iterations (int): number of steps :math:`t` (default: :obj:`10`, GCA's).
        num_graphs (int, optional): number of graphs.

    Shapes:
        - **output:** :math:`[N]` in the default floating dtype.

    Example:
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> truncated_pagerank(edge_index, 3)
        tensor([0.7571, 1.4859, 0.7571])
    """
    edge_index = _check_inputs(edge_index, num_nodes, batch, num_graphs)
    damping = check_probability("damping", damping)
    if not is_integer(iterations) or iterations < 0:
        raise ValueError(f"iterations must be a non-negative integer (got {iterations!r})")
    iterations = int(iterations)
    source, target = edge_index[0], edge_index[1]
    dtype = torch.float64
    out_degree = torch.bincount(source, minlength=num_nodes).to(dtype)
    weight = out_degree.index_select(0, source).reciprocal()
    x = torch.ones(num_nodes, dtype=dtype, device=edge_index.device)
    for _ in range(iterations):
        spread = torch.zeros_like(x).index_add_(0, target, x.index_select(0, source) * weight)
        x = (1.0 - damping) * x + damping * spread
    return x.to(torch.get_default_dtype())


def eigenvector_centrality(
    edge_index: Tensor,
    num_nodes: int,
    batch: Tensor | None = None,
    *,
    tol: float = 1e-6,
    max_iter: int = 100,
    num_graphs: int | None = None,
) -> Tensor:
    r"""Eigenvector centrality (`Bonacich, 1972
    <https://doi.org/10.2307/270732>`_) of every node within its own graph,
    with the shifted power iteration of :func:`networkx.eigenvector_centrality`
    run for all graphs of the batch at once:

    .. math::
        \mathbf{y}_g = (\mathbf{A}_g + \mathbf{I})^\top \mathbf{x}_g^{(t)},
        \qquad
        \mathbf{x}_g^{(t+1)} = \frac{\mathbf{y}_g}{\lVert \mathbf{y}_g \rVert_2},
        \qquad \mathbf{x}_g^{(0)} = \frac{\mathbf{1}}{n_g}.

    The vector is normalised per graph (unit Euclidean norm), and each graph
    stops at the first iteration with :math:`\lVert \mathbf{x}_g^{(t+1)} -
    \mathbf{x}_g^{(t)} \rVert_1 < n_g \cdot \text{tol}`, as in networkx.
    Graphs that do not converge within ``max_iter`` iterations return their
    last iterate (networkx raises instead). A node's score sums its
    predecessors' scores (left eigenvector), networkx's convention.

    Args:
        edge_index (Tensor): integer edge indices ``[2, E]``.
        num_nodes (int): number of nodes :math:`N` of the batch.
        batch (Tensor, optional): graph index of every node ``[N]``.
        tol (float): per-node tolerance (default: :obj:`1e-6`).
        max_iter (int): iteration limit (default: :obj:`100`).
        num_graphs (int, optional): number of graphs.

    Shapes:
        - **output:** :math:`[N]`, unit norm over every graph; computed in
          float64 and returned in the default floating dtype.

    Example:
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> eigenvector_centrality(edge_index, 3)
        tensor([0.5000, 0.7071, 0.5000])
    """
    edge_index, sizes, graph, x0 = _power_setup(edge_index, num_nodes, batch, num_graphs, tol, max_iter)
    out_dtype = torch.get_default_dtype()
    if num_nodes == 0:
        return torch.empty(0, dtype=out_dtype, device=edge_index.device)
    if _use_scipy(edge_index):
        x = _power_iteration_scipy(
            edge_index, graph, sizes, x0, source_weight=None, dangling=None, share=None,
            base=None, tol=tol, max_iter=max_iter, normalize=True,
        )
        return x.to(out_dtype)
    ops = _BatchOperators(edge_index, batch, sizes, graph, None)
    # (A + I)^T x: the shifted matrix of networkx, i.e. base = x itself.
    x = _power_iteration(ops, None, x0, sizes, tol, max_iter, normalize=True)
    return x.to(out_dtype)


class _BatchOperators:
    r"""The linear maps of a batched power iteration, as tensor operations (the
    path of non-CPU devices; CPU tensors run :func:`_power_iteration_scipy`).

    - :meth:`propagate`: :math:`y = b + M x + K x` with
      :math:`(M x)_v = \sum_{(u, v)} w_u x_u` and the optional dangling term
      :math:`(K x)_v = s_{g(v)} \sum_{d \in D_{g(v)}} x_d`;
    - :meth:`graph_sum` (:math:`[N] \to [G]`) and :meth:`expand`
      (:math:`[G] \to [N]`).

    Index gathers and scatters, and segment reductions when the batch is
    ordered, as PyG's are.
    """

    def __init__(
        self,
        edge_index: Tensor,
        batch: Tensor | None,
        sizes: Tensor,
        graph: Tensor,
        source_weight: Tensor | None,
    ) -> None:
        self.num_nodes = graph.numel()
        self.num_graphs = sizes.numel()
        self.sizes = sizes
        self.graph = graph
        self.ordered = batch is None or is_sorted(batch)
        self.source_weight = source_weight
        self.dangling: tuple[Tensor, Tensor, Tensor, Tensor, Tensor] | None = None
        self.edge_index = edge_index

    # ------------------------------------------------------------------ maps
    def add_dangling(self, nodes: Tensor, share: Tensor) -> None:
        r"""Adds :math:`K` for the dangling ``nodes``; graph ``g`` receives
        ``share[g]`` times its dangling mass on every node."""
        dangling_graph = self.graph.index_select(0, nodes)
        has = torch.zeros(self.num_graphs, dtype=torch.bool, device=nodes.device)
        has[dangling_graph] = True
        affected = mask_indices(has.index_select(0, self.graph))
        affected_graph = self.graph.index_select(0, affected)
        self.dangling = (nodes, dangling_graph, share, affected, affected_graph)

    def propagate(self, x: Tensor, base: Tensor, out: Tensor) -> None:
        if self.dangling is not None:
            nodes, dangling_graph, share, affected, affected_graph = self.dangling
            mass = torch.zeros_like(share).index_add_(0, dangling_graph, x.index_select(0, nodes))
            base = base.index_add(0, affected, (mass * share).index_select(0, affected_graph))
        source = x if self.source_weight is None else self.source_weight * x
        out.copy_(base).scatter_add_(
            0, self.edge_index[1], source.index_select(0, self.edge_index[0])
        )

    def graph_sum(self, values: Tensor) -> Tensor:
        if self.ordered:
            return torch.segment_reduce(values, "sum", lengths=self.sizes)
        return values.new_zeros(self.num_graphs).index_add_(0, self.graph, values)

    def graph_sum_rows(self, values: Tensor) -> Tensor:
        r"""Per-graph sums of every row of ``values`` (``[k, N] -> [k, G]``)."""
        if self.ordered:
            lengths = self.sizes.expand(values.size(0), self.num_graphs)
            return torch.segment_reduce(values, "sum", lengths=lengths, axis=1)
        out = values.new_zeros((values.size(0), self.num_graphs))
        return out.index_add_(1, self.graph, values)

    def expand_index(self, values: Tensor) -> Tensor:
        r"""Per-graph integers broadcast to the nodes."""
        if self.ordered:
            return torch.repeat_interleave(values, self.sizes, output_size=self.num_nodes)
        return values.index_select(0, self.graph)

    def expand(self, values: Tensor) -> Tensor:
        if self.ordered:
            return torch.repeat_interleave(values, self.sizes, output_size=self.num_nodes)
        return values.index_select(0, self.graph)


def _power_iteration(
    ops: _BatchOperators,
    base: Tensor | None,
    x: Tensor,
    sizes: Tensor,
    tol: float,
    max_iter: int,
    normalize: bool,
) -> Tensor:
    r"""Runs :math:`x \leftarrow b + M x` (:math:`b = x` when ``base`` is
    :obj:`None`) with networkx's per-graph stopping rule.

    Every graph keeps the first iterate :math:`x^{(t)}` with
    :math:`\lVert x^{(t)}_g - x^{(t-1)}_g \rVert_1 < n_g \cdot \text{tol}`,
    after per-graph L2 normalisation when ``normalize``.
    """
    threshold = sizes.to(x.dtype) * tol
    done = sizes == 0
    # Finished graphs get a threshold no error can beat.
    open_threshold = torch.where(done, torch.zeros_like(threshold), threshold)
    num_nodes = x.numel()
    if (max_iter + 1) * num_nodes <= _HISTORY_LIMIT:
        # Keep every iterate; each graph picks its own at the end (one gather)
        # instead of a node-sized update whenever some graph converges.
        history = torch.empty((max_iter + 1, num_nodes), dtype=x.dtype, device=x.device)
        history[0] = x
        stop = torch.full_like(sizes, max_iter)
        step = 0
        while step < max_iter:
            # A few steps, then the stopping test for all of them at once.
            end = min(step + _CHECK_EVERY, max_iter)
            for current in range(step + 1, end + 1):
                new, previous = history[current], history[current - 1]
                ops.propagate(previous, previous if base is None else base, new)
                if normalize:
                    new *= ops.expand(torch.rsqrt(ops.graph_sum(new * new)))
            errors = ops.graph_sum_rows((history[step + 1 : end + 1] - history[step:end]).abs_())
            converged = errors < open_threshold  # [steps, G]
            newly = converged.any(0)
            if bool(newly.any()):
                first = step + 1 + converged.to(torch.uint8).argmax(0)
                stop = torch.where(newly, first, stop)
                done |= newly
                open_threshold = torch.where(done, torch.zeros_like(threshold), threshold)
            step = end
            if bool(done.all()):
                break
        return history.gather(0, ops.expand_index(stop).unsqueeze(0)).squeeze(0)
    result = x.clone()
    new = torch.empty_like(x)
    for _ in range(max_iter):
        ops.propagate(x, x if base is None else base, new)
        if normalize:
            new *= ops.expand(torch.rsqrt(ops.graph_sum(new * new)))
        converged = ops.graph_sum((new - x).abs_()) < open_threshold
        if bool(converged.any()):
            result = torch.where(ops.expand(converged.to(x.dtype)) > 0, new, result)
            done |= converged
            if bool(done.all()):
                return result
            open_threshold = torch.where(done, torch.zeros_like(threshold), threshold)
        x, new = new, x
    # Graphs that did not converge return their last iterate.
    return torch.where(ops.expand(done.to(x.dtype)) > 0, result, x)


#: Largest number of stored iterates (max_iter + 1 times the node count) for
#: which :func:`_power_iteration` keeps the whole history.
_HISTORY_LIMIT = 2**23
#: Steps between two stopping tests when the history is kept.
_CHECK_EVERY = 6


#: Run the power iterations of CPU tensors with SciPy's sparse products and
#: NumPy (tests switch it off to exercise the tensor path that other devices use).
_SCIPY_ON_CPU = True


def _use_scipy(edge_index: Tensor) -> bool:
    return _SCIPY_ON_CPU and edge_index.device.type == "cpu"


def _column_product(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, n: int
) -> Callable[[np.ndarray, np.ndarray], None]:
    r"""``out += M @ x`` for the :math:`n \times n` matrix given column by column
    (CSC arrays: column :math:`u` holds the entries of source node :math:`u`), with
    SciPy's compiled kernel when it is reachable (the public ``@`` adds a dispatch
    that costs as much as the product on graphs of this size)."""
    try:
        from scipy.sparse import _sparsetools

        kernel = _sparsetools.csc_matvec
    except (ImportError, AttributeError):  # pragma: no cover - other SciPy layouts
        from scipy.sparse import csc_matrix

        matrix = csc_matrix((data, indices, indptr), shape=(n, n))

        def fallback(x: np.ndarray, out: np.ndarray) -> None:
            out += matrix @ x

        return fallback

    def compiled(x: np.ndarray, out: np.ndarray) -> None:
        kernel(n, n, indptr, indices, data, x, out)

    return compiled


def _with_dangling_columns(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    row: np.ndarray,
    dangling_nodes: np.ndarray,
    dangling_graph: np.ndarray,
    share: np.ndarray,
    counts: np.ndarray,
    members: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The column arrays of :math:`M + K`: column :math:`d` of a dangling node
    (no edges of its own) gets ``share[g]`` on every node of its graph
    :math:`g`, whose nodes are ``members`` (nodes grouped by graph)."""
    n = indptr.size - 1
    entries = counts[dangling_graph]
    total = int(entries.sum())
    first = np.cumsum(counts) - counts
    offset = np.arange(total) - np.repeat(np.cumsum(entries) - entries, entries)
    extra = np.zeros(n, dtype=np.int64)
    extra[dangling_nodes] = entries
    joint = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.diff(indptr) + extra, out=joint[1:])
    new_indices = np.empty(row.size + total, dtype=np.int64)
    new_data = np.empty(row.size + total)
    edge_slot = np.arange(row.size) + (joint[:-1] - indptr[:-1])[row]
    new_indices[edge_slot], new_data[edge_slot] = indices, data
    slot = np.repeat(joint[dangling_nodes], entries) + offset
    new_indices[slot] = members[np.repeat(first[dangling_graph], entries) + offset]
    new_data[slot] = np.repeat(share[dangling_graph], entries)
    return joint, new_indices, new_data


def _power_iteration_scipy(
    edge_index: Tensor,
    graph: Tensor,
    sizes: Tensor,
    x0: Tensor,
    *,
    source_weight: Tensor | None,
    dangling: Tensor | None,
    share: Tensor | None,
    base: Tensor | None,
    tol: float,
    max_iter: int,
    normalize: bool,
) -> Tensor:
    r""":func:`_power_iteration` for CPU tensors, with one SciPy sparse product and a
    few NumPy operations per step (a fraction of the per-call cost of tensor
    operations on graphs of this size).

    Runs :math:`x \leftarrow b + M x + K x` with :math:`(M x)_v = \sum_{(u, v)}
    w_u x_u` (:math:`w = 1` without ``source_weight``; :math:`b = x` without
    ``base``), the dangling term :math:`(K x)_v = s_{g(v)} \sum_{d \in D_{g(v)}}
    x_d` when ``dangling`` is given, per-graph L2 normalisation when
    ``normalize``, and networkx's per-graph stopping rule. :math:`K` is folded
    into the sparse matrix when it has at most :math:`\max(E, N)` entries (else it
    is applied with a per-graph sum). Iterates are kept for
    :data:`_CHECK_EVERY` steps at a time, so memory stays :math:`O(N)`.
    """
    from scipy.sparse import csr_matrix

    n, num_graphs = x0.numel(), sizes.numel()
    # M column by column (column u: the edges leaving u), read off the edges
    # grouped by source; parallel edges add up in the product.
    row, indices, indptr = edges_by_source(edge_index, n)
    data = np.ones(row.size) if source_weight is None else source_weight.numpy()[row]
    graph_np, counts = graph.numpy(), sizes.numpy()
    ordered = is_sorted(graph)
    dangling_nodes = np.empty(0, dtype=np.int64)
    if dangling is not None and share is not None:
        dangling_nodes = np.flatnonzero(dangling.numpy())
        dangling_graph = graph_np[dangling_nodes]
        share_np = share.numpy()
        if int(counts[dangling_graph].sum()) <= max(row.size, n):
            # Few enough entries: K joins M, so a step is one product.
            members = np.arange(n) if ordered else np.argsort(graph_np, kind="stable")
            indptr, indices, data = _with_dangling_columns(
                indptr, indices, data, row, dangling_nodes, dangling_graph, share_np, counts, members
            )
            dangling_nodes = dangling_nodes[:0]
    base_np = None if base is None else base.numpy()
    if ordered:
        starts = (np.cumsum(counts) - counts)[counts > 0]

        def expand(values: np.ndarray) -> np.ndarray:
            return np.repeat(values, counts)

        def graph_sums(rows: np.ndarray) -> np.ndarray:
            out = np.zeros((rows.shape[0], num_graphs))
            if starts.size:
                out[:, counts > 0] = np.add.reduceat(rows, starts, axis=1)
            return out
    else:
        # Per-graph sums as one sparse product: [G, N] with a 1 at (g(v), v).
        summing = csr_matrix((np.ones(n), (graph_np, np.arange(n))), shape=(num_graphs, n))

        def expand(values: np.ndarray) -> np.ndarray:
            return values[graph_np]

        def graph_sums(rows: np.ndarray) -> np.ndarray:
            return (summing @ rows.T).T

    product = _column_product(indptr, indices, data, n)
    threshold = sizes.numpy() * tol
    done = sizes.numpy() == 0
    open_threshold = np.where(done, 0.0, threshold)
    window = np.empty((_CHECK_EVERY + 1, n))
    window[0] = x0.numpy()
    result = np.empty(n)
    step = 0
    last = 0
    while step < max_iter:
        last = min(_CHECK_EVERY, max_iter - step)
        for current in range(1, last + 1):
            previous = window[current - 1]
            new = window[current]
            new[:] = previous if base_np is None else base_np
            product(previous, new)
            if dangling_nodes.size:
                mass = np.bincount(dangling_graph, weights=previous[dangling_nodes], minlength=num_graphs)
                new += expand(mass * share_np)
            if normalize:
                new /= expand(np.sqrt(np.bincount(graph_np, weights=new * new, minlength=num_graphs)))
        # Per-graph L1 change of every step of the window: [steps, G].
        errors = graph_sums(np.abs(window[1 : last + 1] - window[:last]))
        converged: np.ndarray = errors < open_threshold
        newly = np.asarray(converged.any(axis=0))
        if newly.any():
            first = converged.argmax(axis=0) + 1  # window row of the first converged step
            nodes = np.flatnonzero(newly[graph_np])
            result[nodes] = window[first[graph_np[nodes]], nodes]
            done |= newly
            open_threshold = np.where(done, 0.0, threshold)
        step += last
        if done.all():
            break
        window[0] = window[last]
    # Graphs that did not converge return their last iterate.
    open_nodes = np.flatnonzero(~done[graph_np])
    result[open_nodes] = window[last, open_nodes]
    return torch.from_numpy(result)


def node_centrality(
    kind: CentralityKind,
    edge_index: Tensor,
    num_nodes: int,
    batch: Tensor | None = None,
    *,
    num_graphs: int | None = None,
    **kwargs: float | int | bool,
) -> Tensor:
    r"""Dispatches to :func:`degree_centrality`, :func:`pagerank`,
    :func:`eigenvector_centrality` or :func:`truncated_pagerank` by name
    (``'degree'``, ``'pagerank'``, ``'eigenvector'``, ``'pagerank-gca'``);
    ``kwargs`` go to that function."""
    check_centrality_options(kind, kwargs)
    if kind == "degree":
        return degree_centrality(edge_index, num_nodes, batch, num_graphs=num_graphs, **kwargs)  # type: ignore[arg-type]
    if kind == "pagerank":
        return pagerank(edge_index, num_nodes, batch, num_graphs=num_graphs, **kwargs)  # type: ignore[arg-type]
    if kind == "pagerank-gca":
        return truncated_pagerank(edge_index, num_nodes, batch, num_graphs=num_graphs, **kwargs)  # type: ignore[arg-type]
    return eigenvector_centrality(edge_index, num_nodes, batch, num_graphs=num_graphs, **kwargs)  # type: ignore[arg-type]


def check_centrality_options(kind: str, options: Mapping[str, object]) -> None:
    r"""Raises :class:`ValueError` unless ``kind`` names a centrality and every key of
    ``options`` is a keyword option of its function (as :func:`node_centrality` passes them)."""
    check_choice("kind", kind, tuple(CENTRALITY_KEYS))
    if not options:
        return
    name, allowed = _centrality_options(kind)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"the {kind!r} centrality ({name}) has no option {', '.join(unknown)}; "
                         f"its options: {', '.join(sorted(allowed))}")


@functools.cache
def _centrality_options(kind: str) -> tuple[str, frozenset[str]]:
    r"""The name of ``kind``'s function and its keyword options (read once: the adaptive views
    check them on every call)."""
    functions: dict[str, Callable[..., Tensor]] = {
        "degree": degree_centrality, "pagerank": pagerank, "pagerank-gca": truncated_pagerank,
        "eigenvector": eigenvector_centrality}
    function = functions[kind]
    return function.__name__, frozenset(
        name for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name != "num_graphs")


def edge_centrality(
    edge_index: Tensor,
    node_centrality: Tensor,
    *,
    aggr: Literal["target", "source", "mean"] = "target",
) -> Tensor:
    r"""Edge centrality from node centrality, as used by `GCA
    <https://arxiv.org/abs/2010.14945>`_:

    .. math::
        w_{uv} = \varphi(v)\;(\texttt{'target'}),\qquad
        \varphi(u)\;(\texttt{'source'}),\qquad
        \sqrt{\varphi(u)\,\varphi(v)}\;(\texttt{'mean'}),

    for an edge :math:`u \to v`. GCA's code scores edges by their target node
    (``'sink'`` there); ``'mean'`` is the geometric mean, whose logarithm is
    the mean of the endpoints' log-centralities (GCA's ``'mean'``). It is
    symmetric, so both directions of an undirected edge get the same score.

    Args:
        edge_index (Tensor): integer edge indices ``[2, E]``.
        node_centrality (Tensor): node centrality :math:`\varphi`, ``[N]``.
        aggr (str): ``'target'``, ``'source'`` or ``'mean'`` (default: ``'target'``).

    Shapes:
        - **output:** :math:`[E]`
    """
    check_choice("aggr", aggr, ("target", "source", "mean"))
    edge_index = check_edge_index(edge_index, node_centrality.size(0))
    row, col = edge_index[0], edge_index[1]
    if aggr == "target":
        return node_centrality[col]
    if aggr == "source":
        return node_centrality[row]
    return torch.sqrt(node_centrality[row] * node_centrality[col])
