r"""Input checks shared by the evaluators: tensors to numpy, shapes, finiteness, class counts."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

_NUMPY_FLOATS = (torch.float16, torch.float32, torch.float64)


def to_numpy(value: Any) -> np.ndarray:
    r"""Returns :obj:`value` as a numpy array; torch tensors are detached and moved to the CPU,
    floating-point types NumPy lacks (``bfloat16``, float8) as ``float32``."""
    if isinstance(value, Tensor):
        value = value.detach().cpu()
        if value.is_floating_point() and value.dtype not in _NUMPY_FLOATS:
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def check_features(X: Any, name: str = "X") -> np.ndarray:
    r"""Returns :obj:`X` as a finite ``float64`` matrix of shape ``[num_samples, num_features]``."""
    array = to_numpy(X)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape [num_samples, num_features] "
            f"(got shape {tuple(array.shape)})"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"{name} must have at least one sample and one feature (got shape {tuple(array.shape)})"
        )
    if not np.issubdtype(array.dtype, np.number) and array.dtype != np.bool_:
        raise ValueError(f"{name} must be numeric (got dtype {array.dtype})")
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))
        row, col = (int(v) for v in bad[0])
        raise ValueError(
            f"{name} contains {len(bad)} non-finite value(s) (NaN or inf); the first is "
            f"{name}[{row}, {col}] = {array[row, col]}"
        )
    return array


def check_labels(y: Any, num_samples: int, name: str = "y") -> np.ndarray:
    r"""Returns class labels :obj:`y` as a 1-D array of length :obj:`num_samples`.

    A column vector ``[num_samples, 1]`` (the layout of OGB and of some PyG datasets) is flattened.
    """
    array = to_numpy(y)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"{name} must hold one class label per sample, shape [num_samples] "
            f"(got shape {tuple(array.shape)})"
        )
    if array.shape[0] != num_samples:
        raise ValueError(
            f"X and {name} must have the same number of samples (got {num_samples} rows in X "
            f"and {array.shape[0]} labels in {name})"
        )
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf labels")
    return array


def class_counts(y: np.ndarray) -> dict[Any, int]:
    r"""Returns ``{label: count}`` in sorted label order, with plain Python keys for messages."""
    labels, counts = np.unique(y, return_counts=True)
    # object arrays (e.g. a pandas Series of strings) hold plain Python values
    return {label.item() if hasattr(label, "item") else label: int(count) for label, count in zip(labels, counts)}


def check_min_class_count(y: np.ndarray, n_splits: int, what: str) -> None:
    r"""Raises if a class has fewer than :obj:`n_splits` samples or there is a single class."""
    counts = class_counts(y)
    if len(counts) < 2:
        raise ValueError(f"{what} needs at least 2 classes (got class counts {counts})")
    smallest = min(counts, key=lambda label: counts[label])
    if counts[smallest] < n_splits:
        raise ValueError(
            f"{what} needs at least n_splits={n_splits} samples in every class so that each "
            f"fold holds every class; class {smallest!r} has {counts[smallest]} "
            f"(got class counts {counts}). Lower n_splits or merge the rare classes."
        )


def check_grid(grid: Any, name: str) -> tuple[float, ...]:
    r"""Returns a non-empty tuple of positive finite floats, or raises naming :obj:`name`."""
    try:
        if isinstance(grid, (str, bytes)):  # "10" would read as the grid (1, 0)
            raise TypeError(name)
        values = tuple(float(value) for value in grid)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a sequence of positive numbers (got {grid!r})") from error
    if len(values) == 0 or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{name} must be a non-empty sequence of positive numbers (got {grid!r})")
    return values


def check_random_state(random_state: Any) -> None:
    r"""Allows ``None`` or a non-negative ``int`` (the seed every split is derived from)."""
    if random_state is None:
        return
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
        raise ValueError(f"random_state must be an int or None (got {random_state!r})")
    if random_state < 0:
        raise ValueError(f"random_state must be non-negative (got {random_state})")


def as_index_tensor(index: np.ndarray) -> Tensor:
    r"""Returns a ``torch.long`` copy of a numpy index array."""
    return torch.as_tensor(np.asarray(index, dtype=np.int64))


def check_int(value: Any, name: str, minimum: int) -> None:
    r"""Raises unless :obj:`value` is an ``int`` (not ``bool``) of at least :obj:`minimum`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum} (got {value!r})")
