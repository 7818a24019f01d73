from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gcl.bench.config import TableConfig
from gcl.bench.protocols import Context, Task, clean_task, make_tasks, task_dir
from gcl.bench.runner import TaskFailed, WorkerDied, claim_task, run_table
from gcl.bench.store import Record, ResultsStore

from . import _fake


def _recording(calls: list[str]):  # type: ignore[no-untyped-def]
    def run(config: TableConfig, task: Task, ctx: Context) -> list[Record]:
        calls.append(task.id)
        return _fake.executor(config, task, ctx)
    return run


def test_make_tasks_per_fold_and_per_seed() -> None:
    config = _fake.config(seeds=3)
    tasks = make_tasks(config)
    assert len(tasks) == 2 * 2 * 3 * 2  # datasets x methods x seeds x folds
    assert tasks[0].id == "MUTAG/a/seed0/fold0"
    svc = TableConfig(**{**config.__dict__, "protocol": "svc", "evaluation": {"n_splits": 4}})
    svc_tasks = make_tasks(svc)
    assert len(svc_tasks) == 2 * 2 * 3 and svc_tasks[0].folds == (0, 1, 2, 3)


def test_runs_everything_then_skips(tmp_path: Path) -> None:
    calls: list[str] = []
    with ResultsStore(tmp_path / "r.sqlite") as store:
        first = run_table(_fake.config(), store, progress=False, executor=_recording(calls),
                          available=lambda e: True, work_dir=tmp_path)
        assert len(first.ran) == 24 and not first.skipped
        again = run_table(_fake.config(), store, progress=False, executor=_recording(calls),
                          available=lambda e: True, work_dir=tmp_path)
        assert again.ran == [] and len(again.skipped) == 24
        assert len(calls) == 24
        assert len(store.records("fake")) == 24


def test_resume_after_exception(tmp_path: Path) -> None:
    calls: list[str] = []

    def failing(config: TableConfig, task: Task, ctx: Context) -> list[Record]:
        if len(calls) == 5:
            raise RuntimeError("injected")
        return _recording(calls)(config, task, ctx)

    with ResultsStore(tmp_path / "r.sqlite") as store:
        with pytest.raises(RuntimeError, match="injected"):
            run_table(_fake.config(), store, progress=False, executor=failing, stop_on_error=True,
                      available=lambda e: True, work_dir=tmp_path)
        assert len(store.records("fake")) == 5
        resumed: list[str] = []
        summary = run_table(_fake.config(), store, progress=False, executor=_recording(resumed),
                            available=lambda e: True, work_dir=tmp_path)
        assert resumed == [t.id for t in make_tasks(_fake.config())][5:]
        assert len(summary.skipped) == 5
        assert len(store.records("fake")) == 24


def test_failure_is_recorded_and_run_goes_on(tmp_path: Path) -> None:
    def bad_on_proteins(config: TableConfig, task: Task, ctx: Context) -> list[Record]:
        if task.entry.label == "PROTEINS":
            raise ValueError("broken data")
        return _fake.executor(config, task, ctx)

    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_table(_fake.config(), store, progress=False, executor=bad_on_proteins,
                            available=lambda e: True, work_dir=tmp_path)
    assert len(summary.ran) == 12 and len(summary.failed) == 12
    assert all("broken data" in message for message in summary.failed.values())


def test_a_run_with_nothing_to_do_is_not_listed_among_the_runs(tmp_path: Path) -> None:
    config = _fake.config(seeds=1)
    with ResultsStore(tmp_path / "r.sqlite") as store:
        for _ in range(2):  # the second finds every task stored
            run_table(config, store, progress=False, executor=_fake.executor, available=lambda e: True,
                      work_dir=tmp_path, command="gcl bench fake.yaml")
        assert len(store.runs("fake")) == 1 and store.runs("fake")[0]["finished"] is not None


