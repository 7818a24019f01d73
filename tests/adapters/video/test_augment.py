from __future__ import annotations

import pytest
import torch

from gcl.adapters.video import (
    FrameImportance,
    adversarial_drop,
    check_clips,
    drop_frames,
    random_translate,
)


def test_check_clips_catches_a_misplaced_frame_axis() -> None:
    with pytest.raises(ValueError, match=r"transpose\(1, 2\)"):
        check_clips(torch.rand(2, 8, 1, 16, 16))
    with pytest.raises(ValueError, match=r"transpose\(1, 2\)"):
        check_clips(torch.rand(2, 3, 1, 16, 16), channels=1)
    with pytest.raises(ValueError, match="5-D"):
        check_clips(torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="floating"):
        check_clips(torch.zeros(2, 1, 4, 8, 8, dtype=torch.uint8))
    check_clips(torch.rand(2, 1, 8, 16, 16), channels=1)


def test_drop_frames_keeps_ordered_original_frames() -> None:
    clips = torch.rand(5, 2, 8, 4, 4)
    out = drop_frames(clips, 5, torch.Generator().manual_seed(0))
    assert out.clips.shape == (5, 2, 5, 4, 4)
    for n in range(5):
        kept = out.kept[n]
        assert bool((kept[1:] > kept[:-1]).all())
        assert torch.equal(out.clips[n], clips[n][:, kept])
    again = drop_frames(clips, 5, torch.Generator().manual_seed(0))
    assert torch.equal(again.kept, out.kept)
    assert torch.equal(drop_frames(clips, 8).clips, clips)  # keeping all frames is the identity
    with pytest.raises(ValueError, match="num_keep"):
        drop_frames(clips, 9)


def test_adversarial_drop_removes_important_frames_and_reverses_gradient() -> None:
    clips = torch.rand(3, 1, 6, 4, 4)
    logits = torch.randn(3, 6, generator=torch.Generator().manual_seed(0), requires_grad=True)
    out = adversarial_drop(clips, logits, 4)
    dropped = logits.detach().topk(2, dim=1).indices
    for n in range(3):
        assert set(out.kept[n].tolist()).isdisjoint(dropped[n].tolist())
        assert torch.allclose(out.clips[n], clips[n][:, out.kept[n]])  # weights are 1 forward
    weights = torch.randn(out.clips.shape, generator=torch.Generator().manual_seed(1))
    (out.clips * weights).sum().backward()
    # d loss / d w_t = sum of (frame * weights); w_t = 1 - R(p_t) + sg(p_t): dw/dp = +1 through
    # the reversal, times the sigmoid slope.
    per_frame = (clips.gather(2, out.kept[:, None, :, None, None].expand(-1, 1, -1, 4, 4)) * weights).sum(dim=(1, 3, 4))
    slope = torch.sigmoid(logits.detach()) * (1 - torch.sigmoid(logits.detach()))
    expected = torch.zeros(3, 6).scatter(1, out.kept, per_frame) * slope
    assert logits.grad is not None
    assert torch.allclose(logits.grad, expected, atol=1e-6)


def test_adversarial_drop_trains_the_generator_to_raise_the_loss() -> None:
    # Clips of 6 frames with 4-d features; the "encoder" averages the kept frames and each
    # clip's key averages all of them. Per-clip logits are the generator, trained by plain
    # descent on the loss: through the reversal, it must find harder frame subsets.
    import torch.nn.functional as F

    n, k = 16, 3
    clips = torch.randn(n, 4, 6, 1, 1, generator=torch.Generator().manual_seed(0))
    key = F.normalize(clips.mean(dim=(2, 3, 4)), dim=1)

    def loss(frames: torch.Tensor) -> torch.Tensor:
        query = F.normalize(frames.mean(dim=(2, 3, 4)), dim=1)
        return F.cross_entropy(query @ key.T / 0.2, torch.arange(n))

    logits = torch.nn.Parameter(torch.zeros(n, 6))
    optimizer = torch.optim.SGD([logits], lr=5.0)
    with torch.no_grad():
        before = float(loss(adversarial_drop(clips, logits, k).clips))
    for _ in range(100):
        optimizer.zero_grad()
        value = loss(adversarial_drop(clips, logits, k).clips)
        value.backward()
        optimizer.step()
    with torch.no_grad():
        after = float(loss(adversarial_drop(clips, logits, k).clips))
    assert after > before + 0.5


def test_frame_importance_shape() -> None:
    scores = FrameImportance(1, 4)(torch.rand(2, 1, 7, 8, 8))
    assert scores.shape == (2, 7)


def naive_shift(frame: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    out = torch.zeros_like(frame)
    h, w = frame.shape[-2:]
    for y in range(h):
        for x in range(w):
            if 0 <= y - dy < h and 0 <= x - dx < w:
                out[..., y, x] = frame[..., y - dy, x - dx]
    return out


def test_random_translate_shifts_all_frames_of_a_clip_alike() -> None:
    clips = torch.rand(4, 1, 3, 5, 5)
    out = random_translate(clips, 1, torch.Generator().manual_seed(0))
    for n in range(4):
        matches = [
            (dy, dx)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if torch.equal(out[n], naive_shift(clips[n], dy, dx))
        ]
        assert len(matches) == 1
    assert random_translate(clips, 0) is clips
    with pytest.raises(ValueError, match="max_shift"):
        random_translate(clips, -1)
