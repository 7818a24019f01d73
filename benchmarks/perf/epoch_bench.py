r"""Pre-training epoch time of gcl's methods, against the model-compute limit and PyGCL.

For each dataset (TU: PROTEINS, NCI1, DD by default) and each variant below, one
epoch (batch 128, GIN 3 × 32 with batch norm, Adam) is timed per round; rounds are
interleaved (one epoch of every variant, in rotated order, then the next round) so
that load changes on a shared machine hit all variants alike. The first round is
a warm-up and is discarded; medians are over the remaining ``--rounds`` (≥ 5).

gcl variants (all through the library's training loop, :func:`gcl.train.fit`, on
the dataset itself, i.e. with :class:`gcl.data.CollatedLoader`):

* ``graphcl``: ``build_method("graphcl")`` — GraphCL's random4 augmentation pool
  (node dropping, random-walk subgraph, edge perturbation, attribute masking).
* ``graphcl-pool3``: GraphCL with the augmentation pool PyGCL is run with
  (Bernoulli node dropping, edge removal, feature-dimension masking, all 0.2) and
  a symmetric InfoNCE as PyGCL's ``DualBranchContrast``: the like-for-like row.
  Its node dropping is PyGCL's (``DropNodes(0.2, mode="bernoulli", isolate=True)``:
  a dropped node loses its edges and stays), so that both encoders see the same
  number of nodes; gcl's default ``DropNodes`` removes the nodes, as GraphCL does,
  which leaves the encoder less work.
* ``graphcl-joint``, ``graphcl-pool3-joint``: the same two with ``joint_views=True``
  (one encoder and head pass over both views together; batch norm then spans both).
* ``graphcl-workers``, ``graphcl-pool3-workers``: the first two with
  ``TrainConfig(view_workers=1)``: one background process collates each batch
  and draws its views (:class:`gcl.data.ViewPrefetcher`). These use a second
  core, so their row is read in wall-clock time, and they time the second epoch
  of a two-epoch ``fit()`` (the loop's own epoch clock): the workers start once
  per run (fork, first touch of the shared slots), which a one-epoch ``fit()``
  would charge to its only epoch. The first epoch's extra time is recorded as
  ``startup_seconds``.
* ``graphcl-joint-workers``, ``graphcl-pool3-joint-workers``: both, one pass
  over both views and the views drawn by a background process (for GPUs).
* ``lcgnn``: ``build_method("lcgnn", hidden_channels=32, num_layers=3)``.
* ``barlow``: :class:`gcl.methods.GraphLevelBarlowTwins` with the random4 views.
* ``adaptive-bt``: ``build_method("adaptive-bt")`` (degree-adaptive views).

The **limit** of a two-view variant is the forward + backward time of its own GIN
(the same module, so the same code and weights, asked for graph embeddings only as
the methods ask for them) on exactly the two augmented
batches of each step of the epoch just timed (captured by an untimed run of the
same epoch: same seed, same batches and views): model compute only. ``overhead = (epoch − limit) / limit`` is then what loading,
augmentation, projection head, loss, optimiser and bookkeeping cost. LCGNN's
limit is its query encoder's forward + backward plus the key encoder's forward
on the batches of the epoch.

PyGCL (``--pygcl PYTHON``, see ``pygcl_worker.py`` for its environment) runs in
its own process, driven epoch by epoch inside the same rounds.

Usage::

    python benchmarks/perf/epoch_bench.py --pygcl /tmp/gcl-perf-pygcl/bin/python \
        --datasets PROTEINS NCI1 DD --rounds 5 --json /tmp/gcl-perf/epoch.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SHARED_DATA, environment, median, use_shared_data, write_json

WORKER = Path(__file__).resolve().parent / "pygcl_worker.py"


def synchronize(device: str) -> None:
    r"""Waits for the device's queued kernels, so that a clock read after it counts them."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class Clock:
    r"""Wall-clock and CPU time of a block. On a loaded machine the process's CPU
    time is the stable measure of single-threaded work; wall time also counts the
    time the scheduler gave to other processes. On a GPU the wall time, taken
    after the device finished the block's kernels, is the measure."""

    wall: float
    cpu: float
    forward_cpu: float = 0.0  # the forward share of ``cpu``, where it is recorded
    startup: float = 0.0  # with view workers: the first epoch's extra wall time

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def __enter__(self) -> Clock:
        synchronize(self.device)
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        synchronize(self.device)
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


