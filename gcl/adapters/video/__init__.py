r"""Video adapter: frame dropping (random and adversarial), small video encoders and
VideoMoCo with a temporally decayed queue, built from :mod:`gcl.losses`
(``pip install -e ".[video]"``; plain torch, no extra packages today).

- Data: :func:`moving_digits` (clips generated from scikit-learn's digits).
- Views: :func:`drop_frames`, :func:`adversarial_drop`, :class:`FrameImportance`,
  :func:`random_translate`, :func:`check_clips`.
- Encoders: :class:`VideoEncoder3D`, :class:`FramePoolingEncoder`.
- Method: :class:`VideoMoCo` (and :func:`decayed_negatives`).
"""

from __future__ import annotations

from gcl.adapters.video.augment import (
    DroppedFrames,
    FrameImportance,
    adversarial_drop,
    check_clips,
    drop_frames,
    random_translate,
)
from gcl.adapters.video.data import DIRECTIONS, VideoData, moving_digits
from gcl.adapters.video.encoders import FramePoolingEncoder, VideoEncoder3D
from gcl.adapters.video.methods import VideoMoCo, decayed_negatives

__all__ = [
    "DIRECTIONS",
    "DroppedFrames",
    "FrameImportance",
    "FramePoolingEncoder",
    "VideoData",
    "VideoEncoder3D",
    "VideoMoCo",
    "adversarial_drop",
    "check_clips",
    "decayed_negatives",
    "drop_frames",
    "moving_digits",
    "random_translate",
]
