r"""Node and edge centralities computed per graph on a whole batch at once.

The power iterations of :func:`pagerank` and :func:`eigenvector_centrality`
run on the block-diagonal adjacency of the batch with per-graph teleport,
per-graph normalisation and per-graph stopping, so every graph gets exactly the
values :mod:`networkx` computes for it alone, without a loop over graphs.
CPU tensors iterate with SciPy sparse products and NumPy; other devices with
tensor operations. The exact eigenvector centrality (``method='exact'``, GCA's)
solves each graph's eigenproblem on the host instead.
"""

from __future__ import annotations

import functools
import inspect
import warnings
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
    converge within ``max_iter`` iterations return their last iterate with a
    :class:`RuntimeWarning` (networkx raises instead). Parallel edges count with their multiplicity (networkx's
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
        x, open_graphs = _power_iteration_scipy(
            edge_index, graph, sizes, inv_size, source_weight=source_weight,
            dangling=dangling, share=share, base=teleport, tol=tol, max_iter=max_iter,
            normalize=False,
        )
    else:
        ops = _BatchOperators(edge_index, batch, sizes, graph, source_weight)
        if bool(dangling.any()):
            # Dangling nodes spread their mass uniformly over their own graph.
            ops.add_dangling(mask_indices(dangling), share)
        x, open_graphs = _power_iteration(ops, teleport, inv_size, sizes, tol, max_iter, normalize=False)
    _warn_unconverged("pagerank", open_graphs, sizes.numel(), tol, max_iter)
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
    method: Literal["power", "exact"] = "power",
    tol: float = 1e-6,
    max_iter: int = 100,
    num_graphs: int | None = None,
) -> Tensor:
    r"""Eigenvector centrality (`Bonacich, 1972
    <https://doi.org/10.2307/270732>`_) of every node within its own graph: the
    leading eigenvector of the graph's adjacency,

    .. math::
        \mathbf{A}_g^\top \mathbf{x}_g = \lambda_g\, \mathbf{x}_g,
        \qquad \lambda_g = \max_i \operatorname{Re} \lambda_i(\mathbf{A}_g),
        \qquad \mathbf{x}_g \geq 0,\quad \lVert \mathbf{x}_g \rVert_2 = 1,

    so a node's score sums its predecessors' scores (left eigenvector),
    networkx's convention. Parallel edges count with their multiplicity.

    ``method='power'`` runs the shifted power iteration of
    :func:`networkx.eigenvector_centrality` for all graphs of the batch at once,

    .. math::
        \mathbf{y}_g = (\mathbf{A}_g + \mathbf{I})^\top \mathbf{x}_g^{(t)},
        \qquad
        \mathbf{x}_g^{(t+1)} = \frac{\mathbf{y}_g}{\lVert \mathbf{y}_g \rVert_2},
        \qquad \mathbf{x}_g^{(0)} = \frac{\mathbf{1}}{n_g},

    and each graph stops at the first iteration with :math:`\lVert
    \mathbf{x}_g^{(t+1)} - \mathbf{x}_g^{(t)} \rVert_1 < n_g \cdot \text{tol}`,
    as in networkx. Graphs that do not converge within ``max_iter`` iterations
    return their last iterate with a :class:`RuntimeWarning` (networkx raises
    instead). That happens when the two largest eigenvalues are close, and on
    graphs in several components, whose components without :math:`\lambda_g`
    keep values that only shrink geometrically (:math:`10^{-5}` to :math:`0.2`
    after 100 iterations on some PROTEINS graphs, where the eigenvector has 0).

    ``method='exact'`` solves every graph's eigenproblem instead, as
    :func:`networkx.eigenvector_centrality_numpy` does, on the CPU (other
    devices copy the edges to the host and the result back): graphs with at most
    :data:`DENSE_EIGEN_LIMIT` nodes by a dense eigendecomposition
    (:func:`numpy.linalg.eigh`, stacked over the graphs of equal size;
    :func:`scipy.linalg.eig` for a non-symmetric :math:`\mathbf{A}_g`), larger
    ones by ARPACK's :math:`\lambda_g` (:func:`scipy.sparse.linalg.eigsh`, or
    :func:`~scipy.sparse.linalg.eigs` when non-symmetric) and three steps of
    inverse iteration from the uniform vector with a sparse LU. Nodes outside
    the components that carry :math:`\lambda_g` get 0 up to round-off
    (negative round-off is clamped to 0). Where :math:`\lambda_g` is repeated
    (e.g. two identical components), :math:`\mathbf{x}_g` is the uniform
    vector's component in its eigenspace, the vector the power iteration tends
    to; an edgeless graph gets :math:`\mathbf{1} / \sqrt{n_g}`.

    Args:
        edge_index (Tensor): integer edge indices ``[2, E]``.
        num_nodes (int): number of nodes :math:`N` of the batch.
        batch (Tensor, optional): graph index of every node ``[N]``.
        method (str): ``'power'`` (networkx's iteration) or ``'exact'``
            (the eigendecomposition) (default: ``'power'``).
        tol (float): per-node tolerance of the power iteration (default: :obj:`1e-6`).
        max_iter (int): iteration limit of the power iteration (default: :obj:`100`).
        num_graphs (int, optional): number of graphs.

    Shapes:
        - **output:** :math:`[N]`, unit norm over every graph; computed in
          float64 and returned in the default floating dtype.

    Example:
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> eigenvector_centrality(edge_index, 3)
        tensor([0.5000, 0.7071, 0.5000])
        >>> eigenvector_centrality(edge_index, 3, method="exact")
        tensor([0.5000, 0.7071, 0.5000])
    """
    check_choice("method", method, ("power", "exact"))
    edge_index, sizes, graph, x0 = _power_setup(edge_index, num_nodes, batch, num_graphs, tol, max_iter)
    out_dtype = torch.get_default_dtype()
    if num_nodes == 0:
        return torch.empty(0, dtype=out_dtype, device=edge_index.device)
    if method == "exact":
        from threadpoolctl import threadpool_limits

        # many small dense solves: BLAS threads would only spin (and take cores from other processes)
        with threadpool_limits(1, user_api="blas"):
            x = _exact_eigenvectors(edge_index, graph, sizes)
        return x.to(device=edge_index.device, dtype=out_dtype)
    if _use_scipy(edge_index):
        x, open_graphs = _power_iteration_scipy(
            edge_index, graph, sizes, x0, source_weight=None, dangling=None, share=None,
            base=None, tol=tol, max_iter=max_iter, normalize=True,
        )
    else:
        ops = _BatchOperators(edge_index, batch, sizes, graph, None)
        # (A + I)^T x: the shifted matrix of networkx, i.e. base = x itself.
        x, open_graphs = _power_iteration(ops, None, x0, sizes, tol, max_iter, normalize=True)
    _warn_unconverged("eigenvector_centrality", open_graphs, sizes.numel(), tol, max_iter,
                      "; method='exact' solves the eigenproblem instead")
    return x.to(out_dtype)


