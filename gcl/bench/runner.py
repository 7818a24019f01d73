r"""Run a table: configuration → tasks → results store, skipping what is stored."""

from __future__ import annotations

import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gcl.bench.config import DatasetEntry, TableConfig
from gcl.bench.protocols import Context, Task, clean_task, make_tasks, run_task
from gcl.bench.store import Record, ResultsStore

Executor = Callable[[TableConfig, Task, Context], list[Record]]


@dataclass
class RunSummary:
    r"""What :func:`run_table` did.

    Attributes:
        ran (list[str]): Tasks run now.
        skipped (list[str]): Tasks already in the store.
        failed (dict[str, str]): Tasks that raised, with the error.
        unavailable (list[str]): Datasets whose files were not found.
        seconds (float): Wall time of this call.
    """

    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unavailable: list[str] = field(default_factory=list)
    seconds: float = 0.0


def versions() -> dict[str, str]:
    r"""Versions of Python, the platform and the libraries behind a score."""
    import sklearn
    import torch
    import torch_geometric

    from gcl import __version__

    return {
        "gcl": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
        "cpu_count": str(os.cpu_count()),
        "threads": str(torch.get_num_threads()),
    }


def dataset_available(entry: DatasetEntry) -> bool:
    r"""Whether the raw files of a dataset are found in the data roots (no download attempted)."""
    from gcl.data import get_spec, locate, search_roots

    try:
        spec = get_spec(entry.name)
    except ValueError:
        return False
    return locate(spec, search_roots()) is not None


def default_store_path() -> Path:
    r"""``$GCL_RESULTS`` or ``<gcl cache>/bench/results.sqlite``."""
    env = os.environ.get("GCL_RESULTS")
    if env:
        return Path(env).expanduser()
    from gcl.data import cache_dir

    return cache_dir() / "bench" / "results.sqlite"


def run_table(config: TableConfig, store: ResultsStore, *, work_dir: str | os.PathLike[str] | None = None,
              device: str = "cpu", threads: int | None = 1, progress: bool = True, command: str | None = None,
              stop_on_error: bool = False, executor: Executor = run_task,
              available: Callable[[DatasetEntry], bool] = dataset_available) -> RunSummary:
    r"""Runs every task of ``config`` that the store does not hold yet.

    Records are stored as each task completes, so an interrupted run loses at
    most the task in progress (and that task resumes its training from its
    checkpoint in :obj:`work_dir`).

    Args:
        config (TableConfig): The table.
        store (ResultsStore): Where records go.
        work_dir (path, optional): Scratch folder for task checkpoints.
            (default: next to the store)
        device (str): Torch device for training. (default: :obj:`"cpu"`)
        threads (int, optional): Torch intra-op CPU threads for the run; ``None``
            keeps torch's setting. Small graph batches gain little from more
            threads and, on a shared machine, oversubscribed threads slow
            training down by an order of magnitude. (default: :obj:`1`)
        progress (bool): Show a progress bar over tasks. (default: :obj:`True`)
        command (str, optional): Command line recorded with the run.
        stop_on_error (bool): Re-raise a task's exception instead of recording
            it and going on with the next task. (default: :obj:`False`)
        executor (callable): ``executor(config, task, context) -> records``.
        available (callable): Whether a dataset's files are present.
    """
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1 (got {threads})")
        import torch

        torch.set_num_threads(threads)
    started = time.perf_counter()
    summary = RunSummary()
    scratch = Path(work_dir) if work_dir is not None else Path(store.path).expanduser().parent / "work"
    ctx = Context(scratch, device=device)
    entries = []
    for entry in config.datasets:
        if available(entry):
            entries.append(entry)
        else:
            summary.unavailable.append(entry.label)
    tasks = [t for t in make_tasks(config) if t.entry.label not in summary.unavailable]
    todo = []
    for task in tasks:
        if store.done(config.table, task.variant, task.entry.label, task.spec.label, task.seed, task.folds):
            summary.skipped.append(task.id)
        else:
            todo.append(task)
    run_id = store.start_run(config.table, ",".join(sorted({t.variant for t in tasks})),
                             command if command is not None else " ".join(sys.argv), versions())
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=config.table, unit="task",
                   dynamic_ncols=True)
    try:
        for task in todo:
            if bar is not None:
                bar.set_postfix_str(task.id)
            try:
                records = executor(config, task, ctx)
            except KeyboardInterrupt:
                raise
            except Exception as error:
                if stop_on_error:
                    raise
                summary.failed[task.id] = f"{type(error).__name__}: {error}"
                message = traceback.format_exc(limit=3)
                (bar.write if bar is not None else print)(f"[{task.id}] failed: {message}")
                continue
            store.add(records)
            clean_task(config, task, ctx)
            summary.ran.append(task.id)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    store.finish_run(run_id)
    summary.seconds = time.perf_counter() - started
    return summary