class Capture:
    r"""Wraps an augmentation and keeps every view it produces (references only)."""

    def __init__(self, transform: Callable[[Any], Any]) -> None:
        self.transform = transform
        self.views: list[Any] = []

    def __call__(self, batch: Any) -> Any:
        view = self.transform(batch)
        self.views.append(view)
        return view


def build_variants(dataset: Any, seed: int) -> dict[str, nn.Module]:
    import gcl.augment as A
    from gcl.losses import InfoNCE
    from gcl.methods import GraphCL, GraphLevelBarlowTwins, build_method, make_augmentation
    from gcl.nn import GIN, ProjectionHead
    from gcl.train import seed_everything

    seed_everything(seed)
    variants: dict[str, nn.Module] = {"graphcl": build_method("graphcl", dataset)}

    def pool3() -> Any:
        return A.RandomChoice([A.DropNodes(0.2, mode="bernoulli", isolate=True), A.DropEdges(0.2),
                               A.MaskFeatures(0.2, mode="dim", fill="zero")])

    encoder = GIN(dataset.num_features, 32, 3)
    variants["graphcl-pool3"] = GraphCL(encoder, pool3(), pool3(), ProjectionHead(96, 96, 96),
                                        InfoNCE(0.2, symmetric=True, intra_view_negatives=False))
    encoder = GIN(dataset.num_features, 32, 3)
    variants["graphcl-pool3-joint"] = GraphCL(encoder, pool3(), pool3(), ProjectionHead(96, 96, 96),
                                              InfoNCE(0.2, symmetric=True, intra_view_negatives=False),
                                              joint_views=True)
    variants["graphcl-joint"] = build_method("graphcl", dataset, joint_views=True)
    variants["graphcl-workers"] = build_method("graphcl", dataset)
    encoder = GIN(dataset.num_features, 32, 3)
    variants["graphcl-pool3-workers"] = GraphCL(encoder, pool3(), pool3(), ProjectionHead(96, 96, 96),
                                                InfoNCE(0.2, symmetric=True, intra_view_negatives=False))
    variants["graphcl-joint-workers"] = build_method("graphcl", dataset, joint_views=True)
    encoder = GIN(dataset.num_features, 32, 3)
    variants["graphcl-pool3-joint-workers"] = GraphCL(encoder, pool3(), pool3(), ProjectionHead(96, 96, 96),
                                                      InfoNCE(0.2, symmetric=True, intra_view_negatives=False),
                                                      joint_views=True)
    variants["lcgnn"] = build_method("lcgnn", dataset, hidden_channels=32, num_layers=3)
    encoder = GIN(dataset.num_features, 32, 3)
    variants["barlow"] = GraphLevelBarlowTwins(encoder, make_augmentation("random4"),
                                               make_augmentation("random4"), ProjectionHead(96, 96, 96))
    variants["adaptive-bt"] = build_method("adaptive-bt", dataset)
    return variants


VIEW_WORKERS = {"graphcl-workers": 1, "graphcl-pool3-workers": 1, "graphcl-joint-workers": 1,
                "graphcl-pool3-joint-workers": 1}


def gcl_epoch(method: Any, dataset: Any, seed: int, device: str = "cpu",
              view_workers: int = 0) -> tuple[Clock, list[Any]]:
    r"""One epoch through :func:`gcl.train.fit`; returns its times and what the model saw.

    The CPU time covers the whole :func:`~gcl.train.fit` call, set-up included
    (optimiser, loader, and the workers' start with ``view_workers``), so it
    slightly overstates the cost of one epoch.

    What the model saw is captured by a second, untimed run of the same epoch
    (same seed, so the same batches and views): holding every view while the
    timed epoch runs would keep its memory from being reused, so that every step
    allocates fresh pages, which training itself does not pay (see the notes in
    ``benchmarks/results/perf.md``)."""
    config = epoch_config(seed, device, view_workers)
    clock = timed_epoch(method, dataset, config)
    return clock, capture_epoch(method, dataset, config)


