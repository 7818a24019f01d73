r"""Speed of :mod:`gcl.augment` on a GPU against the same calls on the CPU, in one run.

Every batched augmentation and centrality is called on PROTEINS batches of 128
graphs (the size of ``augment_bench.py``) and of 1,024 graphs, once with the
tensors on the CPU (one thread, the default of every benchmark here) and once
on the CUDA device. Times are wall-clock medians over ``--repeats`` calls,
after warm-up calls; on the device each call is followed by
``torch.cuda.synchronize()``, so the time includes its kernels. On the CPU the
subgraph views and the centralities take the SciPy paths, on the device the
tensor paths: the table compares what a user gets on each.

Usage::

    python benchmarks/perf/augment_gpu_bench.py --device cuda --markdown benchmarks/results/augment-gpu.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import Batch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment

import gcl.augment as aug
from gcl.augment import adaptive, centrality, functional
from gcl.data import load_dataset

Op = Callable[[Batch, torch.Generator], object]

OPS: list[tuple[str, Op]] = [
    ("node dropping (p=0.2)",
     lambda b, g: functional.drop_nodes(b.x, b.edge_index, b.batch, p=0.2, generator=g, num_graphs=b.num_graphs)),
    ("edge perturbation (p=0.2, remove + add)",
     lambda b, g: functional.perturb_edges(b.x, b.edge_index, b.batch, p=0.2, generator=g,
                                           num_graphs=b.num_graphs)),
    ("edge removing (p=0.2, Bernoulli)",
     lambda b, g: functional.drop_edges(b.x, b.edge_index, b.batch, p=0.2, generator=g, num_graphs=b.num_graphs)),
    ("feature masking, columns (p=0.2)",
     lambda b, g: functional.mask_features(b.x, 0.2, mode="dim", fill="zero", generator=g)),
    ("attribute masking, nodes (p=0.2)",
     lambda b, g: functional.mask_features(b.x, 0.2, batch=b.batch, generator=g, num_graphs=b.num_graphs)),
    ("subgraph (ratio 0.8)",
     lambda b, g: functional.random_walk_subgraph(b.x, b.edge_index, b.batch, ratio=0.8, generator=g,
                                                  num_graphs=b.num_graphs)),
    ("degree centrality",
     lambda b, g: centrality.degree_centrality(b.edge_index, b.num_nodes, b.batch, num_graphs=b.num_graphs)),
    ("PageRank", lambda b, g: centrality.pagerank(b.edge_index, b.num_nodes, b.batch, num_graphs=b.num_graphs)),
    ("eigenvector centrality",
     lambda b, g: centrality.eigenvector_centrality(b.edge_index, b.num_nodes, b.batch, num_graphs=b.num_graphs)),
    ("adaptive edge dropping (degree)",
     lambda b, g: adaptive.adaptive_drop_edges(b.x, b.edge_index, b.batch, generator=g, num_graphs=b.num_graphs)),
    ("adaptive feature masking (PageRank)",
     lambda b, g: adaptive.adaptive_mask_features(b.x, b.edge_index, b.batch, centrality="pagerank", generator=g,
                                                  num_graphs=b.num_graphs)),
    ("GraphCL random4 view (transform)", lambda b, g: aug.RandomChoice(
        [aug.DropNodes(0.2, generator=g), aug.PerturbEdges(0.2, generator=g), aug.MaskFeatures(0.2, generator=g),
         aug.RandomWalkSubgraph(0.8, generator=g)], generator=g)(b)),
]


def timed(op: Op, batch: Batch, generator: torch.Generator, device: torch.device, repeats: int) -> float:
    r"""Median wall-clock seconds of one call, the device's kernels included."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(3):
        op(batch, generator)
    sync()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        op(batch, generator)
        sync()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available on this machine")
    dataset = load_dataset("PROTEINS")
    env = environment(args.threads, args.device)
    rows: list[dict[str, Any]] = []
    for size in args.sizes:
        cpu_batch = Batch.from_data_list([dataset[i] for i in range(min(size, len(dataset)))])
        dev_batch = cpu_batch.clone().to(device)  # Batch.to moves in place
        for name, op in OPS:
            cpu = timed(op, cpu_batch, torch.Generator().manual_seed(0), torch.device("cpu"), args.repeats)
            gpu = timed(op, dev_batch, torch.Generator(device=device).manual_seed(0), device, args.repeats)
            rows.append({"graphs": cpu_batch.num_graphs, "nodes": cpu_batch.num_nodes, "op": name, "cpu": cpu,
                         "gpu": gpu})
            print(f"{size:5d} {name:45s} cpu {1e3 * cpu:8.3f} ms  {args.device} {1e3 * gpu:8.3f} ms", flush=True)
    lines = [
        "# Augmentations on a GPU", "",
        "Generated by `benchmarks/perf/augment_gpu_bench.py`.", "",
        f"Command: `{env['command']}`", "",
        f"- Date: {env['date']}; gcl {env['gcl']} (commit {env['commit'] or 'n/a'}); torch {env['torch']}, "
        f"torch_geometric {env['torch_geometric']}, Python {env['python']}.",
        f"- Device: {env.get('gpu', args.device)} ({env.get('gpu_memory_gb', '?')} GB), CUDA {env.get('cuda', '?')}; "
        f"host CPU {env['cpu']} ({env['cores']} cores), CPU column with {args.threads} thread(s).",
        "- Wall-clock medians of single calls (after 3 warm-up calls); device calls end with "
        "`torch.cuda.synchronize()`. PROTEINS batches, features 3.", "",
        f"| graphs | nodes | operation | CPU (ms) | {args.device} (ms) | CPU / {args.device} |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    lines += [f"| {r['graphs']} | {r['nodes']} | {r['op']} | {1e3 * r['cpu']:.3f} | {1e3 * r['gpu']:.3f} | "
              f"{r['cpu'] / r['gpu']:.1f}× |" for r in rows]
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(lines) + "\n")
        print(f"wrote {args.markdown}")
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
