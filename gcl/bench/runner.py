r"""Run a table: configuration → tasks → results store, skipping what is stored."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from gcl.bench.config import DatasetEntry, TableConfig
from gcl.bench.protocols import Context, Task, clean_task, make_tasks, run_task, task_dir
from gcl.bench.store import Record, ResultsStore

Executor = Callable[[TableConfig, Task, Context], list[Record]]


@dataclass
class RunSummary:
    r"""What :func:`run_table` did.

    Attributes:
        ran (list[str]): Tasks run now.
        skipped (list[str]): Tasks already in the store.
        failed (dict[str, str]): Tasks that raised, with the error.
        busy (list[str]): Tasks left alone because another run was working
            on them (see :func:`claim_task`).
        unavailable (list[str]): Datasets whose files were not found.
        seconds (float): Wall time of this call.
    """

    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    seconds: float = 0.0


class TaskFailed(RuntimeError):
    r"""A task failed and ``stop_on_error`` stopped the run (its id and error are in the message)."""

    def __init__(self, task_id: str, error: BaseException) -> None:
        super().__init__(f"task {task_id} failed ({type(error).__name__}: {error}); stopped (--stop-on-error). "
                         "Records already stored are kept; run the same command again to resume")
        self.task_id = task_id


class WorkerDied(RuntimeError):
    r"""A worker process of a parallel run (``jobs`` > 1) ended abruptly, killed (e.g. by the
    out-of-memory killer) or crashed; the message names the tasks left unfinished."""

    def __init__(self, unfinished: list[str]) -> None:
        super().__init__(f"a worker process ended abruptly (killed, e.g. by the out-of-memory killer, or crashed) "
                         f"with {len(unfinished)} task(s) unfinished: {', '.join(unfinished)}. Records already "
                         "stored are kept; run the same command again to resume (with fewer --jobs if memory ran out)")
        self.unfinished = unfinished


def versions(devices: list[str] | None = None) -> dict[str, str]:
    r"""Versions of Python, the platform and the libraries behind a score, and
    the devices that trained (with the GPU's name for CUDA devices)."""
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
        "device": ", ".join(_device_name(d) for d in (devices or ["cpu"])),
        "commit": source_commit(),
    }


def source_commit() -> str:
    r"""The git commit of the gcl source that runs (``+changes`` when its files differ from
    it), or ``"unknown"`` where gcl does not run from a git checkout (an installed wheel): the
    settings' fingerprint of a score does not cover the code, so the report names it."""
    import subprocess

    package = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(package), *args], capture_output=True, text=True, timeout=30)
        return done.stdout.strip() if done.returncode == 0 else ""

    try:
        top = git("rev-parse", "--show-toplevel")
        if not top or Path(top).resolve() / "gcl" != package:  # e.g. a wheel inside some other repository
            return "unknown"
        head = git("rev-parse", "--short=12", "HEAD")
        return (head + ("+changes" if git("status", "--porcelain", "--", str(package)) else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _device_name(device: str) -> str:
    import torch

    parsed = torch.device(device)
    if parsed.type == "cuda" and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(parsed)})"
    return device


def dataset_roots(entry: DatasetEntry) -> list[Path]:
    r"""The roots searched for a row's raw files, as :func:`gcl.data.load_dataset` searches them:
    the row's own ``dataset: {root: ...}`` first, then ``$GCL_DATA``, the shipped ``datasets/``
    and the cache."""
    from gcl.data import search_roots

    return search_roots(entry.dataset.get("root"))


def dataset_available(entry: DatasetEntry) -> bool:
    r"""Whether a row's data can be loaded: its raw files are found in the data roots
    (:func:`dataset_roots`: the row's ``root`` included), or its dataset settings ask for a
    download (``dataset: {download: true}``, the row's or one of its methods'), which
    :func:`gcl.data.load_dataset` then attempts (or names why it failed). Nothing is
    downloaded here."""
    from gcl.data import get_spec, locate

    try:
        spec = get_spec(entry.name)
    except ValueError:
        return False
    overrides = [override.get("dataset") for override in entry.methods.values() if isinstance(override, dict)]
    if any(isinstance(options, dict) and options.get("download") is True for options in [entry.dataset, *overrides]):
        return True
    return locate(spec, dataset_roots(entry)) is not None


