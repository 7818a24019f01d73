r"""Small video encoders: a 3D convolutional network and per-frame pooling."""

from __future__ import annotations

from torch import Tensor, nn

from gcl.adapters._optional import reset_children
from gcl.adapters.batches import check_input_dtype
from gcl.adapters.video.augment import check_clips

__all__ = ["FramePoolingEncoder", "VideoEncoder3D"]


def _check_counts(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1 (got {value!r})")


class VideoEncoder3D(nn.Module):
    r"""A small 3D CNN in the style of `C3D <https://arxiv.org/abs/1412.0767>`_ (Tran et
    al., ICCV 2015): 3×3×3 convolutions with batch normalisation, each stage after the
    first halving the spatial resolution and doubling the width, then global average
    pooling over time and space. Because the kernels span neighbouring frames it sees
    motion, and the pooling accepts any number of frames (clips with dropped frames).

    .. math::
        h = \mathrm{GAP}_{t,y,x}\big(S_L \circ \cdots \circ S_1(x)\big), \qquad
        S_l(u) = \mathrm{ReLU}(\mathrm{BN}(W_l * u)).

    Args:
        in_channels (int, optional): Frame channels. (default: :obj:`1`)
        hidden_channels (int, optional): Width of the first stage. (default: :obj:`16`)
        num_stages (int, optional): Number of stages. (default: :obj:`3`)

    Attributes:
        out_channels (int): ``hidden_channels * 2 ** (num_stages - 1)``.

    Shapes:
        - **input:** :math:`(N, C, T, H, W)`
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(self, in_channels: int = 1, hidden_channels: int = 16, num_stages: int = 3) -> None:
        super().__init__()
        _check_counts(in_channels=in_channels, hidden_channels=hidden_channels, num_stages=num_stages)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.num_stages = num_stages
        layers: list[nn.Module] = []
        width = in_channels
        for stage in range(num_stages):
            out = hidden_channels * 2**stage
            stride = (1, 1, 1) if stage == 0 else (1, 2, 2)
            layers += [nn.Conv3d(width, out, 3, stride, 1, bias=False), nn.BatchNorm3d(out), nn.ReLU()]
            width = out
        self.layers = nn.Sequential(*layers)
        self.out_channels = width

    def reset_parameters(self) -> None:
        r"""Re-draws all weights."""
        reset_children(self)

    def forward(self, clips: Tensor) -> Tensor:
        check_clips(clips, self.in_channels)
        check_input_dtype(clips, self, "clips")
        return self.layers(clips).mean(dim=(2, 3, 4))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(in_channels={self.in_channels}, hidden_channels="
            f"{self.hidden_channels}, num_stages={self.num_stages}, out_channels={self.out_channels})"
        )


class FramePoolingEncoder(nn.Module):
    r"""Encodes every frame with an image encoder and averages over time, the
    frame-pooling baseline of video representation learning:

    .. math::
        h = \frac{1}{T} \sum_{t=1}^{T} f(x_t).

    It is blind to frame order (so to motion direction) but cheap, and reuses any
    image encoder, e.g. :class:`~gcl.adapters.image.SmallResNet`.

    Args:
        frame_encoder (nn.Module): :obj:`[N, C, H, W]` to :obj:`[N, F]`, with
            ``out_channels``.

    Shapes:
        - **input:** :math:`(N, C, T, H, W)`
        - **output:** :math:`(N, F)`
    """

    def __init__(self, frame_encoder: nn.Module) -> None:
        super().__init__()
        out = getattr(frame_encoder, "out_channels", None)
        if not isinstance(out, int):
            raise ValueError(f"frame_encoder must expose an integer out_channels (got {out!r})")
        self.frame_encoder = frame_encoder
        self.out_channels = out

    def forward(self, clips: Tensor) -> Tensor:
        check_clips(clips)
        n, c, t, h, w = clips.shape
        frames = clips.transpose(1, 2).reshape(n * t, c, h, w)
        return self.frame_encoder(frames).view(n, t, -1).mean(dim=1)
