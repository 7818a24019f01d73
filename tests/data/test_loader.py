from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from torch_geometric.data import Batch, Data, InMemoryDataset
from torch_geometric.loader import DataLoader
from torch_geometric.transforms import Constant

from gcl.data import CollatedLoader, attach_index, load_dataset


def _assert_same(expected: Batch, got: Batch) -> None:
    assert set(expected.keys()) == set(got.keys())
    for key in expected.keys():
        assert torch.equal(torch.as_tensor(expected[key]), torch.as_tensor(got[key])), key
    assert expected.num_graphs == got.num_graphs and expected.num_nodes == got.num_nodes
    # PyG's per-graph bookkeeping too (to_data_list, get_example, index_select read it)
    for name in ("_slice_dict", "_inc_dict"):
        want, have = getattr(expected, name), getattr(got, name)
        assert want.keys() == have.keys(), name
        assert all((want[k] is None and have[k] is None) or torch.equal(torch.as_tensor(want[k]), have[k])
                   for k in want), name


@pytest.mark.parametrize("name", ["MUTAG", "PROTEINS", "IMDB-BINARY"])
def test_same_batches_as_pyg_dataloader(name: str) -> None:
    dataset = load_dataset(name)
    subset = dataset[torch.randperm(len(dataset))[:150]]
    for data in (dataset, subset):
        for expected, got in zip(DataLoader(data, batch_size=37), CollatedLoader(data, batch_size=37), strict=True):
            _assert_same(expected, got)


def test_node_level_attributes_and_index_are_sliced(mutag: Any) -> None:
    dataset = attach_index(load_dataset("MUTAG"))
    subset = dataset[torch.tensor([5, 3, 100])]
    batch = next(iter(CollatedLoader(subset, batch_size=3)))
    assert batch.idx.tolist() == [5, 3, 100]
    assert batch.edge_attr.shape[0] == batch.edge_index.shape[1]
    assert int(batch.edge_index.max()) < batch.num_nodes


