r"""Classic metric-learning losses: margin contrastive, triplet, N-pair and binary NCE."""

from __future__ import annotations

import math

from torch import Tensor, nn

from gcl.losses import functional as GF
from gcl.losses._checks import _number, check_non_negative, check_positive

__all__ = ["ContrastiveLoss", "NCELoss", "NPairLoss", "TripletLoss"]


class ContrastiveLoss(nn.Module):
    r"""The margin contrastive loss on pairs of `Hadsell, Chopra and LeCun
    <https://doi.org/10.1109/CVPR.2006.100>`_ (CVPR 2006).

    With :math:`D = \lVert x_1 - x_2 \rVert_2` and :math:`y = 1` for similar pairs:

    .. math::
        \mathcal{L} = \frac{1}{N} \sum_{i} \tfrac{1}{2} y_i D_i^2
        + \tfrac{1}{2} (1 - y_i) \max(0, m - D_i)^2.

    Pointwise in the pairs; under DDP the mean runs over the pairs of all ranks
    (:func:`~gcl.losses.global_mean`), also when ranks hold different numbers.

    Args:
        margin (float, optional): :math:`m > 0`. (default: :obj:`1.0`)

    Shapes:
        - **input:** ``x1`` :math:`(N, d)`, ``x2`` :math:`(N, d)`, ``similar`` :math:`(N)`
          (bool or 0/1)
        - **output:** scalar

    Example:
        >>> loss_fn = ContrastiveLoss(margin=1.0)
        >>> x1, x2 = torch.randn(10, 4), torch.randn(10, 4)
        >>> loss = loss_fn(x1, x2, torch.rand(10) > 0.5)
    """

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        check_positive("margin", margin)
        self.margin = margin

    def forward(self, x1: Tensor, x2: Tensor, similar: Tensor) -> Tensor:
        return GF.contrastive_loss(x1, x2, similar, margin=self.margin)

    def extra_repr(self) -> str:
        return f"margin={self.margin}"


class TripletLoss(nn.Module):
    r"""The triplet margin loss of `Weinberger and Saul
    <https://jmlr.org/papers/v10/weinberger09a.html>`_ (JMLR 2009) and `FaceNet
    <https://arxiv.org/abs/1503.03832>`_ (Schroff et al., CVPR 2015).

    .. math::
        \mathcal{L} = \frac{1}{N} \sum_i \max\big(0,\ d(a_i, p_i) - d(a_i, n_i) + m\big),

    with Euclidean :math:`d` (squared with ``squared=True``, as in FaceNet). At
    :math:`d = 0`, where the norm has no gradient (a negative on its anchor), :math:`d` is
    measured as ``F.pairwise_distance`` and ``nn.TripletMarginLoss`` do,
    :math:`\lVert a_i - n_i + \epsilon\rVert_2` with :math:`\epsilon = 10^{-6}`, like
    :class:`ContrastiveLoss`; :math:`d(a_i, p_i)` is the plain norm (a positive on its anchor
    stays there; ``nn.TripletMarginLoss`` shifts it too). Under DDP the mean runs over the triplets of all ranks
    (:func:`~gcl.losses.global_mean`).

    Args:
        margin (float, optional): :math:`m \ge 0`. (default: :obj:`1.0`)
        squared (bool, optional): Squared distances. (default: :obj:`False`)

    Shapes:
        - **input:** ``anchor``, ``positive``, ``negative`` :math:`(N, d)`
        - **output:** scalar

    Example:
        >>> loss_fn = TripletLoss(margin=0.5)
        >>> a, p, n = torch.randn(3, 10, 4)
        >>> loss = loss_fn(a, p, n)
    """

    def __init__(self, margin: float = 1.0, squared: bool = False) -> None:
        super().__init__()
        check_non_negative("margin", margin)
        self.margin = margin
        self.squared = squared

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return GF.triplet_loss(anchor, positive, negative, margin=self.margin, squared=self.squared)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, squared={self.squared}"


