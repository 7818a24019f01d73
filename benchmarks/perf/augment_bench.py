r"""Speed of :mod:`gcl.augment` on a 128-graph PROTEINS batch.

Every augmentation and every centrality is timed (median of repeats) and
compared, in the same run, with

(a) the operation applied graph by graph: GraphCL-style numpy code for the
    GraphCL augmentations, PyG / GRACE / GCA code for the others, networkx for
    the centralities; and, for the batching gain at identical semantics, the
    same ``gcl.augment`` function called once per graph;
(b) PyGCL's augmentors (``pip install pygcl``), run in a separate Python
    environment given with ``--pygcl /path/to/python`` (or importable here);
    without it that column is skipped with a message.

Times are thread CPU time by default (``--clock cpu``), which a shared,
oversubscribed machine distorts far less than wall time.

Measurements run interleaved (one round of every variant after another) so
that load changes on a shared machine hit all columns alike; single-threaded
by default (``--threads``). The speed-ups over the per-graph loops are ratios
taken within each round (both sides back to back), whose median over the
rounds is reported with its range; the goals are checked on those medians.

Usage::

    python benchmarks/perf/augment_bench.py --pygcl /tmp/pygcl-venv/bin/python \
        --markdown benchmarks/results/augment.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import torch
import torch_geometric
from torch_geometric.data import Batch, Data
from torch_geometric.datasets import TUDataset
from torch_geometric.utils import dropout_edge, to_networkx, to_undirected

import gcl.augment as aug
from gcl.augment import adaptive, centrality, functional

REPO = Path(__file__).resolve().parents[2]
#: Randomness of the per-graph baselines (numpy, as in the reference code).
RNG = np.random.default_rng(0)
DEFAULT_TU = REPO.parent / "shared" / "datasets" / "TU"


# --------------------------------------------------------------------------- data
def load_batch(tu_root: Path, size: int, seed: int) -> tuple[Batch, list[Data]]:
    r"""``size`` PROTEINS graphs drawn with ``seed``, collated, plus the list."""
    scratch = Path(tempfile.mkdtemp(prefix="gcl-bench-"))
    shutil.copytree(tu_root / "PROTEINS" / "raw", scratch / "PROTEINS" / "raw")
    dataset = TUDataset(str(scratch), "PROTEINS")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    graphs = [dataset[int(i)] for i in order[:size]]
    shutil.rmtree(scratch, ignore_errors=True)
    return Batch.from_data_list(graphs), graphs


# --------------------------------------------------------------------------- per-graph loops
# The per-graph baselines follow the reference implementations: GraphCL's
# semisupervised_TU augmentations (numpy sampling, a dense torch adjacency per
# graph), PyG's dropout_edge for GRACE-style edge dropping, GRACE's
# drop_feature and GCA's degree-based weights, applied graph by graph.
def loop_drop_nodes(graphs: list[Data], p: float) -> None:
    for data in graphs:
        n = data.x.size(0)
        perm = RNG.permutation(n)
        keep = np.sort(perm[int(n * p) :])
        edges = data.edge_index.numpy()
        adj = torch.zeros((n, n))
        adj[edges[0], edges[1]] = 1
        adj = adj[keep, :][:, keep]
        adj.nonzero().t()
        data.x[keep]


def loop_perturb_edges(graphs: list[Data], p: float) -> None:
    for data in graphs:
        n = data.x.size(0)
        edges = data.edge_index.numpy()
        e = edges.shape[1]
        count = int(e * p)
        added = RNG.choice(n, (2, count))
        kept = edges[:, RNG.choice(e, e - count, replace=False)]
        torch.tensor(np.concatenate((kept, added), axis=1))


def loop_drop_edges(graphs: list[Data], p: float) -> None:
    for data in graphs:
        dropout_edge(data.edge_index, p=p, force_undirected=True)


def loop_mask_nodes(graphs: list[Data], p: float) -> None:
    for data in graphs:
        n, f = data.x.shape
        count = int(n * p)
        rows = RNG.choice(n, count, replace=False)
        x = data.x.clone()
        x[rows] = torch.tensor(RNG.normal(0.5, 0.5, (count, f)), dtype=torch.float32)


def loop_mask_dims(graphs: list[Data], p: float) -> None:
    for data in graphs:
        mask = torch.empty((data.x.size(1),), dtype=torch.float32).uniform_(0, 1) < p
        x = data.x.clone()
        x[:, mask] = 0


def loop_subgraph(graphs: list[Data], ratio: float) -> None:
    for data in graphs:
        n = data.x.size(0)
        edges = data.edge_index.numpy()
        target = int(n * ratio)
        members = [int(RNG.integers(n))]
        frontier = set(edges[1][edges[0] == members[0]].tolist())
        while len(members) < target and frontier:
            node = int(RNG.choice(list(frontier)))
            members.append(node)
            frontier |= set(edges[1][edges[0] == node].tolist())
            frontier -= set(members)
        keep = sorted(members)
        adj = torch.zeros((n, n))
        adj[edges[0], edges[1]] = 1
        adj[keep, :][:, keep].nonzero().t()
        data.x[keep]


def loop_adaptive_edges(graphs: list[Data], p: float) -> None:
    for data in graphs:
        col = data.edge_index[1]
        degree = torch.bincount(to_undirected(data.edge_index)[1], minlength=data.num_nodes)
        s = torch.log(degree[col].float())
        weights = (s.max() - s) / (s.max() - s.mean())
        probs = (weights / weights.mean() * p).nan_to_num(p).clamp(0.0, 0.7)
        data.edge_index[:, torch.bernoulli(1.0 - probs).bool()]


def loop_adaptive_features(graphs: list[Data], p: float) -> None:
    for data in graphs:
        degree = torch.bincount(data.edge_index[1], minlength=data.num_nodes).float()
        w = ((data.x != 0).float().t() @ degree).log()
        s = (w.max() - w) / (w.max() - w.mean())
        probs = (s / s.mean() * p).nan_to_num(0.7).clamp(0.0, 0.7)
        x = data.x.clone()
        x[:, torch.bernoulli(probs).bool()] = 0


def loop_networkx(graphs: list[nx.Graph], kind: str) -> None:
    for g in graphs:
        if kind == "degree":
            nx.degree_centrality(g)
        elif kind == "pagerank":
            nx.pagerank(g)
        else:
            try:
                nx.eigenvector_centrality(g)
            except nx.PowerIterationFailedConvergence:
                pass  # networkx raises after max_iter; the time spent still counts


# --------------------------------------------------------------------------- PyGCL
PYGCL_SCRIPT = r"""
import importlib, json, sys, time, types
import torch
torch.set_num_threads(int(sys.argv[3]))
clock = time.thread_time if sys.argv[4] == "cpu" else time.perf_counter

