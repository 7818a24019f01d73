r"""Centrality-adaptive augmentations of `"Graph Contrastive Learning with
Adaptive Augmentation" <https://arxiv.org/abs/2010.14945>`_ (GCA).

Unimportant edges and feature dimensions, as measured by a node centrality
:math:`\varphi`, are dropped with higher probability. All statistics
(:math:`s_{\max}`, :math:`\mu_s`) are computed **per graph**, so a collated
batch gives every graph the probabilities it would get alone.

Node centralities are taken from the caller (``node_centrality=``, e.g. stored
once per dataset by :class:`~gcl.augment.AddCentrality`) or computed on the
fly with :mod:`gcl.augment.centrality`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from gcl._checks import check_generator, check_switch
from gcl.augment._utils import (
    check_batch,
    check_choice,
    check_feature_matrix,
    check_graph,
    check_probability,
    check_real,
    count_per_graph,
    draw_seed,
    graph_sizes,
    log_or_neg_inf,
    mask_indices,
    node_graph,
    on_host,
    symmetric_uniform,
    take_edges,
)
from gcl.augment.centrality import (
    CENTRALITY_KEYS,
    CentralityKind,
    node_centrality,
)
from gcl.augment.functional import Augmented, MaskedFeatures, keeps_index_dtype

__all__ = [
    "adaptive_drop_edges",
    "adaptive_mask_features",
    "edge_drop_probabilities",
    "feature_mask_probabilities",
]

EdgeAggregation = Literal["target", "source", "mean"]

#: Added to eigenvector centralities before their logarithm, as GCA's code does.
EIGENVECTOR_FLOOR = 1e-8
#: Steps of GCA's PageRank (centrality ``'pagerank-gca'``) for the edge weights: GCA's
#: ``pr_drop_weights(edge_index, aggr='sink', k=200)``.
GCA_EDGE_PAGERANK_STEPS = 200
#: Steps of GCA's PageRank for the feature weights: GCA's ``compute_pr(edge_index)``, whose
#: default is 10 (also :func:`~gcl.augment.centrality.truncated_pagerank`'s default).
GCA_FEATURE_PAGERANK_STEPS = 10
#: Attribute where :meth:`AddCentrality.adaptive('pagerank-gca')
#: <gcl.augment.AddCentrality.adaptive>` stores the 200-step PageRank of GCA's edge weights,
#: and where :class:`~gcl.augment.AdaptiveDropEdges` looks for it first; the 10-step one of
#: the feature weights goes under ``CENTRALITY_KEYS['pagerank-gca']``.
GCA_EDGE_PAGERANK_KEY = "edge_truncated_pagerank"


def gca_centrality_options(kind: str, *, for_edges: bool) -> dict[str, Any]:
    r"""The options of :func:`~gcl.augment.centrality.node_centrality` with which the
    adaptive augmentations compute ``kind`` for GCA's edge weights (``for_edges``) or
    feature weights, as GCA's code computes it: the raw degree with a stored self loop
    counted once (per-graph statistics make the scale irrelevant unless
    ``log_offset != 0``, where the raw degree is GCA's); the exact eigenvector (GCA's
    ``eigenvector_centrality_numpy``: the power iteration stops with leftovers, up to 0.2,
    where the eigenvector has 0, which the logarithm keeps); GCA's PageRank with 200 steps
    for edges and 10 for features; networkx's PageRank as it is."""
    if kind == "degree":
        return {"normalized": False, "self_loop_weight": 1}
    if kind == "eigenvector":
        return {"method": "exact"}
    if kind == "pagerank-gca":
        return {"iterations": GCA_EDGE_PAGERANK_STEPS if for_edges else GCA_FEATURE_PAGERANK_STEPS}
    return {}


