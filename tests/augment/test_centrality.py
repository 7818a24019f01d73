from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from torch_geometric.data import Batch
from torch_geometric.utils import to_networkx

from gcl.augment import centrality as C

from .graphs import graph_lists, to_batch, to_networkx_graphs

SETTINGS = settings(max_examples=25, deadline=None)


def per_graph(batch: Batch, values: torch.Tensor) -> list[torch.Tensor]:
    return [values[batch.ptr[g] : batch.ptr[g + 1]] for g in range(batch.num_graphs)]


def as_tensor(values: dict[int, float], n: int) -> torch.Tensor:
    return torch.tensor([values[k] for k in range(n)], dtype=torch.float64)


@SETTINGS
@given(graphs=graph_lists(max_graphs=5, max_nodes=10, self_loops=True))
def test_degree_centrality_matches_networkx_undirected(graphs) -> None:
    batch = to_batch(graphs)
    ours = C.degree_centrality(batch.edge_index, batch.num_nodes, batch.batch)
    for values, g in zip(per_graph(batch, ours), to_networkx_graphs(graphs, directed=False)):
        expected = as_tensor(nx.degree_centrality(g), g.number_of_nodes())
        assert torch.allclose(values.double(), expected, rtol=1e-6)


@SETTINGS
@given(graphs=graph_lists(max_graphs=5, max_nodes=10, undirected=False))
def test_degree_centrality_is_in_degree_for_directed(graphs) -> None:
    batch = to_batch(graphs)
    ours = C.degree_centrality(batch.edge_index, batch.num_nodes, batch.batch)
    raw = C.degree_centrality(batch.edge_index, batch.num_nodes, batch.batch, normalized=False)
    for values, counts, g in zip(
        per_graph(batch, ours), per_graph(batch, raw), to_networkx_graphs(graphs, directed=True)
    ):
        n = g.number_of_nodes()
        expected = as_tensor(nx.in_degree_centrality(g), n) if n > 1 else torch.ones(1)
        assert torch.allclose(values.double(), expected.double(), rtol=1e-6)
        assert counts.tolist() == [float(g.in_degree(v)) for v in range(n)]


@SETTINGS
@given(graphs=graph_lists(max_graphs=5, max_nodes=10, undirected=None, self_loops=True))
def test_pagerank_matches_networkx_per_graph(graphs) -> None:
    batch = to_batch(graphs)
    directed = not torch.equal(
        torch.sort(batch.edge_index[0] * 100 + batch.edge_index[1]).values,
        torch.sort(batch.edge_index[1] * 100 + batch.edge_index[0]).values,
    )
    ours = C.pagerank(batch.edge_index, batch.num_nodes, batch.batch)
    for values, g in zip(per_graph(batch, ours), to_networkx_graphs(graphs, directed=directed)):
        expected = as_tensor(nx.pagerank(g), g.number_of_nodes())
        assert torch.allclose(values.double(), expected, rtol=1e-4, atol=0)
        assert abs(float(values.sum()) - 1.0) < 1e-5


def _gca_pagerank_dense(n: int, edges: list[tuple[int, int]], damping: float = 0.85,
                        steps: int = 10) -> torch.Tensor:
    """GCA's truncated PageRank written out with a dense transition matrix, one graph alone."""
    adjacency = torch.zeros(n, n, dtype=torch.float64)
    for u, v in edges:
        adjacency[u, v] += 1.0  # parallel edges count with their multiplicity
    out_degree = adjacency.sum(1, keepdim=True)
    transition = torch.where(out_degree > 0, adjacency / out_degree.clamp_min(1), torch.zeros_like(adjacency))
    x = torch.ones(n, dtype=torch.float64)
    for _ in range(steps):
        x = (1 - damping) * x + damping * transition.T @ x
    return x


@SETTINGS
@given(graphs=graph_lists(max_graphs=5, max_nodes=10, undirected=None, self_loops=True))
def test_truncated_pagerank_matches_gca_steps_per_graph(graphs) -> None:
    batch = to_batch(graphs)
    ours = C.truncated_pagerank(batch.edge_index, batch.num_nodes, batch.batch)
    dispatched = C.node_centrality("pagerank-gca", batch.edge_index, batch.num_nodes, batch.batch)
    assert torch.equal(ours, dispatched)
    for values, (n, edges) in zip(per_graph(batch, ours), graphs):
        assert torch.allclose(values.double(), _gca_pagerank_dense(n, edges), rtol=1e-6, atol=1e-12)


