r"""Collectives for losses that need the whole batch under :mod:`torch.distributed`.

Every function here is a no-op (returns its input, or rank 0 of a world of 1) when no
process group is initialised, so the losses run unchanged in a single process.

The gradient convention matches :class:`torch.nn.parallel.DistributedDataParallel`:
DDP *averages* parameter gradients over ranks, so each rank must back-propagate the
gradient of the *sum* of every rank's loss with respect to its local tensors. The
backward passes of :func:`gather_with_grad` and :func:`all_reduce_sum` therefore
all-reduce (sum) the incoming gradient. With rank-local losses
:math:`\mathcal{L}_r`, DDP then produces the gradient of
:math:`\frac{1}{W}\sum_r \mathcal{L}_r`, which the losses in :mod:`gcl.losses` make equal
to the single-process loss on the concatenated global batch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = [
    "all_reduce_mean",
    "all_reduce_sum",
    "gather_no_grad",
    "gather_with_grad",
    "gather_with_offset",
    "global_mean",
    "is_distributed",
    "rank",
    "world_size",
]


def is_distributed() -> bool:
    r"""Returns ``True`` when :mod:`torch.distributed` is available and initialised."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    r"""Number of processes in the default group (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    r"""Rank of this process in the default group (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def _active() -> bool:
    return is_distributed() and dist.get_world_size() > 1


def _all_sizes(local_size: int, device: torch.device) -> list[int]:
    r"""Leading-dimension size of the tensor on every rank (ranks may differ)."""
    size = torch.tensor([local_size], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    return [int(s.item()) for s in sizes]


def _all_gather_cat(tensor: Tensor, sizes: list[int]) -> Tensor:
    r"""Concatenates ``tensor`` from all ranks along dim 0, padding unequal sizes."""
    tensor = tensor.contiguous()
    largest = max(sizes)
    if tensor.size(0) < largest:
        padding = tensor.new_zeros((largest - tensor.size(0), *tensor.shape[1:]))
        tensor = torch.cat([tensor, padding], dim=0)
    parts = [torch.empty_like(tensor) for _ in sizes]
    dist.all_gather(parts, tensor)
    return torch.cat([part[:size] for part, size in zip(parts, sizes)], dim=0)


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: Tensor, sizes: list[int], offset: int) -> Tensor:
        ctx.local_size = tensor.size(0)
        ctx.offset = offset
        return _all_gather_cat(tensor, sizes)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        # Every rank's loss may depend on this rank's rows: sum the gradients of all
        # ranks before keeping the local slice.
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.offset : ctx.offset + ctx.local_size], None, None


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        out = tensor.contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def gather_with_offset(tensor: Tensor) -> tuple[Tensor, int]:
    r"""Like :func:`gather_with_grad`, and also returns where this rank's rows start."""
    if not _active():
        return tensor, 0
    sizes = _all_sizes(tensor.size(0), tensor.device)
    offset = sum(sizes[: dist.get_rank()])
    return _GatherWithGrad.apply(tensor, sizes, offset), offset


def gather_with_grad(tensor: Tensor) -> Tensor:
    r"""All-gathers ``tensor`` along dim 0 in rank order, keeping the autograd graph.

    The forward pass concatenates the tensors of all ranks (their leading sizes may
    differ). The backward pass all-reduces (sums) the gradient of the gathered tensor
    and returns this rank's slice, so that each rank receives the gradient of the sum of
    all ranks' losses with respect to its own rows; DDP's gradient averaging then yields
    the gradient of the mean loss over ranks.

    Args:
        tensor (torch.Tensor): The local tensor, shape :obj:`[n_r, *]`.

    Returns:
        torch.Tensor: Shape :obj:`[sum_r n_r, *]`; ``tensor`` itself without a process group.
    """
    return gather_with_offset(tensor)[0]


@torch.no_grad()
def gather_no_grad(tensor: Tensor) -> Tensor:
    r"""All-gathers ``tensor`` along dim 0 in rank order, without gradient.

    Used for labels, indices and memory keys. Ranks may hold different leading sizes.
    Returns ``tensor`` (detached) without a process group.
    """
    tensor = tensor.detach()
    if not _active():
        return tensor
    return _all_gather_cat(tensor, _all_sizes(tensor.size(0), tensor.device))


def all_reduce_sum(tensor: Tensor) -> Tensor:
    r"""Differentiable sum of ``tensor`` over all ranks.

    The backward pass sums the incoming gradients over ranks (see the module notes).
    Returns ``tensor`` unchanged without a process group.
    """
    if not _active():
        return tensor
    return _AllReduceSum.apply(tensor)


def all_reduce_mean(tensor: Tensor) -> Tensor:
    r"""Differentiable mean of ``tensor`` over all ranks (e.g. to log a loss).

    Returns ``tensor`` unchanged without a process group.
    """
    if not _active():
        return tensor
    return all_reduce_sum(tensor) / dist.get_world_size()


def global_mean(values: Tensor, valid: Tensor | None = None) -> Tensor:
    r"""Mean of per-anchor ``values`` over the anchors of *all* ranks, rescaled per rank.

    Returns :math:`W \cdot \sum_{\text{local}} v / N_{\text{global}}` so that the mean of
    the returned value over the :math:`W` ranks is the mean over the global batch, even
    when ranks hold different numbers of (valid) anchors. ``valid`` masks anchors out
    of both sum and count; with no valid anchor anywhere the result is ``0``.
    """
    if valid is None:
        total = values.sum()
        count = values.new_tensor(float(values.numel()))
    else:
        total = torch.where(valid, values, values.new_zeros(())).sum()
        count = valid.sum().to(values.dtype)
    count = count.detach()
    if _active():
        count = _AllReduceSum.apply(count)
        return total * dist.get_world_size() / count.clamp(min=1)
    return total / count.clamp(min=1)
