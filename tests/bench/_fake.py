"""A deterministic stand-in for the training protocols, used by the runner tests."""

from __future__ import annotations

import dataclasses
import os
import signal
import zlib
from pathlib import Path

from gcl.bench.config import TableConfig, parse_config
from gcl.bench.protocols import Context, Task
from gcl.bench.store import Record, ResultsStore


def config(seeds: int = 3) -> TableConfig:
    return parse_config({
        "table": "fake", "protocol": "supervised-kfold", "seeds": seeds, "aggregate": "folds",
        "evaluation": {"n_splits": 2},
        "methods": {"a": {"method": "supervised"}, "b": {"method": "lcgnn"}},
        "datasets": {"MUTAG": {}, "PROTEINS": {}},
    })


def score(task: Task) -> float:
    return (zlib.crc32(f"{task.entry.label}/{task.spec.label}".encode()) % 100) / 1000.0 + 0.01 * task.seed + 0.001 * task.folds[0]


def executor(config: TableConfig, task: Task, ctx: Context) -> list[Record]:
    return [Record(config.table, task.variant, task.entry.label, task.spec.label, task.seed, f, score(task),
                   task=task.id, task_seconds=1.0) for f in task.folds]


def nan_executor(config: TableConfig, task: Task, ctx: Context) -> list[Record]:
    """:func:`executor`, with a NaN score for MUTAG / a, seed 0 (a diverged run)."""
    records = executor(config, task, ctx)
    if (task.entry.label, task.spec.label, task.seed) == ("MUTAG", "a", 0):
        records = [dataclasses.replace(r, score=float("nan")) for r in records]
    return records


def run_and_die(store_path: str, die_at: int, log: str) -> None:
    """Runs the fake table; the process kills itself (SIGKILL, no clean-up) at task ``die_at``."""
    from gcl.bench.runner import run_table

    count = {"n": 0}

    def dying(config: TableConfig, task: Task, ctx: Context) -> list[Record]:
        if count["n"] == die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        count["n"] += 1
        with open(log, "a") as handle:
            handle.write(task.id + "\n")
        return executor(config, task, ctx)

    with ResultsStore(store_path) as store:
        run_table(config(), store, progress=False, executor=dying, available=lambda e: True,
                  work_dir=Path(store_path).parent / "work", threads=None)


def failing_on_proteins(config: TableConfig, task: Task, ctx: Context) -> list[Record]:
    """Like :func:`executor`, but every PROTEINS task raises (picklable, for worker processes)."""
    if task.entry.label == "PROTEINS":
        raise ValueError("broken data")
    return executor(config, task, ctx)


def device_of(config: TableConfig, task: Task, ctx: Context) -> list[Record]:
    """Records the worker's device and process id in ``extra``."""
    return [Record(config.table, task.variant, task.entry.label, task.spec.label, task.seed, f, score(task),
                   task=task.id, extra={"device": ctx.device, "pid": os.getpid()}) for f in task.folds]


def dies_on_proteins(config: TableConfig, task: Task, ctx: Context) -> list[Record]:
    """Like :func:`executor`, but the worker process SIGKILLs itself on PROTEINS tasks."""
    if task.entry.label == "PROTEINS":
        os.kill(os.getpid(), signal.SIGKILL)
    return executor(config, task, ctx)


def interrupted(config: TableConfig, task: Task, ctx: Context) -> list[Record]:
    """Raises KeyboardInterrupt, as Ctrl-C does in every worker of the process group."""
    raise KeyboardInterrupt


def slow(config: TableConfig, task: Task, ctx: Context) -> list[Record]:
    """Writes the worker's pid to ``$GCL_TEST_PIDS/<pid>``, then takes a minute."""
    import time

    Path(os.environ["GCL_TEST_PIDS"], str(os.getpid())).touch()
    time.sleep(60)
    return executor(config, task, ctx)


def run_slow(store_path: str, pid_dir: str) -> None:
    """Runs the fake table with two workers and the slow executor (the test kills this process)."""
    from gcl.bench.runner import run_table

    os.environ["GCL_TEST_PIDS"] = pid_dir
    with ResultsStore(store_path) as store:
        run_table(config(seeds=1), store, progress=False, executor=slow, available=lambda e: True,
                  work_dir=Path(store_path).parent / "work", jobs=2)


def run_logging(store_path: str, log: str, jobs: int) -> None:
    """Runs the fake table; every task takes a moment and appends its id to ``log``."""
    import time

    from gcl.bench.runner import run_table

    def logging(config: TableConfig, task: Task, ctx: Context) -> list[Record]:
        time.sleep(0.05)
        with open(log, "a") as handle:
            handle.write(task.id + "\n")
        return executor(config, task, ctx)

    with ResultsStore(store_path) as store:
        run_table(config(seeds=1), store, progress=False, executor=logging if jobs == 1 else slow_logging,
                  available=lambda e: True, work_dir=Path(store_path).parent / "work", threads=None, jobs=jobs)


def slow_logging(config: TableConfig, task: Task, ctx: Context) -> list[Record]:
    """Picklable :func:`run_logging` executor for worker processes (the log is ``$GCL_TEST_LOG``)."""
    import time

    time.sleep(0.05)
    with open(os.environ["GCL_TEST_LOG"], "a") as handle:
        handle.write(task.id + "\n")
    return executor(config, task, ctx)


def unshipped_tu_copy(root: Path, name: str = "NCI109") -> Path:
    """Writes the shipped MUTAG's raw files as the TU data set ``name`` (one that ``datasets/``
    does not ship) under ``root/TU/name/raw``: a row finds it only through a root naming ``root``."""
    from gcl.data.roots import REPO_DATASETS

    raw = root / "TU" / name / "raw"
    raw.mkdir(parents=True)
    for part in ("A", "graph_indicator", "graph_labels", "node_labels"):
        (raw / f"{name}_{part}.txt").write_bytes((REPO_DATASETS / "TU" / "MUTAG" / "raw" / f"MUTAG_{part}.txt")
                                                 .read_bytes())
    return raw.parent