def epoch_config(seed: int, device: str = "cpu", view_workers: int = 0) -> Any:
    r"""The training settings of one timed epoch (two with view workers: the second is timed)."""
    from gcl.train import TrainConfig

    return TrainConfig(epochs=2 if view_workers else 1, batch_size=128, lr=0.01, seed=seed, progress=False,
                       device=device, view_workers=view_workers)


def timed_epoch(method: Any, dataset: Any, config: Any) -> Clock:
    r"""Times ``fit(method, dataset, config)``."""
    from gcl.train import fit

    with Clock(config.device) as clock:
        history = fit(method, dataset, config).history
    if config.view_workers:
        clock.wall = history[1]["seconds"]  # the second epoch
        clock.cpu = float("nan")  # the worker's CPU time is not the process's
        clock.startup = history[0]["seconds"] - history[1]["seconds"]
    return clock


def capture_epoch(method: Any, dataset: Any, config: Any) -> list[Any]:
    r"""The inputs of every step of ``fit(method, dataset, config)`` (the two views, or the
    batch), from a run of it; with view workers, those of its last epoch."""
    from gcl.train import fit

    captured: list[Any] = []
    if config.view_workers:  # the views arrive as forward's keyword argument
        def keep(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
            captured.append(tuple(kwargs["views"]))

        handle = method.register_forward_pre_hook(keep, with_kwargs=True)
        try:
            fit(method, dataset, config)
        finally:
            handle.remove()
        return captured[-(len(captured) // config.epochs):]  # the last epoch's steps
    if hasattr(method, "augment1"):
        first, second = Capture(method.augment1), Capture(method.augment2)
        method.augment1, method.augment2 = first, second
        try:
            fit(method, dataset, config)
        finally:
            method.augment1, method.augment2 = first.transform, second.transform
        return list(zip(first.views, second.views, strict=True))
    handle = method.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
    try:
        fit(method, dataset, config)
    finally:
        handle.remove()
    return captured


def limit_epoch(method: Any, captured: list[Any], device: str = "cpu") -> Clock:
    r"""Model compute only: the GIN's forward + backward on the captured batches."""
    from gcl.methods import encode_graphs

    encoder = method.encoder
    key_encoder = getattr(method, "key_encoder", None)
    method.train()
    forward = 0.0
    with Clock(device) as clock:
        for item in captured:
            encoder.zero_grad(set_to_none=True)
            started = time.process_time()
            if isinstance(item, tuple):
                view1, view2 = item
                out = (encode_graphs(encoder, view1, nodes=False).graph.sum()
                       + encode_graphs(encoder, view2, nodes=False).graph.sum())
            else:
                out = encode_graphs(encoder, item, nodes=False).graph.sum()
                if key_encoder is not None:
                    with torch.no_grad():
                        encode_graphs(key_encoder, item, nodes=False)
            forward += time.process_time() - started
            out.backward()
    clock.forward_cpu = forward
    return clock


class PyGCL:
    r"""The PyGCL worker process for one dataset."""

    def __init__(self, python: str, dataset: str, threads: int, seed: int, device: str = "cpu") -> None:
        self.stderr = tempfile.TemporaryFile(mode="w+")  # shown when the worker stops
        self.process = subprocess.Popen([python, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.stderr, text=True)
        self.info = self.ask({"cmd": "setup", "dataset": dataset, "raw_root": str(tu_root(dataset)),
                              "threads": threads, "seed": seed, "batch_size": 128, "device": device})

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        while True:
            line = self.process.stdout.readline()
            if not line:
                self.stderr.seek(0)
                tail = self.stderr.read()[-3000:]
                raise RuntimeError(f"the PyGCL worker stopped (exit code {self.process.poll()}):\n{tail}")
            if line.startswith("{"):
                return dict(json.loads(line))

    def epoch(self, variant: str) -> tuple[float, float]:
        answer = self.ask({"cmd": "epoch", "variant": variant})
        return float(answer["seconds"]), float(answer["cpu_seconds"])

    def close(self) -> None:
        try:
            self.ask({"cmd": "exit"})
        except (RuntimeError, BrokenPipeError):
            pass
        self.process.wait(timeout=30)


def tu_root(name: str) -> Path:
    r"""The ``TU`` folder holding ``name``'s raw files: under ``$GCL_DATA`` (first root that has
    it), else the shipped ``datasets/``, else the shared benchmark root."""
    roots = [Path(r) / "TU" for r in os.environ.get("GCL_DATA", "").split(os.pathsep) if r]
    roots += [REPO / "datasets" / "TU", SHARED_DATA / "TU"]
    return next((root for root in roots if (root / name / "raw").is_dir()), roots[-1])


def bench_dataset(name: str, rounds: int, pygcl_python: str | None, threads: int,
                  only: list[str] | None, device: str = "cpu") -> dict[str, Any]:
    from gcl.data import load_dataset

    dataset = load_dataset(name)
    methods = build_variants(dataset, seed=0)
    if only:
        methods = {k: v for k, v in methods.items() if k in only}
    pygcl = PyGCL(pygcl_python, name, threads, seed=0, device=device) if pygcl_python else None
    times: dict[str, list[float]] = {}  # CPU seconds
    walls: dict[str, list[float]] = {}  # wall-clock seconds
    startups: dict[str, list[float]] = {}  # view workers: first epoch minus second (wall seconds)
    tasks: list[tuple[str, Callable[[int], None]]] = []
    for key, method in methods.items():
        def run(round_index: int, key: str = key, method: nn.Module = method) -> None:
            clock, captured = gcl_epoch(method, dataset, seed=round_index, device=device,
                                        view_workers=VIEW_WORKERS.get(key, 0))
            limit = limit_epoch(method, captured, device)
            for prefix, measured in (("gcl", clock), ("limit", limit)):
                if key not in VIEW_WORKERS or prefix == "limit":
                    times.setdefault(f"{prefix}/{key}", []).append(measured.cpu)
                walls.setdefault(f"{prefix}/{key}", []).append(measured.wall)
            if key in VIEW_WORKERS:
                startups.setdefault(key, []).append(clock.startup)
        tasks.append((key, run))
    if pygcl is not None:
        for variant in ("example", "two-pass"):
            def run_pygcl(round_index: int, variant: str = variant) -> None:
                assert pygcl is not None
                wall, cpu = pygcl.epoch(variant)
                times.setdefault(f"pygcl/{variant}", []).append(cpu)
                walls.setdefault(f"pygcl/{variant}", []).append(wall)
            tasks.append((f"pygcl/{variant}", run_pygcl))
    try:
        for round_index in range(rounds + 1):
            shift = round_index % len(tasks)
            for _label, task in tasks[shift:] + tasks[:shift]:
                task(round_index)
            if round_index == 0:
                times.clear()  # warm-up round
                walls.clear()
                startups.clear()
            print(f"{name} round {round_index}/{rounds} done", file=sys.stderr)
    finally:
        if pygcl is not None:
            pygcl.close()
    summary = {key: median(values) for key, values in times.items()}
    summary_wall = {key: median(values) for key, values in walls.items()}
    stats = dataset._data
    return {
        "dataset": name,
        "graphs": len(dataset),
        "nodes": int(stats.num_nodes),
        "features": int(dataset.num_features),
        "steps_per_epoch": len(dataset) // 128,
        "cpu_seconds": times,
        "wall_seconds": walls,
        "median_cpu": summary,
        "median_wall": summary_wall,
        "startup_seconds": startups,
        "pygcl": pygcl.info if pygcl is not None else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--datasets", nargs="+", default=["PROTEINS", "NCI1", "DD"])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds after one warm-up (default: 5)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pygcl", default=None, help="python executable of PyGCL's environment")
    parser.add_argument("--only", nargs="*", default=None, help="gcl variants to run (default: all)")
    parser.add_argument("--json", default=None, help="write the results here (default: stdout)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]; on CUDA the wall time is the measure")
    args = parser.parse_args()
    if args.rounds < 5:
        parser.error(f"--rounds must be at least 5 (got {args.rounds})")
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available on this machine")
    torch.set_num_threads(args.threads)
    use_shared_data()
    results: dict[str, Any] = {"environment": environment(args.threads, args.device), "datasets": []}
    for name in args.datasets:
        results["datasets"].append(bench_dataset(name, args.rounds, args.pygcl, args.threads, args.only,
                                                 args.device))
        write_json(args.json, results)  # partial results survive an interrupted run
    results["environment"]["load_average_end"] = environment(args.threads, args.device)["load_average"]
    write_json(args.json, results)


if __name__ == "__main__":
    main()
