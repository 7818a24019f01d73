r"""PyG transforms around :mod:`gcl.augment.functional` and
:mod:`gcl.augment.adaptive`.

Every transform works on a single :class:`~torch_geometric.data.Data` (as a
dataset ``transform=``) and on a collated :class:`~torch_geometric.data.Batch`
alike. A batch comes back as a batch whose ``x``, ``edge_index``, ``batch``,
``ptr``, ``edge_attr`` and ``num_graphs`` agree (and which still splits with
``to_data_list()``); other node-level attributes (stored centralities, node
labels, ...) are filtered with the node mask, other edge-level attributes with
the edge mask (zero rows for added edges), and graph-level attributes such as
``y`` are left alone. Inputs are never modified: the result is a shallow copy
holding new tensors.

The stochastic transforms have a ``training`` flag: after :meth:`eval` they
return their input (as a shallow copy) unchanged.

A single graph (a Data, not a Batch) without ``x`` and without a stored
``num_nodes`` comes back with ``num_nodes`` stored, from every transform: the
number of nodes kept after an augmentation (PyG would otherwise guess it from
the edges left, missing isolated nodes), the input's count from the identity
paths (:class:`Identity`, ``p=0``, evaluation mode). So the graphs of a dataset
keep the same attributes whichever transform each drew, and PyG collates them.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar, cast

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data, HeteroData
from torch_geometric.transforms import BaseTransform

from gcl._checks import check_generator, check_switch
from gcl.augment import adaptive as A
from gcl.augment import functional as F
from gcl.augment._utils import (
    check_choice,
    check_probability,
    check_real,
    count_true,
    exclusive_cumsum,
    indices_below,
    is_integer,
    is_sorted,
    mask_indices,
    nodes_in_graph_order,
    on_host,
    pointer,
    stable_argsort,
    take_edges,
    value_range,
)
from gcl.augment.centrality import (
    CENTRALITY_KEYS,
    CentralityKind,
    check_centrality_options,
    node_centrality,
)
from gcl.augment.functional import Augmented

__all__ = [
    "AdaptiveDropEdges",
    "AdaptiveMaskFeatures",
    "AddCentrality",
    "AugmentTransform",
    "Compose",
    "DropEdges",
    "DropNodes",
    "Identity",
    "MaskFeatures",
    "MultiView",
    "PerturbEdges",
    "RandomChoice",
    "RandomWalkSubgraph",
    "gca_augmentation",
]

T = TypeVar("T", bound="AugmentTransform")
_CORE_KEYS = frozenset({"x", "edge_index", "edge_attr", "batch", "ptr"})
#: The node centralities :class:`AddCentrality` stores: node-level wherever they hold one value
#: per node, although one name mentions edges (``edge_truncated_pagerank``, kept as named since
#: processed datasets and user code store it).
_STORED_CENTRALITIES = frozenset({*CENTRALITY_KEYS.values(), A.GCA_EDGE_PAGERANK_KEY})


# --------------------------------------------------------------------------- plumbing
def _graph_tensors(data: Data) -> tuple[Tensor, bool, Tensor, Tensor | None, int | None]:
    r"""``(x, x_is_real, edge_index, batch, num_graphs)`` of a Data or Batch.

    Featureless graphs get an ``[N, 0]`` stand-in for ``x`` so that structure
    augmentations still know the node count.
    """
    edge_index = data.edge_index
    if edge_index is None:
        sparse = " (its edges are in a sparse adj_t, e.g. after T.ToSparseTensor(): augment before that)" \
            if "adj_t" in data else ""
        raise ValueError(f"{type(data).__name__} has no edge_index{sparse}")
    batch, num_graphs = _graph_index(data)
    x = data.x if "x" in data else None
    if x is None:
        num_nodes = data.num_nodes
        if num_nodes is None:
            raise ValueError("the graph has neither x nor num_nodes")
        x_tensor = torch.empty((num_nodes, 0), device=edge_index.device)
        real = False
    else:
        x_tensor, real = x, True
    return x_tensor, real, edge_index, batch, num_graphs


def _graph_index(data: Data) -> tuple[Tensor | None, int | None]:
    r"""``(batch, num_graphs)`` of a Data (one graph unless it carries ``batch``) or Batch."""
    if isinstance(data, Batch):
        return data.batch, data.num_graphs
    batch = data.batch if "batch" in data else None
    return batch, (1 if batch is None else None)


def _with_node_count(data: Any) -> Any:
    r"""``data`` with ``num_nodes`` stored if it is a single graph (a Data, not a Batch)
    without ``x`` and without a stored count. Every transform ends with this, the identity
    paths included (:class:`Identity`, ``p=0``, evaluation mode), so that the graphs of one
    dataset keep the same attributes whichever transform each drew (PyG collates only
    graphs that do); the augmentations have stored the count of the nodes they kept."""
    if not isinstance(data, Data) or isinstance(data, Batch) or "num_nodes" in data._store:
        return data
    if "x" in data and data.x is not None:
        return data
    num_nodes = data.num_nodes  # what PyG infers now, as the input's count is read by every transform
    if num_nodes is not None:
        data.num_nodes = num_nodes
    return data


def _attribute_levels(
    data: Data, present: Sequence[str], num_nodes: int
) -> tuple[list[str], list[str], list[str]]:
    r"""Names of the node-level and edge-level tensor attributes besides the core
    ones, and of the attributes held in lists, tuples or NumPy arrays (sorted out
    by :func:`_filter_sequences`).

    For a batch the collation slices decide (robust when sizes coincide); for a
    single graph PyG's size test does, where a size-1 attribute of a one-edge
    graph counts as graph-level unless its name mentions edges. The centralities
    gcl stores (:data:`_STORED_CENTRALITIES`) are node-level whenever they have
    ``num_nodes`` values (in a batch: the node slices), whatever their name and
    the number of edges. Attributes that
    PyG concatenates along another dimension than the first (``*index*``,
    ``face``: node indices, see :func:`_node_index_keys`) are neither, and so is
    an attribute ``key`` beside a ``key_index`` (the labels of node pairs, as
    PyG's ``RandomLinkSplit`` writes ``edge_label`` beside ``edge_label_index``),
    whatever their sizes, nor are a loader's ``follow_batch`` vectors (see
    :func:`_follow_batch_keys`: rebuilt, not filtered). ``present`` lists the
    attributes of ``data`` (``data.keys()``, read once by the caller).
    """
    slices: dict[str, Tensor] | None = getattr(data, "_slice_dict", None)
    node_slices = None if slices is None else slices.get("x")
    edge_slices = None if slices is None else slices.get("edge_index")
    rebuilt = _follow_batch_keys(data, present)
    node_keys: list[str] = []
    edge_keys: list[str] = []
    sequence_keys: list[str] = []
    for key in present:
        if key in _CORE_KEYS or key in rebuilt:
            continue
        value = data[key]
        if not isinstance(value, Tensor):
            if f"{key}_index" not in present and _may_hold_rows(value, slices is not None and key in slices):
                sequence_keys.append(key)
            continue
        if value.dim() == 0:
            continue
        if f"{key}_index" in present or data.__cat_dim__(key, value) not in (0, -value.dim()):
            continue
        collated = slices is not None and key in slices
        if collated:
            assert slices is not None
            node_like = node_slices is not None and torch.equal(slices[key], node_slices)
            edge_like = edge_slices is not None and torch.equal(slices[key], edge_slices)
            if node_slices is None or edge_slices is None:
                node_like = node_like or (node_slices is None and data.is_node_attr(key))
                edge_like = edge_like or (edge_slices is None and data.is_edge_attr(key))
            if edge_like and "edge" not in key and _one_per_graph(slices[key]):
                # every graph has one stored edge and one value of this attribute (a label
                # y): graph-level, as for a single graph, unless its name mentions edges
                edge_like = False
        else:
            node_like = data.is_node_attr(key)
            edge_like = data.is_edge_attr(key) and (data.edge_index.size(1) != 1 or "edge" in key)
        if key in _STORED_CENTRALITIES and (
            node_like or ((not collated or node_slices is None) and value.size(0) == num_nodes)
        ):
            node_like, edge_like = True, False
        if node_like and edge_like:
            node_like, edge_like = "edge" not in key, "edge" in key
        if node_like:
            node_keys.append(key)
        elif edge_like:
            edge_keys.append(key)
    return node_keys, edge_keys, sequence_keys


def _follow_batch_keys(data: Data, present: Sequence[str]) -> set[str]:
    r"""The ``key_batch`` / ``key_ptr`` vectors that PyG's loaders add to a batch for
    ``follow_batch=[key]``: not collated attributes (no slices of theirs), and neither node-
    nor edge-level (``edge_index_batch`` has a row per edge, and no zero row would be right for
    an added edge), so :func:`_refresh_batch` rebuilds them instead of filtering them."""
    if not isinstance(data, Batch):
        return set()
    slices: dict[str, Tensor] = getattr(data, "_slice_dict", None) or {}
    return {
        name
        for key in present
        for name in (f"{key}_batch", f"{key}_ptr")
        if name in present and name not in slices
    }


def _one_per_graph(slices: Tensor) -> bool:
    return bool(torch.equal(slices, torch.arange(slices.numel(), device=slices.device)))


def _node_index_keys(data: Data, candidates: Sequence[str], num_nodes: int) -> list[str]:
    r"""Attributes among ``candidates`` that hold node indices besides ``edge_index``: in a
    batch those whose collation increments are the node counts, otherwise (and where the
    counts cannot tell, as in a batch of one graph) those PyG shifts by the node count when it
    collates (integer ``*index*`` attributes and ``face``); in both cases only if every value
    is a node of the graph (a sentinel such as -1, or another kind of index, is left as it is)."""
    incs: dict[str, Any] = getattr(data, "_inc_dict", None) or {}
    slices: dict[str, Any] = getattr(data, "_slice_dict", None) or {}
    node_slices = slices.get("x")
    # The node counts tell the increments apart when a graph before the last has nodes (the
    # slices are cumulative: when the second-to-last offset is positive).
    offsets = None
    if node_slices is not None and node_slices.numel() > 2 and int(node_slices[-2]) > 0:
        offsets = node_slices[:-1]
    keys = []
    for key in candidates:
        value = data[key]
        if not isinstance(value, Tensor) or value.is_floating_point():
            continue
        inc = incs.get(key)
        if offsets is not None and isinstance(inc, Tensor) and inc.numel() == offsets.numel():
            if not bool(torch.equal(inc.to(offsets.device), offsets)):
                continue
        elif not ("index" in key or key == "face"):
            continue
        if value.numel() == 0 or (int(value.min()) >= 0 and int(value.max()) < num_nodes):
            keys.append(key)
    return keys


def _relabel_node_indices(data: Data, keys: list[str], node_mask: Tensor, transform: str) -> None:
    r"""Maps the node indices of ``keys`` to the kept nodes' new indices; refuses indices of removed nodes."""
    new_id = torch.cumsum(node_mask.long(), 0) - 1
    for key in keys:
        value = data[key]
        if value.numel() and not bool(node_mask[value].all()):
            raise ValueError(
                f"{key} holds node indices, and {transform} removed nodes it points to; drop the "
                f"attribute first (del data.{key}) or use an augmentation that keeps every node")
        data[key] = new_id[value]