def default_store_path() -> Path:
    r"""``$GCL_RESULTS`` or ``<gcl cache>/bench/results.sqlite``."""
    env = os.environ.get("GCL_RESULTS")
    if env:
        return Path(env).expanduser()
    from gcl.data import cache_dir

    return cache_dir() / "bench" / "results.sqlite"


def store_path_of(store: str | os.PathLike[str] | None) -> Path | str:
    r"""The results store a command uses: ``store`` (``--store``; ``~`` expanded), else
    :func:`default_store_path`; ``":memory:"`` as it is (it keeps nothing)."""
    path = default_store_path() if store is None else store
    return ":memory:" if str(path) == ":memory:" else Path(path).expanduser()


def parse_devices(device: str) -> list[str]:
    r"""The devices of ``--device``: one name, or a comma-separated list that parallel
    workers take in turn (e.g. ``"cuda:0,cuda:1"``); ``auto`` is ``cuda`` where a GPU
    is available, else ``cpu``.

    Example:
        >>> parse_devices("cpu, cpu")       # two workers on the CPU
        ['cpu', 'cpu']
    """
    import torch

    from gcl.train.distributed import checked_device

    names = [d.strip() for d in str(device).split(",") if d.strip()]
    if not names:
        raise ValueError(f"device must name at least one device (got {device!r})")
    names = [("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name for name in names]
    for name in names:
        checked_device(name)
    return names


def check_run_options(device: str, threads: int | None, jobs: int) -> list[str]:
    r"""Checks the run options of :func:`run_table`; returns the devices.

    Raises:
        ValueError: For a device torch does not know, fewer than one thread or
            job, or several devices for a single job.
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer (got {threads!r})")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer (got {jobs!r})")
    devices = parse_devices(device)
    if len(devices) > jobs:
        raise ValueError(f"{len(devices)} devices need at least as many jobs (got jobs={jobs})")
    return devices


def claim_task(folder: str | os.PathLike[str]) -> IO[bytes] | None:
    r"""Takes the exclusive lock of a task's work folder without waiting, or
    returns ``None`` when another process holds it.

    The lock is an advisory lock on ``folder/.lock`` (``flock`` on POSIX,
    ``msvcrt.locking`` on Windows). The operating system releases it when the
    returned file is closed or the process ends, however it ends, so a killed
    run never leaves a task locked. Two runs of the same table on the same
    store thereby never train the same task (and its checkpoints) at once.
    A run that stores a task removes its folder, lock file included, while
    another run may be taking that lock: a lock taken on a file no longer at
    its path is dropped and taken again on the new one.
    """
    from gcl.data.locks import try_lock

    path = Path(folder) / ".lock"
    for _ in range(1000):
        try:
            handle = try_lock(path)
        except (FileNotFoundError, FileExistsError):
            continue  # the folder went away between creating it and opening the file
        if handle is None:
            return None
        try:
            at_path = os.stat(path)
        except FileNotFoundError:
            at_path = None
        locked = os.fstat(handle.fileno())
        if at_path is not None and (at_path.st_ino, at_path.st_dev) == (locked.st_ino, locked.st_dev):
            return handle
        handle.close()  # the file was removed with its folder after this run opened it
    raise RuntimeError(f"cannot take the lock {path}: its folder keeps being removed")


def run_table(config: TableConfig, store: ResultsStore, *, work_dir: str | os.PathLike[str] | None = None,
              device: str = "cpu", threads: int | None = 1, progress: bool = True, command: str | None = None,
              stop_on_error: bool = False, executor: Executor = run_task,
              available: Callable[[DatasetEntry], bool] = dataset_available, jobs: int = 1) -> RunSummary:
    r"""Runs every task of ``config`` that the store does not hold yet.

    Records are stored as each task completes, so an interrupted run loses at
    most the tasks in progress (and those resume their training from their
    checkpoints in :obj:`work_dir`). A task runs under the lock of its work
    folder (:func:`claim_task`): a second run on the same store and work
    folder leaves the tasks the first is training to it (listed in
    :attr:`RunSummary.busy`) and runs the others.

    With :obj:`jobs` > 1, tasks run in that many worker processes (started
    with ``spawn``; each loads the datasets it needs once) and this process
    stores their records as they arrive, so the store keeps one writer. A task
    gives the same records in a worker as in this process: every training run
    seeds itself. Workers take the devices of a comma-separated :obj:`device`
    in turn, e.g. two GPUs for four workers: ``"cuda:0,cuda:1"``.

    Args:
        config (TableConfig): The table.
        store (ResultsStore): Where records go.
        work_dir (path, optional): Scratch folder for task checkpoints.
            (default: next to the store)
        device (str): Torch device for training, or a comma-separated list
            for the workers. (default: :obj:`"cpu"`)
        threads (int, optional): Torch intra-op CPU threads for the run (for
            each worker); ``None`` keeps torch's setting. Small graph batches
            gain little from more threads and, on a shared machine,
            oversubscribed threads slow training down by an order of magnitude.
            (default: :obj:`1`)
        progress (bool): Show a progress bar over tasks. (default: :obj:`True`)
        command (str, optional): Command line recorded with the run.
        stop_on_error (bool): Re-raise a task's exception instead of recording
            it and going on with the next task. (default: :obj:`False`)
        executor (callable): ``executor(config, task, context) -> records``;
            with :obj:`jobs` > 1 it must be picklable (a module-level function).
        available (callable): Whether a dataset's files are present.
        jobs (int): Worker processes. (default: :obj:`1`, tasks run here)

    Raises:
        TaskFailed: A task failed and :obj:`stop_on_error` is set.
        WorkerDied: A worker process ended abruptly (:obj:`jobs` > 1).
    """
    devices = check_run_options(device, threads, jobs)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    started = time.perf_counter()
    summary = RunSummary()
    in_memory = work_dir is None and store.path == ":memory:"
    if work_dir is not None:
        scratch = Path(work_dir)
    elif in_memory:  # no folder to put it next to: a temporary one (created by the first task), removed at the end
        scratch = Path(tempfile.gettempdir()) / f"gcl-bench-work-{os.getpid()}-{time.time_ns()}"
    else:
        scratch = Path(store.path).expanduser().parent / "work"
    ctx = Context(scratch, device=devices[0])
    for entry in config.datasets:
        if not available(entry):
            summary.unavailable.append(entry.label)
    tasks = [t for t in make_tasks(config) if t.entry.label not in summary.unavailable]
    todo = []
    for task in tasks:
        if store.done(config.table, task.variant, task.entry.label, task.spec.label, task.seed, task.folds):
            summary.skipped.append(task.id)
            if task_dir(config, task, ctx).exists():  # a run killed between storing and cleaning up
                clean_task(config, task, ctx)
        else:
            todo.append(task)
    # a run with nothing to do writes no records: it is not one of the commands behind them
    run_id = store.start_run(config.table, ",".join(sorted({t.variant for t in tasks})),
                             command if command is not None else " ".join(sys.argv), versions(devices)) if todo else None
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=config.table, unit="task",
                   dynamic_ncols=True)

    claims: dict[str, IO[bytes]] = {}

    def claim(task: Task) -> bool:
        # the lock first, then the store: another run may have stored the task meanwhile
        handle = claim_task(task_dir(config, task, ctx))
        if handle is None:
            summary.busy.append(task.id)
            return False
        if store.done(config.table, task.variant, task.entry.label, task.spec.label, task.seed, task.folds):
            clean_task(config, task, ctx)  # what a run killed after storing it left
            handle.close()
            summary.skipped.append(task.id)
            if bar is not None:
                bar.update(1)
            return False
        claims[task.id] = handle
        return True

    def release(task: Task) -> None:
        handle = claims.pop(task.id, None)
        if handle is not None:
            handle.close()

    def finished(task: Task, records: list[Record]) -> None:
        store.add(records)  # ValueError for records it refuses (a NaN score): the task's failure
        clean_task(config, task, ctx)
        release(task)
        summary.ran.append(task.id)
        if bar is not None:
            bar.update(1)

    def failed(task: Task, error: BaseException, message: str) -> None:
        release(task)
        summary.failed[task.id] = f"{type(error).__name__}: {error}"
        store.add_failure(config.table, task.variant, task.id, task.entry.label, task.spec.label, task.seed,
                          summary.failed[task.id])
        (bar.write if bar is not None else print)(f"[{task.id}] failed: {message}")

    try:
        if jobs == 1 or len(todo) <= 1:
            for task in todo:
                if not claim(task):
                    continue
                if bar is not None:
                    bar.set_postfix_str(task.id)
                try:
                    finished(task, executor(config, task, ctx))
                except KeyboardInterrupt:
                    raise
                except Exception as error:
                    failed(task, error, traceback.format_exc(limit=3))
                    if stop_on_error:
                        raise TaskFailed(task.id, error) from error
        else:
            # Process each dataset once here: workers that all found no processed cache
            # would each write it at the same time.
            for options in _datasets_of(config, todo):
                try:
                    Context(scratch).load(options)
                except Exception:  # the workers meet the same error and record it per task
                    pass
            _run_parallel(config, todo, executor, scratch, devices, threads, min(jobs, len(todo)),
                          stop_on_error, claim, finished, failed)
    finally:
        for handle in claims.values():
            handle.close()
        if bar is not None:
            bar.close()
        if in_memory:
            shutil.rmtree(scratch, ignore_errors=True)
    if run_id is not None:
        store.finish_run(run_id)
    summary.seconds = time.perf_counter() - started
    return summary


# -- parallel workers --------------------------------------------------------------
_WORKER: dict[str, Context] = {}


def _datasets_of(config: TableConfig, tasks: list[Task]) -> list[dict[str, Any]]:
    r"""The distinct dataset options of ``tasks``, in order."""
    seen: dict[str, dict[str, Any]] = {}
    for task in tasks:
        options = config.settings(task.entry, task.spec)["dataset"]
        seen.setdefault(json.dumps(options, sort_keys=True, default=str), options)
    return list(seen.values())


def _start_worker(work_dir: Path, devices: list[str], counter: Any, threads: int | None, parent: int) -> None:
    from gcl._process import exit_with_parent

    exit_with_parent(parent)
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    import torch

    import gcl.eval
    import gcl.methods
    import gcl.train  # noqa: F401 - imported once here, not inside the first task's timing

    if threads is not None:
        torch.set_num_threads(threads)
    _WORKER["ctx"] = Context(work_dir, device=devices[index % len(devices)])


def _work(executor: Executor, config: TableConfig, task: Task) -> list[Record]:
    return executor(config, task, _WORKER["ctx"])


class _Terminated(SystemExit):
    r"""SIGTERM or SIGHUP reached the main process of a parallel run."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated(128 + signum)


def _run_parallel(config: TableConfig, todo: list[Task], executor: Executor, work_dir: Path, devices: list[str],
                  threads: int | None, jobs: int, stop_on_error: bool, claim: Callable[[Task], bool],
                  finished: Callable[[Task, list[Record]], None],
                  failed: Callable[[Task, BaseException, str], None]) -> None:
    import multiprocessing
    import signal
    import threading
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # SIGTERM / SIGHUP become an exception, so the workers are stopped below (and by
    # exit_with_parent when this process is killed outright).
    handlers: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if signum is not None:
                handlers[signum] = signal.signal(signum, _raise_terminated)
    context = multiprocessing.get_context("spawn")  # CUDA cannot be re-initialised in a forked child
    counter = context.Value("i", 0)
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                               initargs=(work_dir, devices, counter, threads, os.getpid()))
    pending: dict[Future[list[Record]], Task] = {}
    queue = list(todo)

    def submit() -> None:
        # a task is claimed when it is handed to a worker, not before: a second run
        # meanwhile takes the tasks this one has not reached
        while queue and len(pending) < jobs:
            task = queue.pop(0)
            if claim(task):
                pending[pool.submit(_work, executor, config, task)] = task

    try:
        submit()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            # store what finished before acting on errors of the same batch
            errors: list[tuple[Task, BaseException]] = []
            for future in done:
                task = pending.pop(future)
                error = future.exception()
                if error is None:
                    try:
                        finished(task, future.result())
                    except ValueError as refused:  # records the store refuses: the task's failure
                        error = refused
                if error is not None:
                    errors.append((task, error))
            for task, error in errors:
                if isinstance(error, BrokenProcessPool):
                    # a broken pool fails every task it held at once: all of them are unfinished
                    broken = [t for t, e in errors if isinstance(e, BrokenProcessPool)]
                    unfinished = sorted(t.id for t in [*broken, *pending.values(), *queue])
                    raise WorkerDied(unfinished) from error
                if not isinstance(error, Exception):
                    raise error  # a worker's KeyboardInterrupt (Ctrl-C reaches every worker) stops the run
                failed(task, error, "".join(traceback.format_exception(error, limit=3)))
                if stop_on_error:
                    raise TaskFailed(task.id, error) from error
            submit()
    finally:
        # stop queued tasks; running ones are abandoned (their checkpoints let a re-run resume)
        workers = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=not pending, cancel_futures=True)
        if pending:
            for process in workers:
                process.terminate()
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
