r"""Semantic-similarity evaluation of embeddings against human ratings."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["similarity_spearman"]


def similarity_spearman(embeddings: Tensor, pairs: Tensor, scores: Tensor) -> float:
    r"""Spearman rank correlation between the cosine similarity of embedding pairs and
    human similarity scores, the STS protocol of `Sentence-BERT
    <https://arxiv.org/abs/1908.10084>`_:

    .. math::
        \rho = \mathrm{corr}\big(\mathrm{rank}(\cos(e_{i_p}, e_{j_p})),\
        \mathrm{rank}(y_p)\big)_{p = 1..P}.

    Args:
        embeddings (torch.Tensor): :obj:`[M, d]`.
        pairs (torch.Tensor): Index pairs into ``embeddings``, :obj:`[P, 2]`.
        scores (torch.Tensor): Human scores :obj:`[P]`.

    Returns:
        float: :math:`\rho \in [-1, 1]`.

    Raises:
        ValueError: Malformed shapes, pairs out of range, NaN/inf embeddings or scores, or
            scores or cosine similarities that are all equal (the correlation is then undefined).
    """
    from scipy.stats import spearmanr

    if embeddings.dim() != 2:
        raise ValueError(f"embeddings must be [M, d] (got shape {tuple(embeddings.shape)})")
    if pairs.dim() != 2 or pairs.size(1) != 2 or scores.shape != (pairs.size(0),) or pairs.size(0) < 2:
        raise ValueError(
            "pairs must be [P, 2] and scores [P] with P >= 2 "
            f"(got {tuple(pairs.shape)} and {tuple(scores.shape)})"
        )
    if int(pairs.min()) < 0 or int(pairs.max()) >= embeddings.size(0):
        raise ValueError(f"pairs must index rows of embeddings in [0, {embeddings.size(0)})")
    e = F.normalize(embeddings.detach().double().cpu(), dim=1)
    gold = scores.detach().cpu().double()
    if not bool(torch.isfinite(e).all()) or not bool(torch.isfinite(gold).all()):
        raise ValueError("embeddings and scores must be finite (got NaN or inf)")
    if bool((gold == gold[0]).all()):
        raise ValueError("scores are all equal: their rank correlation with anything is undefined")
    index = pairs.cpu().long()
    cosine = (e[index[:, 0]] * e[index[:, 1]]).sum(dim=1)
    if bool((cosine == cosine[0]).all()):
        raise ValueError("the embeddings give every pair the same cosine similarity (a collapsed encoder, or "
                         "zero embeddings): their rank correlation with the scores is undefined")
    result = spearmanr(cosine.numpy(), gold.numpy())
    return float(result[0])
