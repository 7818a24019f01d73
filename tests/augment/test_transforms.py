from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

import gcl.augment as aug
from gcl.augment import _utils
from gcl.augment import adaptive as A
from gcl.augment import centrality as C
from gcl.augment import functional as F

from .graphs import gen, is_symmetric, to_batch


def every_transform(g: torch.Generator) -> list[aug.AugmentTransform]:
    return [
        aug.DropNodes(0.3, generator=g),
        aug.DropNodes(0.3, mode="bernoulli", generator=g),
        aug.PerturbEdges(0.3, generator=g),
        aug.PerturbEdges(0.3, mode="add", generator=g),
        aug.DropEdges(0.3, generator=g),
        aug.MaskFeatures(0.3, generator=g),
        aug.MaskFeatures(0.3, mode="dim", per_graph=True, fill="zero", generator=g),
        aug.RandomWalkSubgraph(0.7, generator=g),
        aug.AdaptiveDropEdges(0.3, centrality="pagerank", generator=g),
        aug.AdaptiveMaskFeatures(0.3, centrality="eigenvector", generator=g),
        aug.gca_augmentation(generator=g),
        aug.Compose([aug.DropNodes(0.2, generator=g), aug.PerturbEdges(0.2, generator=g)]),
        aug.RandomChoice(
            [aug.DropNodes(generator=g), aug.RandomWalkSubgraph(generator=g)], generator=g
        ),
        aug.Identity(),
    ]


def snapshot(data: Data) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in data.items() if isinstance(value, torch.Tensor)}


def check_batch(out: Batch, original: Batch) -> None:
    """A consistent batch: ptr, slices, attributes, and a clean to_data_list()."""
    assert isinstance(out, Batch)
    assert out.num_graphs == original.num_graphs
    counts = torch.bincount(out.batch, minlength=out.num_graphs)
    assert torch.equal(out.ptr, torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]))
    assert out.x.size(0) == out.batch.numel() == out.degree_centrality.numel()
    assert out.edge_attr.size(0) == out.edge_index.size(1)
    edge_graph = out.batch[out.edge_index[0]]
    assert torch.equal(edge_graph, out.batch[out.edge_index[1]])  # no edge crosses graphs
    assert bool((edge_graph[1:] >= edge_graph[:-1]).all())  # edges grouped by graph
    assert out.y is original.y  # graph-level attribute untouched
    assert bool((counts > 0).all())
    examples = out.to_data_list()
    assert len(examples) == out.num_graphs
    for g, example in enumerate(examples):
        assert example.num_nodes == int(counts[g])
        if example.edge_index.numel():
            assert int(example.edge_index.max()) < example.num_nodes
            assert int(example.edge_index.min()) >= 0
        assert example.degree_centrality.numel() == example.num_nodes
        assert int(example.y) == int(original.y[g])
    rebuilt = Batch.from_data_list(examples)
    assert torch.equal(rebuilt.edge_index, out.edge_index)
    assert torch.equal(rebuilt.x, out.x)


def test_every_transform_on_a_real_mutag_batch(mutag) -> None:
    batch = aug.AddCentrality("degree")(Batch.from_data_list([mutag[i] for i in range(24)]))
    before = snapshot(batch)
    slices_before = copy.deepcopy(batch._slice_dict)
    for transform in every_transform(gen(0)):
        out = transform(batch)
        check_batch(out, batch)
        # The input is left alone.
        assert all(torch.equal(before[key], batch[key]) for key in before)
        assert batch._slice_dict.keys() == slices_before.keys()
        assert all(torch.equal(batch._slice_dict[k], slices_before[k]) for k in slices_before)
        assert out is not batch


def test_every_transform_gives_the_torch_result_with_numpy_helpers(mutag, monkeypatch) -> None:
    # The CPU's NumPy helpers (and the CPU's regrouping of added edges by one stable
    # sort) against the torch code that runs on other devices.
    batch = aug.AddCentrality("degree")(Batch.from_data_list([mutag[i] for i in range(24)]))
    fast = [transform(batch) for transform in every_transform(gen(0))]
    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", False)
    reference = [transform(batch) for transform in every_transform(gen(0))]
    for a, b in zip(fast, reference):
        assert a.keys() == b.keys()
        for key in a.keys():
            if isinstance(a[key], torch.Tensor):
                assert torch.equal(a[key], b[key]), key
        assert all(torch.equal(a._slice_dict[k], b._slice_dict[k]) for k in a._slice_dict)


def test_node_level_attributes_follow_the_node_mask(mutag) -> None:
    batch = Batch.from_data_list([mutag[i] for i in range(8)])
    batch = aug.AddCentrality("pagerank")(batch)
    out = aug.DropNodes(0.5, generator=gen(1))(batch)
    # Recover the kept nodes via their (unique) feature rows + graph ids.
    kept = aug.drop_nodes(
        batch.x, batch.edge_index, batch.batch, p=0.5, generator=gen(1), num_graphs=8
    ).node_mask
    assert torch.equal(out.pagerank, batch.pagerank[kept])
    assert torch.equal(out.x, batch.x[kept])


def test_single_data_and_dataset_transform(mutag) -> None:
    data = mutag[0]
    before = snapshot(data)
    for transform in every_transform(gen(2)):
        out = transform(data)
        assert isinstance(out, Data) and not isinstance(out, Batch)
        assert out.edge_index.numel() == 0 or int(out.edge_index.max()) < out.num_nodes
        assert out.y is data.y
        assert all(torch.equal(before[key], data[key]) for key in before)
    dataset = copy.copy(mutag)
    dataset.transform = aug.Compose([aug.DropNodes(0.2), aug.MaskFeatures(0.2)])
    batch = next(iter(DataLoader(dataset, batch_size=16)))
    assert batch.num_graphs == 16 and batch.x.size(0) < sum(mutag[i].num_nodes for i in range(16))


def test_eval_mode_is_identity_and_train_restores(mutag) -> None:
    batch = Batch.from_data_list([mutag[i] for i in range(8)])
    drop, perturb, mask = aug.DropNodes(0.5), aug.PerturbEdges(0.5), aug.MaskFeatures(0.5)
    pipeline = aug.Compose([drop, aug.RandomChoice([perturb, mask])])
    pipeline.eval()
    assert not drop.training and not perturb.training and not mask.training
    out = pipeline(batch)
    assert torch.equal(out.x, batch.x) and torch.equal(out.edge_index, batch.edge_index)
    pipeline.train()
    assert drop.training and perturb.training and mask.training
    assert pipeline(batch).x.size(0) < batch.x.size(0)
    views = aug.MultiView(aug.DropNodes(0.5)).eval()(batch)
    assert all(torch.equal(v.x, batch.x) for v in views)


