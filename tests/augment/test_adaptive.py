# Augmented fields are Optional; the tests index them directly.
# mypy: disable-error-code="index,union-attr,arg-type,operator"
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Batch

from gcl.augment import adaptive as A
from gcl.augment import centrality as C
from gcl.augment import transforms as T

from .graphs import gen, graph_lists, is_symmetric, to_batch

SETTINGS = settings(max_examples=30, deadline=None)


def naive_gca(scores: list[float], p: float, threshold: float) -> list[float]:
    """GCA Eq. (4) for one graph, written out: p_e = min((s_max - s_e) / (s_max - mean) * p, p_tau)."""
    if p == 0:
        return [0.0] * len(scores)
    finite = [s for s in scores if math.isfinite(s)]
    if not finite:
        return [threshold] * len(scores)
    s_max = max(finite)
    mean = sum(finite) / len(finite)
    out = []
    for s in scores:
        if not math.isfinite(s):
            out.append(threshold)
        elif s_max - mean <= 1e-12 * max(1.0, abs(s_max)):
            out.append(min(p, threshold))
        else:
            out.append(min((s_max - s) / (s_max - mean) * p, threshold))
    return out


@SETTINGS
@given(
    graphs=graph_lists(max_graphs=4, max_nodes=9, undirected=None),
    p=st.floats(0.0, 1.0),
    threshold=st.floats(0.0, 1.0),
    aggr=st.sampled_from(["target", "source", "mean"]),
    offset=st.sampled_from([0.0, 1.0]),
)
def test_edge_probabilities_match_formula_per_graph(graphs, p, threshold, aggr, offset) -> None:
    batch = to_batch(graphs)
    ours = A.edge_drop_probabilities(
        batch.edge_index,
        batch.num_nodes,
        batch.batch,
        p=p,
        threshold=threshold,
        aggr=aggr,
        log_offset=offset,
    )
    assert ours.shape == (batch.edge_index.size(1),)
    assert not torch.isnan(ours).any()
    position = 0
    for n, edges in graphs:
        # Degree (GCA: in-degree of the target) counted by hand.
        degree = [sum(1 for _, v in edges if v == node) for node in range(n)]

        def log(value: float) -> float:
            return math.log(value + offset) if value + offset > 0 else -math.inf

        scores = []
        for u, v in edges:
            if aggr == "target":
                scores.append(log(degree[v]))
            elif aggr == "source":
                scores.append(log(degree[u]))
            else:
                scores.append(0.5 * (log(degree[u]) + log(degree[v])))
        expected = naive_gca(scores, p, threshold)
        got = ours[position : position + len(edges)].tolist()
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)
        position += len(edges)


def test_edge_probabilities_with_pagerank_and_stored_centrality() -> None:
    graphs = [
        (5, [(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2), (1, 4), (4, 1)]),
        (3, [(0, 1), (1, 0)]),
    ]
    batch = to_batch(graphs)
    pr = C.pagerank(batch.edge_index, batch.num_nodes, batch.batch)
    computed = A.edge_drop_probabilities(
        batch.edge_index, batch.num_nodes, batch.batch, p=0.4, centrality="pagerank"
    )
    given_phi = A.edge_drop_probabilities(
        batch.edge_index, batch.num_nodes, batch.batch, p=0.4, node_centrality=pr
    )
    assert torch.allclose(computed, given_phi)
    log_pr = pr.double().log()
    first = naive_gca(log_pr[batch.edge_index[1, :8]].tolist(), 0.4, 0.7)
    assert computed[:8].tolist() == pytest.approx(first, rel=1e-5)
    # Graph 1's two edges point at equally central nodes: both get p.
    assert computed[8:].tolist() == pytest.approx([0.4, 0.4])


def _gca_pagerank_steps(n: int, edges: list[tuple[int, int]], steps: int) -> torch.Tensor:
    """GCA's compute_pr written out for one graph: steps of x <- 0.15 x + 0.85 P^T x, from ones."""
    x = torch.ones(n, dtype=torch.float64)
    out_degree = [sum(1 for u, _ in edges if u == v) for v in range(n)]
    for _ in range(steps):
        spread = torch.zeros(n, dtype=torch.float64)
        for u, v in edges:
            spread[v] += x[u] / out_degree[u]
        x = 0.15 * x + 0.85 * spread
    return x


