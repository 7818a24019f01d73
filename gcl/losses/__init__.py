r"""The loss core of gcl: contrastive, redundancy-reduction and metric losses, memories,
and the collectives that keep them exact under :mod:`torch.distributed`.

Modality-free: this package imports :mod:`torch` only, so image, text and video code
can use it as well as graph code. Each loss is an :class:`torch.nn.Module` whose
``forward`` returns a scalar (lower is better), with a functional twin in
:mod:`gcl.losses.functional`.
"""

from __future__ import annotations

from gcl.losses import functional
from gcl.losses._checks import NonFiniteError, set_finite_check
from gcl.losses.barlow_twins import BarlowTwinsLoss
from gcl.losses.cluster import KMeansResult, estimate_concentration, kmeans
from gcl.losses.debiased import DebiasedContrastiveLoss, HardNegativeLoss
from gcl.losses.distributed import (
    all_reduce_mean,
    all_reduce_sum,
    gather_no_grad,
    gather_with_grad,
    gather_with_offset,
    global_mean,
    is_distributed,
    rank,
    world_size,
)
from gcl.losses.functional import MixedBatch, cross_correlation, imix_mix, mochi_mix
from gcl.losses.infonce import InfoNCE, NTXentLoss
from gcl.losses.memory import MemoryBank, MemoryQueue, QueueContents, update_momentum
from gcl.losses.metric import ContrastiveLoss, NCELoss, NPairLoss, TripletLoss
from gcl.losses.mixing import IMixLoss, MoCHiLoss
from gcl.losses.multiview import MultiviewContrastiveLoss
from gcl.losses.proto import ProtoNCELoss
from gcl.losses.supervised import LabelContrastiveLoss, SupConLoss

__all__ = [
    "BarlowTwinsLoss",
    "ContrastiveLoss",
    "DebiasedContrastiveLoss",
    "HardNegativeLoss",
    "IMixLoss",
    "InfoNCE",
    "KMeansResult",
    "LabelContrastiveLoss",
    "MemoryBank",
    "MemoryQueue",
    "MixedBatch",
    "MoCHiLoss",
    "MultiviewContrastiveLoss",
    "NCELoss",
    "NPairLoss",
    "NTXentLoss",
    "NonFiniteError",
    "ProtoNCELoss",
    "QueueContents",
    "SupConLoss",
    "TripletLoss",
    "all_reduce_mean",
    "all_reduce_sum",
    "cross_correlation",
    "estimate_concentration",
    "functional",
    "gather_no_grad",
    "gather_with_grad",
    "gather_with_offset",
    "global_mean",
    "imix_mix",
    "is_distributed",
    "kmeans",
    "mochi_mix",
    "rank",
    "set_finite_check",
    "update_momentum",
    "world_size",
]
