r"""Stochastic graph augmentations as pure, batch-aware tensor functions.

Every function takes the tensors of a (collated) graph batch, ``x`` with one row
per node, ``edge_index`` of shape ``[2, E]`` and the optional ``batch`` vector
that maps nodes to graphs, and returns new tensors. Work is vectorised over the
whole batch: each graph is augmented independently, but there is no Python loop
over graphs. Randomness comes from ``torch`` only; pass a
:class:`torch.Generator` for reproducible draws.

The graph augmentations return an :class:`Augmented` tuple that carries, next to
the new tensors, the masks needed to keep other node- or edge-level attributes
consistent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, Literal, NamedTuple, ParamSpec, TypeVar

import numpy as np
import torch
from torch import Tensor

from gcl._checks import check_generator, check_switch
from gcl.augment._utils import (
    HostGroups,
    Reach,
    argsort_distinct,
    check_batch,
    check_choice,
    check_feature_matrix,
    check_graph,
    check_probability,
    check_real,
    count_per_graph,
    counter_hash,
    counter_hash_host,
    draw_seed,
    edges_by_source,
    exclusive_cumsum,
    graph_sizes,
    is_integer,
    is_sorted,
    is_undirected_by_code,
    is_undirected_by_unit_code,
    mask_indices,
    next_power_of_two,
    node_graph,
    nodes_in_graph_order,
    on_host,
    pair_hash,
    pair_hash_host,
    random_subset,
    round_half_even,
    salted_hash,
    salted_hash_host,
    select_edges,
    smallest_per_group_host,
    take_edges,
    to_uniform,
    unordered_pair_hash,
    unordered_pair_hash_host,
)

__all__ = [
    "Augmented",
    "MaskedFeatures",
    "drop_edges",
    "drop_nodes",
    "mask_features",
    "perturb_edges",
    "random_walk_subgraph",
]


class Augmented(NamedTuple):
    r"""Output of a graph augmentation.

    Attributes:
        x (Tensor): node features of the kept nodes, ``[N', F]``.
        edge_index (Tensor): edges in the new node numbering, ``[2, E']``: the
            kept original edges ``edge_index[:, edge_mask]`` in their original
            order, followed by newly added edges (if any).
        batch (Tensor, optional): graph of every kept node, ``[N']``.
        edge_attr (Tensor, optional): features of the output edges; added edges
            get all-zero rows.
        node_mask (Tensor, optional): bool ``[N]`` over the *original* nodes,
            ``True`` for kept nodes. :obj:`None` when the augmentation never
            changes the node set.
        edge_mask (Tensor, optional): bool ``[E]`` over the *original* edges,
            ``True`` for kept edges. The number of added edges is
            ``edge_index.size(1) - edge_mask.sum()``.
    """

    x: Tensor
    edge_index: Tensor
    batch: Tensor | None
    edge_attr: Tensor | None
    node_mask: Tensor | None
    edge_mask: Tensor | None


class MaskedFeatures(NamedTuple):
    r"""Output of :func:`mask_features`.

    Attributes:
        x (Tensor): the masked node features, ``[N, F]``.
        mask (Tensor): bool, ``True`` where features were masked: ``[N]`` (rows)
            for ``mode='node'``; ``[F]`` (columns) for ``mode='dim'``; ``[G, F]``
            for ``mode='dim'`` with ``per_graph=True``.
    """

    x: Tensor
    mask: Tensor


# --------------------------------------------------------------------------- helpers
_Params = ParamSpec("_Params")
_GraphFunction = Callable[Concatenate[Tensor, Tensor, _Params], Augmented]


def keeps_index_dtype(function: _GraphFunction[_Params]) -> _GraphFunction[_Params]:
    r"""``function`` (a graph augmentation, which works on int64 indices) returning
    ``edge_index`` in the integer dtype it was given, e.g. int32; int64 only where the
    output's node ids do not fit that dtype (a ``uint8`` graph of over 256 nodes that
    gains edges)."""

    @functools.wraps(function)
    def augment(x: Tensor, edge_index: Tensor, *args: _Params.args, **kwargs: _Params.kwargs) -> Augmented:
        out = function(x, edge_index, *args, **kwargs)
        dtype = edge_index.dtype
        if out.edge_index.dtype != dtype and out.x.size(0) <= torch.iinfo(dtype).max + 1:
            return out._replace(edge_index=out.edge_index.to(dtype))
        return out

    return augment


def apply_node_mask(
    x: Tensor,
    edge_index: Tensor,
    batch: Tensor | None,
    edge_attr: Tensor | None,
    keep: Tensor,
) -> Augmented:
    r"""Removes the nodes with ``keep == False`` and their edges, relabelling
    the remaining nodes ``0..N'-1`` in their original order."""
    edge_mask, kept = _edges_between(keep, edge_index)
    nodes = mask_indices(keep)
    if on_host(keep) and on_host(edge_index):
        new_id = np.cumsum(keep.numpy(), dtype=np.int64)
        new_id -= 1
        out_edge_index = torch.from_numpy(new_id.take(take_edges(edge_index, kept).numpy()))
    else:
        new_id_t = torch.cumsum(keep, 0) - 1
        out_edge_index = new_id_t.index_select(0, edge_index.index_select(1, kept).view(-1)).view(2, -1)
    return Augmented(
        x=x.index_select(0, nodes),
        edge_index=out_edge_index,
        batch=None if batch is None else batch.index_select(0, nodes),
        edge_attr=None if edge_attr is None else edge_attr.index_select(0, kept),
        node_mask=keep,
        edge_mask=edge_mask,
    )


def _edges_between(keep: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
    r"""The mask of the edges whose two ends are kept, and their positions. One nonzero per
    mask, then gathers: boolean indexing repeats the nonzero for every tensor it selects from
    (on the CPU one NumPy gather for both ends)."""
    if on_host(keep) and on_host(edge_index):
        ends = keep.numpy().take(edge_index.numpy())
        edge_mask = ends[0] & ends[1]
        return torch.from_numpy(edge_mask), torch.from_numpy(np.flatnonzero(edge_mask))
    edge_mask = keep.index_select(0, edge_index[0]) & keep.index_select(0, edge_index[1])
    return edge_mask, mask_indices(edge_mask)


def _selected(graphs: Tensor, num_graphs: int, device: torch.device) -> Tensor:
    r"""``graphs`` checked (one bool per graph of the batch) and on ``device``."""
    if not isinstance(graphs, Tensor) or graphs.dtype != torch.bool or tuple(graphs.shape) != (num_graphs,):
        found = f"{graphs.dtype} of shape {tuple(graphs.shape)}" if isinstance(graphs, Tensor) else repr(graphs)
        raise ValueError(f"graphs must be a bool tensor with one entry per graph ({num_graphs}) (got {found})")
    return graphs.to(device)


def _identity(
    x: Tensor,
    edge_index: Tensor,
    batch: Tensor | None,
    edge_attr: Tensor | None,
    node_mask: bool,
) -> Augmented:
    ones_nodes = torch.ones(x.size(0), dtype=torch.bool, device=x.device) if node_mask else None
    ones_edges = torch.ones(edge_index.size(1), dtype=torch.bool, device=edge_index.device)
    return Augmented(x, edge_index, batch, edge_attr, ones_nodes, ones_edges)


def _keep_at_least_one(
    keep: Tensor, graph: Tensor, sizes: Tensor, generator: torch.Generator | None
) -> Tensor:
    r"""Re-admits one uniformly chosen node in every non-empty graph that lost
    all its nodes."""
    num_graphs = sizes.numel()
    kept = count_per_graph(graph, keep, num_graphs)
    emptied = (kept == 0) & (sizes > 0)
    if not bool(emptied.any()):
        return keep
    order = nodes_in_graph_order(graph, graph.numel(), graph.device)
    local = (
        torch.rand(num_graphs, generator=generator, device=graph.device, dtype=torch.float64)
        * sizes
    ).long()
    local = torch.minimum(local, (sizes - 1).clamp_min(0))
    chosen = order[(exclusive_cumsum(sizes) + local)[emptied]]
    keep = keep.clone()
    keep[chosen] = True
    return keep


# --------------------------------------------------------------------------- node dropping
@keeps_index_dtype
def drop_nodes(
    x: Tensor,
    edge_index: Tensor,
    batch: Tensor | None = None,
    *,
    p: float = 0.2,
    mode: Literal["fraction", "bernoulli"] = "fraction",
    edge_attr: Tensor | None = None,
    generator: torch.Generator | None = None,
    num_graphs: int | None = None,
    graphcl_reference: bool = False,
    graphs: Tensor | None = None,
    isolate: bool = False,
) -> Augmented:
    r"""Node dropping from `"Graph Contrastive Learning with Augmentations"
    <https://arxiv.org/abs/2010.13902>`_ (GraphCL).

    Every graph :math:`g` of the batch loses a random subset of its
    :math:`n_g` nodes together with all their edges; the nodes are removed
    from ``x`` and ``batch`` and the edges relabelled:

    .. math::
        k_g = \min\bigl(\operatorname{round}(p \, n_g),\; n_g - 1\bigr)
        \quad (\texttt{mode='fraction'}), \qquad
        \Pr[v \text{ dropped}] = p \quad (\texttt{mode='bernoulli'}).

    ``'fraction'`` drops exactly :math:`k_g` uniformly chosen nodes per graph
    (``round`` is half-to-even, like Python's); ``'bernoulli'`` drops each node
    independently. Either way at least one node of every non-empty graph is
    kept (a uniformly chosen one when Bernoulli sampling emptied a graph), so
    no graph disappears from the batch, even at ``p=1``.

    With ``isolate=True`` the dropped nodes lose their edges but stay, with
    their features, as isolated nodes (PyGCL's ``NodeDropping``): the node set
    and its order do not change, as node-level contrast between two views
    (GRACE-style) needs; ``node_mask`` is then :obj:`None`.

    Args:
        x (Tensor): node features ``[N, F]``; ``N`` is the node count.
        edge_index (Tensor): integer edge indices ``[2, E]``.
        batch (Tensor, optional): graph index of every node ``[N]``
            (default: :obj:`None`, one graph).
        p (float): drop fraction / probability in :math:`[0, 1]`
            (default: :obj:`0.2`). ``p=0`` returns the input tensors.
        mode (str): ``'fraction'`` or ``'bernoulli'`` (default: ``'fraction'``).
        edge_attr (Tensor, optional): edge features ``[E, D]``, filtered alike.
        generator (torch.Generator, optional): source of randomness.
        num_graphs (int, optional): number of graphs (default: ``batch.max() + 1``).
        graphcl_reference (bool): count :math:`k_g = \lfloor p\, n_g \rfloor` as
            GraphCL's released code does (``int(n * ratio)``); that code runs
            with ``p=0.1`` in ``unsupervised_TU`` (default: :obj:`False`).
        graphs (Tensor, optional): bool ``[num_graphs]``: augment only these
            graphs of the batch and pass the others unchanged, as a per-graph
            draw from a pool of augmentations needs (:class:`~gcl.augment.RandomChoice`
            with ``per_graph=True``) (default: :obj:`None`, every graph).
        isolate (bool): keep the dropped nodes, without their edges
            (default: :obj:`False`, remove them).

    Shapes:
        - **input:** ``x`` :math:`[N, F]`, ``edge_index`` :math:`[2, E]`,
          ``batch`` :math:`[N]`
        - **output:** :class:`Augmented` with ``x`` :math:`[N', F]`
          (:math:`N' = N` with ``isolate``), ``edge_index`` :math:`[2, E']`,
          ``node_mask`` :math:`[N]`, ``edge_mask`` :math:`[E]`

    Example:
        >>> x = torch.randn(4, 3)
        >>> edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
        >>> out = drop_nodes(x, edge_index, p=0.5)
        >>> out.x.size(0)
        2
    """
    check_probability("p", p)
    check_choice("mode", mode, ("fraction", "bernoulli"))
    check_generator("generator", generator)
    isolate = check_switch("isolate", isolate)
    graphcl_reference = check_switch("graphcl_reference", graphcl_reference)
    checked, num_nodes = check_graph(x, edge_index, batch, edge_attr, num_graphs)
    if p == 0.0 or num_nodes == 0:
        return _identity(x, edge_index, batch, edge_attr, node_mask=not isolate)  # the input's tensors
    edge_index = checked
    device = x.device
    sizes = graph_sizes(batch, num_nodes, num_graphs, device)
    graph = node_graph(batch, num_nodes, device)
    chosen = None if graphs is None else _selected(graphs, sizes.numel(), device)
    if mode == "fraction":
        target = p * sizes.to(torch.float64)
        drop = torch.floor(target).long() if graphcl_reference else round_half_even(target)
        drop = torch.minimum(drop, (sizes - 1).clamp_min(0))
        if chosen is not None:
            drop = drop * chosen
        keep = ~random_subset(graph, sizes, drop, generator)
    else:
        keep = torch.rand(num_nodes, generator=generator, device=device) >= p
        if chosen is not None:
            keep |= ~chosen.index_select(0, graph)
        keep = _keep_at_least_one(keep, graph, sizes, generator)
    if isolate:
        edge_mask, kept = _edges_between(keep, edge_index)
        return Augmented(x, edge_index.index_select(1, kept), batch,
                         None if edge_attr is None else edge_attr.index_select(0, kept), None, edge_mask)
    return apply_node_mask(x, edge_index, batch, edge_attr, keep)


# --------------------------------------------------------------------------- edge perturbation
#: Most candidates :func:`_sample_new_edges` draws per new edge wanted, as a
#: multiple of the ``2 r + 4`` of a graph without edges.
_MAX_DRAW_SCALE = 16


_Sizes = TypeVar("_Sizes", Tensor, np.ndarray)


def _node_pairs(sizes: _Sizes, undirected: bool) -> _Sizes:
    r"""Node pairs of every graph that could hold an edge (no self loops), for
    tensors and NumPy arrays alike."""
    pairs = sizes * (sizes - 1)
    return pairs // 2 if undirected else pairs


def _candidate_draws(wanted: Tensor, pairs: Tensor, units: Tensor) -> Tensor:
    r"""Candidates to draw per graph: :math:`\lceil (2 r_g + 4)\, P_g / F_g \rceil`
    for :math:`r_g` new edges among :math:`P_g` node pairs of which
    :math:`F_g = P_g - m_g` are free (at most :data:`_MAX_DRAW_SCALE` times
    :math:`2 r_g + 4`; none where nothing is wanted, and ``wanted`` never
    exceeds the free pairs). Scaling by the density keeps the expected number of
    valid candidates at about :math:`2 r_g + 4`, so dense graphs get their
    :math:`r_g` edges as sparse ones do. Integer arithmetic, the same on every
    device."""
    base = 2 * wanted + 4
    free = (pairs - units).clamp_min(1)
    # (2r + 4) P / F = (2r + 4) + (2r + 4) m / F, rounded up
    draws = base + torch.minimum((base * units + free - 1) // free, (_MAX_DRAW_SCALE - 1) * base)
    return torch.where(wanted > 0, draws, torch.zeros_like(draws))


def _candidate_draws_host(wanted: np.ndarray, pairs: np.ndarray, units: np.ndarray) -> np.ndarray:
    r""":func:`_candidate_draws` in NumPy (the same numbers), from the node
    pairs of every graph (:func:`_node_pairs`)."""
    base = 2 * wanted + 4
    free = np.maximum(pairs - units, 1)
    draws = base + np.minimum((base * units + free - 1) // free, (_MAX_DRAW_SCALE - 1) * base)
    return np.where(wanted > 0, draws, 0)


#: Rounds of :func:`_sample_new_edges`: graphs still short of new edges after a
#: round draw again, among the pairs still free.
_DRAW_ROUNDS = 8


def _sample_new_edges(
    per_graph: Tensor,
    sizes: Tensor,
    batch: Tensor | None,
    num_nodes: int,
    existing_code: Tensor,
    existing_graph: Tensor,
    units: Tensor,
    taken: Tensor,
    undirected: bool,
    seed: int,
) -> Tensor:
    r"""Up to ``per_graph[g]`` new edges inside every graph ``g``: no self loops,
    no edge that already exists, no duplicates. Returns ``[2, A]``, grouped by
    graph (for undirected graphs one direction per new edge, ``u < v``).

    Candidates are drawn with replacement (more than needed, more in denser
    graphs: :func:`_candidate_draws`), from :func:`counter_hash` values of
    ``seed``, and filtered with one hashed table (``existing_code`` holds
    :func:`pair_hash` codes of the existing edges, canonical ``(min, max)``
    pairs when ``undirected``, ``existing_graph`` their graphs; ``units[g]`` is
    the number of sampling units of graph ``g``, which sizes the table), which
    costs :math:`O(E + A)` instead of a sort. ``taken[g]`` counts the node pairs
    of graph ``g`` that hold an edge (self loops left out): the free pairs are
    the others. A graph that got fewer than it wants, with at least twice as
    many free node pairs as it still wants, draws again against a table of the
    short graphs' edges while a round finds it edges (up to
    :data:`_DRAW_ROUNDS` rounds). Fewer than ``per_graph[g]`` edges come back
    where the graph has fewer free node pairs, and, rarely, in graphs that want
    most of their free pairs or have more than 15/16 of their pairs taken
    (about one graph in a thousand of IMDB-BINARY's ego networks ends short).
    """
    device = sizes.device
    pairs = _node_pairs(sizes, undirected)
    # no graph can take more than its free pairs (none in graphs of fewer than two nodes)
    wanted = torch.minimum(per_graph, (pairs - taken).clamp_min(0))
    draws = _candidate_draws(wanted, pairs, taken)
    # One synchronisation with the device for the three numbers the host needs.
    largest = sizes.max() if sizes.numel() else sizes.new_zeros(())
    total, largest, items = torch.stack([draws.sum(), largest, units.sum()]).tolist()
    if total == 0:
        return torch.empty(2, 0, dtype=torch.long, device=device)
    _check_addable(largest)
    num_graphs = sizes.numel()
    order = None if batch is None or is_sorted(batch) else nodes_in_graph_order(batch, num_nodes, device)
    first = exclusive_cumsum(sizes)
    parts: list[tuple[Tensor, Tensor, Tensor]] = []
    counter = 0
    for round_ in range(_DRAW_ROUNDS):
        cand_graph = torch.repeat_interleave(torch.arange(num_graphs, device=device), draws, output_size=total)
        n = sizes.index_select(0, cand_graph)
        # Two 32-bit values per candidate, h, scaled to [0, n) as (h * n) >> 32.
        bits = counter_hash(2 * total, seed, device, start=counter)
        counter += 2 * total
        local_u = (bits[:total] * n) >> 32
        # Shifting by 1..n-1 (mod n) can never land on local_u: no self loops.
        local_v = local_u + 1 + ((bits[total:] * (n - 1)) >> 32)
        local_v = torch.where(local_v >= n, local_v - n, local_v)
        start = first.index_select(0, cand_graph)
        u, v = start + local_u, start + local_v
        if order is not None:
            u, v = order.index_select(0, u), order.index_select(0, v)
        if undirected:
            u, v = torch.minimum(u, v), torch.maximum(u, v)
        code = pair_hash(u, v, seed)

        # One hashed table does both filters: slots of existing edges hold -1, and
        # among candidates sharing a slot the first drawn wins. Existing edges are
        # always caught (no false negatives); a slot collision only discards a
        # valid candidate, and every round places the codes anew.
        size = next_power_of_two(_TABLE_LOAD * (items + total))
        table = torch.full((size,), total, dtype=torch.int32, device=device)
        table.index_fill_(0, _slots(existing_code, size, round_), -1)
        slot = _slots(code, size, round_)
        index = torch.arange(total, dtype=torch.int32, device=device)
        table.scatter_reduce_(0, slot, index, reduce="amin")
        valid = table.index_select(0, slot) == index

        valid_long = valid.long()
        seen_before = torch.cumsum(valid_long, 0) - valid_long
        group_start = exclusive_cumsum(draws).clamp_max(total - 1)
        rank = seen_before - seen_before.index_select(0, group_start).index_select(0, cand_graph)
        take = valid & (rank < wanted.index_select(0, cand_graph))
        parts.append((u[take], v[take], cand_graph[take]))
        got = count_per_graph(cand_graph, take, num_graphs)
        wanted, units, taken = wanted - got, units + got, taken + got
        # Another round for graphs short of edges with room to spare (at least twice the
        # free pairs they still want: a collision in the table, or bad luck, kept them
        # short, a round that found none of their edges included); graphs that want nearly
        # all their free pairs keep what they found.
        again = (wanted > 0) & (pairs - taken >= 2 * wanted)
        draws = torch.where(again, _candidate_draws(wanted, pairs, taken), torch.zeros_like(wanted))
        short = draws > 0
        total, items = torch.stack([draws.sum(), (units * short).sum()]).tolist()
        if total == 0:
            break
        # The next round's table: the short graphs' edges, old and new.
        keep = short.index_select(0, existing_graph)
        new_graph = cand_graph[take]
        new_keep = short.index_select(0, new_graph)
        existing_code = torch.cat([existing_code[keep], code[take][new_keep]])
        existing_graph = torch.cat([existing_graph[keep], new_graph[new_keep]])
    if len(parts) == 1:
        return torch.stack(parts[0][:2])
    graph = torch.cat([part[2] for part in parts])
    regroup = torch.sort(graph, stable=True).indices
    return torch.stack([torch.cat([part[0] for part in parts]), torch.cat([part[1] for part in parts])])[:, regroup]


def _slots(code: Tensor, size: int, round_: int) -> Tensor:
    r"""Table slots of 32-bit codes in round ``round_`` of
    :func:`_sample_new_edges`: the low bits of the code in the first round, of
    the code rehashed with a salt of the round after it, so pairs that share a
    slot in one round (a valid candidate hidden by another graph's edge) part
    in the next."""
    if round_:
        code = salted_hash(code, round_ * _ROUND_SALT)
    return code & (size - 1)


def _slots_host(code: np.ndarray, size: int, round_: int) -> np.ndarray:
    r""":func:`_slots` of ``uint32`` codes in NumPy, as int64 indices (NumPy
    indexes with uint32 ones through a slow cast)."""
    if round_:
        code = salted_hash_host(code, round_ * _ROUND_SALT)
    return (code & np.uint32(size - 1)).astype(np.int64)


#: Slots per item of the hashed table of :func:`_sample_new_edges` (a power of two
#: at least this many times the codes it holds).
_TABLE_LOAD = 8

#: Salt of the table slots in the rounds after the first (:func:`_slots`).
_ROUND_SALT = 0x9E3779B9


def _check_addable(largest: int) -> None:
    r"""New edges are drawn as :math:`(h n) \gg 32` from 32-bit hash values
    :math:`h`, exact in int64 and reaching every node for graphs of fewer than
    :math:`2^{31}` nodes."""
    if largest >= 2**31:
        raise ValueError(f"adding edges supports graphs of fewer than 2**31 nodes (got one of {largest})")


def _sample_new_edges_host(
    per_graph: np.ndarray,
    sizes: np.ndarray,
    node_order: np.ndarray | None,
    existing_code: np.ndarray,
    existing_groups: HostGroups,
    units: np.ndarray,
    taken: np.ndarray,
    undirected: bool,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    r""":func:`_sample_new_edges` on the host, step for step in NumPy (whose
    operations cost less per call on arrays of this size): the same random
    draws and the same result, as two int64 arrays (sources, targets).

    ``node_order`` maps positions in graph order to node ids (:obj:`None`: the
    nodes are already in graph order); ``existing_groups`` gives the graph of
    every existing code (read only when a second round runs).
    """
    pairs = _node_pairs(sizes, undirected)
    # no graph can take more than its free pairs (none in graphs of fewer than two nodes)
    wanted = np.minimum(per_graph, np.maximum(pairs - taken, 0))
    draws = _candidate_draws_host(wanted, pairs, taken)
    total = int(draws.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    _check_addable(int(sizes.max()))
    items = int(units.sum())
    wanted_total = int(wanted.sum())
    first = sizes.cumsum() - sizes
    existing_graph: np.ndarray | None = None
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    counter = 0
    for round_ in range(_DRAW_ROUNDS):
        # Two 32-bit values per candidate, h, scaled to [0, n) as (h * n) >> 32.
        bits = counter_hash_host(2 * total, seed, counter)
        counter += 2 * total
        n = sizes.repeat(draws)
        u = bits[:total] * n
        u >>= 32
        # Shifting by 1..n-1 (mod n) can never land on u: no self loops.
        n -= 1
        v = bits[total:] * n
        v >>= 32
        v += u
        wraps = v >= n
        v += 1
        n += 1
        v -= n * wraps
        start = first.repeat(draws)
        u += start
        v += start
        if node_order is not None:
            u, v = node_order.take(u), node_order.take(v)
        if undirected:
            u, v = np.minimum(u, v), np.maximum(u, v)
        code = pair_hash_host(u, v, seed)

        size = next_power_of_two(_TABLE_LOAD * (items + total))
        table = np.empty(size, dtype=np.int32)
        table.fill(total)
        # (int64 indices: NumPy indexes with uint32 ones through a slow cast)
        table[_slots_host(existing_code, size, round_)] = -1
        slot = _slots_host(code, size, round_)
        index = np.arange(total, dtype=np.int32)
        # First drawn wins a shared slot: torch's scatter-min (NumPy's minimum.at is slower).
        torch.from_numpy(table).scatter_reduce_(
            0, torch.from_numpy(slot), torch.from_numpy(index), reduce="amin"
        )
        valid = table.take(slot) == index
        # A valid candidate is taken while fewer than wanted[g] valid ones of its
        # graph come before it: its inclusive count of valid ones stays within
        # (valid ones before the graph) + wanted[g]. seen[i] counts the valid ones
        # among the first i candidates.
        seen = np.zeros(total + 1, dtype=np.int64)
        valid.cumsum(out=seen[1:])
        ends = draws.cumsum()
        before = seen.take(ends - draws)
        take = (valid & (seen[1:] <= (before + wanted).repeat(draws))).nonzero()[0]
        if round_ == 0 and take.size == wanted_total:  # the usual case: one round, every edge found
            return u.take(take), v.take(take)
        # per graph: the valid candidates, of which it takes at most what it wants
        got = np.minimum(seen.take(ends) - before, wanted)
        wanted, units, taken = wanted - got, units + got, taken + got
        # Another round for graphs short of edges with room to spare (see _sample_new_edges).
        again = (wanted > 0) & (pairs - taken >= 2 * wanted)
        done = not bool(again.any())
        graph = np.arange(sizes.size).repeat(draws).take(take)
        parts.append((u.take(take), v.take(take), graph))
        if done:
            break
        draws = np.where(again, _candidate_draws_host(wanted, pairs, taken), 0)
        total = int(draws.sum())
        if total == 0:
            break
        # The next round's table: the short graphs' edges, old and new.
        short = draws > 0
        items = int(units[short].sum())
        existing_graph = existing_groups.group if existing_graph is None else existing_graph
        keep, new_keep = short.take(existing_graph), short.take(graph)
        existing_code = np.concatenate([existing_code[keep], code.take(take)[new_keep]])
        existing_graph = np.concatenate([existing_graph[keep], graph[new_keep]])
    if len(parts) == 1:
        return parts[0][0], parts[0][1]
    regroup = np.argsort(np.concatenate([part[2] for part in parts]), kind="stable")
    return (np.concatenate([part[0] for part in parts]).take(regroup),
            np.concatenate([part[1] for part in parts]).take(regroup))


@keeps_index_dtype
def perturb_edges(
    x: Tensor,
    edge_index: Tensor,
    batch: Tensor | None = None,
    *,
    p: float = 0.2,
    mode: Literal["both", "remove", "add"] = "both",
    sampling: Literal["fraction", "bernoulli"] = "fraction",
    force_undirected: bool | None = None,
    edge_attr: Tensor | None = None,
    generator: torch.Generator | None = None,
    num_graphs: int | None = None,
    graphcl_reference: bool = False,
    graphs: Tensor | None = None,
) -> Augmented:
    r"""Edge perturbation from `"Graph Contrastive Learning with Augmentations"
    <https://arxiv.org/abs/2010.13902>`_ (GraphCL).

    In every graph :math:`g` with :math:`m_g` edges, a fraction :math:`p` of
    the edges is removed and as many new edges are added between random node
    pairs of the *same* graph:

    .. math::
        r_g = \operatorname{round}(p\, m_g), \qquad
        \mathcal{E}'_g = (\mathcal{E}_g \setminus R_g) \cup A_g,
        \quad |R_g| = r_g,\; |A_g| = r_g .

    Added edges never cross graphs, are never self loops and never duplicate
    an existing (or another added) edge. Every graph with at least
    :math:`2 r_g` free node pairs gets exactly :math:`r_g` of them (dense
    graphs draw more candidates, and graphs left short draw again; self loops
    take no pair); a graph with fewer free pairs gets at most those, and one
    that wants most of its free pairs, or has more than 15/16 of its pairs
    taken, may end short (about one IMDB-BINARY graph in a thousand per call).
    An undirected graph (each edge
    stored in both directions) stays undirected: the sampling runs on one
    direction of every edge (:math:`m_g` counts undirected edges) and
    decisions are mirrored. Two caveats. With ``force_undirected=None`` the
    detection looks at the edges of the whole call: a batch holding one
    directed graph is treated as directed throughout (every stored edge is its
    own unit), so its undirected graphs may come back with one direction of a
    node pair removed or added (Bernoulli removal without additions detects
    nothing and keeps them undirected); augment such graphs apart, or make
    them undirected first (:class:`torch_geometric.transforms.ToUndirected`).
    And ``force_undirected=True`` samples the edges stored as :math:`u \le v`
    and mirrors them, so it expects both directions stored: where counts are
    kept (``sampling='fraction'``, additions) :math:`m_g` counts only the edges
    stored as :math:`u \le v`, so a graph whose edges are stored once as
    :math:`u > v` gains no edge (nor loses one with ``sampling='fraction'``),
    and one stored once as :math:`u < v` gets its added edges in both
    directions; a graph stored in one direction only belongs with
    ``force_undirected=False``.

    Adding edges needs graphs of fewer than :math:`2^{31}` nodes.
    Copies of an edge stored more than once (a multigraph) share one random
    value and are removed together, so where such copies straddle the cut a
    graph loses a few edges less than :math:`r_g`. Every stored copy counts in
    :math:`m_g` and as an occupied node pair: the free pairs are the node
    pairs less the stored edges, so a multigraph may get fewer than
    :math:`r_g` added edges although enough pairs are free. Coalesce it first
    (:func:`torch_geometric.utils.coalesce`) for the exact counts.

    Output order: kept original edges (original order), then added edges
    grouped by graph (for undirected graphs each new edge followed by its
    reverse). ``edge_attr`` rows of added edges are zeros.

    Args:
        x (Tensor): node features ``[N, F]`` (only its size is used).
        edge_index (Tensor): integer edge indices ``[2, E]``.
        batch (Tensor, optional): graph index of every node ``[N]``.
        p (float): perturbation fraction in :math:`[0, 1]` (default: :obj:`0.2`).
        mode (str): ``'both'`` (remove and add), ``'remove'`` or ``'add'``;
            ``'add'`` adds :math:`\operatorname{round}(p\, m_g)` edges
            (default: ``'both'``).
        sampling (str): ``'fraction'`` removes exactly :math:`r_g` edges per
            graph; ``'bernoulli'`` removes each edge with probability :math:`p`
            and adds as many as were removed (default: ``'fraction'``).
        force_undirected (bool, optional): treat the graph as undirected
            (:obj:`True`), directed (:obj:`False`), or detect it from the edges
            of the whole call, every graph of a batch together (:obj:`None`,
            default). Bernoulli removal without additions needs no detection:
            with :obj:`None` both directions of a node pair share one decision,
            so an undirected graph stays undirected and every edge of a
            directed graph is still removed with probability :math:`p` (only
            reciprocal pairs are removed together).
        edge_attr (Tensor, optional): edge features ``[E, D]``.
        generator (torch.Generator, optional): source of randomness.
        num_graphs (int, optional): number of graphs (default: ``batch.max() + 1``).
        graphcl_reference (bool): reproduce GraphCL's ``unsupervised_TU`` code
            instead of the paper: remove :math:`\lfloor p\, m_g \rfloor` directed
            edges, add none (that code never adds the edges it samples); there it
            runs with ``p=0.1``. ``mode``, ``sampling`` and ``force_undirected``
            are ignored (default: :obj:`False`).
        graphs (Tensor, optional): bool ``[num_graphs]``: augment only these
            graphs of the batch and pass the others unchanged, as a per-graph
            draw from a pool of augmentations needs (:class:`~gcl.augment.RandomChoice`
            with ``per_graph=True``). It switches on the per-graph bookkeeping,
            which draws from node-pair hashes: in ``sampling="bernoulli"`` an
            all-:obj:`True` ``graphs`` removes other (identically distributed)
            edges than :obj:`None` under the same seed (default: :obj:`None`,
            every graph).

    Shapes:
        - **input:** ``x`` :math:`[N, F]`, ``edge_index`` :math:`[2, E]`
        - **output:** :class:`Augmented` with ``edge_index`` :math:`[2, E']`,
          ``edge_mask`` :math:`[E]`, ``node_mask`` :obj:`None`

    Example:
        >>> x = torch.randn(4, 3)
        >>> edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
        >>> out = perturb_edges(x, edge_index, p=0.4, mode="remove")
        >>> out.edge_index.size(1)
        4
    """
    check_probability("p", p)
    check_choice("mode", mode, ("both", "remove", "add"))
    check_choice("sampling", sampling, ("fraction", "bernoulli"))
    check_generator("generator", generator)
    force_undirected = check_switch("force_undirected", force_undirected, optional=True)
    graphcl_reference = check_switch("graphcl_reference", graphcl_reference)
    checked, num_nodes = check_graph(x, edge_index, batch, edge_attr, num_graphs)
    if p == 0.0:
        return _identity(x, edge_index, batch, edge_attr, node_mask=False)  # the input's tensors
    edge_index = checked
    num_edges = edge_index.size(1)
    if graphcl_reference:
        mode, sampling = "remove", "fraction"
    removing = mode in ("both", "remove") and num_edges > 0
    adding = mode in ("both", "add")
    # Per-graph bookkeeping is only needed for exact counts, for additions and for a choice of graphs.
    counting = adding or (removing and sampling == "fraction") or graphs is not None
    perturb = _perturb_host if on_host(edge_index) else _perturb_torch
    how = _Perturbation(
        p,
        removing,
        adding,
        counting,
        add_only=mode == "add",
        bernoulli=sampling == "bernoulli",
        force_undirected=force_undirected,
        graphcl_reference=graphcl_reference,
        graphs=graphs,
    )
    edge_mask, out_edge_index = perturb(edge_index, batch, num_nodes, num_graphs, how, generator)

    out_edge_attr = None
    if edge_attr is not None:
        out_edge_attr = edge_attr[edge_mask]
        num_added = out_edge_index.size(1) - out_edge_attr.size(0)
        if num_added > 0:
            zeros = out_edge_attr.new_zeros((num_added, *out_edge_attr.shape[1:]))
            out_edge_attr = torch.cat([out_edge_attr, zeros], dim=0)
    return Augmented(x, out_edge_index, batch, out_edge_attr, None, edge_mask)


class _Perturbation(NamedTuple):
    r"""What :func:`perturb_edges` does, as its two implementations receive it."""

    p: float
    removing: bool
    adding: bool
    counting: bool
    add_only: bool
    bernoulli: bool
    force_undirected: bool | None
    graphcl_reference: bool
    graphs: Tensor | None


def _perturb_torch(
    edge_index: Tensor,
    batch: Tensor | None,
    num_nodes: int,
    num_graphs: int | None,
    how: _Perturbation,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    r"""The edges :func:`perturb_edges` keeps (mask ``[E]``) and the output
    ``edge_index``: the kept edges, then the added ones (mirrored for
    undirected graphs), with tensor operations on any device."""
    p, removing, adding, counting, add_only, bernoulli, force_undirected, graphcl_reference, graphs = how
    device = edge_index.device
    num_edges = edge_index.size(1)
    row, col = edge_index[0], edge_index[1]
    seed = draw_seed(generator, device)
    # One random value per edge, shared by both directions of an undirected
    # edge (a hash of the node pair); the codes also serve the membership test
    # of added edges.
    code: Tensor | None = None
    if graphcl_reference or force_undirected is False:
        undirected = False
    else:
        code = unordered_pair_hash(row, col, seed)
        if force_undirected is None and counting:
            undirected = is_undirected_by_code(row, col, code)
        else:
            # Independent removals need no detection: one decision per node pair
            # keeps an undirected graph undirected and still drops every edge of a
            # directed graph with probability p.
            undirected = True
    if not undirected:
        code = pair_hash(row, col, seed) if counting else None

    sizes = graph_sizes(batch, num_nodes, num_graphs, device) if counting else None
    num_graphs = 1 if sizes is None else sizes.numel()
    edge_graph: Tensor | None = None
    unit: Tensor | None = None
    unit_counts: Tensor | None = None
    if counting:
        edge_graph = (
            torch.zeros(num_edges, dtype=torch.long, device=device)
            if batch is None
            else batch.long().index_select(0, row)
        )
        # Units are what is sampled: one direction per undirected edge (self
        # loops once), or every edge of a directed graph.
        unit = row <= col if undirected else None
        unit_counts = count_per_graph(edge_graph, unit, num_graphs)
    chosen = None if graphs is None else _selected(graphs, num_graphs, device)

    removed = torch.zeros(num_graphs, dtype=torch.long, device=device)
    edge_mask = torch.ones(num_edges, dtype=torch.bool, device=device)
    if removing:
        if bernoulli:
            if code is not None:
                edge_mask = code >= round(p * 2**32)
            else:
                edge_mask = torch.rand(num_edges, generator=generator, device=device) >= p
            if chosen is not None:
                assert edge_graph is not None
                edge_mask = edge_mask | ~chosen.index_select(0, edge_graph)
            if counting:
                assert edge_graph is not None
                dropped = ~edge_mask if unit is None else ~edge_mask & unit
                removed = count_per_graph(edge_graph, dropped, num_graphs)
        else:
            assert edge_graph is not None and unit_counts is not None and code is not None
            target = p * unit_counts.to(torch.float64)
            removed = torch.floor(target).long() if graphcl_reference else round_half_even(target)
            if chosen is not None:
                removed = removed * chosen
            uniform = to_uniform(code)
            cut = _exact_cut(uniform, edge_graph, unit, unit_counts, removed)
            edge_mask = uniform >= cut.index_select(0, edge_graph)

    added = torch.empty(2, 0, dtype=torch.long, device=device)
    if adding:
        assert unit_counts is not None and code is not None and sizes is not None
        if add_only:
            target = p * unit_counts.to(torch.float64)
            if bernoulli:
                wanted = torch.binomial(
                    unit_counts.to(torch.float64),
                    torch.full_like(target, p),
                    generator=generator,
                ).long()
            else:
                wanted = round_half_even(target)
            if chosen is not None:
                wanted = wanted * chosen
        else:
            wanted = removed
        # The table holds one code per unit (both directions of an undirected
        # edge share theirs); self loops take no node pair.
        assert edge_graph is not None
        taken = unit_counts - count_per_graph(edge_graph, row == col, unit_counts.numel())
        added = _sample_new_edges(
            wanted, sizes, batch, num_nodes, code, edge_graph, unit_counts, taken, undirected, seed
        )
        if undirected and added.size(1) > 0:
            added = torch.stack([added, added.flip(0)], dim=2).reshape(2, -1)

    return edge_mask, torch.cat([select_edges(edge_index, edge_mask), added], dim=1)


def _exact_cut(
    uniform: Tensor,
    edge_graph: Tensor,
    unit: Tensor | None,
    unit_counts: Tensor,
    removed: Tensor,
) -> Tensor:
    r"""Per-graph cut :math:`c_g` such that exactly ``removed[g]`` units of
    graph ``g`` have a random value below it.

    The cut is the value of the unit ranked ``removed[g]`` in its graph (the
    smallest one kept), as on the host (:func:`smallest_per_group_host`); it
    also decides stored edges that are not units of a graph forced undirected.
    Only the units below a slightly generous threshold
    :math:`(r_g + 4\sqrt{r_g} + 2) / m_g` are sorted (a fraction about
    :math:`p` of them); if a graph that keeps some of its units has no more
    than :math:`r_g` of those, all units are sorted.
    """
    num_graphs = unit_counts.numel()
    device = uniform.device
    counts_f = unit_counts.to(torch.float64)
    removed_f = removed.to(torch.float64)
    generous = ((removed_f + 4.0 * removed_f.sqrt() + 2.0) / counts_f.clamp_min(1.0)).clamp_max(1.0)
    everything = unit if unit is not None else torch.ones_like(uniform, dtype=torch.bool)
    partial = (removed > 0) & (removed < unit_counts)
    for threshold in (generous, None):
        candidate = everything
        if threshold is not None:
            candidate = everything & (uniform < threshold.index_select(0, edge_graph))
        index = mask_indices(candidate)
        cand_graph = edge_graph.index_select(0, index)
        cand_counts = torch.bincount(cand_graph, minlength=num_graphs)
        if threshold is not None and bool((partial & (cand_counts <= removed)).any()):
            continue  # rare: fall back to sorting every unit
        # Sorting graph + value groups the candidates by graph, ascending.
        ordered = torch.sort(cand_graph.to(torch.float64) + uniform.index_select(0, index)).values
        ordered = ordered - ordered.floor()
        cut = torch.full((num_graphs,), float("inf"), dtype=torch.float64, device=device)
        if index.numel() > 0:
            position = (exclusive_cumsum(cand_counts) + removed).clamp_max(index.numel() - 1)
            cut = torch.where(cand_counts > removed, ordered.index_select(0, position), cut)
        # Nothing to remove: keep everything.
        return torch.where(removed == 0, torch.zeros_like(cut), cut)
    raise AssertionError("unreachable")  # pragma: no cover


def _perturb_host(
    edge_index: Tensor,
    batch: Tensor | None,
    num_nodes: int,
    num_graphs: int | None,
    how: _Perturbation,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    r""":func:`_perturb_torch` for CPU tensors, step for step in NumPy (same
    random draws, same result): the per-graph bookkeeping between the hashing,
    the exact cut (:func:`smallest_per_group_host`, no comparison sort) and the
    new-edge sampling costs fewer and cheaper calls there. Returns the edge
    mask and the output ``edge_index`` (kept edges, then added ones)."""
    p, removing, adding, counting, add_only, bernoulli, force_undirected, graphcl_reference, graphs = how
    num_edges = edge_index.size(1)
    edge_np = edge_index.numpy()
    row, col = edge_np[0], edge_np[1]
    seed = draw_seed(generator, edge_index.device)
    code: np.ndarray | None = None
    # Units are what is sampled: one direction per undirected edge (self loops
    # once), or every edge of a directed graph.
    unit_mask: np.ndarray | None = None
    unit_index: np.ndarray | None = None
    unit_code: np.ndarray | None = None
    if graphcl_reference or force_undirected is False:
        undirected = False
    else:
        code = unordered_pair_hash_host(row, col, seed, num_nodes)
        undirected = True
        if counting:
            unit_mask = row <= col
            unit_index = unit_mask.nonzero()[0]
            unit_code = code.take(unit_index)
            if force_undirected is None:
                undirected = is_undirected_by_unit_code(row, col, code, unit_code)
    if not undirected:
        unit_mask = unit_index = unit_code = None
        code = pair_hash_host(row, col, seed) if counting else None

    sizes = np.zeros(0, dtype=np.int64)
    node_order: np.ndarray | None = None
    edges: HostGroups | None = None
    units: HostGroups | None = None
    if counting:
        if batch is None:
            sizes = np.full(1, num_nodes, dtype=np.int64)
            edges = HostGroups.from_bounds(np.array([0, num_edges]))
        else:
            nodes = HostGroups(batch.numpy().astype(np.int64, copy=False), num_graphs)
            sizes = nodes.counts
            if nodes.bounds is None:
                node_order = nodes_in_graph_order(batch, num_nodes, batch.device).numpy()
            if nodes.bounds is not None and bool((row[1:] >= row[:-1]).all()):
                # Edges sorted by source (as collated PyG batches come): graph
                # g's edges are those whose sources lie in its node range.
                edges = HostGroups.from_bounds(row.searchsorted(nodes.bounds))
            else:
                edges = HostGroups(nodes.group.take(row), sizes.size)
        units = edges if unit_index is None else edges.subset(unit_index)
    chosen = None if graphs is None else _selected(graphs, sizes.size, torch.device("cpu")).numpy()

    removed = np.zeros(max(sizes.size, 1), dtype=np.int64)
    edge_mask: np.ndarray | None = None
    if removing:
        if bernoulli:
            if code is not None:
                edge_mask = code >= np.int64(round(p * 2**32))
            else:
                edge_mask = (torch.rand(num_edges, generator=generator) >= p).numpy()
            if chosen is not None:
                assert edges is not None
                edge_mask = edge_mask | ~edges.spread(chosen)
            if counting:
                assert edges is not None
                dropped = ~edge_mask if unit_mask is None else ~edge_mask & unit_mask
                removed = np.bincount(edges.group[dropped], minlength=sizes.size)
        else:
            assert edges is not None and units is not None and code is not None
            target = p * units.counts.astype(np.float64)
            removed = (np.floor(target) if graphcl_reference else np.round(target)).astype(np.int64)
            if chosen is not None:
                removed = removed * chosen
            cut = smallest_per_group_host(code if unit_code is None else unit_code, units, removed, 32)
            edge_mask = code >= edges.spread(cut)

    added_u = added_v = np.empty(0, dtype=np.int64)
    if adding:
        assert code is not None and units is not None
        wanted = removed
        if add_only and bernoulli:
            wanted = torch.binomial(
                torch.from_numpy(units.counts.astype(np.float64)),
                torch.full((units.counts.size,), p, dtype=torch.float64),
                generator=generator,
            ).long().numpy()
        elif add_only:
            wanted = np.round(p * units.counts.astype(np.float64)).astype(np.int64)
        if add_only and chosen is not None:
            wanted = wanted * chosen
        # Detected undirected: the units' codes are all the codes there are.
        if unit_code is not None and force_undirected is None:
            existing, existing_groups = unit_code, units
        else:
            assert edges is not None
            existing, existing_groups = code, edges
        # self loops take no node pair
        taken = units.counts
        loop = row == col
        if loop.any():
            assert edges is not None
            taken = taken - np.bincount(edges.select(loop.nonzero()[0]), minlength=taken.size)
        added_u, added_v = _sample_new_edges_host(
            wanted, sizes, node_order, existing, existing_groups, units.counts, taken, undirected, seed
        )

    # Kept edges in their order, then the added ones (each followed by its
    # reverse when undirected), written once into the output.
    kept = None if edge_mask is None else edge_mask.nonzero()[0]
    num_kept = num_edges if kept is None else kept.size
    num_added = added_u.size * (2 if undirected else 1)
    out = np.empty((2, num_kept + num_added), dtype=np.int64)
    if kept is None:
        out[:, :num_kept] = edge_np
    else:
        # (``mode='clip'``: the indices are valid, and ``out`` is then not buffered.)
        row.take(kept, out=out[0, :num_kept], mode="clip")
        col.take(kept, out=out[1, :num_kept], mode="clip")
    if undirected:
        out[0, num_kept::2], out[1, num_kept::2] = added_u, added_v
        out[0, num_kept + 1 :: 2], out[1, num_kept + 1 :: 2] = added_v, added_u
    else:
        out[0, num_kept:], out[1, num_kept:] = added_u, added_v
    mask = torch.ones(num_edges, dtype=torch.bool) if edge_mask is None else torch.from_numpy(edge_mask)
    return mask, torch.from_numpy(out)


@keeps_index_dtype
def drop_edges(
    x: Tensor,
    edge_index: Tensor,
    batch: Tensor | None = None,
    *,
    p: float = 0.2,
    sampling: Literal["fraction", "bernoulli"] = "bernoulli",
    force_undirected: bool | None = None,
    edge_attr: Tensor | None = None,
    generator: torch.Generator | None = None,
    num_graphs: int | None = None,
) -> Augmented:
    r"""Edge dropping as in `"Deep Graph Contrastive Representation Learning"
    <https://arxiv.org/abs/2006.04131>`_ (GRACE): every edge is removed with
    probability :math:`p`,

    .. math::
        \Pr[(u, v) \in \mathcal{E}'] = 1 - p ,

    with both directions of an undirected edge removed together (like
    :func:`torch_geometric.utils.dropout_edge` with ``force_undirected=True``,
    but keeping the stored direction and order of the kept edges). This is
    :func:`perturb_edges` with ``mode='remove'`` and Bernoulli sampling by
    default; ``sampling='fraction'`` removes exactly
    :math:`\operatorname{round}(p\, m_g)` edges per graph.

    Args:
        x (Tensor): node features ``[N, F]`` (only its size is used).
        edge_index (Tensor): integer edge indices ``[2, E]``.
        batch (Tensor, optional): graph index of every node ``[N]``.
        p (float): drop probability in :math:`[0, 1]` (default: :obj:`0.2`).
        sampling (str): ``'bernoulli'`` or ``'fraction'`` (default: ``'bernoulli'``).
        force_undirected (bool, optional): with ``sampling='bernoulli'``,
            :obj:`None` (default) and :obj:`True` remove both directions of a
            node pair together (one decision per pair, no detection: every edge
            of a directed graph is still removed with probability :math:`p`);
            with ``sampling='fraction'``, :obj:`None` detects from the edges of
            the whole call whether the graphs are undirected, and :obj:`True`
            samples the edges stored as :math:`u \le v` and mirrors the
            decisions, as in :func:`perturb_edges`. :obj:`False` decides every
            stored edge independently.
        edge_attr (Tensor, optional): edge features ``[E, D]``.
        generator (torch.Generator, optional): source of randomness.
        num_graphs (int, optional): number of graphs.

    Example:
        >>> edge_index = torch.tensor([[0, 1], [1, 0]])
        >>> drop_edges(torch.zeros(2, 1), edge_index, p=1.0).edge_index.size(1)
        0
    """
    check_probability("p", p)
    check_generator("generator", generator)
    force_undirected = check_switch("force_undirected", force_undirected, optional=True)
    if sampling == "bernoulli" and force_undirected is not False and p > 0.0:
        # The common case, kept lean: one hash per edge, one comparison.
        edge_index, _ = check_graph(x, edge_index, batch, edge_attr, num_graphs)
        row, col = edge_index[0], edge_index[1]
        seed = draw_seed(generator, edge_index.device)
        code = unordered_pair_hash(row, col, seed)
        edge_mask = code >= round(p * 2**32)
        return Augmented(
            x,
            select_edges(edge_index, edge_mask),
            batch,
            None if edge_attr is None else edge_attr[edge_mask],
            None,
            edge_mask,
        )
    return perturb_edges(
        x,
        edge_index,
        batch,
        p=p,
        mode="remove",
        sampling=sampling,
        force_undirected=force_undirected,
        edge_attr=edge_attr,
        generator=generator,
        num_graphs=num_graphs,
    )


# --------------------------------------------------------------------------- feature masking
def mask_features(
    x: Tensor,
    p: float = 0.2,
    *,
    mode: Literal["node", "dim"] = "node",
    fill: Literal["normal", "zero", "mean"] = "normal",
    batch: Tensor | None = None,
    per_graph: bool = False,
    noise_mean: float = 0.5,
    noise_std: float = 0.5,
    generator: torch.Generator | None = None,
    num_graphs: int | None = None,
    graphcl_reference: bool = False,
    graphs: Tensor | None = None,
) -> MaskedFeatures:
    r"""Attribute masking, in the two flavours of the graph contrastive
    literature.

    ``mode='node'`` follows `GraphCL <https://arxiv.org/abs/2010.13902>`_: in
    every graph, :math:`\operatorname{round}(p\, n_g)` uniformly chosen nodes
    get their *whole* feature vector replaced,

    .. math::
        \tilde{\mathbf{x}}_v = \boldsymbol{\epsilon}_v \sim
        \mathcal{N}(\mu, \sigma^2 \mathbf{I}) \;(\texttt{fill='normal'}),\quad
        \mathbf{0} \;(\texttt{'zero'}),\quad
        \bar{\mathbf{x}}_{g(v)} \;(\texttt{'mean'}),

    where GraphCL's ``unsupervised_TU`` code draws the noise from
    :math:`\mathcal{N}(0.5, 0.5^2)` (``np.random.normal(loc=0.5, scale=0.5)``,
    the defaults here) and its ``semisupervised_TU`` code uses the graph's mean
    feature vector (``fill='mean'``).

    ``mode='dim'`` follows `GRACE <https://arxiv.org/abs/2006.04131>`_ / GCA:
    every feature dimension (column) is masked with probability :math:`p`, the
    same columns for all nodes,

    .. math::
        \tilde{\mathbf{X}} = \mathbf{X} \odot (\mathbf{1}\,\mathbf{m}^\top),
        \qquad m_i \sim \operatorname{Bernoulli}(1 - p),

    or, with ``per_graph=True``, an independent column mask per graph. Masked
    entries are zero with ``fill='zero'`` (GRACE), noise or the graph mean
    otherwise.

    Args:
        x (Tensor): floating node features ``[N, F]``.
        p (float): masking fraction / probability in :math:`[0, 1]`
            (default: :obj:`0.2`). ``p=0`` returns ``x`` itself.
        mode (str): ``'node'`` or ``'dim'`` (default: ``'node'``).
        fill (str): ``'normal'``, ``'zero'`` or ``'mean'`` (default: ``'normal'``).
        batch (Tensor, optional): graph index of every node ``[N]``.
        per_graph (bool): ``mode='dim'`` only: one column mask per graph
            (default: :obj:`False`).
        noise_mean (float): mean :math:`\mu` of the noise (default: :obj:`0.5`).
        noise_std (float): standard deviation :math:`\sigma` (default: :obj:`0.5`).
        generator (torch.Generator, optional): source of randomness.
        num_graphs (int, optional): number of graphs.
        graphcl_reference (bool): ``mode='node'``: mask
            :math:`\lfloor p\, n_g \rfloor` nodes as GraphCL's code does
            (default: :obj:`False`).

        graphs (Tensor, optional): bool ``[num_graphs]``: augment only these
            graphs of the batch and pass the others unchanged, as a per-graph
            draw from a pool of augmentations needs (:class:`~gcl.augment.RandomChoice`
            with ``per_graph=True``) (default: :obj:`None`, every graph).
    Shapes:
        - **input:** ``x`` :math:`[N, F]`, ``batch`` :math:`[N]`
        - **output:** :class:`MaskedFeatures` with ``x`` :math:`[N, F]`

    Example:
        >>> x = torch.ones(4, 3)
        >>> out = mask_features(x, 0.5, fill="zero")
        >>> int((out.x == 0).all(1).sum())
        2
    """
    per_graph = check_switch("per_graph", per_graph)
    graphcl_reference = check_switch("graphcl_reference", graphcl_reference)
    check_probability("p", p)
    check_choice("mode", mode, ("node", "dim"))
    check_choice("fill", fill, ("normal", "zero", "mean"))
    check_generator("generator", generator)
    check_feature_matrix(x)
    if fill != "zero" and not x.is_floating_point():
        raise ValueError(f"fill={fill!r} needs floating-point features (got dtype {x.dtype})")
    check_real("noise_mean", noise_mean)
    check_real("noise_std", noise_std, minimum=0.0)
    num_nodes, num_features = x.shape
    check_batch(batch, num_nodes, num_graphs)
    device = x.device
    if mode == "dim" and per_graph:
        sizes = graph_sizes(batch, num_nodes, num_graphs, device)
        mask_shape: tuple[int, ...] = (sizes.numel(), num_features)
    elif mode == "dim":
        mask_shape = (num_features,)
    else:
        mask_shape = (num_nodes,)
    if graphs is not None and mode == "dim" and not per_graph:
        raise ValueError("graphs= with mode='dim' needs per_graph=True (one column mask per graph)")
    if p == 0.0 or x.numel() == 0:
        return MaskedFeatures(x, torch.zeros(mask_shape, dtype=torch.bool, device=device))

    if mode == "dim":
        mask = torch.rand(mask_shape, generator=generator, device=device) < p
        if graphs is not None:
            mask &= _selected(graphs, mask_shape[0], device).unsqueeze(1)
        if fill == "zero" and not per_graph and on_host(x) and x.dtype in _NUMPY_FLOATS and not x.requires_grad:
            # A copy with the masked columns zeroed: a third of a broadcast masked_fill's time.
            zeroed = x.numpy().copy()
            zeroed[:, mask.numpy()] = 0
            return MaskedFeatures(torch.from_numpy(zeroed), mask)
        entry_mask = mask[node_graph(batch, num_nodes, device)] if per_graph else mask.unsqueeze(0)
        if fill == "zero":
            return MaskedFeatures(x.masked_fill(entry_mask, 0), mask)
        replacement = _replacement(x, batch, fill, noise_mean, noise_std, generator, num_graphs)
        return MaskedFeatures(torch.where(entry_mask, replacement, x), mask)

    sizes = graph_sizes(batch, num_nodes, num_graphs, device)
    target = p * sizes.to(torch.float64)
    count = torch.floor(target).long() if graphcl_reference else round_half_even(target)
    if graphs is not None:
        count = count * _selected(graphs, sizes.numel(), device)
    graph = node_graph(batch, num_nodes, device)
    mask = random_subset(graph, sizes, count, generator)
    rows = mask_indices(mask)
    out = x.clone()
    if fill == "zero":
        out[rows] = 0
    elif fill == "normal":
        noise = torch.randn(
            (rows.numel(), num_features), generator=generator, device=device, dtype=x.dtype
        )
        out[rows] = noise * noise_std + noise_mean
    else:
        out[rows] = _graph_mean(x, batch, num_graphs)[graph[rows]]
    return MaskedFeatures(out, mask)


#: Feature dtypes the host's column masking handles with NumPy.
_NUMPY_FLOATS = (torch.float32, torch.float64, torch.float16)


def _graph_mean(x: Tensor, batch: Tensor | None, num_graphs: int | None) -> Tensor:
    if batch is None:
        return x.mean(0, keepdim=True)
    batch = node_graph(batch, x.size(0), x.device)  # as int64: index_add_ takes no narrower index
    sizes = torch.bincount(batch, minlength=num_graphs or 0)
    # summed in at least single precision, as x.mean does: half-precision sums overflow
    dtype = torch.promote_types(x.dtype, torch.float32)
    sums = torch.zeros((sizes.numel(), x.size(1)), dtype=dtype, device=x.device).index_add_(0, batch, x.to(dtype))
    return (sums / sizes.clamp_min(1).unsqueeze(1).to(dtype)).to(x.dtype)


def _replacement(
    x: Tensor,
    batch: Tensor | None,
    fill: str,
    noise_mean: float,
    noise_std: float,
    generator: torch.Generator | None,
    num_graphs: int | None,
) -> Tensor:
    if fill == "normal":
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return noise * noise_std + noise_mean
    means = _graph_mean(x, batch, num_graphs)
    return means[node_graph(batch, x.size(0), x.device)]


# --------------------------------------------------------------------------- subgraphs
@keeps_index_dtype
def random_walk_subgraph(
    x: Tensor,
    edge_index: Tensor,
    batch: Tensor | None = None,
    *,
    ratio: float = 0.8,
    walk_length: int | None = None,
    expansion: float = 1.0,
    restart: bool = True,
    edge_attr: Tensor | None = None,
    generator: torch.Generator | None = None,
    num_graphs: int | None = None,
    graphcl_reference: bool = False,
    graphs: Tensor | None = None,
) -> Augmented:
    r"""Subgraph sampling from `"Graph Contrastive Learning with Augmentations"
    <https://arxiv.org/abs/2010.13902>`_ (GraphCL): every graph keeps the
    connected node set grown from a random seed node,

    .. math::
        S_g^{(0)} = \{s_g\},\qquad
        S_g^{(t+1)} = S_g^{(t)} \cup F_g^{(t)},\qquad
        F_g^{(t)} \subseteq \mathcal{N}^{+}\bigl(S_g^{(t)}\bigr) \setminus S_g^{(t)},

    until :math:`|S_g| = k_g = \max(1, \operatorname{round}(\text{ratio}\cdot n_g))`.
    Each step admits every frontier node with probability ``expansion``
    (``1.0``: breadth-first, one hop per step); when the frontier holds more
    nodes than the graph still needs, a uniformly random subset of the right
    size is admitted, so exactly :math:`k_g` nodes are kept. All graphs of the
    batch grow at once (the loop runs over steps, not graphs). Edges are
    followed in their stored direction (out-neighbours), as in GraphCL.

    A graph runs out at step :math:`t` when no unvisited node is reachable from
    its set any more (whatever ``expansion`` draws) before :math:`k_g` nodes are
    reached. ``restart=True`` (default) then seeds a uniformly random unvisited
    node of the same graph at that step :math:`t`, which admits the seed alone,
    and the graph keeps growing from it at steps :math:`t + 1, t + 2, \dots`:
    the re-seed takes up the step, and like the first seed (step 0) a seed
    reaches its neighbours one step after it joins, as a new round of the
    breadth-first search below starts from its seeds. ``restart=False`` stops
    the graph with the smaller set.
    The kept nodes and the edges among them form the subgraph; other nodes are
    removed from ``x`` and ``batch``.

    With ``expansion=1`` and no ``walk_length``, the hops are counted by
    SciPy's breadth-first search from all seeds at once (one search per round
    of restarts) instead of one tensor step per hop: the kept sets have the
    same distribution, the random draws differ. On a GPU the edge indices are
    copied to the host for that search (:data:`HOST_SEARCH_OFF_CPU`) and the
    rest stays on the device; a CUDA ``generator`` seeds the host's draws.

    Args:
        x (Tensor): node features ``[N, F]``.
        edge_index (Tensor): integer edge indices ``[2, E]``.
        batch (Tensor, optional): graph index of every node ``[N]``.
        ratio (float): fraction of nodes to keep, in :math:`[0, 1]`
            (default: :obj:`0.8`). ``ratio=1`` returns the input tensors.
        walk_length (int, optional): at most this many expansion steps (hops)
            after the first seed, the steps of restarts included (a restart at
            step :math:`t` leaves its seed ``walk_length - t`` hops); graphs may
            then keep fewer nodes (default: :obj:`None`, no limit).
        expansion (float): probability in :math:`(0, 1]` that a frontier node
            joins at a given step; smaller values give less ball-shaped,
            more random-walk-like subgraphs at the cost of more steps
            (default: :obj:`1.0`).
        restart (bool): re-seed exhausted graphs (default: :obj:`True`).
        edge_attr (Tensor, optional): edge features ``[E, D]``.
        generator (torch.Generator, optional): source of randomness.
        num_graphs (int, optional): number of graphs.
        graphcl_reference (bool): GraphCL's released code instead of the paper:
            the neighbour set never grows past the seed's neighbours (a
            one-hop subgraph) and :math:`\lfloor \text{ratio}\cdot n_g\rfloor + 1`
            nodes are kept at most; that code runs with ``ratio=0.2``
            (default: :obj:`False`).
        graphs (Tensor, optional): bool ``[num_graphs]``: augment only these
            graphs of the batch and pass the others unchanged, as a per-graph
            draw from a pool of augmentations needs (:class:`~gcl.augment.RandomChoice`
            with ``per_graph=True``) (default: :obj:`None`, every graph).

    Shapes:
        - **input:** ``x`` :math:`[N, F]`, ``edge_index`` :math:`[2, E]`
        - **output:** :class:`Augmented` with ``x`` :math:`[N', F]`,
          ``node_mask`` :math:`[N]`, ``edge_mask`` :math:`[E]`

    Example:
        >>> x = torch.randn(5, 2)
        >>> edge_index = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])
        >>> random_walk_subgraph(x, edge_index, ratio=0.6).x.size(0)
        3
    """
    restart = check_switch("restart", restart)
    graphcl_reference = check_switch("graphcl_reference", graphcl_reference)
    check_probability("ratio", ratio)
    check_generator("generator", generator)
    if isinstance(expansion, bool) or not 0.0 < float(expansion) <= 1.0:
        raise ValueError(f"expansion must be in (0, 1] (got {expansion})")
    if walk_length is not None and (not is_integer(walk_length) or walk_length < 0):
        raise ValueError(f"walk_length must be a non-negative integer or None (got {walk_length!r})")
    checked, num_nodes = check_graph(x, edge_index, batch, edge_attr, num_graphs)
    if num_nodes == 0 or (ratio == 1.0 and not graphcl_reference):
        return _identity(x, edge_index, batch, edge_attr, node_mask=True)  # the input's tensors
    edge_index = checked
    device = x.device
    sizes = graph_sizes(batch, num_nodes, num_graphs, device)
    num_graphs = sizes.numel()
    graph = node_graph(batch, num_nodes, device)
    target_f = ratio * sizes.to(torch.float64)
    if graphcl_reference:
        target = torch.floor(target_f).long() + 1
        walk_length, restart, expansion = 1, False, 1.0
    else:
        target = round_half_even(target_f).clamp_min(1)
    target = torch.minimum(target, sizes)
    chosen = None if graphs is None else _selected(graphs, num_graphs, device)
    if chosen is not None:
        target = torch.where(chosen, target, torch.ones_like(target))  # the others: a seed alone, kept whole below

    order = nodes_in_graph_order(batch, num_nodes, device)
    start = exclusive_cumsum(sizes)
    nonempty = sizes > 0
    local = torch.rand(num_graphs, generator=generator, device=device, dtype=torch.float64)
    local = torch.minimum((local * sizes).long(), (sizes - 1).clamp_min(0))
    seeds = order[(start + local)[nonempty]]

    if walk_length is None and expansion == 1.0 and (device.type == "cpu" or HOST_SEARCH_OFF_CPU):
        # Breadth-first search in compiled code: same distribution, no per-step tensor ops.
        # Off the CPU too: the search is sequential in the hops (about 150 steps with
        # restarts on a PROTEINS batch), and a device loop pays a launch per operation and a
        # synchronisation per check on every step; copying the indices to the host costs less
        # (benchmarks/results/augment-gpu.md).
        host = torch.device("cpu")
        host_generator = generator
        if device.type != "cpu":
            host_generator = torch.Generator().manual_seed(draw_seed(generator, device))
        level, visited, scale = _breadth_first_levels(
            edge_index.to(host), num_nodes, graph.to(host), sizes.to(host), target.to(host),
            seeds.to(host), restart, host_generator,
        )
        level, visited = level.to(device), visited.to(device)
        key = level.to(torch.float64)
        key += torch.rand(num_nodes, generator=generator, device=device, dtype=torch.float64)
        rank = _rank_within_graph(key, graph, sizes, scale)
        keep = visited & (rank < target.index_select(0, graph))
        if chosen is not None:
            keep |= ~chosen.index_select(0, graph)
        return apply_node_mask(x, edge_index, batch, edge_attr, keep)

    # Grow every graph at once; a node's step of admission orders it, and the
    # first target[g] nodes per graph (ties at the last step broken at random)
    # form the subgraph. Graphs that already have enough nodes may keep growing:
    # the extra nodes are cut by that ranking.
    step_of = torch.full((num_nodes,), -1, dtype=torch.long, device=device)
    step_of[seeds] = 0
    visited = step_of >= 0
    # Drawn before the loop, so that no draw depends on how many steps run between two
    # progress checks: the ties' order and the restarts'.
    tie = torch.rand(num_nodes, generator=generator, device=device, dtype=torch.float64)
    restart_seeds = _RestartSeeds(graph, generator) if restart else None
    # With a walk_length every step counts: a graph that runs out of nodes to reach is
    # re-seeded at that very step, found without a synchronisation. Without one the next
    # progress check finds it: a later seed changes the step numbers of the graph's later
    # nodes, not their order, so the kept set is drawn alike.
    step_restarts = restart_seeds if walk_length is not None else None
    finished = ~nonempty
    reach = Reach(edge_index, num_nodes)
    count = _GraphCounter(graph, sizes)
    on_cpu = on_host(visited)
    step = 0
    admitted = nonempty.long()
    while walk_length is None or step < walk_length:
        finished |= admitted >= target
        if bool(finished.all()):
            break
        # A few plain expansion steps between two (syncing) progress checks.
        for _ in range(_STEPS_PER_CHECK):
            if walk_length is not None and step >= walk_length:
                break
            step += 1
            reachable = reach(visited) & ~visited
            frontier = reachable
            if expansion < 1.0:
                frontier = reachable & (torch.rand(num_nodes, generator=generator, device=device) < expansion)
            if step_restarts is not None:
                joined = count(frontier)
                # Nothing left to reach (thinning may admit nobody although neighbours remain).
                left = joined if expansion == 1.0 else count(reachable)
                exhausted = (left == 0) & (admitted < target)
                if not on_cpu or bool(exhausted.any()):  # on a device: no synchronisation per step
                    frontier = frontier | step_restarts(visited, exhausted)
                    joined = joined + exhausted.long()
                admitted = admitted + joined
            step_of.masked_fill_(frontier, step)
            visited |= frontier
        if step_restarts is not None:
            continue
        before = admitted
        admitted = count(visited)
        stuck = ~finished & (admitted == before) & (admitted < target)
        if bool(stuck.any()):
            if expansion < 1.0:
                # Thinning may have admitted nobody although neighbours remain.
                stuck &= count(reach(visited) & ~visited) == 0
            if restart_seeds is not None:
                fresh = restart_seeds(visited, stuck)
                step_of.masked_fill_(fresh, step)
                visited |= fresh
                admitted = admitted + stuck.long()
            else:
                finished |= stuck

    # Rank the admitted nodes of every graph by step, ties at random.
    unvisited = torch.full_like(target_f[:1], float(step + 1))
    key = torch.where(visited, step_of.to(torch.float64), unvisited) + tie
    rank = _rank_within_graph(key, graph, sizes, float(step + 2))
    keep = visited & (rank < target.index_select(0, graph))
    if chosen is not None:
        keep |= ~chosen.index_select(0, graph)
    return apply_node_mask(x, edge_index, batch, edge_attr, keep)


#: Expansion steps of :func:`random_walk_subgraph` between two progress checks.
_STEPS_PER_CHECK = 4

#: Whether :func:`random_walk_subgraph` on a non-CPU device counts the hops with the
#: host's breadth-first search (``expansion=1``, no ``walk_length``) instead of the
#: step-by-step tensor loop that it uses otherwise.
HOST_SEARCH_OFF_CPU = True


def _rank_within_graph(key: Tensor, graph: Tensor, sizes: Tensor, scale: float) -> Tensor:
    r"""Rank of every item by ``key`` (in ``[0, scale)``) among the items of its
    graph, with one sort."""
    order = argsort_distinct(graph.to(torch.float64) * scale + key)
    rank = torch.empty_like(graph)
    positions = torch.arange(graph.numel(), device=graph.device)
    rank[order] = positions - exclusive_cumsum(sizes).index_select(0, graph.index_select(0, order))
    return rank


def _breadth_first_levels(
    edge_index: Tensor,
    num_nodes: int,
    graph: Tensor,
    sizes: Tensor,
    target: Tensor,
    seeds: Tensor,
    restart: bool,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor, float]:
    r"""Admission order of :func:`random_walk_subgraph` (``expansion=1``, no
    ``walk_length``) on CPU, from SciPy's breadth-first search.

    A virtual source linked to the seeds turns the searches from every seed
    into one. Graphs whose reachable set is smaller than their target get a
    uniformly random unvisited seed and another round, as the step-by-step
    loop restarts them. Returns every node's level (``round * (N + 1) +
    hops``; nodes never reached come after all others), the visited mask and
    the levels' bound.
    """
    n = num_nodes
    _, col, by_source = edges_by_source(edge_index, n)
    num_edges = col.size
    # Row n is the virtual source; room for one seed per node behind the edges.
    indices = np.empty(num_edges + n, dtype=np.int32)
    indices[:num_edges] = col
    indptr = np.zeros(n + 2, dtype=np.int32)
    indptr[: n + 1] = by_source
    search = _BreadthFirstSearch(n + 1)
    graph_np = graph.numpy()
    num_graphs = sizes.numel()
    missing = np.minimum(target.numpy(), sizes.numpy())  # nodes each graph still needs
    level = np.full(n, -1, dtype=np.int64)
    position = np.empty(n + 1, dtype=np.int64)
    new_seeds = seeds.numpy()
    round_ = 0
    while new_seeds.size > 0:
        end = num_edges + new_seeds.size
        indices[num_edges:end] = new_seeds
        indptr[n + 1] = end
        found, parent = search(indices[:end], indptr, n)
        found = found[1:]  # without the virtual source
        # In breadth-first order the parents' positions never decrease, so the
        # hop levels are consecutive blocks: block l + 1 holds the nodes whose
        # parent lies in block l.
        position[n] = -1
        position[found] = np.arange(found.size)
        parent_position = position[parent[found]]
        bounds = [0]
        while bounds[-1] < found.size:
            bounds.append(int(np.searchsorted(parent_position, bounds[-1], side="left")))
        hops = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
        fresh = level[found] < 0  # nodes of earlier rounds keep their levels
        level[found[fresh]] = round_ * (n + 1) + hops[fresh]
        round_ += 1
        if not restart:
            break
        missing -= np.bincount(graph_np[found[fresh]], minlength=num_graphs)
        stuck = missing > 0
        if not stuck.any():
            break
        # One uniformly random unvisited node of every stuck graph (in NumPy: the
        # tensor version, _random_unvisited, costs about 0.1 ms more per round).
        candidates = np.flatnonzero((level < 0) & stuck[graph_np])
        cand_graph = graph_np[candidates]
        order = np.argsort(cand_graph, kind="stable")
        candidates, cand_graph = candidates[order], cand_graph[order]
        per_graph = np.bincount(cand_graph, minlength=num_graphs)
        first = np.cumsum(per_graph) - per_graph
        draw = torch.rand(num_graphs, generator=generator, dtype=torch.float64).numpy()
        pick = np.minimum((draw * per_graph).astype(np.int64), np.maximum(per_graph - 1, 0))
        new_seeds = candidates[(first + pick)[stuck]].astype(np.int32)
    visited = torch.from_numpy(level >= 0)
    level[level < 0] = round_ * (n + 1)  # after every reached node
    return torch.from_numpy(level), visited, float(round_ * (n + 1) + 1)


class _BreadthFirstSearch:
    r"""SciPy's breadth-first search (:func:`scipy.sparse.csgraph.breadth_first_order` with
    predecessors) on CSR arrays of ``size`` nodes (``int32``), called again and again: the
    compiled search is called directly where SciPy's layout has it, without building and
    validating a sparse matrix each time (about 10 µs per search, most of a search from a
    few seeds)."""

    def __init__(self, size: int) -> None:
        self.size = size
        try:
            from scipy.sparse.csgraph._traversal import _breadth_first_directed
        except ImportError:  # pragma: no cover - other SciPy layouts
            _breadth_first_directed = None
        self.kernel = _breadth_first_directed
        if self.kernel is not None:
            self.order = np.empty(size, dtype=np.int32)
            self.parent = np.empty(size, dtype=np.int32)

    def __call__(self, indices: np.ndarray, indptr: np.ndarray, source: int) -> tuple[np.ndarray, np.ndarray]:
        r"""The nodes reached from ``source`` in breadth-first order (``source`` first) and every
        node's parent (-9999 where none)."""
        if self.kernel is None:  # other SciPy layouts
            from scipy.sparse import csr_matrix
            from scipy.sparse.csgraph import breadth_first_order

            weights = np.ones(indices.size)  # float64: csgraph's own dtype, no conversion
            matrix = csr_matrix((weights, indices, indptr), shape=(self.size, self.size), copy=False)
            found, parent = breadth_first_order(matrix, source, directed=True, return_predecessors=True)
            return found, parent
        self.parent.fill(-9999)  # SciPy's mark of a node not reached
        count = self.kernel(source, indices, indptr, self.order, self.parent)
        return self.order[:count], self.parent


class _GraphCounter:
    r"""How many nodes of every graph a mask holds (:func:`count_per_graph`); on the CPU,
    for nodes in graph order (PyG's batches), the difference of a running sum at every graph's
    two ends, which costs about half as much as the scattered sum (on a GPU it takes more
    launches)."""

    def __init__(self, graph: Tensor, sizes: Tensor) -> None:
        self.graph = graph
        self.num_graphs = sizes.numel()
        self.bounds: tuple[Tensor, Tensor] | None = None
        if on_host(graph) and is_sorted(graph):
            ends = torch.cumsum(sizes, 0)
            self.bounds = (ends - sizes, ends)
            self.running = torch.zeros(graph.numel() + 1, dtype=torch.long)

    def __call__(self, mask: Tensor) -> Tensor:
        if self.bounds is None:
            return count_per_graph(self.graph, mask, self.num_graphs)
        starts, ends = self.bounds
        torch.cumsum(mask, 0, out=self.running[1:])  # running[i]: how many of the first i nodes
        return self.running.index_select(0, ends) - self.running.index_select(0, starts)


class _RestartSeeds:
    r"""New seeds of the graphs that ran out of nodes to reach, without a synchronisation:
    in every such graph, its unvisited node that comes first in a random order of all
    nodes, drawn once. Every pick is a uniformly random unvisited node of its graph: the
    nodes still unvisited were behind every earlier pick of their graph, and nothing else
    tells their places apart."""

    def __init__(self, graph: Tensor, generator: torch.Generator | None) -> None:
        self.graph = graph
        self.place = torch.randperm(graph.numel(), generator=generator, device=graph.device)

    def __call__(self, visited: Tensor, stuck: Tensor) -> Tensor:
        r"""Mask of one new seed per ``stuck`` graph (each has an unvisited node)."""
        num_nodes = visited.numel()
        place = self.place.masked_fill(visited, num_nodes)
        first = torch.full_like(stuck, num_nodes, dtype=torch.long).scatter_reduce_(0, self.graph, place, "amin")
        # places are distinct: the node at its graph's first place is the only one there
        return (place == first.index_select(0, self.graph)) & stuck.index_select(0, self.graph)