def test_edge_probabilities_with_gca_pagerank() -> None:
    """centrality='pagerank-gca': GCA's own PageRank, 200 steps for the edge weights
    (pr_drop_weights(..., k=200)), then Eq. (4) on the log-scores of edge targets; 10 steps for
    the feature weights (compute_pr's default)."""
    graphs = [(5, [(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2), (1, 4), (4, 1)]),
              (4, [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)])]
    batch = to_batch(graphs, features=3)
    computed = A.edge_drop_probabilities(
        batch.edge_index, batch.num_nodes, batch.batch, p=0.4, centrality="pagerank-gca"
    )
    edge_phi = A._centrality("pagerank-gca", batch.edge_index, batch.num_nodes, batch.batch, None, None,
                             for_edges=True)
    feature_phi = A._centrality("pagerank-gca", batch.edge_index, batch.num_nodes, batch.batch, None, None,
                                for_edges=False)
    for g, (start, stop) in enumerate([(0, 8), (8, 13)]):
        n, edges = graphs[g]
        x = _gca_pagerank_steps(n, edges, 200)
        expected = naive_gca([math.log(x[v]) for _, v in edges], 0.4, 0.7)
        assert computed[start:stop].tolist() == pytest.approx(expected, rel=1e-5)
        nodes = batch.batch == g
        assert torch.allclose(edge_phi[nodes].double(), x, rtol=1e-6)
        assert torch.allclose(feature_phi[nodes].double(), _gca_pagerank_steps(n, edges, 10), rtol=1e-6)
    # the directed graph 1 is still moving after 10 steps: 200 give other edge weights
    assert not torch.allclose(edge_phi, feature_phi, rtol=1e-3)
    networkx_rank = A.edge_drop_probabilities(batch.edge_index, batch.num_nodes, batch.batch, p=0.4,
                                              centrality="pagerank")
    assert not torch.allclose(computed, networkx_rank)


def test_gca_pagerank_edge_and_feature_weights_on_cora() -> None:
    """GCA's train.py on Cora: pr_drop_weights(edge_index, aggr='sink', k=200) for the edges,
    feature_drop_weights(x, compute_pr(edge_index)) (10 steps) for the features."""
    from gcl.data import load_dataset

    cora = load_dataset("Cora")[0]
    edge_index, n = cora.edge_index, cora.num_nodes

    def compute_pr(k: int) -> torch.Tensor:  # GCA's, with a plain loop over the steps
        out_degree = torch.bincount(edge_index[0], minlength=n).double()
        x = torch.ones(n, dtype=torch.float64)
        for _ in range(k):
            message = x[edge_index[0]] / out_degree[edge_index[0]]
            x = 0.15 * x + 0.85 * torch.zeros(n, dtype=torch.float64).index_add_(0, edge_index[1], message)
        return x

    def gca_weights(scores: torch.Tensor, p: float) -> torch.Tensor:
        weights = (scores.max() - scores) / (scores.max() - scores.mean())
        return (weights / weights.mean() * p).clamp(max=0.7)

    edges = A.edge_drop_probabilities(edge_index, n, p=0.3, centrality="pagerank-gca").double()
    expected = gca_weights(compute_pr(200).log()[edge_index[1]], 0.3)
    assert (edges - expected).abs().max() < 1e-6
    assert (edges - gca_weights(compute_pr(10).log()[edge_index[1]], 0.3)).abs().max() > 0.05
    phi = A._centrality("pagerank-gca", edge_index, n, None, None, None, for_edges=False)
    features = A.feature_mask_probabilities(cora.x, phi, p=0.3, per_graph=False).double()
    totals = (cora.x != 0).double().t() @ compute_pr(10)
    expected_features = torch.tensor(naive_gca(totals.log().tolist(), 0.3, 0.7), dtype=torch.float64)
    assert (features - expected_features).abs().max() < 1e-6


def test_degree_scores_count_a_self_loop_once_as_gca() -> None:
    """GCA's degree is torch_geometric.utils.degree(to_undirected(edge_index)[1]): a stored (v, v) counts once."""
    path = [(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)]
    batch = to_batch([(4, path + [(v, v) for v in range(4)])])
    computed = A.edge_drop_probabilities(batch.edge_index, batch.num_nodes, batch.batch, p=0.4, threshold=0.9)
    degree = [2, 3, 3, 2]  # neighbours plus the loop, each stored edge once
    expected = naive_gca([math.log(degree[int(v)]) for v in batch.edge_index[1]], 0.4, 0.9)
    assert computed.tolist() == pytest.approx(expected, rel=1e-6)
    stored = T.AddCentrality.adaptive("degree")(batch)
    assert stored.degree_centrality.tolist() == [2.0, 3.0, 3.0, 2.0]
    assert C.degree_centrality(batch.edge_index, 4).tolist() == pytest.approx([1.0, 4 / 3, 4 / 3, 1.0])  # networkx's
    with pytest.raises(ValueError, match="self_loop_weight must be 1 or 2"):
        C.degree_centrality(batch.edge_index, 4, self_loop_weight=0)


def test_eigenvector_zero_centrality_gets_threshold() -> None:
    # Directed: node 0 has no predecessors, so its eigenvector centrality is 0.
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 1]])
    phi = torch.tensor([0.0, 0.7, 0.7])
    probs = A.edge_drop_probabilities(
        edge_index, 3, p=0.5, threshold=0.9, node_centrality=phi, aggr="source"
    )
    assert probs.tolist() == pytest.approx([0.9, 0.5, 0.5])


