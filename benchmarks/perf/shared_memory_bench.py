r"""Memory of data-parallel pre-training on one machine: in-memory datasets against memory-mapped ones.

``gcl train graphcl --nproc N`` starts N processes that each load the dataset. With
an in-memory dataset each process holds its own copy; with ``--mmap`` each maps the
same file (:class:`gcl.data.MappedDataset`) and the machine holds one copy in its
page cache. This script runs the command both ways on the largest datasets
available and samples, every 0.1 s, the memory of the whole process tree (the
launcher and its ranks) from ``/proc/<pid>/smaps_rollup``:

* **PSS** (proportional set size): each page counted once over the processes
  sharing it, divided among them, so the sum over the tree is the memory the run
  occupies, shared file pages included;
* **private**: pages of one process only (``Private_Clean + Private_Dirty``);
* **RSS**: every resident page of every process, shared ones counted in each.

The peaks of the sums over the tree are reported, with the dataset's in-memory
size (bytes of the collated storage and slices) and the final loss (the same in
both modes: the mapped storage holds the same tensors). Processed caches and the
mapped file are built before the measurement (in a separate process), so the runs
measure training, not the one-off processing.

Usage::

    python benchmarks/perf/shared_memory_bench.py --datasets COLLAB REDDIT-BINARY --nproc 2 4 \
        --json /tmp/gcl-perf/shared.json --markdown benchmarks/results/memory-shared.md
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, use_shared_data, write_json

CLI = "import sys; from gcl.cli import main; sys.exit(main())"


def _children() -> dict[int, list[int]]:
    r"""Child pids of every process (from ``/proc/<pid>/stat``)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _tree(root: int) -> list[int]:
    children = _children()
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def _memory(pid: int) -> dict[str, int] | None:
    r"""Pss, private and Rss bytes of one process, or ``None`` once it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in text.splitlines()[1:] if ":" in line}
    return {"pss": fields.get("Pss", 0), "private": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
            "rss": fields.get("Rss", 0)}


class TreeSampler(threading.Thread):
    r"""Samples the summed memory of a process tree until stopped; keeps the peaks."""

    def __init__(self, root: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak = {"pss": 0, "private": 0, "rss": 0}
        self.most_processes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            totals = {"pss": 0, "private": 0, "rss": 0}
            alive = 0
            for pid in _tree(self.root):
                memory = _memory(pid)
                if memory is not None:
                    alive += 1
                    for key in totals:
                        totals[key] += memory[key]
            for key in totals:
                self.peak[key] = max(self.peak[key], totals[key])
            self.most_processes = max(self.most_processes, alive)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


LOADER_TIMING = """
import json, sys, time
sys.path.insert(0, {here!r})
import torch
from _common import tensor_bytes
from gcl.data import CollatedLoader, load_dataset
torch.set_num_threads(1)
data = {{mapped: load_dataset({name!r}, mmap=mapped) for mapped in (False, True)}}
seconds = {{False: [], True: []}}
for round_ in range({rounds}):
    for mapped in (False, True):  # interleaved
        loader = CollatedLoader(data[mapped], 128, shuffle=True, generator=torch.Generator().manual_seed(round_))
        started = time.process_time()
        for batch in loader:
            pass
        seconds[mapped].append(time.process_time() - started)
plain = data[False]
print(json.dumps({{"bytes": tensor_bytes(plain._data) + tensor_bytes(plain.slices),
                  "loader_memory": seconds[False], "loader_mapped": seconds[True]}}))
"""


def prepare(name: str, rounds: int = 5) -> dict[str, Any]:
    r"""In a child process: builds the processed cache and the mapped file, then times
    :class:`~gcl.data.CollatedLoader` epochs (shuffled, batch 128, CPU time) over the
    in-memory and the mapped dataset in turn. Returns the dataset's bytes and the times."""
    code = LOADER_TIMING.format(here=str(Path(__file__).resolve().parent), name=name, rounds=rounds)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(name: str, nproc: int, epochs: int, mmap: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gcl-shared-") as out:
        command = [sys.executable, "-c", CLI, "train", "graphcl", "--dataset", name, "--nproc", str(nproc),
                   "--epochs", str(epochs), "--eval", "none", "--quiet", "--threads", "1", "--device", "cpu",
                   "--out", out, *(["--mmap"] if mmap else [])]
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sampler = TreeSampler(process.pid)
        sampler.start()
        stdout, stderr = process.communicate()
        sampler.stop()
        seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[3:])} failed:\n{stderr[-2000:]}")
    trained = re.search(r"final loss ([0-9.]+), ([0-9.]+) s", stdout)
    return {"mode": "mmap" if mmap else "memory", "processes": sampler.most_processes,
            "peak_pss": sampler.peak["pss"], "peak_private": sampler.peak["private"], "peak_rss": sampler.peak["rss"],
            "final_loss": float(trained.group(1)) if trained else None,
            "train_seconds": float(trained.group(2)) if trained else None, "wall_seconds": seconds}