_Rows = list[Any] | tuple[Any, ...] | np.ndarray


def _may_hold_rows(value: Any, per_graph: bool) -> bool:
    r"""Whether ``value`` is a list, tuple or NumPy array that may hold a row per node or edge;
    ``per_graph``: a batch's collated attribute, whose elements (one per graph, as PyG collates
    them: of the first one's type) must be such sequences (a list of per-graph strings is not)."""
    if per_graph:
        return isinstance(value, list) and len(value) > 0 and isinstance(value[0], (list, tuple, np.ndarray))
    return isinstance(value, (list, tuple, np.ndarray))


def _filter_sequences(data: Data, keys: Sequence[str], aug: Augmented, nodes_changed: bool) -> None:
    r"""Filters the node- and edge-level attributes of ``data`` held in lists, tuples or NumPy
    arrays (``keys``) with ``aug``'s masks, as PyG's ``Data.subgraph`` filters them; added edges
    get ``None`` (zero rows in an array). ``data`` still holds the input's tensors.

    In one graph PyG's size test decides which is which (as for tensors). In a batch, PyG
    collates such an attribute into a list with one element per graph: every graph's element
    that has as many entries as the graph had nodes (edges) is filtered with that graph's part
    of the mask; other elements are left as they are."""
    edge_mask = aug.edge_mask
    num_kept = 0 if edge_mask is None else count_true(edge_mask)
    num_added = 0 if edge_mask is None else aug.edge_index.size(1) - num_kept
    edges_changed = edge_mask is not None and (num_kept != edge_mask.numel() or num_added > 0)
    if not (nodes_changed or edges_changed):
        return
    num_edges = data.edge_index.size(1)
    slices: dict[str, Tensor] = getattr(data, "_slice_dict", None) or {}
    per_graph = [key for key in keys if isinstance(data, Batch) and key in slices]
    for key in keys:
        if key in per_graph:
            continue
        value = data[key]
        # along the first dimension only (PyG's select takes lists along no other)
        axes = (0, -value.ndim) if isinstance(value, np.ndarray) else (0,)
        if _is_scalar_array(value) or data.__cat_dim__(key, value) not in axes:
            continue
        if nodes_changed and data.is_node_attr(key):
            assert aug.node_mask is not None
            data[key] = _select_rows(value, aug.node_mask)
        elif edges_changed and data.is_edge_attr(key) and (num_edges != 1 or "edge" in key):
            assert edge_mask is not None
            data[key] = _select_rows(value, edge_mask, num_added)
    if per_graph:
        _filter_graph_sequences(cast(Batch, data), per_graph, aug, nodes_changed, edges_changed, num_kept)


def _filter_graph_sequences(data: Batch, keys: Sequence[str], aug: Augmented, nodes_changed: bool,
                            edges_changed: bool, num_kept: int) -> None:
    r"""The batch part of :func:`_filter_sequences`: ``keys`` hold one element per graph."""
    num_graphs = data.num_graphs
    batch, edge_index = data.batch, data.edge_index
    edge_graph = batch.index_select(0, edge_index[0])
    node_counts = torch.bincount(batch, minlength=num_graphs).tolist()
    edge_counts = torch.bincount(edge_graph, minlength=num_graphs).tolist()
    node_masks: list[Tensor] | None = None
    edge_masks: list[Tensor] | None = None
    added: list[int] = [0] * num_graphs
    if nodes_changed:
        assert aug.node_mask is not None
        # every graph's part of the mask, in the order of its nodes
        order = nodes_in_graph_order(batch, batch.numel(), batch.device)
        node_masks = list(aug.node_mask.index_select(0, order).split(node_counts))
    if edges_changed:
        assert aug.edge_mask is not None and aug.batch is not None
        order = stable_argsort(edge_graph)
        edge_masks = list(aug.edge_mask.index_select(0, order).split(edge_counts))
        new_graph = aug.batch.index_select(0, aug.edge_index[0, num_kept:])
        added = torch.bincount(new_graph, minlength=num_graphs).tolist()
    for key in keys:
        value = data[key]
        if not isinstance(value, list) or len(value) != num_graphs:
            continue
        value = list(value)
        for graph, element in enumerate(value):
            if not isinstance(element, (list, tuple, np.ndarray)) or _is_scalar_array(element):
                continue
            size, num_nodes, num_edges = len(element), node_counts[graph], edge_counts[graph]
            node_like = size == num_nodes
            edge_like = size == num_edges and (num_edges != 1 or "edge" in key)
            if node_like and edge_like:
                node_like, edge_like = "edge" not in key, "edge" in key
            if node_like and node_masks is not None:
                value[graph] = _select_rows(element, node_masks[graph])
            elif edge_like and edge_masks is not None:
                value[graph] = _select_rows(element, edge_masks[graph], added[graph])
        data[key] = value