def test_failed_tasks_are_reported_until_they_succeed(tmp_path: Path) -> None:
    from gcl.bench.report import write_report

    config = _fake.config(seeds=1)
    with ResultsStore(tmp_path / "r.sqlite") as store:
        run_table(config, store, progress=False, executor=_fake.nan_executor, available=lambda e: True,
                  work_dir=tmp_path)
        assert [f["task"] for f in store.failures("fake")] == ["MUTAG/a/seed0/fold0", "MUTAG/a/seed0/fold1"]
        text = write_report(config, store, tmp_path / "out")["md"].read_text()
        assert "| MUTAG | a |" in text and "failed (2 task(s))" in text
        assert "## Failed tasks" in text and "`MUTAG/a/seed0/fold0`: ValueError: score of" in text
        run_table(config, store, progress=False, executor=_fake.executor, available=lambda e: True,
                  work_dir=tmp_path)  # the retry succeeds
        assert store.failures("fake") == []
        text = write_report(config, store, tmp_path / "out")["md"].read_text()
    assert "task(s) failed" not in text and "failed (" not in text and "Failed tasks" not in text


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_score_the_store_refuses_fails_its_task_only(tmp_path: Path, jobs: int) -> None:
    config = _fake.config(seeds=1)
    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_table(config, store, progress=False, executor=_fake.nan_executor, available=lambda e: True,
                            work_dir=tmp_path, jobs=jobs)
        assert sorted(summary.failed) == ["MUTAG/a/seed0/fold0", "MUTAG/a/seed0/fold1"]
        assert all("must be finite" in message for message in summary.failed.values())
        assert len(summary.ran) == 6 and len(store.records("fake")) == 6  # the other tasks ran and were stored


def test_a_lock_on_a_removed_task_folder_is_taken_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a run that stored the task removes its folder, lock file included, while another run may
    # have opened that file: a lock on it would no longer keep anyone out
    import gcl.data.locks as locks

    config = _fake.config(seeds=1)
    task, ctx = make_tasks(config)[0], Context(tmp_path)
    folder = task_dir(config, task, ctx)
    opened: list[Any] = []
    original = locks.try_lock

    def open_then_lose_the_folder(path: Any) -> Any:
        handle = original(path)
        if not opened:  # the first time: the other run cleans up right after this one opened the file
            opened.append(handle)
            clean_task(config, task, ctx)
        return handle

    monkeypatch.setattr(locks, "try_lock", open_then_lose_the_folder)
    handle = claim_task(folder)
    assert handle is not None and handle is not opened[0]
    assert os.fstat(handle.fileno()).st_ino == os.stat(folder / ".lock").st_ino
    monkeypatch.setattr(locks, "try_lock", original)
    assert claim_task(folder) is None  # the lock at the path is held
    handle.close()


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_task_another_run_holds_is_left_to_it(tmp_path: Path, jobs: int) -> None:
    config = _fake.config(seeds=1)
    held = make_tasks(config)[3]
    ctx = Context(tmp_path)
    handle = claim_task(task_dir(config, held, ctx))
    assert handle is not None and claim_task(task_dir(config, held, ctx)) is None  # exclusive, even here
    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_table(config, store, progress=False, executor=_fake.executor, available=lambda e: True,
                            work_dir=tmp_path, jobs=jobs)
        assert summary.busy == [held.id] and held.id not in summary.ran and len(summary.ran) == 7
        assert held.id not in {r.task for r in store.records("fake")}
        handle.close()  # the other run ended (a killed process releases it too)
        again = run_table(config, store, progress=False, executor=_fake.executor, available=lambda e: True,
                          work_dir=tmp_path)
    assert again.ran == [held.id] and not again.busy


