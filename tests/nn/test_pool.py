"""HGP-SL pooling: scores, per-graph top-k, candidate edges and learned structure."""

from __future__ import annotations

import math
from fractions import Fraction

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.loader import DataLoader

from gcl.nn import HGPSLPool, sparsemax
from gcl.nn.pool import (
    _k_hop_edges_torch,
    _neighbourhood_candidates,
    _neighbourhood_candidates_torch,
    filter_edges,
    full_graph_edges,
    k_hop_edges,
    node_information_score,
    topk_per_graph,
)


@pytest.fixture(scope="module")
def mutag_batch(mutag):  # type: ignore[no-untyped-def]
    return next(iter(DataLoader(mutag[:24], batch_size=24)))


def exact_keep(ratio: float, n: int) -> int:
    """ceil(ratio * n) for the decimal ratio as written (0.1 * 20 keeps 2), at least 1."""
    return 0 if n == 0 else max(1, math.ceil(Fraction(repr(ratio)) * n))


def test_information_score_matches_dense_formula() -> None:
    graph = nx.gnm_random_graph(15, 30, seed=3)
    graph.add_node(15)  # an isolated node scores ||h||_1
    edge_index = torch.tensor(list(graph.to_directed().edges())).t()
    x = torch.randn(16, 4, dtype=torch.float64)
    adj = torch.tensor(nx.to_numpy_array(graph, nodelist=range(16)))
    deg = adj.sum(1)
    d_inv = torch.where(deg > 0, 1 / deg, torch.zeros_like(deg))
    expected = ((torch.eye(16, dtype=torch.float64) - d_inv[:, None] * adj) @ x).abs().sum(1)
    assert torch.allclose(node_information_score(x, edge_index), expected)
    assert torch.isclose(expected[15], x[15].abs().sum())

    d_isqrt = torch.where(deg > 0, deg.rsqrt(), torch.zeros_like(deg))
    sym = torch.eye(16, dtype=torch.float64) - d_isqrt[:, None] * adj * d_isqrt[None, :]
    got = node_information_score(x, edge_index, normalization="sym")
    assert torch.allclose(got, (sym @ x).abs().sum(1))
    with pytest.raises(ValueError, match="normalization"):
        node_information_score(x, edge_index, normalization="bad")


def test_information_score_weighted_directed() -> None:
    # Weighted, directed: node i averages over its in-neighbours j -> i.
    edge_index = torch.tensor([[0, 1, 2, 2], [1, 2, 1, 0]])
    weight = torch.tensor([0.5, 2.0, 1.5, 1.0], dtype=torch.float64)
    x = torch.randn(3, 2, dtype=torch.float64)
    expected = torch.stack(
        [
            (x[0] - x[2]).abs().sum(),
            (x[1] - (0.5 * x[0] + 1.5 * x[2]) / 2.0).abs().sum(),
            (x[2] - x[1]).abs().sum(),
        ]
    )
    assert torch.allclose(node_information_score(x, edge_index, weight), expected)


@pytest.mark.parametrize("normalization", ["rw", "sym"])
def test_information_score_gradient_at_a_node_of_zero_degree(normalization: str) -> None:
    # edges of weight zero leave nodes 2 ("sym": out-degree) and 3 ("rw": in-degree) with degree 0;
    # the zero inverse degree must not turn into 0 * inf = NaN in the backward pass. The score is
    # that of the graph without those edges, and so are the other gradients.
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    edge_index = torch.tensor([[0, 1, 2, 0], [1, 0, 0, 3]])
    weight = torch.tensor([1.0, 2.0, 0.0, 0.0], dtype=torch.float64, requires_grad=True)
    score = node_information_score(x, edge_index, weight, normalization)
    grad_x, grad_weight = torch.autograd.grad(score.sum(), [x, weight])
    assert torch.isfinite(grad_x).all() and torch.isfinite(grad_weight).all()
    score_without = node_information_score(x, edge_index[:, :2], weight[:2], normalization)
    grad_x_without, grad_weight_without = torch.autograd.grad(score_without.sum(), [x, weight])
    assert torch.allclose(score, score_without)
    assert torch.allclose(grad_x, grad_x_without) and torch.allclose(grad_weight[:2], grad_weight_without[:2])