def test_shuffle_follows_the_generator_and_drop_last(mutag: Any) -> None:
    def order(seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        loader = CollatedLoader(attach_index(load_dataset("MUTAG")), 50, shuffle=True, drop_last=True,
                                generator=generator)
        batches = list(loader)
        assert len(batches) == len(loader) == 3
        return torch.cat([b.idx for b in batches]).tolist()

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert len(set(order(1))) == 150


def test_sampler_positions(mutag: Any) -> None:
    batch = next(iter(CollatedLoader(mutag, 4, sampler=[7, 0, 3, 2])))
    _assert_same(Batch.from_data_list([mutag[i] for i in (7, 0, 3, 2)]), batch)


def test_bad_arguments(mutag: Any) -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        CollatedLoader(mutag, 0)
    with pytest.raises(ValueError, match="skip the dataset's transform"):
        CollatedLoader(load_dataset("MUTAG", transform=Constant()), 8)
    with pytest.raises(TypeError, match="needs an InMemoryDataset"):
        CollatedLoader(list(mutag), 8)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shuffle=True with a sampler"):
        CollatedLoader(mutag, 8, shuffle=True, sampler=[0, 1])


class _Graphs(InMemoryDataset):
    def __init__(self, graphs: list[Data]) -> None:
        super().__init__(None)
        self.data, self.slices = self.collate(graphs)


def test_a_first_graph_without_nodes_leaves_the_edge_shift_alone() -> None:
    # which attributes are shifted by the node counts is asked of a graph with nodes
    path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    graphs = [Data(x=torch.zeros(0, 2), edge_index=torch.zeros(2, 0, dtype=torch.long)),
              Data(x=torch.ones(3, 2), edge_index=path), Data(x=torch.ones(2, 2), edge_index=path[:, :2])]
    dataset = _Graphs(graphs)
    for order in ([0, 1, 2], [2, 0, 1]):
        _assert_same(Batch.from_data_list([graphs[i] for i in order]),
                     next(iter(CollatedLoader(dataset, 3, sampler=order))))


def test_per_graph_values_in_lists_are_batched_as_pyg_does() -> None:
    graphs = [Data(x=torch.randn(n, 2), edge_index=torch.tensor([[0], [n - 1]]), y=torch.tensor([n]),
                   smiles=f"C{n}") for n in (2, 3, 4, 5)]
    dataset = _Graphs(graphs)
    for expected, got in zip(DataLoader(dataset, batch_size=3), CollatedLoader(dataset, batch_size=3), strict=True):
        assert got.smiles == expected.smiles
        assert [g.smiles for g in got.to_data_list()] == [g.smiles for g in expected.to_data_list()]
        del expected.smiles, got.smiles  # a list: compared above
        _assert_same(expected, got)


class _StackedFoo(Data):
    """PyG's advanced mini-batching: ``foo`` is stacked along a new first dimension."""

    def __cat_dim__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        return None if key == "foo" else super().__cat_dim__(key, value, *args, **kwargs)


def test_attributes_stacked_along_a_new_dimension_are_batched_as_pyg_does() -> None:
    generator = torch.Generator().manual_seed(0)
    graphs = [_StackedFoo(x=torch.randn(n, 2, generator=generator), edge_index=torch.tensor([[0], [n - 1]]),
                          foo=torch.randn(4, generator=generator)) for n in (2, 3, 4, 5, 3)]
    dataset = _Graphs(graphs)
    batches = list(CollatedLoader(dataset, batch_size=2))  # used to fail: '<' between None and int
    for expected, got in zip(DataLoader(dataset, batch_size=2), batches, strict=True):
        assert got.foo.shape == expected.foo.shape and got.foo.dim() == 2
        _assert_same(expected, got)
    shuffled = next(iter(CollatedLoader(dataset, batch_size=3, sampler=[4, 0, 2])))
    assert torch.equal(shuffled.foo, torch.stack([graphs[i].foo for i in (4, 0, 2)]))


def test_moved_to_leaves_the_callers_object_alone(mutag: Any) -> None:
    from gcl.data import moved_to

    batch = Batch.from_data_list(list(mutag[:4]))
    original = batch.x
    moved = moved_to(batch, "cpu")
    assert moved is not batch and moved.num_graphs == 4
    assert moved.x is batch.x  # already on the device: no tensor is copied
    moved.x = moved.x * 2  # what Data.to does to the object it is called on
    assert batch.x is original and torch.equal(moved.x, 2 * original)


def test_moved_to_keeps_a_tensor_batch_in_the_autograd_graph() -> None:
    from gcl.data import moved_to

    weight = torch.ones(3, requires_grad=True)
    moved = moved_to(weight * 2, "cpu")
    moved.sum().backward()
    assert weight.grad is not None and torch.equal(weight.grad, torch.full((3,), 2.0))


def test_new_batch_is_the_batch_pyg_builds() -> None:
    from gcl.data.loader import new_batch

    attrs = {"x": torch.randn(5, 3), "edge_index": torch.tensor([[0, 1], [1, 2]]), "batch": torch.tensor([0, 0, 0, 1, 1])}
    fast, reference = new_batch(**attrs), Batch(**attrs)
    assert type(fast) is type(reference)
    assert isinstance(fast, Batch) and isinstance(fast, Data)
    assert sorted(fast.keys()) == sorted(reference.keys())
    assert all(torch.equal(fast[k], reference[k]) for k in attrs)
    assert fast.num_nodes == 5


def test_batches_keep_the_graph_class_of_the_dataset() -> None:
    """A dataset of a Data subclass gives batches of its batch class, with the subclass's
    increments applied, the same as PyG's DataLoader."""
    from .graphs_custom import LabelledGraph, LabelledGraphs

    dataset = LabelledGraphs()
    for expected, got in zip(DataLoader(dataset, batch_size=6), CollatedLoader(dataset, batch_size=6), strict=True):
        _assert_same(expected, got)
        assert type(got) is type(expected) and isinstance(got, LabelledGraph)
        assert got.doubled_nodes == 2 * got.num_nodes
        # the anchors point at each graph's last node in the batch numbering
        assert torch.equal(got.anchor, got.ptr[1:] - 1)



def test_featureless_batches_keep_per_graph_node_counts() -> None:
    from gcl.data import CollatedLoader, load_dataset

    imdb = load_dataset("IMDB-BINARY")
    imdb._data.x = None  # structure only, as a dataset without the degree fallback
    batch = next(iter(CollatedLoader(imdb, 8)))
    assert batch._store._num_nodes == [imdb[i].num_nodes for i in range(8)]
    assert batch.num_nodes == sum(batch._store._num_nodes)


@pytest.mark.parametrize("name", ["MUTAG", "IMDB-BINARY"])
def test_batches_split_back_into_the_dataset_graphs(name: str) -> None:
    from gcl.augment import DropNodes

    dataset = load_dataset(name)
    positions = torch.tensor([7, 0, 42, 3])
    batch = CollatedLoader(dataset, batch_size=4, sampler=positions.tolist()).collate(positions)
    for graph, position in zip(batch.to_data_list(), positions.tolist(), strict=True):
        original = dataset[position]
        assert set(graph.keys()) == set(original.keys())
        assert all(torch.equal(torch.as_tensor(graph[k]), torch.as_tensor(original[k])) for k in original.keys())
    assert batch.get_example(2).num_nodes == dataset[42].num_nodes
    assert [g.num_nodes for g in batch.index_select([1, 3])] == [dataset[0].num_nodes, dataset[3].num_nodes]
    # an augmentation keeps the bookkeeping consistent with the new sizes
    dropped = DropNodes(p=0.3)(batch)
    sizes = [g.num_nodes for g in dropped.to_data_list()]
    assert sizes == (dropped.ptr[1:] - dropped.ptr[:-1]).tolist()
    assert sum(g.num_edges for g in dropped.to_data_list()) == dropped.num_edges


def test_featureless_batches_split_back_into_graphs() -> None:
    imdb = load_dataset("IMDB-BINARY")
    imdb._data.x = None
    del imdb.slices["x"]
    batch = next(iter(CollatedLoader(imdb, 8)))
    graphs = batch.to_data_list()
    assert [g.num_nodes for g in graphs] == [imdb[i].num_nodes for i in range(8)]
    assert all(torch.equal(g.edge_index, imdb[i].edge_index) for i, g in enumerate(graphs))


def test_node_counts_are_inferred_as_pyg_infers_them() -> None:
    # no x, pos or num_nodes: PyG's DataLoader takes a node-level attribute's size, else each graph's largest
    # edge index + 1 (0 without edges; here graph 2's z has rows PyG does not count as nodes)
    def ring(n: int) -> torch.Tensor:
        return torch.stack([torch.arange(n), (torch.arange(n) + 1) % n]) if n > 1 else torch.zeros(2, 0).long()

    sizes = (3, 5, 1, 7, 2)
    by_edges = _Graphs([Data(z=torch.arange(n), edge_index=ring(n), y=torch.tensor([n])) for n in sizes])
    by_type = _Graphs([Data(node_type=torch.zeros(n, dtype=torch.long), edge_index=ring(n)) for n in sizes])
    for dataset in (by_edges, by_type):
        with warnings.catch_warnings(record=True) as caught:  # (PyG warns whenever it infers a count)
            warnings.simplefilter("always")
            expected = list(DataLoader(dataset, batch_size=3))
            got = list(CollatedLoader(dataset, batch_size=3))
            for want, have in zip(expected, got, strict=True):
                _assert_same(want, have)
                assert [g.num_nodes for g in have.to_data_list()] == [g.num_nodes for g in want.to_data_list()]
        said = [str(w.message) for w in caught if "infers each graph's node count" in str(w.message)]
        assert len(said) == (1 if dataset is by_edges else 0)
    assert got[0].num_nodes == 3 + 5 + 1  # (the node types count every node)


def test_graphs_without_any_node_count_are_refused() -> None:
    dataset = _Graphs([Data(y=torch.tensor([i])) for i in range(4)])
    with pytest.raises(ValueError, match=r"cannot tell how many nodes .* set num_nodes on every graph"):
        CollatedLoader(dataset, batch_size=2)


def test_increments_other_than_the_node_count_are_refused() -> None:
    """A bipartite-style index (shifted by another count than the nodes) would come out
    wrong from the node-count shift: the loader refuses the dataset instead."""
    from torch_geometric.data import InMemoryDataset

    class Bipartite(Data):
        def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
            if key == "target":
                return self.num_targets
            return super().__inc__(key, value, *args, **kwargs)

    class Graphs(InMemoryDataset):
        def __init__(self) -> None:
            super().__init__(None)
            graphs = [Bipartite(x=torch.randn(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]),
                                target=torch.tensor([0, 1]), num_targets=2) for _ in range(4)]
            self.data, self.slices = self.collate(graphs)

    with pytest.raises(ValueError, match="increments \\['target'\\] by another count"):
        CollatedLoader(Graphs())