def test_eval_mode_keeps_deterministic_steps(mutag) -> None:
    import torch_geometric.transforms as T

    data = mutag[0]
    pipeline = aug.Compose([T.Constant(), aug.AddCentrality("pagerank"), aug.DropNodes(0.5)])
    trained = pipeline(data)
    assert trained.x.size(1) == data.x.size(1) + 1 and trained.num_nodes < data.num_nodes
    pipeline.eval()
    evaluated = pipeline(data)
    assert evaluated.x.size(1) == data.x.size(1) + 1 and evaluated.num_nodes == data.num_nodes
    assert "pagerank" in evaluated and torch.equal(evaluated.edge_index, data.edge_index)
    assert data.x.size(1) == 7  # the input is untouched
    views = aug.MultiView([aug.Compose([T.Constant(), aug.DropNodes(0.5)]), aug.DropNodes(0.5)]).eval()(data)
    assert views[0].x.size(1) == 8 and views[0].num_nodes == data.num_nodes
    assert torch.equal(views[1].x, data.x)


def test_node_dropping_on_featureless_batches_splits_back() -> None:
    # graphs without x: the batch's per-graph node counts follow the dropped nodes,
    # so to_data_list() gives each graph its new size
    path = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    batch = Batch.from_data_list([Data(edge_index=path, num_nodes=4)] * 3)
    for transform in (aug.DropNodes(0.5, generator=gen(1)), aug.RandomWalkSubgraph(0.5, generator=gen(1))):
        out = transform(batch)
        sizes = torch.bincount(out.batch, minlength=out.num_graphs).tolist()
        graphs = out.to_data_list()
        assert [g.num_nodes for g in graphs] == sizes == [2, 2, 2]
        assert all(int(g.edge_index.max()) < g.num_nodes for g in graphs if g.edge_index.numel())
    assert [g.num_nodes for g in batch.to_data_list()] == [4, 4, 4]  # the input is untouched


@pytest.mark.filterwarnings("ignore:Unable to accurately infer")
def test_node_dropping_on_a_featureless_graph_keeps_its_node_count() -> None:
    # no x and no stored num_nodes: the count must not be guessed from the edges left
    path = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    for seed in range(10):
        for transform in (aug.DropNodes(0.5, generator=gen(seed)), aug.RandomWalkSubgraph(0.5, generator=gen(seed))):
            assert transform(Data(edge_index=path)).num_nodes == 2
        # augmentations that keep every node: an end of a dropped edge is still a node
        for transform in (aug.DropEdges(0.5, generator=gen(seed)), aug.PerturbEdges(0.5, generator=gen(seed)),
                          aug.DropNodes(0.5, isolate=True, generator=gen(seed))):
            assert transform(Data(edge_index=path)).num_nodes == 4
            out = transform(Batch.from_data_list([Data(edge_index=path), Data(edge_index=path)]))
            assert out.num_nodes == 8 and [g.num_nodes for g in out.to_data_list()] == [4, 4]
        out = aug.DropNodes(0.5, generator=gen(seed))(Batch.from_data_list([Data(edge_index=path)] * 2))
        assert [g.num_nodes for g in out.to_data_list()] == [2, 2]


def test_graph_labels_survive_batches_of_one_edge_graphs() -> None:
    # every graph has one stored edge: y's collation slices equal the edges', yet y is graph-level
    graphs = [Data(x=torch.randn(2, 2), edge_index=torch.tensor([[0], [1]]), y=torch.tensor([i])) for i in range(6)]
    for transform in (aug.DropEdges(0.5, generator=gen(0)), aug.PerturbEdges(0.5, generator=gen(0))):
        out = transform(Batch.from_data_list(graphs))
        assert out.y.tolist() == list(range(6))
        assert [g.y.tolist() for g in out.to_data_list()] == [[i] for i in range(6)]


def test_node_index_attributes_follow_dropped_nodes() -> None:
    path = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])
    graphs = [Data(x=torch.arange(5.0).view(-1, 1) + 10 * i, edge_index=path, root_index=torch.tensor([r]))
              for i, r in enumerate([0, 2, 4, 1])]
    batch = Batch.from_data_list(graphs)
    kept_roots = 0
    for seed in range(30):
        transform = aug.DropNodes(0.4, generator=gen(seed))
        try:
            out = transform(batch)
        except ValueError as error:  # a root was dropped: refused, naming the attribute
            assert "root_index holds node indices, and DropNodes removed nodes it points to" in str(error)
            continue
        kept_roots += 1
        for graph, original in zip(out.to_data_list(), graphs):
            # the index points at the same node (its feature) after relabelling
            assert graph.x[graph.root_index, 0].tolist() == original.x[original.root_index, 0].tolist()
    assert kept_roots > 0
    refused = 0
    for seed in range(30):  # one graph (PyG's rule: integer *index* attributes hold node indices)
        try:
            single = aug.DropNodes(0.4, generator=gen(seed))(graphs[1])
        except ValueError:
            refused += 1
            continue
        assert int(single.num_nodes) == 3 and single.x[single.root_index, 0].tolist() == [12.0]
    assert 0 < refused < 30


def test_integer_index_attributes_that_are_not_nodes_are_left_alone() -> None:
    path = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])
    graph = Data(x=torch.randn(5, 3), edge_index=path, graph_index=torch.tensor([42]),
                 target_index=torch.tensor([-1]))
    for seed in range(10):
        out = aug.DropNodes(0.4, generator=gen(seed))(graph)
        assert out.graph_index.tolist() == [42] and out.target_index.tolist() == [-1]
    batch = Batch.from_data_list([graph] * 4)
    out = aug.DropNodes(0.4, generator=gen(0))(batch)
    assert [g.target_index.tolist() for g in out.to_data_list()] == [[-1]] * 4


def test_link_prediction_splits_keep_their_supervision_pairs() -> None:
    # PyG's RandomLinkSplit: edge_label_index [2, L] and edge_label [L] label node pairs, and L
    # equals the number of message-passing edges here; neither is an edge attribute
    from torch_geometric import transforms as T
    from torch_geometric.utils import remove_self_loops, to_undirected

    g = torch.Generator().manual_seed(0)
    edge_index, _ = remove_self_loops(to_undirected(torch.randint(0, 100, (2, 400), generator=g), num_nodes=100))
    torch.manual_seed(0)
    train, _, _ = T.RandomLinkSplit(is_undirected=True)(Data(x=torch.randn(100, 8), edge_index=edge_index))
    assert train.edge_label_index.size(1) == train.edge_index.size(1)
    for transform in (aug.DropEdges(0.3, generator=gen(0)), aug.PerturbEdges(0.3, generator=gen(0)),
                      aug.AdaptiveDropEdges(0.3, generator=gen(0)), aug.MaskFeatures(0.3, generator=gen(0))):
        out = transform(train)
        assert torch.equal(out.edge_label_index, train.edge_label_index)
        assert torch.equal(out.edge_label, train.edge_label)
    assert aug.DropEdges(0.3, generator=gen(0))(train).edge_index.size(1) < train.edge_index.size(1)
    # dropping nodes relabels the pairs, or names them when they lose a node
    for seed in range(5):
        try:
            out = aug.DropNodes(0.01, generator=gen(seed))(train)
        except ValueError as error:
            assert "edge_label_index holds node indices" in str(error)
            continue
        assert torch.equal(out.edge_label, train.edge_label) and out.edge_label_index.shape == \
            train.edge_label_index.shape


