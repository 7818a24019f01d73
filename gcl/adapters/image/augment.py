r"""Batched, differentiable image augmentations (kornia) and their multi-view wrapper."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gcl.adapters._optional import require

__all__ = ["ImageAugment", "MultiView", "check_images"]


def check_images(images: Tensor, channels: int | None = None, name: str = "images") -> None:
    r"""Checks that ``images`` is a float :obj:`[N, C, H, W]` batch with values in :math:`[0, 1]`.

    Raises a :class:`ValueError` that says what was received and how to convert it for
    the usual mistakes: channels-last batches, ``uint8`` pixels, 0–255 floats.

    Args:
        images (torch.Tensor): The batch.
        channels (int, optional): Expected number of channels. (default: :obj:`None`)
        name (str, optional): Name used in the messages. (default: :obj:`"images"`)
    """
    if not isinstance(images, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor (got {type(images).__name__})")
    shape = tuple(images.shape)
    if images.dim() != 4:
        raise ValueError(f"{name} must be a 4-D batch (N, C, H, W) (got shape {shape})")
    if not images.is_floating_point():
        raise ValueError(
            f"{name} must be floating point with values in [0, 1] (got dtype {images.dtype}); "
            "convert 8-bit images with images.float() / 255"
        )
    if channels is not None and shape[1] != channels:
        if shape[3] == channels:
            raise ValueError(
                f"{name} must be channels-first (N, C, H, W) with C={channels} (got shape "
                f"{shape}, which looks like (N, H, W, C)); use images.permute(0, 3, 1, 2)"
            )
        raise ValueError(f"{name} must have {channels} channels (got shape {shape})")
    if channels is None and shape[1] > 4 and shape[3] in (1, 3, 4):
        raise ValueError(
            f"{name} must be channels-first (N, C, H, W) (got shape {shape}, which looks like "
            "(N, H, W, C)); use images.permute(0, 3, 1, 2)"
        )
    if images.numel() == 0:
        raise ValueError(f"{name} must not be empty (got shape {shape})")
    low, high = float(images.detach().min()), float(images.detach().max())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{name} contains NaN or inf values")
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{name} values must lie in [0, 1] (got min {low:.4g}, max {high:.4g}); "
            "divide 0-255 images by 255"
        )


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them (got {value!r})")
    return int(pair[0]), int(pair[1])


def _check_range(name: str, value: Sequence[float], low: float, high: float | None = None) -> None:
    ok = len(value) == 2 and low <= value[0] <= value[1]
    ok = ok and (high is None or value[1] <= high)
    if not ok:
        upper = "inf" if high is None else f"{high}"
        raise ValueError(f"{name} must be an ordered pair within [{low}, {upper}] (got {value!r})")


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1] (got {value})")


class ImageAugment(nn.Module):
    r"""The stochastic view generator of `SimCLR <https://arxiv.org/abs/2002.05709>`_
    (Chen et al., ICML 2020) on a whole batch at once, with `kornia
    <https://kornia.readthedocs.io>`_:

    .. math::
        t = \mathrm{blur}_{p_b} \circ \mathrm{gray}_{p_g} \circ
        \mathrm{jitter}_{p_j} \circ \mathrm{flip}_{p_f} \circ \mathrm{crop}_{s, r},
        \qquad \tilde{x}_i = t_i(x_i),

    where every image :math:`i` draws its own :math:`t_i`. The default strengths are
    those of `MoCo v2 <https://arxiv.org/abs/2003.04297>`_ (its ``aug_plus`` views: crops
    of 20–100 % of the area, jitter 0.4 / 0.4 / 0.4 / 0.1); :meth:`simclr` gives SimCLR's
    own (crops of 8–100 %, jitter 0.8 / 0.8 / 0.8 / 0.2 at strength 1). All steps are
    differentiable with respect to the pixels and run on the batch's device. For
    single-channel images, saturation, hue and grayscale are skipped (they need RGB).
    Randomness comes from ``generator`` when one is given (the global torch RNG is
    left untouched then), else from the global torch RNG.

    Args:
        size (int or tuple[int, int]): Output size :math:`(H, W)` of the crop.
        in_channels (int, optional): Channels of the input, 1 or 3. (default: :obj:`3`)
        crop_scale (tuple[float, float], optional): Area fraction :math:`s` of the crop.
            (default: :obj:`(0.2, 1.0)`)
        crop_ratio (tuple[float, float], optional): Aspect ratio :math:`r` of the crop.
            (default: :obj:`(3/4, 4/3)`)
        flip_p (float, optional): Horizontal flip probability. (default: :obj:`0.5`)
        brightness (float, optional): Jitter strength. (default: :obj:`0.4`)
        contrast (float, optional): Jitter strength. (default: :obj:`0.4`)
        saturation (float, optional): Jitter strength (RGB only). (default: :obj:`0.4`)
        hue (float, optional): Jitter strength in :math:`[0, 0.5]` (RGB only).
            (default: :obj:`0.1`)
        jitter_p (float, optional): Probability of colour jitter. (default: :obj:`0.8`)
        grayscale_p (float, optional): Probability of grayscale (RGB only).
            (default: :obj:`0.2`)
        blur_p (float, optional): Probability of Gaussian blur. (default: :obj:`0.5`)
        blur_sigma (tuple[float, float], optional): Blur standard deviation range.
            (default: :obj:`(0.1, 2.0)`)
        blur_kernel_size (int, optional): Odd blur kernel size; :obj:`None` takes about a
            tenth of the image side (at least 3). (default: :obj:`None`)

    Shapes:
        - **input:** :math:`(N, C, H, W)`, float in :math:`[0, 1]`
        - **output:** :math:`(N, C, H_{out}, W_{out})`

    Example:
        >>> augment = ImageAugment(32)
        >>> augment(torch.rand(8, 3, 32, 32)).shape
        torch.Size([8, 3, 32, 32])
    """

    def __init__(
        self,
        size: int | Sequence[int],
        in_channels: int = 3,
        crop_scale: tuple[float, float] = (0.2, 1.0),
        crop_ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
        flip_p: float = 0.5,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        hue: float = 0.1,
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        blur_p: float = 0.5,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        blur_kernel_size: int | None = None,
    ) -> None:
        super().__init__()
        self.size = _pair(size, "size")
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3 (got {in_channels!r})")
        _check_range("crop_scale", crop_scale, 0.0, 1.0)
        if crop_scale[1] <= 0:
            raise ValueError(f"crop_scale must include a positive area (got {crop_scale!r})")
        _check_range("crop_ratio", crop_ratio, 1e-6)
        for name, value in [
            ("flip_p", flip_p),
            ("jitter_p", jitter_p),
            ("grayscale_p", grayscale_p),
            ("blur_p", blur_p),
        ]:
            _check_probability(name, value)
        for name, value in [("brightness", brightness), ("contrast", contrast), ("saturation", saturation)]:
            if value < 0:
                raise ValueError(f"{name} must be >= 0 (got {value})")
        if not 0.0 <= hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5] (got {hue})")
        _check_range("blur_sigma", blur_sigma, 1e-6)
        if blur_kernel_size is None:
            side = min(self.size)
            blur_kernel_size = max(3, (side // 10) | 1)
        if blur_kernel_size < 3 or blur_kernel_size % 2 == 0:
            raise ValueError(f"blur_kernel_size must be an odd integer >= 3 (got {blur_kernel_size})")
        self.in_channels = in_channels
        self.crop_scale = tuple(crop_scale)
        self.crop_ratio = tuple(crop_ratio)
        self.flip_p = flip_p
        self.jitter = (brightness, contrast, saturation, hue)
        self.jitter_p = jitter_p
        self.grayscale_p = grayscale_p
        self.blur_p = blur_p
        self.blur_sigma = tuple(blur_sigma)
        self.blur_kernel_size = blur_kernel_size

        K = require("kornia.augmentation", "image")
        rgb = in_channels == 3
        steps: list[nn.Module] = [
            K.RandomResizedCrop(self.size, scale=self.crop_scale, ratio=self.crop_ratio)
        ]
        if flip_p > 0:
            steps.append(K.RandomHorizontalFlip(p=flip_p))
        strengths = (brightness, contrast, saturation if rgb else 0.0, hue if rgb else 0.0)
        if jitter_p > 0 and any(s > 0 for s in strengths):
            steps.append(K.ColorJitter(*strengths, p=jitter_p))
        if rgb and grayscale_p > 0:
            steps.append(K.RandomGrayscale(p=grayscale_p))
        if blur_p > 0:
            kernel = (blur_kernel_size, blur_kernel_size)
            steps.append(K.RandomGaussianBlur(kernel, self.blur_sigma, p=blur_p))
        self.pipeline = nn.Sequential(*steps)

    @classmethod
    def simclr(cls, size: int | Sequence[int], in_channels: int = 3, strength: float = 1.0,
               blur: bool = True) -> ImageAugment:
        r"""SimCLR's views (its Appendix A): crops of 8–100 % of the area, flip, colour
        jitter of brightness, contrast and saturation :math:`0.8 s` and hue :math:`0.2 s`
        with probability 0.8, grayscale with probability 0.2 and, with ``blur``, a Gaussian
        blur (:math:`\sigma \in [0.1, 2]`, a tenth of the side) with probability 0.5.
        SimCLR uses :math:`s = 1` with blur on ImageNet and :math:`s = 0.5` without blur
        on CIFAR-10."""
        if not 0.0 <= 0.2 * strength <= 0.5:
            raise ValueError(f"strength must be in [0, 2.5] (hue 0.2 * strength in [0, 0.5]; got {strength})")
        return cls(size, in_channels=in_channels, crop_scale=(0.08, 1.0), brightness=0.8 * strength,
                   contrast=0.8 * strength, saturation=0.8 * strength, hue=0.2 * strength,
                   blur_p=0.5 if blur else 0.0)

    @classmethod
    def digits(cls, size: int = 8) -> ImageAugment:
        r"""Views for small grayscale digits: mild crops, no flip (digits are not
        mirror-symmetric), brightness/contrast jitter and a light blur."""
        return cls(
            size,
            in_channels=1,
            crop_scale=(0.5, 1.0),
            crop_ratio=(0.8, 1.25),
            flip_p=0.0,
            brightness=0.4,
            contrast=0.4,
            jitter_p=0.8,
            blur_p=0.5,
            blur_sigma=(0.1, 1.0),
            blur_kernel_size=3,
        )

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        check_images(images, self.in_channels)
        if generator is None:
            return self.pipeline(images).clamp(0.0, 1.0)
        # kornia draws from the global RNG; a seed drawn from the caller's generator in a
        # forked RNG state makes the views reproducible without disturbing other code.
        seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
        devices = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            # only the generators fork_rng restores (torch.manual_seed would reseed every GPU)
            torch.default_generator.manual_seed(seed)
            if devices:
                with torch.cuda.device(images.device):
                    torch.cuda.manual_seed(seed)
            return self.pipeline(images).clamp(0.0, 1.0)

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, in_channels={self.in_channels}, crop_scale={self.crop_scale}, "
            f"flip_p={self.flip_p}, jitter={self.jitter}, jitter_p={self.jitter_p}, "
            f"grayscale_p={self.grayscale_p}, blur_p={self.blur_p}"
        )


class MultiView(nn.Module):
    r"""Draws ``num_views`` independent augmentations of every image, the positive pairs
    (or groups) of `SimCLR <https://arxiv.org/abs/2002.05709>`_-style methods:

    .. math::
        (\tilde{x}^{(1)}_i, \dots, \tilde{x}^{(V)}_i), \qquad \tilde{x}^{(v)}_i = t^{(v)}_i(x_i).

    Args:
        augment (nn.Module): Called as ``augment(images, generator)``.
        num_views (int, optional): :math:`V \ge 1`. (default: :obj:`2`)

    Shapes:
        - **input:** :math:`(N, C, H, W)`
        - **output:** :math:`V` tensors :math:`(N, C, H', W')`

    Example:
        >>> views = MultiView(ImageAugment(32), num_views=2)(torch.rand(4, 3, 32, 32))
        >>> len(views), views[0].shape
        (2, torch.Size([4, 3, 32, 32]))
    """

    def __init__(self, augment: nn.Module, num_views: int = 2) -> None:
        super().__init__()
        if isinstance(num_views, bool) or not isinstance(num_views, int) or num_views < 1:
            raise ValueError(f"num_views must be an integer >= 1 (got {num_views!r})")
        self.augment = augment
        self.num_views = num_views

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        return [self.augment(images, generator) for _ in range(self.num_views)]

    def extra_repr(self) -> str:
        return f"num_views={self.num_views}"