class NPairLoss(nn.Module):
    r"""The multi-class N-pair loss of `Sohn <https://papers.nips.cc/paper/6200-improved-deep-metric-learning-with-multi-class-n-pair-loss-objective>`_
    (NeurIPS 2016).

    For :math:`N` anchor/positive pairs from :math:`N` different classes, the other
    pairs' positives are the negatives of each anchor (inner-product similarity):

    .. math::
        \mathcal{L} = \frac{1}{N} \sum_i \log\Big(1 + \sum_{j \ne i}
        \exp(f_i^\top f_j^+ - f_i^\top f_i^+)\Big)
        + \frac{\lambda}{2N} \sum_i \big(\lVert f_i \rVert^2 + \lVert f_i^+ \rVert^2\big).

    The second term is the paper's L2 regulariser of the embeddings. With ``labels``,
    every positive sharing the anchor's label is a target, weighted equally (the form
    of the common TensorFlow implementation). Positives are gathered across ranks.

    Args:
        l2_reg (float, optional): :math:`\lambda \ge 0`. (default: :obj:`0.0`)

    Shapes:
        - **input:** ``anchors`` :math:`(N, d)`, ``positives`` :math:`(N, d)`,
          ``labels`` :math:`(N)` (optional)
        - **output:** scalar

    Example:
        >>> loss_fn = NPairLoss(l2_reg=0.002)
        >>> loss = loss_fn(torch.randn(8, 16), torch.randn(8, 16))
    """

    def __init__(self, l2_reg: float = 0.0) -> None:
        super().__init__()
        check_non_negative("l2_reg", l2_reg)
        self.l2_reg = l2_reg

    def forward(self, anchors: Tensor, positives: Tensor, labels: Tensor | None = None) -> Tensor:
        return GF.n_pair_loss(anchors, positives, labels, l2_reg=self.l2_reg)

    def extra_repr(self) -> str:
        return f"l2_reg={self.l2_reg}"


class NCELoss(nn.Module):
    r"""Binary noise-contrastive estimation of `Gutmann and Hyvärinen
    <https://proceedings.mlr.press/v9/gutmann10a.html>`_ (AISTATS 2010), in the embedding
    form of `Wu et al. <https://arxiv.org/abs/1805.01978>`_ (CVPR 2018).

    The model's log-density of a sample :math:`x` given the query :math:`q` is
    :math:`G(x) = q^\top x / \tau - \log Z`. A logistic classifier separates the data
    sample :math:`x^+` from :math:`k` noise samples :math:`x^-_j \sim P_n`:

    .. math::
        h(x) = \sigma\big(G(x) - \log(k\,P_n(x))\big), \qquad
        \mathcal{L} = -\frac{1}{B}\sum_{b}\Big[\log h(x_b^+)
        + \sum_{j=1}^{k} \log\big(1 - h(x^-_{b,j})\big)\Big].

    Computed with ``softplus`` for stability.

    Args:
        temperature (float, optional): :math:`\tau > 0`. (default: :obj:`0.07`)
        log_partition (float, optional): :math:`\log Z`, a constant (Wu et al. estimate
            it once from a sample). (default: :obj:`0.0`)
        normalize (bool, optional): L2-normalise embeddings. (default: :obj:`True`)

    Shapes:
        - **input:** ``query`` :math:`(B, d)`, ``positive`` :math:`(B, d)`, ``noise``
          :math:`(k, d)` or :math:`(B, k, d)`, ``noise_log_prob`` a float or
          broadcastable to :math:`(B, 1 + k)` (column 0: the positive)
        - **output:** scalar

    Example:
        >>> import math
        >>> loss_fn = NCELoss(temperature=0.07)
        >>> q, x = torch.randn(8, 16), torch.randn(8, 16)
        >>> loss = loss_fn(q, x, torch.randn(32, 16), noise_log_prob=-math.log(1000))
    """

    def __init__(
        self, temperature: float = 0.07, log_partition: float = 0.0, normalize: bool = True
    ) -> None:
        super().__init__()
        check_positive("temperature", temperature)
        log_partition = _number("log_partition", log_partition)
        if not math.isfinite(log_partition):
            raise ValueError(f"log_partition must be finite (got {log_partition!r})")
        self.temperature = temperature
        self.log_partition = log_partition
        self.normalize = normalize

    def forward(
        self, query: Tensor, positive: Tensor, noise: Tensor, noise_log_prob: float | Tensor
    ) -> Tensor:
        return GF.nce_loss(
            query,
            positive,
            noise,
            noise_log_prob,
            temperature=self.temperature,
            log_partition=self.log_partition,
            normalize=self.normalize,
        )

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, log_partition={self.log_partition}, "
            f"normalize={self.normalize}"
        )
