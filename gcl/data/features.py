r"""Node-feature fallbacks for datasets whose graphs carry no node features.

Social TU datasets (IMDB, COLLAB, REDDIT) ship structure only. Two
conventions are in use and both are available:

* ``"degree"`` — one-hot node degree, with degrees above ``max_degree``
  clamped into the last bucket. This is what `GIN
  <https://arxiv.org/abs/1810.00826>`_ used for IMDB and COLLAB.
* ``"constant"`` — a single feature equal to 1 for every node. This is what
  `GIN <https://arxiv.org/abs/1810.00826>`_ used for REDDIT and what the
  `GraphCL <https://arxiv.org/abs/2010.13902>`_ and InfoGraph reference code
  used for every social dataset.

``"auto"`` picks the GIN convention per dataset: constant for REDDIT-*,
one-hot degree otherwise.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import InMemoryDataset

FEATURE_MODES = ("auto", "degree", "constant")


def resolve_mode(mode: str, dataset_name: str) -> str:
    r"""Turn ``"auto"`` into the concrete convention for ``dataset_name``."""
    if mode not in FEATURE_MODES:
        raise ValueError(f"node_features must be one of {FEATURE_MODES} (got {mode!r})")
    if mode == "auto":
        return "constant" if dataset_name.upper().startswith("REDDIT") else "degree"
    return mode


def one_hot_degree(degree: Tensor, max_degree: int) -> Tensor:
    r"""One-hot encode ``degree`` into ``max_degree + 1`` buckets, clamping larger degrees.

    Args:
        degree (Tensor): Integer node degrees of shape :obj:`[N]`.
        max_degree (int): Largest degree with its own bucket.

    Returns:
        Tensor: Float features of shape :obj:`[N, max_degree + 1]`.
    """
    if max_degree < 0:
        raise ValueError(f"max_degree must be non-negative (got {max_degree})")
    index = degree.clamp(max=max_degree)
    out = torch.zeros(degree.numel(), max_degree + 1)
    out[torch.arange(degree.numel()), index] = 1.0
    return out


def add_fallback_features(dataset: InMemoryDataset, mode: str, max_degree: int | None = None) -> int | None:
    r"""Give every graph of a featureless in-memory dataset node features, in place.

    Works on the collated storage at once (no per-graph loop): node degrees are
    counted on the concatenated edge list after shifting each graph's local
    indices by its node offset.

    Args:
        dataset (InMemoryDataset): A dataset whose graphs have no ``x``.
        mode (str): ``"degree"`` or ``"constant"``.
        max_degree (int, optional): Cap of the one-hot degree encoding. ``None``
            uses the largest degree in the dataset. (default: :obj:`None`)

    Returns:
        int | None: The ``max_degree`` used for ``"degree"``, else ``None``.
    """
    store = dataset._data
    slices = dataset.slices
    if store.x is not None:
        return None
    counts = torch.as_tensor(store._num_nodes, dtype=torch.long)
    total = int(counts.sum())
    ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    used = None
    if mode == "constant":
        x = torch.ones(total, 1)
    elif mode == "degree":
        edge_slices = slices["edge_index"]
        edges_per_graph = edge_slices[1:] - edge_slices[:-1]
        graph_of_edge = torch.repeat_interleave(torch.arange(counts.numel()), edges_per_graph)
        source = store.edge_index[0] + ptr[:-1][graph_of_edge]
        degree = torch.bincount(source, minlength=total)
        used = int(degree.max()) if max_degree is None and total > 0 else (max_degree or 0)
        x = one_hot_degree(degree, used)
    else:
        raise ValueError(f"mode must be 'degree' or 'constant' (got {mode!r})")
    store.x = x
    slices["x"] = ptr
    dataset._data_list = None  # drop PyG's per-graph cache built from the old storage
    return used


def attach_index(dataset: InMemoryDataset) -> InMemoryDataset:
    r"""Store each graph's position in the dataset as ``data.idx``, in place.

    Memory banks with one slot per training graph (e.g. LCGNN's) address their
    slots with ``batch.idx``. Subsets made with ``dataset[indices]`` keep the
    original positions.
    """
    num_graphs = dataset._data.y.size(0) if dataset._data.y is not None else len(dataset)
    dataset._data.idx = torch.arange(num_graphs)
    dataset.slices["idx"] = torch.arange(num_graphs + 1)
    dataset._data_list = None
    return dataset