@SETTINGS
@given(
    graphs=graph_lists(max_graphs=4, max_nodes=8),
    p=st.floats(0.0, 1.0),
    dense=st.booleans(),
    per_graph=st.booleans(),
    seed=st.integers(0, 100),
)
def test_feature_probabilities_match_formula(graphs, p, dense, per_graph, seed) -> None:
    batch = to_batch(graphs, features=5)
    generator = gen(seed)
    x = torch.randn(batch.num_nodes, 5, generator=generator)
    x[torch.rand(x.shape, generator=generator) < 0.5] = 0.0
    x[:, 2] = 0.0  # an all-zero column
    phi = torch.rand(batch.num_nodes, generator=generator) + 0.1
    ours = A.feature_mask_probabilities(
        x, phi, batch.batch, p=p, threshold=0.7, dense=dense, per_graph=per_graph
    )
    assert not torch.isnan(ours).any()
    groups = [batch.batch == g for g in range(batch.num_graphs)] if per_graph else [None]
    for row, nodes in enumerate(groups):
        xs = x if nodes is None else x[nodes]
        ws = phi if nodes is None else phi[nodes]
        weights = []
        for i in range(5):
            column = xs[:, i].abs() if dense else (xs[:, i] != 0).float()
            total = float((column.double() * ws.double()).sum())
            weights.append(math.log(total) if total > 0 else -math.inf)
        expected = naive_gca(weights, p, 0.7)
        got = (ours[row] if per_graph else ours).tolist()
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)
        assert got[2] == pytest.approx(0.7 if p > 0 else 0.0)  # the empty column carries the cap


def test_feature_weights_of_graphs_whose_centralities_are_all_zero() -> None:
    """An edgeless graph or a single node has degree 0 everywhere: its feature weights follow
    feature frequency as under any constant centrality (p on every present dimension), as the
    PageRank and eigenvector modes give, instead of p_tau on every dimension."""
    from torch_geometric.data import Data

    path = Data(x=torch.eye(3), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]))
    edgeless = Data(x=torch.eye(3), edge_index=torch.empty(2, 0, dtype=torch.long))
    single = Data(x=torch.tensor([[1.0, 1.0, 0.0]]), edge_index=torch.empty(2, 0, dtype=torch.long))
    batch = Batch.from_data_list([path, edgeless, single])
    for offset in (0.0, 1.0):
        options = {"p": 0.1, "threshold": 0.7, "log_offset": offset}
        degree = A._centrality("degree", batch.edge_index, batch.num_nodes, batch.batch, None, None,
                               for_edges=False)
        assert degree.tolist() == [1.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0]
        ours = A.feature_mask_probabilities(batch.x, degree, batch.batch, **options)
        assert ours[1].tolist() == pytest.approx([0.1, 0.1, 0.1])
        if offset == 0.0:
            assert ours[2].tolist() == pytest.approx([0.1, 0.1, 0.7])  # the absent dimension: p_tau
        constant = A.feature_mask_probabilities(batch.x, torch.ones(7), batch.batch, **options)
        assert torch.equal(ours[1:], constant[1:])
        for kind in ("pagerank", "eigenvector"):
            phi = A._centrality(kind, batch.edge_index, batch.num_nodes, batch.batch, None, None,
                                for_edges=False)
            other = A.feature_mask_probabilities(batch.x, phi, batch.batch, **options)
            assert torch.allclose(other[1:], ours[1:])
        # without per_graph only an all-zero batch counts as constant
        alone = A.feature_mask_probabilities(edgeless.x, torch.zeros(3), per_graph=False, **options)
        assert alone.tolist() == pytest.approx([0.1, 0.1, 0.1])
        mixed = A.feature_mask_probabilities(batch.x, degree, per_graph=False, **options)
        assert torch.equal(mixed, A.feature_mask_probabilities(batch.x[:3], degree[:3], per_graph=False,
                                                               **options))
    # the masking draws with those probabilities: about half of the columns, not all of them
    many = Batch.from_data_list([Data(x=torch.ones(1, 4), edge_index=torch.empty(2, 0, dtype=torch.long))] * 300)
    out = A.adaptive_mask_features(many.x, many.edge_index, many.batch, p=0.5, threshold=1.0, generator=gen(0))
    assert 0.4 < float(out.mask.float().mean()) < 0.6


