from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import gcl.losses
from gcl.adapters.image import SmallResNet
from gcl.adapters.video import (
    FrameImportance,
    FramePoolingEncoder,
    VideoEncoder3D,
    VideoMoCo,
    decayed_negatives,
    moving_digits,
)


def test_decayed_negatives_give_the_videomoco_denominator() -> None:
    generator = torch.Generator().manual_seed(0)
    q, k = torch.randn(3, 5, generator=generator), torch.randn(3, 5, generator=generator)
    negatives = torch.randn(7, 5, generator=generator)
    ages = torch.tensor([0, 1, 2, 3, 10, 20, 50])
    loss = gcl.losses.InfoNCE(temperature=0.2, symmetric=False, intra_view_negatives=False,
                              cross_view_negatives=False, normalize=False)
    value = float(loss(*decayed_negatives(q, k, negatives, ages, 0.9, 0.2)).detach())
    qn, kn, nn_ = (F.normalize(x.double(), dim=1) for x in (q, k, negatives))
    expected = 0.0
    for i in range(3):
        positive = math.exp(float(qn[i] @ kn[i]) / 0.2)
        weighted = sum(0.9 ** int(ages[j]) * math.exp(float(qn[i] @ nn_[j]) / 0.2) for j in range(7))
        expected -= math.log(positive / (positive + weighted))
    assert value == pytest.approx(expected / 3, rel=1e-5)
    with pytest.raises(ValueError, match="decay"):
        decayed_negatives(q, k, negatives, ages, 1.5, 0.2)


def test_videomoco_reuses_the_loss_core_and_tracks_key_ages() -> None:
    method = VideoMoCo(VideoEncoder3D(1, 4, 2), num_keep=4, queue_size=8,
                       generator=torch.Generator().manual_seed(0))
    assert type(method.loss) is gcl.losses.InfoNCE
    assert type(method.queue) is gcl.losses.MemoryQueue
    clips = torch.rand(4, 1, 6, 8, 8)
    method(clips)
    method(clips)
    _, stamps = method.queue.get()
    assert stamps is not None and stamps.tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
    assert int(method.step) == 2
    method.eval()
    method(clips)
    assert int(method.step) == 2  # evaluation neither ages nor enqueues
    assert method.embed(clips).shape == (4, 8)  # 4 * 2 ** (2 - 1) channels


def test_frame_pooling_encoder_averages_frames() -> None:
    frame = SmallResNet(1, 4).eval()
    encoder = FramePoolingEncoder(frame)
    clips = torch.rand(2, 1, 3, 8, 8)
    expected = torch.stack([frame(clips[:, :, t]) for t in range(3)]).mean(dim=0)
    assert torch.allclose(encoder(clips), expected, atol=1e-6)


@pytest.mark.parametrize("adversarial", [False, True])
def test_videomoco_loss_falls(adversarial: bool) -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    clips = moving_digits(12, num_frames=6, size=14, generator=generator).clips
    method = VideoMoCo(VideoEncoder3D(1, 4, 2), num_keep=4, queue_size=12, momentum=0.9,
                       frame_generator=FrameImportance(1, 4) if adversarial else None,
                       generator=generator, max_shift=1 if adversarial else 0)
    optimizer = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(10):
        loss = method(clips)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    # The first step sees only random initial keys (easy negatives); compare from step 2.
    assert sum(losses[-3:]) / 3 < sum(losses[1:4]) / 3


def test_video_inputs_in_other_layouts_or_dtypes_are_named() -> None:
    method = VideoMoCo(VideoEncoder3D(3, 4, 2), num_keep=6, queue_size=16)
    with pytest.raises(ValueError, match=r"looks like \(N, T, H, W, C\).*clips.permute\(0, 4, 1, 2, 3\)"):
        method(torch.rand(2, 16, 32, 32, 3))  # torchvision.io.read_video's frames, batched
    with pytest.raises(ValueError, match=r"looks like \(N, T, C, H, W\)"):
        method(torch.rand(2, 8, 3, 16, 16))
    with pytest.raises(ValueError, match="clips contains NaN or inf values"):
        method(torch.full((2, 3, 8, 16, 16), float("nan")))
    with pytest.raises(ValueError, match=r"clips are torch\.float64 but the encoder.s weights are torch\.float32"):
        method(torch.rand(2, 3, 8, 16, 16, dtype=torch.float64))


def test_videomoco_key_splits_and_embed_in_evaluation_mode() -> None:
    torch.manual_seed(0)
    clips = torch.rand(4, 1, 8, 16, 16)
    method = VideoMoCo(VideoEncoder3D(1, 4, 2), num_keep=6, queue_size=16, key_splits=2,
                       generator=torch.Generator().manual_seed(0)).train()
    assert float(method(clips).detach()) > 0
    stats = [b.clone() for b in method.encoder.buffers()]
    method.embed(clips)
    assert method.encoder.training and all(torch.equal(a, b) for a, b in zip(stats, method.encoder.buffers()))
