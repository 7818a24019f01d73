r"""Projection heads for contrastive objectives and MLP classifiers."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import cast

from torch import Tensor, nn

from gcl._checks import check_switch
from gcl.nn._utils import check_dropout, check_positive, make_activation

__all__ = ["Classifier", "ProjectionHead"]


def _reset(module: nn.Module) -> None:
    for child in module.modules():
        reset = getattr(child, "reset_parameters", None)
        if child is not module and callable(reset):
            reset()


class ProjectionHead(nn.Module):
    r"""The MLP projection head :math:`g(\cdot)` of `SimCLR
    <https://arxiv.org/abs/2002.05709>`_-style methods, mapping encoder
    outputs to the space where the contrastive loss is computed:

    .. math::
        \mathbf{z} = \mathbf{W}_L\,\sigma\big(\mathrm{BN}(\mathbf{W}_{L-1}
        \cdots \sigma(\mathrm{BN}(\mathbf{W}_1 \mathbf{h}))\big)).

    Paper settings:

    - `GraphCL <https://arxiv.org/abs/2010.13902>`_ (GIN, 3 x 32):
      ``ProjectionHead(96, 96, 96)``, i.e. Linear(96, 96)–ReLU–Linear(96, 96).
    - `GRACE <https://arxiv.org/abs/2006.04131>`_ / `GCA
      <https://arxiv.org/abs/2010.14945>`_: ``ProjectionHead(d, d_proj, d,
      activation="elu")``, i.e. Linear–ELU–Linear.
    - `Graph Barlow Twins <https://arxiv.org/abs/2106.02466>`_ computes its
      loss on the encoder output directly and uses no head.

    Args:
        in_channels (int): Input size.
        hidden_channels (int): Width of the hidden layers.
        out_channels (int): Output size.
        num_layers (int, optional): Number of linear layers. (default: :obj:`2`)
        batch_norm (bool, optional): Batch-normalise hidden layers before the
            activation. (default: :obj:`False`)
        activation (str, optional): ``"relu"``, ``"prelu"``, ``"elu"``,
            ``"leaky_relu"``, ``"tanh"`` or ``"identity"``. (default: :obj:`"relu"`)

    Shapes:
        - **input:** :math:`(B, F_{in})`
        - **output:** :math:`(B, F_{out})`

    Example:
        >>> import torch
        >>> head = ProjectionHead(96, 96, 96)
        >>> head(torch.randn(4, 96)).shape
        torch.Size([4, 96])
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int = 2,
        batch_norm: bool = False,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        for name, value in [
            ("in_channels", in_channels),
            ("hidden_channels", hidden_channels),
            ("out_channels", out_channels),
            ("num_layers", num_layers),
        ]:
            check_positive(name, value)
        batch_norm = check_switch("batch_norm", batch_norm)
        make_activation(activation)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.num_layers = num_layers
        self.batch_norm = batch_norm
        self.activation = activation

        widths = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        layers: list[nn.Module] = []
        for i in range(num_layers):
            layers.append(nn.Linear(widths[i], widths[i + 1]))
            if i < num_layers - 1:
                if batch_norm:
                    layers.append(nn.BatchNorm1d(widths[i + 1]))
                layers.append(make_activation(activation))
        self.mlp = nn.Sequential(*layers)

    def reset_parameters(self) -> None:
        r"""Re-initialise all learnable parameters."""
        _reset(self.mlp)

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
            f"{self.out_channels}, num_layers={self.num_layers}, "
            f"batch_norm={self.batch_norm}, activation={self.activation!r})"
        )


class Classifier(nn.Module):
    r"""An MLP returning class logits, for supervised heads on graph embeddings
    such as those of `HGP-SL <https://arxiv.org/abs/1911.05954>`_ and LCGNN:

    .. math::
        \mathbf{y} = \mathbf{W}_L\,\mathrm{Dropout}\big(\sigma(\mathbf{W}_{L-1}
        \cdots \mathrm{Dropout}(\sigma(\mathbf{W}_1 \mathbf{h}))\big)).

    HGP-SL's MLP, Linear(2h, h)–ReLU–Dropout–Linear(h, h/2)–ReLU–Dropout–
    Linear(h/2, C) with dropout 0.5, is ``Classifier(2 * h, [h, h // 2], C,
    dropout=0.5)``. The output is raw logits: ``F.cross_entropy`` on them
    equals the reference code's ``log_softmax`` followed by ``nll_loss``.

    Args:
        in_channels (int): Input size.
        hidden_channels (int or Sequence[int]): Width of each hidden layer; an
            integer (Python or NumPy) means one hidden layer, an empty sequence a
            linear model.
        out_channels (int): Number of classes.
        dropout (float, optional): Dropout after each hidden activation.
            (default: :obj:`0.0`)
        activation (str, optional): Hidden activation. (default: :obj:`"relu"`)

    Shapes:
        - **input:** :math:`(B, F_{in})`
        - **output:** :math:`(B, C)`

    Example:
        >>> import torch
        >>> clf = Classifier(256, [128, 64], 2, dropout=0.5)
        >>> clf(torch.randn(4, 256)).shape
        torch.Size([4, 2])
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int | Sequence[int],
        out_channels: int,
        dropout: float = 0.0,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        # a NumPy integer (a width read from an array or a config) is one width too
        hidden: list[int] = ([cast(int, hidden_channels)] if isinstance(hidden_channels, numbers.Integral)
                             else list(cast(Sequence[int], hidden_channels)))
        check_positive("in_channels", in_channels)
        check_positive("out_channels", out_channels)
        for width in hidden:
            check_positive("hidden_channels", width)
        hidden = [int(width) for width in hidden]
        check_dropout(dropout)
        make_activation(activation)
        self.in_channels = in_channels
        self.hidden_channels = tuple(hidden)
        self.out_channels = out_channels
        self.dropout = dropout
        self.activation = activation

        widths = [in_channels, *hidden]
        layers: list[nn.Module] = []
        for i in range(len(hidden)):
            layers += [
                nn.Linear(widths[i], widths[i + 1]),
                make_activation(activation),
                nn.Dropout(dropout),
            ]
        layers.append(nn.Linear(widths[-1], out_channels))
        self.mlp = nn.Sequential(*layers)

    def reset_parameters(self) -> None:
        r"""Re-initialise all learnable parameters."""
        _reset(self.mlp)

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {list(self.hidden_channels)}, "
            f"{self.out_channels}, dropout={self.dropout}, activation={self.activation!r})"
        )