def test_follow_batch_vectors_follow_the_augmented_batch(mutag) -> None:
    loader = DataLoader(mutag[:16], batch_size=16, follow_batch=["x", "edge_attr"])
    batch = next(iter(loader))
    for transform in (aug.DropNodes(0.5, generator=gen(0)), aug.PerturbEdges(0.5, generator=gen(0)),
                      aug.RandomWalkSubgraph(0.5, generator=gen(0)), aug.DropEdges(0.5, generator=gen(0))):
        out = transform(batch)
        assert torch.equal(out.x_batch, out.batch) and torch.equal(out.x_ptr, out.ptr)
        assert torch.equal(out.edge_attr_batch, out.batch[out.edge_index[0]])
        assert torch.equal(out.edge_attr_ptr, out._slice_dict["edge_attr"])
    assert torch.equal(batch.x_ptr, batch.ptr)  # the input batch is left alone


def test_follow_batch_edge_index_vectors_follow_the_augmented_edges(mutag) -> None:
    # follow_batch=["edge_index"]: the graph of every edge, added ones included, and the
    # edges' pointer, after every augmentation that changes the edges
    loader = DataLoader(mutag[:16], batch_size=16, follow_batch=["x", "edge_index", "edge_attr"])
    batch = next(iter(loader))
    before = snapshot(batch)
    transforms = [
        aug.DropNodes(0.3, generator=gen(0)),
        aug.DropNodes(0.3, isolate=True, generator=gen(0)),
        aug.DropEdges(0.3, generator=gen(0)),
        aug.PerturbEdges(0.3, generator=gen(0)),
        aug.PerturbEdges(0.3, mode="add", generator=gen(0)),
        aug.PerturbEdges(0.3, mode="remove", generator=gen(0)),
        aug.RandomWalkSubgraph(0.5, generator=gen(0)),
        aug.RandomWalkSubgraph(0.5, walk_length=3, expansion=0.7, generator=gen(0)),
        aug.AdaptiveDropEdges(0.3, generator=gen(0)),
        aug.gca_augmentation(generator=gen(0)),
        aug.Compose([aug.DropNodes(0.2, generator=gen(0)), aug.PerturbEdges(0.2, mode="add", generator=gen(0))]),
        aug.RandomChoice([aug.DropNodes(0.3, generator=gen(0)), aug.PerturbEdges(0.3, mode="add", generator=gen(0)),
                          aug.Identity()], per_graph=True, generator=gen(0)),
    ]
    for transform in transforms:
        out = transform(batch)
        edge_graph = out.batch[out.edge_index[0]]
        edge_ptr = torch.cat([torch.zeros(1, dtype=torch.long),
                              torch.bincount(edge_graph, minlength=out.num_graphs).cumsum(0)])
        assert torch.equal(out.edge_index_batch, edge_graph), transform
        assert torch.equal(out.edge_index_ptr, edge_ptr), transform
        assert torch.equal(out.edge_attr_batch, edge_graph) and torch.equal(out.edge_attr_ptr, edge_ptr)
        assert torch.equal(out.x_batch, out.batch) and torch.equal(out.x_ptr, out.ptr)
        assert [g.edge_index.size(1) for g in out.to_data_list()] == torch.diff(edge_ptr).tolist()
    for key, value in before.items():  # the input batch is left alone
        assert torch.equal(batch[key], value)


def _point_cloud(n: int, seed: int) -> Data:
    generator = gen(seed)
    edge_index = torch.randint(0, n, (2, 3 * n), generator=generator)
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    return Data(pos=torch.randn(n, 3, generator=generator), edge_index=edge_index, y=torch.tensor([0]))


def test_featureless_graphs_collate_after_a_pool_with_an_identity() -> None:
    # graphs without x nor num_nodes, augmented by a dataset-level pool: DropEdges and
    # Identity must leave the same attributes, or PyG's collation fails on num_nodes
    graphs = [_point_cloud(10 + i, i) for i in range(64)]
    pool = aug.RandomChoice([aug.DropEdges(0.2, generator=gen(0)), aug.Identity()], generator=gen(1))
    sizes = []
    for batch in DataLoader([pool(g) for g in graphs], batch_size=16):
        sizes += torch.diff(batch.ptr).tolist()
    assert sizes == [10 + i for i in range(64)]


@pytest.mark.filterwarnings("ignore:Unable to accurately infer")
def test_every_transform_leaves_featureless_graphs_the_same_attributes() -> None:
    # the same input gets the same keys from every transform: augmentations, their p=0 /
    # ratio=1 shortcuts, Identity, evaluation mode, Compose and RandomChoice
    def transforms() -> list[aug.AugmentTransform]:
        return [
            aug.Identity(),
            aug.DropNodes(0.3, generator=gen(0)),
            aug.DropNodes(0.0),
            aug.DropNodes(0.3, isolate=True, generator=gen(0)),
            aug.DropEdges(0.3, generator=gen(0)),
            aug.DropEdges(0.0),
            aug.PerturbEdges(0.3, generator=gen(0)),
            aug.PerturbEdges(0.0),
            aug.RandomWalkSubgraph(0.5, generator=gen(0)),
            aug.RandomWalkSubgraph(1.0),
            aug.AdaptiveDropEdges(0.3, generator=gen(0)),
            aug.AdaptiveDropEdges(0.0),
            aug.MaskFeatures(0.0),
            aug.AdaptiveMaskFeatures(0.0),
            aug.Compose([]),
            aug.Compose([aug.DropEdges(0.0), aug.Identity()]),
            aug.Compose([aug.DropNodes(0.3, generator=gen(0)), aug.DropEdges(0.3, generator=gen(0))]),
            aug.RandomChoice([aug.Identity(), aug.DropEdges(0.3, generator=gen(0))], generator=gen(0)),
            aug.RandomChoice([lambda data: data], generator=gen(0)),
        ]

    path = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    inputs = [
        _point_cloud(12, 0),
        Data(edge_index=path),  # the count only PyG's guess from the edges
        Data(edge_index=path, num_nodes=6),  # two isolated nodes
        Data(x=torch.randn(4, 2), edge_index=path),
    ]
    for data in inputs:
        keys = sorted(data.keys())
        count = data.num_nodes
        for transform in [*transforms(), *(t.eval() for t in transforms())]:
            out = transform(data)
            expected = keys if "x" in data or "num_nodes" in keys else sorted([*keys, "num_nodes"])
            assert sorted(out.keys()) == expected, (transform, data)
            assert sorted(data.keys()) == keys  # the input is left alone
            if isinstance(transform, aug.Identity) or not transform.training:
                assert out.num_nodes == count


