r"""Adapters that carry the modality-free loss core :mod:`gcl.losses` to other data.

Each subpackage adds only what its modality needs (data, augmentations, encoders) and
assembles methods from the loss objects of :mod:`gcl.losses`, unchanged:

- :mod:`gcl.adapters.image` — batched kornia augmentations, a small ResNet, SimCLR,
  MoCo v2, SupCon, PCL, MoCHi, i-Mix and adversarial views (``pip install -e ".[image]"``).
- :mod:`gcl.adapters.text` — Hugging Face sentence encoders, SimCSE and CLIP-style
  cross-modal InfoNCE (``pip install -e ".[text]"``).
- :mod:`gcl.adapters.video` — frame dropping, VideoMoCo with a temporally decayed
  queue (``pip install -e ".[video]"``).

Shared, modality-free helpers live here: :class:`Batch` / :class:`TensorBatches` feed
tensors to :func:`gcl.train.fit`, :func:`linear_probe` scores frozen features.
Nothing optional is imported until a subpackage needs it.
"""

from __future__ import annotations

from gcl.adapters.batches import Batch, TensorBatches
from gcl.adapters.probe import linear_probe, split_indices

__all__ = ["Batch", "TensorBatches", "linear_probe", "split_indices"]
