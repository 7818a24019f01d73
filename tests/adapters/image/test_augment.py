from __future__ import annotations

import pytest
import torch

pytest.importorskip("kornia")

from gcl.adapters.image import ImageAugment, MultiView, SmallResNet, check_images


def test_check_images_rejects_common_mistakes() -> None:
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        check_images(torch.rand(2, 32, 32, 3))
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        check_images(torch.rand(2, 8, 8, 1), channels=1)
    with pytest.raises(ValueError, match="uint8"):
        check_images(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_images(torch.full((2, 3, 8, 8), 255.0))
    with pytest.raises(ValueError, match="4-D"):
        check_images(torch.rand(3, 8, 8))
    check_images(torch.rand(2, 3, 8, 8), channels=3)


def test_augment_shapes_range_and_seeded_reproducibility() -> None:
    augment = ImageAugment(16, in_channels=3)
    images = torch.rand(6, 3, 20, 20)
    a = augment(images, torch.Generator().manual_seed(1))
    b = augment(images, torch.Generator().manual_seed(1))
    c = augment(images, torch.Generator().manual_seed(2))
    assert a.shape == (6, 3, 16, 16)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    state = torch.get_rng_state()
    augment(images, torch.Generator().manual_seed(3))
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is untouched


def test_seeded_augment_leaves_the_gpus_random_state(monkeypatch: pytest.MonkeyPatch) -> None:
    # fork_rng restores only the devices it was given: seeding every GPU would leak out of it
    reseeded: list[int] = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", reseeded.append)
    ImageAugment(16, in_channels=3)(torch.rand(2, 3, 20, 20), torch.Generator().manual_seed(1))
    assert reseeded == []


def test_augment_is_differentiable_and_grayscale_safe() -> None:
    augment = ImageAugment.digits()
    images = torch.rand(4, 1, 8, 8, requires_grad=True)
    augment(images).sum().backward()
    assert images.grad is not None and float(images.grad.abs().sum()) > 0


def test_identity_settings_return_the_input() -> None:
    augment = ImageAugment(8, in_channels=1, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0),
                           flip_p=0.0, jitter_p=0.0, blur_p=0.0)
    images = torch.rand(3, 1, 8, 8)
    assert torch.allclose(augment(images), images, atol=1e-5)


def test_simclr_preset_has_the_papers_strengths() -> None:
    imagenet = ImageAugment.simclr(224)
    assert imagenet.crop_scale == (0.08, 1.0) and imagenet.blur_p == 0.5 and imagenet.blur_kernel_size == 23
    assert imagenet.jitter == pytest.approx((0.8, 0.8, 0.8, 0.2))
    assert (imagenet.jitter_p, imagenet.grayscale_p, imagenet.flip_p) == (0.8, 0.2, 0.5)
    cifar = ImageAugment.simclr(32, strength=0.5, blur=False)
    assert cifar.jitter == pytest.approx((0.4, 0.4, 0.4, 0.1)) and cifar.blur_p == 0.0
    assert cifar(torch.rand(4, 3, 32, 32), torch.Generator().manual_seed(0)).shape == (4, 3, 32, 32)
    with pytest.raises(ValueError, match="strength"):
        ImageAugment.simclr(32, strength=3.0)


def test_augment_validates_parameters() -> None:
    with pytest.raises(ValueError, match=r"flip_p must be in \[0, 1\] \(got 1.5\)"):
        ImageAugment(8, flip_p=1.5)
    with pytest.raises(ValueError, match="in_channels"):
        ImageAugment(8, in_channels=2)
    with pytest.raises(ValueError, match="crop_scale"):
        ImageAugment(8, crop_scale=(0.9, 0.1))
    with pytest.raises(ValueError, match="num_views"):
        MultiView(ImageAugment(8), num_views=0)


def test_multiview_and_encoder_shapes() -> None:
    views = MultiView(ImageAugment(8, in_channels=1), num_views=3)(torch.rand(5, 1, 8, 8))
    assert len(views) == 3 and all(v.shape == (5, 1, 8, 8) for v in views)
    small = SmallResNet(1, 8, num_stages=2)
    assert small(torch.rand(2, 1, 8, 8)).shape == (2, 16) and small.out_channels == 16
    big = SmallResNet(3, 8, num_stages=3)
    assert big(torch.rand(2, 3, 32, 32)).shape == (2, 32)
    with pytest.raises(ValueError, match="hidden_channels"):
        SmallResNet(1, 0)
