r"""Contrastive and negative-free methods, each assembled from injected parts.

Every method is an :class:`torch.nn.Module` with ``forward(batch) -> loss`` (or
:class:`LossParts`) and ``embed(batch) -> Tensor`` for evaluation.
"""

from gcl.methods.barlow import GraphBarlowTwins, GraphLevelBarlowTwins
from gcl.methods.base import LossParts, embed_dataset, encode_graphs, encode_views
from gcl.methods.grace import GRACE
from gcl.methods.graphcl import GraphCL
from gcl.methods.lcgnn import LCGNN
from gcl.methods.registry import (
    BUILDERS,
    LEVEL,
    SUPERVISED,
    build_method,
    check_method_options,
    make_augmentation,
)
from gcl.methods.supervised import SupervisedClassifier

__all__ = [
    "BUILDERS",
    "GRACE",
    "LCGNN",
    "LEVEL",
    "SUPERVISED",
    "GraphBarlowTwins",
    "GraphCL",
    "GraphLevelBarlowTwins",
    "LossParts",
    "SupervisedClassifier",
    "build_method",
    "check_method_options",
    "embed_dataset",
    "encode_graphs",
    "encode_views",
    "make_augmentation",
]