def _is_scalar_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.ndim == 0


def _select_rows(value: _Rows, mask: Tensor, num_added: int = 0) -> _Rows:
    r"""The entries of ``value`` where ``mask`` holds, then ``num_added`` empty ones (``None``;
    zero rows in an array); a tuple stays a tuple."""
    if isinstance(value, np.ndarray):
        kept = value[mask.cpu().numpy()]
        if num_added:
            kept = np.concatenate([kept, np.zeros((num_added, *value.shape[1:]), dtype=value.dtype)])
        return kept
    rows = [value[index] for index in mask_indices(mask).tolist()] + [None] * num_added
    return tuple(rows) if isinstance(value, tuple) else rows


def _write_back(data: Data, aug: Augmented, x_is_real: bool, transform: str = "the augmentation") -> Data:
    r"""Stores an :class:`Augmented` result in ``data`` (a shallow copy)."""
    present = data.keys()
    old_num_nodes = aug.x.size(0) if aug.node_mask is None else aug.node_mask.numel()
    node_keys, edge_keys, sequence_keys = _attribute_levels(data, present, old_num_nodes)
    old_num_edges = data.edge_index.size(1)
    nodes_changed = aug.node_mask is not None and aug.x.size(0) != aug.node_mask.numel()
    if sequence_keys:
        # sorted out against the input's sizes, before anything is written
        _filter_sequences(data, sequence_keys, aug, nodes_changed)
    if x_is_real:
        data.x = aug.x
    data.edge_index = aug.edge_index
    if "edge_attr" in present and data.edge_attr is not None:
        data.edge_attr = aug.edge_attr
    index_keys: list[str] = []
    if nodes_changed and aug.node_mask is not None:
        levelled = {*_CORE_KEYS, *node_keys, *edge_keys, *_follow_batch_keys(data, present)}
        index_keys = _node_index_keys(data, [key for key in present if key not in levelled],
                                      aug.node_mask.numel())
        if index_keys:
            _relabel_node_indices(data, index_keys, aug.node_mask, transform)
        for key in node_keys:
            data[key] = data[key][aug.node_mask]
        if "batch" in present and aug.batch is not None and data.batch is not None:
            data.batch = aug.batch
        if not isinstance(data, Batch) and "ptr" in present and isinstance(data.ptr, Tensor):
            # a Data that carries a batch's vectors: its ptr follows, as a Batch's does
            data.ptr = _node_pointer(data.ptr, aug.batch, aug.x.size(0))
    if (nodes_changed and "num_nodes" in data._store) or (not x_is_real and not isinstance(data, Batch)):
        # without x the count would otherwise be guessed from the edges left (edge-only
        # augmentations included: an end of a dropped edge is still a node)
        data.num_nodes = aug.x.size(0)
    num_added = 0
    if aug.edge_mask is not None:
        num_kept = count_true(aug.edge_mask)
        num_added = aug.edge_index.size(1) - num_kept
        if num_kept != old_num_edges or num_added:
            for key in edge_keys:
                value = data[key][aug.edge_mask]
                if num_added:
                    zeros = value.new_zeros((num_added, *value.shape[1:]))
                    value = torch.cat([value, zeros], dim=0)
                data[key] = value
    if isinstance(data, Batch):
        _refresh_batch(data, node_keys, edge_keys, num_added, nodes_changed, index_keys, present)
    return data


def _node_pointer(ptr: Tensor, batch: Tensor | None, num_nodes: int) -> Tensor:
    r"""``ptr`` (of a Data, not a Batch) recomputed for the nodes kept: from ``batch``, with
    as many graphs as ``ptr`` had, or more where ``batch`` says so (empty graphs keep
    their entry); ``[0, num_nodes]`` for one graph without ``batch``."""
    num_graphs = max(ptr.numel() - 1, 1)
    if batch is None:
        if num_graphs != 1:
            return ptr  # graphs that no batch vector delimits: nothing to recompute from
        new = torch.tensor([0, num_nodes])
    else:
        if not indices_below(batch, num_graphs):
            num_graphs = value_range(batch)[1] + 1
        new = pointer(batch, num_graphs)
    return new.to(device=ptr.device, dtype=ptr.dtype)


def _refresh_batch(
    data: Batch, node_keys: list[str], edge_keys: list[str], num_added: int, nodes_changed: bool,
    index_keys: Sequence[str] = (), present: Sequence[str] | None = None,
) -> None:
    r"""Recomputes ``ptr`` and the collation slices of a batch; edges are
    regrouped by graph when new edges were appended. ``present``: the
    attributes of ``data`` before the augmentation (``data.keys()``)."""
    if present is None:
        present = data.keys()
    num_graphs = data.num_graphs
    batch = data.batch
    if nodes_changed or "ptr" not in present or data.ptr is None:
        ptr = pointer(batch, num_graphs)
    else:
        ptr = data.ptr
    edge_index = data.edge_index
    edge_graph = batch.index_select(0, edge_index[0])
    if num_added:
        order = _group_edges_by_graph(edge_graph, num_added, num_graphs)
        data.edge_index = take_edges(edge_index, order)
        for key in [*edge_keys, "edge_attr"]:
            if key in present and data[key] is not None:
                data[key] = data[key].index_select(0, order)
    featureless = "x" not in present or data.x is None
    if featureless or (nodes_changed and getattr(data._store, "_num_nodes", None) is not None):
        # graphs without x: PyG splits the batch by these counts (to_data_list), and would
        # otherwise guess each graph's count from the edges left
        data._store._num_nodes = (ptr[1:] - ptr[:-1]).tolist()
    # Counting needs no particular order: the edges' graphs before regrouping do.
    edge_ptr = pointer(edge_graph, num_graphs)
    data.ptr = ptr
    slices = getattr(data, "_slice_dict", None)
    _refresh_follow_batch(data, ("x", *node_keys), batch, ptr, slices, present)
    edge_level = ("edge_index", "edge_attr", *edge_keys)
    if any(f"{key}_batch" in present or f"{key}_ptr" in present for key in edge_level):
        _refresh_follow_batch(data, edge_level, batch.index_select(0, data.edge_index[0]), edge_ptr, slices, present)
    if slices is None:
        return
    # New dicts: the shallow copy shares the old ones with the input batch.
    new_slices = dict(slices)
    new_inc = dict(getattr(data, "_inc_dict", {}))
    for key in ("x", *node_keys):
        if key in new_slices:
            new_slices[key] = ptr.to(new_slices[key].device)
    for key in ("edge_index", "edge_attr", *edge_keys):
        if key in new_slices:
            new_slices[key] = edge_ptr.to(new_slices[key].device)
    for key in ("edge_index", *index_keys):
        if key in new_inc:
            new_inc[key] = ptr[:-1].to(new_inc[key].device)
    data._slice_dict = new_slices
    data._inc_dict = new_inc


def _refresh_follow_batch(data: Batch, keys: Sequence[str], graph: Tensor, ptr: Tensor,
                          slices: dict[str, Tensor] | None, present: Sequence[str]) -> None:
    r"""The ``key_batch`` / ``key_ptr`` vectors PyG's loaders add for ``follow_batch=[key]``
    (they are not collated attributes, so no slices of theirs) rebuilt from the graph of
    every row of ``key`` and the rows' pointer."""
    collated = slices or {}
    for key in keys:
        if key not in present:
            continue
        if f"{key}_batch" in present and f"{key}_batch" not in collated:
            data[f"{key}_batch"] = graph
        if f"{key}_ptr" in present and f"{key}_ptr" not in collated:
            data[f"{key}_ptr"] = ptr