def _warn_unconverged(name: str, open_graphs: int, num_graphs: int, tol: float, max_iter: int,
                      hint: str = "") -> None:
    if open_graphs:
        warnings.warn(
            f"{name}: {open_graphs} of {num_graphs} graphs did not converge within "
            f"max_iter={max_iter} iterations (tol={tol}) and get their last iterate{hint}",
            RuntimeWarning,
            stacklevel=3,
        )


#: Graphs with at most this many nodes get their exact eigenvector centrality from a
#: dense eigendecomposition, larger ones from ARPACK (whose cost grows with the edges
#: rather than with the cube of the nodes).
DENSE_EIGEN_LIMIT = 100
#: Eigenvalues within this distance of the largest (relative to it, at least 1) count as
#: equal to it: a repeated eigenvalue comes out of the solvers split by round-off.
_EIGEN_TIE = 1e-9
#: Relative distance of the shift of :func:`_leading_sparse`'s inverse iteration above the
#: eigenvalue.
_INVERSE_SHIFT = 1e-8
#: Most matrix entries of one stacked dense eigendecomposition (memory bound: 32 MiB).
_STACK_ENTRIES = 2**22


def _exact_eigenvectors(edge_index: Tensor, graph: Tensor, sizes: Tensor) -> Tensor:
    r"""The leading left eigenvector of every graph of the batch (float64, on the
    CPU), for :func:`eigenvector_centrality` with ``method='exact'``."""
    source = edge_index[0].cpu().numpy()
    target = edge_index[1].cpu().numpy()
    graph_np = graph.cpu().numpy()
    counts = sizes.cpu().numpy().astype(np.int64)
    n, num_graphs = graph_np.size, counts.size
    starts = np.cumsum(counts) - counts
    # Nodes grouped by graph, and every node's index within its graph.
    ordered = bool((graph_np[1:] >= graph_np[:-1]).all())
    members = np.arange(n) if ordered else np.argsort(graph_np, kind="stable")
    local = np.empty(n, dtype=np.int64)
    local[members] = np.arange(n) - np.repeat(starts, counts)
    # Graphs and edges ordered by (graph size, graph), so that the graphs of one size
    # and their edges are runs.
    by_size = np.argsort(counts, kind="stable")
    size_runs = np.flatnonzero(np.diff(counts[by_size], prepend=-1))
    edge_graph = graph_np[source]
    edge_key = counts[edge_graph] * num_graphs + edge_graph
    edge_order = np.argsort(edge_key, kind="stable")
    edge_key = edge_key[edge_order]
    edge_graph = edge_graph[edge_order]
    edge_source, edge_target = local[source[edge_order]], local[target[edge_order]]
    out = np.empty(n)
    for first, last in zip(size_runs, [*size_runs[1:], num_graphs], strict=True):
        graphs = by_size[first:last]  # graphs of size k, by index
        k = int(counts[graphs[0]])
        if k == 0:
            continue
        nodes = members[starts[graphs][:, None] + np.arange(k)]
        lo, hi = edge_key.searchsorted([k * num_graphs, (k + 1) * num_graphs])
        slot = graphs.searchsorted(edge_graph[lo:hi])  # the edge's graph among `graphs`
        src, dst = edge_source[lo:hi], edge_target[lo:hi]
        if k <= DENSE_EIGEN_LIMIT:
            # one stacked eigendecomposition per chunk of graphs of this size
            chunk = max(1, _STACK_ENTRIES // (k * k))
            for c0 in range(0, graphs.size, chunk):
                c1 = min(c0 + chunk, graphs.size)
                a, b = slot.searchsorted([c0, c1])
                cell = ((slot[a:b] - c0) * k + dst[a:b]) * k + src[a:b]
                stack = np.bincount(cell, minlength=(c1 - c0) * k * k).reshape(c1 - c0, k, k)
                out[nodes[c0:c1]] = _leading_dense(stack.astype(np.float64))
        else:
            bounds = slot.searchsorted(np.arange(graphs.size + 1))
            for i in range(graphs.size):
                a, b = bounds[i], bounds[i + 1]
                out[nodes[i]] = _leading_sparse(src[a:b], dst[a:b], k)
    return torch.from_numpy(out)


def _leading_dense(stack: np.ndarray) -> np.ndarray:
    r"""Unit, nonnegative leading eigenvectors of the matrices ``stack[i]``
    (``[m, k, k]``, row :math:`v` holding the in-edges of :math:`v`): for each, the
    all-ones vector's component in the eigenspace of the eigenvalue of largest
    real part."""
    m, k, _ = stack.shape
    x = np.empty((m, k))
    symmetric = (stack == stack.transpose(0, 2, 1)).all(axis=(1, 2))
    if symmetric.any():
        values, vectors = np.linalg.eigh(stack[symmetric])  # ascending eigenvalues
        top = values[:, -1:]
        tied = values >= top - _EIGEN_TIE * np.maximum(np.abs(top), 1.0)
        # orthogonal projection of 1: sum over the tied eigenvectors v of v (v . 1)
        x[symmetric] = np.einsum("mij,mj->mi", vectors, vectors.sum(axis=1) * tied)
    for i in np.flatnonzero(~symmetric):
        x[i] = _leading_general(stack[i])
    return _unit_nonnegative(x)


def _leading_general(matrix: np.ndarray) -> np.ndarray:
    r"""The component of the all-ones vector in the eigenspace of ``matrix``'s
    eigenvalue of largest real part, along its other eigenvectors (the spectral
    projection :math:`R (L^{H} R)^{-1} L^{H} \mathbf{1}` with the right and left
    eigenvectors :math:`R, L` of the tied eigenvalues)."""
    from scipy.linalg import eig

    values, left, right = eig(matrix, left=True, right=True)
    top = values[np.argmax(values.real)]
    tied = np.abs(values - top) <= _EIGEN_TIE * max(abs(top), 1.0)
    r, l_h = right[:, tied], left[:, tied].conj().T
    coefficients = np.linalg.lstsq(l_h @ r, l_h.sum(axis=1), rcond=None)[0]
    return np.asarray((r @ coefficients).real)


def _leading_sparse(source: np.ndarray, target: np.ndarray, k: int) -> np.ndarray:
    r"""The leading eigenvector of one graph of ``k`` nodes: its eigenvalue
    :math:`\lambda` by ARPACK, then three steps of inverse iteration from the all-ones
    vector with the shift :math:`\lambda (1 + 10^{-8})` (sparse LU), which give
    that vector's component in the eigenspace of :math:`\lambda`, as
    :func:`_leading_dense` does, whichever vector of a repeated eigenvalue's
    eigenspace ARPACK would return. Dense when ARPACK or the factorisation fails."""
    from scipy.sparse import csr_matrix, identity
    from scipy.sparse.linalg import ArpackError, eigs, eigsh, splu

    if source.size == 0:
        return np.full(k, k**-0.5)
    # row v: the in-edges of v (parallel edges add up)
    matrix = csr_matrix((np.ones(source.size), (target, source)), shape=(k, k))
    x = np.ones(k)
    try:
        if (matrix != matrix.T).nnz == 0:
            # a Ritz value of a symmetric matrix is below the eigenvalue by about the squared
            # residual over the gap: tol=1e-10 leaves it within round-off
            values = eigsh(matrix, k=1, which="LA", v0=x, tol=1e-10, return_eigenvectors=False)
        else:
            values = eigs(matrix, k=1, which="LR", v0=x, tol=0, return_eigenvectors=False)
        top = float(values[0].real)
        # just above the eigenvalue: each solve scales its eigenspace by about 1e8 / top
        # and every other eigenvector by at most 1 / gap
        shift = top + _INVERSE_SHIFT * max(abs(top), 1.0)
        solve = splu((matrix - shift * identity(k, format="csr")).tocsc()).solve
    except (ArpackError, RuntimeError):
        return _leading_dense(matrix.toarray()[None])[0]
    for _ in range(3):
        x = solve(x)
        x /= np.linalg.norm(x)
    x = x if x.sum() >= 0 else -x
    return _unit_nonnegative(x[None])[0]


def _unit_nonnegative(x: np.ndarray) -> np.ndarray:
    r"""Rows of ``x`` with round-off below zero set to zero, scaled to unit norm (a row
    without a positive finite norm, which no nonnegative matrix gives, is uniform)."""
    x = np.where(x > 0, x, 0.0)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    valid = np.isfinite(norm) & (norm > 0)
    return np.where(valid, x / np.where(valid, norm, 1.0), x.shape[1] ** -0.5)


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
) -> tuple[Tensor, int]:
    r"""Runs :math:`x \leftarrow b + M x` (:math:`b = x` when ``base`` is
    :obj:`None`) with networkx's per-graph stopping rule.

    Every graph keeps the first iterate :math:`x^{(t)}` with
    :math:`\lVert x^{(t)}_g - x^{(t-1)}_g \rVert_1 < n_g \cdot \text{tol}`,
    after per-graph L2 normalisation when ``normalize``. Returns the vector
    and the number of graphs that did not converge within ``max_iter`` steps.
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
        return history.gather(0, ops.expand_index(stop).unsqueeze(0)).squeeze(0), _open_count(done)
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
                return result, 0
            open_threshold = torch.where(done, torch.zeros_like(threshold), threshold)
        x, new = new, x
    # Graphs that did not converge return their last iterate.
    return torch.where(ops.expand(done.to(x.dtype)) > 0, result, x), _open_count(done)


def _open_count(done: Tensor) -> int:
    return int((~done).sum())


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
    dangling_nodes: np.ndarray,
    dangling_graph: np.ndarray,
    share: np.ndarray,
    counts: np.ndarray,
    members: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The column arrays of :math:`M + K`: column :math:`d` of a dangling node
    (no edges of its own, so an empty column of :math:`M`, ``dangling_nodes``
    ascending) gets ``share[g]`` on every node of its graph :math:`g`, whose nodes
    are ``members`` (nodes grouped by graph)."""
    entries = counts[dangling_graph]
    total = int(entries.sum())
    first = np.cumsum(counts) - counts
    offset = np.arange(total) - np.repeat(np.cumsum(entries) - entries, entries)
    # Every new column goes where its empty column starts (NumPy inserts values of one
    # position in their given order, so adjacent empty columns keep theirs).
    at = np.repeat(indptr[dangling_nodes], entries)
    new_indices = np.insert(indices, at, members[np.repeat(first[dangling_graph], entries) + offset])
    new_data = np.insert(data, at, np.repeat(share[dangling_graph], entries))
    extra = np.zeros(indptr.size, dtype=np.int64)
    extra[dangling_nodes + 1] = entries
    return indptr + np.cumsum(extra), new_indices, new_data


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
) -> tuple[Tensor, int]:
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

    Graphs stop at different steps (on a PROTEINS batch half of them in less than half
    the steps of the slowest): once the graphs still running hold at most
    :data:`_SHRINK_BELOW` of the nodes iterated, the iteration goes on with theirs
    only. Every node's value is summed in the same order either way (the nodes
    keep their order), so the results do not change.
    """
    n = x0.numel()
    # M column by column (column u: the edges leaving u), read off the edges
    # grouped by source; parallel edges add up in the product.
    row, indices, indptr = edges_by_source(edge_index, n)
    data = np.ones(row.size) if source_weight is None else source_weight.numpy()[row]
    graph_np, counts = graph.numpy(), sizes.numpy()
    ordered = is_sorted(graph)
    dangling_nodes = np.empty(0, dtype=np.int64)
    dangling_graph = np.empty(0, dtype=np.int64)
    share_np = np.empty(0)
    if dangling is not None and share is not None:
        dangling_nodes = np.flatnonzero(dangling.numpy())
        dangling_graph = graph_np[dangling_nodes]
        share_np = share.numpy()
        if dangling_nodes.size and int(counts[dangling_graph].sum()) <= max(row.size, n):
            # Few enough entries: K joins M, so a step is one product.
            members = np.arange(n) if ordered else np.argsort(graph_np, kind="stable")
            indptr, indices, data = _with_dangling_columns(
                indptr, indices, data, dangling_nodes, dangling_graph, share_np, counts, members
            )
            dangling_nodes = dangling_nodes[:0]
    graphs = _OpenGraphs(indptr, indices, data, graph_np, counts, dangling_nodes, share_np,
                         None if base is None else base.numpy(), ordered)
    threshold = counts * tol
    done = counts == 0
    open_threshold = np.where(done, 0.0, threshold)
    window = np.empty((_CHECK_EVERY + 1, n))
    window[0] = x0.numpy()
    result = np.empty(n)
    step = 0
    last = 0
    while step < max_iter:
        last = min(_CHECK_EVERY, max_iter - step)
        graphs.iterate(window, last, normalize)
        # Per-graph L1 change of every step of the window: [steps, G].
        errors = graphs.graph_sums(np.abs(window[1 : last + 1] - window[:last]))
        converged: np.ndarray = errors < open_threshold
        newly = np.asarray(converged.any(axis=0))
        if newly.any():
            first = converged.argmax(axis=0) + 1  # window row of the first converged step
            nodes = np.flatnonzero(newly[graphs.graph])
            result[graphs.original(nodes)] = window[first[graphs.graph[nodes]], nodes]
            done |= newly
            open_threshold = np.where(done, 0.0, threshold)
        step += last
        if done.all():
            break
        window[0] = window[last]
        running = ~done
        if int(graphs.counts[running].sum()) <= _SHRINK_BELOW * graphs.graph.size:
            kept = graphs.keep(running)
            current = np.empty((_CHECK_EVERY + 1, kept.size))  # only the current iterate is read on
            current[0] = window[0, kept]
            window = current
            threshold, done = threshold[running], done[running]
            open_threshold = open_threshold[running]
            last = 0  # the current iterate is row 0 now
    # Graphs that did not converge return their last iterate.
    open_nodes = np.flatnonzero(~done[graphs.graph])
    result[graphs.original(open_nodes)] = window[last, open_nodes]
    return torch.from_numpy(result), int((~done).sum())


#: :func:`_power_iteration_scipy` goes on with the graphs still running once they hold
#: at most this fraction of the nodes it iterates.
_SHRINK_BELOW = 0.5


class _OpenGraphs:
    r"""The graphs a SciPy power iteration still runs: their matrix :math:`M` (CSC arrays,
    with the dangling columns folded in or ``dangling_nodes`` kept apart), node-to-graph map
    and node counts, and the base vector; :meth:`keep` drops the finished graphs (nodes and
    graphs keep their order)."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, graph: np.ndarray,
                 counts: np.ndarray, dangling_nodes: np.ndarray, share: np.ndarray,
                 base: np.ndarray | None, ordered: bool) -> None:
        self.indptr, self.indices, self.data = indptr, indices, data
        self.ordered = ordered  # nodes grouped by graph in order (dropping graphs keeps it so)
        self.graph, self.counts = graph, counts
        self.dangling_nodes, self.share, self.base = dangling_nodes, share, base
        self.nodes: np.ndarray | None = None  # the original index of every node (None: all of them)
        self._ready()

    def _ready(self) -> None:
        n, num_graphs, counts = self.graph.size, self.counts.size, self.counts
        self.product = _column_product(self.indptr, self.indices, self.data, n)
        self.dangling_graph = self.graph[self.dangling_nodes]
        if self.ordered:
            self.starts = (np.cumsum(counts) - counts)[counts > 0]
        else:  # per-graph sums as one sparse product: [G, N] with a 1 at (g(v), v)
            from scipy.sparse import csr_matrix

            self.summing = csr_matrix((np.ones(n), (self.graph, np.arange(n))), shape=(num_graphs, n))

    def expand(self, values: np.ndarray) -> np.ndarray:
        return np.repeat(values, self.counts) if self.ordered else values[self.graph]

    def graph_sums(self, rows: np.ndarray) -> np.ndarray:
        if not self.ordered:
            return np.asarray((self.summing @ rows.T).T)
        out = np.zeros((rows.shape[0], self.counts.size))
        if self.starts.size:
            out[:, self.counts > 0] = np.add.reduceat(rows, self.starts, axis=1)
        return out

    def iterate(self, window: np.ndarray, steps: int, normalize: bool) -> None:
        r"""Rows ``1 .. steps`` of ``window``: the steps from row 0."""
        num_graphs = self.counts.size
        for current in range(1, steps + 1):
            previous = window[current - 1]
            new = window[current]
            new[:] = previous if self.base is None else self.base
            self.product(previous, new)
            if self.dangling_nodes.size:
                mass = np.bincount(self.dangling_graph, weights=previous[self.dangling_nodes],
                                   minlength=num_graphs)
                new += self.expand(mass * self.share)
            if normalize:
                new /= self.expand(np.sqrt(np.bincount(self.graph, weights=new * new, minlength=num_graphs)))

    def original(self, nodes: np.ndarray) -> np.ndarray:
        return nodes if self.nodes is None else self.nodes[nodes]

    def keep(self, running: np.ndarray) -> np.ndarray:
        r"""Keeps the graphs where ``running`` holds; returns their nodes' current indices."""
        kept = np.flatnonzero(running[self.graph])
        new_index = np.full(self.graph.size, -1, dtype=self.indices.dtype)
        new_index[kept] = np.arange(kept.size, dtype=self.indices.dtype)
        # the columns of the kept nodes; their entries lie in their own graphs
        lengths = np.diff(self.indptr)[kept]
        indptr = np.zeros(kept.size + 1, dtype=self.indptr.dtype)
        np.cumsum(lengths, out=indptr[1:])
        take = np.repeat(self.indptr[kept] - indptr[:-1], lengths) + np.arange(indptr[-1])
        self.indptr, self.indices, self.data = indptr, new_index[self.indices[take]], self.data[take]
        new_graph = np.cumsum(running) - 1
        dangling = self.dangling_nodes[running[self.graph[self.dangling_nodes]]]
        self.dangling_nodes = new_index[dangling].astype(np.int64)
        self.graph, self.counts = new_graph[self.graph[kept]], self.counts[running]
        if self.share.size:
            self.share = self.share[running]
        if self.base is not None:
            self.base = self.base[kept]
        self.nodes = self.original(kept)
        self._ready()
        return kept


def node_centrality(
    kind: CentralityKind,
    edge_index: Tensor,
    num_nodes: int,
    batch: Tensor | None = None,
    *,
    num_graphs: int | None = None,
    **kwargs: float | int | bool | str,
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