def test_feature_masking_needs_no_edges() -> None:
    points = Data(x=torch.randn(50, 3))
    out = aug.MaskFeatures(0.4, generator=gen(0))(points)
    masked = (out.x != points.x).any(dim=1)
    assert int(masked.sum()) == 20 and "edge_index" not in out
    batch = Batch.from_data_list([Data(x=torch.randn(10, 3)), Data(x=torch.randn(5, 3))])
    assert aug.MaskFeatures(0.4, mode="dim", fill="zero", generator=gen(0))(batch).x.shape == (15, 3)


def test_zero_probability_transforms_return_same_tensors(mutag) -> None:
    data = mutag[3]
    for transform in (
        aug.DropNodes(0.0),
        aug.PerturbEdges(0.0),
        aug.MaskFeatures(0.0),
        aug.RandomWalkSubgraph(1.0),
        aug.AdaptiveDropEdges(0.0),
    ):
        out = transform(data)
        assert out.x is data.x and out.edge_index is data.edge_index


def test_random_choice_per_graph_draws_every_graphs_own(proteins) -> None:
    batch = Batch.from_data_list(list(proteins[:128]))
    sizes = torch.bincount(batch.batch)
    # dropping half the nodes, or masking every feature row with zeros: one or the other per graph
    pool = [aug.DropNodes(0.5), aug.MaskFeatures(1.0, fill="zero")]
    choice = aug.RandomChoice(pool, per_graph=True, generator=gen(0))
    torch.manual_seed(7)  # the pool's own draws
    out = choice(batch)
    kept = torch.bincount(out.batch, minlength=128)
    dropped = kept < sizes
    masked_graphs = torch.tensor([bool((out.x[out.batch == g] == 0).all()) for g in range(128)])
    assert torch.equal(dropped | masked_graphs, torch.ones(128, dtype=torch.bool))  # each graph got one
    assert not bool((dropped & masked_graphs)[sizes > 1].any())  # and only one
    assert 40 < int(dropped.sum()) < 88  # about half each
    # the same generator seed draws the same choices; k = len(pool) applies both to every graph
    torch.manual_seed(7)
    again = aug.RandomChoice(pool, per_graph=True, generator=gen(0))(batch)
    assert torch.equal(again.batch, out.batch) and torch.equal(again.x, out.x)
    both = aug.RandomChoice(pool, k=2, per_graph=True, generator=gen(1))(batch)
    assert bool((both.x == 0).all()) and both.num_nodes < batch.num_nodes
    # in evaluation mode the pool is the identity
    idle = aug.RandomChoice(pool, per_graph=True).eval()(batch)
    assert torch.equal(idle.x, batch.x) and torch.equal(idle.edge_index, batch.edge_index)


def test_random_choice_per_graph_refuses_what_cannot_be_restricted() -> None:
    with pytest.raises(ValueError, match="DropEdges cannot be applied to some graphs of a batch only"):
        aug.RandomChoice([aug.DropNodes(), aug.DropEdges()], per_graph=True)
    with pytest.raises(ValueError, match=r"MaskFeatures\(mode='dim'\) masks the same columns of every graph"):
        aug.RandomChoice([aug.DropNodes(), aug.MaskFeatures(mode="dim")], per_graph=True)
    aug.RandomChoice([aug.DropNodes(), aug.MaskFeatures(mode="dim", per_graph=True)], per_graph=True)
    with pytest.raises(ValueError, match="function cannot be applied"):
        aug.RandomChoice([aug.Compose([aug.DropNodes(), lambda data: data])], per_graph=True)
    assert "per_graph=True" in repr(aug.RandomChoice([aug.Identity(), aug.DropNodes()], per_graph=True))


def test_random_choice_draws_k_distinct() -> None:
    calls: list[int] = []

    def make(i: int):
        def transform(data):
            calls.append(i)
            return data

        return transform

    choice = aug.RandomChoice([make(i) for i in range(4)], k=3, generator=gen(0))
    seen = set()
    for _ in range(50):
        calls.clear()
        choice(Data(x=torch.ones(1, 1), edge_index=torch.empty(2, 0, dtype=torch.long)))
        assert len(calls) == 3 and len(set(calls)) == 3
        seen.add(tuple(calls))
    assert len(seen) > 5
    first = aug.RandomChoice([make(i) for i in range(4)], generator=gen(5))
    second = aug.RandomChoice([make(i) for i in range(4)], generator=gen(5))
    runs = []
    for transform in (first, second):
        calls.clear()
        for _ in range(10):
            transform(Data(x=torch.ones(1, 1), edge_index=torch.empty(2, 0, dtype=torch.long)))
        runs.append(list(calls))
    assert runs[0] == runs[1]


def test_multiview_on_batch_and_as_dataset_transform(mutag) -> None:
    batch = Batch.from_data_list([mutag[i] for i in range(8)])
    views = aug.MultiView(aug.DropNodes(0.3), num_views=3)(batch)
    assert isinstance(views, tuple) and len(views) == 3
    assert not torch.equal(views[0].batch, views[1].batch) or not torch.equal(
        views[0].x, views[2].x
    )
    pair = aug.MultiView([aug.DropNodes(0.3), aug.PerturbEdges(0.3)])(batch)
    assert pair[0].x.size(0) < batch.x.size(0) and pair[1].x.size(0) == batch.x.size(0)
    dataset = copy.copy(mutag)
    dataset.transform = aug.MultiView([aug.DropNodes(0.2), aug.RandomWalkSubgraph(0.8)])
    first, second = next(iter(DataLoader(dataset, batch_size=8)))
    assert first.num_graphs == second.num_graphs == 8
    with pytest.raises(ValueError, match="num_views must match"):
        aug.MultiView([aug.DropNodes()], num_views=2)


def test_undirected_batches_stay_undirected(mutag) -> None:
    batch = Batch.from_data_list([mutag[i] for i in range(16)])
    for transform in (
        aug.PerturbEdges(0.4, generator=gen(0)),
        aug.DropEdges(0.4, generator=gen(0)),
        aug.DropNodes(0.4, generator=gen(0)),
        aug.RandomWalkSubgraph(0.6, generator=gen(0)),
    ):
        out = transform(batch)
        assert is_symmetric(out.edge_index)
        # Edge features follow their edges: both directions of a bond carry the same label.
        pairs = {}
        for (u, v), attr in zip(out.edge_index.t().tolist(), out.edge_attr.tolist()):
            pairs[(u, v)] = attr
        assert all(pairs[(u, v)] == pairs[(v, u)] for u, v in pairs)


