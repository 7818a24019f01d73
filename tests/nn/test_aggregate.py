"""gcl.nn.aggregate: GIN's neighbourhood sum through sparse CSR products."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch_geometric.loader import DataLoader
from torch_geometric.utils import scatter

from gcl.data import load_dataset
from gcl.nn.aggregate import Adjacency, gin_aggregate, neighbour_sum, supports_sparse_aggregation


def reference(x: Tensor, edge_index: Tensor, eps: Tensor | float) -> Tensor:
    """(1 + eps) x_i + sum of x_j over the edges (j, i), by message passing."""
    messages = x.index_select(0, edge_index[0])
    return (1 + eps) * x + scatter(messages, edge_index[1], dim=0, dim_size=x.size(0), reduce="sum")


def directed_graph(seed: int, num_nodes: int = 12, num_edges: int = 40) -> Tensor:
    """Random directed edges in random order, with repeats and self loops likely."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, num_nodes - 2, (2, num_edges), generator=generator)  # last two nodes isolated


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradients_on_directed_graphs_with_repeats_match_finite_differences(seed: int) -> None:
    """Asymmetric adjacency: a backward pass through the wrong orientation would pass on undirected
    graphs and fail here."""
    edge_index = directed_graph(seed)
    adjacency = Adjacency(edge_index, 12, torch.float64)
    x = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    eps = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, eps: gin_aggregate(x, adjacency, eps), (x, eps))
    out = gin_aggregate(x, adjacency, eps)
    torch.testing.assert_close(out, reference(x, edge_index, eps))
    weights = torch.randn_like(out)
    grads = torch.autograd.grad((out * weights).sum(), (x, eps))
    expected = torch.autograd.grad((reference(x, edge_index, eps) * weights).sum(), (x, eps))
    torch.testing.assert_close(grads, expected)


def test_same_sums_in_the_same_order_on_a_shipped_batch() -> None:
    """Each target sums its sources in edge order, as scattering does: bit-identical in float32."""
    batch = next(iter(DataLoader(load_dataset("MUTAG"), batch_size=64, shuffle=True,
                                 generator=torch.Generator().manual_seed(0))))
    x = torch.randn(batch.num_nodes, 32)
    adjacency = Adjacency(batch.edge_index, batch.num_nodes)
    assert torch.equal(gin_aggregate(x, adjacency), reference(x, batch.edge_index, 0.0))
    shuffled = batch.edge_index[:, torch.randperm(batch.num_edges, generator=torch.Generator().manual_seed(1))]
    torch.testing.assert_close(gin_aggregate(x, Adjacency(shuffled, batch.num_nodes)),
                               reference(x, batch.edge_index, 0.0))


@pytest.mark.parametrize("order", ["source", "target"])
def test_transposed_and_int32_edge_indices(order: str) -> None:
    """edge_index as the transposed view of [E, 2] pairs (what a caller gets from pairs.t()) and in int32:
    the kernels read index arrays as dense, so a strided view must not reach them, and a caller that
    changes its int32 indices after the forward pass must not change the gradient."""
    edge_index = directed_graph(4)
    key = edge_index[0] if order == "source" else edge_index[1]
    edge_index = edge_index[:, torch.sort(key, stable=True)[1]]
    pairs = edge_index.t().contiguous()
    x = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(12, 3, dtype=torch.float64)
    expected = torch.autograd.grad((reference(x, edge_index, 0.5) * weights).sum(), x)[0]
    for given in (pairs.t(), pairs.t().int()):
        assert not pairs.t().is_contiguous()
        out = gin_aggregate(x, Adjacency(given, 12, torch.float64), 0.5)
        torch.testing.assert_close(out, reference(x, edge_index, 0.5))
        torch.testing.assert_close(torch.autograd.grad((out * weights).sum(), x)[0], expected)
    mine = edge_index.int()
    out = gin_aggregate(x, Adjacency(mine, 12, torch.float64), 0.5)
    mine.fill_(0)  # the caller reuses its tensor before the backward pass
    torch.testing.assert_close(torch.autograd.grad((out * weights).sum(), x)[0], expected)


