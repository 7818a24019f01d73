# Augmented fields are Optional; the tests index them directly.
# mypy: disable-error-code="index,union-attr,arg-type,operator"
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Batch

from gcl.augment import _utils
from gcl.augment import functional as F
from gcl.augment._utils import fmix32, is_undirected_fingerprint, random_subset

from .graphs import edge_set, gen, graph_lists, is_symmetric, to_batch

SETTINGS = settings(max_examples=30, deadline=None)


# --------------------------------------------------------------------------- shared checks
def check_structure(batch: Batch, out: F.Augmented) -> None:
    """Invariants every graph augmentation must keep."""
    num_graphs = batch.num_graphs
    n_out = out.x.size(0)
    assert out.edge_index.dtype == torch.long
    if out.edge_index.numel():
        assert int(out.edge_index.min()) >= 0 and int(out.edge_index.max()) < n_out
        # No edge crosses graphs.
        assert torch.equal(out.batch[out.edge_index[0]], out.batch[out.edge_index[1]])
    # Every non-empty graph survives.
    before = torch.bincount(batch.batch, minlength=num_graphs)
    after = torch.bincount(out.batch, minlength=num_graphs)
    assert after.numel() == num_graphs
    assert bool(((after > 0) == (before > 0)).all())
    if out.edge_attr is not None:
        assert out.edge_attr.size(0) == out.edge_index.size(1)


def check_masks(batch: Batch, out: F.Augmented) -> None:
    """The masks reproduce the outputs; edge_attr stays aligned with its edges."""
    keep = out.node_mask
    assert keep is not None and keep.dtype == torch.bool and keep.numel() == batch.num_nodes
    assert torch.equal(out.x, batch.x[keep])
    assert torch.equal(out.batch, batch.batch[keep])
    row, col = batch.edge_index
    assert torch.equal(out.edge_mask, keep[row] & keep[col])
    # Independent relabelling with a dictionary.
    new_id = {old: new for new, old in enumerate(keep.nonzero().view(-1).tolist())}
    expected = [(new_id[u], new_id[v]) for u, v in edge_set(batch.edge_index[:, out.edge_mask])]
    assert edge_set(out.edge_index) == expected
    # edge_attr holds the original global ids of each edge's endpoints.
    node_id = batch.node_id[keep]
    assert torch.equal(out.edge_attr, node_id[out.edge_index].t().float())


