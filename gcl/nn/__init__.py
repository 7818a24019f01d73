r"""Encoders, pooling, projection heads and momentum copies.

- :class:`GIN` — the graph encoder of InfoGraph/GraphCL (and OGB molecules); its
  neighbourhood sum is :func:`gcl.nn.aggregate.gin_aggregate` (sparse products over an
  :class:`gcl.nn.aggregate.Adjacency`, usable in other models).
- :class:`GCN` — the node encoder of GRACE, GCA and Graph Barlow Twins; its
  normalised sum is :func:`gcl.nn.aggregate.neighbour_sum` over a weighted
  :class:`gcl.nn.aggregate.Adjacency`.
- :class:`HGPSL` with :class:`HGPSLPool` and :func:`sparsemax` — hierarchical
  pooling with structure learning.
- :class:`ProjectionHead`, :class:`Classifier` — MLP heads.
- :func:`momentum_copy` — frozen copy for momentum encoders.
"""

from gcl.nn._utils import EncoderOutput
from gcl.nn.gcn import GCN
from gcl.nn.gin import GIN
from gcl.nn.heads import Classifier, ProjectionHead
from gcl.nn.hgpsl import HGPSL
from gcl.nn.momentum import momentum_copy
from gcl.nn.pool import HGPSLPool, PoolOutput
from gcl.nn.sparsemax import sparsemax

__all__ = [
    "GCN",
    "GIN",
    "HGPSL",
    "Classifier",
    "EncoderOutput",
    "HGPSLPool",
    "PoolOutput",
    "ProjectionHead",
    "momentum_copy",
    "sparsemax",
]