def test_truncated_pagerank_is_not_networkx_pagerank() -> None:
    """A star: no teleport and no convergence test give the leaves (1 - a) + a / 4 after one step."""
    edges = torch.tensor([[0, 0, 0, 0, 1, 2, 3, 4], [1, 2, 3, 4, 0, 0, 0, 0]])
    one_step = C.truncated_pagerank(edges, 5, iterations=1)
    assert torch.allclose(one_step, torch.tensor([0.15 + 0.85 * 4, *[0.15 + 0.85 / 4] * 4]))
    assert torch.equal(C.truncated_pagerank(edges, 5, iterations=0), torch.ones(5))
    ranked = C.truncated_pagerank(edges, 5)
    assert not torch.allclose(ranked / ranked.sum(), C.pagerank(edges, 5), rtol=1e-2)
    with pytest.raises(ValueError, match="iterations must be a non-negative integer"):
        C.truncated_pagerank(edges, 5, iterations=-1)
    with pytest.raises(ValueError, match=r"damping must be in \[0, 1\]"):
        C.truncated_pagerank(edges, 5, damping=2.0)


@SETTINGS
@given(graphs=graph_lists(max_graphs=5, max_nodes=10, undirected=None, self_loops=True))
def test_eigenvector_centrality_matches_networkx_power_iteration(graphs) -> None:
    batch = to_batch(graphs)
    directed = any((v, u) not in set(edges) for _, edges in graphs for u, v in edges)
    ours = C.eigenvector_centrality(batch.edge_index, batch.num_nodes, batch.batch)
    for values, g in zip(per_graph(batch, ours), to_networkx_graphs(graphs, directed=directed)):
        try:
            expected = as_tensor(nx.eigenvector_centrality(g), g.number_of_nodes())
        except nx.PowerIterationFailedConvergence:
            continue  # networkx gives no value to compare with
        assert torch.allclose(values.double(), expected, rtol=1e-4, atol=1e-9)


@SETTINGS
@given(graphs=graph_lists(max_graphs=4, min_nodes=3, max_nodes=10))
def test_eigenvector_centrality_matches_numpy_on_connected_graphs(graphs) -> None:
    batch = to_batch(graphs)
    ours = C.eigenvector_centrality(
        batch.edge_index, batch.num_nodes, batch.batch, tol=1e-12, max_iter=5000
    )
    for values, g in zip(per_graph(batch, ours), to_networkx_graphs(graphs, directed=False)):
        if not nx.is_connected(g) or g.number_of_edges() == 0:
            continue
        expected = as_tensor(nx.eigenvector_centrality_numpy(g), g.number_of_nodes())
        assert torch.allclose(values.double(), expected.abs(), rtol=1e-4, atol=1e-7)


def test_centralities_on_real_proteins_batch(proteins) -> None:
    data_list = [proteins[i] for i in range(0, 1113, 35)]
    batch = Batch.from_data_list(data_list)
    pr = C.pagerank(batch.edge_index, batch.num_nodes, batch.batch, num_graphs=batch.num_graphs)
    ev = C.eigenvector_centrality(batch.edge_index, batch.num_nodes, batch.batch)
    dc = C.degree_centrality(batch.edge_index, batch.num_nodes, batch.batch)
    checked = 0
    for data, p, e, d in zip(
        data_list, per_graph(batch, pr), per_graph(batch, ev), per_graph(batch, dc)
    ):
        g = to_networkx(data, to_undirected=True)
        n = data.num_nodes
        assert torch.allclose(p.double(), as_tensor(nx.pagerank(g), n), rtol=1e-4, atol=0)
        assert torch.allclose(d.double(), as_tensor(nx.degree_centrality(g), n), rtol=1e-6)
        try:
            expected = as_tensor(nx.eigenvector_centrality(g), n)
        except nx.PowerIterationFailedConvergence:
            continue
        assert torch.allclose(e.double(), expected, rtol=1e-4, atol=1e-9)
        checked += 1
    assert checked >= 5