# --------------------------------------------------------------------------- drop_nodes
@SETTINGS
@given(graphs=graph_lists(), p=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_drop_nodes_fraction_properties(graphs, p, seed) -> None:
    batch = to_batch(graphs)
    out = F.drop_nodes(
        batch.x, batch.edge_index, batch.batch, p=p, edge_attr=batch.edge_attr, generator=gen(seed)
    )
    check_structure(batch, out)
    check_masks(batch, out)
    for g, (n, _) in enumerate(graphs):
        expected_dropped = min(round(p * n), n - 1)  # Python round: half to even
        kept = int((out.batch == g).sum())
        assert kept == n - expected_dropped


@SETTINGS
@given(graphs=graph_lists(), p=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_drop_nodes_bernoulli_keeps_every_graph(graphs, p, seed) -> None:
    batch = to_batch(graphs)
    out = F.drop_nodes(
        batch.x,
        batch.edge_index,
        batch.batch,
        p=p,
        mode="bernoulli",
        edge_attr=batch.edge_attr,
        generator=gen(seed),
    )
    check_structure(batch, out)
    check_masks(batch, out)


def test_drop_nodes_bernoulli_rate_within_binomial_tolerance() -> None:
    n = 20_000
    batch = torch.arange(200).repeat_interleave(100)
    x = torch.zeros(n, 1)
    edge_index = torch.empty(2, 0, dtype=torch.long)
    p = 0.3
    out = F.drop_nodes(x, edge_index, batch, p=p, mode="bernoulli", generator=gen(1))
    dropped = n - out.x.size(0)
    assert abs(dropped - p * n) < 4 * math.sqrt(n * p * (1 - p))


def test_drop_nodes_keeps_one_node_at_p_one_and_graphcl_rounding() -> None:
    batch = to_batch([(5, [(0, 1), (1, 0)]), (1, []), (3, [])])
    out = F.drop_nodes(batch.x, batch.edge_index, batch.batch, p=1.0, generator=gen(0))
    assert torch.bincount(out.batch).tolist() == [1, 1, 1]
    # 0.3 * 5 = 1.5: round -> 2 (half to even), GraphCL's int() -> 1.
    out = F.drop_nodes(batch.x, batch.edge_index, batch.batch, p=0.3, generator=gen(0))
    assert torch.bincount(out.batch).tolist() == [3, 1, 2]
    out = F.drop_nodes(
        batch.x, batch.edge_index, batch.batch, p=0.3, generator=gen(0), graphcl_reference=True
    )
    assert torch.bincount(out.batch).tolist() == [4, 1, 3]


def test_drop_nodes_single_graph_without_batch() -> None:
    x = torch.arange(6.0).view(6, 1)
    edge_index = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
    out = F.drop_nodes(x, edge_index, p=0.5, generator=gen(3))
    assert out.batch is None and out.x.size(0) == 3
    assert torch.equal(out.x, x[out.node_mask])


@SETTINGS
@given(graphs=graph_lists(), p=st.floats(0.0, 1.0), seed=st.integers(0, 1000),
       mode=st.sampled_from(["fraction", "bernoulli"]))
def test_drop_nodes_isolate_keeps_the_nodes_and_drops_the_same_edges(graphs, p, seed, mode) -> None:
    batch = to_batch(graphs)
    args = (batch.x, batch.edge_index, batch.batch)
    removed = F.drop_nodes(*args, p=p, mode=mode, edge_attr=batch.edge_attr, generator=gen(seed))
    isolated = F.drop_nodes(*args, p=p, mode=mode, edge_attr=batch.edge_attr, generator=gen(seed), isolate=True)
    # the same draw: the nodes removed there are isolated here, with their features and order
    assert isolated.node_mask is None
    assert isolated.x is batch.x and isolated.batch is batch.batch
    assert torch.equal(isolated.edge_mask, removed.edge_mask)
    assert torch.equal(isolated.edge_index, batch.edge_index[:, removed.edge_mask])
    assert torch.equal(isolated.edge_attr, batch.edge_attr[removed.edge_mask])
    dropped = ~removed.node_mask
    touched = torch.zeros_like(dropped)
    touched[isolated.edge_index.view(-1)] = True
    assert not bool((touched & dropped).any())  # a dropped node keeps no edge


def test_drop_nodes_isolate_at_p_zero_reports_no_node_mask() -> None:
    batch = to_batch([(3, [(0, 1), (1, 2)])])
    out = F.drop_nodes(batch.x, batch.edge_index, batch.batch, p=0.0, isolate=True)
    assert out.node_mask is None and bool(out.edge_mask.all()) and out.x is batch.x
    with pytest.raises(ValueError, match=r"isolate must be True or False \(got 'yes'\)"):
        F.drop_nodes(batch.x, batch.edge_index, batch.batch, p=0.5, isolate="yes")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- perturb_edges
def _canonical(edges: list[tuple[int, int]]) -> set[tuple[int, int]]:
    return {(min(u, v), max(u, v)) for u, v in edges}


@SETTINGS
@given(
    graphs=graph_lists(undirected=None),
    p=st.floats(0.0, 1.0),
    mode=st.sampled_from(["both", "remove", "add"]),
    seed=st.integers(0, 1000),
)
def test_perturb_edges_properties(graphs, p, mode, seed) -> None:
    batch = to_batch(graphs)
    undirected = is_symmetric(batch.edge_index)
    out = F.perturb_edges(
        batch.x,
        batch.edge_index,
        batch.batch,
        p=p,
        mode=mode,
        edge_attr=batch.edge_attr,
        generator=gen(seed),
    )
    assert out.node_mask is None and out.x is batch.x and out.batch is batch.batch
    check_structure(batch, out)
    mask = out.edge_mask
    kept = int(mask.sum())
    # Kept original edges come first, in their original order, with their attributes.
    assert torch.equal(out.edge_index[:, :kept], batch.edge_index[:, mask])
    assert torch.equal(out.edge_attr[:kept], batch.edge_attr[mask])
    added = out.edge_index[:, kept:]
    assert bool((out.edge_attr[kept:] == 0).all())
    if undirected:
        assert is_symmetric(out.edge_index)
        assert is_symmetric(batch.edge_index[:, mask])
    # Added edges: no self loops, not already present, no duplicates.
    original = set(edge_set(batch.edge_index))
    new = edge_set(added)
    assert all(u != v for u, v in new)
    assert not set(new) & original
    if undirected:
        assert not _canonical(new) & _canonical(list(original))
    assert len(set(new)) == len(new)
    if mode == "remove":
        assert added.size(1) == 0
    graph_of_edge = batch.batch[batch.edge_index[0]]
    for g, (_, edges) in enumerate(graphs):
        units = len(_canonical(edges)) if undirected else len(edges)
        in_graph = graph_of_edge == g
        removed_edges = int((~mask & in_graph).sum())
        removed_units = removed_edges // 2 if undirected else removed_edges
        target = round(p * units)
        if mode == "add":
            assert removed_units == 0
        else:
            assert removed_units == target
        added_g = int((batch.batch[added[0]] == g).sum()) if added.numel() else 0
        added_units = added_g // 2 if undirected else added_g
        assert added_units <= (target if mode != "remove" else 0)
        # Exactly the target where the graph has room to spare (rounds of draws top up).
        n = int((batch.batch == g).sum())
        present = {(u, v) for u, v in (_canonical(edges) if undirected else edges) if u != v}
        free = (n * (n - 1) // 2 if undirected else n * (n - 1)) - len(present)
        if mode != "remove" and free >= 2 * target:
            assert added_units == target


def test_perturb_edges_adds_as_many_as_removed_on_mutag(mutag) -> None:
    batch = Batch.from_data_list([mutag[i] for i in range(32)])
    out = F.perturb_edges(batch.x, batch.edge_index, batch.batch, p=0.2, generator=gen(0))
    kept = int(out.edge_mask.sum())
    removed = batch.edge_index.size(1) - kept
    assert out.edge_index.size(1) == batch.edge_index.size(1)  # as many added as removed
    expected = sum(round(0.2 * (mutag[i].edge_index.size(1) // 2)) for i in range(32))
    assert removed == 2 * expected
    assert is_symmetric(out.edge_index)


def test_perturb_edges_adds_as_many_as_removed_in_dense_graphs(monkeypatch) -> None:
    # IMDB-BINARY's ego networks are dense (a fifth of them have more than half of all
    # node pairs as edges): graphs with room keep their edge count, on both paths, with the
    # same result; the few that want most of their free pairs lose at most a handful.
    from gcl.data import load_dataset

    imdb = load_dataset("IMDB-BINARY")
    batch = Batch.from_data_list(list(imdb[:400]))
    sizes = torch.bincount(batch.batch)
    units = torch.bincount(batch.batch[batch.edge_index[0]], minlength=sizes.numel()) // 2
    free = sizes * (sizes - 1) // 2 - units
    wanted = torch.round(0.2 * units.double()).long()
    roomy = free >= 2 * wanted
    for seed in range(4):
        def run(s: int = seed) -> F.Augmented:
            return F.perturb_edges(batch.x, batch.edge_index, batch.batch, p=0.2, generator=gen(s))

        fast, reference = _outputs_on_both_paths(monkeypatch, run)
        _assert_same(fast, reference)
        edge_index = fast[1]  # the Augmented's fields, in order
        after = torch.bincount(batch.batch[edge_index[0]], minlength=sizes.numel()) // 2
        assert torch.equal(after[roomy], units[roomy])
        hostable = free >= wanted  # (cliques, for one, have no pair to add)
        lost = int((units - after)[hostable].clamp_min(0).sum())
        assert lost <= 0.01 * int(wanted[hostable].sum())


@pytest.mark.parametrize("numpy_on_cpu", [True, False])
def test_perturb_edges_draws_again_after_a_round_that_found_nothing(numpy_on_cpu, monkeypatch) -> None:
    # a path of four nodes has 3 free pairs, and p = 0.34 wants one new edge: at least twice the
    # edges wanted are free, so the graph must get it, even when a round draws only taken pairs
    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", numpy_on_cpu)
    path = torch.tensor([(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)]).t()
    for seed in (1208, *range(300)):  # 1208: the first round finds no free pair
        out = F.perturb_edges(torch.zeros(4, 1), path, p=0.34, mode="add", generator=gen(seed))
        assert out.edge_index.size(1) == 8, seed


@pytest.mark.parametrize("numpy_on_cpu", [True, False])
def test_perturb_edges_self_loops_take_no_node_pair(numpy_on_cpu, monkeypatch, proteins) -> None:
    from torch_geometric.utils import add_self_loops

    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", numpy_on_cpu)
    path = [(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)]
    edge_index = torch.tensor(path + [(i, i) for i in range(4)]).t()
    for seed in range(20):
        out = F.perturb_edges(torch.zeros(4, 1), edge_index, p=0.2, mode="add", generator=gen(seed))
        assert out.edge_index.size(1) - edge_index.size(1) == 2  # round(0.2 * 7 units) = 1 new pair
    # PROTEINS with a self loop on every node (as GCN-style preprocessing adds them)
    batch = Batch.from_data_list(list(proteins[:128]))
    looped, _ = add_self_loops(batch.edge_index, num_nodes=batch.num_nodes)
    looped = looped[:, torch.sort(looped[0], stable=True).indices]
    sizes = torch.bincount(batch.batch)
    units = torch.bincount(batch.batch[batch.edge_index[0]], minlength=sizes.numel()) // 2
    free = sizes * (sizes - 1) // 2 - units
    wanted = torch.round(0.2 * (units + sizes).double()).long()  # the loops are units too
    roomy = free >= 2 * wanted
    for seed in range(3):
        out = F.perturb_edges(batch.x, looped, batch.batch, p=0.2, mode="add", generator=gen(seed))
        added = out.edge_index[:, looped.size(1):]
        per_graph = torch.bincount(batch.batch[added[0]], minlength=sizes.numel()) // 2
        assert torch.equal(per_graph[roomy], wanted[roomy])


def test_perturb_edges_graphcl_reference_only_removes_directed_edges() -> None:
    graphs = [(6, [(u, v) for u in range(6) for v in range(6) if u != v and abs(u - v) == 1])]
    batch = to_batch(graphs)
    out = F.perturb_edges(
        batch.x, batch.edge_index, batch.batch, p=0.3, generator=gen(0), graphcl_reference=True
    )
    assert out.edge_index.size(1) == 10 - math.floor(0.3 * 10)  # 10 directed edges, int(3.0)
    assert int(out.edge_mask.sum()) == out.edge_index.size(1)  # nothing added


def test_perturb_edges_force_directed_on_symmetric_graph_breaks_symmetry() -> None:
    batch = to_batch(
        [(30, [(u, (u + 1) % 30) for u in range(30)] + [((u + 1) % 30, u) for u in range(30)])]
    )
    out = F.perturb_edges(
        batch.x,
        batch.edge_index,
        batch.batch,
        p=0.5,
        mode="remove",
        force_undirected=False,
        generator=gen(0),
    )
    assert out.edge_index.size(1) == 30
    assert not is_symmetric(out.edge_index)


@pytest.mark.parametrize("undirected", [True, False])
def test_drop_edges_bernoulli_rate(undirected: bool) -> None:
    graphs = []
    for _ in range(40):
        edges = [(u, v) for u in range(30) for v in range(30) if u < v and (u * 7 + v) % 5 == 0]
        if undirected:
            edges += [(v, u) for u, v in edges]
        graphs.append((30, edges))
    batch = to_batch(graphs)
    p = 0.25
    out = F.drop_edges(batch.x, batch.edge_index, batch.batch, p=p, generator=gen(2))
    units = batch.edge_index.size(1) // (2 if undirected else 1)
    dropped = (batch.edge_index.size(1) - out.edge_index.size(1)) // (2 if undirected else 1)
    assert abs(dropped - p * units) < 4 * math.sqrt(units * p * (1 - p))
    assert is_symmetric(out.edge_index) == undirected


def test_undirected_fingerprint() -> None:
    sym = torch.tensor([[0, 1, 1, 2, 3, 3], [1, 0, 2, 1, 3, 3]])
    assert is_undirected_fingerprint(sym, 4)
    assert not is_undirected_fingerprint(torch.tensor([[0, 1, 1], [1, 0, 2]]), 3)
    # Same multiset of unordered pairs but one pair twice in one direction.
    assert not is_undirected_fingerprint(torch.tensor([[0, 0, 1], [1, 1, 0]]), 2)


@pytest.mark.parametrize("numpy_on_cpu", [True, False])
def test_undirected_by_code(numpy_on_cpu: bool, monkeypatch) -> None:
    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", numpy_on_cpu)

    def undirected(edges: list[tuple[int, int]], seed: int = 3) -> bool:
        row, col = torch.tensor(edges, dtype=torch.long).t()
        code = _utils.unordered_pair_hash(row, col, seed)
        assert torch.equal(code, _utils.unordered_pair_hash(col, row, seed))
        answer = _utils.is_undirected_by_code(row, col, code)
        # The host's form from the codes of all edges and of those with row <= col.
        r, c, h = row.numpy(), col.numpy(), code.numpy()
        assert _utils.is_undirected_by_unit_code(r, c, h, h[r <= c]) == answer
        return answer

    assert undirected([(0, 1), (1, 0), (1, 2), (2, 1), (3, 3), (3, 3), (0, 1), (1, 0)])
    assert not undirected([(0, 1), (1, 0), (1, 2)])
    # Same multiset of unordered pairs but one pair twice in one direction.
    assert not undirected([(0, 1), (0, 1), (1, 0)])
    assert not undirected([(0, 1), (0, 1), (1, 0), (1, 0), (2, 3)])
    # Random symmetric multigraphs pass; reversing one edge of them is caught, whatever the seed.
    gen_ = torch.Generator().manual_seed(0)
    for seed in range(20):
        half = torch.randint(0, 50, (2, 200), generator=gen_).t().tolist()
        edges = [(u, v) for u, v in half] + [(v, u) for u, v in half]
        assert undirected(edges, seed)
        u, v = next((u, v) for u, v in half if u != v)
        edges.remove((v, u))
        assert not undirected([*edges, (u, v)], seed)


def test_fmix32_matches_reference() -> None:
    def reference(h: int) -> int:
        h ^= h >> 16
        h = (h * 0x85EBCA6B) & 0xFFFFFFFF
        h ^= h >> 13
        h = (h * 0xC2B2AE35) & 0xFFFFFFFF
        return h ^ (h >> 16)

    values = [0, 1, 2, 12345, 2**31, 2**32 - 1, 0xDEADBEEF]
    assert fmix32(torch.tensor(values)).tolist() == [reference(v) for v in values]


# --------------------------------------------------------------------------- mask_features
@SETTINGS
@given(graphs=graph_lists(), p=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_mask_features_node_mode_counts(graphs, p, seed) -> None:
    batch = to_batch(graphs, features=4)
    out = F.mask_features(batch.x, p, batch=batch.batch, fill="zero", generator=gen(seed))
    assert out.mask.shape == (batch.num_nodes,)
    for g, (n, _) in enumerate(graphs):
        assert int(out.mask[batch.batch == g].sum()) == round(p * n)
    assert bool((out.x[out.mask] == 0).all())
    assert torch.equal(out.x[~out.mask], batch.x[~out.mask])


def test_mask_features_fills() -> None:
    x = torch.arange(40.0).view(10, 4)
    batch = torch.tensor([0] * 4 + [1] * 6)
    noisy = F.mask_features(x, 0.5, batch=batch, generator=gen(0))
    assert int(noisy.mask.sum()) == 2 + 3
    assert not torch.equal(noisy.x[noisy.mask], x[noisy.mask])
    mean = F.mask_features(x, 0.5, batch=batch, fill="mean", generator=gen(0))
    graph_means = torch.stack([x[:4].mean(0), x[4:].mean(0)])
    assert torch.allclose(mean.x[mean.mask], graph_means[batch[mean.mask]])
    # GraphCL's noise: N(0.5, 0.5^2) on whole rows.
    big = F.mask_features(torch.zeros(4000, 50), 1.0, generator=gen(1))
    assert abs(float(big.x.mean()) - 0.5) < 0.01 and abs(float(big.x.std()) - 0.5) < 0.01


@pytest.mark.parametrize("mode", ["node", "dim"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_mask_features_mean_fill_sums_half_precision_features_without_overflow(mode: str, dtype: torch.dtype) -> None:
    # 2000 values of 40 sum to 80000, past float16's largest finite value (65504)
    x = torch.full((2000, 2), 40.0, dtype=dtype)
    batch = torch.zeros(2000, dtype=torch.long)
    for graph in (batch, None):
        out = F.mask_features(x, 0.5, mode=mode, batch=graph, fill="mean", generator=gen(0))
        assert out.x.dtype == dtype and bool(out.mask.any())
        assert torch.equal(out.x, x)  # the mean of equal rows is the row


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int32])
def test_mask_features_mean_fill_takes_any_integer_batch_vector(dtype: torch.dtype) -> None:
    x = torch.arange(40.0).view(10, 4)
    batch = torch.tensor([0] * 4 + [1] * 6)
    want = F.mask_features(x, 0.5, batch=batch, fill="mean", generator=gen(0))
    got = F.mask_features(x, 0.5, batch=batch.to(dtype), fill="mean", generator=gen(0))
    assert torch.equal(got.x, want.x) and torch.equal(got.mask, want.mask)


@pytest.mark.parametrize("per_graph", [False, True])
def test_mask_features_dim_mode(per_graph: bool) -> None:
    x = torch.randn(30, 3000) + 5.0
    batch = torch.arange(3).repeat_interleave(10)
    p = 0.3
    out = F.mask_features(
        x, p, mode="dim", fill="zero", batch=batch, per_graph=per_graph, generator=gen(4)
    )
    column_masks = out.mask if per_graph else out.mask.expand(3, -1)
    assert column_masks.shape == (3, 3000)
    for g in range(3):
        rows = out.x[batch == g]
        zero_columns = (rows == 0).all(0)
        assert torch.equal(zero_columns, column_masks[g])
        assert torch.equal(rows[:, ~zero_columns], x[batch == g][:, ~zero_columns])
    rate = float(out.mask.float().mean())
    count = out.mask.numel()
    assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / count)
    if per_graph:
        assert not torch.equal(column_masks[0], column_masks[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_mask_features_zeroed_columns_on_both_paths(dtype, monkeypatch) -> None:
    """Column masking with zeros gives the torch result on the host's NumPy path: NaN, -0.0
    and infinities outside the masked columns are kept, masked entries are +0.0."""
    x = torch.randn(40, 25).to(dtype)
    x[3, :] = float("nan")
    x[5, :] = -0.0
    x[7, ::2] = float("-inf")

    def run() -> tuple[torch.Tensor, ...]:
        out = F.mask_features(x, 0.4, mode="dim", fill="zero", generator=gen(2))
        return out.x, out.mask

    fast, reference = _outputs_on_both_paths(monkeypatch, run)
    assert fast[0].dtype == dtype and torch.equal(fast[1], reference[1])
    assert bool(fast[1].any()) and not bool(fast[1].all())
    # equal values, NaN where NaN, and the same signs (so -0.0 stays -0.0 and zeros are +0.0)
    assert torch.equal(torch.nan_to_num(fast[0], nan=7.0), torch.nan_to_num(reference[0], nan=7.0))
    assert torch.equal(fast[0].isnan(), reference[0].isnan())
    assert torch.equal(torch.signbit(fast[0]), torch.signbit(reference[0]))
    assert not bool(torch.signbit(fast[0][:, fast[1]]).any())


def test_mask_features_rejects_integer_noise() -> None:
    with pytest.raises(ValueError, match="floating-point"):
        F.mask_features(torch.ones(3, 2, dtype=torch.long), 0.5)


# --------------------------------------------------------------------------- subgraph
@SETTINGS
@given(
    graphs=graph_lists(max_nodes=12),
    ratio=st.floats(0.0, 1.0),
    seed=st.integers(0, 1000),
    expansion=st.sampled_from([1.0, 0.5]),
    walk_length=st.sampled_from([None, 10**6]),
)
def test_random_walk_subgraph_properties(graphs, ratio, seed, expansion, walk_length) -> None:
    # walk_length=None with expansion=1 runs the compiled breadth-first search on
    # CPU; a walk_length that never binds runs the step-by-step tensor loop.
    batch = to_batch(graphs)
    out = F.random_walk_subgraph(
        batch.x,
        batch.edge_index,
        batch.batch,
        ratio=ratio,
        expansion=expansion,
        walk_length=walk_length,
        edge_attr=batch.edge_attr,
        generator=gen(seed),
    )
    check_structure(batch, out)
    check_masks(batch, out)
    for g, (n, edges) in enumerate(graphs):
        kept_local = (out.node_mask[batch.batch == g].nonzero().view(-1)).tolist()
        assert len(kept_local) == max(1, round(ratio * n))
        graph = nx.Graph()
        graph.add_nodes_from(range(n))
        graph.add_edges_from(edges)
        if nx.is_connected(graph):
            assert nx.is_connected(graph.subgraph(kept_local))


def test_random_walk_subgraph_without_restart_stops_in_component() -> None:
    # Two components: a 3-node path and 7 isolated nodes; 8 nodes wanted.
    batch = to_batch([(10, [(0, 1), (1, 0), (1, 2), (2, 1)])])
    for seed in range(10):
        out = F.random_walk_subgraph(
            batch.x, batch.edge_index, batch.batch, ratio=0.8, restart=False, generator=gen(seed)
        )
        kept = out.node_mask.nonzero().view(-1).tolist()
        assert kept in ([0, 1, 2], [3], [4], [5], [6], [7], [8], [9])
        restarted = F.random_walk_subgraph(
            batch.x, batch.edge_index, batch.batch, ratio=0.8, generator=gen(seed)
        )
        assert int(restarted.node_mask.sum()) == 8


@pytest.mark.parametrize("restart", [True, False])
def test_random_walk_subgraph_search_and_step_loop_agree_in_distribution(restart: bool) -> None:
    # The compiled breadth-first search (CPU, expansion=1, no walk_length) and the
    # step-by-step loop (forced by a walk_length that never binds) must draw the
    # kept node sets with the same probabilities: a path, a graph of three
    # components (restarts) and a directed graph whose reachable sets differ by seed.
    path = [(u, u + 1) for u in range(5)]
    pieces = [(0, 1), (1, 2), (3, 4)]
    directed = [(0, 1), (1, 2), (2, 0), (3, 0), (4, 3), (5, 5)]
    graphs = [
        (6, path + [(v, u) for u, v in path]),
        (6, pieces + [(v, u) for u, v in pieces]),
        (6, directed),
    ]
    batch = to_batch(graphs)
    draws = 3000

    def frequencies(walk_length: int | None, seed: int) -> list[dict[tuple[int, ...], float]]:
        generator = gen(seed)
        counts: list[dict[tuple[int, ...], int]] = [{} for _ in graphs]
        for _ in range(draws):
            out = F.random_walk_subgraph(
                batch.x, batch.edge_index, batch.batch, ratio=0.5, restart=restart,
                walk_length=walk_length, generator=generator,
            )
            for g in range(len(graphs)):
                kept = tuple(out.node_mask[batch.batch == g].nonzero().view(-1).tolist())
                counts[g][kept] = counts[g].get(kept, 0) + 1
        return [{k: v / draws for k, v in c.items()} for c in counts]

    compiled, stepwise = frequencies(None, 0), frequencies(10**6, 1)
    for g in range(len(graphs)):
        keys = set(compiled[g]) | set(stepwise[g])
        assert set(compiled[g]) == set(stepwise[g])
        total_variation = 0.5 * sum(abs(compiled[g].get(k, 0) - stepwise[g].get(k, 0)) for k in keys)
        assert total_variation < 0.06, (g, total_variation)


@pytest.mark.parametrize("walk_length", [None, 10**6])
def test_random_walk_subgraph_interleaved_batch_and_shuffled_edges(walk_length: int | None) -> None:
    # Nodes of two graphs interleaved, edges in random order: both the compiled
    # search and the step loop keep connected sets of the right size per graph.
    path = [(u, u + 1) for u in range(7)]
    ring = [(u, (u + 1) % 6) for u in range(6)]
    graphs = [(8, path + [(v, u) for u, v in path]), (6, ring + [(v, u) for u, v in ring])]
    batch = to_batch(graphs)
    perm = torch.randperm(batch.num_nodes, generator=gen(0))  # new position -> old node
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(batch.num_nodes)
    edge_index = inverse[batch.edge_index][:, torch.randperm(batch.num_edges, generator=gen(1))]
    x, node_batch = batch.x[perm], batch.batch[perm]
    for seed in range(20):
        out = F.random_walk_subgraph(
            x, edge_index, node_batch, ratio=0.5, walk_length=walk_length, generator=gen(seed)
        )
        kept = perm[out.node_mask]  # original node ids
        for g, (n, edges) in enumerate(graphs):
            local = (kept[batch.batch[kept] == g] - int(batch.ptr[g])).tolist()
            assert len(local) == round(0.5 * n)
            graph = nx.Graph(edges)
            assert nx.is_connected(graph.subgraph(local))


def test_random_walk_subgraph_search_through_scipy_public_api_gives_the_same_subgraphs(monkeypatch) -> None:
    # The compiled search is called directly where SciPy has it; the public
    # breadth_first_order (other SciPy layouts) must find the same levels. PROTEINS
    # graphs with several components restart, so several searches run per call.
    from torch_geometric.data import Data

    from gcl.data import load_dataset

    proteins = load_dataset("PROTEINS")
    # and a directed graph: a search from node 3 of 0 -> 1 -> ... -> 9 reaches 4 .. 9 only
    chain = Data(x=torch.zeros(10, proteins.num_features), y=proteins[0].y,
                 edge_index=torch.stack([torch.arange(9), torch.arange(1, 10)]))
    batch = Batch.from_data_list([proteins[i] for i in (5, 6, 20, 87, 149, 154, 0, 1)] + [chain])
    args = (batch.x, batch.edge_index, batch.batch)

    def subgraphs() -> list[torch.Tensor]:
        return [F.random_walk_subgraph(*args, ratio=0.9, generator=gen(seed)).node_mask for seed in range(10)]

    direct = subgraphs()
    original = F._BreadthFirstSearch.__init__

    def public_only(self, size: int) -> None:  # type: ignore[no-untyped-def]
        original(self, size)
        self.kernel = None
    monkeypatch.setattr(F._BreadthFirstSearch, "__init__", public_only)
    for a, b in zip(direct, subgraphs()):
        assert torch.equal(a, b)


def test_random_walk_subgraph_walk_length_limits_hops() -> None:
    n = 20
    path = [(u, u + 1) for u in range(n - 1)]
    batch = to_batch([(n, path + [(v, u) for u, v in path])])
    out = F.random_walk_subgraph(
        batch.x, batch.edge_index, batch.batch, ratio=1.0 - 1e-9, walk_length=2, generator=gen(0)
    )
    kept = out.node_mask.nonzero().view(-1)
    assert kept.numel() <= 5 and int(kept.max() - kept.min()) == kept.numel() - 1


def test_random_walk_subgraph_graphcl_reference_is_one_hop() -> None:
    star = [(0, v) for v in range(1, 9)] + [(8, 9)]
    batch = to_batch([(10, star + [(v, u) for u, v in star])])
    for seed in range(20):
        out = F.random_walk_subgraph(
            batch.x,
            batch.edge_index,
            batch.batch,
            ratio=0.2,
            generator=gen(seed),
            graphcl_reference=True,
        )
        kept = set(out.node_mask.nonzero().view(-1).tolist())
        assert len(kept) <= math.floor(0.2 * 10) + 1
        # Some kept node (the seed) is adjacent to all other kept nodes.
        neighbours = {
            u: {v for a, v in star + [(v, u) for u, v in star] if a == u} for u in range(10)
        }
        assert any(kept - {s} <= neighbours[s] for s in kept)


def _pair_and_path() -> Batch:
    """One graph of 12 nodes: the pair 0-1 and the path 2-3-...-11 (6 nodes wanted at ratio 0.5)."""
    edges = [(0, 1)] + [(u, u + 1) for u in range(2, 11)]
    return to_batch([(12, edges + [(v, u) for u, v in edges])])


def test_random_walk_subgraph_restarts_at_the_step_a_component_runs_out() -> None:
    # Seeded in the pair, the graph takes the pair's other node at step 1, runs out at
    # step 2 and is re-seeded at that step on the path, which it grows along from step 3:
    # walk_length=2 keeps the pair and the new seed, 3 one or two more path nodes (the
    # seed at an end of the path or not), 5 and 8 reach the 6 nodes wanted.
    batch = _pair_and_path()
    generator = gen(0)
    sizes: dict[int, set[int]] = {2: set(), 3: set(), 5: set(), 8: set()}
    for _ in range(300):
        for walk_length, seen in sizes.items():
            out = F.random_walk_subgraph(
                batch.x, batch.edge_index, batch.batch, ratio=0.5, walk_length=walk_length, generator=generator
            )
            kept = out.node_mask.nonzero().view(-1).tolist()
            if kept[:2] == [0, 1]:
                seen.add(len(kept))
                path = kept[2:]
                assert path == list(range(path[0], path[0] + len(path)))  # one run of the path
    assert sizes == {2: {3}, 3: {4, 5}, 5: {6}, 8: {6}}


@pytest.mark.parametrize("expansion", [1.0, 0.5])
def test_random_walk_subgraph_does_not_depend_on_steps_between_checks(monkeypatch, mutag, expansion) -> None:
    # How many steps run between two progress checks is an implementation detail: with a
    # walk_length (every step counts) the draws are the same and so is every output.
    batches = [_pair_and_path(), Batch.from_data_list([mutag[i] for i in range(40)])]
    batches.append(to_batch([(9, [(0, 1), (1, 0), (2, 3), (3, 2)]), (5, []), (7, [(u, u + 1) for u in range(6)])]))
    for batch in batches:
        for walk_length in (1, 2, 3, 5, 8, 10**6):
            for restart in (True, False):
                outputs = []
                for steps in (1, 3, 4):
                    monkeypatch.setattr(F, "_STEPS_PER_CHECK", steps)
                    outputs.append(torch.stack([
                        F.random_walk_subgraph(
                            batch.x, batch.edge_index, batch.batch, ratio=0.5, walk_length=walk_length,
                            expansion=expansion, restart=restart, generator=gen(seed),
                        ).node_mask
                        for seed in range(20)
                    ]))
                assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2]), \
                    (walk_length, restart)


def test_random_walk_subgraph_without_walk_length_does_not_depend_on_steps_between_checks(monkeypatch) -> None:
    # No walk_length (the step loop runs for expansion < 1): a restart found at a later check
    # shifts the step numbers of the graph's later nodes, not their order, so the kept sets
    # are drawn alike whatever the number of steps between two checks.
    batch = _pair_and_path()
    draws = 2000

    def frequencies(steps: int) -> torch.Tensor:
        monkeypatch.setattr(F, "_STEPS_PER_CHECK", steps)
        generator = gen(steps)
        kept = torch.stack([
            F.random_walk_subgraph(
                batch.x, batch.edge_index, batch.batch, ratio=0.5, expansion=0.5, generator=generator
            ).node_mask
            for _ in range(draws)
        ])
        assert bool((kept.sum(1) == 6).all())  # the restarts always reach the 6 nodes wanted
        return kept.float().mean(0)  # every node's keep frequency

    every_step, every_fourth = frequencies(1), frequencies(4)
    assert torch.allclose(every_step, every_fourth, atol=0.06), (every_step, every_fourth)


# --------------------------------------------------------------------------- shared behaviour
ALL = [
    (
        "drop_nodes",
        lambda b, g: F.drop_nodes(
            b.x, b.edge_index, b.batch, p=0.3, edge_attr=b.edge_attr, generator=g
        ),
    ),
    (
        "drop_nodes_b",
        lambda b, g: F.drop_nodes(b.x, b.edge_index, b.batch, p=0.3, mode="bernoulli", generator=g),
    ),
    (
        "perturb_edges",
        lambda b, g: F.perturb_edges(
            b.x, b.edge_index, b.batch, p=0.3, edge_attr=b.edge_attr, generator=g
        ),
    ),
    (
        "perturb_edges_b",
        lambda b, g: F.perturb_edges(
            b.x, b.edge_index, b.batch, p=0.3, sampling="bernoulli", generator=g
        ),
    ),
    ("drop_edges", lambda b, g: F.drop_edges(b.x, b.edge_index, b.batch, p=0.3, generator=g)),
    (
        "subgraph",
        lambda b, g: F.random_walk_subgraph(b.x, b.edge_index, b.batch, ratio=0.7, generator=g),
    ),
    (
        "subgraph_half",
        lambda b, g: F.random_walk_subgraph(
            b.x, b.edge_index, b.batch, ratio=0.7, expansion=0.5, generator=g
        ),
    ),
    ("mask_node", lambda b, g: F.mask_features(b.x, 0.3, batch=b.batch, generator=g)),
    (
        "mask_dim",
        lambda b, g: F.mask_features(
            b.x, 0.3, mode="dim", batch=b.batch, per_graph=True, generator=g
        ),
    ),
]


@pytest.mark.parametrize("name,fn", ALL, ids=[name for name, _ in ALL])
def test_determinism_under_fixed_generator(name, fn, mutag) -> None:
    batch = Batch.from_data_list([mutag[i] for i in range(16)])
    first, second, other = fn(batch, gen(7)), fn(batch, gen(7)), fn(batch, gen(8))
    for a, b in zip(first, second):
        assert (a is None and b is None) or torch.equal(a, b)
    assert any(
        a is not None and (a.shape != b.shape or not torch.equal(a, b))
        for a, b in zip(first, other)
    )


def _outputs_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, run
) -> tuple[tuple[torch.Tensor | None, ...], tuple[torch.Tensor | None, ...]]:
    """``run()`` with the CPU's NumPy helpers, then with the torch code that runs
    on other devices."""
    fast = tuple(run())
    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", False)
    reference = tuple(run())
    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", True)
    return fast, reference


def _assert_same(first, second) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert (a is None and b is None) or (a.dtype == b.dtype and torch.equal(a, b))


@pytest.mark.parametrize("name,fn", ALL, ids=[name for name, _ in ALL])
def test_numpy_helpers_give_the_torch_result(name, fn, mutag, monkeypatch) -> None:
    batch = Batch.from_data_list([mutag[i] for i in range(32)])
    for seed in range(3):
        _assert_same(*_outputs_on_both_paths(monkeypatch, lambda s=seed: fn(batch, gen(s))))


@settings(max_examples=60, deadline=None)
@given(
    graphs=graph_lists(undirected=None, max_graphs=6, self_loops=True),
    p=st.floats(0.0, 1.0),
    mode=st.sampled_from(["both", "remove", "add"]),
    sampling=st.sampled_from(["fraction", "bernoulli"]),
    force_undirected=st.sampled_from([None, True, False]),
    interleave=st.booleans(),
    sort_edges=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_perturb_edges_numpy_helpers_give_the_torch_result(
    graphs, p, mode, sampling, force_undirected, interleave, sort_edges, seed
) -> None:
    batch = to_batch(graphs)
    x, edge_index, graph = batch.x, batch.edge_index, batch.batch
    if sort_edges:
        # Edges sorted by source, as collated PyG batches store them: the path that
        # finds each graph's edges by binary search.
        edge_index = edge_index[:, torch.sort(edge_index[0], stable=True).indices]
    if interleave and x.size(0) > 1:
        # Nodes of different graphs interleaved: the unsorted-batch paths.
        order = torch.randperm(x.size(0), generator=gen(seed))
        x, graph = x[order], graph[order]
        edge_index = torch.argsort(order)[edge_index]

    def run() -> F.Augmented:
        return F.perturb_edges(
            x,
            edge_index,
            graph,
            p=p,
            mode=mode,
            sampling=sampling,
            force_undirected=force_undirected,
            generator=gen(seed),
        )

    with pytest.MonkeyPatch.context() as monkeypatch:
        _assert_same(*_outputs_on_both_paths(monkeypatch, run))


def test_perturb_edges_numpy_helpers_on_a_graph_without_units(monkeypatch) -> None:
    # force_undirected on directed graphs: the second graph stores its only edge
    # backwards, so it has no unit (u <= v) to sample, and keeps its edge.
    batch = to_batch([(3, [(0, 1), (1, 2), (0, 2)]), (2, [(1, 0)])])

    def run() -> F.Augmented:
        return F.perturb_edges(
            batch.x,
            batch.edge_index,
            batch.batch,
            p=0.5,
            mode="remove",
            force_undirected=True,
            generator=gen(0),
        )

    fast, reference = _outputs_on_both_paths(monkeypatch, run)
    _assert_same(fast, reference)
    edge_mask = fast[5]
    assert int(edge_mask[:3].sum()) == 1 and bool(edge_mask[3])


def test_new_edges_numpy_helpers_on_a_graph_beyond_float32_integers(monkeypatch) -> None:
    # Above 2**24 nodes float32 no longer holds every integer: the candidate draws scale
    # 32-bit integers exactly, the same on both paths.
    num_nodes = 2**24 + 3
    sizes, wanted = torch.tensor([num_nodes]), torch.tensor([500])
    no_edges = torch.empty(0, dtype=torch.long)

    def run() -> tuple[torch.Tensor]:
        if _utils.NUMPY_ON_CPU:
            host = F._sample_new_edges_host(
                wanted.numpy(), sizes.numpy(), None, no_edges.numpy(), _utils.HostGroups.from_bounds(np.zeros(2, dtype=np.int64)),
                np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), False, 5,
            )
            return (torch.from_numpy(np.stack(host)),)
        zero = torch.zeros(1, dtype=torch.long)
        return (F._sample_new_edges(wanted, sizes, None, num_nodes, no_edges, no_edges, zero, zero, False, 5),)

    fast, reference = _outputs_on_both_paths(monkeypatch, run)
    _assert_same(fast, reference)
    assert fast[0].size(1) == 500


def test_zero_probability_returns_input_tensors() -> None:
    batch = to_batch([(4, [(0, 1), (1, 0)]), (3, [(1, 2), (2, 1)])])
    args = (batch.x, batch.edge_index, batch.batch)
    for out in (
        F.drop_nodes(*args, p=0.0, edge_attr=batch.edge_attr),
        F.perturb_edges(*args, p=0.0, edge_attr=batch.edge_attr),
        F.drop_edges(*args, p=0.0, edge_attr=batch.edge_attr),
        F.random_walk_subgraph(*args, ratio=1.0, edge_attr=batch.edge_attr),
    ):
        assert out.x is batch.x and out.edge_index is batch.edge_index
        assert out.batch is batch.batch and out.edge_attr is batch.edge_attr
        assert bool(out.edge_mask.all())
    for mode in ("node", "dim"):
        assert F.mask_features(batch.x, 0.0, mode=mode).x is batch.x


@pytest.mark.parametrize(
    "fn",
    [
        lambda x, e, b: F.drop_nodes(x, e, b, p=0.5),
        lambda x, e, b: F.drop_nodes(x, e, b, p=0.5, mode="bernoulli"),
        lambda x, e, b: F.perturb_edges(x, e, b, p=0.5),
        lambda x, e, b: F.perturb_edges(x, e, b, p=0.5, mode="add"),
        lambda x, e, b: F.drop_edges(x, e, b, p=1.0),
        lambda x, e, b: F.random_walk_subgraph(x, e, b, ratio=0.5),
    ],
)
def test_degenerate_graphs_do_not_crash(fn) -> None:
    empty_edges = torch.empty(2, 0, dtype=torch.long)
    cases = [
        (torch.randn(1, 2), empty_edges, None),  # one node
        (torch.randn(5, 2), empty_edges, torch.tensor([0, 0, 1, 1, 1])),  # no edges
        (torch.randn(0, 2), empty_edges, torch.empty(0, dtype=torch.long)),  # no nodes
    ]
    for x, e, b in cases:
        out = fn(x, e, b)
        assert out.x.size(0) <= x.size(0)
        assert out.edge_index.size(0) == 2


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"p": 1.5}, r"p must be in \[0, 1\] \(got 1.5\)"),
        ({"p": -0.1}, r"got -0.1"),
        ({"p": float("nan")}, r"got nan"),
        ({"edge_index": torch.tensor([[0, 1], [1, 5]])}, r"got indices from 0 to 5"),
        ({"edge_index": torch.tensor([[0, -1], [1, 0]])}, r"got indices from -1 to 1"),
        (
            {"edge_index": torch.tensor([[0, -1], [1, 0]], dtype=torch.int32)},
            r"got indices from -1 to 1",
        ),
        ({"edge_index": torch.tensor([[0, 1], [1, 3]], dtype=torch.int16)}, r"from 0 to 3"),
        ({"batch": torch.tensor([0, -1, 0])}, r"graph indices >= 0 \(got values from -1 to 0\)"),
        (
            {"edge_index": torch.tensor([[0.0, 1.0], [1.0, 0.0]])},
            r"must hold integers \(got dtype torch.float32\)",
        ),
        ({"edge_index": torch.tensor([0, 1])}, r"shape \[2, num_edges\] \(got \[2\]\)"),
        ({"batch": torch.tensor([0, 0])}, r"one entry per node of x \(3\) \(got shape \[2\]\)"),
        ({"batch": torch.tensor([0.0, 0.0, 1.0])}, r"batch must hold integers"),
        ({"edge_attr": torch.ones(5, 1)}, r"one row per edge \(2\) \(got 5\)"),
    ],
)
def test_bad_input_raises_value_error(kwargs, message) -> None:
    args = {
        "x": torch.randn(3, 2),
        "edge_index": torch.tensor([[0, 1], [1, 2]]),
        "batch": torch.tensor([0, 0, 1]),
        "p": 0.2,
    }
    args.update(kwargs)
    for fn in (F.drop_nodes, F.perturb_edges, F.drop_edges):
        with pytest.raises(ValueError, match=message):
            fn(
                args["x"],
                args["edge_index"],
                args["batch"],
                p=args["p"],
                edge_attr=args.get("edge_attr"),
            )


def test_bad_choices_and_ratios() -> None:
    x, e = torch.randn(3, 2), torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="mode must be one of"):
        F.drop_nodes(x, e, mode="random")
    with pytest.raises(ValueError, match=r"ratio must be in \[0, 1\] \(got 2.0\)"):
        F.random_walk_subgraph(x, e, ratio=2.0)
    with pytest.raises(ValueError, match=r"expansion must be in \(0, 1\] \(got 0.0\)"):
        F.random_walk_subgraph(x, e, expansion=0.0)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\] \(got 3\)"):
        F.mask_features(x, 3)
    with pytest.raises(ValueError, match="batch must have one entry"):
        F.mask_features(x, 0.5, batch=torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"walk_length must be a non-negative integer or None \(got -0.5\)"):
        F.random_walk_subgraph(x, e, walk_length=-0.5)  # was truncated to 0 hops
    with pytest.raises(ValueError, match=r"noise_mean must be a finite number \(got nan\)"):
        F.mask_features(x, 0.5, noise_mean=float("nan"))


