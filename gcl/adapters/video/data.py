r"""Offline video data: moving-digit clips generated from scikit-learn's bundled digits."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from gcl.adapters.image.augment import check_images
from gcl.adapters.image.data import load_digits

__all__ = ["DIRECTIONS", "VideoData", "moving_digits"]

DIRECTIONS = ("right", "left", "down", "up")
r"""Names of the motion classes, in label order."""

_STEPS = torch.tensor([[0, 1], [0, -1], [1, 0], [-1, 0]])  # (row, column) per frame


class VideoData(NamedTuple):
    r"""Clips with two kinds of labels."""

    clips: Tensor
    r"""Float clips :obj:`[M, 1, T, S, S]` in :math:`[0, 1]`."""
    digits: Tensor
    r"""Digit shown in each clip, :obj:`[M]`."""
    directions: Tensor
    r"""Motion direction, index into :data:`DIRECTIONS`, :obj:`[M]`."""


def moving_digits(
    num_clips: int,
    num_frames: int = 8,
    size: int = 16,
    speed: int = 1,
    generator: torch.Generator | None = None,
    images: Tensor | None = None,
    labels: Tensor | None = None,
) -> VideoData:
    r"""Clips of one handwritten digit sliding across a black canvas, in the spirit of
    Moving MNIST (`Srivastava et al., ICML 2015 <https://arxiv.org/abs/1502.04681>`_),
    from the real 8×8 digits of :func:`gcl.adapters.image.load_digits`.

    For clip :math:`n`, a digit image :math:`x_n` (drawn uniformly), a direction
    :math:`d_n \in` :data:`DIRECTIONS` with unit step :math:`\delta_{d_n}` and a start
    :math:`p_{n,0}` are drawn so that the whole path stays inside the
    :math:`S \times S` canvas; frame :math:`t` shows :math:`x_n` with its top-left
    corner at

    .. math::
        p_{n,t} = p_{n,0} + t \cdot \mathrm{speed} \cdot \delta_{d_n},
        \qquad t = 0, \dots, T - 1.

    All randomness comes from ``generator``, so a seed fixes the data set exactly.

    Args:
        num_clips (int): Number of clips :math:`M`.
        num_frames (int, optional): Frames per clip :math:`T`. (default: :obj:`8`)
        size (int, optional): Canvas side :math:`S \ge 8`. (default: :obj:`16`)
        speed (int, optional): Pixels moved per frame. (default: :obj:`1`)
        generator (torch.Generator, optional): Source of randomness.
        images (torch.Tensor, optional): Digit images :obj:`[K, 1, 8, 8]` to draw from
            (default: all of :func:`~gcl.adapters.image.load_digits`), e.g. a training
            split only.
        labels (torch.Tensor, optional): Their classes :obj:`[K]` (given with ``images``).

    Example:
        >>> data = moving_digits(4, generator=torch.Generator().manual_seed(0))
        >>> data.clips.shape
        torch.Size([4, 1, 8, 16, 16])
    """
    for name, value, low in [("num_clips", num_clips, 1), ("num_frames", num_frames, 1), ("speed", speed, 0)]:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low} (got {value!r})")
    if images is None:
        if labels is not None:
            raise ValueError("labels given without images")
        images, labels = load_digits()
    elif labels is None or labels.shape != (images.size(0),):
        raise ValueError("images need labels of shape [K]")
    if images.dim() != 4 or images.shape[1:] != (1, 8, 8):
        raise ValueError(f"images must be [K, 1, 8, 8] (got shape {tuple(images.shape)})")
    check_images(images, 1, "images")  # float pixels in [0, 1], as the clips are documented
    travel = (num_frames - 1) * speed
    if isinstance(size, bool) or not isinstance(size, int) or size < 8 + travel:
        raise ValueError(
            f"size must be an integer >= 8 + (num_frames - 1) * speed = {8 + travel} (got {size!r})"
        )
    device = generator.device if generator is not None else torch.device("cpu")
    pick = torch.randint(images.size(0), (num_clips,), generator=generator, device=device).cpu()
    direction = torch.randint(len(DIRECTIONS), (num_clips,), generator=generator, device=device).cpu()
    room = size - 8  # free positions of the top-left corner along one axis are 0..room
    free = torch.randint(room + 1, (num_clips, 2), generator=generator, device=device).cpu()
    along = torch.randint(room - travel + 1, (num_clips,), generator=generator, device=device).cpu()
    step = _STEPS[direction]  # [M, 2]
    moving = step != 0
    # Along the motion axis, start where the whole path fits; backwards motion starts
    # at the far end.
    start_along = torch.where(step.sum(dim=1) > 0, along, along + travel)
    start = torch.where(moving, start_along[:, None], free)
    t = torch.arange(num_frames)
    corner = start[:, None, :] + t[None, :, None] * speed * step[:, None, :]  # [M, T, 2]
    offsets = torch.arange(8)
    rows = (corner[..., 0, None] + offsets)[..., :, None]  # [M, T, 8, 1]
    cols = (corner[..., 1, None] + offsets)[..., None, :]  # [M, T, 1, 8]
    clip_index = torch.arange(num_clips)[:, None, None, None]
    frame_index = t[None, :, None, None]
    canvas = torch.zeros(num_clips, num_frames, size, size, dtype=images.dtype)
    digit = images[pick, 0].cpu()  # [M, 8, 8]
    canvas[clip_index, frame_index, rows, cols] = digit[:, None].expand(-1, num_frames, -1, -1)
    return VideoData(canvas.unsqueeze(1), labels[pick].cpu().long(), direction)
