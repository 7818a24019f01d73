"""The augmentations and centralities on a CUDA device: same invariants and values as on the CPU.

On CUDA the subgraph views and the centralities take the tensor paths (the CPU uses SciPy), so these
tests are the only ones that run those paths on the device they are written for. Skipped without CUDA.
"""

# Augmented fields are Optional; the tests index them directly.
# mypy: disable-error-code="index,union-attr,arg-type,operator"
from __future__ import annotations

from typing import Any

import networkx as nx
import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.utils import to_networkx

from gcl.augment import adaptive as A
from gcl.augment import centrality as C
from gcl.augment import functional as F
from gcl.augment import transforms as T

from .graphs import to_batch
from .test_functional import ALL, check_masks, check_structure

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


def _random_graphs(count: int, seed: int) -> list[tuple[int, list[tuple[int, int]]]]:
    """Undirected G(n, p) graphs of 1–30 nodes, some edgeless, as ``(n, edges)``."""
    rng = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(count):
        n = int(torch.randint(1, 31, (1,), generator=rng))
        g = nx.gnp_random_graph(n, 0.0 if i % 7 == 3 else 0.25, seed=seed * 1000 + i)
        edges = [(u, v) for u, v in g.edges()]
        graphs.append((n, edges + [(v, u) for u, v in edges]))
    return graphs


def _cuda_gen(seed: int) -> torch.Generator:
    return torch.Generator(device=CUDA).manual_seed(seed)


def _on(device: torch.device, out: Any) -> bool:
    return all(t is None or t.device.type == device.type for t in out)


def _cpu(out: Any) -> Any:
    return type(out)(*(None if t is None else t.cpu() for t in out))


@pytest.mark.parametrize("name,fn", ALL, ids=[name for name, _ in ALL])
def test_augmentations_keep_their_invariants_on_cuda(name: str, fn: Any, subgraph_path: bool) -> None:
    batch = to_batch(_random_graphs(48, seed=1))
    node_removing = name.startswith(("drop_nodes", "subgraph"))
    for seed in range(5):
        out = fn(batch.clone().to(CUDA), _cuda_gen(seed))  # Batch.to moves in place
        assert _on(CUDA, out)
        out = _cpu(out)
        if isinstance(out, F.MaskedFeatures):
            assert out.x.shape == batch.x.shape
            continue
        check_structure(batch, out)
        if node_removing:
            if out.edge_attr is None:  # the op was called without edge_attr: check the rest
                out = out._replace(edge_attr=batch.edge_attr[out.edge_mask])
            check_masks(batch, out)


@pytest.mark.parametrize("name,fn", ALL, ids=[name for name, _ in ALL])
def test_cuda_generator_makes_views_reproducible(name: str, fn: Any) -> None:
    batch = to_batch(_random_graphs(16, seed=2)).to(CUDA)
    first, second = fn(batch, _cuda_gen(3)), fn(batch, _cuda_gen(3))
    for a, b in zip(first, second):
        assert (a is None and b is None) or torch.equal(a, b)


@pytest.fixture(params=[True, False], ids=["host-search", "device-loop"])
def subgraph_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both ways of counting the hops on CUDA: the host's search and the device step loop."""
    monkeypatch.setattr(F, "HOST_SEARCH_OFF_CPU", request.param)
    return bool(request.param)


@pytest.mark.parametrize("ratio", [0.2, 0.5, 0.8])
def test_subgraph_sizes_on_cuda_follow_the_cpu_rule(ratio: float, subgraph_path: bool) -> None:
    """On CUDA (either path) and on the CPU every graph keeps the same number of nodes,
    ``max(1, round(ratio * n))``: the restarts reach it even on disconnected graphs."""
    batch = to_batch(_random_graphs(64, seed=3))
    sizes = []
    for device, gen in ((CUDA, _cuda_gen(0)), (torch.device("cpu"), torch.Generator().manual_seed(0))):
        out = F.random_walk_subgraph(*(t.to(device) for t in (batch.x, batch.edge_index, batch.batch)),
                                     ratio=ratio, generator=gen)
        sizes.append(torch.bincount(out.batch.cpu(), minlength=batch.num_graphs))
    assert torch.equal(sizes[0], sizes[1])


def test_subgraph_kept_node_frequencies_match_cpu_on_a_path(subgraph_path: bool) -> None:
    """On a path of 9 nodes with ratio 1/3 the kept sets are contiguous runs; each node's keep
    frequency over 2,000 draws agrees between CUDA (either path) and the CPU search."""
    n, draws = 9, 2000
    edges = [(i, i + 1) for i in range(n - 1)]
    batch = to_batch([(n, edges + [(v, u) for u, v in edges])] * draws)
    freq = []
    for device, gen in ((CUDA, _cuda_gen(5)), (torch.device("cpu"), torch.Generator().manual_seed(5))):
        out = F.random_walk_subgraph(*(t.to(device) for t in (batch.x, batch.edge_index, batch.batch)),
                                     ratio=1 / 3, generator=gen)
        freq.append(out.node_mask.cpu().view(draws, n).float().mean(0))
    assert torch.allclose(freq[0], freq[1], atol=0.05), freq


