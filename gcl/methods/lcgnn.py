r"""LCGNN: label contrastive coding for supervised graph classification (Ren et al., 2021)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gcl.losses import (
    LabelContrastiveLoss,
    MemoryBank,
    MemoryQueue,
    gather_no_grad,
    update_momentum,
)
from gcl.methods.base import (
    Augmentation,
    LossParts,
    check_features,
    cross_entropy,
    encode_graphs,
    graph_labels,
)
from gcl.nn import momentum_copy

_NO_LABELS = "LCGNN needs a memory that stores labels (store_labels=True)"


class LCGNN(nn.Module):
    r"""LCGNN from `"Label Contrastive Coding based Graph Neural Network for
    Graph Classification" <https://arxiv.org/abs/2101.05486>`_ (Ren et al.,
    DASFAA 2021).

    A query encoder :math:`f_q` (GIN or HGP-SL) feeds a classifier; a momentum
    copy :math:`f_k` of the encoder and projection head produces keys that are
    stored, with their labels, in a memory. The query is contrasted against the
    memory: every key with the query's label is a positive,

    .. math::
        \mathcal{L} = \mathcal{L}_{\mathrm{CE}} - \beta \cdot \log
        \frac{\sum_{k^+ \in P(q)} \exp(q \cdot k^+ / \tau)}{\sum_{k \in M} \exp(q \cdot k / \tau)},
        \qquad \theta_k \leftarrow m\,\theta_k + (1-m)\,\theta_q

    (the ratio of sums of the authors' code, :class:`~gcl.losses.LabelContrastiveLoss`),
    averaged over the queries. The memory is written only in training mode; in evaluation
    mode (a validation loss) it is read, with the batch's current keys as candidates (those
    of every rank under :mod:`torch.distributed`, as in training), so held-out graphs and
    their labels never enter it.

    Args:
        encoder (nn.Module): Query graph encoder returning an ``EncoderOutput``.
        classifier (nn.Module): Maps graph embeddings to class logits.
        head (nn.Module): Projection of graph embeddings for the contrastive term.
        memory (MemoryQueue or MemoryBank): Key memory that stores labels
            (``store_labels=True``). A :class:`~gcl.losses.MemoryBank` has one slot
            per training graph, addressed by ``batch.idx`` (see
            :func:`gcl.data.attach_index`); how a write moves a slot is the bank's own
            ``momentum``. With ``MemoryBank(..., momentum=0.0)``, what the LCGNN code
            does and what ``build_method("lcgnn", ..., memory="bank")`` builds, a slot
            holds its graph's newest key; with a positive momentum (the bank's default
            is 0.5) it holds the normalised mix of its previous content and the new key
            (Wu et al.'s memory bank), the random start included on a first write.
        contrastive_weight (float): :math:`\beta`. (default: :obj:`0.5`)
        temperature (float): :math:`\tau`. (default: :obj:`0.07`)
        momentum (float): :math:`m` of the key encoder. (default: :obj:`0.999`)
        key_augment (callable, optional): Augmentation of the key view
            (default: none, the key encoder sees the same graphs).
    """

    def __init__(self, encoder: nn.Module, classifier: nn.Module, head: nn.Module,
                 memory: MemoryQueue | MemoryBank, *, contrastive_weight: float = 0.5,
                 temperature: float = 0.07, momentum: float = 0.999,
                 key_augment: Augmentation | None = None) -> None:
        super().__init__()
        if contrastive_weight < 0:
            raise ValueError(f"contrastive_weight must be non-negative (got {contrastive_weight})")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1] (got {momentum})")
        if memory.labels is None:
            raise ValueError(_NO_LABELS)
        self.encoder = encoder
        self.classifier = classifier
        self.head = head
        self.key_encoder = momentum_copy(encoder)
        self.key_head = momentum_copy(head)
        self.memory = memory
        self.loss = LabelContrastiveLoss(temperature=temperature)
        self.contrastive_weight = contrastive_weight
        self.momentum = momentum
        self.key_augment = key_augment

    def _labels(self, batch: Any) -> Tensor:
        return graph_labels(batch, "LCGNN")

    @torch.no_grad()
    def sync_key_encoder(self) -> None:
        r"""Make the key encoder and head exact copies of the query encoder and head (parameters
        and buffers), as MoCo starts them. They are copied when the method is built; call this
        after loading other weights into :attr:`encoder` or :attr:`head` (pre-trained weights:
        the benchmark harness does), or the keys and the memory come from the random start
        for thousands of steps (:math:`m^{1000} \approx 0.37` at :math:`m = 0.999`)."""
        self.key_encoder.load_state_dict(self.encoder.state_dict())
        self.key_head.load_state_dict(self.head.state_dict())

    def view_augmentations(self) -> tuple[Augmentation, ...]:
        r"""The key view's augmentation (none without ``key_augment``), for
        views drawn outside :meth:`forward` (:class:`gcl.data.ViewPrefetcher`)."""
        return (self.key_augment,) if self.key_augment is not None else ()

    def forward(self, batch: Any, views: Sequence[Any] | None = None) -> LossParts:
        r"""The loss of ``batch``; ``views`` holds the key view when it was drawn
        already (by :meth:`view_augmentations`)."""
        check_features(batch)
        if views is not None and len(views) != len(self.view_augmentations()):
            raise ValueError(f"LCGNN takes {len(self.view_augmentations())} precomputed views (got {len(views)})")
        labels = self._labels(batch)
        hidden = encode_graphs(self.encoder, batch, nodes=False).graph
        classification = cross_entropy(self.classifier(hidden), labels)  # over every rank's graphs
        query = F.normalize(self.head(hidden), dim=-1)
        with torch.no_grad():
            if views:
                key_batch = views[0]
            elif views is None and self.key_augment is not None:
                key_batch = self.key_augment(batch)
            else:
                key_batch = batch
            keys = F.normalize(self.key_head(encode_graphs(self.key_encoder, key_batch, nodes=False).graph), dim=-1)
        if self.memory.labels is None:  # checked when built; the memory may have been replaced since
            raise ValueError(_NO_LABELS)
        if isinstance(self.memory, MemoryBank):
            index = getattr(batch, "idx", None)
            if index is None:
                raise ValueError("a MemoryBank needs batch.idx (graph indices); use gcl.data.attach_index(dataset)")
            if self.training:  # the update gathers every rank's writes
                self.memory.update(index.view(-1), keys, labels)
                filled = self.memory.labels >= 0  # slots not written yet hold random vectors
                memory_keys, memory_labels = self.memory.get()[filled], self.memory.labels[filled]
            else:  # read only (a validation loss must not put held-out graphs into the memory)
                filled = self.memory.labels >= 0
                # the global batch's own slots: its current keys instead (every rank's, as in training)
                filled[gather_no_grad(index.view(-1))] = False
                memory_keys = torch.cat([gather_no_grad(keys), self.memory.get()[filled]])
                memory_labels = torch.cat([gather_no_grad(labels), self.memory.labels[filled]])
        else:
            stored = self.memory.get()  # with labels: checked above
            # under torch.distributed the current keys of every rank are candidates too,
            # so each rank's queries see the global batch (as one process would)
            memory_keys = torch.cat([gather_no_grad(keys), stored.keys])
            memory_labels = torch.cat([gather_no_grad(labels), cast(Tensor, stored.labels)])
            if self.training:  # in evaluation mode the memory is read, never written
                self.memory.enqueue(keys, labels)
        contrastive = self.loss(query, labels, memory_keys, memory_labels)
        loss = classification + self.contrastive_weight * contrastive
        return LossParts(loss, {"classification": classification.detach(), "contrastive": contrastive.detach()})

    def after_step(self) -> None:
        r"""Move the key encoder and head towards the query ones (EMA)."""
        update_momentum(self.encoder, self.key_encoder, self.momentum)
        update_momentum(self.head, self.key_head, self.momentum)

    @torch.no_grad()
    def predict(self, batch: Any) -> Tensor:
        r"""Class logits of the batch."""
        return self.classifier(encode_graphs(self.encoder, batch, nodes=False).graph)

    def embed(self, batch: Any) -> Tensor:
        r"""Graph embeddings of the query encoder."""
        check_features(batch)
        return encode_graphs(self.encoder, batch, nodes=False).graph.detach()