def test_no_nan_on_degenerate_graphs() -> None:
    cases = [
        (torch.zeros(1, 4), torch.empty(2, 0, dtype=torch.long), None),  # single node
        (torch.ones(3, 4), torch.empty(2, 0, dtype=torch.long), None),  # edgeless
        (torch.zeros(4, 3), torch.tensor([[0, 1], [1, 0]]), torch.tensor([0, 0, 1, 1])),
        (torch.randn(0, 3), torch.empty(2, 0, dtype=torch.long), torch.empty(0, dtype=torch.long)),
    ]
    for kind in ("degree", "pagerank", "eigenvector"):
        for x, edge_index, batch in cases:
            edges = A.edge_drop_probabilities(edge_index, x.size(0), batch, centrality=kind)
            assert not torch.isnan(edges).any()
            out = A.adaptive_mask_features(x, edge_index, batch, centrality=kind, generator=gen(0))
            assert not torch.isnan(out.x).any()
            dropped = A.adaptive_drop_edges(x, edge_index, batch, centrality=kind, generator=gen(0))
            assert dropped.edge_index.size(1) <= edge_index.size(1)


def test_adaptive_drop_rate_matches_probabilities(mutag) -> None:
    batch = Batch.from_data_list(list(mutag))
    probs = A.edge_drop_probabilities(batch.edge_index, batch.num_nodes, batch.batch, p=0.3)
    expected = float(probs.double().sum())
    variance = float((probs.double() * (1 - probs.double())).sum())
    out = A.adaptive_drop_edges(batch.x, batch.edge_index, batch.batch, p=0.3, generator=gen(3))
    dropped = batch.edge_index.size(1) - out.edge_index.size(1)
    assert abs(dropped - expected) < 4 * math.sqrt(variance)
    # Less central targets are dropped more often: compare the two halves.
    low = probs > probs.median()
    assert float((~out.edge_mask[low]).float().mean()) > float(
        (~out.edge_mask[~low]).float().mean()
    )
    # GCA's mean normalisation: per graph the (uncapped) weights average to 1.
    weights = A.edge_drop_probabilities(
        batch.edge_index, batch.num_nodes, batch.batch, p=1.0, threshold=1.0
    )
    graph_of_edge = batch.batch[batch.edge_index[0]]
    means = torch.zeros(batch.num_graphs).index_add_(0, graph_of_edge, weights)
    means /= torch.bincount(graph_of_edge, minlength=batch.num_graphs)
    capped = torch.zeros(batch.num_graphs, dtype=torch.bool).index_fill_(
        0, graph_of_edge[weights >= 1.0], True
    )
    assert torch.allclose(means[~capped], torch.ones(int((~capped).sum())), atol=1e-5)


def test_adaptive_mask_features_zeroes_columns_per_graph(mutag) -> None:
    batch = Batch.from_data_list([mutag[i] for i in range(20)])
    out = A.adaptive_mask_features(batch.x, batch.edge_index, batch.batch, p=0.5, generator=gen(1))
    assert out.mask.shape == (20, batch.x.size(1))
    for g in range(20):
        rows = out.x[batch.batch == g]
        assert bool((rows[:, out.mask[g]] == 0).all())
        assert torch.equal(rows[:, ~out.mask[g]], batch.x[batch.batch == g][:, ~out.mask[g]])


def test_force_undirected_keeps_symmetry() -> None:
    graphs = [(8, [(u, v) for u in range(8) for v in range(8) if u != v and (u + v) % 3 == 0])]
    batch = to_batch(graphs)
    for seed in range(5):
        out = A.adaptive_drop_edges(
            batch.x,
            batch.edge_index,
            batch.batch,
            p=0.5,
            aggr="mean",
            force_undirected=True,
            generator=gen(seed),
        )
        assert is_symmetric(out.edge_index)
    with pytest.raises(ValueError, match="aggr='mean'"):
        A.adaptive_drop_edges(batch.x, batch.edge_index, force_undirected=True)


def test_zero_rate_is_identity_and_bad_arguments() -> None:
    x = torch.randn(3, 2)
    edge_index = torch.tensor([[0, 1], [1, 2]])
    out = A.adaptive_drop_edges(x, edge_index, p=0.0)
    assert out.edge_index is edge_index
    assert A.adaptive_mask_features(x, edge_index, p=0.0).x is x
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\] \(got 2.0\)"):
        A.edge_drop_probabilities(edge_index, 3, threshold=2.0)
    with pytest.raises(ValueError, match="centrality must be one of"):
        A.adaptive_drop_edges(x, edge_index, centrality="closeness")
    with pytest.raises(ValueError, match=r"node_centrality must have one value per node \(3\)"):
        A.edge_drop_probabilities(edge_index, 3, node_centrality=torch.ones(2))
    with pytest.raises(ValueError, match="log_offset must be >= 0"):
        A.feature_mask_probabilities(x, torch.ones(3), log_offset=-1.0)
    with pytest.raises(ValueError, match=r"log_offset must be a finite number \(got nan\)"):
        A.edge_drop_probabilities(edge_index, 3, log_offset=float("nan"))  # was: every edge at the cap