def test_add_centrality_stored_value_is_used(mutag, monkeypatch: pytest.MonkeyPatch) -> None:
    data = aug.AddCentrality("eigenvector")(mutag[0])
    assert data.eigenvector_centrality.shape == (data.num_nodes,)
    batch = Batch.from_data_list([aug.AddCentrality("eigenvector")(mutag[i]) for i in range(4)])

    def fail(*args, **kwargs):
        raise AssertionError("centrality recomputed although it is stored")

    monkeypatch.setattr(A, "node_centrality", fail)  # every kind is computed through it
    aug.AdaptiveDropEdges(centrality="eigenvector")(batch)
    aug.AdaptiveMaskFeatures(centrality="eigenvector")(batch)
    with pytest.raises(AssertionError, match="recomputed"):
        aug.AdaptiveDropEdges(centrality="pagerank")(batch)
    # a PageRank of GCA's stored alone (10 steps) serves the edge step too, as given
    stored = aug.AddCentrality("pagerank-gca")(batch)
    aug.AdaptiveDropEdges(centrality="pagerank-gca")(stored)
    aug.AdaptiveMaskFeatures(centrality="pagerank-gca")(stored)


def test_featureless_graph_structure_transforms() -> None:
    data = Data(edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), num_nodes=5)
    out = aug.DropNodes(0.4, generator=gen(0))(data)
    assert out.num_nodes == 3 and "x" not in out
    with pytest.raises(ValueError, match="needs node features"):
        aug.MaskFeatures(0.5)(data)


@pytest.mark.parametrize(
    "factory,message",
    [
        (lambda: aug.DropNodes(1.5), r"p must be in \[0, 1\] \(got 1.5\)"),
        (
            lambda: aug.DropNodes(mode="all"),  # type: ignore[arg-type]
            r"mode must be one of \('fraction', 'bernoulli'\) \(got 'all'\)",
        ),
        (lambda: aug.PerturbEdges(-1), r"got -1"),
        (
            lambda: aug.MaskFeatures(fill="ones"),  # type: ignore[arg-type]
            r"fill must be one of",
        ),
        (lambda: aug.MaskFeatures(noise_std=-1.0), r"noise_std must be >= 0 \(got -1.0\)"),
        (lambda: aug.RandomWalkSubgraph(ratio=1.2), r"ratio must be in \[0, 1\] \(got 1.2\)"),
        (
            lambda: aug.RandomWalkSubgraph(expansion=2.0),
            r"expansion must be in \(0, 1\] \(got 2.0\)",
        ),
        (
            lambda: aug.AdaptiveDropEdges(threshold=3.0),
            r"threshold must be in \[0, 1\] \(got 3.0\)",
        ),
        (lambda: aug.AdaptiveDropEdges(force_undirected=True), r"needs aggr='mean'"),
        (
            lambda: aug.AdaptiveMaskFeatures(centrality="katz"),  # type: ignore[arg-type]
            r"centrality must be one of",
        ),
        (
            lambda: aug.AddCentrality("katz"),  # type: ignore[arg-type]
            r"kind must be one of",
        ),
        (
            lambda: aug.RandomChoice([aug.Identity()], k=2),
            r"k must be an integer in \[1, 1\] \(got 2\)",
        ),
        (lambda: aug.RandomChoice([]), r"transforms must not be empty"),
        (
            lambda: aug.MultiView(aug.Identity(), num_views=0),
            r"num_views must be a positive integer",
        ),
        # NaN passed comparisons such as `log_offset < 0` and then dropped every edge at the cap
        (lambda: aug.AdaptiveDropEdges(log_offset=float("nan")), r"log_offset must be a finite number"),
        (lambda: aug.AdaptiveMaskFeatures(log_offset=-1.0), r"log_offset must be >= 0 \(got -1.0\)"),
        (lambda: aug.MaskFeatures(noise_std=float("nan")), r"noise_std must be a finite number"),
        (lambda: aug.MaskFeatures(noise_mean=float("inf")), r"noise_mean must be a finite number"),
        (lambda: aug.RandomWalkSubgraph(walk_length=1.5), r"walk_length must be a non-negative integer"),
        (lambda: aug.AddCentrality("degree", damping=0.5), r"has no option damping; its options: "
                                                           r"normalized, self_loop_weight"),
    ],
)
def test_bad_hyper_parameters_raise_in_init(factory, message) -> None:
    with pytest.raises(ValueError, match=message):
        factory()


@pytest.mark.parametrize("value", [0, 1, "no", "false", np.int64(0)])
def test_switches_take_true_or_false_only(value) -> None:
    # `force_undirected=0` or a config's "false" would otherwise read as a truth value
    for factory in (lambda v: aug.DropNodes(isolate=v), lambda v: aug.DropNodes(graphcl_reference=v),
                    lambda v: aug.PerturbEdges(force_undirected=v), lambda v: aug.DropEdges(force_undirected=v),
                    lambda v: aug.RandomWalkSubgraph(restart=v), lambda v: aug.MaskFeatures(per_graph=v),
                    lambda v: aug.AdaptiveDropEdges(force_undirected=v), lambda v: aug.AdaptiveMaskFeatures(dense=v),
                    lambda v: aug.RandomChoice([aug.Identity()], per_graph=v)):
        with pytest.raises(ValueError, match=r"must be True or False|must be True, False or None"):
            factory(value)
    # NumPy's bools are bools; the functions check their switches too
    assert aug.DropEdges(0.5, force_undirected=np.False_).force_undirected is False
    edge_index = torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="force_undirected must be True, False or None"):
        F.perturb_edges(torch.zeros(2, 1), edge_index, p=0.5, force_undirected=0)
    with pytest.raises(ValueError, match="restart must be True or False"):
        F.random_walk_subgraph(torch.zeros(2, 1), edge_index, ratio=0.5, restart="no")