def test_a_dataset_of_one_graph_without_slices() -> None:
    # PyG stores single-graph datasets (Planetoid, Amazon ...) with slices=None
    from torch_geometric.loader import DataLoader

    from .graphs_custom import OneGraph

    dataset = OneGraph()
    assert dataset.slices is None
    ours = next(iter(CollatedLoader(dataset, batch_size=4)))
    theirs = next(iter(DataLoader(dataset, batch_size=4)))
    assert ours.num_graphs == 1
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs.keys() if isinstance(theirs[k], torch.Tensor))


def _torch_collation(loader: CollatedLoader, positions: torch.Tensor) -> Batch:
    """The batch as storage off the CPU gathers it (torch instead of NumPy's take)."""
    loader._numpy_gather = False
    try:
        return loader.collate(positions)
    finally:
        del loader._numpy_gather


@pytest.mark.parametrize("name", ["MUTAG", "IMDB-BINARY"])
def test_the_torch_collation_gives_the_same_batches(name: str) -> None:
    # storage off the CPU collates with torch operations instead of NumPy: same batches
    dataset = load_dataset(name)
    loader = CollatedLoader(dataset, batch_size=37, shuffle=True, generator=torch.Generator().manual_seed(0))
    for positions in loader.batch_indices():
        _assert_same(_torch_collation(loader, positions), loader.collate(positions))