@pytest.mark.parametrize("jobs", [1, 2])
def test_two_runs_at_once_train_each_task_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int,
                                               fork_context: Any) -> None:
    log = tmp_path / "log.txt"
    monkeypatch.setenv("GCL_TEST_LOG", str(log))
    context = fork_context
    runs = [context.Process(target=_fake.run_logging, args=(str(tmp_path / "r.sqlite"), str(log), jobs))
            for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(120)
    assert [run.exitcode for run in runs] == [0, 0]
    ran = log.read_text().split()
    assert sorted(ran) == sorted(t.id for t in make_tasks(_fake.config(seeds=1)))  # each exactly once
    with ResultsStore(tmp_path / "r.sqlite") as store:
        assert len(store.records("fake")) == 8
    # every task's work folder is gone (stored tasks leave nothing behind, in either run)
    assert not [p for p in (tmp_path / "work").rglob("*") if p.is_file()]


def test_unavailable_dataset_is_skipped(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_table(_fake.config(), store, progress=False, executor=_fake.executor,
                            available=lambda e: e.label != "PROTEINS", work_dir=tmp_path)
    assert summary.unavailable == ["PROTEINS"] and len(summary.ran) == 12


def test_a_rows_own_root_is_searched_for_its_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gcl.bench.config import parse_config
    from gcl.bench.runner import dataset_available

    _fake.unshipped_tu_copy(tmp_path / "mine")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setenv("GCL_DATA", str(tmp_path / "elsewhere"))  # the copy is under no data root but the row's
    config = parse_config({
        "table": "own", "protocol": "supervised-kfold", "seeds": 1, "evaluation": {"n_splits": 2},
        "methods": {"a": {"method": "supervised"}},
        "datasets": {"NCI109": {"dataset": {"root": str(tmp_path / "mine")}}, "ENZYMES": {}},
    })
    mine, enzymes = config.datasets
    assert dataset_available(mine) and not dataset_available(enzymes)
    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_table(config, store, progress=False, executor=_fake.executor, work_dir=tmp_path)
    assert summary.unavailable == ["ENZYMES"] and summary.ran == ["NCI109/a/seed0/fold0", "NCI109/a/seed0/fold1"]


def test_resume_after_kill(tmp_path: Path, fork_context: Any) -> None:
    store_path = tmp_path / "r.sqlite"
    log = tmp_path / "log.txt"
    # A forked child runs the table and SIGKILLs itself at the 8th task: no
    # finally-blocks, no clean shutdown of the database connection.
    proc = fork_context.Process(target=_fake.run_and_die, args=(str(store_path), 7, str(log)))
    proc.start()
    proc.join(120)
    assert proc.exitcode == -9
    order = [t.id for t in make_tasks(_fake.config())]
    assert log.read_text().split() == order[:7]
    with ResultsStore(store_path) as store:
        before = {r.key(): r.score for r in store.records("fake")}
        assert len(before) == 7
        resumed: list[str] = []
        run_table(_fake.config(), store, progress=False, executor=_recording(resumed), available=lambda e: True,
                  work_dir=tmp_path)
        assert resumed == order[7:]
        after = store.records("fake")
    assert len(after) == 24
    assert all(before[r.key()] == r.score for r in after if r.key() in before)
    expected = {(t.entry.label, t.spec.label, t.seed, t.folds[0]): _fake.score(t) for t in make_tasks(_fake.config())}
    assert {(r.dataset, r.method, r.seed, r.fold): r.score for r in after} == pytest.approx(expected)


def test_parallel_jobs_store_the_same_records(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "one.sqlite") as store:
        run_table(_fake.config(seeds=1), store, progress=False, executor=_fake.executor,
                  available=lambda e: True, work_dir=tmp_path)
        one = {r.key(): r.score for r in store.records("fake")}
    with ResultsStore(tmp_path / "two.sqlite") as store:
        summary = run_table(_fake.config(seeds=1), store, progress=False, executor=_fake.device_of,
                            available=lambda e: True, work_dir=tmp_path, jobs=2, device="cpu,cpu:0")
        two = store.records("fake")
        assert len(summary.ran) == 8 and not summary.failed
        again = run_table(_fake.config(seeds=1), store, progress=False, executor=_fake.executor,
                          available=lambda e: True, work_dir=tmp_path, jobs=2)
        assert again.ran == [] and len(again.skipped) == 8
    assert {r.key(): r.score for r in two} == one
    # at most two worker processes, neither of them this one, each on a device of its own
    device_of = {r.extra["pid"]: r.extra["device"] for r in two}
    assert 1 <= len(device_of) <= 2 and os.getpid() not in device_of
    assert set(device_of.values()) <= {"cpu", "cpu:0"} and len(set(device_of.values())) == len(device_of)


def test_parallel_failure_is_recorded_and_run_goes_on(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_table(_fake.config(seeds=1), store, progress=False, executor=_fake.failing_on_proteins,
                            available=lambda e: True, work_dir=tmp_path, jobs=2)
        assert len(store.records("fake")) == 4
    assert len(summary.ran) == 4 and len(summary.failed) == 4
    assert all("broken data" in message for message in summary.failed.values())
    with ResultsStore(tmp_path / "s.sqlite") as store:
        with pytest.raises(TaskFailed, match=r"task PROTEINS/\S+ failed \(ValueError: broken data"):
            run_table(_fake.config(seeds=1), store, progress=False, executor=_fake.failing_on_proteins,
                      available=lambda e: True, work_dir=tmp_path, jobs=2, stop_on_error=True)


def test_stop_on_error_names_the_task_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gcl.cli import main

    config = tmp_path / "t.yaml"
    config.write_text("table: t\nprotocol: supervised-random\nseeds: 1\nevaluation: {num_runs: 1}\n"
                      "methods: {bad: {method: supervised, options: {dropout: 7.0}, train: {epochs: 1}}}\n"
                      "datasets: [MUTAG]\n")
    code = main(["bench", str(config), "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "out"),
                 "--stop-on-error", "--no-progress"])
    assert code == 1
    captured = capsys.readouterr()
    assert "task MUTAG/bad/seed0/fold0 failed (ValueError: dropout must be in [0, 1) (got 7.0))" in captured.err
    assert "[MUTAG/bad/seed0/fold0] failed:" in captured.out  # with its traceback


@pytest.mark.parametrize("options, message", [
    ({"jobs": 0}, "jobs must be a positive integer"),
    ({"jobs": True}, "jobs must be a positive integer"),
    ({"threads": 0}, "threads must be a positive integer"),
    ({"device": "gpu"}, "unknown device 'gpu'"),
    ({"device": " , "}, "at least one device"),
    ({"device": "cpu,cpu", "jobs": 1}, "2 devices need at least as many jobs"),
])
def test_run_options_are_checked(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with ResultsStore(tmp_path / "r.sqlite") as store, pytest.raises(ValueError, match=message):
        run_table(_fake.config(seeds=1), store, progress=False, executor=_fake.executor,
                  available=lambda e: True, work_dir=tmp_path, **options)
    assert not (tmp_path / "r.sqlite").exists() or not ResultsStore(tmp_path / "r.sqlite").records("fake")


def test_parallel_worker_crash_stops_with_a_clear_error_and_resumes(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.sqlite") as store:
        with pytest.raises(WorkerDied, match=r"worker process ended abruptly .* PROTEINS/") as info:
            run_table(_fake.config(seeds=1), store, progress=False, executor=_fake.dies_on_proteins,
                      available=lambda e: True, work_dir=tmp_path, jobs=2)
        kept = {r.key(): r.score for r in store.records("fake")}
        assert all(key[2] == "MUTAG" for key in kept)  # (table, variant, dataset, ...)
        stored = {r.task for r in store.records("fake")}
    # every task without records is named as unfinished, not only the one that broke the pool
    tasks = {t.id for t in make_tasks(_fake.config(seeds=1))}
    message = str(info.value)
    named = {task for task in tasks if f"{task}," in message or f"{task}." in message}
    assert named == tasks - stored and f"with {len(named)} task(s) unfinished" in message
    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_table(_fake.config(seeds=1), store, progress=False, executor=_fake.executor,
                            available=lambda e: True, work_dir=tmp_path, jobs=2)
        assert len(summary.skipped) == len(kept) and len(store.records("fake")) == 8


def test_parallel_keyboard_interrupt_stops_the_run(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.sqlite") as store, pytest.raises(KeyboardInterrupt):
        run_table(_fake.config(seeds=1), store, progress=False, executor=_fake.interrupted,
                  available=lambda e: True, work_dir=tmp_path, jobs=2)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_workers_end_with_the_main_process(tmp_path: Path, signum: int,
                                           alive: Callable[[int], bool], fork_context: Any) -> None:
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    proc = fork_context.Process(target=_fake.run_slow, args=(str(tmp_path / "r.sqlite"), str(pid_dir)))
    proc.start()
    deadline = time.monotonic() + 60
    while len(list(pid_dir.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [int(p.name) for p in pid_dir.iterdir()]
    assert len(workers) == 2 and all(alive(pid) for pid in workers)
    os.kill(proc.pid, signum)
    proc.join(30)
    assert proc.exitcode == (128 + signum if signum == signal.SIGTERM else -signum)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers)


def test_versions_name_the_source_commit(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from gcl.bench.runner import source_commit, versions

    commit = versions()["commit"]
    assert commit == source_commit()
    repo = Path(__file__).resolve().parents[2]
    if shutil.which("git") is None:
        assert commit == "unknown"
        return
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                          text=True, check=False).stdout.strip()
    if not head:
        pytest.skip("not a git checkout")
    dirty = bool(subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "gcl"], capture_output=True,
                                text=True, check=False).stdout.strip())
    assert commit == head + ("+changes" if dirty else "")


def _spawn_value(done: Any) -> None:
    import multiprocessing

    multiprocessing.get_context("spawn").Value("i", 0)  # registers a semaphore with the resource tracker
    done.set()


def test_a_child_forked_while_the_resource_tracker_is_busy_still_registers(fork_context: Any) -> None:
    """The forked tests above start process pools in the child. A child forked while another
    thread held the resource tracker's lock (a pool's manager thread shutting down after an
    earlier test) used to wait for that lock forever, and pytest then hung at exit joining it;
    the test suite's fork hook gives every child a fresh lock."""
    from multiprocessing import resource_tracker

    done = fork_context.Event()
    with resource_tracker._resource_tracker._lock:  # busy at the fork
        child = fork_context.Process(target=_spawn_value, args=(done,))
        child.start()
    assert done.wait(60)
    child.join(30)
    assert child.exitcode == 0


def test_a_row_that_asks_for_a_download_is_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gcl.data
    from gcl.bench.config import parse_config
    from gcl.bench.runner import dataset_available

    monkeypatch.delenv("GCL_DATA", raising=False)  # REDDIT-MULTI-5K is under no data root
    config = parse_config({
        "table": "dl", "protocol": "supervised-kfold", "seeds": 1, "evaluation": {"n_splits": 2},
        "methods": {"a": {"method": "supervised"}, "b": {"method": "supervised"}},
        "datasets": {"RDT-M5K": {"name": "REDDIT-MULTI-5K", "dataset": {"download": True}},
                     "ENZYMES": {"methods": {"b": {"dataset": {"download": True}}}}, "COLLAB": {}},
    })
    rdt, enzymes, collab = config.datasets
    assert dataset_available(rdt) and dataset_available(enzymes) and not dataset_available(collab)
    calls: list[tuple[str, dict[str, Any]]] = []

    def load_dataset(name: str, **options: Any) -> Any:  # what a download attempt that fails offline does
        calls.append((name, options))
        raise gcl.data.DatasetNotFoundError(f"{name}: download failed (offline)")

    monkeypatch.setattr(gcl.data, "load_dataset", load_dataset)
    with ResultsStore(":memory:") as store:
        summary = run_table(config, store, progress=False, work_dir=tmp_path)
    assert summary.unavailable == ["COLLAB"]
    assert ("REDDIT-MULTI-5K", {"download": True}) in calls and ("ENZYMES", {"download": True}) in calls
    assert "RDT-M5K/a/seed0/fold0" in summary.failed and "download failed" in summary.failed["RDT-M5K/a/seed0/fold0"]
