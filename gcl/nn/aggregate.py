r"""Summing over neighbours with sparse CSR products, forward and backward.

Message passing on an ``edge_index`` (PyG's default) gathers one message per
edge into an :math:`[E, F]` tensor and scatters it onto the targets; its
backward pass gathers and scatters again. A sparse-dense product over the
adjacency does the same sum row by row without the :math:`[E, F]` tensor, and
its gradient is the product with the transposed adjacency, which
:class:`Adjacency` keeps as a second CSR matrix (the product through PyTorch's
own autograd transposes the matrix on every backward pass instead). GIN's
layer sum :math:`(1 + \epsilon)\,\mathbf{h}_i + \sum_{j \in \mathcal{N}(i)}
\mathbf{h}_j` is one such product plus the scaled input, and
:func:`gin_aggregate` computes it in one call each way; a GCN layer's
normalised sum :math:`\sum_j w_{ji}\, \mathbf{h}_j` is the product with a
weighted adjacency (:func:`neighbour_sum`).

On one CPU core the sum at GIN's 32 channels, forward and backward, took
0.56 ms against 1.65 ms by gather and scatter on a 128-graph PROTEINS batch, and
3.7 ms against 87 ms on a COLLAB batch (``benchmarks/results/perf.md``,
micro-benchmarks). The sums are taken in the same order (edge order within each
target), so the result is the same.
"""

from __future__ import annotations

import warnings
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from gcl.nn._utils import check_index_pairs

__all__ = ["Adjacency", "gin_aggregate", "neighbour_sum", "supports_sparse_aggregation"]

_INT32_LIMIT = 2**31 - 1
_UINT16_KEYS = 2**16


def _stable_order(keys: Tensor, num_nodes: int) -> Tensor:
    r"""The permutation that sorts ``keys`` (node indices below ``num_nodes``), ties in order."""
    if keys.device.type == "cpu" and num_nodes <= _UINT16_KEYS:
        # NumPy sorts 16-bit keys by radix, in linear time: 4x faster than torch.sort on a
        # 128-graph PROTEINS batch, 2.3x on COLLAB (benchmarks/results/perf.md, micro-benchmarks)
        return torch.from_numpy(np.argsort(keys.numpy().astype(np.uint16), kind="stable"))
    return torch.sort(keys, stable=True)[1]


def _crow_of_sorted(rows: Tensor, num_nodes: int) -> Tensor:
    r"""CSR row pointers of sorted row indices, computed on their device without a host sync."""
    return torch._convert_indices_from_coo_to_csr(rows, num_nodes, out_int32=rows.dtype == torch.int32)


