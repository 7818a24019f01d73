r"""Small helpers shared by the encoders and heads of :mod:`gcl.nn`."""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

ACTIVATIONS = ("relu", "prelu", "elu", "leaky_relu", "rrelu", "tanh", "identity")


class EncoderOutput(NamedTuple):
    r"""What a graph encoder returns.

    Attributes:
        graph (Tensor): Graph embeddings of shape :obj:`[B, out_channels]`,
            one row per graph (empty graphs included).
        node (Tensor): Node embeddings of shape :obj:`[N, node_channels]`.
    """

    graph: Tensor
    node: Tensor


def make_activation(name: str) -> nn.Module:
    r"""A fresh activation module for ``name`` (one of :obj:`ACTIVATIONS`).

    ``"prelu"`` gives :class:`torch.nn.PReLU` with a single learnable slope,
    as in GRACE/GCA and Graph Barlow Twins. ``"rrelu"`` is GCA's: its code calls
    ``torch.nn.functional.rrelu`` with the default ``training=False``, which is
    the deterministic leaky ReLU of slope :math:`(1/8 + 1/3) / 2` (not
    :class:`torch.nn.RReLU`'s random slopes in training).
    """
    if name == "relu":
        return nn.ReLU()
    if name == "prelu":
        return nn.PReLU()
    if name == "elu":
        return nn.ELU()
    if name == "leaky_relu":
        return nn.LeakyReLU()
    if name == "rrelu":
        return nn.LeakyReLU(negative_slope=(1 / 8 + 1 / 3) / 2)
    if name == "tanh":
        return nn.Tanh()
    if name == "identity":
        return nn.Identity()
    raise ValueError(f"activation must be one of {ACTIVATIONS} (got {name!r})")


def check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer (got {value!r})")


def check_dropout(value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"dropout must be in [0, 1) (got {value!r})")


def check_float_features(x: Tensor) -> None:
    r"""Refuses integer node features: an encoder would read category indices as magnitudes."""
    if not x.is_floating_point():
        raise ValueError(f"node features must be floating point (got {x.dtype}): categorical features such as "
                         "OGB's atom indices go through an embedding (GIN(..., ogb_mol=True)); numeric ones "
                         "through x.float()")


def check_inputs(x: Tensor, edge_index: Any, in_channels: int | None = None) -> None:
    r"""Refuses what an encoder would misread without a clear error: ``x`` that is not a
    ``[num_nodes, in_channels]`` matrix, and an ``edge_index`` tensor that is not an integer
    ``[2, E]`` array (the transposed ``[E, 2]`` layout included). Sparse adjacencies pass.
    Shapes and types only: no check that reads values (no device synchronisation)."""
    if x.dim() != 2:
        raise ValueError(f"node features must be a [num_nodes, num_features] matrix (got shape {tuple(x.shape)}); "
                         "give one feature per node as x.view(-1, 1)")
    if in_channels is not None and x.size(1) != in_channels:
        raise ValueError(f"node features have {x.size(1)} columns; this encoder was built for {in_channels}")
    if is_index_pairs(edge_index):
        check_index_pairs(edge_index)


def check_index_pairs(edge_index: Tensor) -> None:
    r"""Refuses an ``edge_index`` that is not an integer ``[2, E]`` array (the transposed
    ``[E, 2]`` layout with a hint). Shape and type only, no device synchronisation."""
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        hint = " (transposed: pass edge_index.t())" if edge_index.dim() == 2 and edge_index.size(1) == 2 else ""
        raise ValueError(f"edge_index must have shape [2, num_edges] (got {tuple(edge_index.shape)}){hint}")
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool:
        raise ValueError(f"edge_index must hold integer node indices (got {edge_index.dtype})")


def inverse_degree(deg: Tensor, *, sqrt: bool = False) -> Tensor:
    r""":math:`1 / d` (:math:`1 / \sqrt{d}` with ``sqrt``) where the degree :math:`d > 0`, else 0.
    Non-positive degrees (a node whose edges all weigh zero) are replaced before inverting, not
    after: :func:`torch.where` over an infinite inverse would pass the gradient
    :math:`0 \cdot \infty = \text{NaN}` to the weights of the edges at such a node."""
    missing = ~(deg > 0)
    safe = deg.masked_fill(missing, 1)
    return (safe.rsqrt() if sqrt else safe.reciprocal()).masked_fill(missing, 0)


def require_index_pairs(owner: str, edge_index: Any) -> None:
    r"""Refuses an ``edge_index`` that is not an integer ``[2, E]`` tensor: pooling selects and
    relabels edges, which a sparse adjacency (``SparseTensor``, a torch sparse layout) does not
    offer, and would otherwise fail deep inside with an unrelated error."""
    if not is_index_pairs(edge_index):
        got = f"a {edge_index.layout} tensor" if isinstance(edge_index, Tensor) else type(edge_index).__name__
        raise ValueError(f"{owner} needs edge_index as [2, num_edges] index pairs (got {got}); pass the "
                         "edge list (e.g. data.edge_index, without the ToSparseTensor transform)")
    check_index_pairs(edge_index)


def resolve_batch(x: Tensor, batch: Tensor | None, num_graphs: int | None) -> tuple[Tensor, int]:
    r"""Return a batch vector and the number of graphs.

    Without ``batch`` all nodes form one graph. Without ``num_graphs`` it is
    ``batch.max() + 1``, which synchronises with the device; pass it (e.g.
    ``data.num_graphs``) to avoid the sync and to keep a row for trailing
    graphs that lost all their nodes.
    """
    if batch is None:
        batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        return batch, 1 if num_graphs is None else num_graphs
    if batch.numel() != x.size(0):
        raise ValueError(
            f"batch must have one entry per node (got {batch.numel()} for {x.size(0)} nodes)"
        )
    if num_graphs is None:
        num_graphs = int(batch.max()) + 1 if batch.numel() > 0 else 0
    elif batch.device.type == "cpu" and batch.numel() > 0 and int(batch.max()) >= num_graphs:
        # checked where reading a value costs no device synchronisation
        raise ValueError(f"batch holds graph index {int(batch.max())}, but num_graphs is {num_graphs}; "
                         "pass data.num_graphs of the same batch (or leave num_graphs out)")
    return batch, num_graphs


def observed(conv: nn.Module) -> bool:
    r"""Whether something watches ``conv`` run (module or message-passing hooks, PyG's
    explainer masks): the sparse sum bypasses its ``forward``, so those need message passing."""
    if getattr(conv, "explain", False) or getattr(conv, "_edge_mask", None) is not None:
        return True
    if any(hooks for name, hooks in vars(conv).items()
           if name.endswith("hooks") and ("forward" in name or "backward" in name) and isinstance(hooks, dict)):
        return True
    from torch.nn.modules import module as torch_module

    return any(getattr(torch_module, name, None) for name in (
        "_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
        "_global_backward_pre_hooks", "_global_forward_hooks_always_called"))


def is_index_pairs(edge_index: Tensor) -> bool:
    r"""Whether ``edge_index`` is a dense ``[2, E]`` index tensor (not an
    adjacency already in a sparse layout, which PyG's convolutions also take)."""
    return isinstance(edge_index, Tensor) and edge_index.layout == torch.strided
