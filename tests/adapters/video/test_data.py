from __future__ import annotations

import pytest
import torch

from gcl.adapters.image import load_digits
from gcl.adapters.video import DIRECTIONS, moving_digits


def centre(frame: torch.Tensor) -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.arange(frame.size(0)), torch.arange(frame.size(1)), indexing="ij")
    mass = frame.sum()
    return torch.stack([(rows * frame).sum() / mass, (cols * frame).sum() / mass])


def test_moving_digits_are_seeded_and_move_as_labelled() -> None:
    a = moving_digits(16, num_frames=6, size=14, speed=1, generator=torch.Generator().manual_seed(3))
    b = moving_digits(16, num_frames=6, size=14, speed=1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.clips, b.clips) and torch.equal(a.digits, b.digits)
    assert a.clips.shape == (16, 1, 6, 14, 14)
    step = {0: (0, 1), 1: (0, -1), 2: (1, 0), 3: (-1, 0)}
    digits = load_digits()
    for n in range(4):
        clip = a.clips[n, 0]
        sums = clip.sum(dim=(1, 2))
        assert torch.allclose(sums, sums[0].expand_as(sums))  # the digit never leaves the canvas
        shift = centre(clip[-1]) - centre(clip[0])
        expected = torch.tensor(step[int(a.directions[n])], dtype=shift.dtype) * 5
        assert torch.allclose(shift, expected, atol=1e-4)
        # The first frame shows one of the digit images of the labelled class.
        nonzero = clip[0].nonzero()
        top, left = int(nonzero[:, 0].min()), int(nonzero[:, 1].min())
        candidates = digits.images[digits.labels == a.digits[n], 0]
        found = False
        for dy in range(-7, 1):
            for dx in range(-7, 1):
                y, x = top + dy, left + dx
                if 0 <= y <= 6 and 0 <= x <= 6:
                    patch = clip[0, y : y + 8, x : x + 8]
                    found = found or bool((candidates == patch).all(dim=(1, 2)).any())
        assert found
    assert len(DIRECTIONS) == 4


def test_moving_digits_validates() -> None:
    with pytest.raises(ValueError, match="size"):
        moving_digits(2, num_frames=8, size=12)
    with pytest.raises(ValueError, match="num_clips"):
        moving_digits(0)
    # raw scikit-learn digits (0-16) would make clips outside the documented [0, 1]
    raw = torch.arange(2 * 64, dtype=torch.float32).view(2, 1, 8, 8) % 17
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        moving_digits(2, images=raw, labels=torch.tensor([0, 1]))
    moving_digits(2, images=raw / 16, labels=torch.tensor([0, 1]))
