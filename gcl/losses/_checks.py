r"""Boundary checks shared by the losses: hyper-parameters and input tensors."""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch import Tensor

_finite_check_enabled = True


def set_finite_check(enabled: bool) -> None:
    r"""Turns the value checks on loss inputs on or off (on by default): NaN/inf
    embeddings, ``ContrastiveLoss`` labels other than 0/1, positive NCE
    log-probabilities given as a tensor.

    Each check reads one boolean back from the device. On a GPU that is a host
    synchronisation; a tuned training loop whose inputs are known to be sane can
    switch them off. Shape, length and hyper-parameter checks stay on.

    Args:
        enabled (bool): Whether losses reject embeddings that contain NaN or inf.
    """
    global _finite_check_enabled
    _finite_check_enabled = bool(enabled)


def finite_check_enabled() -> bool:
    r"""Returns whether losses currently reject non-finite inputs."""
    return _finite_check_enabled


def _number(name: str, value: object) -> float:
    r"""``value`` as a float: Python and NumPy real numbers are accepted (a
    tensor is not: its value could change after the check)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        hint = "; pass float(value)" if isinstance(value, Tensor) else ""
        raise ValueError(f"{name} must be a real number, not {type(value).__name__} (got {value!r}){hint}")
    return float(value)


def check_positive(name: str, value: float) -> None:
    number = _number(name, value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0 (got {value!r})")


def check_non_negative(name: str, value: float) -> None:
    number = _number(name, value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0 (got {value!r})")


def check_unit_interval(name: str, value: float, *, closed_right: bool = True) -> None:
    number = _number(name, value)
    ok = math.isfinite(number) and number >= 0 and (number <= 1 if closed_right else number < 1)
    if not ok:
        bracket = "]" if closed_right else ")"
        raise ValueError(f"{name} must be in [0, 1{bracket} (got {value!r})")


def check_count(name: str, value: int | None, *, minimum: int = 1, optional: bool = False) -> None:
    if value is None and optional:
        return
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral)
            or value < minimum):
        raise ValueError(f"{name} must be an integer >= {minimum} (got {value!r})")


def all_finite(tensor: Tensor) -> bool:
    r"""Whether every entry of ``tensor`` is finite, with one reduction in the usual case:
    a NaN or inf anywhere makes the sum non-finite; only then (or when finite values
    overflow the sum) is every entry tested. Reads one boolean back from the device."""
    if tensor.is_floating_point() and bool(torch.isfinite(tensor.detach().sum())):
        return True
    return bool(torch.isfinite(tensor).all())


class NonFiniteError(ValueError):
    r"""A loss's input holds NaN or inf values (during training: the model diverged, or its
    inputs hold them)."""


def check_finite(name: str, tensor: Tensor) -> None:
    if not _finite_check_enabled or torch.compiler.is_compiling():
        return
    if not all_finite(tensor):
        raise NonFiniteError(
            f"{name} contains NaN or inf values (shape {tuple(tensor.shape)}, dtype {tensor.dtype})"
        )


def check_embeddings(name: str, tensor: Tensor, ndim: int | tuple[int, ...] = 2) -> None:
    r"""Checks that ``tensor`` is a floating tensor of the given rank(s) and finite."""
    if not isinstance(tensor, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor (got {type(tensor).__name__})")
    ranks = (ndim,) if isinstance(ndim, int) else ndim
    if tensor.dim() not in ranks:
        wanted = " or ".join(f"{r}-D" for r in ranks)
        raise ValueError(f"{name} must be {wanted} (got shape {tuple(tensor.shape)})")
    if not tensor.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor (got dtype {tensor.dtype})")
    if tensor.size(-1) == 0:
        raise ValueError(f"{name} must have at least one feature (got shape {tuple(tensor.shape)})")
    check_finite(name, tensor)


def check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape "
            f"(got {tuple(a.shape)} and {tuple(b.shape)})"
        )


def check_feature_dim(name: str, tensor: Tensor, dim: int, reference: str) -> None:
    if tensor.size(-1) != dim:
        raise ValueError(
            f"{name} must have feature size {dim} like {reference} (got shape {tuple(tensor.shape)})"
        )


#: Integer dtypes with few kernels (no ``min``, ``max`` or comparison with a number, no
#: indexing): labels and positions of these dtypes are converted to ``int64``.
_WIDE_UNSIGNED = (torch.uint16, torch.uint32, torch.uint64)


def check_labels(name: str, labels: Tensor, length: int) -> Tensor:
    r"""Checks a 1-D integer tensor of ``length`` entries and returns it, as ``int64`` when
    its dtype is ``uint16``, ``uint32`` or ``uint64`` (which most torch operations do not
    support); a ``uint64`` value of :math:`2^{63}` or more, which ``int64`` cannot hold, is
    refused."""
    if not isinstance(labels, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor (got {type(labels).__name__})")
    if labels.dim() != 1 or labels.numel() != length:
        raise ValueError(
            f"{name} must be a 1-D tensor of length {length} (got shape {tuple(labels.shape)})"
        )
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"{name} must hold integer class labels (got dtype {labels.dtype})")
    if labels.dtype not in _WIDE_UNSIGNED:
        return labels
    converted = labels.long()
    # uint64 values of 2**63 and more wrap around to negative int64 values
    if labels.dtype == torch.uint64 and converted.numel() > 0 and bool((converted < 0).any()):
        raise ValueError(
            f"{name} values must be below 2**63 to be used as int64 positions or labels "
            f"(got a {labels.dtype} value of {int(converted[converted < 0][0]) + 2**64})"
        )
    return converted


def check_index(name: str, index: Tensor, length: int, upper: int) -> Tensor:
    r"""Checks a 1-D integer tensor of ``length`` entries with values in ``[0, upper)`` (a bool
    tensor is a mask, not positions) and returns it, converted as :func:`check_labels` does."""
    if isinstance(index, Tensor) and index.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer positions, not a bool mask; pass {name}.nonzero().view(-1)")
    index = check_labels(name, index, length)
    if index.numel() > 0 and (int(index.min()) < 0 or int(index.max()) >= upper):
        raise ValueError(
            f"{name} values must lie in [0, {upper}) "
            f"(got min {int(index.min())}, max {int(index.max())})"
        )
    return index