def test_centralities_on_cuda_match_networkx_on_proteins(proteins: Any) -> None:
    data_list = [proteins[i] for i in range(0, 1113, 35)]
    batch = Batch.from_data_list(data_list).to(CUDA)
    args = (batch.edge_index, batch.num_nodes, batch.batch)
    values = {
        "pagerank": C.pagerank(*args, num_graphs=batch.num_graphs),
        "eigenvector": C.eigenvector_centrality(*args),
        "degree": C.degree_centrality(*args),
    }
    assert all(v.device.type == "cuda" for v in values.values())
    sizes = torch.bincount(batch.batch).tolist()
    per_graph = {k: v.cpu().double().split(sizes) for k, v in values.items()}
    checked = 0
    for i, data in enumerate(data_list):
        g = to_networkx(data, to_undirected=True)
        n = data.num_nodes

        def as_tensor(d: dict[int, float], n: int = n) -> torch.Tensor:
            return torch.tensor([d[v] for v in range(n)], dtype=torch.float64)

        assert torch.allclose(per_graph["pagerank"][i], as_tensor(nx.pagerank(g)), rtol=1e-4, atol=0)
        assert torch.allclose(per_graph["degree"][i], as_tensor(nx.degree_centrality(g)), rtol=1e-6)
        try:
            expected = as_tensor(nx.eigenvector_centrality(g))
        except nx.PowerIterationFailedConvergence:
            continue
        assert torch.allclose(per_graph["eigenvector"][i], expected, rtol=1e-4, atol=1e-9)
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("kind", ["degree", "pagerank", "eigenvector"])
def test_centralities_and_adaptive_probabilities_equal_the_cpu_values(kind: str) -> None:
    batch = to_batch(_random_graphs(40, seed=4))
    cpu = {}
    for device in ("cpu", "cuda"):
        b = batch.clone().to(device)
        node = C.node_centrality(kind, b.edge_index, b.num_nodes, b.batch)
        edge_p = A.edge_drop_probabilities(b.edge_index, b.num_nodes, b.batch, centrality=kind)
        feat_p = A.feature_mask_probabilities(b.x.abs(), node, b.batch)
        if device == "cpu":
            cpu = {"node": node, "edge": edge_p, "feature": feat_p}
        else:
            for key, value in (("node", node), ("edge", edge_p), ("feature", feat_p)):
                assert value.device.type == "cuda"
                assert torch.allclose(value.cpu(), cpu[key], rtol=1e-5, atol=1e-7), key


def test_adaptive_augmentations_on_cuda() -> None:
    batch = to_batch(_random_graphs(32, seed=6))
    b = batch.clone().to(CUDA)
    for centrality in ("degree", "pagerank", "eigenvector"):
        out = A.adaptive_drop_edges(b.x, b.edge_index, b.batch, centrality=centrality, generator=_cuda_gen(0))
        assert _on(CUDA, out)
        check_structure(batch, _cpu(out))
        masked = A.adaptive_mask_features(b.x, b.edge_index, b.batch, centrality=centrality,
                                          generator=_cuda_gen(0))
        assert masked.x.device.type == "cuda" and masked.x.shape == b.x.shape


def test_transforms_on_a_cuda_batch(mutag: Any) -> None:
    """The PyG transforms (views of a collated batch, stored centralities, GCA's pair) on CUDA."""
    batch = Batch.from_data_list([T.AddCentrality()(mutag[i]) for i in range(32)]).to(CUDA)
    views = T.MultiView([T.DropNodes(0.2, generator=_cuda_gen(0)),
                         T.RandomWalkSubgraph(0.8, generator=_cuda_gen(1))])(batch)
    for view in views:
        assert view.x.device.type == "cuda" and view.num_graphs == 32
        assert int(view.edge_index.max()) < view.num_nodes
    for view in (T.gca_augmentation(generator=_cuda_gen(2))(batch), T.gca_augmentation(centrality="pagerank")(batch)):
        assert view.x.device.type == "cuda" and view.edge_index.device.type == "cuda"


def test_hashes_and_new_edge_candidates_equal_the_cpu_values() -> None:
    """The pair and counter hashes, and the new-edge sampling that draws from them, give the
    host's values on the device (32-bit arithmetic in int64 tensors there, uint32 lanes on the CPU)."""
    from gcl.augment import _utils as U

    rng = torch.Generator().manual_seed(0)
    a = torch.randint(0, 2**40, (5000,), generator=rng)
    b = torch.randint(0, 2**31, (5000,), generator=rng)
    for seed in (0, 12345, 2**31 - 2):
        assert torch.equal(U.pair_hash(a.to(CUDA), b.to(CUDA), seed).cpu(), U.pair_hash(a, b, seed))
        assert torch.equal(U.unordered_pair_hash(b.to(CUDA), a.to(CUDA), seed).cpu(), U.unordered_pair_hash(b, a, seed))
        assert torch.equal(U.counter_hash(777, seed, CUDA).cpu(), U.counter_hash(777, seed, torch.device("cpu")))
    sizes = torch.tensor([1, 2, 5, 40, 300, 0, 17])
    wanted = torch.tensor([0, 1, 3, 20, 150, 0, 60])
    start = torch.cumsum(sizes, 0) - sizes
    u = torch.cat([s + torch.randint(0, max(int(n), 1), (2 * int(n),), generator=rng) for s, n in zip(start, sizes)])
    v = torch.cat([s + torch.randint(0, max(int(n), 1), (2 * int(n),), generator=rng) for s, n in zip(start, sizes)])
    code = U.unordered_pair_hash(u, v, 9)
    units = 2 * sizes  # the codes each graph holds
    code_graph = torch.arange(sizes.numel()).repeat_interleave(units)
    host = F._sample_new_edges_host(wanted.numpy(), sizes.numpy(), None, code.numpy().astype("uint32"),
                                    U.HostGroups(code_graph.numpy(), sizes.numel()), units.numpy(), units.numpy(),
                                    True, 9)
    device = F._sample_new_edges(wanted.to(CUDA), sizes.to(CUDA), None, int(sizes.sum()), code.to(CUDA),
                                 code_graph.to(CUDA), units.to(CUDA), units.to(CUDA), True, 9)
    assert torch.equal(device.cpu(), torch.stack([torch.from_numpy(host[0]), torch.from_numpy(host[1])]))