@pytest.mark.parametrize("numpy_on_cpu", [True, False])
def test_perturb_edges_adds_every_free_pair_equally_often(numpy_on_cpu, monkeypatch) -> None:
    """Added edges are uniform over the node pairs a graph does not have, in every graph of
    a batch: two 6-node paths (10 free pairs each), 2 new edges per graph and call."""
    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", numpy_on_cpu)
    path = [(u, u + 1) for u in range(5)]
    batch = to_batch([(6, path + [(v, u) for u, v in path])] * 2)
    counts: dict[tuple[int, int], int] = {}
    runs = 3000
    for seed in range(runs):
        out = F.perturb_edges(
            batch.x, batch.edge_index, batch.batch, p=0.4, mode="add", generator=gen(seed)
        )
        added = out.edge_index[:, batch.edge_index.size(1) :]
        for u, v in added.t().tolist():
            if u < v:
                counts[(u, v)] = counts.get((u, v), 0) + 1
    free = [(g * 6 + u, g * 6 + v) for g in range(2) for u in range(6) for v in range(u + 2, 6)]
    assert sorted(counts) == sorted(free)
    expected = runs * 2 / 10
    spread = (expected * (1 - 2 / 10)) ** 0.5
    assert all(abs(count - expected) < 5 * spread for count in counts.values()), counts


