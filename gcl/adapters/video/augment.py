r"""Temporal augmentations: random and adversarial (learned) frame dropping."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gcl.losses._checks import all_finite

__all__ = [
    "DroppedFrames",
    "FrameImportance",
    "adversarial_drop",
    "check_clips",
    "drop_frames",
    "random_translate",
]


def check_clips(clips: Tensor, channels: int | None = None, name: str = "clips") -> None:
    r"""Checks that ``clips`` is a float :obj:`[N, C, T, H, W]` batch.

    A batch whose frame axis sits before the channel axis (:obj:`[N, T, C, H, W]`, the
    layout of many video readers) raises a :class:`ValueError` that says how to fix it.

    Args:
        clips (torch.Tensor): The batch.
        channels (int, optional): Expected number of channels. (default: :obj:`None`)
        name (str, optional): Name used in the messages. (default: :obj:`"clips"`)
    """
    if not isinstance(clips, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor (got {type(clips).__name__})")
    shape = tuple(clips.shape)
    if clips.dim() != 5:
        raise ValueError(f"{name} must be a 5-D batch (N, C, T, H, W) (got shape {shape})")
    if not clips.is_floating_point():
        raise ValueError(
            f"{name} must be floating point (got dtype {clips.dtype}); convert 8-bit frames "
            "with clips.float() / 255"
        )
    swapped = (
        f"{name} must be laid out (N, C, T, H, W) (got shape {shape}, which looks like "
        "(N, T, C, H, W) with the frame axis before the channels); use clips.transpose(1, 2)"
    )
    channels_last = (
        f"{name} must be laid out (N, C, T, H, W) (got shape {shape}, which looks like "
        "(N, T, H, W, C), the layout of torchvision.io.read_video); use clips.permute(0, 4, 1, 2, 3)"
    )
    if channels is not None:
        if shape[1] != channels:
            if shape[2] == channels:
                raise ValueError(swapped)
            if shape[4] == channels:
                raise ValueError(channels_last)
            raise ValueError(f"{name} must have {channels} channels on axis 1 (got shape {shape})")
    elif shape[1] not in (1, 2, 3, 4):
        if shape[2] in (1, 3):
            raise ValueError(swapped)
        if shape[4] in (1, 3):
            raise ValueError(channels_last)
    if clips.numel() == 0:
        raise ValueError(f"{name} must not be empty (got shape {shape})")
    if not all_finite(clips.detach()):
        raise ValueError(f"{name} contains NaN or inf values")


class DroppedFrames(NamedTuple):
    r"""Output of :func:`drop_frames` and :func:`adversarial_drop`."""

    clips: Tensor
    r"""The kept frames in their original order, :obj:`[N, C, K, H, W]`."""
    kept: Tensor
    r"""Indices of the kept frames, increasing, :obj:`[N, K]`."""


def _check_num_keep(num_keep: int, num_frames: int) -> None:
    if isinstance(num_keep, bool) or not isinstance(num_keep, int) or not 1 <= num_keep <= num_frames:
        raise ValueError(f"num_keep must be an integer in [1, {num_frames}] (got {num_keep!r})")


def _gather_frames(clips: Tensor, kept: Tensor) -> Tensor:
    n, c, _, h, w = clips.shape
    index = kept[:, None, :, None, None].expand(n, c, kept.size(1), h, w)
    return clips.gather(2, index)


def drop_frames(clips: Tensor, num_keep: int, generator: torch.Generator | None = None) -> DroppedFrames:
    r"""Keeps ``num_keep`` frames of every clip, chosen uniformly without replacement and
    kept in temporal order, the random temporal augmentation of `VideoMoCo
    <https://arxiv.org/abs/2103.05905>`_ (Pan et al., CVPR 2021):

    .. math::
        \tilde{x}_n = (x_{n, t_1}, \dots, x_{n, t_K}), \qquad
        \{t_1 < \dots < t_K\} \sim \mathrm{Uniform}\binom{\{0..T-1\}}{K}.

    Args:
        clips (torch.Tensor): :obj:`[N, C, T, H, W]`.
        num_keep (int): :math:`K`, frames kept per clip.
        generator (torch.Generator, optional): Source of randomness.

    Example:
        >>> out = drop_frames(torch.rand(2, 1, 8, 16, 16), num_keep=6)
        >>> out.clips.shape
        torch.Size([2, 1, 6, 16, 16])
    """
    check_clips(clips)
    n, _, t, _, _ = clips.shape
    _check_num_keep(num_keep, t)
    device = generator.device if generator is not None else clips.device
    scores = torch.rand(n, t, generator=generator, device=device).to(clips.device)
    kept = scores.topk(num_keep, dim=1).indices.sort(dim=1).values
    return DroppedFrames(_gather_frames(clips, kept), kept)


def random_translate(clips: Tensor, max_shift: int, generator: torch.Generator | None = None) -> Tensor:
    r"""Shifts every clip by one random offset shared by all its frames (zero fill), a
    spatial augmentation that leaves the motion within the clip intact:

    .. math::
        \tilde{x}_{n,t}(y, x) = x_{n,t}(y - \delta^y_n, x - \delta^x_n), \qquad
        \delta_n \sim \mathcal{U}\{-s, \dots, s\}^2 .

    Args:
        clips (torch.Tensor): :obj:`[N, C, T, H, W]`.
        max_shift (int): :math:`s \ge 0`, in pixels.
        generator (torch.Generator, optional): Source of randomness.
    """
    check_clips(clips)
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"max_shift must be an integer >= 0 (got {max_shift!r})")
    if max_shift == 0:
        return clips
    n, _, _, h, w = clips.shape
    device = generator.device if generator is not None else clips.device
    offset = torch.randint(2 * max_shift + 1, (n, 2), generator=generator, device=device).to(clips.device)
    padded = F.pad(clips, (max_shift, max_shift, max_shift, max_shift))
    rows = offset[:, 0, None] + torch.arange(h, device=clips.device)  # [N, H]
    cols = offset[:, 1, None] + torch.arange(w, device=clips.device)  # [N, W]
    batch = torch.arange(n, device=clips.device)[:, None, None]
    # Advanced indices on dims 0, 3, 4 go first in the result: [N, H, W, C, T].
    shifted = padded.permute(0, 3, 4, 1, 2)[batch, rows[:, :, None], cols[:, None, :]]
    return shifted.permute(0, 3, 4, 1, 2)


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return -grad


def adversarial_drop(clips: Tensor, importance: Tensor, num_keep: int) -> DroppedFrames:
    r"""Drops the :math:`T - K` frames a generator rates most important, the adversarial
    temporal augmentation of `VideoMoCo <https://arxiv.org/abs/2103.05905>`_ (Pan et al.,
    CVPR 2021), with a gradient path that lets the generator *maximise* the loss.

    With importance :math:`p_t = \sigma(s_t)` from the generator's logits :math:`s`, the
    kept frames are the :math:`K` least important, each scaled by a factor that equals
    one in the forward pass and carries the reversed gradient to the generator:

    .. math::
        \tilde{x}_{t} = w_t\, x_t, \qquad
        w_t = 1 - R(p_t) + \mathrm{sg}(p_t), \qquad
        \frac{\partial R(p)}{\partial p} = -1,

    where :math:`\mathrm{sg}` stops gradients. :math:`1 - p_t` is the relaxed weight of
    keeping a frame (more important, more likely dropped), and the reversal :math:`R`
    turns the descent on the loss into ascent for the generator: one backward pass of
    the contrastive loss trains the encoder to minimise it and the generator to maximise
    it (the min-max game of VideoMoCo), raising the importance of the kept frames that
    make the loss smaller, so that they are dropped. The hard frame choice itself is
    not differentiated.

    Args:
        clips (torch.Tensor): :obj:`[N, C, T, H, W]`.
        importance (torch.Tensor): Generator logits :math:`s` per frame, :obj:`[N, T]`.
        num_keep (int): :math:`K`.
    """
    check_clips(clips)
    n, _, t, _, _ = clips.shape
    _check_num_keep(num_keep, t)
    if importance.shape != (n, t):
        raise ValueError(f"importance must have shape ({n}, {t}) (got {tuple(importance.shape)})")
    probability = torch.sigmoid(importance)
    kept = (-probability.detach()).topk(num_keep, dim=1).indices.sort(dim=1).values
    weight = 1.0 - _ReverseGradient.apply(probability) + probability.detach()
    weight = weight.gather(1, kept).to(clips.dtype)
    frames = _gather_frames(clips, kept) * weight[:, None, :, None, None]
    return DroppedFrames(frames, kept)


class FrameImportance(nn.Module):
    r"""The frame-importance generator of `VideoMoCo <https://arxiv.org/abs/2103.05905>`_
    (Pan et al., CVPR 2021), kept small: a per-frame convolution and pooling, then a
    temporal convolution over the frame features, giving one logit per frame:

    .. math::
        s_{n,t} = \mathrm{Conv1d}_t\big(\mathrm{GAP}(\mathrm{ReLU}(W * x_{n,t}))\big).

    (The paper uses a ConvLSTM; any module mapping :obj:`[N, C, T, H, W]` to
    :obj:`[N, T]` works with :func:`adversarial_drop`.)

    Args:
        in_channels (int, optional): Frame channels. (default: :obj:`1`)
        hidden_channels (int, optional): Feature width. (default: :obj:`16`)

    Shapes:
        - **input:** :math:`(N, C, T, H, W)`
        - **output:** :math:`(N, T)`
    """

    def __init__(self, in_channels: int = 1, hidden_channels: int = 16) -> None:
        super().__init__()
        for name, value in [("in_channels", in_channels), ("hidden_channels", hidden_channels)]:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1 (got {value!r})")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.frame = nn.Conv3d(in_channels, hidden_channels, (1, 3, 3), padding=(0, 1, 1))
        self.temporal = nn.Conv1d(hidden_channels, 1, 3, padding=1)

    def forward(self, clips: Tensor) -> Tensor:
        check_clips(clips, self.in_channels)
        features = torch.relu(self.frame(clips)).mean(dim=(3, 4))  # [N, hidden, T]
        return self.temporal(features).squeeze(1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(in_channels={self.in_channels}, hidden_channels={self.hidden_channels})"