def _csr(rows: Tensor, cols: Tensor, num_nodes: int, values: Tensor, weighted: bool) -> tuple[Tensor, Tensor | None]:
    r"""The ``[num_nodes, num_nodes]`` CSR matrix with ``values`` at ``(rows, cols)``;
    repeated pairs stay separate entries (they add up in a product) and entries of
    one row keep their order in ``rows``. Unless ``weighted``, the values are all
    equal and keep their order when the entries are sorted. Also returns the
    permutation that put the entries into row order (``None`` when they were in it)."""
    # A stable sort keeps each row's entries in edge order, so products sum them in
    # the order scattering messages along edge_index does. Collated batches usually
    # come sorted by source (the backward matrix): checking costs less than sorting,
    # but reading the answer would synchronise a GPU, which sorts anyway.
    order: Tensor | None = None
    if rows.is_cuda:
        rows, order = torch.sort(rows, stable=True)
        cols = cols[order]
        if weighted:
            values = values[order]
        crow = _crow_of_sorted(rows, num_nodes)  # (torch.bincount would synchronise)
    else:
        if rows.numel() > 1 and not bool((rows[1:] >= rows[:-1]).all()):
            order = _stable_order(rows, num_nodes)  # (counting the rows needs no order)
            cols = cols[order]
            if weighted:
                values = values[order]
        crow = torch.zeros(num_nodes + 1, dtype=rows.dtype)
        torch.cumsum(torch.bincount(rows, minlength=num_nodes), 0, out=crow[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(crow, cols, values, (num_nodes, num_nodes), check_invariants=False), order


class Adjacency:
    r"""The edges of a (batched) graph as the two sparse CSR matrices that summing
    over neighbours needs: :attr:`targets` (row :math:`i` holds the sources of the
    edges into node :math:`i`) for the forward pass, and :attr:`sources` (its
    transpose) for the backward pass, built the first time a gradient needs it.

    Repeated edges count as often as they appear, as messages along ``edge_index``
    do. Indices are stored as ``int32`` where the graph allows it (fewer than
    :math:`2^{31}` nodes and edges), which PyTorch's sparse kernels use without
    converting on every product. Build one per batch and share it between layers.

    Args:
        edge_index (Tensor): Edge indices ``[2, E]`` (source, target).
        num_nodes (int): Number of nodes :math:`N`.
        dtype (torch.dtype, optional): Dtype of the features it will multiply.
            (default: :obj:`torch.float32`)
        edge_weight (Tensor, optional): A weight per edge ``[E]``. Weights that
            require grad (learnt attention, pooled graphs' learnt edges) get their
            gradient from :func:`neighbour_sum`: one dot product per edge
            (:func:`torch.sparse.sampled_addmm`), no :math:`[E, F]` tensor.
            (default: :obj:`None`, every edge weighs 1)

    Raises:
        IndexError: If an index lies outside :math:`[0, N)` (checked on the CPU;
            on a GPU the check runs on the device and fails the next
            synchronising call, as an out-of-range gather would).
        ValueError: If ``edge_weight`` is not one number per edge.

    Example:
        >>> import torch
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> adjacency = Adjacency(edge_index, num_nodes=3)
        >>> x = torch.tensor([[1.0], [10.0], [100.0]])
        >>> gin_aggregate(x, adjacency).flatten().tolist()  # x_i + sum over in-neighbours
        [11.0, 111.0, 110.0]
    """

    weight: Tensor | None

    def __init__(self, edge_index: Tensor, num_nodes: int, dtype: torch.dtype = torch.float32,
                 edge_weight: Tensor | None = None) -> None:
        check_index_pairs(edge_index)
        num_edges = edge_index.size(1)
        if edge_weight is not None:
            if edge_weight.dim() != 1 or edge_weight.numel() != num_edges:
                raise ValueError(f"edge_weight must hold one weight per edge ({num_edges}) "
                                 f"(got shape {tuple(edge_weight.shape)})")
        if num_edges:
            if edge_index.is_cuda:
                # the CSR kernels check nothing; an out-of-range index must not read past memory
                torch._assert_async(((edge_index >= 0) & (edge_index < num_nodes)).all())
            else:
                low, high = (int(bound) for bound in torch.aminmax(edge_index))
                if low < 0 or high >= num_nodes:
                    raise IndexError(f"Found indices in 'edge_index' outside [0, {num_nodes - 1}] "
                                     f"(got {low if low < 0 else high}): every edge must join two of the "
                                     f"{num_nodes} nodes")
        index_dtype = torch.int32 if max(num_nodes, num_edges) < _INT32_LIMIT else torch.int64
        self.num_nodes = num_nodes
        # a private, contiguous copy: the CSR kernels read the index arrays as dense, and the
        # transposed matrix is built during backward, after the caller may have changed theirs
        self._edge_index = edge_index.to(dtype=index_dtype, memory_format=torch.contiguous_format, copy=True)
        self._weighted = edge_weight is not None
        #: the caller's weights when they require grad: :func:`neighbour_sum` passes them on
        self.weight = edge_weight if edge_weight is not None and edge_weight.requires_grad else None
        if edge_weight is None:
            self._values = torch.ones(num_edges, dtype=dtype, device=edge_index.device)
        else:  # the kernels' own copy, without the autograd graph
            self._values = edge_weight.detach().to(dtype=dtype, memory_format=torch.contiguous_format, copy=True)
        self.targets, self._target_order = _csr(self._edge_index[1], self._edge_index[0], num_nodes,
                                                self._values, self._weighted)
        self._sources: Tensor | None = None

    @property
    def sources(self) -> Tensor:
        r"""The transposed matrix (row :math:`j` holds the targets of the edges out of :math:`j`)."""
        if self._sources is None:
            self._sources, _ = _csr(self._edge_index[0], self._edge_index[1], self.num_nodes, self._values,
                                    self._weighted)
        return self._sources

    def edge_dot_products(self, grad: Tensor, x: Tensor) -> Tensor:
        r"""``grad[i] · x[j]`` for every edge :math:`(j, i)`, in edge order: the gradient
        of :math:`\sum_{(j, i)} w_{ji} \mathbf{x}_j` with respect to the weights."""
        crow, col = self.targets.crow_indices(), self.targets.col_indices()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            # zeros, not the weights: with beta = 0 the values still enter as 0 * value
            pattern = torch.sparse_csr_tensor(crow, col, torch.zeros_like(self._values),
                                              (self.num_nodes, self.num_nodes), check_invariants=False)
            per_entry = torch.sparse.sampled_addmm(pattern, grad, x.T, beta=0.0).values()
        if self._target_order is None:
            return per_entry
        return torch.empty_like(per_entry).index_copy_(0, self._target_order, per_entry)


class _GINAggregate(torch.autograd.Function):
    r"""``(1 + eps) x + M x`` with ``M`` the adjacency's targets matrix, or its sources matrix
    when ``transposed``; the backward pass is the same function on the other matrix, so
    it is differentiable again (double backward, gradient penalties)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, eps: Tensor, adjacency: Adjacency, transposed: bool) -> Tensor:
        ctx.adjacency, ctx.transposed = adjacency, transposed
        ctx.save_for_backward(x if eps.requires_grad else None, eps)
        matrix = adjacency.sources if transposed else adjacency.targets
        return (x * (1 + eps)).addmm_(matrix, x)  # in place on the fresh product: one copy less

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        x, eps = ctx.saved_tensors
        grad_x = grad_eps = None
        if ctx.needs_input_grad[0]:
            grad_x = _GINAggregate.apply(grad, eps, ctx.adjacency, not ctx.transposed)
        if ctx.needs_input_grad[1]:
            grad_eps = (grad * x).sum().reshape(eps.shape)
        return grad_x, grad_eps, None, None


class _NeighbourSum(torch.autograd.Function):
    r"""``M x`` with ``M`` the adjacency's targets matrix, or its sources matrix when
    ``transposed``; the backward pass is the same function on the other matrix."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, adjacency: Adjacency, transposed: bool) -> Tensor:
        ctx.adjacency, ctx.transposed = adjacency, transposed
        return torch.mm(adjacency.sources if transposed else adjacency.targets, x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None
        return _NeighbourSum.apply(grad, ctx.adjacency, not ctx.transposed), None, None


class _WeightedNeighbourSum(torch.autograd.Function):
    r"""``M x`` with ``M`` the adjacency's targets matrix, whose weights require grad: the
    backward pass gives ``x`` the product with the sources matrix and every weight its
    edge's dot product. Under ``create_graph=True`` the same gradients come from
    differentiable gathers and scatters instead, so that they can be differentiated again."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, adjacency: Adjacency) -> Tensor:
        ctx.adjacency = adjacency
        ctx.save_for_backward(x, weight)
        return torch.mm(adjacency.targets, x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        x, weight = ctx.saved_tensors
        adjacency: Adjacency = ctx.adjacency
        if torch.is_grad_enabled():  # create_graph=True: gradients that have gradients themselves
            source, target = adjacency._edge_index.long()
            incoming = grad.index_select(0, target)
            spread = torch.zeros_like(x).index_add(0, source, incoming * weight.to(x.dtype)[:, None])
            return spread, (incoming * x.index_select(0, source)).sum(1).to(weight.dtype), None
        grad_x = torch.mm(adjacency.sources, grad) if ctx.needs_input_grad[0] else None
        grad_weight = None
        if ctx.needs_input_grad[1]:
            grad_weight = adjacency.edge_dot_products(grad.contiguous(), x).to(weight.dtype)
        return grad_x, grad_weight, None


def supports_sparse_aggregation(x: Tensor) -> bool:
    r"""Whether :func:`gin_aggregate` runs on ``x``: single or double precision on a
    CPU or CUDA device, outside :func:`torch.autocast` (which would cast the sparse
    product to a precision its kernels may lack). Elsewhere message passing sums.
    :func:`neighbour_sum` takes the same inputs."""
    if x.dtype not in (torch.float32, torch.float64) or x.device.type not in ("cpu", "cuda"):
        return False
    return not torch.is_autocast_enabled(x.device.type)


def gin_aggregate(x: Tensor, adjacency: Adjacency, eps: Tensor | float = 0.0) -> Tensor:
    r"""GIN's neighbourhood sum :math:`(1 + \epsilon)\,\mathbf{x}_i +
    \sum_{j \in \mathcal{N}(i)} \mathbf{x}_j`, with :math:`\mathcal{N}(i)` the
    sources of the edges into :math:`i`, as one sparse product each way.

    Args:
        x (Tensor): Node features :math:`(N, F)`, ``float32`` or ``float64``.
        adjacency (Adjacency): The graph, built with :math:`N` nodes and ``x``'s dtype.
        eps (Tensor or float, optional): :math:`\epsilon`; a tensor that requires
            grad (``GINConv(train_eps=True).eps``) receives its gradient.
            (default: :obj:`0.0`)

    Returns:
        Tensor: :math:`(N, F)`.
    """
    _check_features(x, adjacency)
    if not isinstance(eps, Tensor):
        eps = x.new_tensor(float(eps))
    return _GINAggregate.apply(x, eps.to(x.dtype), adjacency, False)


def _check_features(x: Tensor, adjacency: Adjacency) -> None:
    if x.dim() != 2 or x.size(0) != adjacency.num_nodes:
        raise ValueError(f"x must be a [{adjacency.num_nodes}, num_features] matrix for this adjacency "
                         f"(got shape {tuple(x.shape)})")
    if x.dtype != adjacency._values.dtype:
        raise ValueError(f"x is {x.dtype} but the adjacency was built for {adjacency._values.dtype}")


def neighbour_sum(x: Tensor, adjacency: Adjacency) -> Tensor:
    r"""The weighted sum over in-neighbours :math:`\sum_{(j, i)} w_{ji}\,
    \mathbf{x}_j` of every node :math:`i` (the weights of the adjacency, 1 without
    them), as one sparse product each way: what a GCN layer's message passing
    sums once its edges carry the normalised weights and self-loops of
    :func:`torch_geometric.nn.conv.gcn_conv.gcn_norm`.

    When the adjacency's weights require grad, they receive it (the dot product
    of each edge's target gradient with its source's features, computed per edge
    by :func:`torch.sparse.sampled_addmm`). Under ``create_graph=True`` (second
    derivatives) those gradients come from gathers and scatters along the edges
    instead, which autograd can differentiate again. With constant weights the
    backward pass is the same sum over the transposed adjacency, differentiable to
    any order.

    Args:
        x (Tensor): Node features :math:`(N, F)`, ``float32`` or ``float64``.
        adjacency (Adjacency): The graph, built with :math:`N` nodes and ``x``'s dtype.

    Returns:
        Tensor: :math:`(N, F)`.

    Example:
        >>> import torch
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> adjacency = Adjacency(edge_index, 3, edge_weight=torch.tensor([0.5, 1.0, 2.0, 1.0]))
        >>> x = torch.tensor([[1.0], [10.0], [100.0]])
        >>> neighbour_sum(x, adjacency).flatten().tolist()
        [10.0, 100.5, 20.0]
    """
    _check_features(x, adjacency)
    if adjacency.weight is not None and torch.is_grad_enabled():
        return cast(Tensor, _WeightedNeighbourSum.apply(x, adjacency.weight, adjacency))
    return cast(Tensor, _NeighbourSum.apply(x, adjacency, False))
