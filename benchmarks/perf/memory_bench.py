r"""Peak memory (RSS) of GraphCL pre-training on the largest datasets available.

Each dataset is measured in a fresh process (peak RSS is per process): the
resident size after importing torch, PyG and gcl (the baseline), the peak after
:func:`gcl.data.load_dataset` (from the processed cache, which a process before it
fills if it is empty, or processing the raw files when ``--cold``), and the peak at the end of one GraphCL epoch (GIN 3 × 32,
batch 128 or ``--batch-size``, random4 views, through :func:`gcl.train.fit`). They are compared with

* the dataset's in-memory size: the bytes of every tensor of the collated
  storage (``dataset._data``) and of its slice pointers;
* the model: parameters, buffers and Adam's two moment tensors per parameter.

``ratio = (peak − baseline) / (dataset + model)``; the raw peak over the same
sum is reported too. The baseline is the interpreter with torch and PyG loaded,
a constant that does not grow with the data.

Where the rest goes: the tensors autograd keeps for the backward of a step
(the activations of both views, counted once per storage through
:func:`torch.autograd.graph.saved_tensors_hooks`) are recorded for the step that
keeps the most. ``--mmap-threshold BYTES`` runs the measured process with glibc's
``MALLOC_MMAP_THRESHOLD_`` set, so that blocks of that size and larger are mapped
and handed back to the system when freed instead of staying in the heap: the
difference to a run without it is memory the allocator holds, not memory the
training needs. After the epoch, one more step on the epoch's largest batch
measures the most tensor bytes alive at once during a step (``torch.profiler``'s
allocation events), what the step itself needs without the allocator's retention.
``--checkpoint`` trains the GIN with activation checkpointing
(``activation_checkpointing=True``). ``--warm-up`` reads the baseline after one
GraphCL epoch on a small dataset (MUTAG, or ogbg-molbace for OGB molecules) and
one call of every augmentation the views draw from on one of its batches (MUTAG's
epoch is one step, which draws two of random4's four): the library code a first
epoch pages in and its one-off initialisation, which do not grow with the data,
then count in the baseline rather than against the dataset.
``--micro-batch K`` encodes each view in micro-batches of at most ``K`` graphs,
each run again in the backward pass (``GIN(micro_batch_size=K)``): the loss still
contrasts every graph of the batch, the activations are those of ``K`` graphs;
``--micro-batch-nodes N`` bounds each micro-batch by ``N`` nodes as well (or alone).

OGB molecules carry integer atom features: their GraphCL uses the OGB atom and
bond encoders (``ogb_mol=True``) and the structural views (node dropping,
subgraph), as feature masking needs float features.

``--adjacency csr`` hands the encoder the views' adjacency as the caller's own
sparse CSR matrix (``adj_t``), which the GIN passes to PyG's ``GINConv`` (one
sparse-dense product, PyTorch's own backward) instead of building its
:class:`gcl.nn.aggregate.Adjacency` from ``edge_index``. It was measured when
the GIN still aggregated by message passing, which materialises one
``[E, F_in]`` message tensor per layer; the result is the same, only time and
memory differ.

Usage::

    python benchmarks/perf/memory_bench.py --datasets COLLAB REDDIT-BINARY ogbg-molhiv \
        --json /tmp/gcl-perf/memory.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    current_rss_bytes,
    environment,
    peak_rss_bytes,
    tensor_bytes,
    use_shared_data,
    write_json,
)


def use_csr_adjacency() -> None:
    r"""Make GraphCL hand its encoder a sparse CSR ``adj_t`` instead of ``edge_index``."""
    from torch_geometric.utils import to_torch_csr_tensor

    import gcl.methods.graphcl as graphcl_module
    from gcl.methods.base import encode_graphs

    def encode_with_csr(encoder: Any, batch: Any) -> Any:
        if getattr(encoder, "uses_edge_attr", False):
            return encode_graphs(encoder, batch)
        view = copy.copy(batch)  # shallow: the tensors are shared
        size = (int(batch.num_nodes), int(batch.num_nodes))
        view.edge_index = to_torch_csr_tensor(batch.edge_index.flip(0), size=size)
        return encode_graphs(encoder, view)

    graphcl_module.encode_graphs = encode_with_csr


def _graphcl(name: str, dataset: Any, checkpoint: bool, micro_batch: int | None = None,
             micro_nodes: int | None = None) -> Any:
    from gcl.methods import build_method

    options: dict[str, Any] = {"activation_checkpointing": checkpoint}
    if micro_batch is not None:
        options["micro_batch_size"] = micro_batch
    if micro_nodes is not None:
        options["micro_batch_nodes"] = micro_nodes
    if name.lower().startswith("ogbg-mol"):
        return build_method("graphcl", dataset, ogb_mol=True, augmentations=("drop_nodes", "subgraph"), **options)
    return build_method("graphcl", dataset, **options)


def warm_up(name: str, checkpoint: bool, batch_size: int, micro_batch: int | None = None,
            micro_nodes: int | None = None) -> None:
    r"""One GraphCL epoch, same options, on a small dataset of the same kind (MUTAG, or
    ogbg-molbace for OGB molecules), then every augmentation the views draw from once on one
    of its batches, everything dropped afterwards: the code paged in and the lazy
    initialisation of a first training epoch then count in the baseline."""
    import gc

    import torch

    from gcl.data import CollatedLoader, load_dataset
    from gcl.methods import make_augmentation
    from gcl.methods.registry import RANDOM_POOLS
    from gcl.train import TrainConfig, fit

    ogb = name.lower().startswith("ogbg-mol")
    small = "ogbg-molbace" if ogb else "MUTAG"
    torch.manual_seed(0)
    dataset = load_dataset(small)
    fit(_graphcl(small, dataset, checkpoint, micro_batch, micro_nodes), dataset,
        TrainConfig(epochs=1, batch_size=batch_size, progress=False, device="cpu"))
    batch = next(iter(CollatedLoader(dataset, batch_size=batch_size)))
    for augmentation in (("drop_nodes", "subgraph") if ogb else RANDOM_POOLS["random4"]):
        make_augmentation(augmentation)(batch)
    del dataset, batch
    gc.collect()


def measure(name: str, threads: int, adjacency: str, checkpoint: bool = False,
            batch_size: int = 128, warm: bool = False, micro_batch: int | None = None,
            micro_nodes: int | None = None) -> dict[str, Any]:
    r"""Runs inside the child process."""
    import torch

    torch.set_num_threads(threads)
    from gcl.data import CollatedLoader, load_dataset  # noqa: F401  (imports counted in the baseline)
    from gcl.methods import build_method  # noqa: F401
    from gcl.train import TrainConfig, fit

    if adjacency == "csr":
        use_csr_adjacency()

    if warm:
        warm_up(name, checkpoint, batch_size, micro_batch, micro_nodes)
    baseline = current_rss_bytes()
    dataset = load_dataset(name)
    after_load_peak = peak_rss_bytes()
    after_load = current_rss_bytes()
    data_bytes = tensor_bytes(dataset._data) + tensor_bytes(dataset.slices)
    torch.manual_seed(0)
    method = _graphcl(name, dataset, checkpoint, micro_batch, micro_nodes)
    config = TrainConfig(epochs=1, batch_size=batch_size, progress=False, device="cpu")
    saved: dict[int, int] = {}
    most_saved = [0, 0]  # bytes, nodes of that step's batch
    largest: list[Any] = []  # the epoch's batch with the most nodes

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = max(saved.get(storage.data_ptr(), 0), storage.nbytes())
        return tensor

    def counted(forward: Any) -> Any:
        def run(batch: Any, *args: Any, **kwargs: Any) -> Any:
            saved.clear()
            with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
                out = forward(batch, *args, **kwargs)
            if sum(saved.values()) > most_saved[0]:
                most_saved[:] = [sum(saved.values()), int(batch.num_nodes)]
            if not largest or batch.num_nodes > largest[0].num_nodes:
                largest[:] = [batch]
            return out
        return run

    method.forward = counted(method.forward)
    result = fit(method, dataset, config)
    peak = peak_rss_bytes()
    parameters = sum(p.numel() * p.element_size() for p in method.parameters())
    buffers = sum(b.numel() * b.element_size() for b in method.buffers())
    model_bytes = 3 * parameters + buffers  # Adam keeps two moments per parameter
    step_peak = tensor_peak_of_step(method, largest[0]) if largest else None
    budget = data_bytes + model_bytes
    return {
        "dataset": name,
        "adjacency": adjacency,
        "checkpoint": checkpoint,
        "batch_size": batch_size,
        "micro_batch": micro_batch,
        "micro_batch_nodes": micro_nodes,
        "warm_up": warm,
        "warm_up_augmentations": warm,
        "graphs": len(dataset),
        "nodes": int(dataset._data.num_nodes),
        "edges": int(dataset._data.edge_index.size(1)),
        "features": int(dataset.num_features),
        "baseline_rss": baseline,
        "after_load_rss": after_load,
        "after_load_peak_rss": after_load_peak,
        "peak_rss": peak,
        "dataset_bytes": data_bytes,
        "model_bytes": model_bytes,
        "ratio_above_baseline": (peak - baseline) / budget,
        "ratio_raw": peak / budget,
        "epoch_seconds": result.history[0]["seconds"],
        "saved_for_backward_bytes": most_saved[0],
        "saved_for_backward_batch_nodes": most_saved[1],
        "step_tensor_peak_bytes": step_peak,
        "step_tensor_peak_batch_nodes": int(largest[0].num_nodes) if largest else None,
        "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
    }


def tensor_peak_of_step(method: Any, batch: Any) -> int:
    r"""Peak bytes of the tensors a training step allocates on top of what was alive before it:
    one forward and backward pass of ``method`` on ``batch`` (fresh views), read from the
    allocation and free events of :mod:`torch.profiler` (tensors only: NumPy's buffers and the
    allocator's own retention are not counted). Runs after the epoch's peak RSS was read."""
    from torch.profiler import ProfilerActivity, profile

    from gcl.train import loss_of

    method.train()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        loss_of(method(batch)).backward()
    method.zero_grad(set_to_none=True)
    # every allocation and free in time order (the aggregated FunctionEvents merge them)
    assert prof.profiler is not None and prof.profiler.kineto_results is not None
    events = sorted((event.start_ns(), event.nbytes())
                    for event in prof.profiler.kineto_results.events() if event.name() == "[memory]")
    current = highest = 0
    for _, change in events:
        current += change
        highest = max(highest, current)
    return highest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--datasets", nargs="+", default=["COLLAB", "REDDIT-BINARY", "ogbg-molhiv"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cold", action="store_true",
                        help="process the raw files in an empty cache (measures the one-off processing peak)")
    parser.add_argument("--adjacency", choices=("edge_index", "csr"), default="edge_index",
                        help="csr: the caller's own CSR adjacency instead of edge_index (see above)")
    parser.add_argument("--mmap-threshold", type=int, default=None,
                        help="run the measured process with MALLOC_MMAP_THRESHOLD_ set to this many bytes")
    parser.add_argument("--checkpoint", action="store_true",
                        help="GIN with activation checkpointing (GIN(activation_checkpointing=True))")
    parser.add_argument("--batch-size", type=int, default=128, help="graphs per step (default: 128)")
    parser.add_argument("--micro-batch", type=int, default=None,
                        help="encode in micro-batches of this many graphs (GIN(micro_batch_size=K))")
    parser.add_argument("--micro-batch-nodes", type=int, default=None,
                        help="at most this many nodes per micro-batch (GIN(micro_batch_nodes=N))")
    parser.add_argument("--warm-up", action="store_true",
                        help="read the baseline after one GraphCL epoch on MUTAG (ogbg-molbace for OGB molecules)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    use_shared_data()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.threads, args.adjacency, args.checkpoint, args.batch_size,
                                 args.warm_up, args.micro_batch, args.micro_batch_nodes)))
        return
    results: dict[str, Any] = {"environment": environment(args.threads), "cold": args.cold,
                               "adjacency": args.adjacency, "mmap_threshold": args.mmap_threshold,
                               "checkpoint": args.checkpoint, "batch_size": args.batch_size,
                               "warm_up": args.warm_up, "micro_batch": args.micro_batch,
                               "micro_batch_nodes": args.micro_batch_nodes, "datasets": []}
    for name in args.datasets:
        env = dict(os.environ)
        with tempfile.TemporaryDirectory(prefix="gcl-cold-cache-") as cold_cache:
            if args.cold:
                env["GCL_CACHE"] = cold_cache
            else:  # the measured load reads the processed cache: fill it first if it is empty
                warm = [sys.executable, "-c", f"from gcl.data import load_dataset; load_dataset({name!r})"]
                subprocess.run(warm, capture_output=True, env=env, check=False)
            command = [sys.executable, __file__, "--child", name, "--threads", str(args.threads),
                       "--adjacency", args.adjacency, "--batch-size", str(args.batch_size),
                       *(["--checkpoint"] if args.checkpoint else []), *(["--warm-up"] if args.warm_up else []),
                       *(["--micro-batch", str(args.micro_batch)] if args.micro_batch is not None else []),
                       *(["--micro-batch-nodes", str(args.micro_batch_nodes)]
                         if args.micro_batch_nodes is not None else [])]
            if args.mmap_threshold is not None:  # read by glibc at the measured process's start
                env["MALLOC_MMAP_THRESHOLD_"] = str(args.mmap_threshold)
            completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
        if completed.returncode != 0 or not lines:
            results["datasets"].append({"dataset": name, "error": completed.stderr.strip().splitlines()[-1:]})
        else:
            results["datasets"].append(json.loads(lines[-1]))
        print(f"{name} done", file=sys.stderr)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