def test_dense_feature_weights_of_bool_and_integer_features() -> None:
    # one-hot bool or int features weigh like their float copies
    x = torch.tensor([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]])
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    centrality = torch.tensor([0.1, 0.4, 0.2, 0.3])
    outs = [A.adaptive_mask_features(v, edge_index, p=0.5, dense=True, node_centrality=centrality,
                                     generator=torch.Generator().manual_seed(3))
            for v in (x.float(), x.bool(), x)]
    assert all(torch.equal(o.mask, outs[0].mask) for o in outs)


def test_eigenvector_floor_scores_round_off_like_zeros() -> None:
    """Outside the component that carries the leading eigenvalue the eigenvector is 0, which a
    solver returns as round-off (gcl's exact solver clamps the negative one to 0); GCA's floor
    (max(phi, 0) + 1e-8) scores tiny stored values like exact zeros. A negative given value is
    refused (see test_bad_node_centrality_is_refused)."""
    edge_index = torch.tensor([[0, 1, 1, 2, 0, 2, 3, 4], [1, 0, 2, 1, 2, 0, 4, 3]])
    exact = torch.tensor([0.577, 0.577, 0.577, 0.0, 0.0])
    leftover = torch.tensor([0.577, 0.577, 0.577, 7e-33, 3e-17])
    kwargs = {"p": 0.3, "threshold": 0.7, "centrality": "eigenvector"}
    first = A.edge_drop_probabilities(edge_index, 5, node_centrality=exact, **kwargs)
    second = A.edge_drop_probabilities(edge_index, 5, node_centrality=leftover, **kwargs)
    assert torch.allclose(first, second)
    # the feature weights of the adaptive masking read the same floored centralities
    floored = [A._centrality("eigenvector", edge_index, 5, None, None, phi, for_edges=False)
               for phi in (exact, leftover)]
    assert torch.allclose(floored[0], floored[1], rtol=0, atol=1e-12)


#: PROTEINS graphs with edges in several components (771, 21: the power iteration's leftovers
#: moved probabilities by 0.5 and 0.3), over 100 nodes (5, 20, 190: ARPACK) and a few others.
EIGENVECTOR_GRAPHS = [21, 771, 5, 20, 87, 149, 154, 190, 212, 238, 253, 645, 712, 757, 933,
                      0, 1, 2, 75, 300, 600, 900]


def test_eigenvector_probabilities_match_gca_on_proteins(proteins) -> None:  # type: ignore[no-untyped-def]
    """GCA's evc_drop_weights and feature weights with eigenvector_centrality_numpy: the exact
    leading eigenvector (numpy.linalg.eigh here), max(evc, 0) + 1e-8, log, Eq. (4) per graph."""
    import numpy as np

    data_list = [proteins[i] for i in EIGENVECTOR_GRAPHS]
    batch = Batch.from_data_list(data_list)
    p = 0.3
    edges = A.edge_drop_probabilities(batch.edge_index, batch.num_nodes, batch.batch, p=p,
                                      centrality="eigenvector").double()
    phi = A._centrality("eigenvector", batch.edge_index, batch.num_nodes, batch.batch, None, None,
                        for_edges=False)
    features = A.feature_mask_probabilities(batch.x, phi, batch.batch, p=p).double()
    position = 0
    for g, data in enumerate(data_list):
        n, edge_index = data.num_nodes, data.edge_index
        adjacency = np.zeros((n, n))
        np.add.at(adjacency, (edge_index[1].numpy(), edge_index[0].numpy()), 1.0)
        values, vectors = np.linalg.eigh(adjacency)
        assert values[-1] - values[-2] > 1e-6  # one leading eigenvector
        evc = vectors[:, -1] * np.sign(vectors[:, -1].sum())
        evc = np.where(evc > 0, evc, 0.0) + 1e-8
        expected = naive_gca([math.log(evc[v]) for v in edge_index[1].tolist()], p, 0.7)
        got = edges[position : position + edge_index.size(1)]
        assert (got - torch.tensor(expected, dtype=torch.float64)).abs().max() < 1e-6, g
        position += edge_index.size(1)
        totals = (data.x != 0).double().t() @ torch.from_numpy(evc)
        scores = [math.log(t) if t > 0 else -math.inf for t in totals.tolist()]
        expected_features = torch.tensor(naive_gca(scores, p, 0.7), dtype=torch.float64)
        assert (features[g] - expected_features).abs().max() < 1e-6, g


def test_eigenvector_drop_rate_on_cora_is_the_asked_rate() -> None:
    from gcl.data import load_dataset

    # Cora has 78 components: without the floor the rate came out at 0.26 for p = 0.3
    cora = load_dataset("Cora")[0]
    probs = A.edge_drop_probabilities(cora.edge_index, cora.num_nodes, p=0.3, centrality="eigenvector")
    assert float(probs.mean()) == pytest.approx(0.3, abs=0.02)


