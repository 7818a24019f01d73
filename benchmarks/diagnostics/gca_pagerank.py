r"""How far GCA's edge-drop probabilities move between networkx's PageRank and GCA's own.

GCA's code ranks nodes with damped propagation steps from all-ones scores, 200 of
them for the edge weights (``centrality='pagerank-gca'``,
:func:`gcl.augment.centrality.truncated_pagerank`; its feature weights take 10);
``centrality='pagerank'`` is networkx's converged PageRank. This diagnostic computes
GCA's edge-drop probabilities (Eq. 4, ``p=0.3``, ``p_tau=0.7``) both ways on real
graphs and reports how far apart they are, with degree centrality for scale.

Usage::

    GCL_DATA=../shared/datasets python benchmarks/diagnostics/gca_pagerank.py \
        --datasets Cora PROTEINS --markdown benchmarks/results/gca-pagerank.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _diagnostic import emit, provenance


def compare(name: str) -> dict[str, float]:
    r"""Edge-drop probabilities of ``name`` (one graph, or all graphs of a TU set collated)."""
    from torch_geometric.data import Batch

    from gcl.augment.adaptive import edge_drop_probabilities
    from gcl.data import load_dataset

    data = load_dataset(name)
    graph = data[0] if len(data) == 1 else Batch.from_data_list(list(data))
    batch = getattr(graph, "batch", None)
    probabilities = {kind: edge_drop_probabilities(graph.edge_index, graph.num_nodes, batch, p=0.3,
                                                   threshold=0.7, centrality=kind)
                     for kind in ("pagerank-gca", "pagerank", "degree")}
    gca = probabilities["pagerank-gca"]
    out = {"edges": float(gca.numel())}
    for kind in ("pagerank", "degree"):
        gap = (probabilities[kind] - gca).abs()
        out[f"{kind} max"], out[f"{kind} mean"] = float(gap.max()), float(gap.mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--datasets", nargs="+", default=["Cora", "PROTEINS"])
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.time()
    rows = [(name, compare(name)) for name in args.datasets]
    lines = ["# GCA edge-drop probabilities: networkx PageRank vs GCA's own", "",
             "Absolute difference from the probabilities with `centrality='pagerank-gca'` (GCA's code), per edge "
             "(p = 0.3, p_tau = 0.7; TU sets: all graphs collated, each graph normalised on its own).", "",
             "| dataset | edges | 'pagerank': max | mean | 'degree': max | mean |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {name} | {r['edges']:.0f} | {r['pagerank max']:.3f} | {r['pagerank mean']:.4f} | "
              f"{r['degree max']:.3f} | {r['degree mean']:.4f} |" for name, r in rows]
    lines += ["", provenance(started), ""]
    emit("\n".join(lines), args.markdown)


if __name__ == "__main__":
    main()
