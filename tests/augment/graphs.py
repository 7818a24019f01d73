"""Random batched graphs for property tests, and small independent references."""

from __future__ import annotations

import networkx as nx
import torch
from hypothesis import strategies as st
from torch_geometric.data import Batch, Data


@st.composite
def graph_lists(
    draw: st.DrawFn,
    max_graphs: int = 4,
    min_nodes: int = 1,
    max_nodes: int = 9,
    undirected: bool | None = True,
    self_loops: bool = False,
    density: float | None = None,
) -> list[tuple[int, list[tuple[int, int]]]]:
    """A list of graphs, each ``(num_nodes, edges)`` with local node ids.

    Undirected graphs list every edge in both directions; no parallel edges.
    """
    num_graphs = draw(st.integers(1, max_graphs))
    und = draw(st.booleans()) if undirected is None else undirected
    graphs = []
    for _ in range(num_graphs):
        n = draw(st.integers(min_nodes, max_nodes))
        if und:
            pairs = [(u, v) for u in range(n) for v in range(u + (0 if self_loops else 1), n)]
        else:
            pairs = [(u, v) for u in range(n) for v in range(n) if self_loops or u != v]
        if density is None:
            chosen = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
        else:
            seed = draw(st.integers(0, 2**31 - 1))
            keep = torch.rand(len(pairs), generator=torch.Generator().manual_seed(seed)) < density
            chosen = keep.tolist()
        edges = [pair for pair, take in zip(pairs, chosen) if take]
        if und:
            edges = edges + [(v, u) for u, v in edges if u != v]
        graphs.append((n, edges))
    return graphs


def to_batch(graphs: list[tuple[int, list[tuple[int, int]]]], features: int = 3) -> Batch:
    """Collates graphs; ``node_id`` holds every node's global id and
    ``edge_attr`` the global ``(u, v)`` of every edge (as floats), so outputs
    can be checked against the input."""
    data_list: list[Data] = []
    offset = 0
    for n, edges in graphs:
        edge_index = (
            torch.tensor(edges, dtype=torch.long).t().contiguous()
            if edges
            else torch.empty(2, 0, dtype=torch.long)
        )
        x = torch.randn(n, features)
        node_id = torch.arange(offset, offset + n)
        edge_attr = (edge_index + offset).t().to(torch.float32)
        data_list.append(
            Data(
                x=x,
                edge_index=edge_index,
                edge_attr=edge_attr,
                node_id=node_id,
                y=torch.tensor([len(data_list)]),
            )
        )
        offset += n
    return Batch.from_data_list(data_list)


def to_networkx_graphs(
    graphs: list[tuple[int, list[tuple[int, int]]]], directed: bool
) -> list[nx.Graph]:
    out = []
    for n, edges in graphs:
        g = nx.DiGraph() if directed else nx.Graph()
        g.add_nodes_from(range(n))
        g.add_edges_from(edges)
        out.append(g)
    return out


def edge_set(edge_index: torch.Tensor) -> list[tuple[int, int]]:
    return [tuple(e) for e in edge_index.t().tolist()]


def is_symmetric(edge_index: torch.Tensor) -> bool:
    edges = sorted(edge_set(edge_index))
    return edges == sorted((v, u) for u, v in edges)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
