r"""Activation checkpointing of one encoder layer or micro-batch, shared by :class:`gcl.nn.GIN` and
:class:`gcl.nn.GCN`: the layer keeps only its inputs for the backward pass and runs again
there, with the same results as without."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from torch import nn
from torch.utils.checkpoint import checkpoint

T = TypeVar("T")


@contextmanager
def _modes_of(modes: dict[nn.Module, bool]) -> Iterator[None]:
    r"""Modules in the training / evaluation modes ``modes`` gives them, back to their own on exit."""
    current = {module: module.training for module in modes}
    for module, training in modes.items():
        module.training = training
    try:
        yield
    finally:
        for module, training in current.items():
            module.training = training


@contextmanager
def _scratch_running_statistics(modules: Sequence[nn.Module]) -> Iterator[None]:
    r"""Batch norms of ``modules`` update copies of their running statistics, dropped on exit, so
    that running a layer again in the backward pass leaves the statistics as its forward left them.

    (Their buffers are swapped rather than left alone: the recomputation must save as many tensors
    for the backward as the forward did.)
    """
    norms = [norm for module in modules for norm in module.modules()
             if isinstance(norm, nn.modules.batchnorm._BatchNorm) and norm.track_running_stats]
    names = ("running_mean", "running_var", "num_batches_tracked")
    kept = [{name: getattr(norm, name) for name in names} for norm in norms]
    for norm, buffers in zip(norms, kept):
        for name, buffer in buffers.items():
            setattr(norm, name, None if buffer is None else buffer.clone())
    try:
        yield
    finally:
        for norm, buffers in zip(norms, kept):
            for name, buffer in buffers.items():
                setattr(norm, name, buffer)


def recomputed(owner: nn.Module, modules: Sequence[nn.Module], layer: Callable[..., T],
               inputs: Sequence[Any], random: bool) -> T:
    r"""``layer(*inputs)`` under activation checkpointing (:func:`torch.utils.checkpoint.checkpoint`,
    non-reentrant): only ``inputs`` are kept for the backward pass, which runs ``layer`` again.

    The recomputation runs in the training / evaluation modes of the forward pass (``owner``'s and
    those of ``modules`` and their children), should they change before the backward pass; batch
    norms among ``modules`` update scratch copies of their running statistics then, so those are
    updated once; with ``random`` (dropout, RReLU in training) the random state is restored for it,
    so the same masks are drawn. Tensors among ``inputs`` changed in place before the backward pass
    are refused, as autograd refuses them without checkpointing.
    """
    modes = {module: module.training for module in [owner, *(m for part in modules for m in part.modules())]}
    calls = 0

    def run(*args: Any) -> T:
        nonlocal calls
        calls += 1
        if calls == 1:
            return layer(*args)
        with _modes_of(modes), _scratch_running_statistics(modules):
            return layer(*args)

    return cast(T, checkpoint(run, *inputs, use_reentrant=False, preserve_rng_state=random))