def test_int32_indices_are_shifted_in_their_dtype() -> None:
    path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]], dtype=torch.int32)
    graphs = [Data(x=torch.ones(3, 2), edge_index=path, y=torch.tensor([i])) for i in range(4)]
    loader = CollatedLoader(_Graphs(graphs), batch_size=4)
    batch = next(iter(loader))
    _assert_same(Batch.from_data_list(graphs), batch)
    assert torch.equal(batch.edge_index, torch.cat([path + 3 * i for i in range(4)], 1))
    assert batch.edge_index.dtype == torch.int32  # as PyG keeps it
    assert _torch_collation(loader, torch.arange(4)).edge_index.dtype == torch.int32


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16])
def test_narrow_indices_are_widened_not_wrapped(dtype: torch.dtype) -> None:
    # 100 nodes per graph: the third graph's indices pass 255
    edges = torch.tensor([[0, 99], [99, 0]], dtype=dtype)
    graphs = [Data(x=torch.zeros(100, 1), edge_index=edges) for _ in range(3)]
    loader = CollatedLoader(_Graphs(graphs), batch_size=3)
    expected = torch.tensor([[0, 99, 100, 199, 200, 299], [99, 0, 199, 100, 299, 200]])
    for batch in (next(iter(loader)), _torch_collation(loader, torch.arange(3))):
        assert batch.edge_index.dtype == torch.int64
        assert torch.equal(batch.edge_index, expected)
