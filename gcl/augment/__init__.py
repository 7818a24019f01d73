r"""Graph augmentations for contrastive learning.

Stochastic augmentations (node dropping, edge perturbation, attribute masking,
subgraphs) and centrality-adaptive ones (GCA), vectorised on collated batches
and composable. Three layers, each usable alone:

- :mod:`gcl.augment.functional`: pure tensor functions returning
  :class:`~gcl.augment.functional.Augmented` (new tensors plus node/edge masks);
- :mod:`gcl.augment.centrality` and :mod:`gcl.augment.adaptive`: batched node
  centralities and GCA's adaptive probabilities;
- :mod:`gcl.augment.transforms`: PyG transforms for ``Data`` and ``Batch``,
  with :class:`Compose`, :class:`RandomChoice` and :class:`MultiView`.
"""

from gcl.augment.adaptive import (
    adaptive_drop_edges,
    adaptive_mask_features,
    edge_drop_probabilities,
    feature_mask_probabilities,
)
from gcl.augment.centrality import (
    CENTRALITY_KEYS,
    degree_centrality,
    edge_centrality,
    eigenvector_centrality,
    node_centrality,
    pagerank,
    truncated_pagerank,
)
from gcl.augment.functional import (
    Augmented,
    MaskedFeatures,
    drop_edges,
    drop_nodes,
    mask_features,
    perturb_edges,
    random_walk_subgraph,
)
from gcl.augment.transforms import (
    AdaptiveDropEdges,
    AdaptiveMaskFeatures,
    AddCentrality,
    AugmentTransform,
    Compose,
    DropEdges,
    DropNodes,
    Identity,
    MaskFeatures,
    MultiView,
    PerturbEdges,
    RandomChoice,
    RandomWalkSubgraph,
    gca_augmentation,
)

__all__ = [
    "CENTRALITY_KEYS",
    "AdaptiveDropEdges",
    "AdaptiveMaskFeatures",
    "AddCentrality",
    "AugmentTransform",
    "Augmented",
    "Compose",
    "DropEdges",
    "DropNodes",
    "Identity",
    "MaskFeatures",
    "MaskedFeatures",
    "MultiView",
    "PerturbEdges",
    "RandomChoice",
    "RandomWalkSubgraph",
    "adaptive_drop_edges",
    "adaptive_mask_features",
    "degree_centrality",
    "drop_edges",
    "drop_nodes",
    "edge_centrality",
    "edge_drop_probabilities",
    "eigenvector_centrality",
    "feature_mask_probabilities",
    "gca_augmentation",
    "mask_features",
    "node_centrality",
    "pagerank",
    "perturb_edges",
    "random_walk_subgraph",
    "truncated_pagerank",
]
