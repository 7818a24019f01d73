r"""Functional forms of the contrastive losses (the modules in :mod:`gcl.losses` wrap these).

Conventions shared by every function here:

* Losses return a scalar, lower is better. Most are non-negative; the GraphCL variant of
  InfoNCE (positive excluded from the denominator) can go below zero, see
  :func:`info_nce_loss`.
* Half-precision inputs (``float16``/``bfloat16``) are upcast to ``float32`` before any
  similarity is formed, and the loss comes back in ``float32``: logits divided by a small
  temperature overflow half precision, and softmax normalisers lose too many digits.
  ``float32`` and ``float64`` inputs are kept as they are.
* Memories from outside the batch (queues and memory negatives, labelled keys, noise,
  prototypes) are cast to the dtype the query computes in, whatever their floating dtype,
  before they are normalised (:func:`_in_computation_dtype`).
* Softmax normalisers are computed with a max-subtracted log-sum-exp, masked entries are
  filled with :math:`-\infty` *before* exponentiation.
* Under :mod:`torch.distributed`, losses that use in-batch candidates gather them from all
  ranks with :func:`~gcl.losses.distributed.gather_with_grad`; each rank keeps its own
  anchors, and the per-rank result is scaled so that its mean over ranks equals the loss
  of one process on the concatenated global batch (see
  :func:`~gcl.losses.distributed.global_mean`). Without a process group nothing changes.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from gcl.losses._checks import (
    _number,
    check_count,
    check_embeddings,
    check_feature_dim,
    check_finite,
    check_index,
    check_labels,
    check_non_negative,
    check_positive,
    check_same_shape,
    check_unit_interval,
    finite_check_enabled,
)
from gcl.losses.distributed import (
    all_reduce_sum,
    gather_no_grad,
    gather_with_grad,
    gather_with_offset,
    global_mean,
    world_size,
)

__all__ = [
    "MixedBatch",
    "barlow_twins_loss",
    "contrastive_loss",
    "cross_correlation",
    "debiased_contrastive_loss",
    "hard_negative_loss",
    "imix_loss",
    "imix_mix",
    "info_nce_loss",
    "label_contrastive_loss",
    "mochi_loss",
    "mochi_mix",
    "multiview_contrastive_loss",
    "n_pair_loss",
    "nce_loss",
    "nt_xent_loss",
    "proto_nce_loss",
    "sup_con_loss",
    "triplet_loss",
]

_HALF = (torch.float16, torch.bfloat16)


# --------------------------------------------------------------------------- helpers


_Loss = TypeVar("_Loss", bound=Callable[..., Any])


def _full_precision(loss: _Loss) -> _Loss:
    r"""Runs ``loss`` with :func:`torch.autocast` switched off for the devices of
    its tensor arguments, so that its similarities are formed in the precision of
    its (upcast) inputs: under autocast every matrix product would otherwise run
    in half precision again, where logits divided by a small temperature
    overflow and Barlow Twins' :math:`\mathcal{C}` of a large batch exceeds
    ``float16``'s range."""

    @functools.wraps(loss)
    def run(*args: Any, **kwargs: Any) -> Any:
        devices = {value.device.type for value in _tensors(args, kwargs)}
        active = [device for device in devices if _autocast_on(device)]
        if not active:
            return loss(*args, **kwargs)
        with contextlib.ExitStack() as stack:
            for device in active:
                stack.enter_context(torch.autocast(device, enabled=False))
            return loss(*args, **kwargs)

    return cast(_Loss, run)


def _autocast_on(device: str) -> bool:
    try:
        return torch.is_autocast_enabled(device)
    except (RuntimeError, ValueError):  # a device type without autocast
        return False


def _tensors(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Tensor]:
    for value in (*args, *kwargs.values()):
        if isinstance(value, Tensor):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from (item for item in value if isinstance(item, Tensor))


def _computation_dtype(tensor: Tensor) -> torch.dtype:
    r"""The dtype ``tensor`` computes in: half precision as ``float32``."""
    return torch.float32 if tensor.dtype in _HALF else tensor.dtype


def _upcast(tensor: Tensor) -> Tensor:
    return tensor.float() if tensor.dtype in _HALF else tensor


def _prepare(tensor: Tensor, normalize: bool) -> Tensor:
    tensor = _upcast(tensor)
    return F.normalize(tensor, dim=-1) if normalize else tensor


def _masked_logsumexp(logits: Tensor, mask: Tensor) -> Tensor:
    r"""Row-wise :math:`\log\sum_{j: m_{ij}} \exp(x_{ij})`, max-subtracted.

    Rows without any selected entry return 0 (callers drop those rows) with a zero,
    rather than NaN, gradient.
    """
    masked = logits.masked_fill(~mask, float("-inf"))
    row_max = masked.amax(dim=-1, keepdim=True).detach()
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    total = torch.exp(masked - row_max).sum(dim=-1)
    nonempty = mask.any(dim=-1)
    total = torch.where(nonempty, total, torch.ones_like(total))
    return torch.log(total) + row_max.squeeze(-1)


def _check_pair(z1: Tensor, z2: Tensor, names: tuple[str, str] = ("z1", "z2")) -> None:
    check_embeddings(names[0], z1)
    check_embeddings(names[1], z2)
    check_same_shape(names[0], z1, names[1], z2)
    _check_same_precision(names[0], z1, names[1], z2)


