from __future__ import annotations

import warnings

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
#: For tests that compare the power iterations on graphs where some do not converge (networkx
#: raises there and the comparison skips them).
UNCONVERGED = pytest.mark.filterwarnings("ignore:.*did not converge within:RuntimeWarning")


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


@UNCONVERGED
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


@UNCONVERGED
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


@UNCONVERGED
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


@UNCONVERGED
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


@UNCONVERGED
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


@pytest.mark.parametrize("sinks", [0, 1, 8])
@pytest.mark.parametrize("ordered", [True, False])
def test_power_iterations_give_the_same_bits_on_the_running_graphs_alone(
    sinks: int, ordered: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Graphs that stop at different steps: the iteration drops the finished ones (always, at
    # every check, with _SHRINK_BELOW = 1) or never does (0); every value is summed in the same
    # order either way. Sinks: none, one (folded into the matrix), eight (summed apart).
    from gcl.data import load_dataset

    proteins = load_dataset("PROTEINS")
    graphs = [proteins[i] for i in (0, 5, 17, 23, 87, 149, 300, 829)]
    batch = Batch.from_data_list(graphs)
    edge_index, node_batch = batch.edge_index, batch.batch
    if sinks:  # the first graph's first nodes lose their out-edges
        edge_index = edge_index[:, edge_index[0] >= sinks]
    if not ordered:  # graphs interleaved: the per-graph sums take the sparse path
        perm = torch.randperm(batch.num_nodes, generator=torch.Generator().manual_seed(0))
        inverse = torch.empty_like(perm)
        inverse[perm] = torch.arange(perm.numel())
        edge_index, node_batch = inverse[edge_index], node_batch[perm]
    args = (edge_index, batch.num_nodes, node_batch)
    results = {}
    for shrink in (0.0, 1.0):
        monkeypatch.setattr(C, "_SHRINK_BELOW", shrink)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # max_iter=9 leaves graphs running
            results[shrink] = [C.pagerank(*args), C.eigenvector_centrality(*args),
                               C.pagerank(*args, tol=1e-12, max_iter=9)]
    for never, always in zip(results[0.0], results[1.0]):
        assert torch.equal(never, always)
    for values, g in zip(per_graph(batch, results[1.0][0]) if ordered and not sinks else [],
                         [to_networkx(d) for d in graphs]):
        expected = as_tensor(nx.pagerank(g), g.number_of_nodes())
        assert torch.allclose(values.double(), expected, rtol=1e-4, atol=0)


#: PROTEINS graphs with edges in several components (the first 30 of 42), two with a repeated
#: leading eigenvalue (829, 1011: identical components), and graphs of over 100 nodes (5, 20,
#: 190, 235: the ARPACK path).
MULTI_COMPONENT = [5, 6, 20, 87, 149, 154, 190, 212, 235, 238, 253, 263, 265, 274, 280, 286, 287,
                   340, 347, 359, 470, 567, 645, 712, 757, 766, 771, 790, 829, 1011]


def _leading_eigenvector(data) -> tuple[np.ndarray, float]:  # type: ignore[no-untyped-def]
    """numpy.linalg.eigh of one undirected graph: the leading eigenvector (sign made
    nonnegative, unit norm) and the gap to the second eigenvalue."""
    n = data.num_nodes
    adjacency = np.zeros((n, n))
    np.add.at(adjacency, (data.edge_index[1].numpy(), data.edge_index[0].numpy()), 1.0)
    values, vectors = np.linalg.eigh(adjacency)
    top = vectors[:, -1] * np.sign(vectors[:, -1].sum())
    return top, float(values[-1] - values[-2])


def _carrying_component(data) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Whether each node lies in a component whose largest eigenvalue is the graph's."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    n = data.num_nodes
    ei = data.edge_index.numpy()
    adjacency = sp.csr_matrix((np.ones(ei.shape[1]), (ei[1], ei[0])), shape=(n, n)).toarray()
    _, label = connected_components(adjacency, directed=False)
    top = {c: np.linalg.eigvalsh(adjacency[np.ix_(label == c, label == c)])[-1] for c in set(label)}
    largest = max(top.values())
    return np.array([top[c] > largest - 1e-9 for c in label])


def test_exact_eigenvector_matches_eigh_on_proteins_graphs_in_several_components(proteins) -> None:  # type: ignore[no-untyped-def]
    """GCA's eigenvector_centrality_numpy: the exact leading eigenvector, 0 outside the components
    that carry the leading eigenvalue (the power iteration leaves up to 0.2 there)."""
    data_list = [proteins[i] for i in MULTI_COMPONENT + list(range(0, 1113, 37))]
    batch = Batch.from_data_list(data_list)
    exact = C.eigenvector_centrality(batch.edge_index, batch.num_nodes, batch.batch, method="exact")
    dispatched = C.node_centrality("eigenvector", batch.edge_index, batch.num_nodes, batch.batch,
                                   method="exact")
    assert exact.dtype == torch.get_default_dtype() and torch.equal(exact, dispatched)
    compared = 0
    for graph_values, data in zip(per_graph(batch, exact), data_list):
        values = graph_values.double().numpy()
        assert (values >= 0).all()
        assert np.linalg.norm(values) == pytest.approx(1.0, abs=1e-6)
        carrying = _carrying_component(data)
        assert (values[~carrying] <= 1e-12).all()  # exact zeros (round-off clamped)
        expected, gap = _leading_eigenvector(data)
        if gap > 1e-6:  # a repeated eigenvalue has no single eigenvector to compare with
            np.testing.assert_allclose(values, np.clip(expected, 0, None), rtol=0, atol=1e-7)
            compared += 1
    assert compared >= 55


def test_exact_eigenvector_of_a_repeated_eigenvalue_is_where_the_power_iteration_goes(proteins) -> None:  # type: ignore[no-untyped-def]
    """Two identical components (PROTEINS 829, 1011, 1095, 1102, a repeated leading eigenvalue):
    the uniform vector's component in the eigenspace, which the power iteration converges to."""
    data_list = [proteins[i] for i in (829, 1011, 1095, 1102)]
    batch = Batch.from_data_list(data_list)
    args = (batch.edge_index, batch.num_nodes, batch.batch)
    exact = C.eigenvector_centrality(*args, method="exact")
    converged = C.eigenvector_centrality(*args, tol=1e-15, max_iter=200_000)
    assert torch.allclose(exact, converged, rtol=0, atol=1e-6)


@SETTINGS
@given(graphs=graph_lists(max_graphs=5, max_nodes=10, undirected=None, self_loops=True))
def test_exact_eigenvector_matches_numpy_per_graph(graphs) -> None:
    batch = to_batch(graphs)
    ours = C.eigenvector_centrality(batch.edge_index, batch.num_nodes, batch.batch, method="exact")
    for graph_values, (n, edges) in zip(per_graph(batch, ours), graphs):
        values = graph_values.double().numpy()
        assert np.isfinite(values).all() and (values >= 0).all()
        assert np.linalg.norm(values) == pytest.approx(1.0, abs=1e-6)
        adjacency = np.zeros((n, n))
        for u, v in edges:
            adjacency[u, v] += 1.0
        eigenvalues, vectors = np.linalg.eig(adjacency.T)
        order = np.argsort(-eigenvalues.real)
        top = eigenvalues[order[0]]
        if n > 1 and (abs(top - eigenvalues[order[1]]) < 1e-6 or abs(top) < 1e-6):
            continue  # repeated (or nilpotent) leading eigenvalue: no single eigenvector
        expected = vectors[:, order[0]].real
        expected = np.clip(expected * np.sign(expected.sum()), 0, None)
        np.testing.assert_allclose(values, expected / np.linalg.norm(expected), atol=1e-6)


@pytest.mark.parametrize("limit,entries", [(100, 2**22), (100, 1), (2, 2**22)])
def test_exact_eigenvector_dense_and_arpack_paths_agree(proteins, limit, entries, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # limit 2: every graph of three nodes or more takes ARPACK and the inverse iteration;
    # entries 1: one dense eigendecomposition per graph instead of one per size
    data_list = [proteins[i] for i in [*MULTI_COMPONENT, 1095, 1102, *range(3, 1113, 53), *range(4, 1113, 53)]]
    batch = Batch.from_data_list(data_list)
    args = (batch.edge_index, batch.num_nodes, batch.batch)
    reference = C.eigenvector_centrality(*args, method="exact")
    monkeypatch.setattr(C, "DENSE_EIGEN_LIMIT", limit)
    monkeypatch.setattr(C, "_STACK_ENTRIES", entries)
    assert torch.allclose(C.eigenvector_centrality(*args, method="exact"), reference, rtol=0, atol=1e-6)


@pytest.mark.parametrize("limit", [100, 2])
def test_exact_eigenvector_of_a_directed_graph_is_the_left_eigenvector(limit, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A node's score sums its predecessors' (networkx's convention): the leading eigenvector of
    A^T; node 5 has no predecessor and gets 0, and so does node 6, whose predecessors are 5 and
    itself (a self loop, eigenvalue 1 below the leading one)."""
    monkeypatch.setattr(C, "DENSE_EIGEN_LIMIT", limit)
    edges = [(0, 1), (1, 2), (2, 0), (2, 3), (3, 0), (1, 3), (3, 4), (4, 2), (5, 0), (5, 6), (6, 6), (0, 4)]
    n = 7
    edge_index = torch.tensor(edges).t()
    ours = C.eigenvector_centrality(edge_index, n, method="exact").double()
    adjacency = np.zeros((n, n))
    for u, v in edges:
        adjacency[u, v] += 1.0
    values, vectors = np.linalg.eig(adjacency.T)
    top = vectors[:, np.argmax(values.real)].real
    expected = np.clip(top * np.sign(top.sum()), 0, None)
    np.testing.assert_allclose(ours.numpy(), expected / np.linalg.norm(expected), atol=1e-7)
    assert (ours[:5] > 0.1).all() and (ours[5:] <= 1e-12).all()
    # networkx's own solver, on the strongly connected part (it refuses the whole graph)
    core = [(u, v) for u, v in edges if u < 5 and v < 5]
    networkx = as_tensor(nx.eigenvector_centrality_numpy(nx.DiGraph(core)), 5)
    alone = C.eigenvector_centrality(torch.tensor(core).t(), 5, method="exact").double()
    assert torch.allclose(alone, networkx, atol=1e-6)
    # in a batch, next to an undirected graph and with the batch vector interleaved
    graphs = [(n, edges), (4, [(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)])]
    batch = to_batch(graphs)
    perm = torch.randperm(batch.num_nodes, generator=torch.Generator().manual_seed(0))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel())
    together = C.eigenvector_centrality(inverse[batch.edge_index], batch.num_nodes, batch.batch[perm],
                                        method="exact")
    assert torch.allclose(together[inverse[:n]].double(), ours, atol=1e-7)


@pytest.mark.parametrize("limit", [100, 2])
def test_exact_eigenvector_of_empty_small_and_edgeless_graphs(limit, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(C, "DENSE_EIGEN_LIMIT", limit)
    empty = torch.empty(2, 0, dtype=torch.long)
    assert C.eigenvector_centrality(empty, 0, method="exact").shape == (0,)
    assert C.eigenvector_centrality(empty, 1, method="exact").tolist() == [1.0]
    assert C.eigenvector_centrality(torch.tensor([[0], [0]]), 1, method="exact").tolist() == [1.0]
    # graph 0: a path; graph 1: no nodes; graph 2: one node; graph 3: four nodes, no edges
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    batch = torch.tensor([0, 0, 0, 2, 3, 3, 3, 3])
    ours = C.eigenvector_centrality(edge_index, 8, batch, num_graphs=4, method="exact")
    expected = torch.tensor([0.5, 2**-0.5, 0.5, 1.0, 0.5, 0.5, 0.5, 0.5])
    assert torch.allclose(ours, expected, atol=1e-7)
    # the power iteration gives the same on these (it converges at once)
    assert torch.allclose(C.eigenvector_centrality(edge_index, 8, batch, num_graphs=4), expected, atol=1e-6)
    with pytest.raises(ValueError, match="method must be one of"):
        C.eigenvector_centrality(edge_index, 3, method="numpy")  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["scipy", "tensor"])
def test_power_iterations_warn_once_when_graphs_do_not_converge(path, proteins, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if path == "tensor":
        monkeypatch.setattr(C, "_SCIPY_ON_CPU", False)
    # PROTEINS 771 (top eigenvalues 3.934, 3.952) and 21 take far more than 100 iterations
    batch = Batch.from_data_list([proteins[i] for i in (771, 75, 21)])
    args = (batch.edge_index, batch.num_nodes, batch.batch)
    with pytest.warns(RuntimeWarning, match=r"eigenvector_centrality: 2 of 3 graphs did not converge "
                                             r"within max_iter=100") as record:
        C.eigenvector_centrality(*args)
    assert len(record) == 1
    with pytest.warns(RuntimeWarning, match="pagerank: 3 of 3 graphs did not converge within max_iter=2"):
        C.pagerank(*args, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        C.eigenvector_centrality(*args, max_iter=100_000)
        C.eigenvector_centrality(*args, method="exact")
        C.pagerank(*args)


def test_package_exports_every_centrality() -> None:
    import gcl.augment as A
    from gcl.augment import adaptive, functional, transforms

    for module in (C, adaptive, functional, transforms):
        for name in module.__all__:
            assert name in A.__all__ and getattr(A, name) is getattr(module, name), (module.__name__, name)