def test_second_derivatives() -> None:
    """The backward pass is differentiable again (gradient penalties, double backward)."""
    edge_index = directed_graph(5)
    adjacency = Adjacency(edge_index, 12, torch.float64)
    x = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    eps = torch.tensor([0.2], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x, eps: gin_aggregate(x, adjacency, eps), (x, eps))

    def penalty(aggregate):  # type: ignore[no-untyped-def]
        out = aggregate(x, eps).tanh().sum()
        (grad,) = torch.autograd.grad(out, x, create_graph=True)
        return torch.autograd.grad(grad.square().sum(), (x, eps))

    ours = penalty(lambda x, eps: gin_aggregate(x, adjacency, eps))
    torch.testing.assert_close(ours, penalty(lambda x, eps: reference(x, edge_index, eps)))


def test_large_graphs_sort_the_same_way() -> None:
    """Above 2^16 nodes the targets are sorted by torch.sort instead of NumPy's 16-bit radix sort."""
    generator = torch.Generator().manual_seed(0)
    for num_nodes in (300, 40_000, 65_536, 70_000):  # NumPy's 16-bit keys up to 65,536 nodes, then torch.sort
        edge_index = torch.randint(0, num_nodes, (2, 5_000), generator=generator)
        edge_index[:, :100] = edge_index[:, 100:200]  # repeated edges: their order within a row matters
        edge_index[1, 200:210] = num_nodes - 1  # the largest key, with ties
        x = torch.randn(num_nodes, 2, generator=generator, dtype=torch.float64)
        adjacency = Adjacency(edge_index, num_nodes, torch.float64)
        crow, col = adjacency.targets.crow_indices(), adjacency.targets.col_indices()
        order = torch.sort(edge_index[1], stable=True)[1]
        assert torch.equal(col.long(), edge_index[0, order])
        assert torch.equal(crow.long()[1:], torch.bincount(edge_index[1], minlength=num_nodes).cumsum(0))
        torch.testing.assert_close(gin_aggregate(x, adjacency), reference(x, edge_index, 0.0))


def test_row_pointers_of_sorted_rows_on_the_device_path() -> None:
    """GPUs build the row pointers from sorted rows (torch.bincount would synchronise); same pointers."""
    from gcl.nn.aggregate import _crow_of_sorted

    rows = torch.sort(torch.randint(0, 50, (400,), generator=torch.Generator().manual_seed(0)))[0]
    for dtype in (torch.int32, torch.int64):
        crow = _crow_of_sorted(rows.to(dtype), 60)
        assert crow.dtype == dtype
        assert torch.equal(crow.long(), torch.cat([torch.zeros(1, dtype=torch.long),
                                                   torch.bincount(rows, minlength=60).cumsum(0)]))


def test_the_transposed_matrix_is_built_only_when_a_gradient_needs_it() -> None:
    edge_index = directed_graph(0)
    adjacency = Adjacency(edge_index, 12)
    gin_aggregate(torch.randn(12, 4), adjacency).sum()  # inputs without grad: no backward pass
    assert adjacency._sources is None
    x = torch.randn(12, 4, requires_grad=True)
    gin_aggregate(x, adjacency).sum().backward()
    assert adjacency._sources is not None
    torch.testing.assert_close(adjacency.sources.to_dense(), adjacency.targets.to_dense().t())


def test_fixed_eps_gets_no_gradient_and_learnable_eps_does() -> None:
    edge_index = directed_graph(3)
    adjacency = Adjacency(edge_index, 12)
    x = torch.randn(12, 4, requires_grad=True)
    fixed = torch.zeros(1)
    gin_aggregate(x, adjacency, fixed).sum().backward()
    assert fixed.grad is None and x.grad is not None
    learnable = torch.zeros(1, requires_grad=True)
    gin_aggregate(x.detach(), adjacency, learnable).sum().backward()
    assert learnable.grad is not None and learnable.grad.shape == (1,)
    torch.testing.assert_close(learnable.grad, x.detach().sum().view(1))


