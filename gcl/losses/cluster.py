r"""Clustering helpers for prototype losses (:class:`gcl.losses.ProtoNCELoss`), torch only."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from gcl._checks import check_generator
from gcl.losses._checks import check_count, check_embeddings, check_index, check_positive

__all__ = ["KMeansResult", "estimate_concentration", "kmeans"]


class KMeansResult(NamedTuple):
    r"""Output of :func:`kmeans`."""

    assignments: Tensor
    r"""Cluster id of every point, :obj:`[N]` (``long``)."""
    centroids: Tensor
    r"""Cluster centres, :obj:`[k, d]`."""
    inertia: Tensor
    r"""Sum of squared distances of the points to their centres (scalar)."""


def _squared_distances(x: Tensor, centroids: Tensor) -> Tensor:
    return torch.cdist(x, centroids).pow(2)


@torch.no_grad()
def kmeans(
    x: Tensor,
    k: int,
    num_iters: int = 20,
    generator: torch.Generator | None = None,
) -> KMeansResult:
    r"""Lloyd's k-means with k-means++ seeding (`Arthur and Vassilvitskii, 2007
    <https://dl.acm.org/doi/10.5555/1283383.1283494>`_), in torch.

    Minimises :math:`\sum_i \lVert x_i - c_{a(i)} \rVert_2^2`. A cluster that loses all
    its points keeps its previous centre. Iteration stops early once assignments no
    longer change. Deterministic for a given ``generator``.

    Args:
        x (torch.Tensor): Points :obj:`[N, d]` (no gradient is tracked).
        k (int): Number of clusters, :math:`1 \le k \le N`.
        num_iters (int, optional): Maximum Lloyd iterations. (default: :obj:`20`)
        generator (torch.Generator, optional): Randomness for the seeding.

    Raises:
        TypeError: If ``generator`` is neither a :class:`torch.Generator` nor :obj:`None`.

    Example:
        >>> result = kmeans(torch.randn(100, 8), k=5)
        >>> result.centroids.shape
        torch.Size([5, 8])
    """
    check_embeddings("x", x)
    check_count("k", k)
    check_count("num_iters", num_iters)
    check_generator("generator", generator)
    n = x.size(0)
    if k > n:
        raise ValueError(f"k must not exceed the number of points {n} (got {k})")
    points = x.detach().float() if x.dtype in (torch.float16, torch.bfloat16) else x.detach()
    # centred: cdist's matrix-product form loses the digits of small spreads far from the origin
    offset = points.mean(dim=0, keepdim=True)
    points = points - offset
    device = generator.device if generator is not None else points.device

    first = int(torch.randint(n, (1,), generator=generator, device=device))
    chosen = [first]
    closest = _squared_distances(points, points[first : first + 1]).squeeze(1)
    for _ in range(1, k):
        weights = closest.clamp(min=0)
        if float(weights.sum()) <= 0:
            # All remaining points coincide with a centre: any unused point will do.
            unused = torch.ones(n, dtype=torch.bool, device=points.device)
            unused[chosen] = False
            weights = unused.to(points.dtype)
        pick = int(torch.multinomial(weights.to(device), 1, generator=generator))
        chosen.append(pick)
        closest = torch.minimum(
            closest, _squared_distances(points, points[pick : pick + 1]).squeeze(1)
        )
    centroids = points[chosen].clone()

    assignments = _squared_distances(points, centroids).argmin(dim=1)
    for _ in range(num_iters):
        sums = torch.zeros_like(centroids).index_add_(0, assignments, points)
        counts = torch.bincount(assignments, minlength=k).to(points.dtype)
        filled = counts > 0
        centroids = torch.where(filled[:, None], sums / counts.clamp(min=1)[:, None], centroids)
        updated = _squared_distances(points, centroids).argmin(dim=1)
        if torch.equal(updated, assignments):
            break
        assignments = updated
    inertia = (points - centroids[assignments]).pow(2).sum()
    return KMeansResult(assignments, centroids + offset, inertia)


@torch.no_grad()
def estimate_concentration(
    features: Tensor,
    assignments: Tensor,
    centroids: Tensor,
    alpha: float = 10.0,
    *,
    clip_quantiles: tuple[float, float] | None = None,
    temperature: float | None = None,
) -> Tensor:
    r"""Per-cluster concentration :math:`\phi` of `Prototypical Contrastive Learning
    <https://arxiv.org/abs/2005.04966>`_ (Li et al., ICLR 2021).

    .. math::
        \phi_c = \frac{\sum_{z=1}^{Z} \lVert v_z - c \rVert_2}{Z \log(Z + \alpha)},

    over the :math:`Z` members :math:`v_z` of cluster :math:`c`. Clusters with fewer than
    two members get the largest :math:`\phi` of the others (as in the reference code), and
    so do clusters whose members all coincide (duplicate graphs), whose :math:`\phi = 0`
    would make their logits infinite. When no cluster has a spread (every one a singleton
    or of coinciding members, e.g. collapsed embeddings), every :math:`\phi` is 1, or
    ``temperature`` when given.
    The reference code then clips to the 10th/90th percentiles and rescales the mean to
    the temperature: pass ``clip_quantiles=(0.1, 0.9), temperature=0.2`` for that.

    Args:
        features (torch.Tensor): Embeddings :obj:`[N, d]`.
        assignments (torch.Tensor): Cluster id per embedding :obj:`[N]`.
        centroids (torch.Tensor): Cluster centres :obj:`[k, d]`.
        alpha (float, optional): Smoothing :math:`\alpha > 0`. (default: :obj:`10.0`)
        clip_quantiles (tuple[float, float], optional): Clamp :math:`\phi` to these
            quantiles. (default: :obj:`None`)
        temperature (float, optional): Rescale so that the mean :math:`\phi` equals it.
            (default: :obj:`None`)

    Returns:
        torch.Tensor: :math:`\phi`, shape :obj:`[k]`.
    """
    check_positive("alpha", alpha)
    if temperature is not None:
        check_positive("temperature", temperature)
    check_embeddings("features", features)
    check_embeddings("centroids", centroids)
    if centroids.size(1) != features.size(1):
        raise ValueError(
            f"centroids must have feature size {features.size(1)} (got shape {tuple(centroids.shape)})"
        )
    num_clusters = centroids.size(0)
    assignments = check_index("assignments", assignments, features.size(0), num_clusters)
    if clip_quantiles is not None:
        low, high = clip_quantiles
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(
                f"clip_quantiles must satisfy 0 <= low <= high <= 1 (got {clip_quantiles})"
            )
    feats = features.float() if features.dtype in (torch.float16, torch.bfloat16) else features
    cents = centroids.to(feats.dtype)
    assignments = assignments.long()
    distances = torch.linalg.vector_norm(feats - cents[assignments], dim=-1)
    sums = torch.zeros(num_clusters, dtype=feats.dtype, device=feats.device).index_add_(
        0, assignments, distances
    )
    counts = torch.bincount(assignments, minlength=num_clusters).to(feats.dtype)
    phi = sums / (counts.clamp(min=1) * torch.log(counts + alpha))
    populated = (counts > 1) & (phi > 0)
    if bool(populated.any()):
        fallback = phi[populated].max()
    else:
        fallback = phi.new_tensor(1.0 if temperature is None else temperature)
    phi = torch.where(populated, phi, fallback)
    if clip_quantiles is not None:
        low_value = torch.quantile(phi, clip_quantiles[0])
        high_value = torch.quantile(phi, clip_quantiles[1])
        phi = phi.clamp(min=low_value, max=high_value)
    if temperature is not None:
        phi = temperature * phi / phi.mean()
    return phi
