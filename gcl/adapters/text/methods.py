r"""Text contrastive methods assembled from :class:`gcl.losses.InfoNCE`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gcl.adapters.batches import evaluation_mode
from gcl.adapters.text.encoders import check_sentences
from gcl.losses import InfoNCE

__all__ = ["CLIP", "SimCSE", "SupervisedSimCSE", "simcse_loss"]


def simcse_loss(temperature: float = 0.05, hard_negatives: bool = False) -> InfoNCE:
    r"""SimCSE's objective as :class:`gcl.losses.InfoNCE`: one direction, the other
    sentences' second embeddings (and any ``negatives``) as negatives, cosine similarity.
    ``hard_negatives=True`` (supervised SimCSE): the ``negatives`` are rows of each rank's batch,
    gathered from all ranks under :mod:`torch.distributed` (``gather_negatives``)."""
    return InfoNCE(temperature=temperature, symmetric=False, intra_view_negatives=False,
                   gather_negatives=hard_negatives)


class SimCSE(nn.Module):
    r"""Unsupervised `SimCSE <https://arxiv.org/abs/2104.08821>`_ (Gao et al., EMNLP 2021):
    the same sentences are encoded twice, and the two dropout masks are the only
    augmentation; the other sentences of the batch are the negatives:

    .. math::
        \ell_i = -\log \frac{e^{\mathrm{sim}(h_i, h_i^+)/\tau}}
        {\sum_{j=1}^{N} e^{\mathrm{sim}(h_i, h_j^+)/\tau}},

    i.e. :class:`gcl.losses.InfoNCE` with ``symmetric=False,
    intra_view_negatives=False`` (:func:`simcse_loss`). Both copies go through the
    encoder in one call, as in the reference code, so they see different dropout masks.

    Args:
        encoder (nn.Module): Sentences to embeddings, e.g.
            :class:`~gcl.adapters.text.SentenceEncoder` (keep it in training mode).
        temperature (float, optional): :math:`\tau`. (default: :obj:`0.05`)
        loss (nn.Module, optional): Replaces :func:`simcse_loss`. (default: :obj:`None`)
    """

    def __init__(self, encoder: nn.Module, temperature: float = 0.05, loss: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.loss = loss if loss is not None else simcse_loss(temperature)

    def forward(self, sentences: Sequence[str]) -> Tensor:
        items = check_sentences(sentences)
        if len(items) < 2:
            raise ValueError(f"SimCSE needs at least 2 sentences per batch for negatives (got {len(items)})")
        embeddings = self.encoder(items + items)
        first, second = embeddings.chunk(2)
        return self.loss(first, second)

    @torch.no_grad()
    def embed(self, sentences: Sequence[str]) -> Tensor:
        r"""Encoder embeddings without gradient, with the encoder in evaluation mode for the
        call (no dropout)."""
        with evaluation_mode(self.encoder):
            return self.encoder(check_sentences(sentences))


class SupervisedSimCSE(nn.Module):
    r"""Supervised `SimCSE <https://arxiv.org/abs/2104.08821>`_ (Gao et al., EMNLP 2021)
    on NLI triplets: the entailment hypothesis :math:`h_i^+` is the positive of premise
    :math:`h_i`, and every contradiction hypothesis :math:`h_j^-` of the batch is a hard
    negative next to the other entailments:

    .. math::
        \ell_i = -\log \frac{e^{\mathrm{sim}(h_i, h_i^+)/\tau}}
        {\sum_{j=1}^{N} \big(e^{\mathrm{sim}(h_i, h_j^+)/\tau}
        + e^{\mathrm{sim}(h_i, h_j^-)/\tau}\big)}.

    This is :class:`gcl.losses.InfoNCE` (``symmetric=False,
    intra_view_negatives=False, gather_negatives=True``) with the contradiction
    embeddings passed as its shared ``negatives``: under :mod:`torch.distributed` every
    anchor sees the contradictions of the global batch, as the reference code gathers them.

    Args:
        encoder (nn.Module): Sentences to embeddings.
        temperature (float, optional): :math:`\tau`. (default: :obj:`0.05`)
        loss (nn.Module, optional): Replaces :func:`simcse_loss`. (default: :obj:`None`)
    """

    def __init__(self, encoder: nn.Module, temperature: float = 0.05, loss: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.loss = loss if loss is not None else simcse_loss(temperature, hard_negatives=True)

    def forward(
        self,
        premises: Sequence[str],
        entailments: Sequence[str],
        contradictions: Sequence[str] | None = None,
    ) -> Tensor:
        anchors = check_sentences(premises, "premises")
        positives = check_sentences(entailments, "entailments")
        if len(positives) != len(anchors):
            raise ValueError(
                f"premises and entailments must pair up (got {len(anchors)} and {len(positives)})"
            )
        # no contradictions: None or an empty list (a string, empty or not, is refused as not a list)
        empty = isinstance(contradictions, list | tuple) and len(contradictions) == 0
        hard = [] if contradictions is None or empty else check_sentences(contradictions, "contradictions")
        if hard and len(hard) != len(anchors):
            raise ValueError(
                f"contradictions must have one per premise (got {len(hard)} for {len(anchors)})"
            )
        if not hard and len(anchors) < 2:
            raise ValueError("without contradictions a batch needs at least 2 premises for negatives")
        embeddings = self.encoder(anchors + positives + hard)
        count = len(anchors)
        negatives = embeddings[2 * count :] if hard else None
        return self.loss(embeddings[:count], embeddings[count : 2 * count], negatives)

    @torch.no_grad()
    def embed(self, sentences: Sequence[str]) -> Tensor:
        r"""Encoder embeddings without gradient, with the encoder in evaluation mode for the
        call (no dropout)."""
        with evaluation_mode(self.encoder):
            return self.encoder(check_sentences(sentences))


class CLIP(nn.Module):
    r"""The symmetric cross-modal InfoNCE of `CLIP <https://arxiv.org/abs/2103.00020>`_
    (Radford et al., ICML 2021) for paired embeddings of two modalities, with a learnable
    logit scale :math:`s = e^{t}` (the inverse temperature), clamped to ``max_logit_scale``:

    .. math::
        \mathcal{L} = \frac{1}{2N} \sum_{i} \Big[
        -\log \frac{e^{s\, \hat{a}_i^\top \hat{b}_i}}{\sum_j e^{s\, \hat{a}_i^\top \hat{b}_j}}
        -\log \frac{e^{s\, \hat{b}_i^\top \hat{a}_i}}{\sum_j e^{s\, \hat{b}_i^\top \hat{a}_j}}
        \Big], \qquad \hat{x} = x / \lVert x \rVert_2 .

    It reuses :class:`gcl.losses.InfoNCE` unchanged (``symmetric=True,
    intra_view_negatives=False, normalize=False, temperature=1``): both sides are
    L2-normalised and scaled by :math:`\sqrt{s}` first, so the dot products are exactly
    :math:`s\,\hat{a}_i^\top \hat{b}_j` and the gradient reaches :math:`t`.

    Args:
        temperature (float, optional): Initial temperature :math:`1/s`. (default: :obj:`0.07`)
        learn_temperature (bool, optional): Train :math:`t`. (default: :obj:`True`)
        max_logit_scale (float, optional): Upper clamp of :math:`s`. (default: :obj:`100.0`)
        projection_a (nn.Module, optional): Applied to the first modality first.
        projection_b (nn.Module, optional): Applied to the second modality first.

    Shapes:
        - **input:** ``a`` :math:`(N, d_a)`, ``b`` :math:`(N, d_b)` (equal widths after
          the projections)
        - **output:** scalar
    """

    def __init__(
        self,
        temperature: float = 0.07,
        learn_temperature: bool = True,
        max_logit_scale: float = 100.0,
        projection_a: nn.Module | None = None,
        projection_b: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0 (got {temperature})")
        if not (math.isfinite(max_logit_scale) and max_logit_scale >= 1.0 / temperature):
            raise ValueError(
                f"max_logit_scale must be finite and >= 1 / temperature = {1.0 / temperature:.4g} "
                f"(got {max_logit_scale})"
            )
        self.max_logit_scale = max_logit_scale
        self.log_logit_scale = nn.Parameter(
            torch.tensor(math.log(1.0 / temperature)), requires_grad=learn_temperature
        )
        self.projection_a = projection_a if projection_a is not None else nn.Identity()
        self.projection_b = projection_b if projection_b is not None else nn.Identity()
        self.loss = InfoNCE(temperature=1.0, symmetric=True, intra_view_negatives=False, normalize=False)

    @property
    def logit_scale(self) -> Tensor:
        r"""Current :math:`s = e^{\min(t, \log s_{\max})}` (the forward pass clamps :math:`t` itself
        first, so the minimum passes its gradient)."""
        return self.log_logit_scale.clamp(max=math.log(self.max_logit_scale)).exp()

    def _clamp_scale(self) -> None:
        r"""Clamps the parameter :math:`t` itself, as CLIP's code does after each step: a clamp
        of :math:`e^{t}` in the graph would pass no gradient once :math:`t` exceeded the bound,
        and the temperature would stay there."""
        # on ``.data``, as CLIP's code: no read back to the host to test the bound, and no version
        # change that an earlier forward's graph, still holding t, would refuse at backward
        self.log_logit_scale.data.clamp_(max=math.log(self.max_logit_scale))

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        za, zb = self.projection_a(a), self.projection_b(b)
        if za.dim() != 2 or za.shape != zb.shape:
            raise ValueError(
                f"a and b must give paired [N, d] embeddings of equal shape (got {tuple(za.shape)} "
                f"and {tuple(zb.shape)})"
            )
        if not (za.is_floating_point() and zb.is_floating_point()):
            raise ValueError(
                f"a and b must give floating-point embeddings (got za of dtype {za.dtype} and zb of "
                f"dtype {zb.dtype}); convert them, e.g. a.float()"
            )
        if za.size(0) < 2:
            raise ValueError(f"CLIP needs at least 2 pairs per batch for negatives (got {za.size(0)})")
        self._clamp_scale()
        root = self.logit_scale.sqrt().to(za.dtype)
        return self.loss(F.normalize(za, dim=1) * root, F.normalize(zb, dim=1) * root)

    def extra_repr(self) -> str:
        return f"logit_scale={float(self.logit_scale.detach()):.4g}, max_logit_scale={self.max_logit_scale}"