def check_node_centrality(phi: Tensor, num_nodes: int, name: str = "node_centrality") -> Tensor:
    r"""``phi`` detached (the probabilities only steer random draws, and carry no
    gradient), or :class:`ValueError` unless it holds one finite value :math:`\ge 0`
    per node: a negative or NaN centrality would otherwise get the log-score of 0
    (the cap :math:`p_\tau`) unnoticed. ``name`` says where it came from (e.g.
    ``"node_centrality (data.pagerank)"``). One pass over the nodes."""
    if not isinstance(phi, Tensor) or phi.dim() != 1 or phi.numel() != num_nodes:
        found = list(phi.shape) if isinstance(phi, Tensor) else type(phi).__name__
        raise ValueError(f"{name} must have one value per node ({num_nodes}) (got shape {found})")
    phi = phi.detach()
    if phi.numel() == 0 or phi.dtype == torch.bool:
        return phi
    if on_host(phi) and phi.dtype in (torch.float64, torch.float32, torch.int64, torch.int32):
        values = phi.numpy()  # (NumPy costs less per call on the CPU)
        # (NaN fails both comparisons)
        valid = bool(np.minimum.reduce(values) >= 0) and bool(np.maximum.reduce(values) < np.inf)
    else:
        low, high = torch.aminmax(phi)
        valid = bool((low >= 0) & (high < float("inf")))
    if not valid:
        values_t = phi.to(torch.float64)
        problems = []
        nan = int(torch.isnan(values_t).sum())
        infinite = int(torch.isinf(values_t).sum())
        negative = values_t[values_t < 0]
        if nan:
            problems.append(f"NaN at {nan}")
        if infinite:
            problems.append(f"infinity at {infinite}")
        if negative.numel():
            problems.append(f"negative values (down to {float(negative.min()):.3g}) at {negative.numel()}")
        raise ValueError(
            f"{name} must hold finite values >= 0 (got {', '.join(problems)} of {num_nodes} nodes)"
        )
    return phi


def _centrality(
    kind: CentralityKind,
    edge_index: Tensor,
    num_nodes: int,
    batch: Tensor | None,
    num_graphs: int | None,
    given: Tensor | None,
    *,
    for_edges: bool,
) -> Tensor:
    r"""The node centrality :math:`\varphi` of GCA's edge weights (``for_edges``) or
    feature weights: ``given`` (checked by :func:`check_node_centrality`), or computed as
    GCA's code computes it."""
    check_choice("centrality", kind, tuple(CENTRALITY_KEYS))
    if given is not None:
        phi = check_node_centrality(given, num_nodes)
    else:
        phi = node_centrality(kind, edge_index, num_nodes, batch, num_graphs=num_graphs,
                              **gca_centrality_options(kind, for_edges=for_edges))
    if kind == "eigenvector":
        # GCA's floor (evc.where(evc > 0, 0) + 1e-8): the nodes outside the components that
        # carry the leading eigenvalue have centrality 0 (as round-off, of either sign), which
        # the floor turns into one finite log-score; a stored power-iteration value gets it too.
        phi = phi.clamp_min(0.0) + EIGENVECTOR_FLOOR
    return phi


def _normalized_weights(scores: Tensor, group: Tensor, num_groups: int) -> Tensor:
    r""":math:`(s_{\max} - s) / (s_{\max} - \mu_s)` with the maximum and mean taken
    over the finite scores of each group.

    A score of :math:`-\infty` (zero centrality) gives :math:`+\infty` (the
    probability is then capped); a group whose finite scores are all equal
    gives weight 1, the limit GCA's mean normalisation implies.
    """
    if on_host(scores) and on_host(group) and scores.dtype == torch.float64:
        return torch.from_numpy(_normalized_weights_host(scores.numpy(), group.numpy(), num_groups))
    finite = torch.isfinite(scores)
    clean = torch.where(finite, scores, torch.zeros_like(scores))
    neg_inf = torch.full((num_groups,), float("-inf"), dtype=scores.dtype, device=scores.device)
    s_max = neg_inf.scatter_reduce(
        0, group, torch.where(finite, scores, torch.full_like(scores, float("-inf"))), reduce="amax"
    )
    total = torch.zeros(num_groups, dtype=scores.dtype, device=scores.device).index_add_(
        0, group, clean
    )
    count = torch.zeros(num_groups, dtype=scores.dtype, device=scores.device).index_add_(
        0, group, finite.to(scores.dtype)
    )
    mean = total / count.clamp_min(1)
    spread = (s_max - mean)[group]
    top = s_max[group]
    flat = spread <= 1e-12 * top.abs().clamp_min(1.0)
    weight = (top - scores) / torch.where(flat, torch.ones_like(spread), spread)
    weight = torch.where(flat & finite, torch.ones_like(weight), weight)
    return torch.where(finite, weight, torch.full_like(weight, float("inf")))