def test_repr() -> None:
    assert repr(aug.DropNodes(0.1)) == "DropNodes(p=0.1, mode='fraction')"
    assert "PerturbEdges" in repr(aug.Compose([aug.PerturbEdges()]))
    # settings that change behaviour show when they differ from their defaults
    assert repr(aug.RandomWalkSubgraph(0.2, graphcl_reference=True)).endswith("graphcl_reference=True)")
    assert "graphcl_reference" not in repr(aug.RandomWalkSubgraph(0.2))
    assert "force_undirected=True" in repr(aug.PerturbEdges(0.2, force_undirected=True))
    assert "per_graph=True" in repr(aug.MaskFeatures(0.2, mode="dim", per_graph=True))
    assert "generator" not in repr(aug.DropNodes(0.2, generator=gen(0)))
    # the raw degree of the adaptive augmentations is not the normalised one
    assert repr(aug.AddCentrality.adaptive("degree")) == (
        "AddCentrality(kind='degree', normalized=False, self_loop_weight=1)")
    assert repr(aug.AddCentrality("pagerank", key="pr")) == "AddCentrality(kind='pagerank', key='pr')"
    assert repr(aug.AddCentrality.adaptive("eigenvector")) == "AddCentrality(kind='eigenvector', method='exact')"
    gca_pagerank = aug.AddCentrality.adaptive("pagerank-gca")
    assert isinstance(gca_pagerank, aug.Compose) and [repr(t) for t in gca_pagerank.transforms] == [
        "AddCentrality(kind='pagerank-gca', iterations=10)",
        "AddCentrality(kind='pagerank-gca', key='edge_truncated_pagerank', iterations=200)"]


@pytest.mark.filterwarnings("ignore:.*did not converge within:RuntimeWarning")
def test_numpy_numbers_are_taken_for_hyper_parameters() -> None:
    # settings that come from NumPy (sweeps, configuration arrays) are numbers like any other
    batch = to_batch([(5, [(0, 1), (1, 0), (1, 2), (2, 1)]), (4, [(0, 1), (1, 0)])])
    for transform in [aug.DropNodes(np.float32(0.2), generator=gen(0)),
                      aug.RandomChoice([aug.DropNodes(0.2), aug.DropEdges(0.2)], k=np.int64(1), generator=gen(0)),
                      aug.MultiView(aug.DropEdges(np.float32(0.5)), num_views=np.int64(2)),
                      aug.RandomWalkSubgraph(0.5, walk_length=np.int64(2), generator=gen(0)),
                      aug.AdaptiveDropEdges(0.3, log_offset=np.float32(1.0), generator=gen(0))]:
        transform(batch)
    assert aug.RandomChoice([aug.Identity()], k=np.int64(1)).k == 1
    assert C.pagerank(batch.edge_index, batch.num_nodes, batch.batch, max_iter=np.int64(50)).shape == (9,)
    with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\] \(got True\)"):
        aug.DropNodes(True)


def test_graphs_that_are_not_homogeneous_edge_lists_are_refused_saying_so() -> None:
    from torch_geometric.data import HeteroData
    from torch_geometric.transforms import ToSparseTensor

    g = torch.Generator().manual_seed(0)
    hetero = HeteroData()
    hetero["paper"].x = torch.randn(4, 3)
    hetero["paper", "cites", "paper"].edge_index = torch.tensor([[0, 1], [1, 2]])
    for transform in [*every_transform(g), aug.MultiView(aug.DropEdges(0.3, generator=g))]:
        with pytest.raises(TypeError, match=r"augments homogeneous graphs .* not HeteroData"):
            transform(hetero)
        if not any(isinstance(t, aug.AddCentrality) for t in getattr(transform, "transforms", [])):
            transform.eval()(hetero)  # in evaluation mode an augmentation passes its input through
        transform.train()  # (AddCentrality is no augmentation: it computes in either mode)
    with pytest.raises(TypeError, match=r"AddCentrality augments homogeneous graphs"):
        aug.AddCentrality()(hetero)
    sparse = ToSparseTensor()(Data(x=torch.randn(4, 3), edge_index=torch.tensor([[0, 1], [1, 2]])))
    with pytest.raises(ValueError, match=r"Data has no edge_index \(its edges are in a sparse adj_t"):
        aug.DropNodes(0.5, generator=g)(sparse)


def test_drop_nodes_isolate_keeps_the_batch_layout() -> None:
    from gcl.data import load_dataset

    batch = Batch.from_data_list(list(load_dataset("MUTAG")[:8]))
    before = snapshot(batch)
    view = aug.DropNodes(0.3, isolate=True, generator=torch.Generator().manual_seed(0))(batch)
    assert view.num_nodes == batch.num_nodes and torch.equal(view.x, batch.x) and view.num_graphs == 8
    assert 0 < view.edge_index.size(1) < batch.edge_index.size(1)
    graphs = view.to_data_list()  # the slices follow the edges each graph kept
    assert [g.num_nodes for g in graphs] == [g.num_nodes for g in batch.to_data_list()]
    assert sum(g.edge_index.size(1) for g in graphs) == view.edge_index.size(1)
    assert all(g.edge_attr.size(0) == g.edge_index.size(1) for g in graphs)
    assert all(torch.equal(value, before[key]) for key, value in snapshot(batch).items())
    with pytest.raises(ValueError, match=r"isolate must be True or False \(got 1\)"):
        aug.DropNodes(0.3, isolate=1)  # type: ignore[arg-type]
    # restricted to some graphs by a per-graph pool: the others keep every edge
    pool = aug.RandomChoice([aug.DropNodes(0.9, isolate=True), aug.Identity()], per_graph=True,
                            generator=torch.Generator().manual_seed(1))
    drawn = pool(batch).to_data_list()
    kept_all = [d.edge_index.size(1) == g.edge_index.size(1) for d, g in zip(drawn, batch.to_data_list())]
    assert any(kept_all) and not all(kept_all)


def _as_many_edges_as_nodes() -> list[Data]:
    """A 2-node graph with one undirected edge and a directed 4-cycle: N == E stored edges;
    ``x`` holds every node's id."""
    return [
        Data(x=torch.arange(2.0).view(-1, 1), edge_index=torch.tensor([[0, 1], [1, 0]])),
        Data(x=torch.arange(4.0).view(-1, 1), edge_index=torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])),
    ]


def test_stored_centralities_are_node_level_when_graphs_have_as_many_edges_as_nodes() -> None:
    # AddCentrality.adaptive("pagerank-gca") stores edge_truncated_pagerank, a node centrality whose
    # name mentions edges: node-level all the same, in one graph and in a batch
    key = A.GCA_EDGE_PAGERANK_KEY
    add = aug.AddCentrality.adaptive("pagerank-gca")
    for graph in _as_many_edges_as_nodes():
        stored = add(graph)
        for seed in range(4):
            for transform in (aug.DropEdges(0.5, generator=gen(seed)), aug.DropNodes(0.5, generator=gen(seed)),
                              aug.PerturbEdges(0.5, generator=gen(seed))):
                out = transform(stored)
                kept = out.x[:, 0].long()
                assert torch.equal(out[key], stored[key][kept])
                assert torch.equal(out.truncated_pagerank, stored.truncated_pagerank[kept])
            # GCA's edge step after node dropping reads one value per kept node
            chain = aug.Compose([add, aug.DropNodes(0.5, generator=gen(seed)),
                                 aug.AdaptiveDropEdges(0.5, centrality="pagerank-gca", generator=gen(seed))])
            view = chain(graph)
            assert view[key].numel() == view.num_nodes
    # a batch whose every graph has as many stored edges as nodes
    graphs = _as_many_edges_as_nodes() * 2
    stored = add(Batch.from_data_list(graphs))
    for seed in range(4):
        for transform in (aug.DropEdges(0.5, generator=gen(seed)), aug.DropNodes(0.5, generator=gen(seed))):
            out = transform(stored)
            assert out[key].numel() == out.num_nodes
            for example, original in zip(out.to_data_list(), stored.to_data_list()):
                kept = example.x[:, 0].long()
                assert torch.equal(example[key], original[key][kept])


