r"""Mini-batches of plain tensors for :func:`gcl.train.fit` (which calls ``method(batch)``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["Batch", "TensorBatches"]


class Batch(NamedTuple):
    r"""Inputs with per-sample targets (class labels, or item indices for PCL).

    Methods of the adapters accept either a bare input tensor or a :class:`Batch`, so
    that one object per step can travel through :func:`gcl.train.fit`.
    """

    inputs: Tensor
    r"""Images :obj:`[N, C, H, W]`, clips :obj:`[N, C, T, H, W]`, ..."""
    targets: Tensor
    r"""Per-sample integers :obj:`[N]`."""

    def to(self, device: torch.device | str) -> Batch:
        r"""Moves both tensors to ``device``."""
        return Batch(self.inputs.to(device), self.targets.to(device))


def unpack(batch: Tensor | Batch, targets: Tensor | None) -> tuple[Tensor, Tensor | None]:
    r"""Splits a :class:`Batch` into inputs and targets; a bare tensor keeps ``targets``."""
    if isinstance(batch, Batch):
        if targets is not None:
            raise ValueError("pass targets either inside the Batch or as an argument, not both")
        return batch.inputs, batch.targets
    return batch, targets


class TensorBatches:
    r"""Re-iterable mini-batches over tensors that share their first dimension.

    Every pass draws a new order from ``generator`` (torch randomness only). With one
    tensor the batches are tensors; with ``targets`` they are :class:`Batch` objects.
    ``on_epoch_start`` runs before each pass, which is where PCL's E-step (clustering
    the whole data set) goes.

    Args:
        inputs (torch.Tensor): :obj:`[M, *]`.
        targets (torch.Tensor, optional): :obj:`[M]`, on any device: each batch's inputs
            and targets stay on the devices of their tensors. (default: :obj:`None`)
        batch_size (int, optional): Samples per batch. (default: :obj:`128`)
        shuffle (bool, optional): Reorder every pass. (default: :obj:`True`)
        drop_last (bool, optional): Skip the last short batch (contrastive losses need
            in-batch negatives). (default: :obj:`True`)
        generator (torch.Generator, optional): Randomness of the order.
        on_epoch_start (callable, optional): Called with no argument before each pass.
    """

    def __init__(
        self,
        inputs: Tensor,
        targets: Tensor | None = None,
        batch_size: int = 128,
        shuffle: bool = True,
        drop_last: bool = True,
        generator: torch.Generator | None = None,
        on_epoch_start: Callable[[], object] | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1 (got {batch_size!r})")
        if inputs.size(0) == 0:
            raise ValueError(f"inputs must hold at least one sample (got shape {tuple(inputs.shape)})")
        if targets is not None and targets.shape != (inputs.size(0),):
            raise ValueError(
                f"targets must have shape ({inputs.size(0)},) like inputs' first dimension "
                f"(got {tuple(targets.shape)})"
            )
        if drop_last and inputs.size(0) < batch_size:
            raise ValueError(
                f"drop_last=True with batch_size={batch_size} leaves no batch of "
                f"{inputs.size(0)} samples; lower batch_size"
            )
        self.inputs = inputs
        self.targets = targets
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator
        self.on_epoch_start = on_epoch_start

    def __len__(self) -> int:
        count = self.inputs.size(0)
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)

    def __iter__(self) -> Iterator[Tensor | Batch]:
        if self.on_epoch_start is not None:
            self.on_epoch_start()
        count = self.inputs.size(0)
        if self.shuffle:
            # drawn on the generator's device (a CUDA generator draws on its GPU)
            device = self.generator.device if self.generator is not None else None
            order = torch.randperm(count, generator=self.generator, device=device)
        else:
            order = torch.arange(count)
        for step in range(len(self)):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            # each tensor is indexed on its own device and stays there (images on a GPU,
            # item indices on the CPU, for instance)
            inputs = self.inputs[index.to(self.inputs.device)]
            if self.targets is None:
                yield inputs
            else:
                yield Batch(inputs, self.targets[index.to(self.targets.device)])


def check_input_dtype(inputs: Tensor, module: torch.nn.Module, name: str) -> None:
    r"""Refuses ``inputs`` whose floating dtype differs from the weights of ``module`` (a
    ``float64`` or half-precision batch into a ``float32`` network fails deep in a
    convolution otherwise); under :func:`torch.autocast` the cast is the context's business."""
    weight = next((p for p in module.parameters() if p.is_floating_point()), None)
    if weight is None or inputs.dtype == weight.dtype or torch.is_autocast_enabled(inputs.device.type):
        return
    raise ValueError(f"{name} are {inputs.dtype} but the encoder's weights are {weight.dtype}; convert them with "
                     f"{name}.to({weight.dtype}) (or the encoder with .to(dtype))")


def check_splits(splits: int) -> None:
    if isinstance(splits, bool) or not isinstance(splits, int) or splits < 1:
        raise ValueError(f"key_splits must be an integer >= 1 (got {splits!r})")


def encode_in_parts(encode: Callable[[Tensor], Tensor], inputs: Tensor, splits: int,
                    generator: torch.Generator | None = None) -> Tensor:
    r"""``encode(inputs)`` over ``splits`` random parts of the batch (sizes differing by at most
    one), rows back in input order: the batch-norm statistics of every row come from its part,
    as MoCo's shuffling BN gives the key network (`He et al., §3.3
    <https://arxiv.org/abs/1911.05722>`_), so that a query and its key do not share them.
    ``splits=1`` is ``encode(inputs)``."""
    if splits == 1:
        return encode(inputs)
    n = inputs.size(0)
    if n < 2 * splits:
        raise ValueError(f"key_splits={splits} needs at least {2 * splits} items per batch "
                         f"(2 per part for batch statistics; got {n})")
    device = generator.device if generator is not None else inputs.device
    order = torch.randperm(n, generator=generator, device=device).to(inputs.device)
    shuffled = torch.cat([encode(part) for part in inputs[order].tensor_split(splits)])
    out = torch.empty_like(shuffled)
    out[order] = shuffled
    return out


@contextlib.contextmanager
def evaluation_mode(module: torch.nn.Module) -> Iterator[None]:
    r"""``module`` in evaluation mode for the block (running batch-norm statistics, no
    dropout, no update of either), then every submodule back in the mode it had (a layer
    frozen in evaluation mode inside a training model stays frozen)."""
    modes = [(sub, sub.training) for sub in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for sub, training in modes:
            sub.training = training


@contextlib.contextmanager
def frozen_statistics(module: torch.nn.Module) -> Iterator[None]:
    r"""Runs the block with ``module``'s buffers (batch-norm running statistics and counters)
    restored afterwards: an auxiliary forward pass in training mode, such as an adversarial
    attack, then normalises with its batch but leaves no trace in the statistics."""
    saved = [(buffer, buffer.detach().clone()) for buffer in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