def test_no_edges_isolated_nodes_and_no_nodes() -> None:
    x = torch.randn(5, 3, requires_grad=True)
    out = gin_aggregate(x, Adjacency(torch.empty(2, 0, dtype=torch.long), 5), 0.5)
    torch.testing.assert_close(out, 1.5 * x)
    out.sum().backward()
    torch.testing.assert_close(x.grad, torch.full((5, 3), 1.5))
    empty = gin_aggregate(torch.empty(0, 3), Adjacency(torch.empty(2, 0, dtype=torch.long), 0))
    assert empty.shape == (0, 3)


def test_bad_input_is_refused_with_a_clear_error() -> None:
    with pytest.raises(IndexError, match=r"outside \[0, 3\] \(got 4\)"):
        Adjacency(torch.tensor([[0, 1], [1, 4]]), 4)
    with pytest.raises(IndexError, match=r"got -1"):
        Adjacency(torch.tensor([[0, -1], [1, 2]]), 3)
    with pytest.raises(ValueError, match=r"shape \[2, num_edges\]"):
        Adjacency(torch.tensor([[0, 1], [1, 2], [2, 0]]), 3)
    with pytest.raises(ValueError, match="integer node indices"):
        Adjacency(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), 2)
    adjacency = Adjacency(torch.tensor([[0, 1], [1, 0]]), 2)
    with pytest.raises(ValueError, match=r"\[2, num_features\] matrix"):
        gin_aggregate(torch.randn(3, 4), adjacency)
    with pytest.raises(ValueError, match=r"built for torch\.float32"):
        gin_aggregate(torch.randn(2, 4, dtype=torch.float64), adjacency)