def test_empty_graph_in_batch_and_isolated_nodes() -> None:
    edge_index = torch.tensor([[0, 1], [1, 0]])
    # Graph 0: nodes 0-1 (an edge); graph 1: no nodes; graph 2: node 2, isolated.
    batch = torch.tensor([0, 0, 2])
    pr = C.pagerank(edge_index, 3, batch, num_graphs=3)
    assert torch.allclose(pr, torch.tensor([0.5, 0.5, 1.0]))
    ev = C.eigenvector_centrality(edge_index, 3, batch, num_graphs=3)
    assert torch.allclose(ev, torch.tensor([2**-0.5, 2**-0.5, 1.0]))
    dc = C.degree_centrality(edge_index, 3, batch, num_graphs=3)
    assert torch.allclose(dc, torch.tensor([1.0, 1.0, 1.0]))
    assert C.pagerank(torch.empty(2, 0, dtype=torch.long), 0).numel() == 0


def test_batched_equals_one_graph_at_a_time() -> None:
    graphs = [(6, [(0, 1), (1, 2), (2, 0), (3, 4)]), (4, [(0, 1), (1, 0), (2, 3)]), (1, [])]
    batch = to_batch(graphs)
    for fn in (C.pagerank, C.eigenvector_centrality, C.degree_centrality):
        together = fn(batch.edge_index, batch.num_nodes, batch.batch)
        for g, values in enumerate(per_graph(batch, together)):
            single = batch.get_example(g)
            alone = fn(single.edge_index, single.num_nodes)
            assert torch.allclose(values, alone, rtol=1e-6)


def test_unsorted_edges_and_node_centrality_dispatch() -> None:
    edge_index = torch.tensor([[2, 0, 1, 1], [1, 1, 0, 2]])
    perm = torch.tensor([3, 1, 0, 2])
    for kind in ("degree", "pagerank", "eigenvector"):
        a = C.node_centrality(kind, edge_index, 3)
        b = C.node_centrality(kind, edge_index[:, perm], 3)
        assert torch.allclose(a, b)
    with pytest.raises(ValueError, match="kind must be one of"):
        C.node_centrality("closeness", edge_index, 3)  # type: ignore[arg-type]


