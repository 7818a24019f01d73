r"""Draws one MUTAG molecule before and after each augmentation of
:mod:`gcl.augment` and saves ``docs/figures/augmentations.png``.

Usage::

    python docs/make_augmentation_figure.py [--index 0] [--seed 3] [--out PATH]

Needs matplotlib (``pip install -e ".[plot]"`` from the repository).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import networkx as nx
import torch
from torch_geometric.data import Data

import gcl.augment as aug
from gcl.data import load_dataset

OUT = Path(__file__).resolve().parent / "figures" / "augmentations.png"
ATOMS = ["C", "N", "O", "F", "I", "Cl", "Br"]  # MUTAG's one-hot node labels
COLORS = ["#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974", "#64b5cd", "#dd8452"]


def undirected_pairs(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return {(min(u, v), max(u, v)) for u, v in edge_index.t().tolist() if u != v}


def draw(
    ax: Any,
    title: str,
    pos: dict[int, Any],
    nodes: list[int],
    colors: list[str],
    edges: AbstractSet[tuple[int, int]],
    ghost_nodes: Sequence[int] = (),
    ghost_edges: AbstractSet[tuple[int, int]] = frozenset(),
    new_edges: AbstractSet[tuple[int, int]] = frozenset(),
    marked: Sequence[int] = (),
    edge_colors: dict[tuple[int, int], float] | None = None,
) -> None:
    import matplotlib

    graph = nx.Graph()
    graph.add_nodes_from(range(len(pos)))
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    nx.draw_networkx_nodes(
        graph, pos, nodelist=list(ghost_nodes), node_color="#dddddd", node_size=90, ax=ax
    )
    nx.draw_networkx_edges(
        graph, pos, edgelist=sorted(ghost_edges), style="dotted", edge_color="#bbbbbb", ax=ax
    )
    if edge_colors is None:
        nx.draw_networkx_edges(graph, pos, edgelist=sorted(edges), width=1.6, ax=ax)
    else:
        ordered = sorted(edges)
        drawn = nx.draw_networkx_edges(
            graph,
            pos,
            edgelist=ordered,
            width=2.4,
            edge_color=[edge_colors[e] for e in ordered],
            edge_cmap=matplotlib.colormaps["viridis"],
            edge_vmin=0.0,
            edge_vmax=0.7,
            ax=ax,
        )
        ax.figure.colorbar(drawn, ax=ax, fraction=0.04, pad=0.01, label="$p_e$")
    nx.draw_networkx_edges(
        graph,
        pos,
        edgelist=sorted(new_edges),
        edge_color="#d62728",
        width=1.6,
        style="dashed",
        ax=ax,
    )
    nx.draw_networkx_nodes(graph, pos, nodelist=nodes, node_color=colors, node_size=110, ax=ax)
    nx.draw_networkx_nodes(
        graph,
        pos,
        nodelist=list(marked),
        node_color="none",
        edgecolors="black",
        linewidths=2.0,
        node_size=190,
        ax=ax,
    )


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    data: Data = load_dataset("MUTAG")[args.index]
    n = data.num_nodes
    x, edge_index = data.x, data.edge_index
    atom = x.argmax(1).tolist()
    color = [COLORS[a] for a in atom]
    base = nx.Graph()
    base.add_nodes_from(range(n))
    base.add_edges_from(undirected_pairs(edge_index))
    pos = nx.kamada_kawai_layout(base)
    pairs = undirected_pairs(edge_index)

    def gen() -> torch.Generator:
        return torch.Generator().manual_seed(args.seed)

    fig, axes = plt.subplots(2, 4, figsize=(17, 8.2))
    axes = axes.ravel()
    draw(axes[0], f"original (MUTAG #{args.index})", pos, list(range(n)), color, pairs)

    out = aug.drop_nodes(x, edge_index, p=0.2, generator=gen())
    assert out.node_mask is not None and out.edge_mask is not None
    kept = out.node_mask.nonzero().view(-1).tolist()
    draw(
        axes[1],
        "drop_nodes(p=0.2)",
        pos,
        kept,
        [color[v] for v in kept],
        undirected_pairs(torch.tensor(kept)[out.edge_index]),
        ghost_nodes=[v for v in range(n) if v not in kept],
        ghost_edges={e for e in pairs if e[0] not in kept or e[1] not in kept},
    )

    out = aug.perturb_edges(x, edge_index, p=0.2, generator=gen())
    assert out.edge_mask is not None
    num_kept = int(out.edge_mask.sum())
    kept_pairs = undirected_pairs(out.edge_index[:, :num_kept])
    draw(
        axes[2],
        "perturb_edges(p=0.2)",
        pos,
        list(range(n)),
        color,
        kept_pairs,
        ghost_edges=pairs - kept_pairs,
        new_edges=undirected_pairs(out.edge_index[:, num_kept:]),
    )

    masked = aug.mask_features(x, 0.2, generator=gen())
    rows = masked.mask.nonzero().view(-1).tolist()
    draw(
        axes[3],
        "mask_features(p=0.2, mode='node')\nringed: features replaced by noise",
        pos,
        list(range(n)),
        color,
        pairs,
        marked=rows,
    )

    out = aug.random_walk_subgraph(x, edge_index, ratio=0.6, generator=gen())
    assert out.node_mask is not None
    kept = out.node_mask.nonzero().view(-1).tolist()
    draw(
        axes[4],
        "random_walk_subgraph(ratio=0.6)",
        pos,
        kept,
        [color[v] for v in kept],
        undirected_pairs(torch.tensor(kept)[out.edge_index]),
        ghost_nodes=[v for v in range(n) if v not in kept],
        ghost_edges={e for e in pairs if e[0] not in kept or e[1] not in kept},
    )

    probabilities = aug.edge_drop_probabilities(edge_index, n, p=0.3, aggr="mean")
    edge_p = {
        (min(u, v), max(u, v)): float(pe)
        for (u, v), pe in zip(edge_index.t().tolist(), probabilities)
    }
    draw(
        axes[5],
        "GCA edge drop probability\n(degree, aggr='mean')",
        pos,
        list(range(n)),
        color,
        pairs,
        edge_colors=edge_p,
    )

    out = aug.adaptive_drop_edges(
        x, edge_index, p=0.3, aggr="mean", force_undirected=True, generator=gen()
    )
    kept_pairs = undirected_pairs(out.edge_index)
    draw(
        axes[6],
        "adaptive_drop_edges(p=0.3)",
        pos,
        list(range(n)),
        color,
        kept_pairs,
        ghost_edges=pairs - kept_pairs,
    )

    # The first draw (from --seed on) that masks the expected round(0.3 * 7) = 2 columns.
    seed = args.seed
    while True:
        generator = torch.Generator().manual_seed(seed)
        masked = aug.mask_features(x, 0.3, mode="dim", fill="zero", generator=generator)
        if int(masked.mask.sum()) == round(0.3 * x.size(1)):
            break
        seed += 1
    ax = axes[7]
    ax.imshow(masked.x.t().numpy(), cmap="Greys", aspect="auto", interpolation="nearest")
    for column, hit in enumerate(masked.mask.tolist()):
        if hit:
            ax.axhspan(column - 0.5, column + 0.5, color="#d62728", alpha=0.25)
    ax.set_yticks(range(len(ATOMS)), ATOMS)
    ax.set_xlabel("node")
    ax.set_title("mask_features(p=0.3, mode='dim')\nshaded: zeroed feature columns", fontsize=10)

    handles = [matplotlib.patches.Patch(color=c, label=a) for a, c in zip(ATOMS, COLORS)]
    fig.legend(handles=handles, loc="lower center", ncol=len(ATOMS), frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