def test_perturb_edges_bernoulli_add_rate() -> None:
    ring = [(u, (u + 1) % 40) for u in range(40)]
    graphs = [(40, ring + [(v, u) for u, v in ring])] * 25
    batch = to_batch(graphs)
    p = 0.3
    out = F.perturb_edges(
        batch.x,
        batch.edge_index,
        batch.batch,
        p=p,
        mode="add",
        sampling="bernoulli",
        generator=gen(5),
    )
    assert bool(out.edge_mask.all()) and is_symmetric(out.edge_index)
    added = (out.edge_index.size(1) - batch.edge_index.size(1)) // 2
    units = 40 * 25
    assert abs(added - p * units) < 4 * (units * p * (1 - p)) ** 0.5


def test_random_subset_exact_counts_and_uniform_subsets() -> None:
    """Exactly chosen[g] items per group, and every subset of that size equally likely:
    over 6,000 draws each of the 6 two-element subsets of a 4-item group has frequency
    1/6 (within 5 binomial standard deviations), as do the single items of a 3-item group."""
    group = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2])
    counts, chosen = torch.tensor([4, 3, 2]), torch.tensor([2, 1, 0])
    gen = torch.Generator().manual_seed(0)
    draws = 6000
    pairs: dict[tuple[int, ...], int] = {}
    singles = torch.zeros(3)
    for _ in range(draws):
        mask = random_subset(group, counts, chosen, gen)
        assert torch.equal(torch.bincount(group[mask], minlength=3), chosen)
        key = tuple(mask[:4].nonzero().view(-1).tolist())
        pairs[key] = pairs.get(key, 0) + 1
        singles += mask[4:7].float()
    tolerance = 5 * math.sqrt(draws * (1 / 6) * (5 / 6))
    assert len(pairs) == 6 and all(abs(c - draws / 6) < tolerance for c in pairs.values()), pairs
    assert all(abs(float(c) - draws / 3) < 5 * math.sqrt(draws * 2 / 9) for c in singles), singles