@pytest.mark.parametrize("ratio", [0.5, 0.3, 0.1, 0.75, 1.0])
def test_topk_per_graph_keeps_top_scores(mutag_batch, ratio: float) -> None:  # type: ignore[no-untyped-def]
    batch = mutag_batch.batch
    perm_order = torch.randperm(batch.numel())  # unsorted batch vector
    batch = batch[perm_order]
    score = torch.randn(batch.numel())
    perm = topk_per_graph(score, ratio, batch, 26)  # two trailing empty graphs
    assert torch.equal(batch[perm], batch[perm].sort().values)
    for graph in range(26):
        nodes = (batch == graph).nonzero().view(-1)
        kept = perm[batch[perm] == graph]
        assert kept.numel() == exact_keep(ratio, nodes.numel())
        expected = nodes[score[nodes].argsort(descending=True)[: kept.numel()]]
        assert kept.tolist() == expected.tolist()


def test_topk_tiny_graphs() -> None:
    batch = torch.tensor([0, 2, 2, 3, 3, 3])  # graph 1 is empty
    perm = topk_per_graph(torch.tensor([1.0, 5.0, 3.0, 0.0, 2.0, 1.0]), 0.01, batch, 4)
    assert perm.tolist() == [0, 1, 4]


def test_filter_edges_matches_loop() -> None:
    edge_index = torch.randint(0, 10, (2, 40))
    weight = torch.rand(40)
    perm = torch.tensor([7, 2, 5, 0])
    new_index, new_weight = filter_edges(edge_index, weight, perm, 10)
    position = {int(node): i for i, node in enumerate(perm)}
    expected = [
        (position[int(s)], position[int(d)], float(w))
        for (s, d), w in zip(edge_index.t(), weight)
        if int(s) in position and int(d) in position
    ]
    assert new_weight is not None
    got = [(int(s), int(d), float(w)) for (s, d), w in zip(new_index.t(), new_weight)]
    assert got == expected


@pytest.mark.parametrize("num_hops", [1, 2, 3])
def test_k_hop_edges_matches_matrix_powers(num_hops: int) -> None:
    graph = nx.gnm_random_graph(25, 30, seed=num_hops, directed=True)
    graph.add_nodes_from(range(25))
    edge_index = torch.tensor(list(graph.edges())).t()
    adj = nx.to_numpy_array(graph, nodelist=range(25))
    reach = sum(np.linalg.matrix_power(adj, h) for h in range(1, num_hops + 1))
    expected = {(int(i), int(j)) for i, j in zip(*np.nonzero(reach))}
    got = k_hop_edges(edge_index, 25, num_hops)
    assert {tuple(pair) for pair in got.t().tolist()} == expected
    assert got.size(1) == len(expected)
    sources = torch.rand(25) < 0.5
    got = k_hop_edges(edge_index, 25, num_hops, source_mask=sources)
    assert {tuple(pair) for pair in got.t().tolist()} == {e for e in expected if sources[e[0]]}


def test_k_hop_edges_refuses_a_source_mask_that_is_not_boolean() -> None:
    # 0/1 integers would be read as node indices (nodes 0 and 1), not as a mask
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    mask = torch.tensor([False, False, True, True])
    assert k_hop_edges(edge_index, 4, 1, mask).tolist() == [[2, 2, 3], [1, 3, 2]]
    for bad in (mask.to(torch.uint8), mask.long(), mask[:3]):
        with pytest.raises(ValueError, match=r"source_mask must be a boolean tensor of shape \[4\]"):
            k_hop_edges(edge_index, 4, 1, bad)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state")