def _group_edges_by_graph(edge_graph: Tensor, num_added: int, num_graphs: int) -> Tensor:
    r"""Permutation that puts every graph's added edges after its kept edges."""
    num_kept = edge_graph.numel() - num_added
    kept, added = edge_graph[:num_kept], edge_graph[num_kept:]
    if on_host(edge_graph) or not (is_sorted(kept) and is_sorted(added)):
        # On the CPU, NumPy's stable sort merges the two sorted runs in one pass.
        return stable_argsort(edge_graph)
    kept_counts = torch.bincount(kept, minlength=num_graphs)
    added_counts = torch.bincount(added, minlength=num_graphs)
    start = exclusive_cumsum(kept_counts + added_counts)
    device = edge_graph.device
    pos_kept = (
        start[kept] + torch.arange(num_kept, device=device) - exclusive_cumsum(kept_counts)[kept]
    )
    pos_added = (
        start[added]
        + kept_counts[added]
        + torch.arange(num_added, device=device)
        - exclusive_cumsum(added_counts)[added]
    )
    order = torch.empty(edge_graph.numel(), dtype=torch.long, device=device)
    order[pos_kept] = torch.arange(num_kept, device=device)
    order[pos_added] = torch.arange(num_kept, edge_graph.numel(), device=device)
    return order


def _check_homogeneous(transform: Any, data: Any) -> None:
    if isinstance(data, HeteroData):
        raise TypeError(f"{type(transform).__name__} augments homogeneous graphs (Data, Batch), not HeteroData; "
                        "apply it per node / edge type, or to data.to_homogeneous()")


# --------------------------------------------------------------------------- base classes
class AugmentTransform(BaseTransform):
    r"""Base class of the stochastic transforms: a PyG
    :class:`~torch_geometric.transforms.BaseTransform` with a ``training``
    flag. In evaluation mode (:meth:`eval`) the transform is the identity
    (which stores ``num_nodes`` on a single graph without ``x``, as every
    transform does: see :func:`_with_node_count`)."""

    def __init__(self) -> None:
        self.training = True

    def train(self: T, mode: bool = True) -> T:
        self.training = bool(mode)
        return self

    def eval(self: T) -> T:
        return self.train(False)

    def __call__(self, data: Any) -> Any:
        if not self.training:
            return _with_node_count(copy.copy(data))
        _check_homogeneous(self, data)
        return _with_node_count(super().__call__(data))

    def forward(self, data: Any) -> Any:  # pragma: no cover - overridden
        return data

    #: Whether :meth:`on_graphs` can restrict this augmentation to some graphs of a batch.
    restrictable = False

    def on_graphs(self, data: Any, graphs: Tensor) -> Any:
        r"""This augmentation applied to the graphs of a batch where ``graphs``
        (bool, one entry per graph) is :obj:`True`, the others left unchanged:
        the step of a per-graph draw from a pool
        (:class:`RandomChoice` with ``per_graph=True``). In evaluation mode the
        input is returned (a shallow copy), as by ``__call__``.

        Raises:
            ValueError: For augmentations that cannot be restricted to some graphs.
        """
        if not self.restrictable:
            raise ValueError(f"{type(self).__name__} cannot be applied to some graphs of a batch only "
                             f"(per-graph pools take {_RESTRICTABLE})")
        if not self.training:
            return _with_node_count(copy.copy(data))
        return _with_node_count(self._run(copy.copy(data), graphs))

    def _run(self, data: Any, graphs: Tensor | None) -> Any:
        r"""The augmentation of ``data``, restricted to ``graphs`` unless :obj:`None`."""
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        # the main settings, then every other constructor argument that differs
        # from its default (so logged configurations tell variants apart)
        params = dict(self._params())
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if name in ("self", "generator") or name in params or not hasattr(self, name):
                continue
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            value = getattr(self, name)
            if param.default is param.empty or not _same_setting(value, param.default):
                params[name] = value
        args = ", ".join(f"{key}={value!r}" for key, value in params.items())
        return f"{self.__class__.__name__}({args})"


def _same_setting(value: Any, default: Any) -> bool:
    if value is default:
        return True
    if isinstance(value, Tensor) or isinstance(default, Tensor):
        return False
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:  # settings that do not compare
        return False


class _GraphAugment(AugmentTransform):
    r"""A transform that applies one graph function and writes its result back
    (restrictable where the function takes ``graphs=``)."""

    def _augment(
        self,
        x: Tensor,
        edge_index: Tensor,
        batch: Tensor | None,
        edge_attr: Tensor | None,
        num_graphs: int | None,
        data: Data,
        graphs: Tensor | None = None,
    ) -> Augmented:
        raise NotImplementedError

    def _is_identity(self) -> bool:
        return False

    def forward(self, data: Data) -> Data:
        return self._run(data, None)

    def _run(self, data: Data, graphs: Tensor | None) -> Data:
        if self._is_identity():
            return data
        x, real, edge_index, batch, num_graphs = _graph_tensors(data)
        edge_attr = data.edge_attr if "edge_attr" in data else None
        aug = self._augment(x, edge_index, batch, edge_attr, num_graphs, data, graphs)
        return _write_back(data, aug, real, type(self).__name__)


# --------------------------------------------------------------------------- augmentations
class DropNodes(_GraphAugment):
    r"""Node dropping (`GraphCL <https://arxiv.org/abs/2010.13902>`_); see
    :func:`gcl.augment.functional.drop_nodes`.

    .. math::
        k_g = \min(\operatorname{round}(p\, n_g), n_g - 1)

    Args:
        p (float): fraction / probability of dropped nodes (default: :obj:`0.2`).
        mode (str): ``'fraction'`` or ``'bernoulli'`` (default: ``'fraction'``).
        graphcl_reference (bool): GraphCL code's :math:`\lfloor p\, n_g\rfloor`
            (default: :obj:`False`).
        generator (torch.Generator, optional): source of randomness.
        isolate (bool): keep the dropped nodes as isolated nodes (their edges
            removed), so that the node set does not change (node-level
            contrast; PyGCL's ``NodeDropping``) (default: :obj:`False`).

    Example:
        >>> from torch_geometric.data import Data
        >>> data = Data(x=torch.randn(5, 2), edge_index=torch.tensor([[0, 1], [1, 0]]))
        >>> DropNodes(p=0.4)(data).num_nodes
        3
        >>> DropNodes(p=0.4, isolate=True)(data).num_nodes
        5
    """

    restrictable = True

    def __init__(
        self,
        p: float = 0.2,
        mode: Literal["fraction", "bernoulli"] = "fraction",
        graphcl_reference: bool = False,
        generator: torch.Generator | None = None,
        isolate: bool = False,
    ) -> None:
        super().__init__()
        self.p = check_probability("p", p)
        self.mode = check_choice("mode", mode, ("fraction", "bernoulli"))
        self.graphcl_reference = check_switch("graphcl_reference", graphcl_reference)
        self.generator = check_generator("generator", generator)
        self.isolate = check_switch("isolate", isolate)

    def _is_identity(self) -> bool:
        return self.p == 0.0

    def _augment(
        self,
        x: Tensor,
        edge_index: Tensor,
        batch: Tensor | None,
        edge_attr: Tensor | None,
        num_graphs: int | None,
        data: Data,
        graphs: Tensor | None = None,
    ) -> Augmented:
        return F.drop_nodes(
            x,
            edge_index,
            batch,
            p=self.p,
            mode=self.mode,
            edge_attr=edge_attr,
            generator=self.generator,
            num_graphs=num_graphs,
            graphcl_reference=self.graphcl_reference,
            graphs=graphs,
            isolate=self.isolate,
        )

    def _params(self) -> dict[str, Any]:
        return {"p": self.p, "mode": self.mode}


