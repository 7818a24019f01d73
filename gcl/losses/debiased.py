r"""Debiased (DCL) and hard-negative (HCL) contrastive losses."""

from __future__ import annotations

from torch import Tensor, nn

from gcl.losses import functional as GF
from gcl.losses._checks import check_non_negative, check_positive, check_unit_interval

__all__ = ["DebiasedContrastiveLoss", "HardNegativeLoss"]


class DebiasedContrastiveLoss(nn.Module):
    r"""The debiased contrastive loss of `Chuang et al. <https://arxiv.org/abs/2007.00224>`_
    (NeurIPS 2020), which corrects the NT-Xent normaliser for negatives that share the
    anchor's (unknown) class, with class prior :math:`\tau^+`.

    With :math:`M = 2N - 2` negatives per anchor, :math:`s` cosine similarity and
    temperature :math:`t`:

    .. math::
        g = \max\Big(\frac{1}{1 - \tau^+}\Big(\sum_{k=1}^{M} e^{s(x, u_k)/t}
        - \tau^+ M e^{s(x, x^+)/t}\Big),\ M e^{-1/t}\Big),
        \qquad
        \ell = -\log \frac{e^{s(x, x^+)/t}}{e^{s(x, x^+)/t} + g}.

    The clamp at :math:`M e^{-1/t}` (the smallest value the sum can take) is the
    reference code's. The loss is averaged over the :math:`2N` anchors of both views,
    like NT-Xent; :math:`\tau^+ = 0` gives exactly NT-Xent. Computed in log space with
    shifted exponentials; embeddings are always L2-normalised (the clamp assumes
    cosine similarity).

    Args:
        temperature (float, optional): :math:`t > 0`. (default: :obj:`0.5`)
        tau_plus (float, optional): :math:`\tau^+ \in [0, 1)`. (default: :obj:`0.1`)

    Shapes:
        - **input:** ``z1`` :math:`(N, d)`, ``z2`` :math:`(N, d)`
        - **output:** scalar

    Example:
        >>> loss_fn = DebiasedContrastiveLoss(temperature=0.5, tau_plus=0.1)
        >>> loss = loss_fn(torch.randn(32, 64), torch.randn(32, 64))
    """

    def __init__(self, temperature: float = 0.5, tau_plus: float = 0.1) -> None:
        super().__init__()
        check_positive("temperature", temperature)
        check_unit_interval("tau_plus", tau_plus, closed_right=False)
        self.temperature = temperature
        self.tau_plus = tau_plus

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return GF.debiased_contrastive_loss(
            z1, z2, temperature=self.temperature, tau_plus=self.tau_plus
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, tau_plus={self.tau_plus}"


class HardNegativeLoss(nn.Module):
    r"""The hard-negative contrastive loss (HCL) of `Robinson et al.
    <https://arxiv.org/abs/2010.04592>`_ (ICLR 2021): the debiased estimator of
    :class:`DebiasedContrastiveLoss` with negatives importance-weighted by
    :math:`w_k \propto e^{\beta s(x, u_k)/t}`.

    .. math::
        R = \frac{\sum_k w_k\, e^{s(x, u_k)/t}}{\frac{1}{M}\sum_k w_k}, \qquad
        g = \max\Big(\frac{R - \tau^+ M e^{s(x, x^+)/t}}{1 - \tau^+},\ M e^{-1/t}\Big),
        \qquad
        \ell = -\log \frac{e^{s(x, x^+)/t}}{e^{s(x, x^+)/t} + g}.

    :math:`\beta = 0` gives DCL. Averaged over the :math:`2N` anchors of both views;
    embeddings are always L2-normalised.

    Args:
        temperature (float, optional): :math:`t > 0`. (default: :obj:`0.5`)
        tau_plus (float, optional): :math:`\tau^+ \in [0, 1)`. (default: :obj:`0.1`)
        beta (float, optional): Hardness concentration :math:`\beta \ge 0`.
            (default: :obj:`1.0`)

    Shapes:
        - **input:** ``z1`` :math:`(N, d)`, ``z2`` :math:`(N, d)`
        - **output:** scalar

    Example:
        >>> loss_fn = HardNegativeLoss(temperature=0.5, tau_plus=0.1, beta=1.0)
        >>> loss = loss_fn(torch.randn(32, 64), torch.randn(32, 64))
    """

    def __init__(self, temperature: float = 0.5, tau_plus: float = 0.1, beta: float = 1.0) -> None:
        super().__init__()
        check_positive("temperature", temperature)
        check_unit_interval("tau_plus", tau_plus, closed_right=False)
        check_non_negative("beta", beta)
        self.temperature = temperature
        self.tau_plus = tau_plus
        self.beta = beta

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return GF.hard_negative_loss(
            z1, z2, temperature=self.temperature, tau_plus=self.tau_plus, beta=self.beta
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, tau_plus={self.tau_plus}, beta={self.beta}"