def test_pool_refuses_a_sparse_adjacency() -> None:
    x = torch.randn(4, 3)
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    adjacency = torch.sparse_coo_tensor(edge_index.flip(0), torch.ones(6), (4, 4), check_invariants=True)
    for sparse in (adjacency, adjacency.to_sparse_csr()):
        with pytest.raises(ValueError, match=r"HGPSLPool needs edge_index as \[2, num_edges\] index pairs"):
            HGPSLPool(3)(x, sparse)
    with pytest.raises(ValueError, match="transposed"):
        HGPSLPool(3)(x, edge_index.t())


def _random_edges(seed: int, num_nodes: int, num_edges: int) -> torch.Tensor:
    """Directed edges with repeats and self-loops, in no order."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, max(num_nodes, 1), (2, num_edges), generator=generator)


@pytest.mark.parametrize("seed", range(6))
def test_k_hop_edges_same_pairs_and_order_on_both_paths(seed: int) -> None:
    # The CPU's SciPy products and the device's step-by-step joins (run here on the CPU).
    num_nodes = [0, 1, 30, 60, 45, 200][seed]
    num_edges = 0 if num_nodes == 0 else [0, 3, 40, 150, 90, 600][seed]
    edge_index = _random_edges(seed, num_nodes, num_edges)
    sources = torch.rand(num_nodes, generator=torch.Generator().manual_seed(seed)) < 0.6
    for num_hops in (1, 2, 4):
        for mask in (None, sources):
            expected = _k_hop_edges_torch(edge_index, num_nodes, num_hops, mask)
            got = k_hop_edges(edge_index, num_nodes, num_hops, source_mask=mask)
            assert torch.equal(got, expected)
            assert got.dtype == edge_index.dtype
    narrow = k_hop_edges(edge_index.int(), num_nodes, 2)
    assert narrow.dtype == torch.int32
    assert torch.equal(narrow.long(), k_hop_edges(edge_index, num_nodes, 2))


@pytest.mark.parametrize("seed", range(6))
def test_neighbourhood_candidates_same_on_both_paths(seed: int) -> None:
    # Pairs, their order, the prior weights and the prior's gradient: the host path finds the
    # structure in NumPy/SciPy, the device path coalesces tensors (run here on the CPU).
    num_nodes = [1, 2, 30, 60, 45, 200][seed]
    num_edges = [0, 2, 40, 150, 90, 600][seed]
    edge_index = _random_edges(seed, num_nodes, num_edges)
    if seed % 2:  # without repeated edges, as pooled graphs are: equal to the last bit
        edge_index = torch.unique(edge_index, dim=1)
        edge_index = edge_index[:, torch.randperm(edge_index.size(1), generator=torch.Generator().manual_seed(seed))]
    generator = torch.Generator().manual_seed(seed + 100)
    perm = torch.randperm(num_nodes, generator=generator)[: max(1, (2 * num_nodes) // 3)]
    for num_hops in (1, 2, 4):
        weights = []
        results = []
        for build in (_neighbourhood_candidates, _neighbourhood_candidates_torch):
            weight = (torch.rand(edge_index.size(1), dtype=torch.float64,
                                 generator=torch.Generator().manual_seed(seed)) + 0.1).requires_grad_()
            candidates, prior = build(edge_index, weight, perm, num_nodes, num_hops)
            (prior * torch.arange(prior.numel(), dtype=prior.dtype)).sum().backward()
            weights.append(weight.grad)
            results.append((candidates, prior.detach()))
        (got, got_prior), (expected, expected_prior) = results
        assert torch.equal(got, expected)
        if seed % 2:
            assert torch.equal(got_prior, expected_prior)
        else:  # repeated edges: their weights are summed, possibly in another order
            torch.testing.assert_close(got_prior, expected_prior, rtol=1e-12, atol=1e-12)
        assert torch.equal(weights[0], weights[1])


def test_full_graph_edges_matches_loop() -> None:
    batch = torch.tensor([0, 0, 0, 2, 3, 3])
    expected = {(i, j) for i in range(6) for j in range(6) if batch[i] == batch[j]}
    got = full_graph_edges(batch, 4)
    assert got.size(1) == len(expected) == 9 + 1 + 4
    assert {tuple(pair) for pair in got.t().tolist()} == expected


def _check_pool(out, batch, num_graphs: int, ratio: float, edge_index) -> None:  # type: ignore[no-untyped-def]
    counts = torch.bincount(batch, minlength=num_graphs)
    kept = torch.bincount(out.batch, minlength=num_graphs)
    assert kept.tolist() == [exact_keep(ratio, int(n)) for n in counts]
    assert torch.equal(out.batch, batch[out.perm])
    src, dst = out.edge_index
    assert (out.batch[src] == out.batch[dst]).all(), "edges must stay within graphs"
    assert (out.edge_weight > 0).all()
    # Every kept node has at least one outgoing edge (its self-pair is a candidate),
    # and the normalised weights leaving each node sum to one.
    sums = torch.zeros(out.x.size(0), dtype=out.edge_weight.dtype)
    sums.index_add_(0, src, out.edge_weight)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5)


@pytest.mark.parametrize("sample_neighbor", [True, False])
@pytest.mark.parametrize("sparse_attention", [True, False])
def test_pool_on_mutag(mutag_batch, sample_neighbor: bool, sparse_attention: bool) -> None:  # type: ignore[no-untyped-def]
    data = mutag_batch
    x = torch.randn(data.num_nodes, 16)
    pool = HGPSLPool(16, 0.5, sample_neighbor=sample_neighbor, sparse_attention=sparse_attention)
    out = pool(x, data.edge_index, None, data.batch, data.num_graphs)
    _check_pool(out, data.batch, data.num_graphs, 0.5, data.edge_index)
    assert torch.equal(out.x, x[out.perm])
    if sample_neighbor:
        # Learned edges connect kept nodes within num_hops in the input graph, or
        # a node with itself.
        reach = k_hop_edges(data.edge_index, data.num_nodes, 3)
        allowed = {tuple(p) for p in reach.t().tolist()}
        for s, d in out.perm[out.edge_index].t().tolist():
            assert s == d or (s, d) in allowed
    if not sparse_attention and not sample_neighbor:
        # Softmax keeps every ordered pair within each pooled graph.
        sizes = torch.bincount(out.batch, minlength=data.num_graphs)
        assert out.edge_index.size(1) == int((sizes**2).sum())


@pytest.mark.parametrize("sample", [False, True])
@pytest.mark.parametrize("sparse", [True, False])
def test_pool_attention_matches_naive(mutag_batch, sample: bool, sparse: bool) -> None:  # type: ignore[no-untyped-def]
    """e_ij = leaky_relu(a . [x_i || x_j]) + lambda A_ij, normalised over each row i."""
    data = mutag_batch
    torch.manual_seed(5)
    x = torch.randn(data.num_nodes, 8, dtype=torch.float64)
    weight_in = torch.rand(data.edge_index.size(1), dtype=torch.float64) + 0.5
    pool = HGPSLPool(
        8, 0.5, sample_neighbor=sample, sparse_attention=sparse, attention_weight=0.7
    ).double()
    out = pool(x, data.edge_index, weight_in, data.batch, data.num_graphs)
    a = pool.att.detach()[0]
    prior: dict[tuple[int, int], float] = {}
    for (s, d), w in zip(data.edge_index.t().tolist(), weight_in.tolist()):
        prior[(s, d)] = prior.get((s, d), 0.0) + w
    graph = nx.DiGraph(data.edge_index.t().tolist())
    hops = dict(nx.all_pairs_shortest_path_length(graph, cutoff=3))
    got = {(s, d): w for (s, d), w in zip(out.edge_index.t().tolist(), out.edge_weight.tolist())}
    num_positive = 0
    for g in range(data.num_graphs):
        members = out.perm[out.batch == g].tolist()
        base = int((out.batch < g).sum())
        for i_pos, i in enumerate(members):
            # Candidates: every kept node of the graph, or those within 3 hops (and i).
            cand = [
                j_pos
                for j_pos, j in enumerate(members)
                if not sample or i == j or j in hops.get(i, {})
            ]
            scores = [
                F.leaky_relu(a[:8] @ x[i] + a[8:] @ x[members[j_pos]], 0.2).item()
                + 0.7 * prior.get((i, members[j_pos]), 0.0)
                for j_pos in cand
            ]
            if sparse:
                probs = naive_sparsemax_list(scores)
            else:
                probs = torch.tensor(scores, dtype=torch.float64).softmax(0).tolist()
            for j_pos, p in zip(cand, probs):
                assert got.get((base + i_pos, base + j_pos), 0.0) == pytest.approx(p, abs=1e-9)
                num_positive += p > 0
    assert len(got) == num_positive


def naive_sparsemax_list(z: list[float]) -> list[float]:
    ordered = sorted(z, reverse=True)
    cum = np.cumsum(ordered)
    k = max(k for k in range(1, len(z) + 1) if 1 + k * ordered[k - 1] > cum[k - 1])
    tau = (cum[k - 1] - 1) / k
    return [max(v - tau, 0.0) for v in z]


def test_pool_without_structure_learning_is_induced_subgraph(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    data = mutag_batch
    x = torch.randn(data.num_nodes, 4)
    pool = HGPSLPool(4, 0.5, structure_learning=False)
    out = pool(x, data.edge_index, None, data.batch, data.num_graphs)
    assert out.edge_weight is None
    kept = set(out.perm.tolist())
    expected = [(s, d) for s, d in data.edge_index.t().tolist() if s in kept and d in kept]
    assert sorted(map(tuple, out.perm[out.edge_index].t().tolist())) == sorted(expected)


def test_pool_tiny_graphs_and_gradient() -> None:
    # A one-node graph, an edgeless three-node graph, a path and an empty trailing graph.
    x = torch.randn(7, 4, requires_grad=True)
    edge_index = torch.tensor([[4, 5, 5, 6], [5, 4, 6, 5]])
    batch = torch.tensor([0, 1, 1, 1, 2, 2, 2])
    for sample in (True, False):
        pool = HGPSLPool(4, 0.5, sample_neighbor=sample)
        out = pool(x, edge_index, None, batch, 4)
        _check_pool(out, batch, 4, 0.5, edge_index)
        out.edge_weight.pow(2).sum().backward()
        assert pool.att.grad is not None and torch.isfinite(pool.att.grad).all()


def test_pool_rejects_bad_hyperparameters() -> None:
    with pytest.raises(ValueError, match=r"ratio must be in \(0, 1\] \(got 1.5\)"):
        HGPSLPool(4, ratio=1.5)
    with pytest.raises(ValueError, match="num_hops"):
        HGPSLPool(4, num_hops=0)
    with pytest.raises(ValueError, match="score_normalization"):
        HGPSLPool(4, score_normalization="x")
    assert "ratio=0.5" in repr(HGPSLPool(4))


def test_sparsemax_is_used_for_sparse_attention(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    # Same candidates and scores: the sparse variant's weights are sparsemax of the
    # softmax variant's logits, so some candidate pairs vanish.
    data = mutag_batch
    x = 3 * torch.randn(data.num_nodes, 8)
    torch.manual_seed(0)
    dense = HGPSLPool(8, sample_neighbor=False, sparse_attention=False)
    torch.manual_seed(0)
    sparse = HGPSLPool(8, sample_neighbor=False, sparse_attention=True)
    out_dense = dense(x, data.edge_index, None, data.batch, data.num_graphs)
    out_sparse = sparse(x, data.edge_index, None, data.batch, data.num_graphs)
    assert out_sparse.edge_index.size(1) < out_dense.edge_index.size(1)
    logits = out_dense.edge_weight.log()  # softmax is shift-invariant per source
    expected = sparsemax(logits, out_dense.edge_index[0], out_dense.x.size(0))
    expected_map = {
        tuple(e): w for e, w in zip(out_dense.edge_index.t().tolist(), expected.tolist()) if w > 0
    }
    got_map = dict(
        zip(map(tuple, out_sparse.edge_index.t().tolist()), out_sparse.edge_weight.tolist())
    )
    assert expected_map.keys() == got_map.keys()
    for key, value in got_map.items():
        assert value == pytest.approx(expected_map[key], abs=1e-4)