@pytest.mark.parametrize("chosen", [10, 1])
@pytest.mark.parametrize("numpy_on_cpu", [True, False])
def test_random_subset_on_many_groups(chosen: int, numpy_on_cpu: bool, monkeypatch) -> None:
    """5,000 groups of 50 items. The torch code: choosing 10 sorts only the items below the
    threshold; choosing 1, some group has no item below it and every item is sorted. The CPU's
    bucket selection: many groups, one histogram. Either way the counts are exact and every
    position is chosen with probability chosen / 50."""
    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", numpy_on_cpu)
    group = torch.arange(5000).repeat_interleave(50)
    counts, wanted = torch.full((5000,), 50), torch.full((5000,), chosen)
    gen = torch.Generator().manual_seed(1)
    hits = torch.zeros(50)
    for _ in range(20):
        mask = random_subset(group, counts, wanted, gen)
        assert torch.equal(torch.bincount(group[mask], minlength=5000), wanted)
        hits += mask.view(5000, 50).sum(0).float()
    expected = 20 * 5000 * chosen / 50
    assert bool(((hits - expected).abs() < 5 * math.sqrt(expected)).all())


@pytest.mark.parametrize("layout", ["shuffled", "grouped", "bounds"])
@pytest.mark.parametrize("bits", [32, 53])
@pytest.mark.parametrize("num_groups", [7, 1500])
def test_smallest_per_group_host_against_sorting(bits: int, num_groups: int, layout: str) -> None:
    """The bucket selection's cut against a per-group sort: exactly chosen[g] keys of every
    group below it, and they are the smallest; 53-bit keys in more than 1,024 groups take the
    lexicographic sort. Groups that keep none, some or all of their keys, and empty groups;
    items in any order, grouped, or grouped and given by their group bounds only."""
    rng = np.random.default_rng(bits + num_groups)
    counts = rng.integers(0, 40, num_groups)
    group = np.repeat(np.arange(num_groups), counts)
    if layout == "shuffled":
        group = rng.permutation(group)
    # distinct keys; a few tiny ones so that several land in the same bucket
    key = rng.choice(2**bits, size=group.size, replace=False).astype(np.int64)
    key[: group.size // 10] //= 2**20
    chosen = np.minimum(rng.integers(0, 45, num_groups), counts)
    chosen[:3] = counts[:3]
    if layout == "bounds":
        groups = _utils.HostGroups.from_bounds(np.concatenate([[0], np.cumsum(counts)]))
    else:
        groups = _utils.HostGroups(group, num_groups)
    assert groups.grouped == (layout != "shuffled")
    assert np.array_equal(groups.counts, counts)
    assert np.array_equal(groups.group, group)
    assert np.array_equal(groups.spread(np.arange(num_groups) * 3), group * 3)
    cut = _utils.smallest_per_group_host(key, groups, chosen, bits)
    if bits == 32:  # the 32-bit lanes of uint32 keys give the same cut
        assert np.array_equal(_utils.smallest_per_group_host(key.astype(np.uint32), groups, chosen, 32), cut)
    below = key < cut[group]
    assert np.array_equal(np.bincount(group[below], minlength=num_groups), chosen)
    for g in range(min(num_groups, 50)):
        keys = np.sort(key[group == g])
        assert np.array_equal(np.sort(key[(group == g) & below]), keys[: chosen[g]])


def test_host_groups_subsets_and_lookups() -> None:
    """A subset of grouped items stays grouped; ``select`` answers from the bounds alone."""
    rng = np.random.default_rng(0)
    counts = np.array([3, 0, 5, 1, 0, 4])
    group = np.repeat(np.arange(6), counts)
    index = np.flatnonzero(rng.random(group.size) < 0.5)
    for groups in (
        _utils.HostGroups(group, 6),
        _utils.HostGroups.from_bounds(np.concatenate([[0], np.cumsum(counts)])),
        _utils.HostGroups(rng.permutation(group), 6),
    ):
        sub = groups.subset(index)
        assert np.array_equal(sub.group, groups.group[index])
        assert np.array_equal(sub.counts, np.bincount(groups.group[index], minlength=6))
        assert np.array_equal(groups.select(index), groups.group[index])
    # num_groups=None: as many groups as the largest index says.
    assert _utils.HostGroups(np.array([0, 0, 2]), None).counts.tolist() == [2, 0, 1]
    assert _utils.HostGroups(np.array([2, 0, 0]), None).counts.tolist() == [2, 0, 1]


@pytest.mark.parametrize("numpy_on_cpu", [True, False])
def test_pair_and_counter_hashes_match_their_formula(numpy_on_cpu, monkeypatch) -> None:
    """pair_hash is (a K1 + b K2 + seed) mod 2**32 and MurmurHash3's finaliser, on both paths
    (the host's 32-bit lanes included, also for ids beyond 2**32); counter_hash is the pair hash
    of (i, 2**31)."""
    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", numpy_on_cpu)

    def reference(a: int, b: int, seed: int) -> int:
        z = (a * 0x9E3779B1 + b * 0x85EBCA77 + seed) % 2**32
        z ^= z >> 16
        z = (z * 0x85EBCA6B) % 2**32
        z ^= z >> 13
        z = (z * 0xC2B2AE35) % 2**32
        return z ^ (z >> 16)

    a = [0, 1, 7, 12345, 2**31 - 1, 2**31 + 5, 2**32 + 7, 3 * 2**33 + 11]
    b = [0, 2, 7, 54321, 1, 2**31 - 3, 9, 2**32 - 1]
    for seed in (0, 3, 2**31 - 2):
        got = _utils.pair_hash(torch.tensor(a), torch.tensor(b), seed)
        assert got.dtype == torch.long
        assert got.tolist() == [reference(x, y, seed) for x, y in zip(a, b)]
        unordered = _utils.unordered_pair_hash(torch.tensor(b), torch.tensor(a), seed)
        assert unordered.tolist() == [reference(min(x, y), max(x, y), seed) for x, y in zip(a, b)]
        counters = _utils.counter_hash(50, seed, torch.device("cpu"))
        assert counters.tolist() == [reference(i, 2**31, seed) for i in range(50)]


@pytest.mark.parametrize("numpy_on_cpu", [True, False])
@pytest.mark.parametrize("offset", [(22445, -5373), (1555, 63122), (1, 0), (0, 1), (3, 3)])
def test_pair_hash_decisions_of_two_edges_are_independent(numpy_on_cpu, offset, monkeypatch) -> None:
    """Edges (u, v) and (u + du, v + dv) are both below a threshold of probability 0.2 with
    probability 0.04 (independence); with half of the finaliser the first two offsets gave
    0.115 and 0.003."""
    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", numpy_on_cpu)
    g = gen(0)
    u = torch.randint(0, 40_000, (100_000,), generator=g)
    v = torch.randint(6_000, 60_000, (100_000,), generator=g)
    threshold = int(0.2 * 2**32)
    for seed in (12345, 987654321):
        first = _utils.pair_hash(u, v, seed) < threshold
        second = _utils.pair_hash(u + offset[0], v + offset[1], seed) < threshold
        assert abs(float(first.double().mean()) - 0.2) < 0.005
        assert abs(float((first & second).double().mean()) - 0.04) < 0.003


@pytest.mark.parametrize("p", [0.04, 0.3])
def test_forced_undirected_directed_graph_gives_the_same_edges_on_both_paths(p, monkeypatch) -> None:
    """force_undirected=True on edges without their reverse: the stored edges that are not units
    are decided by the same cut on both paths (the unit ranked r_g, not a sampling threshold)."""
    src = list(range(30)) + list(range(32, 62))
    dst = list(range(1, 31)) + list(range(31, 61))
    edge_index = torch.tensor([src, dst])  # 30 edges u < v, 30 edges u > v, none with its reverse

    def run(seed: int) -> F.Augmented:
        return F.perturb_edges(
            torch.zeros(62, 1), edge_index, p=p, mode="remove", force_undirected=True, generator=gen(seed)
        )

    for seed in [*range(300), 637]:  # 637: a seed where a threshold cut used to differ
        _assert_same(*_outputs_on_both_paths(monkeypatch, lambda s=seed: run(s)))


@pytest.mark.parametrize("numpy_on_cpu", [True, False])
def test_added_edges_in_a_graph_of_almost_two_to_the_31_nodes(numpy_on_cpu, monkeypatch) -> None:
    """Candidate pairs are (h * n) >> 32 of 32-bit hashes: valid ids up to 2**31 - 1 nodes,
    and a clear error beyond (a feature matrix with no columns costs no memory here)."""
    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", numpy_on_cpu)
    n = 2**31 - 1
    out = F.perturb_edges(torch.empty(n, 0), torch.tensor([[0, 5], [1, 6]]), p=1.0, mode="add", generator=gen(0))
    assert out.edge_index.size(1) == 4
    assert int(out.edge_index.min()) >= 0 and int(out.edge_index.max()) < n
    with pytest.raises(ValueError, match=r"fewer than 2\*\*31 nodes \(got one of 2147483648\)"):
        F.perturb_edges(torch.empty(2**31, 0), torch.tensor([[0], [1]]), p=1.0, mode="add")


def test_added_edges_count_every_stored_copy_of_an_edge_as_an_occupied_pair() -> None:
    """Documented: the free pairs are the node pairs less the stored edges, copies included, so a
    multigraph may get fewer added edges than promised; coalesced, it gets the exact count."""
    from torch_geometric.utils import coalesce

    x = torch.zeros(4, 1)
    multigraph = torch.tensor([[0] * 10 + [1, 2], [1] * 10 + [2, 3]])  # 12 ordered pairs, 9 free
    simple = coalesce(multigraph, num_nodes=4)
    assert simple.tolist() == [[0, 1, 2], [1, 2, 3]]
    for seed in range(10):
        out = F.perturb_edges(x, multigraph, p=0.5, mode="add", generator=gen(seed))
        added = out.edge_index[:, multigraph.size(1):]
        # round(0.5 * 12) = 6 wanted, 12 - 12 = 0 pairs counted free
        assert added.size(1) == 0
        out = F.perturb_edges(x, simple, p=1.0, mode="add", generator=gen(seed))
        added = out.edge_index[:, simple.size(1):]
        assert added.size(1) == 3  # round(1.0 * 3), with 9 free pairs >= 2 * 3
        pairs = {tuple(edge) for edge in out.edge_index.t().tolist()}
        assert len(pairs) == 6 and not any(u == v for u, v in pairs)


def test_copies_of_an_edge_share_their_decision() -> None:
    """A multigraph's copies of one edge hash alike and are removed together (documented: the
    count is then exact up to such ties)."""
    edge_index = torch.tensor([[0, 0, 1, 2], [1, 1, 2, 3]])
    for seed in range(50):
        out = F.perturb_edges(
            torch.zeros(4, 1), edge_index, p=0.5, mode="remove", force_undirected=False, generator=gen(seed)
        )
        assert bool(out.edge_mask[0]) == bool(out.edge_mask[1])


# --------------------------------------------------------------------------- graphs=: a choice of graphs
def _per_graph_edges(edge_index: torch.Tensor, batch: torch.Tensor, ptr: torch.Tensor, g: int) -> set:
    mask = batch[edge_index[0]] == g
    return {(int(u) - int(ptr[g]), int(v) - int(ptr[g])) for u, v in edge_index[:, mask].t()}


@pytest.mark.parametrize("numpy_on_cpu", [True, False])
@pytest.mark.parametrize("kind", ["drop_nodes", "drop_nodes_bernoulli", "subgraph", "perturb_edges",
                                  "perturb_edges_bernoulli", "perturb_edges_add", "mask_features", "mask_dims"])
def test_graphs_not_chosen_pass_unchanged_and_the_chosen_as_usual(kind, numpy_on_cpu, monkeypatch, proteins) -> None:
    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", numpy_on_cpu)
    batch = Batch.from_data_list(list(proteins[:64]))
    sizes = torch.bincount(batch.batch)
    chosen = torch.arange(64) % 3 == 0
    x, edge_index, graph = batch.x, batch.edge_index, batch.batch
    calls = {
        "drop_nodes": lambda **kw: F.drop_nodes(x, edge_index, graph, p=0.3, **kw),
        "drop_nodes_bernoulli": lambda **kw: F.drop_nodes(x, edge_index, graph, p=0.3, mode="bernoulli", **kw),
        "subgraph": lambda **kw: F.random_walk_subgraph(x, edge_index, graph, ratio=0.6, **kw),
        "perturb_edges": lambda **kw: F.perturb_edges(x, edge_index, graph, p=0.3, **kw),
        "perturb_edges_bernoulli": lambda **kw: F.perturb_edges(x, edge_index, graph, p=0.3,
                                                                sampling="bernoulli", **kw),
        "perturb_edges_add": lambda **kw: F.perturb_edges(x, edge_index, graph, p=0.3, mode="add", **kw),
        "mask_features": lambda **kw: F.mask_features(x, 0.3, batch=graph, fill="zero", **kw),
        "mask_dims": lambda **kw: F.mask_features(x, 0.5, mode="dim", per_graph=True, batch=graph, fill="zero",
                                                  **kw),
    }
    for seed in range(3):
        out = calls[kind](graphs=chosen, generator=gen(seed))
        if kind.startswith("mask"):
            rows_chosen = chosen[graph]
            assert torch.equal(out.x[~rows_chosen], x[~rows_chosen])  # the others: untouched
            assert not torch.equal(out.x[rows_chosen], x[rows_chosen])
            if kind == "mask_features":
                masked = torch.bincount(graph[out.mask], minlength=64)
                expected = torch.tensor([round(0.3 * int(n)) for n in sizes]) * chosen
                assert torch.equal(masked, expected)
            continue
        if kind.startswith(("drop_nodes", "subgraph")):
            kept = torch.bincount(out.batch, minlength=64)
            assert torch.equal(kept[~chosen], sizes[~chosen])
            if kind != "drop_nodes_bernoulli":
                expected = (sizes - torch.tensor([min(round(0.3 * int(n)), int(n) - 1) for n in sizes])
                            if kind == "drop_nodes" else torch.tensor([max(1, round(0.6 * int(n))) for n in sizes]))
                assert torch.equal(kept[chosen], expected[chosen])
            else:
                assert int(kept[chosen].sum()) < int(sizes[chosen].sum())
            continue
        out_ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(graph, minlength=64).cumsum(0)])
        changed = [_per_graph_edges(out.edge_index, graph, out_ptr, g) != _per_graph_edges(
            edge_index, graph, batch.ptr, g) for g in range(64)]
        assert not any(c for c, pick in zip(changed, chosen.tolist(), strict=True) if not pick)
        assert sum(changed) >= int(chosen.sum()) - 2  # (a graph may lose and regain the same edges)


