r"""Offline image data: the handwritten digits bundled with scikit-learn."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["ImageData", "load_digits"]


class ImageData(NamedTuple):
    r"""Images with their class labels."""

    images: Tensor
    r"""Float images :obj:`[M, C, H, W]` in :math:`[0, 1]`."""
    labels: Tensor
    r"""Class labels :obj:`[M]` (``long``)."""


def load_digits() -> ImageData:
    r"""The 1,797 handwritten digits of the `UCI optical recognition data set
    <https://archive.ics.uci.edu/dataset/80>`_ that ship with scikit-learn
    (:func:`sklearn.datasets.load_digits`; no download).

    Each image is 8×8 with integer intensities :math:`0..16`, returned as
    :math:`x / 16` in a :obj:`[1797, 1, 8, 8]` float tensor, with labels 0–9.

    Example:
        >>> data = load_digits()
        >>> data.images.shape, int(data.labels.max())
        (torch.Size([1797, 1, 8, 8]), 9)
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.as_tensor(bunch.target, dtype=torch.long)
    return ImageData(images, labels)
