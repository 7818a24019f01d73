r"""Write ``benchmarks/results/perf.md`` from the JSON files of the benchmarks in this folder.

Usage (after ``epoch_bench.py``, ``profile_epoch.py`` and ``memory_bench.py`` wrote
their ``--json`` files)::

    python benchmarks/perf/report.py --epoch /tmp/gcl-perf/epoch.json \
        --profile /tmp/gcl-perf/profile.json --memory /tmp/gcl-perf/memory.json \
        --out benchmarks/results/perf.md

With ``--update`` only the sections given replace theirs in the existing file (by their
``## `` heading); the others, from earlier runs, stay as they are.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

OVERHEAD_GOAL = 0.25
SPEEDUP_GOAL = 1.5
MEMORY_GOAL = 2.0

TWO_VIEW = ("graphcl", "graphcl-pool3", "graphcl-joint", "graphcl-pool3-joint", "graphcl-workers",
            "graphcl-pool3-workers", "graphcl-joint-workers", "graphcl-pool3-joint-workers", "barlow",
            "adaptive-bt")
# variants whose views are drawn by a background process: read in wall-clock time, beside their
# single-process twin
WORKER_TWINS = {"graphcl-workers": "graphcl", "graphcl-pool3-workers": "graphcl-pool3",
                "graphcl-joint-workers": "graphcl-joint", "graphcl-pool3-joint-workers": "graphcl-pool3-joint"}
LABELS = {
    "graphcl": "GraphCL, random4 views (gcl default)",
    "graphcl-pool3": "GraphCL, PyGCL's view pool",
    "graphcl-joint": "GraphCL, random4 views, one pass over both views",
    "graphcl-pool3-joint": "GraphCL, PyGCL's view pool, one pass over both views",
    "graphcl-workers": "GraphCL, random4 views, views drawn by 1 background process",
    "graphcl-pool3-workers": "GraphCL, PyGCL's view pool, views drawn by 1 background process",
    "graphcl-joint-workers": "GraphCL, random4 views, one pass over both views, views drawn by 1 background process",
    "graphcl-pool3-joint-workers": "GraphCL, PyGCL's view pool, one pass over both views, views drawn by 1 "
                                   "background process",
    "lcgnn": "LCGNN (GIN 3 × 32, queue)",
    "barlow": "Barlow Twins, random4 views",
    "adaptive-bt": "adaptive Barlow Twins (degree-adaptive views)",
}


def ms(seconds: float) -> str:
    return f"{1e3 * seconds:.0f}"


def mb(size: float) -> str:
    return f"{size / 2**20:,.0f}"


def check(ok: bool) -> str:
    return "yes" if ok else "**no**"


def paired(numerator: list[float], denominator: list[float]) -> tuple[float, float, float]:
    r"""Median, min and max over rounds of ``numerator[r] / denominator[r]``: both were timed in
    the same round, so a load change between rounds cancels out of each ratio."""
    ratios = sorted(a / b for a, b in zip(numerator, denominator))
    middle = len(ratios) // 2
    median = ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2
    return median, ratios[0], ratios[-1]


def overhead_cells(median: dict[str, float], rounds: dict[str, list[float]], key: str) -> list[str]:
    r"""Epoch and limit (ms), overhead with its range over rounds, and whether it meets the goal."""
    ratio, low, high = paired(rounds[f"gcl/{key}"], rounds[f"limit/{key}"])
    return [ms(median[f"gcl/{key}"]), ms(median[f"limit/{key}"]),
            f"{100 * (ratio - 1):.0f} % [{100 * (low - 1):.0f}–{100 * (high - 1):.0f}]",
            check(ratio - 1 <= OVERHEAD_GOAL)]


def header(env: dict[str, Any], pygcl: dict[str, Any] | None) -> list[str]:
    lines = [
        f"- Date: {env['date']}; gcl {env['gcl']} (commit {env['commit'] or 'n/a'} plus the working tree).",
        f"- Machine: {env['cpu']}, {env['cores']} cores, {env['memory_gb']} GB RAM, shared with other users; "
        f"load average at the start {env['load_average']}"
        + (f", at the end {env['load_average_end']}" if "load_average_end" in env else "") + ".",
        f"- Software: Python {env['python']}, torch {env['torch']}, torch_geometric {env['torch_geometric']}.",
        f"- Threads: `torch.set_num_threads({env['threads']})` in every process, gcl's and PyGCL's.",
    ]
    if pygcl:
        lines.append(f"- PyGCL {pygcl.get('pygcl')} in its own environment (torch {pygcl.get('torch')}, "
                     f"torch_geometric {pygcl.get('torch_geometric')}); see `benchmarks/perf/pygcl_worker.py`.")
    return lines


def epoch_section(results: dict[str, Any]) -> list[str]:
    env = results["environment"]
    first_pygcl = next((d["pygcl"] for d in results["datasets"] if d.get("pygcl")), None)
    rounds = len(next(iter(results["datasets"][0]["cpu_seconds"].values())))
    out = ["## Pre-training epoch time", "", f"Command: `{env['command']}`", ""]
    out += header(env, first_pygcl)
    out += [
        f"- Protocol: one warm-up round, then {rounds} rounds; in each round every variant runs one epoch, in "
        "rotated order (interleaved). Medians over the rounds. Times are **CPU seconds of the process** "
        "(single-threaded work, so this is the time on an idle core); on this loaded machine wall-clock time also "
        "counts the time the scheduler gave to other users and swings by ±30 %, so it is listed separately and "
        "not used for ratios. Even CPU time varies between rounds (other processes share caches and cores), so "
        "every ratio is computed **within each round** (the two sides timed back to back) and the median of "
        "those per-round ratios is reported, with their range. gcl's CPU time covers the whole `fit()` call, "
        "set-up included (see the micro-benchmarks).",
        "- Model: GIN 3 × 32 with batch norm and sum readout, projection head 96–96–96, batch 128, Adam, lr 0.01.",
        "",
        "### gcl against PyGCL (GraphCL, same settings)",
        "",
        "Like-for-like: both sides draw each view from {node dropping, edge removal, feature-dimension masking} "
        "at 0.2, one per view (node dropping as PyGCL's: a dropped node loses its edges and stays), use a "
        "symmetric InfoNCE (τ = 0.2), and drop the last incomplete batch (the same steps per epoch). PyGCL runs "
        "its GraphCL example's model and loop; *example* keeps the example's third encoder pass over the "
        "un-augmented batch (unused by the loss), *two-pass* removes it.",
        "",
        "| dataset | graphs | gcl (ms) | PyGCL example (ms) | PyGCL two-pass (ms) | speed-up vs example "
        f"[range] | vs two-pass [range] | ≥ {SPEEDUP_GOAL}× vs example |",
        "|---|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for data in results["datasets"]:
        median, rounds_cpu = data["median_cpu"], data["cpu_seconds"]
        if "pygcl/example" not in median or "gcl/graphcl-pool3" not in median:
            continue
        ours = rounds_cpu["gcl/graphcl-pool3"]
        example, low_e, high_e = paired(rounds_cpu["pygcl/example"], ours)
        two, low_t, high_t = paired(rounds_cpu["pygcl/two-pass"], ours)
        out.append(f"| {data['dataset']} | {data['graphs']} | {ms(median['gcl/graphcl-pool3'])} | "
                   f"{ms(median['pygcl/example'])} | {ms(median['pygcl/two-pass'])} | "
                   f"{example:.2f}× [{low_e:.2f}–{high_e:.2f}] | {two:.2f}× [{low_t:.2f}–{high_t:.2f}] | "
                   f"{check(example >= SPEEDUP_GOAL)} |")
    out += [
        "",
        "### Overhead over the model-compute limit",
        "",
        "The limit is the forward + backward time of the method's own GIN on exactly the two augmented batches of "
        "each step of the epoch just timed (captured by an untimed second run of the same epoch: same seed, same views). Overhead = (epoch − limit) / limit: loading, "
        "augmentation, projection head, loss, optimiser and loop bookkeeping. LCGNN's limit is its query encoder's "
        "forward + backward plus the key encoder's forward on the batches of the epoch; its last column compares "
        "it with the GraphCL (random4) limit of the same dataset.",
        "",
        "| dataset | method | epoch (ms) | limit (ms) | overhead [range] | ≤ 25 % | epoch / GraphCL limit |",
        "|---|---|---:|---:|---:|:---:|---:|",
    ]
    for data in results["datasets"]:
        median, rounds_cpu = data["median_cpu"], data["cpu_seconds"]
        for key, label in LABELS.items():
            if f"gcl/{key}" not in median or key in WORKER_TWINS:
                continue
            relative = "–"
            if "limit/graphcl" in rounds_cpu:
                relative = f"{paired(rounds_cpu[f'gcl/{key}'], rounds_cpu['limit/graphcl'])[0]:.2f}"
            cells = [data["dataset"], label, *overhead_cells(median, rounds_cpu, key), relative]
            out.append("| " + " | ".join(cells) + " |")
    out += workers_section(results)
    out += ["", "Wall-clock medians (ms) of the same runs, for reference:", "",
            "| dataset | " + " | ".join(sorted(results["datasets"][0]["median_wall"])) + " |",
            "|---|" + "---:|" * len(results["datasets"][0]["median_wall"])]
    for data in results["datasets"]:
        keys = sorted(results["datasets"][0]["median_wall"])
        out.append(f"| {data['dataset']} | " + " | ".join(ms(data["median_wall"].get(k, float("nan")))
                                                         for k in keys) + " |")
    out += ["", "Every round (CPU ms), to show the spread:", ""]
    for data in results["datasets"]:
        out.append(f"- {data['dataset']}: " + "; ".join(
            f"{key} " + "/".join(ms(v) for v in values) for key, values in sorted(data["cpu_seconds"].items())))
    return out


def profile_section(results: dict[str, Any]) -> list[str]:
    env = results["environment"]
    out = ["## Where the time goes", "", f"Command: `{env['command']}` ({results['dataset']}; load average "
           f"{env['load_average']}).", "",
           "CPU milliseconds per step (median over epochs), stages timed inside the library's loop; "
           "the limit is the GIN alone on the same views.", ""]
    variants = results["variants"]
    names = list(variants)
    out.append("| stage | " + " | ".join(names) + " |")
    out.append("|---|" + "---:|" * len(names))
    rows = ["load", "augment", "encoder forward", "head + loss forward", "backward", "optimiser", "loop", "epoch",
            "limit forward", "limit backward", "limit"]
    for row in rows:
        cells = []
        for name in names:
            value = variants[name]["median_cpu"][row] / variants[name]["steps"]
            epoch = variants[name]["median_cpu"]["epoch"] / variants[name]["steps"]
            share = "" if row.startswith("limit") or row == "epoch" else f" ({100 * value / epoch:.0f} %)"
            cells.append(f"{1e3 * value:.2f}{share}")
        label = f"**{row}**" if row in ("epoch", "limit") else row
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    for name in names:
        out += ["", f"Top operators by self CPU time, `{name}` (torch.profiler, 3 epochs):", "",
                "| operator | ms / epoch | share | calls / epoch |", "|---|---:|---:|---:|"]
        for op in variants[name]["top_operators"][:10]:
            out.append(f"| `{op['name']}` | {op['self_ms_per_epoch']:.1f} | {100 * op['share']:.1f} % | "
                       f"{op['calls_per_epoch']:.0f} |")
    return out


def memory_section(runs: list[dict[str, Any]]) -> list[str]:
    out = ["## Peak memory of pre-training", "",
           "One fresh process per dataset: load (from the processed cache), build GraphCL (GIN 3 × 32, random4 "
           "views; for OGB molecules the OGB atom/bond encoders and node-dropping/subgraph views), train one epoch "
           "(batch 128 unless said) with `gcl.train.fit`; peak RSS from `getrusage`. Dataset size = bytes of every tensor of "
           "the collated storage and its slice pointers; model = parameters, buffers and Adam's two moments. "
           "Baseline = RSS after importing torch, PyG and gcl, before loading. Saved for backward: the tensors "
           "autograd keeps for the backward of the step that keeps the most (each storage once). Tensor peak of "
           "a step: after the epoch, one more forward and backward pass on the epoch's largest batch (fresh "
           "views), the most tensor bytes alive at once on top of what was alive before it, from "
           "`torch.profiler`'s allocation events (NumPy's buffers and memory the allocator keeps are not "
           "counted). The last column is the epoch's wall-clock time (one run, loaded machine: indicative only)."]
    for results in runs:
        out += ["", *_memory_table(results)]
    return out


def _memory_table(results: dict[str, Any]) -> list[str]:
    env = results["environment"]
    csr = results.get("adjacency") == "csr"
    title = ("**The caller's own sparse CSR adjacency** handed to the encoder instead of `edge_index` "
             "(`--adjacency csr`, see `memory_bench.py`)" if csr else "**The library** (at the commit shown)")
    if results.get("checkpoint"):
        title += (", **GIN with activation checkpointing** (`--checkpoint`, `GIN(activation_checkpointing=True)`: each layer keeps "
                  "only its input and runs again in the backward pass; the saved-for-backward column counts those "
                  "inputs)")
    if results.get("micro_batch") is not None:
        title += (f", **micro-batches of {results['micro_batch']} graphs** (`--micro-batch`, "
                  f"`GIN(micro_batch_size={results['micro_batch']})`: each view encoded "
                  "in micro-batches kept only as inputs and embeddings and run again one at a time in the backward "
                  "pass; the loss contrasts the whole batch)")
    if results.get("micro_batch_nodes") is not None:
        title += (f", **at most {results['micro_batch_nodes']:,} nodes per micro-batch** (`--micro-batch-nodes`, "
                  f"`GIN(micro_batch_nodes={results['micro_batch_nodes']})`)")
    if results.get("batch_size", 128) != 128:
        title += f", **batches of {results['batch_size']} graphs** (`--batch-size`; 128 elsewhere)"
    if results.get("warm_up"):
        title += (", **baseline read after a one-epoch warm-up** on a small dataset (`--warm-up`: MUTAG, ogbg-molbace "
                  "for OGB molecules; the code a first epoch pages in and its one-off initialisation count in the "
                  "baseline)")
        if any(data.get("warm_up_augmentations") for data in results["datasets"]):
            title += (" and one call of every augmentation of the views' pool on one of its batches (MUTAG's epoch "
                      "is one step and draws two of random4's four)")
    if results.get("mmap_threshold") is not None:
        title += (f", **glibc mapping blocks of {results['mmap_threshold']:,} bytes and more** "
                  f"(`MALLOC_MMAP_THRESHOLD_={results['mmap_threshold']}`: freed large blocks go back to the "
                  "system instead of staying in the heap)")
    commit = f", commit {env['commit']}" if env.get("commit") else ""
    out = [f"{title}. Command: `{env['command']}` ({env['date']}{commit}).", "",
           "| dataset | graphs | nodes | edges | features | dataset (MB) | model (MB) | baseline (MB) | "
           "peak after load (MB) | peak (MB) | (peak − baseline) / (dataset + model) | peak / (dataset + model) "
           f"| ≤ {MEMORY_GOAL:.0f}× | saved for backward, largest step (MB) | tensor peak of a step, largest batch (MB) "
           "| epoch (s) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|"]
    for data in results["datasets"]:
        if "error" in data:
            out.append(f"| {data['dataset']} | failed: {data['error']} |")
            continue
        out.append(
            f"| {data['dataset']} | {data['graphs']:,} | {data['nodes']:,} | {data['edges']:,} | {data['features']} "
            f"| {mb(data['dataset_bytes'])} | {data['model_bytes'] / 2**20:.2f} | {mb(data['baseline_rss'])} | "
            f"{mb(data['after_load_peak_rss'])} | {mb(data['peak_rss'])} | {data['ratio_above_baseline']:.2f}× | "
            f"{data['ratio_raw']:.2f}× | {check(data['ratio_above_baseline'] <= MEMORY_GOAL)} | "
            f"{_saved(data)} | {_step_peak(data)} | {data['epoch_seconds']:.1f} |")
    return out


def _saved(data: dict[str, Any]) -> str:
    r"""The activations kept for the backward of the step that keeps the most (runs before
    this column existed have none)."""
    if "saved_for_backward_bytes" not in data:
        return "–"
    return f"{mb(data['saved_for_backward_bytes'])} ({data['saved_for_backward_batch_nodes']:,} nodes)"


def _step_peak(data: dict[str, Any]) -> str:
    r"""The tensors one step on the epoch's largest batch allocates at their peak (runs before
    this column existed have none)."""
    if data.get("step_tensor_peak_bytes") is None:
        return "–"
    return f"{mb(data['step_tensor_peak_bytes'])} ({data['step_tensor_peak_batch_nodes']:,} nodes)"


def micro_section(results: dict[str, Any]) -> list[str]:
    env = results["environment"]
    batch = results["batch"]
    out = ["## Micro-benchmarks", "", f"Command: `{env['command']}` ({env['date']}, load average "
           f"{env['load_average']}). CPU ms per call, median of {results['repeats']} interleaved calls, on one "
           f"128-graph {batch['dataset']} batch ({batch['nodes']:,} nodes, {batch['edges']:,} edges).", "",
           "| augmentation (one view) | ms |", "|---|---:|"]
    out += [f"| {name} | {1e3 * value:.2f} |" for name, value in results["augmentations"].items()]
    out += ["", "| GIN 3 × 32 forward + backward (unless said) | ms |", "|---|---:|"]
    out += [f"| {name} | {1e3 * value:.2f} |" for name, value in results["encoder"].items()]
    if "wide_encoder" in results:
        wide = results["wide_batch"]
        out += ["", f"The same on one 128-graph {wide['dataset']} batch ({wide['nodes']:,} nodes, "
                f"{wide['edges']:,} edges, {wide['features']} input features):", "",
                "| GIN 3 × 32 forward + backward (unless said) | ms |", "|---|---:|"]
        out += [f"| {name} | {1e3 * value:.1f} |" for name, value in results["wide_encoder"].items()]
    if "node_encoder" in results:
        out += ["", "| GCN on Cora (Graph Barlow Twins' encoder, 1433 → 512 → 256), forward + backward | ms |",
                "|---|---:|"]
        out += [f"| {name} | {1e3 * value:.1f} |" for name, value in results["node_encoder"].items()]
    if "node_loss" in results:
        out += ["", "| GRACE's loss on Cora-sized embeddings (2,708 × 128, symmetric, intra-view negatives), "
                "forward + backward | ms |", "|---|---:|"]
        out += [f"| {name} | {1e3 * value:.1f} |" for name, value in results["node_loss"].items()]
    if "hgpsl" in results:
        info = results["hgpsl_batch"]
        out += ["", f"| HGP-SL table's encoder and classifier on one {info['graphs']}-graph {info['dataset']} batch "
                f"({info['nodes']:,} nodes, {info['edges']:,} edges), forward + backward | ms |", "|---|---:|"]
        out += [f"| {name} | {1e3 * value:.1f} |" for name, value in results["hgpsl"].items()]
    out += ["", "| optimiser step over GraphCL's parameters | ms |", "|---|---:|"]
    out += [f"| {name} | {1e3 * value:.3f} |" for name, value in results["optimiser"].items()]
    if "loop" in results:
        out += ["", f"| training loop ({batch['dataset']}, batch 128, a one-parameter method) | ms |", "|---|---:|"]
        out += [f"| {name} | {1e3 * value:.3f} |" for name, value in results["loop"].items()]
    return out


def workers_section(results: dict[str, Any]) -> list[str]:
    r"""The variants whose views a background process draws (``view_workers=1``), in wall-clock time:
    their CPU time leaves out the worker's, so only the wall clock compares them."""
    rows = []
    for data in results["datasets"]:
        median, walls = data["median_wall"], data["wall_seconds"]
        for key, twin in WORKER_TWINS.items():
            if f"gcl/{key}" not in median or f"gcl/{twin}" not in median:
                continue
            faster, f_low, f_high = paired(walls[f"gcl/{twin}"], walls[f"gcl/{key}"])
            pygcl = "–"
            if twin.startswith("graphcl-pool3") and "pygcl/example" in walls:
                speed, s_low, s_high = paired(walls["pygcl/example"], walls[f"gcl/{key}"])
                pygcl = f"{speed:.2f}× [{s_low:.2f}–{s_high:.2f}]"
            startup = sorted(data.get("startup_seconds", {}).get(key, []))
            rows.append("| " + " | ".join([data["dataset"], LABELS[key], *overhead_cells(median, walls, key),
                                            ms(median[f"gcl/{twin}"]), f"{faster:.2f}× [{f_low:.2f}–{f_high:.2f}]",
                                            pygcl, ms(startup[len(startup) // 2]) if startup else "–"]) + " |")
    if not rows:
        return []
    return ["", "### Views drawn by a background process", "",
            "With `TrainConfig(view_workers=1)` (`gcl train --view-workers 1`) a second process collates each "
            "batch and draws its two views while the training process runs the model on the step before "
            "(`gcl.data.ViewPrefetcher`). It uses a second core, so these rows are **wall-clock** times, the "
            "limit included, and the speed-ups compare wall-clock times of the same round: against the same "
            "views drawn in the training process, and against PyGCL's example (single process, wall clock). "
            "The epoch is the second of a two-epoch run (the loop's epoch clock): the workers start once per "
            "run, and the first epoch's extra time (the start-up column, median) is paid once, not per epoch.",
            "",
            "| dataset | method | epoch (ms) | limit (ms) | overhead [range] | ≤ 25 % | in-process epoch (ms) | "
            "speed-up vs in-process [range] | speed-up vs PyGCL example [range] | start-up (ms) |",
            "|---|---|---:|---:|---:|:---:|---:|---:|---:|---:|", *rows]


def gpu_epoch_section(results: dict[str, Any]) -> list[str]:
    r"""The epoch benchmark run with ``--device cuda``: wall-clock seconds, each taken after the
    device finished the epoch's kernels; ratios within each round, as on the CPU."""
    env = results["environment"]
    first_pygcl = next((d["pygcl"] for d in results["datasets"] if d.get("pygcl")), None)
    rounds = len(next(iter(results["datasets"][0]["wall_seconds"].values())))
    out = ["## Pre-training epoch time on a GPU", "", f"Command: `{env['command']}`", "",
           f"- Device: {env.get('gpu', 'n/a')} ({env.get('gpu_memory_gb', '?')} GB), CUDA {env.get('cuda', '?')}; "
           f"host {env['cpu']}, {env['cores']} cores.",
           *header(env, first_pygcl)[0:1], *header(env, first_pygcl)[2:],
           f"- Protocol: as on the CPU (one warm-up round, then {rounds} interleaved rounds, medians, ratios within "
           "each round), but times are **wall-clock seconds** read after `torch.cuda.synchronize()`: on a GPU the "
           "process's CPU time is not the cost. Same model and settings as the CPU tables.",
           "",
           "| dataset | method | epoch (ms) | limit (ms) | overhead [range] | ≤ 25 % | PyGCL example (ms) | "
           "PyGCL two-pass (ms) | speed-up vs example [range] |",
           "|---|---|---:|---:|---:|:---:|---:|---:|---:|"]
    for data in results["datasets"]:
        median, walls = data["median_wall"], data["wall_seconds"]
        for key, label in LABELS.items():
            if f"gcl/{key}" not in median or key in WORKER_TWINS:
                continue
            pygcl = ["–", "–", "–"]
            if key == "graphcl-pool3" and "pygcl/example" in walls:
                speed, s_low, s_high = paired(walls["pygcl/example"], walls[f"gcl/{key}"])
                pygcl = [ms(median["pygcl/example"]), ms(median["pygcl/two-pass"]),
                         f"{speed:.2f}× [{s_low:.2f}–{s_high:.2f}]"]
            out.append("| " + " | ".join([data["dataset"], label, *overhead_cells(median, walls, key), *pygcl])
                       + " |")
    out += workers_section(results)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--epoch", default=None, help="epoch_bench.py results on the CPU")
    parser.add_argument("--gpu-epoch", default=None, help="epoch_bench.py results with --device cuda")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--memory", nargs="*", default=[], help="memory_bench.py results (one or more runs)")
    parser.add_argument("--micro", default=None)
    parser.add_argument("--notes", default=None, help="Markdown appended at the end (analysis)")
    parser.add_argument("--out", default="benchmarks/results/perf.md")
    parser.add_argument("--update", action="store_true",
                        help="replace only the sections given (by their '## ' heading) in the existing --out "
                             "file and keep the others, which came from other runs")
    args = parser.parse_args()
    lines = ["# Speed and memory" if args.epoch else "# Speed on a GPU", "",
             "Generated by `benchmarks/perf/report.py` from the JSON written by the scripts in `benchmarks/perf/`; "
             "every number below comes from the command shown with it.", ""]
    if args.epoch is None and args.gpu_epoch is None:
        parser.error("give --epoch, --gpu-epoch or both")
    if args.update and not Path(args.out).is_file():
        parser.error(f"--update replaces sections of an existing report; there is no {args.out}")
    if args.epoch:
        lines += epoch_section(json.loads(Path(args.epoch).read_text()))
    if args.gpu_epoch:
        lines += ["", *gpu_epoch_section(json.loads(Path(args.gpu_epoch).read_text()))]
    if args.profile:
        lines += ["", *profile_section(json.loads(Path(args.profile).read_text()))]
    if args.memory:
        lines += ["", *memory_section([json.loads(Path(path).read_text()) for path in args.memory])]
    if args.micro:
        lines += ["", *micro_section(json.loads(Path(args.micro).read_text()))]
    if args.notes:
        lines += ["", *Path(args.notes).read_text().rstrip().splitlines()]
    if args.update:
        lines = updated(Path(args.out).read_text().splitlines(), lines)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


def _sections(lines: list[str]) -> list[tuple[str, list[str]]]:
    r"""``(heading, lines)`` of every ``## `` section; the text before the first has heading ``""``."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    for line in lines:
        if line.startswith("## "):
            sections.append((line, []))
        sections[-1][1].append(line)
    return sections


def updated(old: list[str], new: list[str]) -> list[str]:
    r"""``old`` with each of its sections that ``new`` holds (same ``## `` heading) replaced by
    ``new``'s; sections only in ``new`` are appended, ``old``'s header is kept."""
    fresh = {heading: body for heading, body in _sections(new) if heading}
    out: list[str] = []
    for heading, body in _sections(old):
        out += fresh.pop(heading, body) if heading else body
    for body in fresh.values():
        out += ["", *body] if out and out[-1] else body
    return out


if __name__ == "__main__":
    main()
