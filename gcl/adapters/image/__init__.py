r"""Image adapter: kornia augmentations, a small ResNet and contrastive methods built
from :mod:`gcl.losses` (``pip install -e ".[image]"``).

- Data: :func:`load_digits` (scikit-learn's bundled 8×8 digits).
- Views: :class:`ImageAugment`, :class:`MultiView`, :func:`check_images`.
- Encoder: :class:`SmallResNet`; heads: :func:`projection_head`.
- Methods: :class:`SimCLR`, :class:`MoCo` (v2), :class:`SupCon`, :class:`PCL`,
  :class:`MoCHi`, :class:`IMix`, :class:`AdversarialSimCLR`.

kornia is imported only when an :class:`ImageAugment` is built.
"""

from __future__ import annotations

from gcl.adapters.image.augment import ImageAugment, MultiView, check_images
from gcl.adapters.image.data import ImageData, load_digits
from gcl.adapters.image.encoders import SmallResNet
from gcl.adapters.image.methods import (
    PCL,
    AdversarialSimCLR,
    IMix,
    MoCHi,
    MoCo,
    ProjectionHead,
    SimCLR,
    SupCon,
    projection_head,
)

__all__ = [
    "PCL",
    "AdversarialSimCLR",
    "IMix",
    "ImageAugment",
    "ImageData",
    "MoCHi",
    "MoCo",
    "MultiView",
    "ProjectionHead",
    "SimCLR",
    "SmallResNet",
    "SupCon",
    "check_images",
    "load_digits",
    "projection_head",
]