def test_list_and_array_attributes_follow_the_masks_in_one_graph() -> None:
    # PyG counts lists, tuples and arrays of one entry per node (edge) as node-level (edge-level)
    path = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])
    bonds = tuple(f"{u}-{v}" for u, v in path.t().tolist())
    graph = Data(x=torch.arange(5.0).view(-1, 1), edge_index=path, atoms=["C", "N", "O", "S", "P"],
                 charge=np.arange(5) * 10, bonds=bonds, tags=["a", "b"])
    for seed in range(5):
        out = aug.DropNodes(0.4, generator=gen(seed))(graph)
        kept = out.x[:, 0].long().tolist()
        assert out.atoms == [graph.atoms[i] for i in kept] and out.charge.tolist() == [10 * i for i in kept]
        assert isinstance(out.bonds, tuple) and len(out.bonds) == out.edge_index.size(1)
        assert list(out.bonds) == [f"{kept[u]}-{kept[v]}" for u, v in out.edge_index.t().tolist()]
        assert out.tags == ["a", "b"] and graph.atoms == ["C", "N", "O", "S", "P"]  # input untouched
        out = aug.PerturbEdges(0.5, generator=gen(seed))(graph)
        num_kept = int(out.edge_index.size(1) - out.bonds.count(None))
        assert len(out.bonds) == out.edge_index.size(1) and out.atoms == graph.atoms
        assert list(out.bonds[:num_kept]) == [f"{u}-{v}" for u, v in out.edge_index[:, :num_kept].t().tolist()]
        assert set(out.bonds[num_kept:]) <= {None}


def test_list_and_array_attributes_follow_the_masks_in_a_batch() -> None:
    # PyG collates such an attribute into one element per graph; Batch.get_example hands it back
    path = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])
    graphs = []
    for n in (5, 4, 3):
        edge_index = path[:, (path < n).all(0)]
        graphs.append(Data(x=torch.arange(float(n)).view(-1, 1), edge_index=edge_index,
                           atoms=[f"a{i}" for i in range(n)], charge=np.arange(n) * 10,
                           bonds=[f"{u}-{v}" for u, v in edge_index.t().tolist()], tags=["t"] * 7,
                           name=f"g{n}"))
    batch = Batch.from_data_list(graphs)
    pool = aug.RandomChoice([aug.DropNodes(0.5, generator=gen(1)), aug.PerturbEdges(0.5, generator=gen(2))],
                            per_graph=True, generator=gen(3))
    for transform in (aug.DropNodes(0.4, generator=gen(0)), aug.RandomWalkSubgraph(0.5, generator=gen(0)),
                      aug.PerturbEdges(0.5, generator=gen(0)), aug.DropEdges(0.5, generator=gen(0)), pool):
        out = transform(batch)
        for g in range(3):
            example = out.get_example(g)
            kept = example.x[:, 0].long().tolist()
            assert example.atoms == [f"a{i}" for i in kept] and example.charge.tolist() == [10 * i for i in kept]
            assert len(example.bonds) == example.edge_index.size(1)
            assert all(bond is None or bond == f"{kept[u]}-{kept[v]}"
                       for bond, (u, v) in zip(example.bonds, example.edge_index.t().tolist()))
            assert example.tags == ["t"] * 7 and example.name == graphs[g].name  # as they were
    assert batch.atoms == [g.atoms for g in graphs]  # input untouched


# --------------------------------------------------------------------------- a Data with a batch's vectors
def _data_with_ptr(mutag) -> tuple[Data, int]:  # type: ignore[no-untyped-def]
    """A plain Data carrying a batch's ``batch`` and ``ptr``, with empty graphs (first, in the
    middle, last), which only ``ptr`` counts."""
    empty = Data(x=torch.zeros(0, 7), edge_index=torch.zeros(2, 0, dtype=torch.long))
    graphs = [empty, *mutag[:4], empty, *mutag[4:8], empty]
    batch = Batch.from_data_list(graphs)
    return Data(x=batch.x, edge_index=batch.edge_index, batch=batch.batch, ptr=batch.ptr), len(graphs)


@pytest.mark.parametrize(
    "transform",
    [
        aug.DropNodes(0.3, generator=gen(0)),
        aug.DropNodes(0.3, mode="bernoulli", generator=gen(0)),
        aug.RandomWalkSubgraph(0.6, generator=gen(0)),
        aug.RandomChoice([aug.DropNodes(0.3, generator=gen(1)), aug.RandomWalkSubgraph(0.5, generator=gen(2))],
                         generator=gen(0), per_graph=True),
        aug.Compose([aug.DropEdges(0.3, generator=gen(0)), aug.DropNodes(0.3, generator=gen(1))]),
    ],
)
def test_data_with_a_ptr_gets_the_ptr_of_its_nodes(transform, mutag) -> None:  # type: ignore[no-untyped-def]
    """ptr used to stay the input's (only a Batch had it rebuilt)."""
    data, num_graphs = _data_with_ptr(mutag)
    before = data.ptr.clone()
    out = transform(data)
    assert not isinstance(out, Batch) and out.x.size(0) < data.x.size(0)
    counts = torch.bincount(out.batch, minlength=num_graphs)
    assert torch.equal(out.ptr, torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]))
    assert out.ptr.numel() == num_graphs + 1 and out.ptr.dtype == before.dtype
    assert torch.equal(data.ptr, before)  # the input is left alone
    # one graph, no batch vector: [0, N']
    single = Data(x=mutag[0].x, edge_index=mutag[0].edge_index, ptr=torch.tensor([0, mutag[0].num_nodes]))
    out = aug.DropNodes(0.5, generator=gen(0))(single)
    assert out.ptr.tolist() == [0, out.x.size(0)] == [0, 9]


def test_data_with_a_ptr_keeps_it_where_nodes_stay(mutag) -> None:  # type: ignore[no-untyped-def]
    data, _ = _data_with_ptr(mutag)
    for transform in (aug.DropEdges(0.3), aug.PerturbEdges(0.3), aug.MaskFeatures(0.3),
                      aug.DropNodes(0.3, isolate=True)):
        assert transform(data).ptr is data.ptr


