r"""A mini-batch loader that slices the collated storage of an in-memory dataset.

PyG's :class:`~torch_geometric.loader.DataLoader` rebuilds every graph as a
:class:`~torch_geometric.data.Data` object and collates the list again at every
step. An :class:`~torch_geometric.data.InMemoryDataset` already holds all
graphs concatenated; :class:`CollatedLoader` gathers the rows of the graphs of
a batch from that storage with a few vectorised index operations and shifts
the edge indices, producing the same :class:`~torch_geometric.data.Batch` as
the DataLoader for the same graphs (same attributes, same order) without
per-graph Python work. Shuffled epochs draw their permutation from the
generator directly (PyG's DataLoader draws a worker seed from it first).
"""

from __future__ import annotations

import copy
import functools
import warnings
from collections.abc import Iterable, Iterator, Sized
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data, InMemoryDataset


@functools.cache
def _data_batch_class() -> type:
    return type(Batch())


@functools.cache
def batch_class(data_class: type) -> type:
    r"""PyG's batch class for graphs of ``data_class`` (``DataBatch`` for
    :class:`~torch_geometric.data.Data`, ``PairDataBatch`` for a ``PairData``
    subclass), built once."""
    return type(Batch(_base_cls=data_class))


def data_class_of(item: Data) -> type:
    r"""The graph class of ``item``: its own class, or for a batch the class of
    the graphs it holds."""
    if not isinstance(item, Batch):
        return type(item)
    return next(c for c in type(item).__mro__ if issubclass(c, Data) and not issubclass(c, Batch))


def new_batch(data_class: type | None = None, /, **attrs: Any) -> Batch:
    r"""``Batch(**attrs)``: the same object (PyG's ``DataBatch``, a batch of
    :class:`~torch_geometric.data.Data`, or the batch class of ``data_class``),
    without the per-call class resolution of ``Batch``'s metaclass (which
    builds a class and reads a signature every time: about 0.1 ms, a quarter of
    a collated step on NCI1)."""
    if data_class is None or data_class is Data:
        return type.__call__(_data_batch_class(), **attrs)
    return filled(type.__call__(batch_class(data_class)), attrs)


def filled(empty: Data, attrs: dict[str, Any]) -> Any:
    r"""``empty`` (a graph or batch built without arguments, as PyG builds a
    ``Data`` subclass, whose own ``__init__`` may not take the attributes) with
    ``attrs`` set."""
    for key, value in attrs.items():
        empty[key] = value
    return empty


#: Attributes whose size PyG's ``num_nodes`` reads first (``torch_geometric.data.storage.N_KEYS``).
_NODE_KEYS = frozenset({"x", "feat", "pos", "batch", "node_type", "n_id", "tf"})

#: Index dtypes that :meth:`CollatedLoader.collate` keeps when it shifts an attribute by the node
#: counts (``int32`` as PyG's collate keeps it); narrower integers become ``int64``, whose range
#: every batch fits (PyG's collate would wrap them around past 127 or 255 nodes).
_KEPT_INDEX_DTYPES = (torch.int64, torch.int32)