def markdown(results: dict[str, Any]) -> str:
    env = results["environment"]
    lines = [
        "# Memory of data-parallel pre-training: in-memory against memory-mapped datasets", "",
        f"Generated by `{env['command']}` ({env['date']}); Python {env['python']}, torch {env['torch']}, "
        f"torch_geometric {env['torch_geometric']}; {env['cpu']}, {env['cores']} cores, {env['memory_gb']} GB RAM "
        f"(load average at the start {env['load_average']}).", "",
        f"`gcl train graphcl --dataset NAME --nproc N --epochs {results['epochs']} --eval none` (GIN 3 × 32, "
        "random4 views, global batch 128, one thread per process), without and with `--mmap`. Peaks of the process "
        "tree's summed memory (the launcher, its N ranks and multiprocessing's resource tracker), sampled every "
        "0.1 s from `/proc/<pid>/smaps_rollup`: PSS divides each shared page among the processes mapping it (the "
        "sum is what the run occupies), private counts the pages of one process only, RSS counts shared pages in "
        "every process. Dataset = bytes of the collated storage and its slices. The saving is the in-memory run's "
        "peak PSS minus the mapped run's, in MB and as a multiple of the dataset's size (N ranks in memory hold "
        "N copies, mapped ones share one: about N − 1 copies are saved). Training time: one run each, on a machine "
        "shared with other jobs: indicative only; the loader table below compares the data path itself.", "",
        "| dataset | dataset (MB) | ranks N | storage | processes | peak Σ PSS (MB) | peak Σ private (MB) "
        "| peak Σ RSS (MB) | saving (MB, × dataset) | final loss | training (s) |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for data in results["datasets"]:
        size = data["dataset_bytes"] / 2**20
        for nproc in sorted({row["nproc"] for row in data["runs"]}):
            runs = {row["mode"]: row for row in data["runs"] if row["nproc"] == nproc}
            for mode in ("memory", "mmap"):
                row = runs[mode]
                loss = f"{row['final_loss']:.4f}" if row["final_loss"] is not None else "–"
                seconds = f"{row['train_seconds']:.1f}" if row["train_seconds"] is not None else "–"
                saving = "–"
                if mode == "mmap" and "memory" in runs:
                    saved = (runs["memory"]["peak_pss"] - row["peak_pss"]) / 2**20
                    saving = f"{saved:.0f} ({saved / max(size, 1e-9):.2f}×)"
                lines.append(
                    f"| {data['dataset']} | {size:.0f} | {nproc} | "
                    f"{'memory-mapped (`--mmap`)' if mode == 'mmap' else 'in memory'} | {row['processes']} | "
                    f"{row['peak_pss'] / 2**20:.0f} | {row['peak_private'] / 2**20:.0f} | "
                    f"{row['peak_rss'] / 2**20:.0f} | {saving} | {loss} | {seconds} |")
    lines += ["", "`CollatedLoader` epochs (shuffled, batch 128) over each dataset in one process, in memory and "
              "memory-mapped in turn (the mapped file in the page cache), CPU seconds per epoch, median [range] of "
              "the rounds:", "", "| dataset | in memory (s) | memory-mapped (s) | mapped / in memory |",
              "|---|---:|---:|---:|"]
    for data in results["datasets"]:
        if "loader_memory" not in data:
            continue
        memory, mapped = data["loader_memory"], data["loader_mapped"]
        lines.append(f"| {data['dataset']} | {statistics.median(memory):.3f} [{min(memory):.3f}–{max(memory):.3f}] "
                     f"| {statistics.median(mapped):.3f} [{min(mapped):.3f}–{max(mapped):.3f}] "
                     f"| {statistics.median(mapped) / statistics.median(memory):.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--datasets", nargs="+", default=["COLLAB"])
    parser.add_argument("--nproc", type=int, nargs="+", default=[2], help="rank counts to measure")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--json", default=None)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        raise SystemExit("reads /proc/<pid>/smaps_rollup: Linux only")
    use_shared_data()
    results: dict[str, Any] = {"environment": environment(1), "epochs": args.epochs, "datasets": []}
    for name in args.datasets:
        prepared = prepare(name)
        entry: dict[str, Any] = {"dataset": name, "dataset_bytes": prepared["bytes"], "runs": [],
                                 "loader_memory": prepared["loader_memory"], "loader_mapped": prepared["loader_mapped"]}
        for nproc in args.nproc:
            for mmap in (False, True):
                entry["runs"].append({"nproc": nproc, **run(name, nproc, args.epochs, mmap)})
                print(f"{name} N={nproc} {'mmap' if mmap else 'memory'}: {entry['runs'][-1]}", file=sys.stderr)
        results["datasets"].append(entry)
    write_json(args.json, results)
    if args.markdown:
        Path(args.markdown).write_text(markdown(results))
        print(f"wrote {args.markdown}", file=sys.stderr)


if __name__ == "__main__":
    main()