# PyGCL imports dgl, torch_sparse and torch_scatter when the package loads. The
# augmentors timed here (except RWSampling) never call them, so a missing one is
# replaced by a stand-in whose every use raises; RWSampling then reports n/a.
class _Missing:
    def __init__(self, name):
        self.name = name
    def __call__(self, *args, **kwargs):
        raise ImportError(f"{self.name} is not installed")
    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Missing(f"{self.name}.{attr}")
    def __mro_entries__(self, bases):
        return (object,)

def _stub_attribute(attr, name):
    if attr.startswith("__"):
        raise AttributeError(attr)
    return _Missing(f"{name}.{attr}")

stubbed = []
for name in ("dgl", "torch_sparse", "torch_scatter"):
    try:
        importlib.import_module(name)
    except Exception:
        module = types.ModuleType(name)
        module.__getattr__ = lambda attr, name=name: _stub_attribute(attr, name)
        sys.modules[name] = module
        stubbed.append(name)

import GCL.augmentors as A
data = torch.load(sys.argv[1])
x, edge_index = data["x"], data["edge_index"]
repeats = int(sys.argv[2])
ops = {
    "drop_nodes": A.NodeDropping(pn=0.2),
    "drop_edges": A.EdgeRemoving(pe=0.2),
    "perturb_edges": A.Compose([A.EdgeRemoving(pe=0.2), A.EdgeAdding(pe=0.2)]),
    "mask_dims": A.FeatureMasking(pf=0.2),
    "subgraph": A.RWSampling(num_seeds=1000, walk_length=10),
}
out = {}
for name, op in ops.items():
    try:
        op(x, edge_index)
    except Exception as error:  # an augmentor whose optional backend is missing
        out[name] = {"error": f"{type(error).__name__}: {error}"}
        continue
    times = []
    for _ in range(repeats):
        start = clock()
        op(x, edge_index)
        times.append(clock() - start)
    times.sort()
    out[name] = {"median_ms": 1e3 * times[len(times) // 2]}
from importlib.metadata import version
print(json.dumps({"version": version("pygcl"), "torch": torch.__version__, "stubbed": stubbed, "ops": out}))
"""


def run_pygcl(
    python: str | None, batch: Batch, repeats: int, threads: int, clock: str
) -> dict[str, Any]:
    if python is None:
        try:
            import GCL  # noqa: F401
        except ImportError:
            return {"skipped": "PyGCL not importable and no --pygcl interpreter given"}
        python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "batch.pt"
        torch.save({"x": batch.x, "edge_index": batch.edge_index}, path)
        script = Path(tmp) / "pygcl_bench.py"
        script.write_text(PYGCL_SCRIPT)
        try:
            done = subprocess.run(
                [python, str(script), str(path), str(repeats), str(threads), clock],
                capture_output=True,
                text=True,
                timeout=1800,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return {"skipped": f"PyGCL run failed: {error}"}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"skipped": f"PyGCL run failed: {tail[0]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- timing
def interleaved(
    variants: dict[str, tuple[Callable[[], object], int]],
    rounds: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    r"""Per variant, its median time (ms) in every round; each round runs every
    variant ``inner`` times, so slow and fast variants share the same load."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for fn, _ in variants.values():
        fn()  # warm-up
    for _ in range(rounds):
        for name, (fn, inner) in variants.items():
            runs = []
            for _ in range(inner):
                start = clock()
                fn()
                runs.append(clock() - start)
            samples[name].append(1e3 * statistics.median(runs))
    return samples


def per_round_ratio(slow: list[float], fast: list[float]) -> tuple[float, float, float]:
    r"""Median, smallest and largest of the ratios ``slow / fast`` of the same rounds:
    the two sides of a ratio ran back to back, so a change of the machine's load
    between rounds cancels out."""
    ratios = [a / b for a, b in zip(slow, fast, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tu-root", type=Path, default=DEFAULT_TU)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--inner", type=int, default=10, help="runs of our ops per round")
    parser.add_argument("--loop-inner", type=int, default=3, help="runs of each per-graph loop per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="thread CPU time (robust on a shared machine; needs --threads 1) or wall time",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pygcl", default=None, help="python executable with PyGCL installed")
    parser.add_argument("--markdown", type=Path, default=None, help="write the report here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    batch, graphs = load_batch(args.tu_root, args.batch_size, args.seed)
    x, edge_index, vector = batch.x, batch.edge_index, batch.batch
    num_graphs = batch.num_graphs
    nx_graphs = [to_networkx(g, to_undirected=True) for g in graphs]
    stored = aug.AddCentrality("degree")(batch)
    g = torch.Generator().manual_seed(args.seed)
    inner, slow = args.inner, args.loop_inner

    def ours(fn: Callable[[], object]) -> tuple[Callable[[], object], int]:
        return fn, inner

    def loop(fn: Callable[[], object]) -> tuple[Callable[[], object], int]:
        return fn, slow

    def each(graphs: list[Data], fn: Callable[[Data], object]) -> None:
        for data in graphs:
            fn(data)

    rows: list[tuple[str, str, dict[str, tuple[Callable[[], object], int]], str | None]] = [
        (
            "node dropping (p=0.2)",
            "drop_nodes",
            {
                "ours": ours(
                    lambda: functional.drop_nodes(
                        x, edge_index, vector, p=0.2, generator=g, num_graphs=num_graphs
                    )
                ),
                "transform": ours(lambda: aug.DropNodes(0.2, generator=g)(batch)),
                "loop": loop(lambda: loop_drop_nodes(graphs, 0.2)),
                "same": loop(
                    lambda: each(
                        graphs,
                        lambda d: functional.drop_nodes(d.x, d.edge_index, p=0.2, generator=g),
                    )
                ),
            },
            "drop_nodes",
        ),
        (
            "edge perturbation (p=0.2, remove + add)",
            "perturb_edges",
            {
                "ours": ours(
                    lambda: functional.perturb_edges(
                        x, edge_index, vector, p=0.2, generator=g, num_graphs=num_graphs
                    )
                ),
                "transform": ours(lambda: aug.PerturbEdges(0.2, generator=g)(batch)),
                "loop": loop(lambda: loop_perturb_edges(graphs, 0.2)),
                "same": loop(
                    lambda: each(
                        graphs,
                        lambda d: functional.perturb_edges(d.x, d.edge_index, p=0.2, generator=g),
                    )
                ),
            },
            "perturb_edges",
        ),
        (
            "edge removing (p=0.2, Bernoulli)",
            "drop_edges",
            {
                "ours": ours(
                    lambda: functional.drop_edges(
                        x, edge_index, vector, p=0.2, generator=g, num_graphs=num_graphs
                    )
                ),
                "transform": ours(lambda: aug.DropEdges(0.2, generator=g)(batch)),
                "loop": loop(lambda: loop_drop_edges(graphs, 0.2)),
                "same": loop(
                    lambda: each(
                        graphs,
                        lambda d: functional.drop_edges(d.x, d.edge_index, p=0.2, generator=g),
                    )
                ),
            },
            "drop_edges",
        ),
        (
            "feature masking, columns (p=0.2)",
            "mask_dims",
            {
                "ours": ours(
                    lambda: functional.mask_features(x, 0.2, mode="dim", fill="zero", generator=g)
                ),
                "transform": ours(
                    lambda: aug.MaskFeatures(0.2, mode="dim", fill="zero", generator=g)(batch)
                ),
                "loop": loop(lambda: loop_mask_dims(graphs, 0.2)),
                "same": loop(
                    lambda: each(
                        graphs,
                        lambda d: functional.mask_features(
                            d.x, 0.2, mode="dim", fill="zero", generator=g
                        ),
                    )
                ),
            },
            "mask_dims",
        ),
        (
            "attribute masking, nodes (p=0.2)",
            "mask_nodes",
            {
                "ours": ours(
                    lambda: functional.mask_features(
                        x, 0.2, batch=vector, generator=g, num_graphs=num_graphs
                    )
                ),
                "transform": ours(lambda: aug.MaskFeatures(0.2, generator=g)(batch)),
                "loop": loop(lambda: loop_mask_nodes(graphs, 0.2)),
                "same": loop(
                    lambda: each(graphs, lambda d: functional.mask_features(d.x, 0.2, generator=g))
                ),
            },
            None,
        ),
        (
            "subgraph (keep 0.8)",
            "subgraph",
            {
                "ours": ours(
                    lambda: functional.random_walk_subgraph(
                        x, edge_index, vector, ratio=0.8, generator=g, num_graphs=num_graphs
                    )
                ),
                "transform": ours(lambda: aug.RandomWalkSubgraph(0.8, generator=g)(batch)),
                "loop": loop(lambda: loop_subgraph(graphs, 0.8)),
                "same": loop(
                    lambda: each(
                        graphs,
                        lambda d: functional.random_walk_subgraph(
                            d.x, d.edge_index, ratio=0.8, generator=g
                        ),
                    )
                ),
            },
            "subgraph",
        ),
        (
            "adaptive edge dropping (GCA, degree)",
            "adaptive_edges",
            {
                "ours": ours(
                    lambda: adaptive.adaptive_drop_edges(
                        x, edge_index, vector, p=0.3, generator=g, num_graphs=num_graphs
                    )
                ),
                "transform": ours(lambda: aug.AdaptiveDropEdges(0.3, generator=g)(stored)),
                "loop": loop(lambda: loop_adaptive_edges(graphs, 0.3)),
                "same": loop(
                    lambda: each(
                        graphs,
                        lambda d: adaptive.adaptive_drop_edges(
                            d.x, d.edge_index, p=0.3, generator=g
                        ),
                    )
                ),
            },
            None,
        ),
        (
            "adaptive feature masking (GCA, degree)",
            "adaptive_features",
            {
                "ours": ours(
                    lambda: adaptive.adaptive_mask_features(
                        x, edge_index, vector, p=0.3, generator=g, num_graphs=num_graphs
                    )
                ),
                "transform": ours(lambda: aug.AdaptiveMaskFeatures(0.3, generator=g)(stored)),
                "loop": loop(lambda: loop_adaptive_features(graphs, 0.3)),
                "same": loop(
                    lambda: each(
                        graphs,
                        lambda d: adaptive.adaptive_mask_features(
                            d.x, d.edge_index, p=0.3, generator=g
                        ),
                    )
                ),
            },
            None,
        ),
        (
            "degree centrality",
            "degree",
            {
                "ours": ours(
                    lambda: centrality.degree_centrality(
                        edge_index, x.size(0), vector, num_graphs=num_graphs
                    )
                ),
                "loop": loop(lambda: loop_networkx(nx_graphs, "degree")),
                "same": loop(
                    lambda: each(
                        graphs, lambda d: centrality.degree_centrality(d.edge_index, d.num_nodes)
                    )
                ),
            },
            None,
        ),
        (
            "PageRank",
            "pagerank",
            {
                "ours": ours(
                    lambda: centrality.pagerank(
                        edge_index, x.size(0), vector, num_graphs=num_graphs
                    )
                ),
                "loop": loop(lambda: loop_networkx(nx_graphs, "pagerank")),
                "same": loop(
                    lambda: each(graphs, lambda d: centrality.pagerank(d.edge_index, d.num_nodes))
                ),
            },
            None,
        ),
        (
            "eigenvector centrality",
            "eigenvector",
            {
                "ours": ours(
                    lambda: centrality.eigenvector_centrality(
                        edge_index, x.size(0), vector, num_graphs=num_graphs
                    )
                ),
                "loop": loop(lambda: loop_networkx(nx_graphs, "eigenvector")),
                "same": loop(
                    lambda: each(
                        graphs,
                        lambda d: centrality.eigenvector_centrality(d.edge_index, d.num_nodes),
                    )
                ),
            },
            None,
        ),
    ]

    agreement = centrality_agreement(batch, nx_graphs)
    pygcl = run_pygcl(
        args.pygcl, batch, repeats=args.rounds * inner, threads=args.threads, clock=args.clock
    )
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    pygcl_ops = pygcl.get("ops", {})

    lines = [
        "| operation | ours (ms) | as transform on the Batch (ms) | per-graph loop (ms) | loop / ours [range] | same function graph by graph (ms) | that / ours [range] | PyGCL (ms) | PyGCL / ours |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    slow_vs_loop: list[str] = []
    slow_vs_pygcl: list[str] = []
    centrality_ratios: list[str] = []
    for title, key, variants, pygcl_key in rows:
        rounds = interleaved(variants, args.rounds, clock)
        times = {name: statistics.median(values) for name, values in rounds.items()}
        ours_ms = times["ours"]
        transform = f"{times['transform']:.3f}" if "transform" in times else "–"
        if pygcl_key is None:
            pygcl_ms, pygcl_ratio = "–", "–"
        elif "median_ms" in pygcl_ops.get(pygcl_key, {}):
            value = pygcl_ops[pygcl_key]["median_ms"]
            pygcl_ms, pygcl_ratio = f"{value:.3f}", f"{value / ours_ms:.2f}×"
        else:
            reason = pygcl_ops.get(pygcl_key, {}).get("error", pygcl.get("skipped", "n/a"))
            pygcl_ms, pygcl_ratio = "n/a", "n/a"
            print(f"PyGCL {pygcl_key}: {reason}", file=sys.stderr)
        ratio, low, high = per_round_ratio(rounds["loop"], rounds["ours"])
        same, same_low, same_high = per_round_ratio(rounds["same"], rounds["ours"])
        lines.append(
            f"| {title} | {ours_ms:.3f} | {transform} | {times['loop']:.1f} | "
            f"{ratio:.1f}× [{low:.1f}–{high:.1f}] | {times['same']:.1f} | "
            f"{same:.0f}× [{same_low:.0f}–{same_high:.0f}] | {pygcl_ms} | {pygcl_ratio} |"
        )
        print(lines[-1], flush=True)
        if key in ("pagerank", "eigenvector"):
            centrality_ratios.append(
                f"{title} {ratio:.0f}× ({'met' if ratio >= 50 else 'not met'})"
            )
        elif key != "degree" and ratio < 10:
            slow_vs_loop.append(f"{title} ({ratio:.1f}×)")
        if pygcl_key is not None and "median_ms" in pygcl_ops.get(pygcl_key, {}):
            if pygcl_ops[pygcl_key]["median_ms"] < ours_ms:
                slow_vs_pygcl.append(title)

    header = [
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- command: `python {' '.join(sys.argv)}`",
        f"- python {platform.python_version()}, torch {torch.__version__}, torch_geometric "
        f"{torch_geometric.__version__}, networkx {nx.__version__}, numpy {np.__version__}",
        f"- PyGCL: {pygcl.get('version', pygcl.get('skipped'))}"
        + (f" (torch {pygcl['torch']})" if "torch" in pygcl else "")
        + (
            f"; not installed there and replaced by stand-ins that raise when used: "
            f"{', '.join(pygcl['stubbed'])}"
            if pygcl.get("stubbed")
            else ""
        ),
        f"- machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        f"torch thread(s)",
        f"- batch: {num_graphs} PROTEINS graphs (seed {args.seed}), {x.size(0)} nodes, "
        f"{edge_index.size(1)} directed edges",
        f"- timing: {'thread CPU time' if args.clock == 'cpu' else 'wall time'}, "
        f"{args.rounds} interleaved rounds ({inner} runs of ours and of the transform, {slow} of "
        "each per-graph column per round, each column's median taken within the round); times are the "
        "medians over the rounds. Ratios are computed within each round (the two sides "
        "ran back to back) and their median over the rounds is reported with its range: "
        "the machine (2 cores) was shared with other jobs, whose load shifts between rounds. "
        "PyGCL runs in its own process after ours, so its ratio compares medians. CPU time "
        "is the steadier measure",
        "- centralities vs networkx on every graph: " + agreement,
    ]
    goals = [
        "",
        "Goals, checked on these numbers:",
        "- every augmentation at least 10× faster than the per-graph loop: "
        + ("met" if not slow_vs_loop else "not met for " + ", ".join(slow_vs_loop)),
        "- at least as fast as PyGCL where PyGCL ran: "
        + ("met" if not slow_vs_pygcl else "not met for " + ", ".join(slow_vs_pygcl)),
        "- batched PageRank and eigenvector centrality at least 50× faster than networkx: "
        + "; ".join(centrality_ratios),
    ]
    notes = [
        "",
        "What the columns run:",
        "- ours: the `gcl.augment` function on the collated batch tensors; transform: the PyG "
        "transform on the `Batch` (with ptr/slice bookkeeping and, after added edges, "
        "regrouping the edges by graph).",
        "- per-graph loop: GraphCL's semisupervised_TU augmentations (numpy sampling, a dense "
        "torch adjacency per graph) for node dropping, edge perturbation, attribute masking "
        "and subgraphs; PyG `dropout_edge(force_undirected=True)` for edge removing; GRACE's "
        "`drop_feature` for column masking; GCA's degree weights for the adaptive ones; "
        "networkx for the centralities (its eigenvector iteration raising after 100 steps "
        "counts with the time spent).",
        "- GraphCL's edge perturbation loop does less than ours: it counts directed edges, "
        "does not mirror undirected ones and may add self loops, duplicates or existing "
        "edges. The same-semantics column calls the very `gcl.augment` function once per "
        "graph and isolates the batching gain.",
        "- PyGCL 0.1.2 imports dgl, torch_sparse and torch_scatter at package import but "
        "does not declare them; when they are missing from its environment (torch_sparse "
        "and torch_scatter ship only as source on PyPI and their builds did not finish "
        "within the time available on this machine; dgl was not installed), stand-ins are "
        "registered. The timed NodeDropping, EdgeRemoving and FeatureMasking never call "
        "them. RWSampling needs torch_sparse and is then reported n/a; EdgeAdding (part of "
        "PyGCL's perturbation) fails under PyG 2.8 before reaching it (its "
        "`sort_edge_index(edge_index)[0]` now takes a row, hence the IndexError).",
    ]
    report = (
        "\n".join(header)
        + "\n\n"
        + "\n".join(lines)
        + "\n"
        + "\n".join(goals)
        + "\n"
        + "\n".join(notes)
        + "\n"
    )
    for reason in [pygcl.get("skipped")] + [
        f"{k}: {v['error']}" for k, v in pygcl_ops.items() if "error" in v
    ]:
        if reason:
            report += f"\nPyGCL column: {reason}\n"
    print()
    print(report)
    if args.markdown is not None:
        args.markdown.write_text(report)


def centrality_agreement(batch: Batch, nx_graphs: list[nx.Graph]) -> str:
    r"""Largest relative difference to networkx per centrality (graphs where
    networkx's eigenvector iteration fails are counted separately)."""
    n = batch.x.size(0)
    values = {
        "degree": centrality.degree_centrality(batch.edge_index, n, batch.batch),
        "pagerank": centrality.pagerank(batch.edge_index, n, batch.batch),
        "eigenvector": centrality.eigenvector_centrality(batch.edge_index, n, batch.batch),
    }
    worst = dict.fromkeys(values, 0.0)
    failed = 0
    for g, graph in enumerate(nx_graphs):
        lo, hi = int(batch.ptr[g]), int(batch.ptr[g + 1])
        reference = {
            "degree": nx.degree_centrality(graph),
            "pagerank": nx.pagerank(graph),
        }
        try:
            reference["eigenvector"] = nx.eigenvector_centrality(graph)
        except nx.PowerIterationFailedConvergence:
            failed += 1
        for kind, ref in reference.items():
            expected = torch.tensor([ref[i] for i in range(hi - lo)], dtype=torch.float64)
            got = values[kind][lo:hi].double()
            diff = float(((got - expected).abs() / expected.abs().clamp_min(1e-12)).max())
            worst[kind] = max(worst[kind], diff)
    parts = [f"{kind} max rel. diff {value:.1e}" for kind, value in worst.items()]
    return ", ".join(parts) + f" ({failed} graphs where networkx's eigenvector iteration fails)"


if __name__ == "__main__":
    main()
