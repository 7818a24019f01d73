r"""Segment-wise sparsemax (`Martins and Astudillo, ICML 2016
<https://arxiv.org/abs/1602.02068>`_) over groups of entries, e.g. the edges
leaving each node."""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.utils import cumsum, scatter

__all__ = ["sparsemax"]


def _sort_by_segment(src: Tensor, index: Tensor, num_segments: int) -> Tensor:
    r"""The order "by segment, then by value descending", ties in input order."""
    if src.dtype == torch.float32 and num_segments < 2**30:
        # One sort of an exact 64-bit key: the segment in the high half, the value's bits in
        # the low half, mapped so that integer order is float order (negative floats' bits
        # flipped). A float64 key would lose the low bits of values next to large segment numbers.
        # -0.0 and every NaN made +0.0 and one positive NaN first: the comparison sort
        # treats them as equal (ties keep their input order), their bits differ
        value = src.detach()
        value = torch.where(torch.isnan(value), torch.full_like(value, float("nan")), value + 0.0)
        bits = value.view(torch.int32).to(torch.int64)
        monotone = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # increases with the value
        return torch.argsort(index.to(torch.int64) * 2**32 - monotone, stable=True)
    # Otherwise two stable sorts, which need no combined key.
    order = torch.argsort(src, descending=True, stable=True)
    return order[torch.argsort(index[order], stable=True)]


def sparsemax(src: Tensor, index: Tensor, num_segments: int | None = None) -> Tensor:
    r"""The sparsemax of `"From Softmax to Sparsemax: A Sparse Model of Attention
    and Multi-Label Classification" <https://arxiv.org/abs/1602.02068>`_, taken
    separately over every segment of entries sharing the same ``index``.

    Within one segment with scores :math:`\mathbf{z}`, sparsemax is the
    Euclidean projection onto the probability simplex:

    .. math::
        \mathrm{sparsemax}(\mathbf{z})_i = \max(z_i - \tau(\mathbf{z}), 0),
        \qquad
        \tau(\mathbf{z}) = \frac{\sum_{j \le k(\mathbf{z})} z_{(j)} - 1}{k(\mathbf{z})},

    where :math:`z_{(1)} \ge z_{(2)} \ge \dots` are the sorted scores and
    :math:`k(\mathbf{z}) = \max\{k : 1 + k z_{(k)} > \sum_{j \le k} z_{(j)}\}`
    is the support size. Each segment's outputs are non-negative, sum to one
    and are typically sparse.

    The support is found without gradient (sorting and a per-segment cumulative
    sum, all segments at once); the threshold :math:`\tau` is then recomputed
    differentiably from the entries in the support, so autograd yields the
    sparsemax Jacobian
    :math:`\partial p_i / \partial z_j = s_i(\delta_{ij} - s_j / k)` with
    :math:`s` the support indicator.

    Args:
        src (Tensor): Scores of shape :obj:`[E]`.
        index (Tensor): Segment of every score, shape :obj:`[E]`, values in
            ``[0, num_segments)``. Need not be sorted.
        num_segments (int, optional): Number of segments. Inferred as
            ``index.max() + 1`` when omitted, which synchronises with the
            device. (default: :obj:`None`)

    Returns:
        Tensor: Probabilities of shape :obj:`[E]`, summing to one within every
        non-empty segment.

    Example:
        >>> import torch
        >>> src = torch.tensor([2.0, 1.0, 0.1, 1.0, 0.5])
        >>> index = torch.tensor([0, 0, 0, 1, 1])
        >>> sparsemax(src, index).tolist()
        [1.0, 0.0, 0.0, 0.75, 0.25]
    """
    if src.dim() != 1 or index.dim() != 1 or src.numel() != index.numel():
        raise ValueError(
            "sparsemax expects 1-D 'src' and 'index' of equal length "
            f"(got shapes {tuple(src.shape)} and {tuple(index.shape)})"
        )
    if src.numel() == 0:
        return src.clone()
    if num_segments is None:
        num_segments = int(index.max()) + 1

    with torch.no_grad():
        order = _sort_by_segment(src, index, num_segments)
        seg = index[order]
        # Shifting by the segment maximum and accumulating in float64 keeps the
        # global running sum (minus each segment's offset) accurate even when
        # millions of entries precede a segment. Only finite scores enter it: a
        # -inf score (a masked entry, sorted last in its segment) gets weight 0,
        # and a NaN or +inf makes only its own segment NaN.
        sorted_src = src.detach()[order].to(torch.float64)
        finite = torch.isfinite(sorted_src)
        undefined = scatter((~finite & (sorted_src != float("-inf"))).long(), seg, 0, num_segments, reduce="max") > 0
        masked = torch.where(finite, sorted_src, torch.full_like(sorted_src, float("-inf")))
        seg_max = scatter(masked, seg, 0, num_segments, reduce="max")
        seg_max = torch.where(torch.isfinite(seg_max), seg_max, torch.zeros_like(seg_max))
        shifted = torch.where(finite, sorted_src - seg_max[seg], torch.zeros_like(sorted_src))
        counts = scatter(torch.ones_like(seg), seg, 0, num_segments, reduce="sum")
        ptr = cumsum(counts)
        running = shifted.cumsum(0)
        start_total = torch.cat([running.new_zeros(1), running])[ptr[:-1]]
        seg_cumsum = running - start_total[seg]
        rank = torch.arange(1, src.numel() + 1, device=src.device) - ptr[seg]
        in_support_sorted = (1 + rank * shifted > seg_cumsum) & finite
        # The support is a prefix of the sorted segment; taking the largest
        # qualifying rank stays correct even if rounding breaks that prefix.
        support_size = scatter(
            torch.where(in_support_sorted, rank, torch.zeros_like(rank)),
            seg,
            0,
            num_segments,
            reduce="max",
        )
        in_support = torch.empty_like(in_support_sorted)
        in_support[order] = rank <= support_size[seg]
        offset = seg_max.to(src.dtype)

    # tau from the shifted scores (the shift is a constant: the Jacobian is unchanged), so
    # large scores keep their precision; entries outside the support add nothing
    centred = src - offset[index]
    support_sum = scatter(torch.where(in_support, centred, torch.zeros_like(centred)), index, 0, num_segments,
                          reduce="sum")
    tau = (support_sum - 1) / support_size.clamp(min=1).to(src.dtype)
    # masked by the support, not only clamped: an entry tied with tau (outside the support that
    # defines it) would otherwise pass the clamp's gradient at zero, against the Jacobian above
    out = torch.where(in_support, (centred - tau[index]).clamp(min=0), torch.zeros_like(centred))
    # no host read of whether any segment is undefined: one elementwise select costs less on a GPU
    return torch.where(undefined[index], torch.full_like(out, float("nan")), out)