def test_gca_views_weigh_features_by_the_input_graphs_centrality(mutag) -> None:  # type: ignore[no-untyped-def]
    """GCA computes the feature weights once on the input graph: the composed view stores the
    input's centrality before dropping edges, and masking reads it."""
    from gcl.augment import gca_augmentation
    from gcl.methods.registry import _node_view

    batch = Batch.from_data_list(list(mutag[:16]))
    # the raw degree, as the adaptive steps compute it themselves (GCA's)
    expected = C.degree_centrality(batch.edge_index, batch.num_nodes, batch.batch, num_graphs=16, normalized=False)
    for view in (gca_augmentation(edge_p=0.5, feature_p=0.3), _node_view(0.5, 0.3, True, "degree")):
        out = view(batch)
        assert out.edge_index.size(1) < batch.edge_index.size(1)
        assert torch.equal(out.degree_centrality, expected)


@pytest.mark.parametrize("options", [{"log_offset": 1.0}, {"log_offset": 0.0}])
def test_stored_adaptive_centrality_gives_what_computing_it_gives(mutag, options) -> None:  # type: ignore[no-untyped-def]
    # the stored value is used as given: AddCentrality.adaptive stores the scale the steps compute
    batch = Batch.from_data_list(list(mutag[:10]))
    from gcl.augment import AddCentrality

    stored = AddCentrality.adaptive("degree")(batch)
    computed = A.edge_drop_probabilities(batch.edge_index, batch.num_nodes, p=0.3, batch=batch.batch,
                                         num_graphs=10, **options)
    given = A.edge_drop_probabilities(batch.edge_index, batch.num_nodes, p=0.3, batch=batch.batch,
                                      num_graphs=10, node_centrality=stored.degree_centrality, **options)
    assert torch.allclose(computed, given)


@pytest.mark.parametrize("kind", ["degree", "pagerank", "eigenvector", "pagerank-gca"])
def test_stored_adaptive_centralities_give_the_views_computing_them_gives(proteins, kind) -> None:  # type: ignore[no-untyped-def]
    batch = Batch.from_data_list([proteins[i] for i in (21, 771, 5, 0, 1, 2)])
    stored = T.AddCentrality.adaptive(kind)(batch)
    for step in (T.AdaptiveDropEdges, T.AdaptiveMaskFeatures):
        views = [step(0.4, centrality=kind, generator=gen(3))(data) for data in (batch, stored)]
        assert torch.equal(views[0].edge_index, views[1].edge_index) and torch.equal(views[0].x, views[1].x)
    if kind == "pagerank-gca":
        # both of GCA's PageRanks: 10 steps for the features, 200 for the edges
        args = (batch.edge_index, batch.num_nodes, batch.batch)
        assert torch.equal(stored.truncated_pagerank, C.truncated_pagerank(*args, iterations=10))
        assert torch.equal(stored[A.GCA_EDGE_PAGERANK_KEY], C.truncated_pagerank(*args, iterations=200))
        assert stored.get_example(1).edge_truncated_pagerank.shape == (proteins[771].num_nodes,)


@pytest.mark.parametrize("kind", ["eigenvector", "pagerank-gca"])
def test_gca_views_weigh_edges_and_features_as_gca(proteins, kind) -> None:  # type: ignore[no-untyped-def]
    """gca_augmentation and the GCA builders' views: the edge step and the feature step on the
    input graph, each with the centrality GCA's code computes for it."""
    from gcl.methods.registry import _node_view

    batch = Batch.from_data_list([proteins[i] for i in (21, 771, 5, 0)])

    def reference(generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        args = (batch.x, batch.edge_index, batch.batch)
        dropped = A.adaptive_drop_edges(*args, p=0.5, centrality=kind, generator=generator)
        masked = A.adaptive_mask_features(*args, p=0.3, centrality=kind, generator=generator)
        return dropped.edge_index, masked.x

    expected = reference(gen(5))
    out = T.gca_augmentation(0.5, 0.3, kind, generator=gen(5))(batch)
    assert torch.equal(out.edge_index, expected[0]) and torch.equal(out.x, expected[1])
    if kind == "pagerank-gca":
        assert A.GCA_EDGE_PAGERANK_KEY in out and "truncated_pagerank" in out
    torch.manual_seed(0)
    expected = reference(None)
    torch.manual_seed(0)
    out = _node_view(0.5, 0.3, True, kind)(batch)
    assert torch.equal(out.edge_index, expected[0]) and torch.equal(out.x, expected[1])


def test_grace_views_drop_each_stored_edge_independently(mutag) -> None:  # type: ignore[no-untyped-def]
    from gcl.methods.registry import _node_view

    batch = Batch.from_data_list(list(mutag))
    torch.manual_seed(0)
    out = _node_view(0.5, 0.0, False, "degree")(batch)
    kept = set(map(tuple, out.edge_index.t().tolist()))
    pairs_with_one_direction = sum((v, u) not in kept for u, v in kept)
    # independent decisions keep one direction only of about half the kept edges' pairs
    assert 0.35 < pairs_with_one_direction / len(kept) < 0.65


def _same(first, second) -> bool:  # type: ignore[no-untyped-def]
    return all((a is None and b is None) or (a.dtype == b.dtype and torch.equal(a, b))
               for a, b in zip(first, second, strict=True))


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 12), min_size=1, max_size=6),
    grouped=st.booleans(),
    flat=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_normalized_weights_numpy_path_gives_the_torch_result(sizes, grouped, flat, seed) -> None:  # type: ignore[no-untyped-def]
    from gcl.augment import _utils

    generator = gen(seed)
    group = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))  # empty groups too
    if not grouped:
        group = group[torch.randperm(group.numel(), generator=generator)]
    scores = torch.randn(group.numel(), generator=generator, dtype=torch.float64)
    if flat:
        scores.fill_(0.5)
    scores[torch.rand(group.numel(), generator=generator) < 0.25] = float("-inf")  # zero centrality
    fast = A._normalized_weights(scores, group, len(sizes))
    _utils.NUMPY_ON_CPU = False
    try:
        reference = A._normalized_weights(scores, group, len(sizes))
    finally:
        _utils.NUMPY_ON_CPU = True
    assert fast.dtype == reference.dtype and torch.equal(fast, reference)