def test_edge_centrality() -> None:
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
    phi = torch.tensor([1.0, 4.0, 9.0])
    assert C.edge_centrality(edge_index, phi).tolist() == [4.0, 9.0, 1.0]
    assert C.edge_centrality(edge_index, phi, aggr="source").tolist() == [1.0, 4.0, 9.0]
    assert C.edge_centrality(edge_index, phi, aggr="mean").tolist() == [2.0, 6.0, 3.0]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"damping": 1.5}, r"damping must be in \[0, 1\] \(got 1.5\)"),
        ({"tol": 0.0}, r"tol must be > 0 \(got 0.0\)"),
        ({"max_iter": 0}, r"max_iter must be a positive integer \(got 0\)"),
    ],
)
def test_bad_parameters(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        C.pagerank(torch.tensor([[0], [1]]), 2, **kwargs)


def test_numpy_integers_are_integers() -> None:
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    assert torch.equal(C.pagerank(edge_index, np.int64(3)), C.pagerank(edge_index, 3))
    assert torch.equal(C.truncated_pagerank(edge_index, 3, iterations=np.int64(4)),
                       C.truncated_pagerank(edge_index, 3, iterations=4))
    assert torch.equal(C.eigenvector_centrality(edge_index, np.int32(3)), C.eigenvector_centrality(edge_index, 3))


def test_bad_graphs() -> None:
    with pytest.raises(ValueError, match="got indices from 0 to 4"):
        C.pagerank(torch.tensor([[0], [4]]), 2)
    with pytest.raises(ValueError, match="must hold integers"):
        C.eigenvector_centrality(torch.tensor([[0.0], [1.0]]), 2)
    with pytest.raises(ValueError, match="one entry per node"):
        C.degree_centrality(torch.tensor([[0], [1]]), 2, torch.tensor([0]))


@settings(max_examples=15, deadline=None)
@given(graphs=graph_lists(max_graphs=5, min_nodes=1, max_nodes=10, undirected=None))
def test_tensor_path_matches_networkx(graphs) -> None:
    # The tensor operations that non-CPU devices run, checked on CPU.
    C._SCIPY_ON_CPU = False
    try:
        batch = to_batch(graphs)
        directed = any((v, u) not in set(edges) for _, edges in graphs for u, v in edges)
        pr = C.pagerank(batch.edge_index, batch.num_nodes, batch.batch)
        ev = C.eigenvector_centrality(batch.edge_index, batch.num_nodes, batch.batch)
    finally:
        C._SCIPY_ON_CPU = True
    nx_graphs = to_networkx_graphs(graphs, directed=directed)
    for p, e, g in zip(per_graph(batch, pr), per_graph(batch, ev), nx_graphs):
        n = g.number_of_nodes()
        assert torch.allclose(p.double(), as_tensor(nx.pagerank(g), n), rtol=1e-4, atol=0)
        try:
            expected = as_tensor(nx.eigenvector_centrality(g), n)
        except nx.PowerIterationFailedConvergence:
            continue
        assert torch.allclose(e.double(), expected, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("path", ["scipy", "tensor"])
def test_unordered_batch_vector(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if path == "tensor":
        monkeypatch.setattr(C, "_SCIPY_ON_CPU", False)
    # Graph 0: a directed path with a sink; graph 1: a triangle plus an isolated node.
    graphs = [(4, [(0, 1), (1, 2), (2, 3)]), (4, [(0, 1), (1, 0), (1, 2), (2, 1), (0, 2), (2, 0)])]
    batch = to_batch(graphs)
    perm = torch.tensor([4, 0, 5, 1, 6, 2, 7, 3])  # interleave the two graphs
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(8)
    shuffled_edges = inverse[batch.edge_index]
    shuffled_batch = batch.batch[perm]
    for fn in (C.pagerank, C.eigenvector_centrality, C.degree_centrality):
        ordered = fn(batch.edge_index, 8, batch.batch)
        shuffled = fn(shuffled_edges, 8, shuffled_batch)
        assert torch.allclose(shuffled, ordered[perm], rtol=1e-6)


def test_power_iteration_without_history(monkeypatch: pytest.MonkeyPatch) -> None:
    graphs = [(6, [(0, 1), (1, 2), (2, 0), (3, 4)]), (5, [(0, 1), (1, 0), (2, 3), (3, 2)]), (1, [])]
    batch = to_batch(graphs)
    monkeypatch.setattr(C, "_SCIPY_ON_CPU", False)  # the tensor path keeps a history
    with_history = [
        C.pagerank(batch.edge_index, batch.num_nodes, batch.batch),
        C.eigenvector_centrality(batch.edge_index, batch.num_nodes, batch.batch),
    ]
    monkeypatch.setattr(C, "_HISTORY_LIMIT", 0)
    without = [
        C.pagerank(batch.edge_index, batch.num_nodes, batch.batch),
        C.eigenvector_centrality(batch.edge_index, batch.num_nodes, batch.batch),
    ]
    for a, b in zip(with_history, without):
        assert torch.allclose(a, b, rtol=1e-6)


@settings(max_examples=20, deadline=None)
@given(graphs=graph_lists(max_graphs=5, min_nodes=1, max_nodes=10, undirected=None, self_loops=True))
def test_scipy_and_tensor_paths_agree(graphs) -> None:
    # CPU tensors run SciPy products; other devices the tensor operations.
    batch = to_batch(graphs)
    args = (batch.edge_index, batch.num_nodes, batch.batch)
    scipy_side = [C.pagerank(*args), C.eigenvector_centrality(*args)]
    C._SCIPY_ON_CPU = False
    try:
        tensor_side = [C.pagerank(*args), C.eigenvector_centrality(*args)]
    finally:
        C._SCIPY_ON_CPU = True
    for a, b in zip(scipy_side, tensor_side):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("sinks", [1, 8])
def test_pagerank_dangling_mass_folded_or_summed(sinks: int) -> None:
    # One sink: the dangling term joins the sparse matrix; eight sinks in a 10-node
    # graph with 9 edges: too many entries (80 > 10), it is summed per graph instead.
    edges = [(0, v) for v in range(1, sinks + 1)] + [(v, v + 1) for v in range(sinks + 1, 9)]
    edges.append((9, 0))
    graphs = [(10, edges), (3, [(0, 1), (1, 2), (2, 0)])]
    batch = to_batch(graphs)
    ours = C.pagerank(batch.edge_index, batch.num_nodes, batch.batch)
    for values, g in zip(per_graph(batch, ours), to_networkx_graphs(graphs, directed=True)):
        expected = as_tensor(nx.pagerank(g), g.number_of_nodes())
        assert torch.allclose(values.double(), expected, rtol=1e-4, atol=0)


def test_package_exports_every_centrality() -> None:
    import gcl.augment as A
    from gcl.augment import adaptive, functional, transforms

    for module in (C, adaptive, functional, transforms):
        for name in module.__all__:
            assert name in A.__all__ and getattr(A, name) is getattr(module, name), (module.__name__, name)
