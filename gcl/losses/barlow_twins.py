r"""The Barlow Twins redundancy-reduction loss and its Graph Barlow Twins settings."""

from __future__ import annotations

from torch import Tensor, nn

from gcl.losses import functional as GF
from gcl.losses._checks import check_non_negative, check_positive

__all__ = ["BarlowTwinsLoss"]

_NORMALIZATIONS = ("batchnorm", "unbiased")


class BarlowTwinsLoss(nn.Module):
    r"""The redundancy-reduction loss of `Barlow Twins <https://arxiv.org/abs/2103.03230>`_
    (Zbontar et al., ICML 2021), also used by `Graph Barlow Twins
    <https://arxiv.org/abs/2106.02466>`_ (Bielak et al., 2022).

    Each embedding dimension is standardised over the batch, giving
    :math:`\tilde{z}_1, \tilde{z}_2`, and

    .. math::
        \mathcal{C} = \frac{1}{N} \tilde{z}_1^\top \tilde{z}_2, \qquad
        \mathcal{L} = s \Big( \sum_i (1 - \mathcal{C}_{ii})^2
        + \lambda \sum_i \sum_{j \ne i} \mathcal{C}_{ij}^2 \Big).

    No negatives are needed. Two standardisations are offered, each matching its
    reference implementation:

    * ``'batchnorm'``: :math:`(z - \mu) / \sqrt{\sigma^2_{\text{biased}} + \epsilon}`, what
      ``BatchNorm1d(affine=False)`` does in training mode (`facebookresearch/barlowtwins`,
      :math:`\epsilon = 10^{-5}`). Preset :meth:`original`: :math:`\lambda = 0.0051`.
    * ``'unbiased'``: :math:`(z - \mu) / (\sigma_{\text{unbiased}} + \epsilon)`
      (`pbielak/graph-barlow-twins`, :math:`\epsilon = 10^{-15}`). Preset
      :meth:`graph_barlow_twins`: :math:`\lambda = 1/d`.

    Under :mod:`torch.distributed` the batch means and variances and :math:`\mathcal{C}`
    are all-reduced (with gradient), so every rank computes the loss of the global batch.
    Half-precision inputs are computed in ``float32``.

    Args:
        off_diagonal_weight (float, optional): :math:`\lambda \ge 0`; :obj:`None` means
            :math:`1/d`. (default: :obj:`0.0051`)
        normalization (str, optional): ``'batchnorm'`` or ``'unbiased'``.
            (default: :obj:`'batchnorm'`)
        eps (float, optional): :math:`\epsilon \ge 0`; :obj:`None` uses the default of
            the normalisation (:math:`10^{-5}` / :math:`10^{-15}`). (default: :obj:`None`)
        scale (float, optional): :math:`s > 0`, a constant factor. (default: :obj:`1.0`)

    Shapes:
        - **input:** ``z1`` :math:`(N, d)`, ``z2`` :math:`(N, d)` with :math:`N \ge 2`
        - **output:** scalar

    Example:
        >>> loss_fn = BarlowTwinsLoss.graph_barlow_twins()
        >>> z1, z2 = torch.randn(64, 32), torch.randn(64, 32)
        >>> loss = loss_fn(z1, z2)
    """

    def __init__(
        self,
        off_diagonal_weight: float | None = 0.0051,
        normalization: str = "batchnorm",
        eps: float | None = None,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        if off_diagonal_weight is not None:
            check_non_negative("off_diagonal_weight", off_diagonal_weight)
        if normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {_NORMALIZATIONS} (got {normalization!r})"
            )
        if eps is not None:
            check_non_negative("eps", eps)
        check_positive("scale", scale)
        self.off_diagonal_weight = off_diagonal_weight
        self.normalization = normalization
        self.eps = eps
        self.scale = scale

    @classmethod
    def original(cls) -> BarlowTwinsLoss:
        r"""Settings of Zbontar et al.: :math:`\lambda = 0.0051`, batch-norm standardisation."""
        return cls(off_diagonal_weight=0.0051, normalization="batchnorm", eps=1e-5)

    @classmethod
    def graph_barlow_twins(cls) -> BarlowTwinsLoss:
        r"""Settings of Bielak et al.: :math:`\lambda = 1/d`, unbiased std, :math:`\epsilon = 10^{-15}`."""
        return cls(off_diagonal_weight=None, normalization="unbiased", eps=1e-15)

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return GF.barlow_twins_loss(
            z1,
            z2,
            off_diagonal_weight=self.off_diagonal_weight,
            normalization=self.normalization,
            eps=self.eps,
            scale=self.scale,
        )

    def extra_repr(self) -> str:
        weight = "1/d" if self.off_diagonal_weight is None else self.off_diagonal_weight
        return (
            f"off_diagonal_weight={weight}, normalization={self.normalization!r}, "
            f"eps={self.eps}, scale={self.scale}"
        )