@pytest.mark.parametrize("centrality", ["degree", "pagerank", "eigenvector"])
def test_adaptive_views_numpy_path_gives_the_torch_result(centrality, proteins, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from gcl.augment import _utils

    batch = Batch.from_data_list(list(proteins[:64]))
    edge_index = batch.edge_index[:, torch.randperm(batch.num_edges, generator=gen(0))]  # not grouped

    def run() -> list:  # type: ignore[type-arg]
        outputs = []
        for edges in (batch.edge_index, edge_index):
            for aggr in ("target", "mean"):
                outputs += list(A.adaptive_drop_edges(batch.x, edges, batch.batch, centrality=centrality,
                                                      aggr=aggr, generator=gen(1)))
            outputs += list(A.adaptive_mask_features(batch.x, edges, batch.batch, centrality=centrality,
                                                     generator=gen(2)))
        return outputs

    fast = run()
    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", False)
    assert _same(fast, run())


# --------------------------------------------------------------------------- inputs that need care
@pytest.mark.parametrize("numpy_on_cpu", [True, False])
def test_adaptive_augmentations_take_inputs_that_require_grad(numpy_on_cpu, mutag, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Features out of a layer (and a centrality that requires grad) weigh the draws like their
    detached values, and the masked features keep their gradient path."""
    from gcl.augment import _utils

    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", numpy_on_cpu)
    batch = Batch.from_data_list(list(mutag[:8]))
    layer = torch.nn.Linear(7, 16)
    x = layer(batch.x)
    phi = C.pagerank(batch.edge_index, batch.num_nodes, batch.batch).requires_grad_()
    for dense in (True, False):
        want = A.feature_mask_probabilities(x.detach(), phi.detach(), batch.batch, dense=dense)
        got = A.feature_mask_probabilities(x, phi, batch.batch, dense=dense)
        assert torch.equal(got, want) and not got.requires_grad
        out = A.adaptive_mask_features(x, batch.edge_index, batch.batch, dense=dense, node_centrality=phi,
                                       generator=gen(0))
        reference = A.adaptive_mask_features(x.detach(), batch.edge_index, batch.batch, dense=dense,
                                             node_centrality=phi.detach(), generator=gen(0))
        assert torch.equal(out.mask, reference.mask) and torch.equal(out.x, reference.x)
        assert out.x.requires_grad
        layer.zero_grad()
        out.x.sum().backward(retain_graph=True)
        assert layer.weight.grad is not None
    want = A.edge_drop_probabilities(batch.edge_index, batch.num_nodes, batch.batch, node_centrality=phi.detach())
    assert torch.equal(A.edge_drop_probabilities(batch.edge_index, batch.num_nodes, batch.batch,
                                                 node_centrality=phi), want)
    # stored on the graph, read by the transforms
    data = batch.clone()
    data.x, data.pagerank = x, phi
    view = T.AdaptiveMaskFeatures(dense=True, centrality="pagerank", generator=gen(0))(data)
    assert view.x.requires_grad
    assert T.AdaptiveDropEdges(centrality="pagerank", generator=gen(0))(data).num_edges < batch.num_edges


def _bad_centralities(num_nodes: int) -> list[tuple[str, torch.Tensor]]:
    negative = torch.rand(num_nodes, generator=gen(0))
    negative[::3] *= -1
    nan = torch.rand(num_nodes, generator=gen(0))
    nan[1] = float("nan")
    infinite = torch.rand(num_nodes, generator=gen(0))
    infinite[2] = float("inf")
    tiny = torch.rand(num_nodes, generator=gen(0))
    tiny[0] = -1e-17  # round-off of a solver: refused too (gcl's own centralities are clamped)
    return [("negative values", negative), ("NaN", nan), ("infinity", infinite),
            ("negative values", tiny), ("NaN", torch.full((num_nodes,), float("nan"))),
            ("negative values", -torch.arange(num_nodes))]


@pytest.mark.parametrize("numpy_on_cpu", [True, False])
def test_bad_node_centrality_is_refused(numpy_on_cpu, mutag, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A negative, NaN or infinite centrality used to get the log-score of 0, i.e. the cap, unnoticed."""
    from gcl.augment import _utils

    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", numpy_on_cpu)
    batch = Batch.from_data_list(list(mutag[:8]))
    x, edge_index, graph, n = batch.x, batch.edge_index, batch.batch, batch.num_nodes
    for problem, phi in _bad_centralities(n):
        message = rf"node_centrality must hold finite values >= 0 \(got .*{problem}.* of {n} nodes\)"
        for centrality in ("degree", "eigenvector"):
            with pytest.raises(ValueError, match=message):
                A.edge_drop_probabilities(edge_index, n, graph, centrality=centrality, node_centrality=phi)
            with pytest.raises(ValueError, match=message):
                A.adaptive_drop_edges(x, edge_index, graph, centrality=centrality, node_centrality=phi)
            with pytest.raises(ValueError, match=message):
                A.adaptive_mask_features(x, edge_index, graph, centrality=centrality, node_centrality=phi)
        with pytest.raises(ValueError, match=message):
            A.feature_mask_probabilities(x, phi, graph)
        # stored on the graph: the error names the attribute
        data = batch.clone()
        data.pagerank = phi
        stored = message.replace("node_centrality", r"node_centrality \(data\.pagerank\)")
        with pytest.raises(ValueError, match=stored):
            T.AdaptiveDropEdges(centrality="pagerank")(data)
        with pytest.raises(ValueError, match=stored):
            T.AdaptiveMaskFeatures(centrality="pagerank")(data)
        data = batch.clone()
        data.edge_truncated_pagerank = phi
        with pytest.raises(ValueError, match=r"node_centrality \(data\.edge_truncated_pagerank\)"):
            T.AdaptiveDropEdges(centrality="pagerank-gca")(data)
    # an exact zero stays allowed (the cap), and so do integer centralities
    phi = torch.rand(n, generator=gen(0))
    phi[:5] = 0.0
    p = A.edge_drop_probabilities(edge_index, n, graph, node_centrality=phi, p=0.3, threshold=0.7)
    assert bool((p[torch.isin(edge_index[1], torch.arange(5))] == 0.7).all())
    degree = torch.bincount(edge_index[1], minlength=n)
    assert torch.equal(A.edge_drop_probabilities(edge_index, n, graph, node_centrality=degree),
                       A.edge_drop_probabilities(edge_index, n, graph, node_centrality=degree.double()))
    one = mutag[0].clone()
    one.pagerank = torch.ones(5)
    with pytest.raises(ValueError, match=r"node_centrality \(data\.pagerank\) must have one value per node \(17\)"):
        T.AdaptiveDropEdges(centrality="pagerank")(one)


@pytest.mark.parametrize("kind", list(C.CENTRALITY_KEYS))
def test_stored_centralities_pass_the_check_on_proteins(kind, proteins) -> None:  # type: ignore[no-untyped-def]
    """The centralities gcl computes (the exact eigenvector's round-off clamped to 0) are never
    refused: AddCentrality.adaptive, then the adaptive augmentations, on every PROTEINS graph
    (one batch) and on the first 200 graphs alone."""
    add = T.AddCentrality.adaptive(kind)
    augmentations = [
        T.AdaptiveDropEdges(0.3, centrality=kind, generator=gen(0)),
        T.AdaptiveDropEdges(0.3, centrality=kind, aggr="mean", force_undirected=True, generator=gen(0)),
        T.AdaptiveMaskFeatures(0.3, centrality=kind, generator=gen(0)),
        T.AdaptiveMaskFeatures(0.3, centrality=kind, dense=True, per_graph=False, generator=gen(0)),
    ]
    stored = add(Batch.from_data_list(list(proteins)))
    keys = [key for key in (C.CENTRALITY_KEYS[kind], A.GCA_EDGE_PAGERANK_KEY) if key in stored]
    assert keys and all(float(stored[key].min()) >= 0 for key in keys)
    for augment in augmentations:
        augment(stored)
    for data in proteins[:200]:
        stored = add(data)
        for augment in augmentations:
            augment(stored)