class PerturbEdges(_GraphAugment):
    r"""Edge perturbation (`GraphCL <https://arxiv.org/abs/2010.13902>`_):
    remove a fraction :math:`p` of the edges of every graph and add as many new
    ones inside the same graph; see :func:`gcl.augment.functional.perturb_edges`.
    Every stored copy of an edge counts as an edge and as an occupied node pair,
    so a multigraph may get fewer added edges than a graph without parallel
    copies: coalesce it first (:func:`torch_geometric.utils.coalesce`) for the
    exact count.

    Args:
        p (float): perturbation fraction (default: :obj:`0.2`).
        mode (str): ``'both'``, ``'remove'`` or ``'add'`` (default: ``'both'``).
        sampling (str): ``'fraction'`` or ``'bernoulli'`` (default: ``'fraction'``).
        force_undirected (bool, optional): treat the graphs as undirected
            (:obj:`True`: the edges stored as :math:`u \le v` are sampled and the
            decisions mirrored) or directed (:obj:`False`). :obj:`None` (default)
            detects it from the edges of the whole call (of every graph of a
            batch together) wherever counts are kept: ``sampling='fraction'``,
            any additions, :meth:`on_graphs`; otherwise (``sampling='bernoulli'``
            with ``mode='remove'``) it detects nothing and removes both directions
            of a node pair together (see :func:`~gcl.augment.functional.perturb_edges`).
        graphcl_reference (bool): GraphCL ``unsupervised_TU`` behaviour (remove
            only) (default: :obj:`False`).
        generator (torch.Generator, optional): source of randomness.
    """

    restrictable = True

    def __init__(
        self,
        p: float = 0.2,
        mode: Literal["both", "remove", "add"] = "both",
        sampling: Literal["fraction", "bernoulli"] = "fraction",
        force_undirected: bool | None = None,
        graphcl_reference: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.p = check_probability("p", p)
        self.mode = check_choice("mode", mode, ("both", "remove", "add"))
        self.sampling = check_choice("sampling", sampling, ("fraction", "bernoulli"))
        self.force_undirected = check_switch("force_undirected", force_undirected, optional=True)
        self.graphcl_reference = check_switch("graphcl_reference", graphcl_reference)
        self.generator = check_generator("generator", generator)

    def _is_identity(self) -> bool:
        return self.p == 0.0

    def _augment(
        self,
        x: Tensor,
        edge_index: Tensor,
        batch: Tensor | None,
        edge_attr: Tensor | None,
        num_graphs: int | None,
        data: Data,
        graphs: Tensor | None = None,
    ) -> Augmented:
        return F.perturb_edges(
            x,
            edge_index,
            batch,
            p=self.p,
            mode=self.mode,
            sampling=self.sampling,
            force_undirected=self.force_undirected,
            edge_attr=edge_attr,
            generator=self.generator,
            num_graphs=num_graphs,
            graphcl_reference=self.graphcl_reference,
            graphs=graphs,
        )

    def _params(self) -> dict[str, Any]:
        return {"p": self.p, "mode": self.mode, "sampling": self.sampling}


class DropEdges(_GraphAugment):
    r"""Edge dropping (`GRACE <https://arxiv.org/abs/2006.04131>`_): every edge
    (both directions of an undirected one together) is removed with
    probability :math:`p`; see :func:`gcl.augment.functional.drop_edges`.

    Args:
        p (float): drop probability (default: :obj:`0.2`).
        sampling (str): ``'bernoulli'`` or ``'fraction'`` (default: ``'bernoulli'``).
        force_undirected (bool, optional): how node pairs are decided, as in
            :func:`~gcl.augment.functional.drop_edges`: with ``'bernoulli'``
            sampling :obj:`None` (default) and :obj:`True` remove both directions
            of a pair together, with ``'fraction'`` :obj:`None` detects
            undirected graphs; :obj:`False` decides every stored edge alone.
        generator (torch.Generator, optional): source of randomness.
    """

    def __init__(
        self,
        p: float = 0.2,
        sampling: Literal["fraction", "bernoulli"] = "bernoulli",
        force_undirected: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.p = check_probability("p", p)
        self.sampling = check_choice("sampling", sampling, ("fraction", "bernoulli"))
        self.force_undirected = check_switch("force_undirected", force_undirected, optional=True)
        self.generator = check_generator("generator", generator)

    def _is_identity(self) -> bool:
        return self.p == 0.0

    def _augment(
        self,
        x: Tensor,
        edge_index: Tensor,
        batch: Tensor | None,
        edge_attr: Tensor | None,
        num_graphs: int | None,
        data: Data,
        graphs: Tensor | None = None,
    ) -> Augmented:
        return F.drop_edges(
            x,
            edge_index,
            batch,
            p=self.p,
            sampling=self.sampling,
            force_undirected=self.force_undirected,
            edge_attr=edge_attr,
            generator=self.generator,
            num_graphs=num_graphs,
        )

    def _params(self) -> dict[str, Any]:
        return {"p": self.p, "sampling": self.sampling}


class RandomWalkSubgraph(_GraphAugment):
    r"""Subgraph sampling (`GraphCL <https://arxiv.org/abs/2010.13902>`_): every
    graph keeps :math:`\operatorname{round}(\text{ratio}\cdot n_g)` nodes grown
    from a random seed; see :func:`gcl.augment.functional.random_walk_subgraph`.

    Args:
        ratio (float): fraction of nodes kept (default: :obj:`0.8`).
        walk_length (int, optional): maximal number of expansion steps, the
            steps of restarts included.
        expansion (float): per-step admission probability of frontier nodes
            (default: :obj:`1.0`).
        restart (bool): re-seed a graph at the step it runs out of nodes to
            reach (default: :obj:`True`).
        graphcl_reference (bool): GraphCL code's one-hop subgraph
            (default: :obj:`False`).
        generator (torch.Generator, optional): source of randomness.
    """

    restrictable = True

    def __init__(
        self,
        ratio: float = 0.8,
        walk_length: int | None = None,
        expansion: float = 1.0,
        restart: bool = True,
        graphcl_reference: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.ratio = check_probability("ratio", ratio)
        if isinstance(expansion, bool) or not 0.0 < float(expansion) <= 1.0:
            raise ValueError(f"expansion must be in (0, 1] (got {expansion})")
        if walk_length is not None and (not is_integer(walk_length) or walk_length < 0):
            raise ValueError(
                f"walk_length must be a non-negative integer or None (got {walk_length!r})"
            )
        self.walk_length = walk_length
        self.expansion = float(expansion)
        self.restart = check_switch("restart", restart)
        self.graphcl_reference = check_switch("graphcl_reference", graphcl_reference)
        self.generator = check_generator("generator", generator)

    def _is_identity(self) -> bool:
        return self.ratio == 1.0 and not self.graphcl_reference

    def _augment(
        self,
        x: Tensor,
        edge_index: Tensor,
        batch: Tensor | None,
        edge_attr: Tensor | None,
        num_graphs: int | None,
        data: Data,
        graphs: Tensor | None = None,
    ) -> Augmented:
        return F.random_walk_subgraph(
            x,
            edge_index,
            batch,
            ratio=self.ratio,
            walk_length=self.walk_length,
            expansion=self.expansion,
            restart=self.restart,
            edge_attr=edge_attr,
            generator=self.generator,
            num_graphs=num_graphs,
            graphcl_reference=self.graphcl_reference,
            graphs=graphs,
        )

    def _params(self) -> dict[str, Any]:
        return {"ratio": self.ratio, "walk_length": self.walk_length, "expansion": self.expansion}


class MaskFeatures(AugmentTransform):
    r"""Attribute masking; ``mode='node'`` replaces whole node feature vectors
    (`GraphCL <https://arxiv.org/abs/2010.13902>`_), ``mode='dim'`` whole
    feature columns; either way the masked entries get ``fill`` (by default
    noise, as GraphCL's code draws it; ``fill='zero'`` zeroes them, as
    `GRACE <https://arxiv.org/abs/2006.04131>`_ masks columns); see
    :func:`gcl.augment.functional.mask_features`.

    Args:
        p (float): masking fraction / probability (default: :obj:`0.2`).
        mode (str): ``'node'`` or ``'dim'`` (default: ``'node'``).
        fill (str): ``'normal'``, ``'zero'`` or ``'mean'`` (default: ``'normal'``).
        per_graph (bool): ``mode='dim'``: one column mask per graph
            (default: :obj:`False`).
        noise_mean (float): noise mean (default: :obj:`0.5`).
        noise_std (float): noise standard deviation (default: :obj:`0.5`).
        graphcl_reference (bool): mask :math:`\lfloor p\, n_g\rfloor` nodes
            (default: :obj:`False`).
        generator (torch.Generator, optional): source of randomness.
    """

    def __init__(
        self,
        p: float = 0.2,
        mode: Literal["node", "dim"] = "node",
        fill: Literal["normal", "zero", "mean"] = "normal",
        per_graph: bool = False,
        noise_mean: float = 0.5,
        noise_std: float = 0.5,
        graphcl_reference: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.p = check_probability("p", p)
        self.mode = check_choice("mode", mode, ("node", "dim"))
        self.fill = check_choice("fill", fill, ("normal", "zero", "mean"))
        check_real("noise_mean", noise_mean)
        check_real("noise_std", noise_std, minimum=0.0)
        self.per_graph = check_switch("per_graph", per_graph)
        self.noise_mean = noise_mean
        self.noise_std = noise_std
        self.graphcl_reference = check_switch("graphcl_reference", graphcl_reference)
        self.generator = check_generator("generator", generator)

    restrictable = True

    def forward(self, data: Data) -> Data:
        return self._run(data, None)

    def _run(self, data: Data, graphs: Tensor | None) -> Data:
        if self.p == 0.0:
            return data
        if "x" not in data or data.x is None:
            raise ValueError("MaskFeatures needs node features data.x")
        batch, num_graphs = _graph_index(data)  # no edges needed (point sets, features only)
        data.x = F.mask_features(
            data.x,
            self.p,
            mode=self.mode,
            fill=self.fill,
            batch=batch,
            per_graph=self.per_graph,
            noise_mean=self.noise_mean,
            noise_std=self.noise_std,
            generator=self.generator,
            num_graphs=num_graphs,
            graphcl_reference=self.graphcl_reference,
            graphs=graphs,
        ).x
        return data

    def _params(self) -> dict[str, Any]:
        return {"p": self.p, "mode": self.mode, "fill": self.fill}


def _stored_centrality(data: Data, kind: str, num_nodes: int, for_edges: bool = False) -> Tensor | None:
    r"""The node centrality of ``kind`` stored on ``data``, checked (the error names the
    attribute), or :obj:`None`."""
    keys = [CENTRALITY_KEYS[kind]]
    if for_edges and kind == "pagerank-gca":
        # GCA's edge weights take 200 PageRank steps, its feature weights 10: stored apart
        keys.insert(0, A.GCA_EDGE_PAGERANK_KEY)
    for key in keys:
        value = data[key] if key in data else None
        if isinstance(value, Tensor):
            return A.check_node_centrality(value, num_nodes, f"node_centrality (data.{key})")
    return None


class AdaptiveDropEdges(_GraphAugment):
    r"""Centrality-adaptive edge dropping (`GCA
    <https://arxiv.org/abs/2010.14945>`_); see
    :func:`gcl.augment.adaptive.adaptive_drop_edges`. Uses the node centrality
    stored by :class:`AddCentrality` when present (it must be finite and
    :math:`\ge 0`: a :class:`ValueError` names the attribute), and computes it otherwise.
    With ``'pagerank-gca'`` it takes ``data.edge_truncated_pagerank`` (the
    200-step PageRank of GCA's edge weights that :meth:`AddCentrality.adaptive`
    stores) before ``data.truncated_pagerank``.

    .. math::
        p_e = \min\Bigl(\frac{s_{\max} - s_e}{s_{\max} - \mu_s}\, p,\; p_\tau\Bigr)

    Args:
        p (float): overall drop rate (default: :obj:`0.3`).
        threshold (float): cut-off :math:`p_\tau` (default: :obj:`0.7`).
        centrality (str): ``'degree'``, ``'pagerank'``, ``'eigenvector'`` or
            ``'pagerank-gca'`` (GCA's PageRank, :func:`~gcl.augment.centrality.truncated_pagerank`)
            (default: ``'degree'``).
        aggr (str): ``'target'``, ``'source'`` or ``'mean'`` (default: ``'target'``).
        log_offset (float): :math:`\log(\varphi + \text{offset})` (default: :obj:`0.0`).
        force_undirected (bool): one decision per node pair (default: :obj:`False`).
        generator (torch.Generator, optional): source of randomness.
    """

    def __init__(
        self,
        p: float = 0.3,
        threshold: float = 0.7,
        centrality: CentralityKind = "degree",
        aggr: Literal["target", "source", "mean"] = "target",
        log_offset: float = 0.0,
        force_undirected: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.p = check_probability("p", p)
        self.threshold = check_probability("threshold", threshold)
        self.centrality = check_choice("centrality", centrality, tuple(CENTRALITY_KEYS))
        self.aggr = check_choice("aggr", aggr, ("target", "source", "mean"))
        check_real("log_offset", log_offset, minimum=0.0)
        self.force_undirected = check_switch("force_undirected", force_undirected)
        if self.force_undirected and aggr != "mean":
            raise ValueError(f"force_undirected=True needs aggr='mean' (got aggr={aggr!r})")
        self.log_offset = log_offset
        self.generator = check_generator("generator", generator)

    def _is_identity(self) -> bool:
        return self.p == 0.0

    def _augment(
        self,
        x: Tensor,
        edge_index: Tensor,
        batch: Tensor | None,
        edge_attr: Tensor | None,
        num_graphs: int | None,
        data: Data,
        graphs: Tensor | None = None,
    ) -> Augmented:
        return A.adaptive_drop_edges(
            x,
            edge_index,
            batch,
            p=self.p,
            threshold=self.threshold,
            centrality=self.centrality,
            node_centrality=_stored_centrality(data, self.centrality, x.size(0), for_edges=True),
            aggr=self.aggr,
            log_offset=self.log_offset,
            force_undirected=self.force_undirected,
            edge_attr=edge_attr,
            generator=self.generator,
            num_graphs=num_graphs,
        )

    def _params(self) -> dict[str, Any]:
        return {"p": self.p, "threshold": self.threshold, "centrality": self.centrality}


class AdaptiveMaskFeatures(AugmentTransform):
    r"""Centrality-adaptive feature masking (`GCA
    <https://arxiv.org/abs/2010.14945>`_): zeroes feature dimensions that are
    rare on central nodes; see :func:`gcl.augment.adaptive.adaptive_mask_features`.
    Uses the node centrality stored by :class:`AddCentrality` when present (checked
    as by :class:`AdaptiveDropEdges`).

    Args:
        p (float): overall masking rate (default: :obj:`0.3`).
        threshold (float): cut-off :math:`p_\tau` (default: :obj:`0.7`).
        centrality (str): ``'degree'``, ``'pagerank'``, ``'eigenvector'`` or
            ``'pagerank-gca'`` (GCA's PageRank, :func:`~gcl.augment.centrality.truncated_pagerank`)
            (default: ``'degree'``).
        dense (bool): weight by :math:`|x_{ui}|` (default: :obj:`False`).
        per_graph (bool): one mask per graph (default: :obj:`True`).
        log_offset (float): :math:`\log(w + \text{offset})` (default: :obj:`0.0`).
        generator (torch.Generator, optional): source of randomness.
    """

    def __init__(
        self,
        p: float = 0.3,
        threshold: float = 0.7,
        centrality: CentralityKind = "degree",
        dense: bool = False,
        per_graph: bool = True,
        log_offset: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.p = check_probability("p", p)
        self.threshold = check_probability("threshold", threshold)
        self.centrality = check_choice("centrality", centrality, tuple(CENTRALITY_KEYS))
        check_real("log_offset", log_offset, minimum=0.0)
        self.dense = check_switch("dense", dense)
        self.per_graph = check_switch("per_graph", per_graph)
        self.log_offset = log_offset
        self.generator = check_generator("generator", generator)

    def forward(self, data: Data) -> Data:
        if self.p == 0.0:
            return data
        if "x" not in data or data.x is None:
            raise ValueError("AdaptiveMaskFeatures needs node features data.x")
        x, _, edge_index, batch, num_graphs = _graph_tensors(data)
        data.x = A.adaptive_mask_features(
            x,
            edge_index,
            batch,
            p=self.p,
            threshold=self.threshold,
            centrality=self.centrality,
            node_centrality=_stored_centrality(data, self.centrality, x.size(0)),
            dense=self.dense,
            per_graph=self.per_graph,
            log_offset=self.log_offset,
            generator=self.generator,
            num_graphs=num_graphs,
        ).x
        return data

    def _params(self) -> dict[str, Any]:
        return {"p": self.p, "threshold": self.threshold, "centrality": self.centrality}


class AddCentrality(BaseTransform):
    r"""Stores a node centrality on the graph, under ``data.degree_centrality``,
    ``data.pagerank``, ``data.eigenvector_centrality`` or
    ``data.truncated_pagerank`` (see
    :data:`gcl.augment.centrality.CENTRALITY_KEYS`), computed per graph with the
    defaults of its function (:meth:`adaptive`: as the adaptive augmentations
    compute it).

    Use it as a ``pre_transform`` (or once over a dataset) so that the adaptive
    augmentations read the stored value instead of recomputing it every step.
    Deterministic: :meth:`eval` does not apply to it.

    Args:
        kind (str): ``'degree'``, ``'pagerank'``, ``'eigenvector'`` or
            ``'pagerank-gca'`` (GCA's PageRank, :func:`~gcl.augment.centrality.truncated_pagerank`)
            (default: ``'degree'``).
        key (str, optional): attribute name (default: the standard name).
        **kwargs: passed to the centrality function (e.g. ``damping``, ``tol``,
            ``method='exact'`` for the eigenvector, ``iterations``).

    Example:
        >>> from torch_geometric.data import Data
        >>> data = Data(x=torch.ones(3, 1), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]))
        >>> AddCentrality("degree")(data).degree_centrality
        tensor([0.5000, 1.0000, 0.5000])
    """

    def __init__(
        self, kind: CentralityKind = "degree", key: str | None = None, **kwargs: Any
    ) -> None:
        check_centrality_options(kind, kwargs)
        self.kind = kind
        self.key = key or CENTRALITY_KEYS[kind]
        self.kwargs = kwargs

    @classmethod
    def adaptive(cls, kind: CentralityKind = "degree") -> AddCentrality | Compose:
        r"""The centrality exactly as the adaptive augmentations compute it
        when none is stored: the raw degree (GCA's, a self loop counted once)
        rather than the degree normalised by :math:`n_g - 1`; the exact
        eigenvector (``method='exact'``) rather than networkx's power
        iteration; for ``'pagerank-gca'`` both of GCA's PageRanks, a
        :class:`Compose` that stores the 10-step one of the feature weights
        under ``data.truncated_pagerank`` and the 200-step one of the edge
        weights under ``data.edge_truncated_pagerank``
        (:data:`~gcl.augment.adaptive.GCA_EDGE_PAGERANK_KEY`). The adaptive
        augmentations use a stored value as given, and its scale matters with
        ``log_offset != 0`` or ``per_graph=False``; with this transform first
        they give what they give without it."""
        features = cls(kind, **A.gca_centrality_options(kind, for_edges=False))
        edges = A.gca_centrality_options(kind, for_edges=True)
        if edges == A.gca_centrality_options(kind, for_edges=False):
            return features
        # GCA's PageRank: the edge weights' own steps, stored apart
        return Compose([features, cls(kind, key=A.GCA_EDGE_PAGERANK_KEY, **edges)])

    def forward(self, data: Data) -> Data:
        _check_homogeneous(self, data)
        x, _, edge_index, batch, num_graphs = _graph_tensors(data)
        data[self.key] = node_centrality(
            self.kind,
            edge_index,
            x.size(0),
            batch,
            num_graphs=num_graphs,
            **self.kwargs,
        )
        slices = getattr(data, "_slice_dict", None)
        if isinstance(data, Batch) and slices is not None:
            # Register the new node-level attribute so that the batch still splits.
            node_slices = slices.get("x", data.ptr)
            data._slice_dict = {**slices, self.key: node_slices}
            incs = getattr(data, "_inc_dict", {})
            data._inc_dict = {**incs, self.key: torch.zeros(num_graphs or 0, dtype=torch.long)}
        return data

    def __repr__(self) -> str:
        key = "" if self.key == CENTRALITY_KEYS[self.kind] else f", key={self.key!r}"
        options = "".join(f", {name}={value!r}" for name, value in self.kwargs.items())
        return f"{self.__class__.__name__}(kind={self.kind!r}{key}{options})"


# --------------------------------------------------------------------------- composition
Transform = Callable[[Any], Any]


def _set_training(transform: Any, mode: bool) -> None:
    if hasattr(transform, "train") and callable(transform.train):
        transform.train(mode)


class Identity(AugmentTransform):
    r"""Returns its input (as a shallow copy)."""

    restrictable = True

    def forward(self, data: Any) -> Any:
        return data

    def _run(self, data: Any, graphs: Tensor | None) -> Any:
        return data


class Compose(AugmentTransform):
    r"""Applies transforms one after another; :meth:`train` / :meth:`eval`
    propagate to the children.

    In evaluation mode the children still run, each in evaluation mode: gcl's
    random transforms are then the identity, while deterministic steps (PyG
    transforms such as :class:`~torch_geometric.transforms.Constant`,
    :class:`AddCentrality`, your own functions) apply as in training, so
    evaluation sees the inputs training saw, minus the randomness.

    Args:
        transforms (Sequence[Callable]): the transforms, applied in order.
    """

    def __init__(self, transforms: Sequence[Transform]) -> None:
        super().__init__()
        self.transforms = list(transforms)

    def train(self, mode: bool = True) -> Compose:
        super().train(mode)
        for transform in self.transforms:
            _set_training(transform, mode)
        return self

    def __call__(self, data: Any) -> Any:
        # in evaluation mode too: the children decide (see the class docstring)
        if self.training:
            _check_homogeneous(self, data)
        return _with_node_count(self.forward(copy.copy(data)))

    def forward(self, data: Any) -> Any:
        for transform in self.transforms:
            data = transform(data)
        return data

    def on_graphs(self, data: Any, graphs: Tensor) -> Any:
        for transform in self.transforms:
            if not isinstance(transform, AugmentTransform):
                raise ValueError(f"Compose holds {type(transform).__name__}, which cannot be applied to some "
                                 "graphs of a batch only")
            data = transform.on_graphs(data, graphs)
        return data

    def __repr__(self) -> str:
        inner = ",\n".join(f"  {t!r}" for t in self.transforms)
        return f"{self.__class__.__name__}([\n{inner}\n])"


class RandomChoice(AugmentTransform):
    r"""Applies ``k`` distinct transforms drawn uniformly at random on every
    call (in the drawn order), like GraphCL's ``random2``/``random3``/``random4``
    augmentation pools.

    Applied to a collated batch the draw is shared by all graphs of that call
    (``per_graph=False``), or every graph of the batch draws its own
    (``per_graph=True``, as GraphCL's code draws per graph in its dataset):
    then each drawn position ``j < k`` applies, transform by transform, to the
    graphs that drew it there (:meth:`AugmentTransform.on_graphs`), so one pass
    per transform serves the batch. As a dataset ``transform=`` every graph
    draws its own either way.

    Args:
        transforms (Sequence[Callable]): the pool.
        k (int): how many distinct transforms to apply (default: :obj:`1`).
        generator (torch.Generator, optional): source of randomness for the
            draw.
        per_graph (bool): one draw per graph of a batch instead of one per call;
            the pool must hold gcl augmentations that can be restricted to some
            graphs (:class:`DropNodes`, :class:`PerturbEdges`,
            :class:`RandomWalkSubgraph`, :class:`MaskFeatures`,
            :class:`Identity`, a :class:`Compose` of them) (default: :obj:`False`).
    """

    def __init__(
        self, transforms: Sequence[Transform], k: int = 1, generator: torch.Generator | None = None,
        per_graph: bool = False,
    ) -> None:
        super().__init__()
        self.transforms = list(transforms)
        if not self.transforms:
            raise ValueError("transforms must not be empty (got [])")
        if not is_integer(k) or not 1 <= k <= len(self.transforms):
            raise ValueError(f"k must be an integer in [1, {len(self.transforms)}] (got {k!r})")
        if per_graph:
            for transform in self.transforms:
                _check_restrictable(transform)
        self.k = int(k)
        self.generator = check_generator("generator", generator)
        self.per_graph = check_switch("per_graph", per_graph)

    def train(self, mode: bool = True) -> RandomChoice:
        super().train(mode)
        for transform in self.transforms:
            _set_training(transform, mode)
        return self

    def forward(self, data: Any) -> Any:
        # drawn where the generator lives: a CUDA generator cannot draw CPU numbers
        device = self.generator.device if self.generator is not None else None
        if self.per_graph:
            return self._per_graph(data, device)
        order = torch.randperm(len(self.transforms), generator=self.generator, device=device)[: self.k]
        for index in order.tolist():
            data = self.transforms[index](data)
        return data

    def _per_graph(self, data: Any, device: torch.device | None) -> Any:
        batch, num_graphs = _graph_index(data)
        if num_graphs is None:  # a Data with a batch vector
            num_graphs = int(batch.max()) + 1 if batch is not None and batch.numel() else 1
        # every graph's own k distinct transforms, in its drawn order
        draws = torch.rand(num_graphs, len(self.transforms), generator=self.generator, device=device)
        order = draws.argsort(dim=1)[:, : self.k].cpu()
        for position in range(self.k):
            for index, transform in enumerate(self.transforms):
                chosen = order[:, position] == index
                if bool(chosen.any()):
                    data = cast(AugmentTransform, transform).on_graphs(data, chosen)  # checked in __init__
        return data

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        per_graph = ", per_graph=True" if self.per_graph else ""
        return f"{self.__class__.__name__}([{inner}], k={self.k}{per_graph})"


def _check_restrictable(transform: Any) -> None:
    if isinstance(transform, Compose):
        for child in transform.transforms:
            _check_restrictable(child)
        return
    if isinstance(transform, MaskFeatures) and transform.mode == "dim" and not transform.per_graph:
        raise ValueError("per_graph=True draws every graph's own transform, and MaskFeatures(mode='dim') masks "
                         "the same columns of every graph; give it per_graph=True (one column mask per graph)")
    if not getattr(transform, "restrictable", False):
        raise ValueError(f"per_graph=True draws every graph's own transform, and {type(transform).__name__} "
                         f"cannot be applied to some graphs of a batch only; per-graph pools take {_RESTRICTABLE}")


#: The augmentations that :meth:`AugmentTransform.on_graphs` restricts to some graphs.
_RESTRICTABLE = "DropNodes, PerturbEdges, RandomWalkSubgraph, MaskFeatures, Identity and Compose of them"


class MultiView(AugmentTransform):
    r"""Produces several augmented views of the same graph(s), as the input of
    a contrastive loss.

    ``MultiView(t, num_views=2)`` applies the same (stochastic) transform
    ``num_views`` times; ``MultiView([t1, t2])`` applies one transform per view.
    The result is a tuple of views.

    On a collated :class:`~torch_geometric.data.Batch` this returns a tuple of
    batches (the recommended use: augment after collation). As a dataset
    ``transform=`` it returns a tuple of :class:`~torch_geometric.data.Data`
    per graph, which PyG's :class:`~torch_geometric.loader.DataLoader`
    collates into a list of batches, one per view.

    In evaluation mode every view applies its transform in evaluation mode:
    gcl's random transforms are the identity (a :class:`Compose` still runs its
    deterministic steps), so every view is the input as training would see it
    without the randomness. Other callables run as they are.

    Args:
        transforms (Callable or Sequence[Callable]): one transform for all
            views, or one per view.
        num_views (int, optional): number of views; must equal
            ``len(transforms)`` when a sequence is given (default: :obj:`2`
            for a single transform).
    """

    def __init__(
        self, transforms: Transform | Sequence[Transform], num_views: int | None = None
    ) -> None:
        super().__init__()
        if isinstance(transforms, Sequence):
            self.transforms = list(transforms)
            if not self.transforms:
                raise ValueError("transforms must not be empty (got [])")
            if num_views is not None and num_views != len(self.transforms):
                raise ValueError(
                    f"num_views must match the {len(self.transforms)} transforms (got {num_views})"
                )
        else:
            count = 2 if num_views is None else num_views
            if not is_integer(count) or count < 1:
                raise ValueError(f"num_views must be a positive integer (got {num_views!r})")
            self.transforms = [transforms] * int(count)
        self.num_views = len(self.transforms)

    def train(self, mode: bool = True) -> MultiView:
        super().train(mode)
        for transform in self.transforms:
            _set_training(transform, mode)
        return self

    def __call__(self, data: Any) -> tuple[Any, ...]:
        # in evaluation mode the children are too (train/eval propagate), and decide
        if self.training:
            _check_homogeneous(self, data)
        return tuple(transform(data) for transform in self.transforms)

    def forward(self, data: Any) -> tuple[Any, ...]:
        return self(data)

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"{self.__class__.__name__}([{inner}])"


def gca_augmentation(
    edge_p: float = 0.3,
    feature_p: float = 0.1,
    centrality: CentralityKind = "degree",
    threshold: float = 0.7,
    generator: torch.Generator | None = None,
) -> Compose:
    r"""The view generator of `GCA <https://arxiv.org/abs/2010.14945>`_:
    centrality-adaptive edge dropping followed by adaptive feature masking.
    With ``centrality='degree'`` this is the degree-centrality edge dropping and
    unimportant-dimension zeroing used with adaptive Barlow Twins.

    Args:
        edge_p (float): overall edge drop rate (default: :obj:`0.3`).
        feature_p (float): overall feature masking rate (default: :obj:`0.1`).
        centrality (str): ``'degree'``, ``'pagerank'``, ``'eigenvector'`` or
            ``'pagerank-gca'`` (GCA's PageRank, :func:`~gcl.augment.centrality.truncated_pagerank`)
            (default: ``'degree'``).
        threshold (float): cut-off :math:`p_\tau` (default: :obj:`0.7`).
        generator (torch.Generator, optional): source of randomness.
    """
    return Compose(
        [
            # both steps weigh by the input graph's centralities, as GCA computes them once
            AddCentrality.adaptive(centrality),
            AdaptiveDropEdges(edge_p, threshold, centrality, generator=generator),
            AdaptiveMaskFeatures(feature_p, threshold, centrality, generator=generator),
        ]
    )