def _normalized_weights_host(scores: np.ndarray, group: np.ndarray, num_groups: int) -> np.ndarray:
    r""":func:`_normalized_weights` in NumPy (float64 scores): the same operations in the
    same order, so the same values, with fewer and cheaper calls; the group maxima by one
    ``reduceat`` over the runs when the items come grouped (edges of a collated batch)."""
    finite = np.isfinite(scores)
    clean = np.where(finite, scores, 0.0)
    masked = np.where(finite, scores, -np.inf)
    s_max = np.full(num_groups, -np.inf)
    if group.size and bool((group[1:] >= group[:-1]).all()):
        starts = group.searchsorted(np.arange(num_groups))
        nonempty = np.flatnonzero(np.diff(np.append(starts, group.size)) > 0)
        s_max[nonempty] = np.maximum.reduceat(masked, starts[nonempty])
    elif group.size:
        np.maximum.at(s_max, group, masked)
    # (bincount adds each group's values in item order, as index_add_ does)
    total = np.bincount(group, weights=clean, minlength=num_groups)
    count = np.bincount(group, weights=finite.astype(np.float64), minlength=num_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / np.maximum(count, 1.0)
        spread = (s_max - mean).take(group)
        top = s_max.take(group)
        flat = spread <= 1e-12 * np.maximum(np.abs(top), 1.0)
        weight = (top - scores) / np.where(flat, 1.0, spread)
    weight = np.where(flat & finite, 1.0, weight)
    return np.where(finite, weight, np.inf)


def _capped(weights: Tensor, p: float, threshold: float) -> Tensor:
    r""":math:`\min(w p, p_\tau)`; with :math:`p = 0` nothing is dropped, even
    where :math:`w = \infty`."""
    if p == 0.0:
        return torch.zeros(weights.shape, dtype=torch.get_default_dtype(), device=weights.device)
    return torch.clamp(weights * p, max=threshold).to(torch.get_default_dtype())


def edge_drop_probabilities(
    edge_index: Tensor,
    num_nodes: int,
    batch: Tensor | None = None,
    *,
    p: float = 0.3,
    threshold: float = 0.7,
    centrality: CentralityKind = "degree",
    node_centrality: Tensor | None = None,
    aggr: EdgeAggregation = "target",
    log_offset: float = 0.0,
    num_graphs: int | None = None,
) -> Tensor:
    r"""Edge drop probabilities of `GCA <https://arxiv.org/abs/2010.14945>`_,
    Eq. (3)–(4), computed per graph:

    .. math::
        s_e = \log \varphi_e, \qquad
        p_e = \min\Bigl(\frac{s_{\max} - s_e}{s_{\max} - \mu_s}\, p,\;
        p_\tau\Bigr),

    where :math:`\varphi_e` is the edge centrality (``aggr='target'``: the
    centrality of the edge's target node, as GCA's code does for all three
    measures; ``'source'``; ``'mean'``: mean of both endpoints' log-scores) and
    :math:`s_{\max}, \mu_s` are the maximum and mean of :math:`s` over the
    edges of the same graph. Edges whose node centrality is 0 get :math:`p_\tau`
    and are left out of :math:`s_{\max}, \mu_s`; a graph whose scores are all
    equal gets :math:`p` on every edge; ``p=0`` gives all zeros.

    Without ``node_centrality``, :math:`\varphi` is computed per graph as GCA's
    code computes it:

    - ``'degree'``: the in-degree of the stored edges (edges :math:`(u, v)`
      counted at :math:`v`), parallel edges with their multiplicity and a self
      loop once. GCA's code counts the degree of the symmetrised, coalesced
      graph (``degree(to_undirected(edge_index)[1])``), the same on undirected
      graphs without parallel edges (every dataset gcl ships); apply PyG's
      :class:`~torch_geometric.transforms.ToUndirected` first (which also
      merges parallel edges) to get it for directed or multi-edge input.
    - ``'eigenvector'``: the exact leading eigenvector
      (:func:`~gcl.augment.centrality.eigenvector_centrality` with
      ``method='exact'``, as GCA's ``eigenvector_centrality_numpy``), then
      GCA's floor :math:`\max(\varphi, 0) + 10^{-8}` (:data:`EIGENVECTOR_FLOOR`),
      which gives the nodes outside the components that carry the leading
      eigenvalue, whose centrality is 0, one finite log-score. A given
      ``node_centrality`` gets the floor too.
    - ``'pagerank-gca'``: :func:`~gcl.augment.centrality.truncated_pagerank`
      with 200 steps (:data:`GCA_EDGE_PAGERANK_STEPS`, GCA's
      ``pr_drop_weights(..., k=200)``; its feature weights take 10).
    - ``'pagerank'``: :func:`~gcl.augment.centrality.pagerank` (networkx's).

    Args:
        edge_index (Tensor): integer edge indices ``[2, E]``.
        num_nodes (int): number of nodes :math:`N`.
        batch (Tensor, optional): graph index of every node ``[N]``.
        p (float): overall drop rate :math:`p_e` in :math:`[0, 1]` (default: :obj:`0.3`).
        threshold (float): cut-off :math:`p_\tau` in :math:`[0, 1]` (default: :obj:`0.7`).
        centrality (str): ``'degree'``, ``'pagerank'``, ``'eigenvector'`` or
            ``'pagerank-gca'`` (GCA's PageRank, :func:`~gcl.augment.centrality.truncated_pagerank`)
            (default: ``'degree'``); with ``node_centrality`` given, what it holds.
        node_centrality (Tensor, optional): precomputed :math:`\varphi`, ``[N]``,
            finite and :math:`\ge 0`, used as given (for ``'pagerank-gca'``, GCA's
            edge weights take ``truncated_pagerank(..., iterations=200)``).
        aggr (str): ``'target'``, ``'source'`` or ``'mean'`` (default: ``'target'``).
        log_offset (float): use :math:`\log(\varphi + \text{offset})`; GCA's
            later code uses ``1.0``, the paper and its first code ``0.0``
            (default: :obj:`0.0`).
        num_graphs (int, optional): number of graphs.

    Raises:
        ValueError: If ``node_centrality`` does not hold one finite value
            :math:`\ge 0` per node (an exact 0 gets :math:`p_\tau`).

    Shapes:
        - **output:** :math:`[E]`
    """
    check_probability("p", p)
    check_probability("threshold", threshold)
    check_choice("aggr", aggr, ("target", "source", "mean"))
    log_offset = check_real("log_offset", log_offset, minimum=0.0)
    x_stub = torch.empty((num_nodes, 0), device=edge_index.device)
    edge_index, _ = check_graph(x_stub, edge_index, batch, None, num_graphs)
    phi = _centrality(centrality, edge_index, num_nodes, batch, num_graphs, node_centrality, for_edges=True)
    log_phi = log_or_neg_inf(phi.to(torch.float64), log_offset)
    row, col = edge_index[0], edge_index[1]
    if aggr == "target":
        scores = log_phi.index_select(0, col)
    elif aggr == "source":
        scores = log_phi.index_select(0, row)
    else:
        scores = 0.5 * (log_phi.index_select(0, row) + log_phi.index_select(0, col))
    sizes = graph_sizes(batch, num_nodes, num_graphs, edge_index.device)
    edge_graph = node_graph(batch, num_nodes, edge_index.device).index_select(0, row)
    weights = _normalized_weights(scores, edge_graph, sizes.numel())
    return _capped(weights, p, threshold)


def feature_mask_probabilities(
    x: Tensor,
    node_centrality: Tensor,
    batch: Tensor | None = None,
    *,
    p: float = 0.3,
    threshold: float = 0.7,
    dense: bool = False,
    per_graph: bool = True,
    log_offset: float = 0.0,
    num_graphs: int | None = None,
) -> Tensor:
    r"""Feature masking probabilities of `GCA <https://arxiv.org/abs/2010.14945>`_,
    Eq. (5)–(6):

    .. math::
        w_i = \sum_{u} \tilde{x}_{ui}\, \varphi(u),\qquad s_i = \log w_i,\qquad
        p_i = \min\Bigl(\frac{s_{\max} - s_i}{s_{\max} - \mu_s}\, p,\; p_\tau\Bigr),

    with :math:`\tilde{x}_{ui} = \mathbb{1}[x_{ui} \neq 0]` for sparse / one-hot
    features (GCA's ``feature_drop_weights``) or :math:`|x_{ui}|` for dense ones
    (``dense=True``, GCA's ``feature_drop_weights_dense``). With ``per_graph``
    the sum runs over the nodes of each graph and every graph gets its own
    probabilities; otherwise over the whole batch. Dimensions with
    :math:`w_i = 0` (e.g. all-zero columns) get :math:`p_\tau` and are left out
    of :math:`s_{\max}, \mu_s`; they hold no information to mask.
    A graph (without ``per_graph``: the batch) whose centralities are all zero,
    such as the degrees of an edgeless graph or of a single node, counts them
    as equal: its weights are those of :math:`\varphi = 1`, so they follow how
    often each dimension occurs, as for any constant centrality (otherwise
    every dimension would get :math:`p_\tau`). ``p=0`` gives all zeros.
    The probabilities are computed from detached values (features out of a
    layer are taken) and carry no gradient: they only steer random draws.

    Args:
        x (Tensor): node features ``[N, F]``.
        node_centrality (Tensor): :math:`\varphi`, ``[N]``, finite and :math:`\ge 0`.
        batch (Tensor, optional): graph index of every node ``[N]``.
        p (float): overall masking rate in :math:`[0, 1]` (default: :obj:`0.3`).
        threshold (float): cut-off :math:`p_\tau` (default: :obj:`0.7`).
        dense (bool): weight by :math:`|x_{ui}|` instead of
            :math:`\mathbb{1}[x_{ui} \neq 0]` (default: :obj:`False`).
        per_graph (bool): one probability vector per graph (default: :obj:`True`).
        log_offset (float): use :math:`\log(w_i + \text{offset})` (default: :obj:`0.0`).
        num_graphs (int, optional): number of graphs.

    Raises:
        ValueError: If ``node_centrality`` does not hold one finite value
            :math:`\ge 0` per node.

    Shapes:
        - **output:** :math:`[G, F]` with ``per_graph``, else :math:`[F]`.
    """
    dense = check_switch("dense", dense)
    per_graph = check_switch("per_graph", per_graph)
    check_probability("p", p)
    check_probability("threshold", threshold)
    log_offset = check_real("log_offset", log_offset, minimum=0.0)
    check_feature_matrix(x)
    check_batch(batch, x.size(0), num_graphs)
    phi = check_node_centrality(node_centrality, x.size(0))
    return _feature_probabilities(x, phi, batch, p, threshold, dense, per_graph, log_offset, num_graphs)


def _feature_probabilities(
    x: Tensor,
    phi: Tensor,
    batch: Tensor | None,
    p: float,
    threshold: float,
    dense: bool,
    per_graph: bool,
    log_offset: float,
    num_graphs: int | None,
) -> Tensor:
    r""":func:`feature_mask_probabilities` of checked arguments."""
    num_nodes, num_features = x.shape
    dtype = torch.float64
    phi = phi.to(dtype)
    # weights of random draws: no gradient (x may be the output of a layer)
    x = x.detach()
    present = x.to(dtype).abs() if dense else (x != 0).to(dtype)  # (bool and integer features too)
    if per_graph:
        sizes = graph_sizes(batch, num_nodes, num_graphs, x.device)
        num_groups = sizes.numel()
        graph = node_graph(batch, num_nodes, x.device)
        # all-zero centralities (the degrees of an edgeless graph) carry no ranking: equal weights
        flat = count_per_graph(graph, phi != 0, num_groups) == 0
        phi = torch.where(flat.index_select(0, graph), torch.ones_like(phi), phi)
        totals = torch.zeros((num_groups, num_features), dtype=dtype, device=x.device)
        totals.index_add_(0, graph, present * phi.unsqueeze(1))
    else:
        num_groups = 1
        phi = torch.where((phi != 0).any(), phi, torch.ones_like(phi))
        totals = (present * phi.unsqueeze(1)).sum(0, keepdim=True)
    scores = log_or_neg_inf(totals, log_offset).reshape(-1)
    group = torch.arange(num_groups, device=x.device).repeat_interleave(num_features)
    weights = _normalized_weights(scores, group, num_groups).view(num_groups, num_features)
    probabilities = _capped(weights, p, threshold)
    return probabilities if per_graph else probabilities[0]


@keeps_index_dtype
def adaptive_drop_edges(
    x: Tensor,
    edge_index: Tensor,
    batch: Tensor | None = None,
    *,
    p: float = 0.3,
    threshold: float = 0.7,
    centrality: CentralityKind = "degree",
    node_centrality: Tensor | None = None,
    aggr: EdgeAggregation = "target",
    log_offset: float = 0.0,
    force_undirected: bool = False,
    edge_attr: Tensor | None = None,
    generator: torch.Generator | None = None,
    num_graphs: int | None = None,
) -> Augmented:
    r"""Centrality-adaptive edge dropping of `GCA
    <https://arxiv.org/abs/2010.14945>`_: every edge is removed independently
    with the probability :math:`p_e` of :func:`edge_drop_probabilities`,

    .. math::
        \Pr[e \in \tilde{\mathcal{E}}] = 1 - p_e .

    As in GCA, the two directions of an undirected edge are decided
    independently by default. ``force_undirected=True`` takes one decision per
    node pair, which needs a symmetric score: ``aggr='mean'``, the mean of the
    two log-centralities (the paper writes the log of their mean; GCA's code
    takes the target's centrality, ``aggr='target'``, the default, on every
    graph).

    Args:
        x (Tensor): node features ``[N, F]`` (only its size is used).
        edge_index (Tensor): integer edge indices ``[2, E]``.
        batch (Tensor, optional): graph index of every node ``[N]``.
        p, threshold, centrality, node_centrality, aggr, log_offset: see
            :func:`edge_drop_probabilities` (defaults: ``0.3``, ``0.7``,
            ``'degree'``, :obj:`None`, ``'target'``, ``0.0``).
        force_undirected (bool): one decision per node pair (default: :obj:`False`).
        edge_attr (Tensor, optional): edge features ``[E, D]``, filtered alike.
        generator (torch.Generator, optional): source of randomness.
        num_graphs (int, optional): number of graphs.

    Shapes:
        - **output:** :class:`~gcl.augment.functional.Augmented` with
          ``edge_mask`` :math:`[E]` and ``node_mask`` :obj:`None`.
    """
    force_undirected = check_switch("force_undirected", force_undirected)
    check_probability("p", p)
    check_choice("centrality", centrality, tuple(CENTRALITY_KEYS))
    check_generator("generator", generator)
    checked, num_nodes = check_graph(x, edge_index, batch, edge_attr, num_graphs)
    if p == 0.0:
        ones = torch.ones(edge_index.size(1), dtype=torch.bool, device=edge_index.device)
        return Augmented(x, edge_index, batch, edge_attr, None, ones)  # the input's tensors
    edge_index = checked
    if force_undirected and aggr != "mean":
        raise ValueError(
            f"force_undirected=True needs the symmetric aggr='mean' (got aggr={aggr!r})"
        )
    probabilities = edge_drop_probabilities(
        edge_index,
        num_nodes,
        batch,
        p=p,
        threshold=threshold,
        centrality=centrality,
        node_centrality=node_centrality,
        aggr=aggr,
        log_offset=log_offset,
        num_graphs=num_graphs,
    )
    device = edge_index.device
    if force_undirected:
        uniform = symmetric_uniform(edge_index[0], edge_index[1], draw_seed(generator, device))
    else:
        uniform = torch.rand(
            edge_index.size(1), generator=generator, device=device, dtype=torch.float64
        )
    edge_mask = uniform >= probabilities.to(torch.float64)
    kept = mask_indices(edge_mask)
    return Augmented(
        x,
        take_edges(edge_index, kept),
        batch,
        None if edge_attr is None else edge_attr.index_select(0, kept),
        None,
        edge_mask,
    )


def adaptive_mask_features(
    x: Tensor,
    edge_index: Tensor,
    batch: Tensor | None = None,
    *,
    p: float = 0.3,
    threshold: float = 0.7,
    centrality: CentralityKind = "degree",
    node_centrality: Tensor | None = None,
    dense: bool = False,
    per_graph: bool = True,
    log_offset: float = 0.0,
    generator: torch.Generator | None = None,
    num_graphs: int | None = None,
) -> MaskedFeatures:
    r"""Centrality-adaptive feature masking of `GCA
    <https://arxiv.org/abs/2010.14945>`_: feature dimension :math:`i` is set
    to zero for all nodes of a graph with the probability :math:`p_i` of
    :func:`feature_mask_probabilities`,

    .. math::
        \tilde{\mathbf{X}} = \mathbf{X} \odot (\mathbf{1}\,\mathbf{m}^\top),
        \qquad m_i \sim \operatorname{Bernoulli}(1 - p_i),

    so dimensions that rarely occur on central nodes are zeroed most often
    (the "unimportant-dimension zeroing" also used with adaptive Barlow
    Twins). With ``per_graph`` every graph draws its own mask.

    Args:
        x (Tensor): node features ``[N, F]``.
        edge_index (Tensor): integer edge indices ``[2, E]`` (for the centrality).
        batch (Tensor, optional): graph index of every node ``[N]``.
        p, threshold, dense, per_graph, log_offset: see
            :func:`feature_mask_probabilities`.
        centrality (str): ``'degree'``, ``'pagerank'``, ``'eigenvector'`` or
            ``'pagerank-gca'`` (GCA's PageRank, :func:`~gcl.augment.centrality.truncated_pagerank`)
            (default: ``'degree'``), computed as for :func:`edge_drop_probabilities`
            except ``'pagerank-gca'``, which takes 10 steps here
            (:data:`GCA_FEATURE_PAGERANK_STEPS`, GCA's ``compute_pr(edge_index)``).
        node_centrality (Tensor, optional): precomputed :math:`\varphi`, ``[N]``,
            finite and :math:`\ge 0`, used as given (eigenvector centralities get
            :data:`EIGENVECTOR_FLOOR`).
        generator (torch.Generator, optional): source of randomness.
        num_graphs (int, optional): number of graphs.

    Shapes:
        - **output:** :class:`~gcl.augment.functional.MaskedFeatures` with the
          column mask ``[G, F]`` (``per_graph``) or ``[F]``.
    """
    dense = check_switch("dense", dense)
    per_graph = check_switch("per_graph", per_graph)
    check_probability("p", p)
    check_generator("generator", generator)
    check_feature_matrix(x)
    edge_index, num_nodes = check_graph(x, edge_index, batch, None, num_graphs)
    if p == 0.0:
        check_choice("centrality", centrality, tuple(CENTRALITY_KEYS))
        num_groups = graph_sizes(batch, num_nodes, num_graphs, x.device).numel() if per_graph else 0
        shape = (num_groups, x.size(1)) if per_graph else (x.size(1),)
        return MaskedFeatures(x, torch.zeros(shape, dtype=torch.bool, device=x.device))
    check_probability("threshold", threshold)
    log_offset = check_real("log_offset", log_offset, minimum=0.0)
    phi = _centrality(centrality, edge_index, num_nodes, batch, num_graphs, node_centrality, for_edges=False)
    probabilities = _feature_probabilities(x, phi, batch, p, threshold, dense, per_graph, log_offset, num_graphs)
    mask = torch.rand(probabilities.shape, generator=generator, device=x.device) < probabilities
    entry_mask = mask[node_graph(batch, num_nodes, x.device)] if per_graph else mask.unsqueeze(0)
    return MaskedFeatures(x.masked_fill(entry_mask, 0), mask)
