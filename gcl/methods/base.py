r"""What every method shares: the view/encode helpers and embedding a dataset."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data, Dataset

from gcl.data.loader import moved_to, ordered_batches
from gcl.losses.distributed import all_reduce_sum, global_mean, world_size

Augmentation = Callable[[Any], Any]


class LossParts(NamedTuple):
    r"""A method's ``forward`` output when the loss has several terms.

    Attributes:
        loss (Tensor): The total loss that is minimised.
        parts (dict[str, Tensor]): The detached terms (e.g. ``"classification"``
            and ``"contrastive"``) for logging.
    """

    loss: Tensor
    parts: dict[str, Tensor]


def graph_count(batch: Any) -> int:
    r"""The number of graphs in ``batch``: a collated batch's ``num_graphs``; a single
    :class:`~torch_geometric.data.Data` is one graph (or as many as its ``batch`` vector names)."""
    count = getattr(batch, "num_graphs", None)
    if count is not None:
        return int(count)
    vector = getattr(batch, "batch", None)
    return int(vector.max()) + 1 if isinstance(vector, Tensor) and vector.numel() else 1


def graph_labels(batch: Any, who: str) -> Tensor:
    r"""The class label of every graph of ``batch`` (``batch.y`` of shape ``[G]`` or ``[G, 1]``),
    as a long tensor; ``who`` names the method in the errors.

    Raises:
        ValueError: Without labels, or with another number of labels than graphs (node labels
            of a node-level dataset, several tasks per graph): reading the first of them would
            train on a single label without a word.
    """
    y = getattr(batch, "y", None)
    if not isinstance(y, Tensor):
        raise ValueError(f"{who} is supervised: the batch has no labels (batch.y is None)")
    count = graph_count(batch)
    if y.numel() != count:
        raise ValueError(f"{who} classifies one label per graph, but batch.y holds {y.numel()} values for "
                         f"{count} graph(s) (shape {tuple(y.shape)}): node labels of a node-level dataset such as "
                         "Cora, or several tasks per graph (train one at a time, e.g. y = y[:, [t]])?")
    return y.reshape(count).long()


_NODE_SWITCH: dict[type, bool] = {}


def _takes_node_switch(encoder_type: type) -> bool:
    r"""Whether ``encoder_type.forward`` takes ``node_embeddings`` (read once per class)."""
    if encoder_type not in _NODE_SWITCH:
        forward = getattr(encoder_type, "forward", None)
        _NODE_SWITCH[encoder_type] = (forward is not None
                                      and "node_embeddings" in inspect.signature(forward).parameters)
    return _NODE_SWITCH[encoder_type]


def _encoder_options(encoder: nn.Module, num_graphs: int, nodes: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"num_graphs": num_graphs}
    if not nodes and _takes_node_switch(type(encoder)):
        options["node_embeddings"] = False
    return options


def encode_graphs(encoder: nn.Module, batch: Any, *, nodes: bool = True) -> Any:
    r"""Run a graph encoder on a (possibly augmented) batch, or on one graph.

    Passes ``num_graphs`` so that a graph whose nodes were all dropped still
    gets an embedding row, and ``edge_attr`` when the encoder takes edge features.
    ``nodes=False`` tells an encoder that takes ``node_embeddings`` (:class:`gcl.nn.GIN`)
    that only the graph embeddings are used, which saves it a node-sized tensor.
    """
    kwargs = _encoder_options(encoder, graph_count(batch), nodes)
    if getattr(encoder, "uses_edge_attr", False):
        kwargs["edge_attr"] = batch.edge_attr
    return encoder(batch.x, batch.edge_index, batch.batch, **kwargs)


def encode_views(encoder: nn.Module, views: Sequence[Any]) -> list[Tensor]:
    r"""Graph embeddings of several batches from **one** encoder pass over their union.

    The views are stacked into one disjoint batch (nodes, edges and graphs
    offset), encoded once and split back, as SimCLR encodes its :math:`2N`
    views in one batch: the same result as one pass per view for encoders
    without batch statistics, and batch norm in training mode normalises over
    all views together. One pass runs half the operators of two, which matters
    where the graphs are small and per-operator cost dominates.

    Returns:
        list[Tensor]: The graph embeddings of every view, ``[num_graphs_i, D]``.
    """
    if len(views) == 1:
        return [encode_graphs(encoder, views[0], nodes=False).graph]
    node_offset, graph_offset = 0, 0
    xs, edges, batches, attrs, counts = [], [], [], [], []
    uses_edge_attr = getattr(encoder, "uses_edge_attr", False)
    for view in views:
        num_nodes, num_graphs = int(view.x.size(0)), int(view.num_graphs)
        xs.append(view.x)
        edges.append(view.edge_index + node_offset)
        vector = view.batch if view.batch is not None else view.x.new_zeros(num_nodes, dtype=torch.long)
        batches.append(vector + graph_offset)
        if uses_edge_attr:
            if view.edge_attr is None:
                raise ValueError("this encoder uses edge features, but a view's edge_attr is None")
            attrs.append(view.edge_attr)
        counts.append(num_graphs)
        node_offset += num_nodes
        graph_offset += num_graphs
    kwargs = _encoder_options(encoder, graph_offset, False)
    if uses_edge_attr:
        kwargs["edge_attr"] = torch.cat(attrs)
    out = encoder(torch.cat(xs), torch.cat(edges, dim=1), torch.cat(batches), **kwargs)
    return list(out.graph.split(counts))


def cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    r"""Cross-entropy averaged over the graphs of every rank under :mod:`torch.distributed`
    (ranks may hold different numbers of graphs; DDP's average of the ranks' means is then not
    the global mean); in one process exactly :func:`torch.nn.functional.cross_entropy`."""
    if world_size() > 1:
        return global_mean(F.cross_entropy(logits, labels, reduction="none"))
    return F.cross_entropy(logits, labels)


def check_contrastive_batch(batch: Any, device: torch.device | None = None) -> None:
    r"""Contrastive losses need at least two graphs: one positive and one negative.

    Under :mod:`torch.distributed` the graphs of every rank count (the losses
    contrast the global batch), so every rank raises or none does; a rank may
    then hold a single graph.
    """
    num_graphs = int(getattr(batch, "num_graphs", 1))
    if world_size() > 1:
        # NCCL reduces on the model's GPU (``device``; a batch whose views were drawn by workers
        # carries no node tensors to take it from), gloo on the CPU
        if dist.get_backend() != "nccl":
            device = torch.device("cpu")
        elif device is None:
            device = torch.device("cuda", torch.cuda.current_device())
        num_graphs = int(all_reduce_sum(torch.tensor(float(num_graphs), device=device)))
    if num_graphs < 2:
        where = " over all processes" if world_size() > 1 else ""
        raise ValueError(
            f"contrastive methods need at least 2 graphs per batch{where} (got {num_graphs}); "
            "increase the batch size or keep drop_last=True"
        )


def check_features(batch: Any) -> None:
    r"""Graphs must carry node features (featureless datasets get them from :mod:`gcl.data`),
    and floating-point ones must be finite: NaN or inf in the input would otherwise surface as
    non-finite embeddings in the loss. The value check follows the losses' switch
    (:func:`gcl.losses.set_finite_check`): it reads one boolean back from the device."""
    x = getattr(batch, "x", None)
    if x is None:
        raise ValueError(
            "graphs have no node features (x is None); load the dataset with "
            "gcl.data.load_dataset(..., node_features='degree' or 'constant')"
        )
    from gcl.losses._checks import all_finite, finite_check_enabled

    if isinstance(x, Tensor) and x.is_floating_point() and finite_check_enabled() and not all_finite(x):
        raise ValueError("node features contain NaN or inf values; clean the dataset's x (e.g. "
                         "torch.nan_to_num) or drop those graphs (gcl.data.load_dataset checks its datasets)")


@torch.no_grad()
def embed_dataset(method: nn.Module, data: Dataset | Data, *, batch_size: int = 256,
                  device: str | torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""Embed every graph (or every node, for a node-level method) with ``method.embed``.

    The method is put in eval mode, so batch norm uses running statistics;
    ``embed`` itself draws no augmentation. The labels are one per embedded row:
    per graph, or per node when the method embeds nodes (a single
    :class:`Data`, or a dataset of graphs such as Cora loaded as a dataset).

    Returns:
        tuple[np.ndarray, np.ndarray]: Embeddings :obj:`[num_items, d]` and labels
        :obj:`[num_items]` (flattened; ``-1`` where a graph has no label).
    """
    was_training = method.training
    method.eval()
    try:
        return _embed_all(method, data, batch_size, device)
    finally:
        method.train(was_training)  # also when embedding fails


