r"""Plain supervised graph classification: the baseline of the LCGNN and HGP-SL tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gcl.methods.base import check_features, cross_entropy, encode_graphs, graph_labels


class SupervisedClassifier(nn.Module):
    r"""Encoder + classifier trained with cross-entropy.

    Args:
        encoder (nn.Module): Graph encoder returning an ``EncoderOutput``.
        classifier (nn.Module): Maps graph embeddings to class logits.
    """

    def __init__(self, encoder: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.classifier = classifier

    def view_augmentations(self) -> tuple[()]:
        r"""No views: with :class:`gcl.data.ViewPrefetcher` only the collation
        moves to the background workers."""
        return ()

    def forward(self, batch: Any, views: Sequence[Any] | None = None) -> Tensor:
        r"""The cross-entropy of ``batch`` (``views`` must be empty: supervised
        training draws none)."""
        if views:
            raise ValueError(f"supervised training takes no views (got {len(views)})")
        check_features(batch)
        labels = graph_labels(batch, "supervised training")
        # averaged over every rank's graphs
        return cross_entropy(self.classifier(encode_graphs(self.encoder, batch, nodes=False).graph), labels)

    @torch.no_grad()
    def predict(self, batch: Any) -> Tensor:
        r"""Class logits of the batch."""
        return self.classifier(encode_graphs(self.encoder, batch, nodes=False).graph)

    def embed(self, batch: Any) -> Tensor:
        r"""Graph embeddings of the encoder."""
        check_features(batch)
        return encode_graphs(self.encoder, batch, nodes=False).graph.detach()