def test_supported_inputs() -> None:
    assert supports_sparse_aggregation(torch.randn(2, 2))
    assert supports_sparse_aggregation(torch.randn(2, 2, dtype=torch.float64))
    assert not supports_sparse_aggregation(torch.randn(2, 2, dtype=torch.bfloat16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not supports_sparse_aggregation(torch.randn(2, 2))


def weighted_reference(x: Tensor, edge_index: Tensor, weight: Tensor) -> Tensor:
    """sum of w_ji x_j over the edges (j, i), by message passing."""
    messages = weight.view(-1, 1) * x.index_select(0, edge_index[0])
    return scatter(messages, edge_index[1], dim=0, dim_size=x.size(0), reduce="sum")


@pytest.mark.parametrize("num_nodes", [12, 70_000])  # NumPy's radix sort, then torch.sort
def test_weighted_sums_and_gradients_on_directed_graphs(num_nodes: int) -> None:
    """Edges in random order: sorting them into rows must carry each edge's weight along,
    for the targets matrix (forward) and the sources matrix (backward)."""
    generator = torch.Generator().manual_seed(num_nodes)
    edge_index = torch.randint(0, num_nodes - 2, (2, 60), generator=generator)
    edge_index[:, :10] = edge_index[:, 10:20]  # repeated edges with other weights
    weight = torch.rand(60, generator=generator, dtype=torch.float64) + 0.5
    adjacency = Adjacency(edge_index, num_nodes, torch.float64, edge_weight=weight)
    x = torch.randn(num_nodes, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    out = neighbour_sum(x, adjacency)
    torch.testing.assert_close(out, weighted_reference(x, edge_index, weight))
    probe = torch.randn_like(out)
    (grad,) = torch.autograd.grad((out * probe).sum(), x, create_graph=True)
    (expected,) = torch.autograd.grad((weighted_reference(x, edge_index, weight) * probe).sum(), x)
    torch.testing.assert_close(grad, expected)
    if num_nodes < 100:
        assert torch.autograd.gradcheck(lambda x: neighbour_sum(x, adjacency), (x,))
        assert torch.autograd.gradgradcheck(lambda x: neighbour_sum(x, adjacency), (x,))


@pytest.mark.parametrize("num_nodes", [12, 70_000])  # NumPy's radix sort, then torch.sort
def test_weights_that_require_grad_get_the_gradient_of_message_passing(num_nodes: int) -> None:
    """Learnt weights (HGP-SL's pooled graphs): each edge's gradient is grad[target] . x[source],
    returned in edge order although the sum runs over the edges sorted by target."""
    generator = torch.Generator().manual_seed(num_nodes + 1)
    edge_index = torch.randint(0, num_nodes - 2, (2, 60), generator=generator)
    edge_index[:, :10] = edge_index[:, 10:20]  # repeated edges with other weights
    weight = (torch.rand(60, generator=generator, dtype=torch.float64) + 0.5).requires_grad_()
    x = torch.randn(num_nodes, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    out = neighbour_sum(x, Adjacency(edge_index, num_nodes, torch.float64, edge_weight=weight))
    expected = weighted_reference(x, edge_index, weight)
    torch.testing.assert_close(out, expected)
    probe = torch.randn_like(out)
    got = torch.autograd.grad((out * probe).sum(), (x, weight))
    wanted = torch.autograd.grad((expected * probe).sum(), (x, weight))
    for a, b in zip(got, wanted, strict=True):
        torch.testing.assert_close(a, b)
    if num_nodes < 100:
        assert torch.autograd.gradcheck(
            lambda x, w: neighbour_sum(x, Adjacency(edge_index, num_nodes, torch.float64, edge_weight=w)),
            (x, weight))
        # second derivatives (create_graph=True) through the differentiable gathers and scatters
        assert torch.autograd.gradgradcheck(
            lambda x, w: neighbour_sum(x, Adjacency(edge_index, num_nodes, torch.float64, edge_weight=w)),
            (x, weight))


def test_float32_weights_of_a_float64_sum_and_graphs_without_edges() -> None:
    edge_index = torch.tensor([[0, 2, 1], [1, 1, 0]])
    weight = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    neighbour_sum(x, Adjacency(edge_index, 3, torch.float64, edge_weight=weight)).sum().backward()
    assert weight.grad is not None and weight.grad.dtype == torch.float32
    torch.testing.assert_close(weight.grad, x.detach().sum(1)[edge_index[0]].float())
    empty = torch.zeros(0, requires_grad=True)
    out = neighbour_sum(x, Adjacency(torch.zeros(2, 0, dtype=torch.long), 3, torch.float64, edge_weight=empty))
    out.sum().backward()
    assert out.abs().sum() == 0 and empty.grad is not None and empty.grad.shape == (0,)
    with torch.no_grad():  # no graph to build: the constant-weight product
        assert neighbour_sum(x, Adjacency(edge_index, 3, torch.float64, edge_weight=weight)).shape == (3, 2)


def test_edge_weights_are_checked_and_copied() -> None:
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
    with pytest.raises(ValueError, match="one weight per edge"):
        Adjacency(edge_index, 3, edge_weight=torch.ones(2))
    weight = torch.tensor([1.0, 2.0, 3.0])
    adjacency = Adjacency(edge_index, 3, edge_weight=weight)
    weight.zero_()  # the caller's tensor changes after the build
    x = torch.tensor([[1.0], [10.0], [100.0]])
    assert neighbour_sum(x, adjacency).flatten().tolist() == [300.0, 1.0, 20.0]
    with pytest.raises(ValueError, match="built for"):
        neighbour_sum(x.double(), adjacency)
    with pytest.raises(ValueError, match="matrix for this adjacency"):
        neighbour_sum(torch.ones(4, 1), adjacency)
