r"""Memories of past embeddings: a FIFO queue (MoCo), an index-addressed bank (Wu et al.),
and the momentum (EMA) update of a target network.

All state lives in registered buffers, so ``state_dict()`` checkpoints it and loading
the state dict resumes exactly. Under :mod:`torch.distributed` every rank keeps a full
replica: writes gather the rows of all ranks first, so the replicas stay identical.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gcl.losses._checks import (
    check_count,
    check_embeddings,
    check_feature_dim,
    check_finite,
    check_index,
    check_labels,
    check_unit_interval,
)
from gcl.losses.distributed import gather_no_grad

__all__ = ["MemoryBank", "MemoryQueue", "QueueContents", "update_momentum"]


class QueueContents(NamedTuple):
    r"""The filled part of a :class:`MemoryQueue`, oldest entry first."""

    keys: Tensor
    r"""Stored keys :obj:`[n, dim]`."""
    labels: Tensor | None
    r"""Their labels :obj:`[n]`, or :obj:`None` when the queue stores no labels."""


class MemoryQueue(nn.Module):
    r"""First-in-first-out memory of keys, with optional labels, from `MoCo
    <https://arxiv.org/abs/1911.05722>`_ (He et al., CVPR 2020).

    :meth:`enqueue` writes the newest keys over the oldest ones, wrapping around the
    end of the buffer; a batch larger than the queue keeps only its newest ``size``
    rows. :meth:`get` returns only filled slots, oldest first, so an un-warmed queue
    never feeds zeros to a loss. Labels make the queue usable as the labelled memory
    of :class:`~gcl.losses.LabelContrastiveLoss`.

    Under :mod:`torch.distributed`, :meth:`enqueue` gathers the keys (and labels) of all
    ranks in rank order, so every replica holds the same queue.

    Args:
        size (int): Number of slots.
        dim (int): Key dimension.
        store_labels (bool, optional): Keep an integer label per key. (default: :obj:`True`)
        dtype (torch.dtype, optional): Storage dtype of the keys, a floating-point one;
            keys beyond a narrower dtype's range (float16: 65504) are refused.
            (default: :obj:`torch.float32`)

    Buffers:
        ``queue`` :obj:`[size, dim]`, ``labels`` :obj:`[size]` (``-1`` when empty; absent
        when ``store_labels=False``), ``ptr`` (next slot to write) and ``num_filled``.

    Example:
        >>> queue = MemoryQueue(size=4096, dim=128)
        >>> queue.enqueue(torch.randn(256, 128), labels=torch.randint(2, (256,)))
        >>> keys, labels = queue.get()
    """

    queue: Tensor
    labels: Tensor | None
    ptr: Tensor
    num_filled: Tensor

    def __init__(
        self,
        size: int,
        dim: int,
        store_labels: bool = True,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_count("size", size)
        check_count("dim", dim)
        if dtype is not None and not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating-point dtype for the keys (got {dtype})")
        self.size = size
        self.dim = dim
        self.store_labels = store_labels
        self.register_buffer("queue", torch.zeros(size, dim, dtype=dtype or torch.float32))
        if store_labels:
            self.register_buffer("labels", torch.full((size,), -1, dtype=torch.long))
        else:
            self.register_buffer("labels", None)
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("num_filled", torch.zeros((), dtype=torch.long))

    def __len__(self) -> int:
        return int(self.num_filled)

    @property
    def is_full(self) -> bool:
        r"""Whether every slot holds a key."""
        return len(self) == self.size

    @torch.no_grad()
    def reset(self) -> None:
        r"""Empties the queue."""
        self.queue.zero_()
        if self.labels is not None:
            self.labels.fill_(-1)
        self.ptr.zero_()
        self.num_filled.zero_()

    @torch.no_grad()
    def enqueue(self, keys: Tensor, labels: Tensor | None = None) -> None:
        r"""Writes ``keys`` (and their ``labels``) over the oldest entries.

        Args:
            keys (torch.Tensor): :obj:`[B, dim]`; stored detached.
            labels (torch.Tensor, optional): :obj:`[B]` integer labels; required exactly
                when the queue stores labels.
        """
        check_embeddings("keys", keys)
        check_feature_dim("keys", keys, self.dim, "the queue")
        if self.store_labels:
            if labels is None:
                raise ValueError("this queue stores labels: pass labels= to enqueue (got None)")
            labels = check_labels("labels", labels, keys.size(0))
        elif labels is not None:
            raise ValueError("this queue was built with store_labels=False but labels were given")
        # Collectives run on the inputs' device (NCCL needs CUDA tensors); the queue may live elsewhere.
        source = keys.device
        narrower = torch.finfo(self.queue.dtype).max < torch.finfo(keys.dtype).max
        keys = gather_no_grad(keys).to(device=self.queue.device, dtype=self.queue.dtype)
        if narrower:
            # the keys are finite (checked above); a value beyond the storage dtype's range is not
            check_finite(f"keys stored as {self.queue.dtype} (a value beyond its range)", keys)
        if labels is not None:
            labels = gather_no_grad(labels.to(source)).to(self.queue.device).long()
        batch = keys.size(0)
        if batch == 0:
            return
        if batch >= self.size:
            self.queue.copy_(keys[-self.size :])
            if self.labels is not None and labels is not None:
                self.labels.copy_(labels[-self.size :])
            self.ptr.zero_()
            self.num_filled.fill_(self.size)
            return
        slots = (self.ptr + torch.arange(batch, device=self.queue.device)) % self.size
        self.queue.index_copy_(0, slots, keys)
        if self.labels is not None and labels is not None:
            self.labels.index_copy_(0, slots, labels)
        self.ptr.copy_((self.ptr + batch) % self.size)
        self.num_filled.copy_(torch.clamp(self.num_filled + batch, max=self.size))

    def get(self) -> QueueContents:
        r"""Returns the filled entries, oldest first: detached copies, which later
        :meth:`enqueue` calls leave unchanged (a loss that used them can still
        run its backward pass after the queue was updated, as MoCo's loop does)."""
        filled = len(self)
        if filled < self.size:
            keys = self.queue[:filled].clone()
            labels = None if self.labels is None else self.labels[:filled].clone()
        else:
            shift = -int(self.ptr)
            keys = torch.roll(self.queue, shift, dims=0)
            labels = None if self.labels is None else torch.roll(self.labels, shift, dims=0)
        return QueueContents(keys.detach(), None if labels is None else labels.detach())

    def extra_repr(self) -> str:
        dtype = "" if self.queue.dtype == torch.float32 else f", dtype={self.queue.dtype}"
        return f"size={self.size}, dim={self.dim}, store_labels={self.store_labels}{dtype}"


class MemoryBank(nn.Module):
    r"""Index-addressed memory with one slot per training item, from `Wu et al.
    <https://arxiv.org/abs/1805.01978>`_ (CVPR 2018), updated by momentum:

    .. math::
        \mathbf{b}_i \leftarrow \frac{m\,\mathbf{b}_i + (1 - m)\,\mathbf{v}_i}
        {\lVert m\,\mathbf{b}_i + (1 - m)\,\mathbf{v}_i \rVert_2}.

    Slots start as random unit vectors with label ``-1``. Under
    :mod:`torch.distributed`, :meth:`update` gathers indices, features and labels from
    all ranks so that every replica applies every write. When an index appears more
    than once in one update (after that gathering: in rank order), its last occurrence is
    written, on every device alike.

    Args:
        num_items (int): Number of slots (training items).
        dim (int): Feature dimension.
        momentum (float, optional): :math:`m \in [0, 1)`; 0 overwrites. (default: :obj:`0.5`)
        store_labels (bool, optional): Keep an integer label per slot. (default: :obj:`True`)
        generator (torch.Generator, optional): Randomness for the initial vectors.

    Buffers:
        ``bank`` :obj:`[num_items, dim]` and ``labels`` :obj:`[num_items]`.

    Example:
        >>> bank = MemoryBank(num_items=1000, dim=64)
        >>> bank.update(torch.tensor([3, 7]), torch.randn(2, 64), labels=torch.tensor([0, 1]))
        >>> bank.get(torch.tensor([3, 7])).shape
        torch.Size([2, 64])
    """

    bank: Tensor
    labels: Tensor | None

    def __init__(
        self,
        num_items: int,
        dim: int,
        momentum: float = 0.5,
        store_labels: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_count("num_items", num_items)
        check_count("dim", dim)
        check_unit_interval("momentum", momentum, closed_right=False)
        self.num_items = num_items
        self.dim = dim
        self.momentum = momentum
        self.store_labels = store_labels
        device = generator.device if generator is not None else None
        initial = torch.randn(num_items, dim, generator=generator, device=device)
        self.register_buffer("bank", F.normalize(initial, dim=1).cpu())
        if store_labels:
            self.register_buffer("labels", torch.full((num_items,), -1, dtype=torch.long))
        else:
            self.register_buffer("labels", None)

    def __len__(self) -> int:
        return self.num_items

    def get(self, indices: Tensor | None = None) -> Tensor:
        r"""Returns the stored vectors of ``indices`` (all of them when :obj:`None`):
        detached copies, which later :meth:`update` calls leave unchanged."""
        if indices is None:
            return self.bank.detach().clone()
        indices = check_index("indices", indices, indices.numel(), self.num_items)
        # as positions: indexing takes a uint8 tensor for a mask and refuses int8/int16
        return self.bank[indices.to(self.bank.device).long()].detach()

    def sample(
        self, num_samples: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        r"""Draws ``num_samples`` slots uniformly with replacement.

        Returns:
            (features, indices, labels): :obj:`[num_samples, dim]`, :obj:`[num_samples]`,
            and the labels (or :obj:`None`).
        """
        check_count("num_samples", num_samples)
        device = generator.device if generator is not None else self.bank.device
        index = torch.randint(self.num_items, (num_samples,), generator=generator, device=device)
        index = index.to(self.bank.device)
        labels = None if self.labels is None else self.labels[index]
        return self.bank[index].detach(), index, labels

    @torch.no_grad()
    def update(self, indices: Tensor, features: Tensor, labels: Tensor | None = None) -> None:
        r"""Momentum-updates the slots ``indices`` with ``features`` (and sets their labels).

        Args:
            indices (torch.Tensor): :obj:`[B]` slot ids in ``[0, num_items)``.
            features (torch.Tensor): :obj:`[B, dim]`, stored detached.
            labels (torch.Tensor, optional): :obj:`[B]` integer labels. When
                omitted the slots keep the labels they had (an item's label does
                not change between epochs; ``-1`` for a slot never labelled).
        """
        check_embeddings("features", features)
        check_feature_dim("features", features, self.dim, "the bank")
        indices = check_index("indices", indices, features.size(0), self.num_items)
        if labels is not None:
            if self.labels is None:
                raise ValueError(
                    "this bank was built with store_labels=False but labels were given"
                )
            labels = check_labels("labels", labels, features.size(0))
        device, source = self.bank.device, features.device
        indices = gather_no_grad(indices.to(source)).to(device).long()
        features = gather_no_grad(features).to(device=device, dtype=self.bank.dtype)
        if labels is not None:
            labels = gather_no_grad(labels.to(source)).to(device).long()
        # A slot named twice (a DistributedSampler repeats graphs to even out the ranks) takes
        # its last occurrence in rank order: index_copy_ leaves the winner of duplicates
        # undefined on GPUs, where the ranks' banks could then drift apart.
        last = _last_occurrences(indices)
        if last is not None:
            indices, features = indices[last], features[last]
            labels = None if labels is None else labels[last]
        mixed = self.momentum * self.bank[indices] + (1.0 - self.momentum) * features
        self.bank.index_copy_(0, indices, F.normalize(mixed, dim=1))
        if labels is not None and self.labels is not None:
            self.labels.index_copy_(0, indices, labels)

    def extra_repr(self) -> str:
        return (
            f"num_items={self.num_items}, dim={self.dim}, momentum={self.momentum}, "
            f"store_labels={self.store_labels}"
        )


def _last_occurrences(indices: Tensor) -> Tensor | None:
    r"""Positions of the last occurrence of every distinct value of ``indices`` (in the order
    of their values), or ``None`` when no value repeats."""
    distinct, inverse = torch.unique(indices, return_inverse=True)
    if distinct.numel() == indices.numel():
        return None
    positions = torch.arange(indices.numel(), device=indices.device)
    last = torch.full_like(distinct, -1)
    return last.scatter_reduce_(0, inverse, positions, reduce="amax")


@torch.no_grad()
def update_momentum(online: nn.Module, target: nn.Module, momentum: float) -> None:
    r"""Exponential moving average of parameters, as for the key encoder of `MoCo
    <https://arxiv.org/abs/1911.05722>`_:

    .. math::
        \theta_{\text{target}} \leftarrow m\,\theta_{\text{target}} + (1 - m)\,\theta_{\text{online}}.

    Buffers (e.g. batch-norm running statistics) are copied from ``online``. The
    target may live on another device or in another floating dtype than ``online``
    (a key encoder kept off the accelerator): values are converted to the target's.

    Args:
        online (torch.nn.Module): The trained network.
        target (torch.nn.Module): Its momentum copy, same architecture.
        momentum (float): :math:`m \in [0, 1]`; 1 freezes the target, 0 copies.
    """
    check_unit_interval("momentum", momentum)
    online_params = dict(online.named_parameters())
    target_params = dict(target.named_parameters())
    if online_params.keys() != target_params.keys():
        missing = sorted(set(online_params) ^ set(target_params))
        raise ValueError(f"online and target differ in parameters: {missing}")
    targets: list[Tensor] = []
    sources: list[Tensor] = []
    for name, param in target_params.items():
        source = online_params[name]
        if source.shape != param.shape:
            raise ValueError(
                f"parameter {name!r} has shape {tuple(source.shape)} online and {tuple(param.shape)} in target"
            )
        targets.append(param)
        sources.append(source.detach().to(device=param.device, dtype=param.dtype))
    online_buffers = dict(online.named_buffers())
    target_buffers: list[Tensor] = []
    buffer_sources: list[Tensor] = []
    for name, buffer in target.named_buffers():
        if name not in online_buffers:
            raise ValueError(f"target buffer {name!r} has no counterpart in online")
        target_buffers.append(buffer)
        buffer_sources.append(online_buffers[name].to(buffer.device))
    with torch.no_grad():
        # One multi-tensor kernel per group instead of two ops per parameter:
        # theta_t + (1 - m) (theta_o - theta_t) = m theta_t + (1 - m) theta_o.
        if targets:
            torch._foreach_lerp_(targets, sources, 1.0 - momentum)
        if target_buffers:
            torch._foreach_copy_(target_buffers, buffer_sources)