def test_graphs_must_name_every_graph_of_the_batch(proteins) -> None:
    batch = Batch.from_data_list(list(proteins[:4]))
    with pytest.raises(ValueError, match=r"graphs must be a bool tensor with one entry per graph \(4\)"):
        F.drop_nodes(batch.x, batch.edge_index, batch.batch, graphs=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"torch.int64 of shape \(4,\)"):
        F.random_walk_subgraph(batch.x, batch.edge_index, batch.batch, graphs=torch.ones(4, dtype=torch.long))
    with pytest.raises(ValueError, match="needs per_graph=True"):
        F.mask_features(batch.x, 0.3, mode="dim", batch=batch.batch, graphs=torch.ones(4, dtype=torch.bool))


# --------------------------------------------------------------------------- index dtypes
def _structural_functions() -> list[tuple[str, object]]:
    from gcl.augment import adaptive as A

    return [
        ("drop_nodes", lambda *a, g: F.drop_nodes(*a, p=0.3, generator=g)),
        ("drop_nodes-bernoulli", lambda *a, g: F.drop_nodes(*a, p=0.3, mode="bernoulli", generator=g)),
        ("drop_nodes-isolate", lambda *a, g: F.drop_nodes(*a, p=0.3, isolate=True, generator=g)),
        ("drop_nodes-p0", lambda *a, g: F.drop_nodes(*a, p=0.0, generator=g)),
        ("perturb_edges", lambda *a, g: F.perturb_edges(*a, p=0.3, generator=g)),
        ("perturb_edges-add", lambda *a, g: F.perturb_edges(*a, p=0.3, mode="add", generator=g)),
        ("perturb_edges-bernoulli", lambda *a, g: F.perturb_edges(*a, p=0.3, sampling="bernoulli", generator=g)),
        ("perturb_edges-p0", lambda *a, g: F.perturb_edges(*a, p=0.0, generator=g)),
        ("drop_edges", lambda *a, g: F.drop_edges(*a, p=0.3, generator=g)),
        ("drop_edges-fraction", lambda *a, g: F.drop_edges(*a, p=0.3, sampling="fraction", generator=g)),
        ("drop_edges-directed", lambda *a, g: F.drop_edges(*a, p=0.3, force_undirected=False, generator=g)),
        ("random_walk_subgraph", lambda *a, g: F.random_walk_subgraph(*a, ratio=0.6, generator=g)),
        ("random_walk_subgraph-steps", lambda *a, g: F.random_walk_subgraph(*a, ratio=0.6, walk_length=3,
                                                                            expansion=0.7, generator=g)),
        ("random_walk_subgraph-ratio1", lambda *a, g: F.random_walk_subgraph(*a, ratio=1.0, generator=g)),
        ("adaptive_drop_edges", lambda *a, g: A.adaptive_drop_edges(*a, p=0.3, generator=g)),
        ("adaptive_drop_edges-undirected", lambda *a, g: A.adaptive_drop_edges(
            *a, p=0.3, centrality="pagerank", aggr="mean", force_undirected=True, generator=g)),
        ("adaptive_drop_edges-p0", lambda *a, g: A.adaptive_drop_edges(*a, p=0.0, generator=g)),
    ]