class _IndexedBatches:
    r"""What :class:`CollatedLoader` and :class:`DatasetBatches` share: the
    order of an epoch (shuffle, sampler, ``drop_last``) as index tensors, one
    per batch, that :meth:`collate` turns into batches."""

    _positions: Tensor  # what an epoch's order indexes, per graph

    def __init__(self, dataset: Any, batch_size: int, shuffle: bool, drop_last: bool,
                 generator: torch.Generator | None, sampler: Iterable[int] | None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
        if sampler is not None and shuffle:
            raise ValueError("shuffle=True with a sampler: the sampler decides the order (shuffle it there, "
                             "e.g. DistributedSampler(shuffle=True)); leave shuffle False")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator
        self.sampler = sampler

    def __len__(self) -> int:
        count = len(self.sampler) if isinstance(self.sampler, Sized) else len(self._positions)
        if self.drop_last:
            return count // self.batch_size
        return (count + self.batch_size - 1) // self.batch_size

    def _order(self) -> Tensor:
        if self.sampler is not None:
            return torch.as_tensor(list(self.sampler), dtype=torch.long)
        if self.shuffle:
            return torch.randperm(len(self._positions), generator=self.generator)
        return torch.arange(len(self._positions))

    def __iter__(self) -> Iterator[Batch]:
        for graphs in self.batch_indices():
            yield self.collate(graphs)

    def batch_indices(self) -> list[Tensor]:
        r"""The indices (for :meth:`collate`) of the graphs of each batch of one
        epoch: a new shuffle per call when ``shuffle=True``."""
        order = self._order()
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        return [self._positions[order[start:start + self.batch_size]] for start in range(0, stop, self.batch_size)]

    def collate(self, graphs: Tensor) -> Batch:
        raise NotImplementedError


def _increment(graph: Data, key: str) -> Any:
    r"""What PyG's collate adds to ``graph[key]`` (``__inc__``), as a number
    or nested list."""
    value = graph.__inc__(key, graph[key])
    return value.tolist() if isinstance(value, Tensor) else value


class CollatedLoader(_IndexedBatches):
    r"""Mini-batches of an :class:`~torch_geometric.data.InMemoryDataset` (or a
    subset of one), gathered from its collated storage.

    Node-, edge- and graph-level attributes are all supported; ``edge_index``
    (and any attribute PyG increments by the node count) is shifted to the
    batch's node numbering. The batches carry PyG's per-graph bookkeeping, so
    :meth:`~torch_geometric.data.Batch.to_data_list`, ``get_example`` and
    ``index_select`` give back the dataset's graphs (gcl's augmentations keep
    it consistent with the sizes they change). Datasets with a per-access
    ``transform`` are not supported (the transform would be skipped), nor graph
    classes that shift an index by another count than the node count
    (bipartite graphs): use the PyG DataLoader for them.

    Args:
        dataset (InMemoryDataset): The dataset, possibly a subset ``dataset[idx]``.
        batch_size (int): Graphs per batch. (default: :obj:`128`)
        shuffle (bool): Draw a new permutation every epoch. (default: :obj:`False`)
        drop_last (bool): Drop the last incomplete batch. (default: :obj:`False`)
        generator (torch.Generator, optional): Randomness of the shuffle.
        sampler (iterable of int, optional): Positions (within ``dataset``) to
            visit instead of the shuffle, e.g. a
            :class:`~torch.utils.data.distributed.DistributedSampler`.

    Example:
        >>> from gcl.data import load_dataset
        >>> loader = CollatedLoader(load_dataset("MUTAG"), batch_size=64, shuffle=True)
        >>> batch = next(iter(loader))       # a torch_geometric.data.Batch
        >>> len(loader), batch.num_graphs     # 188 graphs: batches of 64, 64 and 60
        (3, 64)
    """

    def __init__(self, dataset: InMemoryDataset, batch_size: int = 128, *, shuffle: bool = False,
                 drop_last: bool = False, generator: torch.Generator | None = None,
                 sampler: Iterable[int] | None = None) -> None:
        super().__init__(dataset, batch_size, shuffle, drop_last, generator, sampler)
        if not isinstance(dataset, InMemoryDataset):
            raise TypeError(f"CollatedLoader needs an InMemoryDataset (got {type(dataset).__name__})")
        if dataset.transform is not None:
            raise ValueError("CollatedLoader would skip the dataset's transform; use the PyG DataLoader")
        self._store = dataset._data
        self._slices = dataset.slices if dataset.slices is not None else self._single_graph_slices(dataset._data)
        # batches keep a Data subclass's class (PyG builds those empty, as new_batch does)
        self._data_class = data_class_of(self._store)
        self._positions = torch.as_tensor(list(dataset.indices()), dtype=torch.long)
        self._keys = [k for k in self._slices if k in self._store and isinstance(self._store[k], Tensor)]
        node_key = next((k for k in ("x", "pos", "idx_node") if k in self._slices), None)
        # whether the node counts are inferred as PyG infers them (batches then carry no num_nodes, as PyG's)
        self._counts_inferred = node_key is None and "num_nodes" not in self._store
        if node_key is not None:
            self._node_ptr = self._slices[node_key]
        else:  # structure-only graphs: the counts PyG stores, or infers
            counts = self._node_counts(dataset)
            self._node_ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        # per-graph values PyG keeps in a list (strings such as SMILES ...): gathered item by item
        self._list_keys = [k for k in self._slices if k in self._store and isinstance(self._store[k], list)]
        # Which attributes PyG increments by the node count when collating (edge_index ...), asked of
        # graphs with nodes: an empty graph's increment is 0 whatever the attribute.
        with_nodes = torch.nonzero(self._node_ptr.diff() > 0).flatten().tolist()
        probes = sorted({with_nodes[0], with_nodes[-1]}) if with_nodes else []
        with warnings.catch_warnings():
            if self._counts_inferred:  # PyG's warning for each count it infers: said once above
                warnings.filterwarnings("ignore", message="Unable to accurately infer 'num_nodes'")
            examples = [dataset.get(graph) for graph in probes]
            first = examples[0] if examples else None
            self._incremented = {k for k in self._keys if first is not None and k in first
                                 and _increment(first, k) not in (0, None)}
            # shifted by the node counts below: other increments (bipartite graphs' edge indices ...) need
            # PyG's collate
            odd = sorted({k for example in examples for k in self._incremented
                          if _increment(example, k) != example.num_nodes})
        if odd:
            raise ValueError(
                f"CollatedLoader shifts node indices by the node count, but {self._data_class.__name__} "
                f"increments {odd} by another count; use the PyG DataLoader"
            )
        self._cat_dims = {}
        for key in self._keys:
            dim = self._store.__cat_dim__(key, self._store[key])
            if dim is None:  # stacked along a new first dimension, one row per graph (PyG stores them so)
                dim = 0
            self._cat_dims[key] = dim + self._store[key].dim() if dim < 0 else dim
        # The index arithmetic of collate runs in NumPy (fewer and cheaper calls on arrays of a
        # batch's size) on the slices, which PyG keeps on the CPU.
        self._host_slices = {key: self._slices[key].cpu().numpy() for key in self._keys}
        self._host_node_ptr = self._node_ptr.cpu().numpy()

    def _node_counts(self, dataset: InMemoryDataset) -> Tensor:
        r"""Each graph's node count, for graphs without ``x``, ``pos`` or ``idx_node``: the counts
        PyG's collation stores for graphs with ``num_nodes``, or else those PyG's DataLoader infers
        for each graph (the size of its first node-level attribute, ``feat``, ``node_type`` ...,
        then its largest ``edge_index`` (``face``) entry + 1, which leaves out isolated nodes after
        the last one an edge names; a warning says so).

        Raises:
            ValueError: The graphs have none of these.
        """
        store = self._store
        stored = getattr(store, "_num_nodes", None)
        if isinstance(stored, list):
            return torch.as_tensor(stored, dtype=torch.long)
        if dataset.slices is None:  # one graph, kept whole: its own count (num_nodes, or as PyG infers it)
            count = store.num_nodes
            if count is not None:
                return torch.tensor([int(count)])
        keys = self._keys
        node_key = next((k for k in keys if k in _NODE_KEYS), None) or next((k for k in keys if "node" in k), None)
        if node_key is not None:
            return self._slices[node_key].diff()
        index_key = next((k for k in ("edge_index", "face") if k in keys), None)
        if index_key is None:
            raise ValueError(
                f"CollatedLoader cannot tell how many nodes the graphs of {type(dataset).__name__} have: they "
                f"have no x, pos, num_nodes, node-level attribute or edge_index (attributes: {sorted(store.keys())}); "
                "set num_nodes on every graph (data.num_nodes = ...) before collating them")
        warnings.warn(
            f"the graphs of {type(dataset).__name__} have no x, pos or num_nodes: CollatedLoader infers each "
            f"graph's node count from its {index_key} (largest index + 1), as PyG's DataLoader does, which "
            f"leaves out isolated nodes after the last one an edge names; set data.num_nodes on every graph to "
            "give the counts", UserWarning, stacklevel=3)
        index, bounds = store[index_key], self._slices[index_key]
        num_graphs = bounds.numel() - 1
        graph = torch.repeat_interleave(torch.arange(num_graphs), bounds.diff())
        highest = torch.full((num_graphs,), -1, dtype=torch.long)
        if index.numel():  # each column's largest entry, then each graph's (stored per graph, from 0)
            highest = highest.scatter_reduce(0, graph, index.cpu().long().amax(dim=0), reduce="amax")
        return highest + 1

    @staticmethod
    def _single_graph_slices(store: Data) -> dict[str, Tensor]:
        r"""PyG stores a dataset of one graph (Planetoid ...) without slices: every attribute
        is that graph's, whole."""
        slices = {}
        for key, value in store._store.items():
            if isinstance(value, Tensor):
                dim = store.__cat_dim__(key, value)
                size = value.size(dim) if value.dim() else 1
                slices[key] = torch.tensor([0, size])
        return slices

    #: Gather the attributes shifted by the node counts (``edge_index``) of CPU storage with NumPy's
    #: ``take`` along the edge axis, about 3x faster than ``index_select`` on dim 1; ``False``: with
    #: torch, as storage on other devices and narrow index types are (the tests compare the two).
    _numpy_gather = True

    def collate(self, graphs: Tensor) -> Batch:
        r"""The batch of the graphs at storage positions ``graphs`` (in that order)."""
        index = graphs.cpu().numpy()
        node_ptr = self._host_node_ptr
        num_nodes = node_ptr[index + 1] - node_ptr[index]
        new_ptr = np.zeros(index.size + 1, dtype=np.int64)
        np.cumsum(num_nodes, out=new_ptr[1:])
        offsets = torch.from_numpy(new_ptr[:-1])
        attrs: dict[str, Any] = {}
        # PyG's per-graph bookkeeping (Batch.to_data_list / get_example / index_select read it)
        slice_dict: dict[str, Tensor] = {}
        inc_dict: dict[str, Tensor | None] = {}
        no_increment = torch.zeros(index.size, dtype=torch.long)
        for key in self._keys:
            value, slices, dim = self._store[key], self._host_slices[key], self._cat_dims[key]
            start = slices[index]
            lengths = slices[index + 1] - start
            key_ptr = np.zeros(index.size + 1, dtype=np.int64)
            np.cumsum(lengths, out=key_ptr[1:])
            # arange(start, start + length) for every graph, concatenated
            positions = np.arange(key_ptr[-1], dtype=np.int64)
            positions += np.repeat(start - key_ptr[:-1], lengths)
            inc_dict[key] = no_increment
            if key not in self._incremented:
                gathered = value.index_select(dim, torch.from_numpy(positions).to(value.device))
            else:
                inc_dict[key] = offsets
                shape = [1] * value.dim()
                shape[dim] = -1
                shift = np.repeat(new_ptr[:-1], lengths).reshape(shape)
                if self._numpy_gather and value.device.type == "cpu" and value.dtype in _KEPT_INDEX_DTYPES:
                    gathered_np = np.take(value.numpy(), positions, axis=dim)
                    gathered_np += shift.astype(gathered_np.dtype)
                    gathered = torch.from_numpy(gathered_np)
                else:
                    shift_tensor = torch.from_numpy(shift).to(value.device)
                    if value.dtype in _KEPT_INDEX_DTYPES:
                        shift_tensor = shift_tensor.to(value.dtype)
                    gathered = value.index_select(dim, torch.from_numpy(positions).to(value.device)) + shift_tensor
            attrs[key] = gathered
            slice_dict[key] = torch.from_numpy(key_ptr)
        for key in self._list_keys:
            values, bounds = self._store[key], self._slices[key].cpu().numpy()
            ranges = zip(bounds[index].tolist(), bounds[index + 1].tolist(), strict=True)
            attrs[key] = [item for start, stop in ranges for item in values[start:stop]]
            slice_dict[key] = torch.arange(index.size + 1)
            inc_dict[key] = None  # as PyG's collate records a list
        batch = new_batch(self._data_class, **attrs)
        batch.batch = torch.from_numpy(np.repeat(np.arange(index.size, dtype=np.int64), num_nodes))
        batch.ptr = torch.from_numpy(new_ptr)
        batch._num_graphs = index.size
        batch._slice_dict = slice_dict
        batch._inc_dict = inc_dict
        if "num_nodes" in self._store or ("x" not in attrs and not self._counts_inferred):
            batch.num_nodes = int(new_ptr[-1])
            batch._store._num_nodes = num_nodes.tolist()  # per graph, as PyG's collate keeps them
        return batch


class DatasetBatches(_IndexedBatches):
    r"""The batches of any PyG dataset by index, for datasets that
    :class:`CollatedLoader` does not take (not in memory, or with a per-access
    ``transform``): the same methods, collating with
    :meth:`~torch_geometric.data.Batch.from_data_list` as PyG's DataLoader does.

    Args:
        dataset (Dataset): The dataset.
        batch_size (int): Graphs per batch.
        shuffle, drop_last, generator, sampler: As for :class:`CollatedLoader`.
    """

    def __init__(self, dataset: Any, batch_size: int, *, shuffle: bool = False, drop_last: bool = False,
                 generator: torch.Generator | None = None, sampler: Iterable[int] | None = None) -> None:
        super().__init__(dataset, batch_size, shuffle, drop_last, generator, sampler)
        self._positions = torch.arange(len(dataset))

    def collate(self, graphs: Tensor) -> Batch:
        r"""The batch of the graphs at dataset indices ``graphs`` (in that order)."""
        return Batch.from_data_list([self.dataset[int(i)] for i in graphs])


def moved_to(data: Any, device: torch.device | str) -> Any:
    r"""``data`` on ``device`` without moving the caller's object.

    PyG's :meth:`~torch_geometric.data.Data.to` replaces the tensors of the
    object it is called on; this calls it on a shallow copy (new attribute
    stores, shared tensors), so a graph or batch handed to training or
    evaluation stays where its owner put it. Tensors already on ``device`` are
    not copied.
    """
    if isinstance(data, Tensor):  # Tensor.to returns a new tensor and keeps the autograd graph
        return data.to(device)
    return copy.copy(data).to(device)


def ordered_batches(data: Any, batch_size: int = 256) -> Iterable[Batch]:
    r"""Batches of ``data`` in dataset order, for evaluation.

    Slices the collated storage (:class:`CollatedLoader`) when ``data`` is an
    in-memory dataset without a per-access transform, and falls back to PyG's
    :class:`~torch_geometric.loader.DataLoader` otherwise; both give the same batches.
    """
    if isinstance(data, InMemoryDataset) and data.transform is None:
        return CollatedLoader(data, batch_size)
    from torch_geometric.loader import DataLoader

    return DataLoader(data, batch_size=batch_size, shuffle=False)
