r"""A small residual image encoder for 8×8 to 32×32 inputs."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from gcl.adapters._optional import reset_children
from gcl.adapters.batches import check_input_dtype
from gcl.adapters.image.augment import check_images

__all__ = ["SmallResNet"]


class _BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    r"""A ResNet (`He et al., CVPR 2016 <https://arxiv.org/abs/1512.03385>`_) sized for
    small images: a 3×3 stem without pooling, ``num_stages`` stages of basic blocks
    (the first keeps the resolution, each later one halves it and doubles the width)
    and global average pooling:

    .. math::
        h = \mathrm{GAP}\big(S_L \circ \cdots \circ S_1(\mathrm{ReLU}(\mathrm{BN}(
        W_0 * x)))\big), \qquad
        S_l(u) = \mathrm{ReLU}\big(u' + \mathcal{F}(u')\big)\ \text{per block}.

    Two stages suit 8×8 digits (8 → 4 pixels), three suit 32×32 (32 → 8).

    Args:
        in_channels (int, optional): Image channels. (default: :obj:`1`)
        hidden_channels (int, optional): Width of the first stage. (default: :obj:`32`)
        num_stages (int, optional): Number of stages. (default: :obj:`2`)
        blocks_per_stage (int, optional): Basic blocks per stage. (default: :obj:`1`)

    Attributes:
        out_channels (int): Feature size, ``hidden_channels * 2 ** (num_stages - 1)``.

    Shapes:
        - **input:** :math:`(N, C, H, W)`, float in :math:`[0, 1]`
        - **output:** :math:`(N, F_{out})`

    Example:
        >>> encoder = SmallResNet(in_channels=1, hidden_channels=16)
        >>> encoder(torch.rand(4, 1, 8, 8)).shape
        torch.Size([4, 32])
    """

    def __init__(
        self,
        in_channels: int = 1,
        hidden_channels: int = 32,
        num_stages: int = 2,
        blocks_per_stage: int = 1,
    ) -> None:
        super().__init__()
        for name, value in [
            ("in_channels", in_channels),
            ("hidden_channels", hidden_channels),
            ("num_stages", num_stages),
            ("blocks_per_stage", blocks_per_stage),
        ]:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1 (got {value!r})")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.num_stages = num_stages
        self.blocks_per_stage = blocks_per_stage
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, hidden_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(hidden_channels),
            nn.ReLU(),
        )
        blocks: list[nn.Module] = []
        width = hidden_channels
        for stage in range(num_stages):
            out = hidden_channels * 2**stage
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                blocks.append(_BasicBlock(width, out, stride))
                width = out
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = width

    def reset_parameters(self) -> None:
        r"""Re-draws all weights."""
        reset_children(self)

    def forward(self, images: Tensor) -> Tensor:
        check_images(images, self.in_channels)
        check_input_dtype(images, self, "images")
        features = self.blocks(self.stem(images))
        return features.mean(dim=(2, 3))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(in_channels={self.in_channels}, "
            f"hidden_channels={self.hidden_channels}, num_stages={self.num_stages}, "
            f"blocks_per_stage={self.blocks_per_stage}, out_channels={self.out_channels})"
        )
