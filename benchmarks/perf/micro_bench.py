r"""Micro-benchmarks behind the choices and proposals in ``benchmarks/results/perf.md``.

On one 128-graph PROTEINS batch (and one COLLAB batch for the wide-input case),
single-threaded, CPU time, median over ``--repeats`` calls, variants interleaved:

* each GraphCL augmentation of :func:`gcl.methods.make_augmentation` and the
  three views PyGCL's pool is compared with;
* the GIN 3 × 32 forward + backward: two passes (one per view) against one pass
  over both views concatenated into one batch, and the library's neighbourhood
  sum (sparse products, :mod:`gcl.nn.aggregate`) against PyG's message passing
  on ``edge_index``, with activation checkpointing, in micro-batches of 16 graphs
  (``micro_batch_size``) and without node embeddings; the sum alone, and the
  cost of building its matrices;
* the node encoder of Graph Barlow Twins on Cora (GCN 1433 → 512 → 256 with
  batch norm), forward + backward: the GCN's normalised sum as sparse
  products over an adjacency built once per pass (:func:`gcl.nn.aggregate.neighbour_sum`)
  against PyG's ``GCNConv`` message passing;
* GRACE's loss on Cora-sized embeddings (symmetric InfoNCE with intra-view
  negatives, 2,708 × 128), forward + backward: the library's against each
  direction concatenating its own logits;
* the HGP-SL encoder and classifier of the HGP-SL table on one 512-graph NCI1
  batch (128 channels, three convolutions, pooling ratio 0.8, 4-hop candidates,
  sparsemax), forward + backward: the library's sums (sparse products, the
  learnt edge weights' gradient per edge; SciPy's k-hop candidates) against
  message passing and the tensor construction of the candidates (sparsemax's
  sort is the library's in both);
* one Adam step over GraphCL's parameters: torch's default (a loop over the
  parameters) against the fused kernel that :meth:`gcl.train.TrainConfig.make_optimizer` uses;
* the training loop's own cost: :func:`gcl.train.fit` with no batches (set-up and
  epoch end), and per step with a one-parameter method over pre-collated batches,
  without and with :class:`gcl.data.CollatedLoader` (then on the dataset itself).

Usage::

    python benchmarks/perf/micro_bench.py --json /tmp/gcl-perf/micro.json
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, median, use_shared_data, write_json


def timed(functions: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    r"""Median CPU seconds per call, variants interleaved call by call."""
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(2):  # warm-up
        for function in functions.values():
            function()
    for _ in range(repeats):
        for name, function in functions.items():
            started = time.process_time()
            function()
            samples[name].append(time.process_time() - started)
    return {name: median(values) for name, values in samples.items()}


def batch_of(name: str, seed: int = 0) -> Any:
    from gcl.data import CollatedLoader, load_dataset

    dataset = load_dataset(name)
    loader = CollatedLoader(dataset, 128, shuffle=True, generator=torch.Generator().manual_seed(seed))
    return dataset, next(iter(loader))


def augmentations(batch: Any, repeats: int) -> dict[str, float]:
    import gcl.augment as A
    from gcl.methods import make_augmentation

    candidates: dict[str, Any] = {name: make_augmentation(name, 0.2) for name in
                                  ("drop_nodes", "subgraph", "perturb_edges", "mask_features")}
    candidates["drop_nodes (bernoulli)"] = A.DropNodes(0.2, mode="bernoulli")
    candidates["drop_edges"] = A.DropEdges(0.2)
    candidates["mask_features (dim, zero)"] = A.MaskFeatures(0.2, mode="dim", fill="zero")
    def view(augmentation: Any) -> Callable[[], Any]:
        return lambda: augmentation(batch)

    return timed({name: view(augmentation) for name, augmentation in candidates.items()}, repeats)


def encoders(dataset: Any, batch: Any, repeats: int) -> dict[str, float]:
    from torch_geometric.utils import scatter

    from gcl.nn import GIN
    from gcl.nn import gin as gin_module
    from gcl.nn.aggregate import Adjacency, _stable_order, gin_aggregate

    torch.manual_seed(0)
    encoder = GIN(dataset.num_features, 32, 3)
    nodes = int(batch.num_nodes)
    graphs = int(batch.num_graphs)
    both_x = torch.cat([batch.x, batch.x])
    both_edges = torch.cat([batch.edge_index, batch.edge_index + nodes], dim=1)
    both_batch = torch.cat([batch.batch, batch.batch + graphs])
    sparse = gin_module.supports_sparse_aggregation

    def step(x: Any, edges: Any, index: Any, count: int, message_passing: bool = False,
             recompute: bool = False, micro: int | None = None, nodes: bool = True) -> None:
        # message passing: PyG's GINConv on edge_index (gcl's GIN for other dtypes; PyGCL's GIN);
        # recompute: activation checkpointing (each layer runs again in the backward pass);
        # micro: micro-batches of that many graphs, each run again in the backward pass;
        # nodes=False: graph embeddings only (what the methods ask for)
        gin_module.supports_sparse_aggregation = (lambda _: False) if message_passing else sparse
        encoder.activation_checkpointing = recompute
        encoder.micro_batch_size = micro
        try:
            encoder.zero_grad(set_to_none=True)
            encoder(x, edges, index, num_graphs=count, node_embeddings=nodes).graph.sum().backward()
        finally:
            gin_module.supports_sparse_aggregation = sparse
            encoder.activation_checkpointing = False
            encoder.micro_batch_size = None

    def two_passes() -> None:
        step(batch.x, batch.edge_index, batch.batch, graphs)
        step(batch.x, batch.edge_index, batch.batch, graphs)

    # The neighbourhood sum alone, 32 channels, forward + backward (GIN's second and third layers)
    hidden = torch.randn(nodes, 32)
    upstream = torch.randn(nodes, 32)
    adjacency = Adjacency(batch.edge_index, nodes)
    targets = batch.edge_index[1].int()

    def sum_by_messages() -> None:
        x = hidden.clone().requires_grad_()
        messages = x.index_select(0, batch.edge_index[0])
        (x + scatter(messages, batch.edge_index[1], dim=0, dim_size=nodes, reduce="sum")).backward(upstream)

    def sum_by_products() -> None:
        x = hidden.clone().requires_grad_()
        gin_aggregate(x, adjacency).backward(upstream)

    return timed({
        "two passes": two_passes,
        "one pass over both views": lambda: step(both_x, both_edges, both_batch, 2 * graphs),
        "one view": lambda: step(batch.x, batch.edge_index, batch.batch, graphs),
        "one view, message passing": lambda: step(batch.x, batch.edge_index, batch.batch, graphs, True),
        "one view, activation checkpointing": lambda: step(batch.x, batch.edge_index, batch.batch, graphs,
                                                           recompute=True),
        "one view, graph embeddings only": lambda: step(batch.x, batch.edge_index, batch.batch, graphs,
                                                        nodes=False),
        "one view, micro-batches of 16 graphs": lambda: step(batch.x, batch.edge_index, batch.batch, graphs,
                                                             micro=16, nodes=False),
        "neighbourhood sum (32 channels), message passing": sum_by_messages,
        "neighbourhood sum (32 channels), sparse products": sum_by_products,
    }, repeats) | timed({  # apart: interleaved with the passes above, these small calls meet cold caches
        "building the Adjacency (forward matrix)": lambda: Adjacency(batch.edge_index, nodes),
        "building the Adjacency (both matrices)": lambda: Adjacency(batch.edge_index, nodes).sources,
        "sorting the edges by target, torch.sort": lambda: torch.sort(targets, stable=True),
        "sorting the edges by target, NumPy 16-bit radix sort": lambda: _stable_order(targets, nodes),
    }, repeats)


def node_encoders(repeats: int) -> dict[str, float]:
    from gcl.data import load_dataset
    from gcl.nn import GCN
    from gcl.nn import gcn as gcn_module

    data = load_dataset("Cora")[0]
    torch.manual_seed(0)
    encoder = GCN(data.num_features, 512, num_layers=2, out_channels=256, batch_norm=True,
                  batch_norm_momentum=0.01, plain_last=True)
    sparse = gcn_module.supports_sparse_aggregation

    def step(message_passing: bool) -> None:
        gcn_module.supports_sparse_aggregation = (lambda _: False) if message_passing else sparse
        try:
            encoder.zero_grad(set_to_none=True)
            encoder(data.x, data.edge_index).sum().backward()
        finally:
            gcn_module.supports_sparse_aggregation = sparse

    return timed({"sparse products": lambda: step(False), "message passing (GCNConv)": lambda: step(True)}, repeats)


def node_losses(repeats: int) -> dict[str, float]:
    r"""GRACE's loss on Cora-sized embeddings (2,708 × 128, τ = 0.4, symmetric, intra-view
    negatives), forward + backward: the library's InfoNCE, whose second direction reads the
    cross-view block of the first column by column and sums each block's log-sum-exp, against
    each direction computing its own blocks and a cross-entropy over their concatenation."""
    import torch.nn.functional as F

    from gcl.losses import InfoNCE

    torch.manual_seed(0)
    z1 = torch.randn(2708, 128, requires_grad=True)
    z2 = torch.randn(2708, 128, requires_grad=True)
    loss = InfoNCE(temperature=0.4, symmetric=True, intra_view_negatives=True)

    def concatenated() -> torch.Tensor:
        a1, a2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
        target = torch.arange(a1.size(0))

        def direction(anchors: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
            same = anchors @ anchors.T / 0.4
            same.diagonal().fill_(float("-inf"))
            return F.cross_entropy(torch.cat([anchors @ other.T / 0.4, same], dim=1), target)

        return 0.5 * (direction(a1, a2) + direction(a2, a1))

    return timed({"InfoNCE (library)": lambda: loss(z1, z2).backward(),
                  "two directions, concatenated logits": lambda: concatenated().backward()}, repeats)


def hgpsl_steps(repeats: int, name: str = "NCI1") -> tuple[dict[str, Any], dict[str, float]]:
    from gcl.data import CollatedLoader, load_dataset
    from gcl.methods import build_method
    from gcl.nn import hgpsl as hgpsl_module
    from gcl.nn import pool as pool_module

    dataset = load_dataset(name, use_node_attr=True)
    batch = next(iter(CollatedLoader(dataset, 512, shuffle=True, generator=torch.Generator().manual_seed(0))))
    torch.manual_seed(0)
    method = build_method("supervised", dataset, encoder="hgpsl", hidden_channels=128, num_layers=3,
                          pooling_ratio=0.8, dropout=0.0, score_normalization="sym", num_hops=4,
                          classifier_channels=[128, 64])
    library = (hgpsl_module.supports_sparse_aggregation, pool_module.supports_sparse_aggregation,
               pool_module._neighbourhood_candidates)

    def step(message_passing: bool) -> None:
        if message_passing:
            hgpsl_module.supports_sparse_aggregation = pool_module.supports_sparse_aggregation = lambda _: False
            pool_module._neighbourhood_candidates = pool_module._neighbourhood_candidates_torch
        try:
            method.zero_grad(set_to_none=True)
            loss = method(batch)
            (loss if isinstance(loss, torch.Tensor) else loss.loss).backward()
        finally:
            (hgpsl_module.supports_sparse_aggregation, pool_module.supports_sparse_aggregation,
             pool_module._neighbourhood_candidates) = library

    info = {"dataset": name, "graphs": int(batch.num_graphs), "nodes": int(batch.num_nodes),
            "edges": int(batch.edge_index.size(1))}
    return info, timed({"library": lambda: step(False),
                        "message passing, tensor candidates": lambda: step(True)}, repeats)


def optimisers(dataset: Any, repeats: int) -> dict[str, float]:
    from gcl.methods import build_method

    torch.manual_seed(0)
    parameters = list(build_method("graphcl", dataset).parameters())
    for parameter in parameters:
        parameter.grad = torch.randn_like(parameter)
    loop = torch.optim.Adam(parameters, lr=1e-3)
    fused = torch.optim.Adam(parameters, lr=1e-3, fused=True)
    return timed({"Adam (default: loop over parameters)": loop.step, "Adam (fused)": fused.step}, repeats)


def loop_costs(dataset: Any, repeats: int) -> dict[str, float]:
    from torch import nn

    from gcl.data import CollatedLoader
    from gcl.train import TrainConfig, fit

    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(()))

        def forward(self, batch: Any) -> torch.Tensor:
            return self.weight * 2.0

    method = Constant()
    config = TrainConfig(epochs=1, batch_size=128, progress=False, device="cpu")
    batches = list(CollatedLoader(dataset, 128, shuffle=True, drop_last=True))
    # fit() refuses an epoch without batches: the set-up is a one-step fit less one loop step
    times = timed({
        "one step": lambda: fit(method, batches[:1], config),
        "loop": lambda: fit(method, batches, config),
        "loop with CollatedLoader": lambda: fit(method, dataset, config),
    }, repeats)
    per_step = (times["loop"] - times["one step"]) / max(len(batches) - 1, 1)
    return {
        "fit() set-up and epoch end": times["one step"] - per_step,
        "loop per step": per_step,
        "loop per step, loading included": times["loop with CollatedLoader"] / len(batches),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--wide", default="COLLAB", help="dataset with wide node features ('' to skip)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    use_shared_data()
    dataset, batch = batch_of("PROTEINS")
    results: dict[str, Any] = {"environment": environment(args.threads), "repeats": args.repeats,
                               "batch": {"dataset": "PROTEINS", "nodes": int(batch.num_nodes),
                                         "edges": int(batch.edge_index.size(1))}}
    results["augmentations"] = augmentations(batch, args.repeats)
    results["encoder"] = encoders(dataset, batch, args.repeats)
    results["node_encoder"] = node_encoders(max(args.repeats // 3, 5))
    results["node_loss"] = node_losses(max(args.repeats // 3, 5))
    results["hgpsl_batch"], results["hgpsl"] = hgpsl_steps(max(args.repeats // 3, 5))
    results["optimiser"] = optimisers(dataset, args.repeats * 5)
    results["loop"] = loop_costs(dataset, args.repeats)
    if args.wide:
        wide_dataset, wide_batch = batch_of(args.wide)
        results["wide_batch"] = {"dataset": args.wide, "nodes": int(wide_batch.num_nodes),
                                 "edges": int(wide_batch.edge_index.size(1)), "features": wide_dataset.num_features}
        results["wide_encoder"] = {k: v for k, v in encoders(wide_dataset, wide_batch, max(args.repeats // 6, 3)).items()
                                   if "both views" not in k and "two passes" not in k}
    write_json(args.json, results)


if __name__ == "__main__":
    main()