def _embed_all(method: nn.Module, data: Any, batch_size: int,
               device: torch.device | str | None) -> tuple[np.ndarray, np.ndarray]:
    if device is None:
        device = next(method.parameters()).device
    embed: Any = method.embed
    if isinstance(data, Data) and not isinstance(data, Batch):
        out = embed(moved_to(data, device))
        y = data.y if data.y is not None else torch.full((out.size(0),), -1)  # unlabelled nodes: -1
        return out.cpu().numpy(), y.view(-1).cpu().numpy()
    features, labels = [], []
    for batch in ordered_batches(data, batch_size):
        batch = moved_to(batch, device)
        out = embed(batch).cpu()
        features.append(out)
        labels.append(_labels_of_rows(batch, out.size(0)))
    return torch.cat(features).numpy(), torch.cat(labels).numpy()


def _labels_of_rows(batch: Any, rows: int) -> Tensor:
    r"""The label of every embedded row: one per graph (a graph-level method's embeddings) or
    one per node (a node-level method on a dataset of graphs, e.g. Cora as a one-graph
    dataset); ``-1`` where there is none."""
    y = batch.y
    if rows == batch.num_graphs:
        return torch.full((rows,), -1) if y is None else y.view(batch.num_graphs, -1)[:, 0].cpu()
    if rows == batch.num_nodes:
        if y is None:
            return torch.full((rows,), -1)
        if y.numel() == rows:
            return y.view(-1).cpu()
        raise ValueError(f"the method embeds nodes ({rows} rows for a batch of {batch.num_graphs} graphs), "
                         f"but the labels are not one per node (y has {y.numel()} values)")
    raise ValueError(f"embed returned {rows} rows for a batch of {batch.num_graphs} graphs and "
                     f"{batch.num_nodes} nodes: neither one per graph nor one per node")
