r"""InfoNCE / NT-Xent and its GraphCL and MoCo forms."""

from __future__ import annotations

from torch import Tensor, nn

from gcl.losses import functional as GF
from gcl.losses._checks import check_positive

__all__ = ["InfoNCE", "NTXentLoss"]


class InfoNCE(nn.Module):
    r"""The InfoNCE / NT-Xent loss of `SimCLR <https://arxiv.org/abs/2002.05709>`_
    (Chen et al., ICML 2020), with the switches that give GraphCL's and MoCo's forms.

    For anchor :math:`z_{1,i}` with positive :math:`z_{2,i}` and similarity
    :math:`s(u, v) = u^\top v / (\lVert u\rVert \lVert v\rVert)`:

    .. math::
        \ell_i = -\log \frac{\exp(s(z_{1,i}, z_{2,i})/\tau)}
        {[\exp(s(z_{1,i}, z_{2,i})/\tau)] + \sum_{k \in \mathcal{N}_i} \exp(s(z_{1,i}, k)/\tau)}

    where the bracketed positive is dropped with
    ``exclude_positive_from_denominator=True`` and the negatives :math:`\mathcal{N}_i` are
    the other samples of the second view (``cross_view_negatives``), the other samples of
    the first view (``intra_view_negatives``) and the external ``negatives`` (a queue).
    The loss is the mean of :math:`\ell_i` over anchors; ``symmetric=True`` averages it
    with the ``z2 -> z1`` direction.

    * SimCLR / NT-Xent: the defaults (:math:`2N - 2` negatives per anchor), also
      :meth:`simclr` and the alias :class:`NTXentLoss`.
    * `GraphCL <https://arxiv.org/abs/2010.13902>`_ reference loss:
      ``symmetric=False, intra_view_negatives=False,
      exclude_positive_from_denominator=True`` (:meth:`graphcl`). Without the positive
      in the denominator the loss can be negative.
    * `MoCo <https://arxiv.org/abs/1911.05722>`_: query ``z1``, key ``z2``, the queue as
      ``negatives``, ``symmetric=False`` and no in-batch negatives (:meth:`moco`).

    Logits are fed to :func:`torch.nn.functional.cross_entropy` (or a log-sum-exp when
    the positive is excluded). Half-precision inputs are upcast to ``float32`` and the
    loss is returned in ``float32``. Under :mod:`torch.distributed` the in-batch
    candidates are gathered from all ranks with gradient; the mean of the loss over
    ranks equals the loss of the global batch in one process.

    Args:
        temperature (float, optional): :math:`\tau > 0`. (default: :obj:`0.5`)
        symmetric (bool, optional): Average both directions. (default: :obj:`True`)
        intra_view_negatives (bool, optional): Use same-view negatives. (default: :obj:`True`)
        exclude_positive_from_denominator (bool, optional): GraphCL's normaliser.
            (default: :obj:`False`)
        normalize (bool, optional): Cosine similarity; :obj:`False` uses raw dot
            products. (default: :obj:`True`)
        cross_view_negatives (bool, optional): Use the other samples of the other view
            as negatives. (default: :obj:`True`)
        gather_negatives (bool, optional): The ``negatives`` passed to :meth:`forward`
            come from this rank's batch (hard negatives): under :mod:`torch.distributed`
            gather them from all ranks with gradient. :obj:`False` for a memory queue,
            which every rank holds whole. (default: :obj:`False`)

    Shapes:
        - **input:** ``z1`` :math:`(N, d)`, ``z2`` :math:`(N, d)`, ``negatives``
          :math:`(K, d)` (optional)
        - **output:** scalar

    Example:
        >>> loss_fn = InfoNCE(temperature=0.2)
        >>> z1, z2 = torch.randn(32, 128), torch.randn(32, 128)
        >>> loss = loss_fn(z1, z2)
    """

    def __init__(
        self,
        temperature: float = 0.5,
        symmetric: bool = True,
        intra_view_negatives: bool = True,
        exclude_positive_from_denominator: bool = False,
        normalize: bool = True,
        cross_view_negatives: bool = True,
        gather_negatives: bool = False,
    ) -> None:
        super().__init__()
        check_positive("temperature", temperature)
        self.temperature = temperature
        self.symmetric = symmetric
        self.intra_view_negatives = intra_view_negatives
        self.exclude_positive_from_denominator = exclude_positive_from_denominator
        self.normalize = normalize
        self.cross_view_negatives = cross_view_negatives
        self.gather_negatives = gather_negatives

    @classmethod
    def simclr(cls, temperature: float = 0.5) -> InfoNCE:
        r"""NT-Xent of SimCLR: symmetric, :math:`2N - 2` in-batch negatives per anchor."""
        return cls(temperature=temperature)

    @classmethod
    def graphcl(cls, temperature: float = 0.2) -> InfoNCE:
        r"""GraphCL's reference loss: one direction, cross-view negatives only, positive
        excluded from the denominator."""
        return cls(
            temperature=temperature,
            symmetric=False,
            intra_view_negatives=False,
            exclude_positive_from_denominator=True,
        )

    @classmethod
    def moco(cls, temperature: float = 0.2) -> InfoNCE:
        r"""MoCo: query ``z1`` against its key ``z2`` and the queue passed as ``negatives``."""
        return cls(
            temperature=temperature,
            symmetric=False,
            intra_view_negatives=False,
            cross_view_negatives=False,
        )

    def forward(self, z1: Tensor, z2: Tensor, negatives: Tensor | None = None) -> Tensor:
        return GF.info_nce_loss(
            z1,
            z2,
            negatives,
            temperature=self.temperature,
            symmetric=self.symmetric,
            intra_view_negatives=self.intra_view_negatives,
            cross_view_negatives=self.cross_view_negatives,
            exclude_positive_from_denominator=self.exclude_positive_from_denominator,
            normalize=self.normalize,
            gather_negatives=self.gather_negatives,
        )

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, symmetric={self.symmetric}, "
            f"intra_view_negatives={self.intra_view_negatives}, "
            f"cross_view_negatives={self.cross_view_negatives}, "
            f"exclude_positive_from_denominator={self.exclude_positive_from_denominator}, "
            f"normalize={self.normalize}"
            + (", gather_negatives=True" if self.gather_negatives else "")
        )


NTXentLoss = InfoNCE
r"""Alias of :class:`InfoNCE`, whose defaults are SimCLR's NT-Xent (:math:`\tau = 0.5`,
symmetric, intra- and cross-view negatives)."""