@pytest.mark.parametrize("function", [f for _, f in _structural_functions()],
                         ids=[name for name, _ in _structural_functions()])
@pytest.mark.parametrize("numpy_on_cpu", [True, False])
def test_graph_functions_return_edge_index_in_the_input_dtype(function, numpy_on_cpu, mutag, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """int32 in, int32 out (it used to come back int64), with the values of the int64 run
    under the same seed."""
    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", numpy_on_cpu)
    batch = Batch.from_data_list(list(mutag[:16]))
    want = function(batch.x, batch.edge_index, batch.batch, g=gen(0))
    assert want.edge_index.dtype == torch.long
    for dtype in (torch.int32, torch.int16):
        got = function(batch.x, batch.edge_index.to(dtype), batch.batch, g=gen(0))
        assert got.edge_index.dtype == dtype
        assert torch.equal(got.edge_index.long(), want.edge_index)
        for a, b in zip(got, want, strict=True):
            assert (a is None and b is None) or torch.equal(a.long(), b.long())


def test_edge_index_too_narrow_for_the_added_nodes_comes_back_int64() -> None:
    # a uint8 edge_index of 1000 nodes holds ids below 256 only; added edges reach past them
    ring = torch.arange(256)
    edge_index = torch.stack([ring, (ring + 1) % 256]).to(torch.uint8)
    out = F.perturb_edges(torch.zeros(1000, 1), edge_index, p=1.0, mode="add", generator=gen(0))
    assert out.edge_index.dtype == torch.long and int(out.edge_index.max()) >= 256
    assert torch.equal(out.edge_index[:, :256], edge_index.long())
    # fewer nodes kept than uint8 holds: uint8
    out = F.drop_nodes(torch.zeros(300, 1), edge_index, p=0.5, generator=gen(0))
    assert out.edge_index.dtype == torch.uint8


def test_identity_paths_return_the_input_edge_index_in_any_dtype(mutag) -> None:  # type: ignore[no-untyped-def]
    """p=0 (ratio=1) returns the input tensors themselves: an int32 edge_index too (it used to
    come back as an int64 copy)."""
    from gcl.augment import adaptive as A

    batch = Batch.from_data_list(list(mutag[:4]))
    for dtype in (torch.int64, torch.int32):
        edge_index = batch.edge_index.to(dtype)
        args = (batch.x, edge_index, batch.batch)
        for out in (F.drop_nodes(*args, p=0.0), F.perturb_edges(*args, p=0.0), F.drop_edges(*args, p=0.0),
                    F.random_walk_subgraph(*args, ratio=1.0), A.adaptive_drop_edges(*args, p=0.0)):
            assert out.edge_index is edge_index and out.x is batch.x