def _check_same_precision(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    r"""The two tensors compute in one dtype: equal after half precision is upcast
    (``float16`` with ``float32`` is fine, ``float32`` with ``float64`` is not)."""
    if _computation_dtype(a) != _computation_dtype(b):
        raise ValueError(
            f"{name_a} and {name_b} must have the same floating dtype (half precision counts as float32; "
            f"got {a.dtype} and {b.dtype}); convert one, e.g. {name_b}.to({name_a}.dtype)"
        )


def _check_nonempty(loss: str, embeddings: Tensor) -> None:
    # Under torch.distributed a rank may hold no pairs of a step while the others do: it
    # still joins the collectives of global_mean (a rank raising alone would leave the
    # others waiting in them), and contributes nothing to the global mean.
    if embeddings.size(0) == 0 and world_size() == 1:
        raise ValueError(f"{loss} needs at least one pair (got an empty batch of shape {tuple(embeddings.shape)})")


def _check_negatives(negatives: Tensor | None, reference: Tensor, name: str) -> None:
    r"""Checks memory negatives of any floating dtype (see :func:`_in_computation_dtype`)."""
    if negatives is None:
        return
    check_embeddings("negatives", negatives)
    check_feature_dim("negatives", negatives, reference.size(-1), name)


def _in_computation_dtype(memory: Tensor, query: Tensor) -> Tensor:
    r"""``memory`` (negatives, keys, noise or prototypes: a floating tensor from outside the
    batch) in the dtype ``query`` computes in (half precision upcast to ``float32``), cast
    before it is normalised. One policy for every memory: no floating dtype is refused (a
    ``float16`` queue serves a ``float64`` model), and nothing is computed in less than the
    query's precision (a ``float64`` memory next to ``float32`` queries computes in
    ``float32``, as the queries do)."""
    return memory.to(_computation_dtype(query))


def _cross_block(anchors: Tensor, candidates: Tensor, temperature: float, offset: int,
                 exclude_positive: bool) -> Tensor:
    r"""Logits of the anchors against the other view's candidates, ``anchors @ candidates.T / τ``;
    with ``exclude_positive`` the positive (column ``offset + i`` of row ``i``) is ``-inf``."""
    block = (anchors @ candidates.T).div_(temperature)  # in place on the fresh product
    if exclude_positive:
        torch.diagonal(block, offset=offset).fill_(float("-inf"))
    return block


def _nce_per_anchor(
    anchors: Tensor,
    positives: Tensor,
    temperature: float,
    *,
    candidates: Tensor | None = None,
    same_view: Tensor | None = None,
    offset: int = 0,
    negatives: Tensor | None = None,
    anchor_negatives: Tensor | None = None,
    exclude_positive: bool = False,
    cross_block: Tensor | None = None,
    transposed: bool = False,
) -> Tensor:
    r"""Per-anchor InfoNCE for one direction.

    ``positives[i]`` is the positive of ``anchors[i]``. ``candidates`` (global second
    view; row ``offset + i`` is the positive) adds cross-view in-batch negatives,
    ``same_view`` (global first view; row ``offset + i`` is the anchor itself) adds
    intra-view negatives, ``negatives`` :obj:`[K, d]` are shared and
    ``anchor_negatives`` :obj:`[n, S, d]` are per anchor. ``cross_block``, when given,
    is the cross-view block already computed (:func:`_cross_block`); ``transposed``: it
    is the other direction's (``candidates`` against these anchors, one process,
    ``offset`` 0), read column by column.

    The loss is the log-sum-exp of every block's row (combined) minus the positive's
    logit: the cross-entropy of the concatenated logits, without concatenating them.
    """

    def masked_at_own(block: Tensor) -> Tensor:
        # column offset + i of row i: a diagonal of the (fresh) block, filled in place
        # instead of comparing and masking all N x N entries
        torch.diagonal(block, offset=offset).fill_(float("-inf"))
        return block

    def scaled(products: Tensor) -> Tensor:
        return products.div_(temperature)  # in place on the fresh product: one N x N buffer less

    parts: list[Tensor] = []  # per anchor: the log-sum-exp of each block of the denominator
    positive: Tensor | None = None
    if candidates is not None:
        cross = (_cross_block(anchors, candidates, temperature, offset, exclude_positive)
                 if cross_block is None else cross_block)
        if (not transposed and not exclude_positive and same_view is None and negatives is None
                and anchor_negatives is None):
            # the block is all the logits and its column offset + i the target (GraphCL's case)
            own = offset + torch.arange(anchors.size(0), device=anchors.device)
            return F.cross_entropy(cross, own, reduction="none")
        # with ``transposed`` the anchors run along the block's columns
        parts.append(torch.logsumexp(cross, dim=0 if transposed else 1))
        if not exclude_positive:
            # the positive's logit is in the block (column offset + i of row i)
            positive = torch.diagonal(cross, offset=offset)
    if same_view is not None:
        parts.append(torch.logsumexp(masked_at_own(scaled(anchors @ same_view.T)), dim=1))
    if negatives is not None:
        parts.append(torch.logsumexp(scaled(anchors @ negatives.T), dim=1))
    if anchor_negatives is not None:
        parts.append(torch.logsumexp(torch.einsum("nd,nkd->nk", anchors, anchor_negatives) / temperature, dim=1))
    if positive is None:
        positive = (anchors * positives).sum(dim=-1) / temperature
        if not exclude_positive:
            parts.append(positive)
    denominator = parts[0] if len(parts) == 1 else torch.logsumexp(torch.stack(parts), dim=0)
    return denominator - positive


# --------------------------------------------------------------------------- InfoNCE


@_full_precision
def info_nce_loss(
    z1: Tensor,
    z2: Tensor,
    negatives: Tensor | None = None,
    *,
    temperature: float = 0.5,
    symmetric: bool = True,
    intra_view_negatives: bool = True,
    cross_view_negatives: bool = True,
    exclude_positive_from_denominator: bool = False,
    normalize: bool = True,
    gather_negatives: bool = False,
) -> Tensor:
    r"""InfoNCE / NT-Xent loss between two views, see :class:`gcl.losses.InfoNCE`.

    Args:
        z1 (torch.Tensor): First view (anchors), shape :obj:`[N, d]`.
        z2 (torch.Tensor): Second view, row ``i`` is the positive of ``z1[i]``.
        negatives (torch.Tensor, optional): Extra negatives shared by all anchors (e.g.
            a MoCo queue), shape :obj:`[K, d]`. (default: :obj:`None`)
        temperature (float, optional): Softmax temperature. (default: :obj:`0.5`)
        symmetric (bool, optional): Average the ``z1 -> z2`` and ``z2 -> z1`` directions.
            (default: :obj:`True`)
        intra_view_negatives (bool, optional): Other samples of the anchor's own view are
            negatives. (default: :obj:`True`)
        cross_view_negatives (bool, optional): Other samples of the other view are
            negatives. (default: :obj:`True`)
        exclude_positive_from_denominator (bool, optional): Drop the positive from the
            softmax normaliser (GraphCL's formulation). (default: :obj:`False`)
        normalize (bool, optional): L2-normalise embeddings, i.e. cosine similarity.
            (default: :obj:`True`)
        gather_negatives (bool, optional): ``negatives`` belong to this rank's batch (hard
            negatives, such as supervised SimCSE's contradictions): under
            :mod:`torch.distributed` gather them from every rank with gradient, like the
            in-batch candidates. Leave :obj:`False` for a memory queue, which every rank
            already holds whole. (default: :obj:`False`)
    """
    check_positive("temperature", temperature)
    _check_pair(z1, z2)
    _check_negatives(negatives, z1, "z1")
    a1, a2 = _prepare(z1, normalize), _prepare(z2, normalize)
    extra = None if negatives is None else _prepare(_in_computation_dtype(negatives, z1), normalize)
    if extra is not None and gather_negatives:
        extra = gather_with_grad(extra)
    need_batch = intra_view_negatives or cross_view_negatives
    if need_batch:
        both, offset = gather_with_offset(torch.stack([a1, a2], dim=1))
        g1, g2 = both[:, 0], both[:, 1]
        total = g1.size(0)
    else:
        g1 = g2 = a1
        offset, total = 0, a1.size(0)
    num_negatives = max(total - 1, 0) * (int(cross_view_negatives) + int(intra_view_negatives))
    num_negatives += 0 if extra is None else extra.size(0)
    if num_negatives < 1:
        raise ValueError(
            "InfoNCE needs at least one negative per anchor (got a global batch of "
            f"{total} with intra_view_negatives={intra_view_negatives}, "
            f"cross_view_negatives={cross_view_negatives} and "
            f"{0 if extra is None else extra.size(0)} external negatives)"
        )

    def direction(
        anchors: Tensor, positives: Tensor, own_view: Tensor, other_view: Tensor,
        cross: Tensor | None = None, transposed: bool = False,
    ) -> Tensor:
        per_anchor = _nce_per_anchor(
            anchors,
            positives,
            temperature,
            candidates=other_view if cross_view_negatives else None,
            same_view=own_view if intra_view_negatives else None,
            offset=offset,
            negatives=extra,
            exclude_positive=exclude_positive_from_denominator,
            cross_block=cross,
            transposed=transposed,
        )
        return global_mean(per_anchor)

    cross = None
    if symmetric and cross_view_negatives and world_size() == 1:
        # One process holds the whole batch: the second direction's cross-view block is the
        # transpose of the first's (z2 @ z1.T = (z1 @ z2.T).T), read column by column: one
        # N x N product less forward and two less backward. With several processes each
        # holds other rows of it.
        cross = _cross_block(a1, g2, temperature, offset, exclude_positive_from_denominator)
    loss = direction(a1, a2, g1, g2, cross)
    if symmetric:
        loss = 0.5 * (loss + direction(a2, a1, g2, g1, cross, transposed=cross is not None))
    return loss


nt_xent_loss = info_nce_loss


# --------------------------------------------------------------------------- supervised


def _sample_at_most_k(mask: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    r"""Keeps, per row, ``min(k, row count)`` of the ``True`` entries of ``mask`` uniformly at random."""
    device = generator.device if generator is not None else mask.device
    scores = torch.rand(mask.shape, generator=generator, device=device).to(mask.device)
    scores = scores.masked_fill(~mask, -1.0)
    top = scores.topk(min(k, mask.size(1)), dim=1).indices
    picked = torch.zeros_like(mask).scatter_(1, top, True)
    return picked & mask


@_full_precision
def sup_con_loss(
    features: Tensor,
    labels: Tensor | None = None,
    *,
    temperature: float = 0.1,
    base_temperature: float | None = None,
    k_positives: int | None = None,
    generator: torch.Generator | None = None,
    normalize: bool = True,
) -> Tensor:
    r"""Supervised contrastive loss, see :class:`gcl.losses.SupConLoss`.

    Args:
        features (torch.Tensor): Shape :obj:`[N, V, d]` (``V`` views) or :obj:`[N, d]`.
        labels (torch.Tensor, optional): Class labels :obj:`[N]`; :obj:`None` makes
            every sample its own class (SimCLR). (default: :obj:`None`)
        temperature (float, optional): Softmax temperature. (default: :obj:`0.1`)
        base_temperature (float, optional): The loss is scaled by
            ``temperature / base_temperature``; :obj:`None` means no scaling.
        k_positives (int, optional): KCL: keep at most ``k`` positives from *other*
            samples per anchor (the anchor's own other views are always kept).
        generator (torch.Generator, optional): Randomness for the KCL sampling.
        normalize (bool, optional): L2-normalise features. (default: :obj:`True`)
    """
    check_positive("temperature", temperature)
    if base_temperature is not None:
        check_positive("base_temperature", base_temperature)
    check_count("k_positives", k_positives, optional=True)
    check_embeddings("features", features, ndim=(2, 3))
    given = tuple(features.shape)
    if features.dim() == 2:
        features = features.unsqueeze(1)
    n, views, dim = features.shape
    if labels is not None:
        labels = check_labels("labels", labels, n)
    if labels is None and views == 1:
        raise ValueError(
            "SupConLoss without labels needs two or more views per sample (features [N, V, D] with V >= 2): "
            f"with one view (got features of shape {given}) no anchor has a positive and "
            "the loss is 0; pass labels=, or the views stacked on dim 1"
        )
    feats = _prepare(features, normalize)
    gathered, offset = gather_with_offset(feats)
    total = gathered.size(0)
    if total * views < 2:
        raise ValueError(
            f"SupConLoss needs at least two embeddings in the batch (got features of shape {tuple(features.shape)})"
        )
    if labels is None and total < 2:
        # every other embedding is a view of the same sample: a positive, and no anchor has a negative
        raise ValueError(
            f"SupConLoss without labels needs at least one negative per anchor (got a global batch of {total} "
            f"sample with {views} views, features of shape {given}); pass labels=, or two or more samples"
        )
    device = feats.device
    if labels is None:
        all_labels = torch.arange(total, device=device)
    else:
        all_labels = gather_no_grad(labels.to(device))
    anchor_labels = all_labels[offset : offset + n].repeat_interleave(views)
    candidate_labels = all_labels.repeat_interleave(views)
    anchors = feats.reshape(n * views, dim)
    candidates = gathered.reshape(total * views, dim)

    anchor_index = offset * views + torch.arange(n * views, device=device)
    candidate_index = torch.arange(total * views, device=device)
    is_self = candidate_index[None, :] == anchor_index[:, None]
    positive = (anchor_labels[:, None] == candidate_labels[None, :]) & ~is_self
    if k_positives is not None:
        same_sample = (candidate_index[None, :] // views) == (anchor_index[:, None] // views)
        own_views = same_sample & ~is_self
        others = positive & ~same_sample
        positive = own_views | _sample_at_most_k(others, k_positives, generator)

    logits = anchors @ candidates.T / temperature
    log_normaliser = _masked_logsumexp(logits, ~is_self)
    num_positives = positive.sum(dim=1)
    positive_logit_sum = logits.masked_fill(~positive, 0.0).sum(dim=1)
    mean_log_prob = (positive_logit_sum - num_positives * log_normaliser) / num_positives.clamp(
        min=1
    )
    scale = 1.0 if base_temperature is None else temperature / base_temperature
    return global_mean(-scale * mean_log_prob, valid=num_positives > 0)


@_full_precision
def label_contrastive_loss(
    query: Tensor,
    query_labels: Tensor,
    keys: Tensor,
    key_labels: Tensor,
    *,
    temperature: float = 0.07,
    normalize: bool = True,
) -> Tensor:
    r"""Label contrastive loss of LCGNN over a labelled memory, see
    :class:`gcl.losses.LabelContrastiveLoss`.

    Args:
        query (torch.Tensor): Query embeddings :obj:`[B, d]`.
        query_labels (torch.Tensor): Their labels :obj:`[B]`.
        keys (torch.Tensor): Memory keys :obj:`[K, d]` (used as given on every rank).
        key_labels (torch.Tensor): Their labels :obj:`[K]`.
        temperature (float, optional): Softmax temperature. (default: :obj:`0.07`)
        normalize (bool, optional): L2-normalise queries and keys. (default: :obj:`True`)
    """
    check_positive("temperature", temperature)
    check_embeddings("query", query)
    check_embeddings("keys", keys)
    check_feature_dim("keys", keys, query.size(1), "query")
    query_labels = check_labels("query_labels", query_labels, query.size(0))
    key_labels = check_labels("key_labels", key_labels, keys.size(0))
    if keys.size(0) < 1:
        raise ValueError(f"keys must hold at least one entry (got shape {tuple(keys.shape)})")
    q = _prepare(query, normalize)
    k = _prepare(_in_computation_dtype(keys, query), normalize)
    logits = q @ k.T / temperature
    positive = query_labels.to(q.device)[:, None] == key_labels.to(q.device)[None, :]
    valid = positive.any(dim=1)
    return global_mean(_log_ratio_of_sums(logits, positive, valid), valid=valid)


def _log_ratio_of_sums(logits: Tensor, positive: Tensor, valid: Tensor) -> Tensor:
    r"""Row-wise :math:`\log\sum_j e^{x_{ij}} - \log\sum_{j: m_{ij}} e^{x_{ij}}`
    with one exponential of the logits (LCGNN's memory makes them large).

    Both sums share the row maximum, which cancels in the difference. If the
    positives of some row lie so far below its maximum that their sum is not
    safely representable, every row is recomputed with separately max-shifted
    sums. Rows without a positive (``valid`` false) return 0 with a zero
    gradient.
    """
    exp = torch.exp(logits - logits.detach().amax(dim=1, keepdim=True))
    total = exp.sum(dim=1)
    positive_total = (exp * positive).sum(dim=1)
    safe = positive_total > torch.finfo(positive_total.dtype).tiny ** 0.5
    if bool((valid & ~safe).any()):
        per_row = _masked_logsumexp(logits, torch.ones_like(positive)) - _masked_logsumexp(logits, positive)
    else:
        positive_total = torch.where(safe, positive_total, torch.ones_like(positive_total))
        per_row = torch.log(total) - torch.log(positive_total)
    return torch.where(valid, per_row, torch.zeros_like(per_row))


# --------------------------------------------------------------------------- Barlow Twins


_NORMALIZATIONS = ("batchnorm", "unbiased")


def _default_eps(normalization: str) -> float:
    return 1e-5 if normalization == "batchnorm" else 1e-15


def _reference_row(z: Tensor) -> Tensor:
    r"""One value per column that every rank agrees on and that is a value of the column
    (the largest of the ranks' first rows): shifting by it makes a column that is constant
    over the global batch exactly zero, where its computed mean would leave rounding."""
    with torch.no_grad():
        if z.size(0):
            ref = z[0].clone()
        else:  # a rank without rows takes part in the reduction
            ref = torch.full(z.shape[1:], float("-inf"), dtype=z.dtype, device=z.device)
        if world_size() > 1:
            torch.distributed.all_reduce(ref, op=torch.distributed.ReduceOp.MAX)
    return ref


def _standardise(z: Tensor, count: int, normalization: str, eps: float) -> Tensor:
    z = z - _reference_row(z)  # no change to the result but rounding: a constant column becomes 0
    mean = all_reduce_sum(z.sum(dim=0)) / count
    centred = z - mean
    squares = all_reduce_sum(centred.pow(2).sum(dim=0))
    # The square root's gradient is infinite at zero variance (a dimension constant over
    # the batch); clamping at the smallest normal number keeps it out (zero, as
    # torch.std's), and the value is unchanged there because ``centred`` is zero. The
    # division still passes 1/sqrt(eps) ('batchnorm') or 1/eps ('unbiased') on: the gradient
    # of such a dimension is zero only when it is constant in both views; constant in one
    # view, C_ii still pulls it towards the other view's (varying) dimension with a gradient
    # of that order, as in the reference implementations.
    tiny = torch.finfo(squares.dtype).tiny
    if normalization == "batchnorm":
        return centred / torch.sqrt((squares / count + eps).clamp_min(tiny))
    return centred / (torch.sqrt((squares / (count - 1)).clamp_min(tiny)) + eps)


@_full_precision
def cross_correlation(
    z1: Tensor,
    z2: Tensor,
    *,
    normalization: str = "batchnorm",
    eps: float | None = None,
) -> Tensor:
    r"""Cross-correlation matrix :math:`\mathcal{C}` of Barlow Twins, shape :obj:`[d, d]`.

    Each dimension of ``z1`` and ``z2`` is standardised over the (global) batch, then
    :math:`\mathcal{C} = \tilde{z}_1^\top \tilde{z}_2 / N`. ``normalization='batchnorm'``
    divides by :math:`\sqrt{\operatorname{var}_{\text{biased}} + \epsilon}`
    (``BatchNorm1d(affine=False)``, default :math:`\epsilon = 10^{-5}`);
    ``'unbiased'`` divides by :math:`\operatorname{std}_{\text{unbiased}} + \epsilon`
    (default :math:`\epsilon = 10^{-15}`). Batch statistics and :math:`\mathcal{C}` are
    all-reduced over ranks.
    """
    if normalization not in _NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {_NORMALIZATIONS} (got {normalization!r})")
    eps = _default_eps(normalization) if eps is None else eps
    check_non_negative("eps", eps)
    _check_pair(z1, z2)
    count = int(all_reduce_sum(torch.tensor(float(z1.size(0)), device=z1.device)).item())
    if count < 2:
        raise ValueError(
            f"Barlow Twins needs a batch of at least 2 to standardise (got shape {tuple(z1.shape)})"
        )
    a1 = _standardise(_upcast(z1), count, normalization, eps)
    a2 = _standardise(_upcast(z2), count, normalization, eps)
    return all_reduce_sum(a1.T @ a2) / count


@_full_precision
def barlow_twins_loss(
    z1: Tensor,
    z2: Tensor,
    *,
    off_diagonal_weight: float | None = 0.0051,
    normalization: str = "batchnorm",
    eps: float | None = None,
    scale: float = 1.0,
) -> Tensor:
    r"""Barlow Twins redundancy-reduction loss, see :class:`gcl.losses.BarlowTwinsLoss`.

    Args:
        z1 (torch.Tensor): First view :obj:`[N, d]`.
        z2 (torch.Tensor): Second view :obj:`[N, d]`.
        off_diagonal_weight (float, optional): :math:`\lambda`; :obj:`None` means
            :math:`1/d` (Graph Barlow Twins). (default: :obj:`0.0051`)
        normalization (str, optional): ``'batchnorm'`` or ``'unbiased'``, see
            :func:`cross_correlation`. (default: :obj:`'batchnorm'`)
        eps (float, optional): Stabiliser; :obj:`None` picks the default of the
            normalisation. (default: :obj:`None`)
        scale (float, optional): Factor applied to the loss. (default: :obj:`1.0`)
    """
    if off_diagonal_weight is not None:
        check_non_negative("off_diagonal_weight", off_diagonal_weight)
    check_positive("scale", scale)
    c = cross_correlation(z1, z2, normalization=normalization, eps=eps)
    weight = 1.0 / c.size(0) if off_diagonal_weight is None else off_diagonal_weight
    eye = torch.eye(c.size(0), dtype=torch.bool, device=c.device)
    on_diagonal = (1 - torch.diagonal(c)).pow(2).sum()
    off_diagonal = c.pow(2).masked_fill(eye, 0.0).sum()
    return scale * (on_diagonal + weight * off_diagonal)


# --------------------------------------------------------------------------- metric losses


#: Added to the difference of a pair before its norm (``F.pairwise_distance``'s ``eps``).
_DISTANCE_EPS = 1e-6


def _euclidean_distance(diff: Tensor) -> Tensor:
    r"""Row-wise :math:`\lVert x - y\rVert_2` of ``diff`` :math:`= x - y`, measured at 0 as
    ``F.pairwise_distance`` does, :math:`\lVert x - y + \epsilon\rVert_2`.

    At distance 0 (a collapsed encoder) the norm has no gradient to push a dissimilar pair,
    or a negative from its anchor, apart; everywhere else the value is the norm, exactly.
    For those distances only: the distance of a positive pair is the plain norm, whose
    gradient at 0 is 0 (a matched pair stays where it is).
    """
    distance = torch.linalg.vector_norm(diff, dim=-1)
    shifted = torch.linalg.vector_norm(diff + _DISTANCE_EPS, dim=-1)
    return torch.where(distance > 0, distance, shifted)


@_full_precision
def contrastive_loss(x1: Tensor, x2: Tensor, similar: Tensor, *, margin: float = 1.0) -> Tensor:
    r"""Pairwise margin contrastive loss of Hadsell et al., see :class:`gcl.losses.ContrastiveLoss`.

    Args:
        x1 (torch.Tensor): First embeddings of the pairs :obj:`[N, d]`.
        x2 (torch.Tensor): Second embeddings of the pairs :obj:`[N, d]`.
        similar (torch.Tensor): :obj:`[N]`, ``True``/1 where the pair shares a label.
        margin (float, optional): Distance beyond which dissimilar pairs cost nothing.
            (default: :obj:`1.0`)
    """
    check_positive("margin", margin)
    _check_pair(x1, x2, ("x1", "x2"))
    if not isinstance(similar, Tensor) or similar.dim() != 1 or similar.numel() != x1.size(0):
        shape = tuple(similar.shape) if isinstance(similar, Tensor) else type(similar).__name__
        raise ValueError(f"similar must be a 1-D tensor of length {x1.size(0)} (got {shape})")
    _check_nonempty("ContrastiveLoss", x1)
    if similar.dtype != torch.bool and finite_check_enabled() and not bool(((similar == 0) | (similar == 1)).all()):
        found = torch.unique(similar[(similar != 0) & (similar != 1)])[:5].tolist()
        raise ValueError(
            "similar must be bool or hold 0 (dissimilar) and 1 (similar) only "
            f"(got also {found}; for the -1/1 convention of torch's pair losses pass similar == 1)"
        )
    a, b = _upcast(x1), _upcast(x2)
    diff = a - b
    squared = diff.pow(2).sum(dim=-1)
    distance = _euclidean_distance(diff)
    same = similar.to(device=a.device, dtype=a.dtype)
    per_pair = 0.5 * (same * squared + (1 - same) * F.relu(margin - distance).pow(2))
    return global_mean(per_pair)


@_full_precision
def triplet_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    margin: float = 1.0,
    squared: bool = False,
) -> Tensor:
    r"""Triplet margin loss, see :class:`gcl.losses.TripletLoss`.

    Args:
        anchor (torch.Tensor): :obj:`[N, d]`.
        positive (torch.Tensor): Same class as the anchor, :obj:`[N, d]`.
        negative (torch.Tensor): Other class, :obj:`[N, d]`.
        margin (float, optional): Required gap between the two distances. (default: :obj:`1.0`)
        squared (bool, optional): Use squared Euclidean distances (FaceNet).
            (default: :obj:`False`)
    """
    check_non_negative("margin", margin)
    _check_pair(anchor, positive, ("anchor", "positive"))
    _check_pair(anchor, negative, ("anchor", "negative"))
    _check_nonempty("TripletLoss", anchor)
    a, p, n = _upcast(anchor), _upcast(positive), _upcast(negative)
    if squared:
        d_pos, d_neg = (a - p).pow(2).sum(dim=-1), (a - n).pow(2).sum(dim=-1)
    else:
        # the shift at 0 only for the negative: a positive on its anchor has nothing to move
        d_pos, d_neg = torch.linalg.vector_norm(a - p, dim=-1), _euclidean_distance(a - n)
    return global_mean(F.relu(d_pos - d_neg + margin))


@_full_precision
def n_pair_loss(
    anchors: Tensor,
    positives: Tensor,
    labels: Tensor | None = None,
    *,
    l2_reg: float = 0.0,
) -> Tensor:
    r"""Multi-class N-pair loss of Sohn, see :class:`gcl.losses.NPairLoss`.

    Args:
        anchors (torch.Tensor): :obj:`[N, d]`, one per class.
        positives (torch.Tensor): :obj:`[N, d]`, ``positives[i]`` shares the class of
            ``anchors[i]``; the other rows are its negatives.
        labels (torch.Tensor, optional): :obj:`[N]` class labels; when given, every
            positive with the anchor's label is a target (weights split evenly).
        l2_reg (float, optional): Weight of the mean squared norm of all embeddings.
            (default: :obj:`0.0`)
    """
    check_non_negative("l2_reg", l2_reg)
    _check_pair(anchors, positives, ("anchors", "positives"))
    n = anchors.size(0)
    if labels is not None:
        labels = check_labels("labels", labels, n)
    a, p = _upcast(anchors), _upcast(positives)
    all_p, offset = gather_with_offset(p)
    total = all_p.size(0)
    if total < 2:
        raise ValueError(f"NPairLoss needs at least 2 pairs (got shape {tuple(anchors.shape)})")
    logits = a @ all_p.T
    if labels is None:
        target = offset + torch.arange(n, device=a.device)
        per_anchor = F.cross_entropy(logits, target, reduction="none")
    else:
        all_labels = gather_no_grad(labels.to(a.device))
        own = all_labels[offset : offset + n]
        weights = (own[:, None] == all_labels[None, :]).to(logits.dtype)
        weights = weights / weights.sum(dim=1, keepdim=True)
        per_anchor = -(weights * F.log_softmax(logits, dim=1)).sum(dim=1)
    loss = global_mean(per_anchor)
    if l2_reg > 0:
        squared_norms = torch.cat([a.pow(2).sum(dim=-1), p.pow(2).sum(dim=-1)])
        loss = loss + l2_reg * global_mean(squared_norms)
    return loss


@_full_precision
def nce_loss(
    query: Tensor,
    positive: Tensor,
    noise: Tensor,
    noise_log_prob: float | Tensor,
    *,
    temperature: float = 0.07,
    log_partition: float = 0.0,
    normalize: bool = True,
) -> Tensor:
    r"""Binary noise-contrastive estimation, see :class:`gcl.losses.NCELoss`.

    Args:
        query (torch.Tensor): :obj:`[B, d]`.
        positive (torch.Tensor): Data sample for each query :obj:`[B, d]`.
        noise (torch.Tensor): ``k`` noise samples, shared :obj:`[k, d]` or per query
            :obj:`[B, k, d]`.
        noise_log_prob (float or torch.Tensor): :math:`\log P_n` of the positive and of
            each noise sample, a float (uniform noise, e.g. ``-log(num_items)``) or a
            tensor broadcastable to :obj:`[B, 1 + k]` (column 0: the positive).
        temperature (float, optional): Score temperature. (default: :obj:`0.07`)
        log_partition (float, optional): :math:`\log Z` subtracted from the scores.
            (default: :obj:`0.0`)
        normalize (bool, optional): L2-normalise embeddings. (default: :obj:`True`)
    """
    check_positive("temperature", temperature)
    log_partition = _number("log_partition", log_partition)
    if not math.isfinite(log_partition):
        raise ValueError(f"log_partition must be finite (got {log_partition!r})")
    _check_pair(query, positive, ("query", "positive"))
    check_embeddings("noise", noise, ndim=(2, 3))
    check_feature_dim("noise", noise, query.size(1), "query")
    if noise.dim() == 3 and noise.size(0) != query.size(0):
        raise ValueError(
            f"per-query noise must have shape [B, k, d] with B={query.size(0)} (got {tuple(noise.shape)})"
        )
    num_noise = noise.size(-2)
    if num_noise < 1:
        raise ValueError(f"noise must hold at least one sample (got shape {tuple(noise.shape)})")
    q, p = _prepare(query, normalize), _prepare(positive, normalize)
    y = _prepare(_in_computation_dtype(noise, query), normalize)
    positive_score = (q * p).sum(dim=-1, keepdim=True)
    noise_score = q @ y.T if y.dim() == 2 else torch.einsum("bd,bkd->bk", q, y)
    scores = torch.cat([positive_score, noise_score], dim=1) / temperature - log_partition
    if isinstance(noise_log_prob, Tensor):
        check_finite("noise_log_prob", noise_log_prob)
        if finite_check_enabled() and bool((noise_log_prob > 0).any()):
            raise ValueError(
                f"noise_log_prob must hold log-probabilities <= 0 (got a maximum of {float(noise_log_prob.max())})"
            )
        log_noise = _upcast(noise_log_prob).to(device=q.device, dtype=q.dtype)
        try:
            log_noise = torch.broadcast_to(log_noise, scores.shape)
        except RuntimeError as err:
            raise ValueError(
                f"noise_log_prob must broadcast to {tuple(scores.shape)} (got {tuple(noise_log_prob.shape)})"
            ) from err
    else:
        noise_log_prob = _number("noise_log_prob", noise_log_prob)
        if not math.isfinite(noise_log_prob) or noise_log_prob > 0:
            raise ValueError(
                f"noise_log_prob must be a finite log-probability <= 0 (got {noise_log_prob!r})"
            )
        log_noise = scores.new_full(scores.shape, float(noise_log_prob))
    logits = scores - math.log(num_noise) - log_noise
    per_query = F.softplus(-logits[:, 0]) + F.softplus(logits[:, 1:]).sum(dim=1)
    return global_mean(per_query)


# --------------------------------------------------------------------------- debiased / hard


def _debiased(
    z1: Tensor,
    z2: Tensor,
    temperature: float,
    tau_plus: float,
    beta: float | None,
) -> Tensor:
    a1, a2 = _prepare(z1, True), _prepare(z2, True)
    both, offset = gather_with_offset(torch.stack([a1, a2], dim=1))
    total = both.size(0)
    if total < 2:
        raise ValueError(
            f"the debiased losses need a batch of at least 2 (got shape {tuple(z1.shape)})"
        )
    candidates = torch.cat([both[:, 0], both[:, 1]], dim=0)
    num_negatives = 2 * total - 2
    log_floor = math.log(num_negatives) - 1.0 / temperature

    def direction(anchors: Tensor, positives: Tensor) -> Tensor:
        n = anchors.size(0)
        positive = (anchors * positives).sum(dim=-1) / temperature
        logits = anchors @ candidates.T / temperature
        own = offset + torch.arange(n, device=anchors.device)
        column = torch.arange(2 * total, device=anchors.device)[None, :]
        negative = (column != own[:, None]) & (column != own[:, None] + total)
        if beta is None:
            log_sum = _masked_logsumexp(logits, negative)
        else:
            # HCL importance weights exp(beta * s): sum(w * e^s) / mean(w).
            log_sum = (
                math.log(num_negatives)
                + _masked_logsumexp((beta + 1.0) * logits, negative)
                - _masked_logsumexp(beta * logits, negative)
            )
        # log(e^pos + Ng) with Ng = max((R - tau+ M e^pos) / (1 - tau+), M e^{-1/t}):
        # the max moves outside the log; the first branch is evaluated shifted by its max.
        coefficient = 1.0 - tau_plus * (1.0 + num_negatives)
        shift = torch.maximum(log_sum, positive).detach()
        inner = torch.exp(log_sum - shift) + coefficient * torch.exp(positive - shift)
        usable = inner > 0
        safe = torch.where(usable, inner, torch.ones_like(inner))
        estimate = torch.where(
            usable,
            torch.log(safe) + shift - math.log(1.0 - tau_plus),
            torch.full_like(inner, float("-inf")),
        )
        floor = torch.logaddexp(positive, torch.full_like(positive, log_floor))
        return global_mean(torch.maximum(estimate, floor) - positive)

    return 0.5 * (direction(a1, a2) + direction(a2, a1))


@_full_precision
def debiased_contrastive_loss(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float = 0.5,
    tau_plus: float = 0.1,
) -> Tensor:
    r"""Debiased contrastive loss (DCL), see :class:`gcl.losses.DebiasedContrastiveLoss`.

    Args:
        z1 (torch.Tensor): First view :obj:`[N, d]` (L2-normalised internally).
        z2 (torch.Tensor): Second view :obj:`[N, d]`.
        temperature (float, optional): Softmax temperature. (default: :obj:`0.5`)
        tau_plus (float, optional): Class prior :math:`\tau^+` in :math:`[0, 1)`.
            (default: :obj:`0.1`)
    """
    check_positive("temperature", temperature)
    check_unit_interval("tau_plus", tau_plus, closed_right=False)
    _check_pair(z1, z2)
    return _debiased(z1, z2, temperature, tau_plus, None)


@_full_precision
def hard_negative_loss(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float = 0.5,
    tau_plus: float = 0.1,
    beta: float = 1.0,
) -> Tensor:
    r"""Hard-negative contrastive loss (HCL), see :class:`gcl.losses.HardNegativeLoss`.

    Args:
        z1 (torch.Tensor): First view :obj:`[N, d]` (L2-normalised internally).
        z2 (torch.Tensor): Second view :obj:`[N, d]`.
        temperature (float, optional): Softmax temperature. (default: :obj:`0.5`)
        tau_plus (float, optional): Class prior :math:`\tau^+` in :math:`[0, 1)`.
            (default: :obj:`0.1`)
        beta (float, optional): Concentration on hard negatives, :math:`\beta \ge 0`.
            (default: :obj:`1.0`)
    """
    check_positive("temperature", temperature)
    check_unit_interval("tau_plus", tau_plus, closed_right=False)
    check_non_negative("beta", beta)
    _check_pair(z1, z2)
    return _debiased(z1, z2, temperature, tau_plus, float(beta))


# --------------------------------------------------------------------------- MoCHi


def _random_device(generator: torch.Generator | None, fallback: torch.device) -> torch.device:
    return generator.device if generator is not None else fallback


@_full_precision
def mochi_mix(
    query: Tensor,
    negatives: Tensor,
    num_hardest: int,
    num_synthetic_negatives: int,
    num_synthetic_query_mix: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Synthesises hard negatives per query by mixing, as in `MoCHi
    <https://arxiv.org/abs/2010.01028>`_ (Kalantidis et al., NeurIPS 2020).

    For each query :math:`q`, the :math:`N` negatives most similar to it are
    :math:`\tilde{Q}`. It draws :math:`s` points mixing two hard negatives and
    :math:`s'` points mixing the query into one hard negative:

    .. math::
        h = \frac{\alpha n_i + (1 - \alpha) n_j}{\lVert\cdot\rVert_2},\ \alpha \sim U(0, 1);
        \qquad
        h' = \frac{\beta q + (1 - \beta) n_j}{\lVert\cdot\rVert_2},\ \beta \sim U(0, 0.5),

    with :math:`n_i, n_j` uniform over :math:`\tilde{Q}`. Queries and negatives are
    L2-normalised first; the result carries no gradient (like the memory it is mixed from).

    Args:
        query (torch.Tensor): :obj:`[B, d]`.
        negatives (torch.Tensor): The memory of negatives :obj:`[K, d]`.
        num_hardest (int): :math:`N`; at most ``K`` are used.
        num_synthetic_negatives (int): :math:`s` (may be 0).
        num_synthetic_query_mix (int): :math:`s'` (may be 0).
        generator (torch.Generator, optional): Source of randomness.

    Returns:
        torch.Tensor: :obj:`[B, s + s', d]` synthetic negatives.
    """
    check_count("num_hardest", num_hardest)
    check_count("num_synthetic_negatives", num_synthetic_negatives, minimum=0)
    check_count("num_synthetic_query_mix", num_synthetic_query_mix, minimum=0)
    check_embeddings("query", query)
    check_embeddings("negatives", negatives)
    check_feature_dim("negatives", negatives, query.size(1), "query")
    if negatives.size(0) < 1:
        raise ValueError(
            f"negatives must hold at least one entry (got shape {tuple(negatives.shape)})"
        )
    with torch.no_grad():
        q = _prepare(query.detach(), True)
        bank = _prepare(_in_computation_dtype(negatives.detach(), query), True)
        batch = q.size(0)
        hardest_count = min(num_hardest, bank.size(0))
        hardest_index = (q @ bank.T).topk(hardest_count, dim=1).indices
        hardest = bank[hardest_index]  # [B, N, d]
        device = _random_device(generator, q.device)
        rows = torch.arange(batch, device=q.device)[:, None]
        parts: list[Tensor] = []
        if num_synthetic_negatives > 0:
            shape = (batch, num_synthetic_negatives)
            i = torch.randint(hardest_count, shape, generator=generator, device=device).to(q.device)
            j = torch.randint(hardest_count, shape, generator=generator, device=device).to(q.device)
            alpha = torch.rand((*shape, 1), generator=generator, device=device).to(q)
            parts.append(
                F.normalize(alpha * hardest[rows, i] + (1 - alpha) * hardest[rows, j], dim=-1)
            )
        if num_synthetic_query_mix > 0:
            shape = (batch, num_synthetic_query_mix)
            j = torch.randint(hardest_count, shape, generator=generator, device=device).to(q.device)
            beta = 0.5 * torch.rand((*shape, 1), generator=generator, device=device).to(q)
            parts.append(F.normalize(beta * q[:, None, :] + (1 - beta) * hardest[rows, j], dim=-1))
        if not parts:
            return q.new_zeros((batch, 0, q.size(1)))
        return torch.cat(parts, dim=1)


@_full_precision
def mochi_loss(
    query: Tensor,
    key: Tensor,
    negatives: Tensor,
    *,
    temperature: float = 0.2,
    num_hardest: int = 1024,
    num_synthetic_negatives: int = 1024,
    num_synthetic_query_mix: int = 128,
    generator: torch.Generator | None = None,
    normalize: bool = True,
) -> Tensor:
    r"""MoCo InfoNCE with MoCHi's synthetic hard negatives, see :class:`gcl.losses.MoCHiLoss`."""
    check_positive("temperature", temperature)
    _check_pair(query, key, ("query", "key"))
    _check_negatives(negatives, query, "query")
    synthetic = mochi_mix(
        query, negatives, num_hardest, num_synthetic_negatives, num_synthetic_query_mix, generator
    )
    q, k = _prepare(query, normalize), _prepare(key, normalize)
    bank = _prepare(_in_computation_dtype(negatives, query), normalize)
    per_query = _nce_per_anchor(
        q, k, temperature, negatives=bank, anchor_negatives=synthetic.to(q.dtype)
    )
    return global_mean(per_query)


# --------------------------------------------------------------------------- ProtoNCE


@_full_precision
def proto_nce_loss(
    query: Tensor,
    key: Tensor,
    negatives: Tensor | None = None,
    cluster_assignments: Sequence[Tensor] | None = None,
    prototypes: Sequence[Tensor] | None = None,
    concentrations: Sequence[Tensor] | None = None,
    *,
    temperature: float = 0.2,
    normalize: bool = True,
) -> Tensor:
    r"""ProtoNCE of Prototypical Contrastive Learning, see :class:`gcl.losses.ProtoNCELoss`.

    Args:
        query (torch.Tensor): :obj:`[B, d]`.
        key (torch.Tensor): Positive key per query :obj:`[B, d]`.
        negatives (torch.Tensor, optional): Memory negatives :obj:`[K, d]`; without
            them, the other keys of the (global) batch are the negatives.
        cluster_assignments (list[torch.Tensor], optional): For each of the :math:`M`
            clusterings, the cluster id of every query :obj:`[B]`.
        prototypes (list[torch.Tensor], optional): Centroids :obj:`[k_m, d]` per clustering.
        concentrations (list[torch.Tensor], optional): :math:`\phi` per cluster :obj:`[k_m]`.
        temperature (float, optional): Temperature of the instance term. (default: :obj:`0.2`)
        normalize (bool, optional): L2-normalise embeddings and prototypes. (default: :obj:`True`)
    """
    check_positive("temperature", temperature)
    _check_pair(query, key, ("query", "key"))
    if isinstance(negatives, Tensor) and negatives.dim() == 2 and negatives.is_floating_point():
        # the width here, to name the query (info_nce_loss checks the rest, naming it z1)
        check_feature_dim("negatives", negatives, query.size(-1), "query")
    instance = info_nce_loss(
        query,
        key,
        negatives,
        temperature=temperature,
        symmetric=False,
        intra_view_negatives=False,
        cross_view_negatives=negatives is None,
        normalize=normalize,
    )
    given = [x is not None for x in (cluster_assignments, prototypes, concentrations)]
    if not any(given):
        return instance
    if not all(given):
        raise ValueError(
            "cluster_assignments, prototypes and concentrations must be given together "
            f"(got {['missing', 'given'][given[0]]}, {['missing', 'given'][given[1]]}, "
            f"{['missing', 'given'][given[2]]})"
        )
    assert cluster_assignments is not None and prototypes is not None and concentrations is not None
    lengths = (len(cluster_assignments), len(prototypes), len(concentrations))
    if len(set(lengths)) != 1 or lengths[0] == 0:
        raise ValueError(
            f"cluster_assignments, prototypes and concentrations must be non-empty lists of "
            f"equal length (got lengths {lengths})"
        )
    q = _prepare(query, normalize)
    proto_total = q.new_zeros(())
    for m, (assignment, centroids, phi) in enumerate(
        zip(cluster_assignments, prototypes, concentrations)
    ):
        check_embeddings(f"prototypes[{m}]", centroids)
        check_feature_dim(f"prototypes[{m}]", centroids, q.size(1), "query")
        num_clusters = centroids.size(0)
        assignment = check_index(f"cluster_assignments[{m}]", assignment, q.size(0), num_clusters)
        check_embeddings(f"concentrations[{m}]", phi, ndim=1)
        if phi.numel() != num_clusters or bool((phi <= 0).any()):
            raise ValueError(
                f"concentrations[{m}] must hold {num_clusters} positive values "
                f"(got shape {tuple(phi.shape)}, min {float(phi.min()) if phi.numel() else 'n/a'})"
            )
        c = _prepare(_in_computation_dtype(centroids, query), normalize)
        logits = (q @ c.T) / _upcast(phi).to(device=q.device, dtype=q.dtype)[None, :]
        per_query = F.cross_entropy(logits, assignment.to(q.device).long(), reduction="none")
        proto_total = proto_total + global_mean(per_query)
    return instance + proto_total / lengths[0]


# --------------------------------------------------------------------------- multiview (CMC)


_MODES = ("full", "core")


@_full_precision
def multiview_contrastive_loss(
    views: Sequence[Tensor],
    *,
    temperature: float = 0.07,
    mode: str = "full",
    normalize: bool = True,
) -> Tensor:
    r"""Contrastive Multiview Coding loss, see :class:`gcl.losses.MultiviewContrastiveLoss`.

    Args:
        views (list[torch.Tensor]): :math:`M \ge 2` embeddings :obj:`[N, d]` of the same samples.
        temperature (float, optional): Softmax temperature. (default: :obj:`0.07`)
        mode (str, optional): ``'full'`` (all view pairs) or ``'core'`` (view 0 against
            each other view). (default: :obj:`'full'`)
        normalize (bool, optional): L2-normalise embeddings. (default: :obj:`True`)
    """
    check_positive("temperature", temperature)
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES} (got {mode!r})")
    if isinstance(views, Tensor) or len(views) < 2:
        got = (
            f"a tensor of shape {tuple(views.shape)}"
            if isinstance(views, Tensor)
            else f"{len(views)} views"
        )
        raise ValueError(f"views must be a list of at least 2 tensors (got {got})")
    for m, view in enumerate(views):
        check_embeddings(f"views[{m}]", view)
        check_same_shape("views[0]", views[0], f"views[{m}]", view)
        _check_same_precision("views[0]", views[0], f"views[{m}]", view)
    local = [_prepare(v, normalize) for v in views]
    gathered, offset = gather_with_offset(torch.stack(local, dim=1))
    if gathered.size(0) < 2:
        raise ValueError(
            f"MultiviewContrastiveLoss needs a batch of at least 2 (got views of shape {tuple(views[0].shape)})"
        )
    count = len(views)
    pairs = (
        [(i, j) for i in range(count) for j in range(i + 1, count)]
        if mode == "full"
        else [(0, j) for j in range(1, count)]
    )
    total = local[0].new_zeros(())
    for i, j in pairs:
        for a, b in ((i, j), (j, i)):
            per_anchor = _nce_per_anchor(
                local[a], local[b], temperature, candidates=gathered[:, b], offset=offset
            )
            total = total + global_mean(per_anchor)
    return total


# --------------------------------------------------------------------------- i-Mix


class MixedBatch(NamedTuple):
    r"""Output of :func:`imix_mix`."""

    inputs: Tensor
    r"""The mixed inputs, same shape as the input."""
    permutation: Tensor
    r"""The permutation :math:`\pi` of the batch, shape :obj:`[N]`."""
    coefficient: float
    r"""The mixing coefficient :math:`\lambda \sim \mathrm{Beta}(\alpha, \alpha)`."""


def _sample_gamma(shape: float, generator: torch.Generator | None) -> tuple[float, float]:
    r"""One draw from :math:`\Gamma(\text{shape}, 1)` (Marsaglia-Tsang), from the torch RNG,
    as a value :math:`g` and the logarithm :math:`b` of its boost: the draw is
    :math:`g e^{b}`. Shapes below 1 draw from :math:`\Gamma(\text{shape} + 1)` and boost by
    :math:`u^{1/\text{shape}}`, which underflows to 0 for a small shape, so it is kept as a
    logarithm (:math:`b = 0` for shapes of 1 and more)."""
    device = generator.device if generator is not None else torch.device("cpu")
    log_boost = 0.0
    if shape < 1.0:
        u = float(torch.rand((), generator=generator, device=device, dtype=torch.float64))
        log_boost = math.log(u) / shape if u > 0 else -math.inf
        shape += 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        # A few candidates per round trip: acceptance is above 95%, so one round suffices.
        x = torch.randn(8, generator=generator, device=device, dtype=torch.float64).cpu()
        uniform = torch.rand(8, generator=generator, device=device, dtype=torch.float64).cpu()
        v = (1.0 + c * x) ** 3
        safe_v = torch.where(v > 0, v, torch.ones_like(v))
        accept = (v > 0) & (uniform > 0)
        accept &= torch.log(
            uniform.clamp(min=1e-300)
        ) < 0.5 * x * x + d - d * safe_v + d * torch.log(safe_v)
        if bool(accept.any()):
            first = int(accept.nonzero()[0, 0])
            return d * float(v[first]), log_boost


def _sample_beta(alpha: float, generator: torch.Generator | None) -> float:
    r"""One draw from :math:`\mathrm{Beta}(\alpha, \alpha)` as :math:`X / (X + Y)` of two
    Gamma draws; with :math:`\alpha < 1` from their logarithms, where the draws themselves
    underflow (a tiny :math:`\alpha` puts nearly all the mass next to 0 and 1)."""
    x, boost_x = _sample_gamma(alpha, generator)
    y, boost_y = _sample_gamma(alpha, generator)
    if alpha >= 1.0:  # no boost: the plain ratio
        return x / (x + y)
    log_x, log_y = math.log(x) + boost_x, math.log(y) + boost_y
    if log_x == log_y:  # equal draws, or both boosts -inf (u = 0, probability 2^-106)
        return 0.5
    difference = log_y - log_x
    return 1.0 / (1.0 + math.exp(difference)) if difference < 700.0 else 0.0


def imix_mix(x: Tensor, alpha: float = 1.0, generator: torch.Generator | None = None) -> MixedBatch:
    r"""Mixes a batch with a permutation of itself, as in `i-Mix
    <https://arxiv.org/abs/2010.08887>`_ (Lee et al., ICLR 2021).

    .. math::
        \tilde{x}_i = \lambda x_i + (1 - \lambda) x_{\pi(i)}, \qquad
        \lambda \sim \mathrm{Beta}(\alpha, \alpha).

    Works for any tensor whose dim 0 is the batch (images, token embeddings, pooled
    graph features). Feed ``inputs`` to the query encoder and pass ``permutation`` and
    ``coefficient`` to :class:`gcl.losses.IMixLoss`.

    Args:
        x (torch.Tensor): Batch :obj:`[N, *]`.
        alpha (float, optional): Beta parameter :math:`\alpha > 0`. (default: :obj:`1.0`)
        generator (torch.Generator, optional): Source of randomness.
    """
    check_positive("alpha", alpha)
    if not isinstance(x, Tensor) or x.dim() < 1 or x.size(0) < 1:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a tensor with a non-empty batch dimension (got {shape})")
    if x.is_floating_point():
        check_finite("x", x)
    coefficient = _sample_beta(float(alpha), generator)
    device = _random_device(generator, x.device)
    permutation = torch.randperm(x.size(0), generator=generator, device=device).to(x.device)
    mixed = coefficient * x + (1.0 - coefficient) * x[permutation]
    return MixedBatch(mixed, permutation, coefficient)


@_full_precision
def imix_loss(
    query: Tensor,
    key: Tensor,
    permutation: Tensor,
    coefficient: float,
    negatives: Tensor | None = None,
    *,
    temperature: float = 0.2,
    normalize: bool = True,
) -> Tensor:
    r"""i-Mix virtual-label loss, see :class:`gcl.losses.IMixLoss`.

    Args:
        query (torch.Tensor): Embeddings of the mixed inputs :obj:`[N, d]`.
        key (torch.Tensor): Embeddings of the clean second view :obj:`[N, d]`.
        permutation (torch.Tensor): :math:`\pi` from :func:`imix_mix`, :obj:`[N]`.
        coefficient (float): :math:`\lambda` from :func:`imix_mix`.
        negatives (torch.Tensor, optional): Extra memory negatives :obj:`[K, d]` (MoCo form).
        temperature (float, optional): Softmax temperature. (default: :obj:`0.2`)
        normalize (bool, optional): L2-normalise embeddings. (default: :obj:`True`)
    """
    check_positive("temperature", temperature)
    check_unit_interval("coefficient", coefficient)
    _check_pair(query, key, ("query", "key"))
    n = query.size(0)
    permutation = check_index("permutation", permutation, n, n)
    if not torch.equal(
        torch.sort(permutation.to(query.device)).values, torch.arange(n, device=query.device)
    ):
        raise ValueError(
            f"permutation must be a permutation of range({n}) (got {permutation.tolist()})"
        )
    _check_negatives(negatives, query, "query")
    q, k = _prepare(query, normalize), _prepare(key, normalize)
    keys, offset = gather_with_offset(k)
    if keys.size(0) + (0 if negatives is None else negatives.size(0)) < 2:
        raise ValueError(
            "IMixLoss needs at least one negative: a global batch of 2 or memory negatives "
            f"(got query of shape {tuple(query.shape)} and no negatives)"
        )
    logits = q @ keys.T / temperature
    if negatives is not None:
        logits = torch.cat(
            [logits, q @ _prepare(_in_computation_dtype(negatives, query), normalize).T / temperature], 1
        )
    own = offset + torch.arange(n, device=q.device)
    mixed = offset + permutation.to(q.device).long()
    per_query = coefficient * F.cross_entropy(logits, own, reduction="none") + (
        1.0 - coefficient
    ) * F.cross_entropy(logits, mixed, reduction="none")
    return global_mean(per_query)