# --------------------------------------------------------------------------- generators
def _takes_generator(obj: object) -> bool:
    import inspect

    return callable(obj) and "generator" in inspect.signature(obj).parameters


_GENERATOR_TRANSFORMS = [name for name in aug.__all__
                         if isinstance(getattr(aug, name), type) and _takes_generator(getattr(aug, name))]
_GENERATOR_FUNCTIONS = [name for name in aug.__all__
                        if not isinstance(getattr(aug, name), type) and _takes_generator(getattr(aug, name))]
_NOT_GENERATORS = [0, 1234, np.random.default_rng(0), "seed", torch.Generator().manual_seed(0).get_state()]


def test_every_random_augmentation_is_covered() -> None:
    assert set(_GENERATOR_TRANSFORMS) == {
        "AdaptiveDropEdges", "AdaptiveMaskFeatures", "DropEdges", "DropNodes", "MaskFeatures", "PerturbEdges",
        "RandomChoice", "RandomWalkSubgraph"}
    assert set(_GENERATOR_FUNCTIONS) == {
        "adaptive_drop_edges", "adaptive_mask_features", "drop_edges", "drop_nodes", "gca_augmentation",
        "mask_features", "perturb_edges", "random_walk_subgraph"}


@pytest.mark.parametrize("name", _GENERATOR_TRANSFORMS)
@pytest.mark.parametrize("generator", _NOT_GENERATORS, ids=lambda value: type(value).__name__)
def test_a_generator_that_is_not_a_torch_generator_is_refused_at_construction(name, generator) -> None:  # type: ignore[no-untyped-def]
    """It used to be accepted, and to fail at the first draw with torch's own error."""
    cls = getattr(aug, name)
    args = ([aug.Identity()],) if cls is aug.RandomChoice else ()
    with pytest.raises(TypeError, match=r"^generator must be a torch\.Generator or None \(got .+\)$"):
        cls(*args, generator=generator)
    cls(*args, generator=None)
    cls(*args, generator=gen(0))


@pytest.mark.parametrize("name", _GENERATOR_FUNCTIONS)
@pytest.mark.parametrize("generator", _NOT_GENERATORS, ids=lambda value: type(value).__name__)
def test_a_generator_that_is_not_a_torch_generator_is_refused_by_the_functions(name, generator, mutag) -> None:  # type: ignore[no-untyped-def]
    import inspect

    function = getattr(aug, name)
    data = mutag[0]
    parameters = inspect.signature(function).parameters
    args = (data.x, data.edge_index) if "edge_index" in parameters else (data.x,) if "x" in parameters else ()
    with pytest.raises(TypeError, match=r"^generator must be a torch\.Generator or None \(got .+\)$"):
        function(*args, generator=generator)
    function(*args, generator=gen(0))


def test_the_refusal_names_what_was_given() -> None:
    with pytest.raises(TypeError, match=r"\(got 0\)"):
        aug.DropNodes(generator=0)
    with pytest.raises(TypeError, match=r"\(got a numpy\.random\._generator\.Generator\)"):
        aug.DropNodes(generator=np.random.default_rng(0))


# --------------------------------------------------------------------------- index dtypes
def _structural_transforms() -> list[tuple[str, object]]:
    return [
        ("DropNodes", lambda g: aug.DropNodes(0.3, generator=g)),
        ("DropNodes-bernoulli", lambda g: aug.DropNodes(0.3, mode="bernoulli", generator=g)),
        ("DropNodes-isolate", lambda g: aug.DropNodes(0.3, isolate=True, generator=g)),
        ("PerturbEdges", lambda g: aug.PerturbEdges(0.3, generator=g)),
        ("PerturbEdges-add", lambda g: aug.PerturbEdges(0.3, mode="add", generator=g)),
        ("PerturbEdges-bernoulli", lambda g: aug.PerturbEdges(0.3, mode="remove", sampling="bernoulli",
                                                              generator=g)),
        ("DropEdges", lambda g: aug.DropEdges(0.3, generator=g)),
        ("DropEdges-fraction", lambda g: aug.DropEdges(0.3, sampling="fraction", generator=g)),
        ("DropEdges-directed", lambda g: aug.DropEdges(0.3, force_undirected=False, generator=g)),
        ("RandomWalkSubgraph", lambda g: aug.RandomWalkSubgraph(0.6, generator=g)),
        ("RandomWalkSubgraph-steps", lambda g: aug.RandomWalkSubgraph(0.6, walk_length=3, expansion=0.7,
                                                                      generator=g)),
        ("RandomWalkSubgraph-graphcl", lambda g: aug.RandomWalkSubgraph(graphcl_reference=True, generator=g)),
        ("AdaptiveDropEdges", lambda g: aug.AdaptiveDropEdges(0.3, generator=g)),
        ("AdaptiveDropEdges-undirected", lambda g: aug.AdaptiveDropEdges(0.3, centrality="eigenvector",
                                                                         aggr="mean", force_undirected=True,
                                                                         generator=g)),
        ("gca_augmentation", lambda g: aug.gca_augmentation(generator=g)),
        ("RandomChoice-per-graph", lambda g: aug.RandomChoice(
            [aug.DropNodes(0.3, generator=g), aug.PerturbEdges(0.3, generator=g),
             aug.RandomWalkSubgraph(0.6, generator=g)], generator=g, per_graph=True)),
        ("MaskFeatures", lambda g: aug.MaskFeatures(0.3, generator=g)),
        ("DropNodes-p0", lambda g: aug.DropNodes(0.0, generator=g)),
    ]


@pytest.mark.parametrize("factory", [f for _, f in _structural_transforms()],
                         ids=[name for name, _ in _structural_transforms()])
@pytest.mark.parametrize("as_batch", [True, False])
def test_transforms_keep_int32_edge_index(factory, as_batch, mutag) -> None:  # type: ignore[no-untyped-def]
    """int32 in, int32 out (it used to come back int64 from structural transforms), with the
    values of the int64 run under the same seed."""
    batch = Batch.from_data_list(list(mutag[:16]))
    if not as_batch:
        batch = Data(x=batch.x, edge_index=batch.edge_index, edge_attr=batch.edge_attr, batch=batch.batch)
    narrow = copy.copy(batch)
    narrow.edge_index = batch.edge_index.int()
    want = factory(gen(0))(batch)
    got = factory(gen(0))(narrow)
    assert got.edge_index.dtype == torch.int32
    assert torch.equal(got.edge_index.long(), want.edge_index)
    assert torch.equal(got.x, want.x) and torch.equal(got.edge_attr, want.edge_attr)
    if as_batch:
        assert torch.equal(got.ptr, want.ptr)
        for a, b in zip(got.to_data_list(), want.to_data_list(), strict=True):
            assert a.edge_index.dtype == torch.int32 and torch.equal(a.edge_index.long(), b.edge_index)
