r"""GraphCL: contrast two augmented views of each graph (You et al., NeurIPS 2020)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gcl.losses import InfoNCE
from gcl.methods.base import (
    Augmentation,
    check_contrastive_batch,
    check_features,
    encode_graphs,
    encode_views,
)


class GraphCL(nn.Module):
    r"""GraphCL from `"Graph Contrastive Learning with Augmentations"
    <https://arxiv.org/abs/2010.13902>`_ (You et al., NeurIPS 2020).

    Each batch is augmented twice; a shared encoder and projection head map the
    views to :math:`z^{(1)}, z^{(2)}`, and the NT-Xent loss pulls the two views
    of each graph together against the other graphs of the batch:

    .. math::
        \ell_n = -\log \frac{\exp(s(z^{(1)}_n, z^{(2)}_n)/\tau)}
        {\sum_{m \neq n} \exp(s(z^{(1)}_n, z^{(2)}_m)/\tau)}

    Args:
        encoder (nn.Module): Graph encoder returning an ``EncoderOutput``
            (e.g. :class:`gcl.nn.GIN`).
        augment1 (callable): First view, ``augment1(batch) -> batch``.
        augment2 (callable): Second view.
        head (nn.Module): Projection head (GraphCL: Linear–ReLU–Linear).
        loss (nn.Module, optional): Contrastive loss on ``(z1, z2)``; default
            :meth:`gcl.losses.InfoNCE.graphcl` with :math:`\tau = 0.2` (one direction, no
            intra-view negatives, positive excluded from the denominator, as in the GraphCL code).
        joint_views (bool, optional): Encode (and project) both views in one
            pass over their union (:func:`~gcl.methods.base.encode_views`), as
            SimCLR does: batch norm then normalises over both views together
            instead of each view alone, as GraphCL's code does. Fewer, larger
            operators per step. (default: :obj:`False`)

    Example:
        >>> from gcl.augment import DropNodes, RandomWalkSubgraph
        >>> from gcl.data import CollatedLoader, load_dataset
        >>> from gcl.nn import GIN, ProjectionHead
        >>> method = GraphCL(GIN(7, 32, 3), DropNodes(0.2), RandomWalkSubgraph(0.8),
        ...                  ProjectionHead(96, 96, 96))
        >>> batch = next(iter(CollatedLoader(load_dataset("MUTAG"), batch_size=32)))
        >>> loss = method(batch); embeddings = method.embed(batch)
        >>> loss.shape, embeddings.shape
        (torch.Size([]), torch.Size([32, 96]))
    """

    def __init__(self, encoder: nn.Module, augment1: Augmentation, augment2: Augmentation, head: nn.Module,
                 loss: nn.Module | None = None, joint_views: bool = False) -> None:
        super().__init__()
        self.joint_views = bool(joint_views)
        self.encoder = encoder
        self.augment1 = augment1
        self.augment2 = augment2
        self.head = head
        self.loss = loss if loss is not None else InfoNCE.graphcl()

    #: what :meth:`forward` reads of the batch once the views are given (its
    #: graph count): background workers deliver only that (``ViewPrefetcher(batch_keys=...)``);
    #: a subclass whose forward reads more of the batch names it here (``None``: all of it)
    batch_keys_with_views: tuple[str, ...] | None = ()

    def view_augmentations(self) -> tuple[Augmentation, Augmentation]:
        r"""The two view augmentations, for views drawn outside :meth:`forward`
        (:class:`gcl.data.ViewPrefetcher`)."""
        return self.augment1, self.augment2

    def forward(self, batch: Any, views: Sequence[Any] | None = None) -> Tensor:
        r"""The loss of ``batch``, augmented here, or of its two ``views``
        when they were drawn already (by :meth:`view_augmentations`)."""
        if views is not None and len(views) != 2:
            raise ValueError(f"{type(self).__name__} contrasts two views (got {len(views)})")
        check_features(batch if views is None else views[0])
        check_contrastive_batch(batch, next(self.encoder.parameters()).device)
        if self.joint_views:
            pair = views if views is not None else (self.augment1(batch), self.augment2(batch))
            graphs = encode_views(self.encoder, pair)
            z1, z2 = self.head(torch.cat(graphs)).split([g.size(0) for g in graphs])
        else:
            # augment, encode, then the second view: the order of random draws of earlier versions
            z1 = self.head(encode_graphs(self.encoder, views[0] if views is not None else self.augment1(batch),
                                             nodes=False).graph)
            z2 = self.head(encode_graphs(self.encoder, views[1] if views is not None else self.augment2(batch),
                                             nodes=False).graph)
        return self.loss(z1, z2)

    def embed(self, batch: Any) -> Tensor:
        r"""Graph embeddings of the un-augmented batch (the encoder output, before the head)."""
        check_features(batch)
        return encode_graphs(self.encoder, batch, nodes=False).graph.detach()

    def __repr__(self) -> str:
        joint = ", joint_views=True" if self.joint_views else ""
        return (f"{type(self).__name__}(encoder={self.encoder}, augment1={self.augment1}, "
                f"augment2={self.augment2}, loss={self.loss}{joint})")
