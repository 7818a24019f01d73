from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import torch

from gcl.bench.store import ResultsStore
from gcl.cli import main


def test_reproduce_quick_on_mutag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store, out = tmp_path / "r.sqlite", tmp_path / "out"
    args = ["reproduce", "graphcl-tu", "--quick", "--store", str(store), "--out", str(out), "--no-progress"]
    started = time.perf_counter()
    assert main(args) == 0
    assert time.perf_counter() - started < 30
    assert "ran 1 task(s)" in capsys.readouterr().out
    with ResultsStore(store) as db:
        records = db.records("graphcl-tu")
        runs = db.runs("graphcl-tu")
    assert [r.fold for r in records] == [0, 1, 2]  # the quick section asks for 3 folds
    assert all(0.0 <= r.score <= 1.0 and r.dataset == "MUTAG" for r in records)
    assert runs[0]["command"].startswith("gcl reproduce graphcl-tu --quick")
    text = (out / "graphcl-tu.md").read_text()
    assert "| MUTAG | graphcl |" in text and "(quick)" in text and "86.80 ± 1.34" in text
    # a smoke test is named as such and judged against nothing
    assert "`gcl reproduce graphcl-tu --quick`" in text and "overrides the above" in text
    row = next(line for line in text.splitlines() if line.startswith("| MUTAG | graphcl |"))
    assert row.split(" | ")[5] == "–"
    assert (out / "graphcl-tu.csv").is_file() and (out / "graphcl-tu.png").is_file()
    # A second run finds everything stored and trains nothing.
    assert main(args) == 0
    assert "ran 0 task(s), skipped 1" in capsys.readouterr().out


def test_reproduce_unknown_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "no-such-table"]) == 2
    assert "no configuration for table" in capsys.readouterr().err


def test_unknown_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "graphcl-tu", "--datasets", "CIFAR", "--store", str(tmp_path / "r.sqlite")]) == 2
    assert "has no dataset 'CIFAR'" in capsys.readouterr().err


def test_methods_subset_runs_only_those_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "graphcl-tu", "--methods", "nope", "--store", str(tmp_path / "r.sqlite")]) == 2
    assert "has no method 'nope'" in capsys.readouterr().err
    config = tmp_path / "two.yaml"
    config.write_text("table: two\nprotocol: svc\nseeds: 1\nmethods: {a: {method: graphcl}, b: {method: graphcl}}\n"
                      "datasets: [MUTAG]\ntrain: {epochs: 1}\nevaluation: {n_splits: 2}\n"
                      "quick: {train: {epochs: 1}}\n")
    store = tmp_path / "r.sqlite"
    assert main(["bench", str(config), "--methods", "b", "--store", str(store), "--out", str(tmp_path),
                 "--no-progress"]) == 0
    assert "ran 1 task(s)" in capsys.readouterr().out
    with ResultsStore(store) as db:
        assert {r.method for r in db.records("two")} == {"b"}
        assert db.runs("two")[0]["command"].endswith("--methods b --store " + str(store) + " --out " + str(tmp_path))
    text = (tmp_path / "two.md").read_text()
    assert "| MUTAG | a |" in text and "not run yet" in text  # the report still lists every row


def test_bench_config_file_report_only(tmp_path: Path) -> None:
    from gcl.bench.config import load_config

    config = tmp_path / "mini.yaml"
    config.write_text("table: mini\nprotocol: svc\nmethods: {graphcl: {}}\ndatasets: [MUTAG, PTC_MR]\n")
    store = _stored(tmp_path / "r.sqlite", load_config(config).restricted(["MUTAG"]))  # one row run
    assert main(["bench", str(config), "--report-only", "--store", str(store), "--out", str(tmp_path)]) == 0
    assert "| PTC_MR | graphcl |" in (tmp_path / "mini.md").read_text()
    assert "not run yet" in (tmp_path / "mini.md").read_text()
    assert f"by `gcl bench {config}` (configuration `{config}`)" in (tmp_path / "mini.md").read_text()
    own = tmp_path / "configs" / "mini.yaml"  # a folder named configs of one's own is not benchmarks/configs
    own.parent.mkdir()
    own.write_text(config.read_text())
    assert main(["bench", str(own), "--report-only", "--store", str(store), "--out", str(tmp_path / "own")]) == 0
    assert f"by `gcl bench {own}`" in (tmp_path / "own" / "mini.md").read_text()
    # fewer --seeds than the table names run fewer, but the report still counts all of them
    config.write_text(config.read_text().replace("protocol: svc", "protocol: svc\nseeds: 3"))
    assert main(["bench", str(config), "--report-only", "--seeds", "1", "--store", str(store),
                 "--out", str(tmp_path / "other")]) == 0
    assert "| 0/3 |" in (tmp_path / "other" / "mini.md").read_text()


def test_report_only_from_a_store_without_the_tables_records_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # without a report in --out to replace too: the report would say "not run yet" on every row
    config = tmp_path / "mini.yaml"
    config.write_text("table: mini\nprotocol: svc\nmethods: {graphcl: {}}\ndatasets: [MUTAG]\n")
    missing, other = tmp_path / "typo" / "r.sqlite", tmp_path / "other.sqlite"
    ResultsStore(other).close()  # a store of other tables
    for store, found in ((missing, f"there is no results store at {missing}"),
                         (other, f"the store {other} holds no records of mini under the settings the report covers")):
        assert main(["bench", str(config), "--report-only", "--store", str(store), "--out", str(tmp_path / "out")]) \
            == 2
        assert f"--report-only: {found}: the report would say 'not run yet' on every row. Pass the store the table " \
            "was run with" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()  # reading a store that is not there creates none
    assert not (tmp_path / "out").exists()


def test_report_only_does_not_blank_a_report_from_a_store_without_its_records(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mini.yaml"
    config.write_text("table: mini\nprotocol: svc\nmethods: {graphcl: {}}\ndatasets: [MUTAG]\n")
    (tmp_path / "mini.md").write_text("the committed report\n")
    for store in (tmp_path / "typo" / "r.sqlite", tmp_path / "other.sqlite"):
        if store.name == "other.sqlite":
            ResultsStore(store).close()  # a store of other tables
        assert main(["bench", str(config), "--report-only", "--store", str(store), "--out", str(tmp_path)]) == 2
        assert "the report would replace" in capsys.readouterr().err
    assert (tmp_path / "mini.md").read_text() == "the committed report\n"
    assert not (tmp_path / "typo").exists()


_MINI = ("table: mini\nprotocol: svc\nseeds: 2\nmethods: {graphcl: {options: {hidden_channels: 8, num_layers: 2}}}\n"
         "datasets: [MUTAG, PTC_MR]\ntrain: {epochs: 2, batch_size: 64}\n"
         "evaluation: {n_splits: 2, inner_splits: 2, C_grid: [1.0]}\nquick: {datasets: [MUTAG]}\n")


def _stored(path: Path, config: Any) -> Path:
    """A store holding every seed and fold of every row of ``config`` (as a finished run leaves it)."""
    from gcl.bench.protocols import folds_of
    from gcl.bench.store import Record

    with ResultsStore(path) as store:
        store.add(Record(config.table, config.variant(entry, spec), entry.label, spec.label, seed, fold, 0.8,
                         task=f"{entry.label}/{spec.label}/seed{seed}", task_seconds=1.0)
                  for entry in config.datasets for spec in config.methods for seed in range(config.seeds)
                  for fold in range(folds_of(config)[0]))
    return path


def _table(name: str) -> Any:
    """The configuration of table ``name`` (of ``$GCL_BENCHMARKS/configs``, or the shipped one)."""
    from gcl.bench.config import find_config, load_config

    return load_config(find_config(name))


def _committed(tmp_path: Path, text: str = _MINI) -> tuple[Path, Path, Path]:
    """A table's configuration, its report with every row done and the store beside it."""
    from gcl.bench.config import load_config
    from gcl.bench.report import write_report

    config, out = tmp_path / "mini.yaml", tmp_path / "results"
    config.write_text(text)
    with ResultsStore(_stored(out / "results.sqlite", load_config(config))) as store:
        write_report(load_config(config), store, out, chart=False)
    report = out / "mini.md"
    assert "| done |" in report.read_text() and "not run yet" not in report.read_text()
    return config, report, out / "results.sqlite"


def test_report_only_does_not_blank_a_report_from_a_store_of_quick_records(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gcl.bench.config import load_config

    config, report, committed = _committed(tmp_path)
    committed_text = report.read_text()
    quick = _stored(tmp_path / "R.sqlite", load_config(config).reduced())  # what a --quick run leaves
    assert main(["bench", str(config), "--report-only", "--store", str(quick), "--out", str(report.parent)]) == 2
    err = capsys.readouterr().err
    assert f"--report-only: {report} shows results missing from the store {quick} (MUTAG / graphcl: 2 seed(s) " \
        "done, 0 in the store, PTC_MR / graphcl: 2 seed(s) done, 0 in the store)" in err
    assert f"--store {committed}, the store beside the report" in err
    assert report.read_text() == committed_text
    # from the store it was run with, the report is written again
    assert main(["bench", str(config), "--report-only", "--store", str(committed), "--out", str(report.parent)]) == 0
    assert report.read_text().count("| done |") == 2


def test_a_run_does_not_wipe_rows_a_report_shows_done_that_its_store_lacks(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, report, committed = _committed(tmp_path)
    committed_text = report.read_text()
    store = tmp_path / "default" / "results.sqlite"  # as the default store, where the table was run with another
    args = ["bench", str(config), "--datasets", "MUTAG", "--seeds", "1", "--out", str(report.parent), "--no-progress"]
    assert main([*args, "--store", str(store)]) == 2  # refused before anything runs
    err = capsys.readouterr().err
    assert f"nothing run: {report} shows results missing from the store {store} (there is none at that path) " \
        "(MUTAG / graphcl: 2 seed(s) done, 0 in the store, PTC_MR / graphcl" in err
    assert f"--store {committed}, the store beside the report" in err and "run those rows too" in err
    assert report.read_text() == committed_text and not store.exists()
    assert main([*args, "--store", str(committed)]) == 0  # the store it was run with: nothing to run
    assert "ran 0 task(s)" in capsys.readouterr().out
    assert report.read_text().count("| done |") == 2


def test_a_run_that_leaves_a_reported_row_without_its_seeds_keeps_the_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from gcl.data import cache_dir

    # the report's one row, run again (every seed) from another store, is not measured: its data is gone
    config, report, _ = _committed(tmp_path, _MINI.replace("[MUTAG, PTC_MR]", f"{{MUTAG: {{name: NCI109, dataset: "
                                                           f"{{root: {tmp_path / 'gone'}}}}}}}"))
    monkeypatch.setenv("GCL_DATA", str(tmp_path / "gone"))
    committed_text = report.read_text()
    store = tmp_path / "other.sqlite"
    assert main(["bench", str(config), "--store", str(store), "--out", str(report.parent), "--no-progress"]) == 1
    kept = cache_dir() / "bench" / "kept-reports"
    assert f"{report} is kept: it shows results that the store {store} still lacks after this run (MUTAG / " \
        f"graphcl: 2 seed(s) done, 0 in the store), so this run's report went to {kept} instead" in \
        capsys.readouterr().err
    assert report.read_text() == committed_text
    assert "| MUTAG | graphcl |" in (kept / "mini.md").read_text()


def test_a_quick_report_and_the_full_tables_are_not_compared(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gcl.bench.config import load_config

    config, out = tmp_path / "mini.yaml", tmp_path / "out"
    config.write_text(_MINI)
    store = _stored(tmp_path / "r.sqlite", load_config(config).reduced())  # what a --quick run leaves
    assert main(["bench", str(config), "--quick", "--report-only", "--store", str(store), "--out", str(out)]) == 0
    report = out / "mini.md"
    assert report.read_text().splitlines()[0].endswith(" (quick)") and "| 1/1 |" in report.read_text()
    # the full table's report replaces the quick one, whose seed the full table's records do not hold
    assert main(["bench", str(config), "--datasets", "MUTAG", "--seeds", "1", "--store", str(store),
                 "--out", str(out), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "ran 1 task(s)" in captured.out and "seed(s) done" not in captured.err
    assert "(quick)" not in report.read_text() and "| MUTAG | graphcl |" in report.read_text()
    assert "partial (1/2 seeds)" in report.read_text()


def test_a_quick_run_does_not_replace_the_full_tables_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from gcl.bench.config import load_config
    from gcl.data import cache_dir

    monkeypatch.setenv("GCL_CACHE", str(tmp_path / "cache"))  # where a kept report would go: this test's own
    config, report, committed = _committed(tmp_path)
    committed_text = report.read_text()
    with ResultsStore(committed) as store:
        records = store.records("mini")
    for extra in ([], ["--report-only"]):
        assert main(["bench", str(config), "--quick", "--store", str(committed), "--out", str(report.parent),
                     "--no-progress", *extra]) == 2  # refused before anything runs
        assert f"--quick: {report} is the report of the full table mini, not of a --quick run: this run's report " \
            "would replace it. Write the --quick report elsewhere (--out DIR; without --out it goes to " \
            f"{cache_dir() / 'bench' / 'quick'})" in capsys.readouterr().err
    assert report.read_text() == committed_text
    assert not (cache_dir() / "bench" / "kept-reports").exists()
    with ResultsStore(committed) as store:  # no quick task ran
        assert store.records("mini") == records
    # a quick report is still compared with quick reports: a store without its records is refused
    quick = _stored(tmp_path / "quick.sqlite", load_config(config).reduced())
    assert main(["bench", str(config), "--quick", "--report-only", "--store", str(quick),
                 "--out", str(tmp_path / "q")]) == 0
    assert main(["bench", str(config), "--quick", "--report-only", "--store", str(committed),
                 "--out", str(tmp_path / "q")]) == 2
    assert f"{tmp_path / 'q' / 'mini.md'} shows results missing from the store {committed} (MUTAG / graphcl: 1 " \
        "seed(s) done, 0 in the store)" in capsys.readouterr().err


def test_published_rows_matching_no_label_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "papers").mkdir()
    (tmp_path / "configs" / "mini.yaml").write_text(
        "table: mini\nprotocol: svc\npaper: mini.csv\nmethods: {graphcl: {}}\ndatasets: [MUTAG]\n")
    (tmp_path / "papers" / "mini.csv").write_text(
        "dataset,method,mean,std,metric,citation,source,notes\n"
        "MUTAG,graphcl,86.80,1.34,accuracy,c,s,\nMUTAG,GraphCL,86.80,1.34,accuracy,c,s,\n")
    monkeypatch.setenv("GCL_BENCHMARKS", str(tmp_path))
    store = _stored(tmp_path / "done.sqlite", _table("mini"))
    assert main(["reproduce", "mini", "--report-only", "--store", str(store), "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "published row MUTAG / GraphCL matches no dataset and method label" in err
    assert "MUTAG / graphcl" not in err
    # a CSV the report would refuse stops the command before anything runs
    for rows, message in (("MUTAG,graphcl,86.8,1.34\n", "a row needs the 8 fields"),
                          ("MUTAG,graphcl,86.8,1.34,rocauc,c,s,\n", "reports accuracy, but its published numbers")):
        (tmp_path / "papers" / "mini.csv").write_text("dataset,method,mean,std,metric,citation,source,notes\n" + rows)
        assert main(["reproduce", "mini", "--store", str(tmp_path / "r.sqlite"), "--out", str(tmp_path)]) == 2
        assert message in capsys.readouterr().err
    with ResultsStore(tmp_path / "r.sqlite") as db:
        assert db.records("mini") == []


def test_a_paper_file_that_is_not_there_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "mini.yaml").write_text(
        "table: mini\nprotocol: svc\npaper: mini.csv\nmethods: {graphcl: {}}\ndatasets: [MUTAG]\n")
    (tmp_path / "mini.csv").write_text("dataset,method,mean,std,metric,citation,source,notes\n")  # beside, not in papers/
    monkeypatch.setenv("GCL_BENCHMARKS", str(tmp_path))
    store = _stored(tmp_path / "r.sqlite", _table("mini"))
    assert main(["reproduce", "mini", "--report-only", "--store", str(store), "--out", str(tmp_path)]) == 0
    assert f"warning: paper: mini.csv is not in {tmp_path / 'papers'}" in capsys.readouterr().err


def test_a_store_that_is_no_database_and_an_out_that_is_a_file_are_refused_first(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_database = tmp_path / "notes.sqlite"
    not_a_database.write_text("hello\n")
    for store, message in ((tmp_path, f"--store {tmp_path} is a folder"),
                           (not_a_database, f"results store {not_a_database}: not a results database")):
        for extra in ([], ["--report-only"]):
            assert main(["reproduce", "graphcl-tu", "--quick", "--store", str(store), "--out", str(tmp_path),
                         *extra]) == 2
            assert message in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"cannot be opened as a SQLite database"):
        ResultsStore(tmp_path)  # the library's own error, for callers of the API
    assert not_a_database.read_text() == "hello\n"  # left as it was
    taken = tmp_path / "taken"
    taken.write_text("")
    started = time.monotonic()
    assert main(["reproduce", "graphcl-tu", "--quick", "--store", str(tmp_path / "r.sqlite"),
                 "--out", str(taken)]) == 2
    assert f"--out {taken} is a file" in capsys.readouterr().err
    assert not (tmp_path / "r.sqlite").exists() and time.monotonic() - started < 30  # before anything ran
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "graphcl-tu", "--quick", "--store", str(tmp_path / "r.sqlite"), "--out", " "])
    assert exit_info.value.code == 2 and "argument --out: empty path" in capsys.readouterr().err


def test_reproduce_in_parallel_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # two workers train the quick LCGNN table's folds (one task per fold) and store what one process would
    sequential, parallel = tmp_path / "one.sqlite", tmp_path / "two.sqlite"
    common = ["reproduce", "lcgnn-tu", "--quick", "--out", str(tmp_path / "out"), "--no-progress"]
    assert main([*common, "--store", str(sequential)]) == 0
    assert main([*common, "--store", str(parallel), "--jobs", "2"]) == 0
    assert "ran " in capsys.readouterr().out
    with ResultsStore(sequential) as one, ResultsStore(parallel) as two:
        expected = {r.key(): (r.score, r.val_score) for r in one.records("lcgnn-tu")}
        got = {r.key(): (r.score, r.val_score) for r in two.records("lcgnn-tu")}
        command = two.runs("lcgnn-tu")[0]["command"]
    assert len(expected) > 1 and got == expected
    assert "--jobs 2" in command


def test_a_worker_that_dies_ends_the_command_with_one_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import concurrent.futures
    from concurrent.futures.process import BrokenProcessPool

    class BrokenPool:
        """A process pool one of whose workers was killed: every task it held fails at once."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def submit(self, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            future.set_exception(BrokenProcessPool("A process in the process pool was terminated abruptly"))
            return future

        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            pass

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", BrokenPool)
    config = tmp_path / "mini.yaml"
    config.write_text(_MINI)  # four tasks: two datasets, two seeds
    assert main(["bench", str(config), "--jobs", "2", "--store", str(tmp_path / "r.sqlite"),
                 "--out", str(tmp_path / "out"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "gcl bench: error: a worker process ended abruptly (killed, e.g. by the out-of-memory killer, or crashed) "
        "with 4 task(s) unfinished: MUTAG/graphcl/seed0, MUTAG/graphcl/seed1, PTC_MR/graphcl/seed0, "
        "PTC_MR/graphcl/seed1. Records already stored are kept; run the same command again to resume (with fewer "
        "--jobs if memory ran out)"]


@pytest.mark.parametrize("flags, message", [
    (["--jobs", "0"], "jobs must be a positive integer"),
    (["--threads", "0"], "threads must be a positive integer"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    # an empty shell variable would otherwise run the whole table
    (["--datasets", ""], "--datasets names no dataset (got '')"),
    (["--datasets", " , "], "--datasets names no dataset"),
    (["--methods", ","], "--methods names no method"),
    pytest.param(["--device", "cuda:7"], "CUDA is not available",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")),
    # devices torch knows, but none to train on here (each task failed with a traceback, stored)
    (["--device", "meta"], "device 'meta': this torch build or machine has no meta device"),
    pytest.param(["--device", "mps"], "device 'mps': this torch build or machine has no mps device",
                 marks=pytest.mark.skipif(torch.backends.mps.is_available(), reason="mps present")),
])
def test_bad_run_options(tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str) -> None:
    store = tmp_path / "r.sqlite"
    assert main(["reproduce", "graphcl-tu", "--quick", "--store", str(store), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not store.exists()


def test_auto_device_and_an_in_memory_store_leave_no_folder_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "graphcl-tu", "--quick", "--device", "auto", "--store", ":memory:",
                 "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert "ran 1 task(s)" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no ./work of task checkpoints


def test_finished_tasks_leave_no_empty_folders(tmp_path: Path) -> None:
    store = tmp_path / "r.sqlite"
    assert main(["reproduce", "graphcl-tu", "--quick", "--store", str(store), "--out", str(tmp_path / "out"),
                 "--no-progress"]) == 0
    assert not (tmp_path / "work" / "graphcl-tu").exists()


def test_report_only_ignores_run_options(tmp_path: Path) -> None:
    store = _stored(tmp_path / "r.sqlite", _table("graphcl-tu").restricted(["MUTAG"], seeds=1))
    assert main(["reproduce", "graphcl-tu", "--report-only", "--jobs", "0", "--store", str(store),
                 "--out", str(tmp_path)]) == 0


def test_reproduce_leaves_tasks_another_run_holds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gcl.bench.config import find_config, load_config
    from gcl.bench.protocols import Context, make_tasks, task_dir
    from gcl.bench.runner import claim_task

    config = load_config(find_config("graphcl-tu")).reduced()
    (task,) = make_tasks(config)
    handle = claim_task(task_dir(config, task, Context(tmp_path / "work")))  # another run is training it
    assert handle is not None
    args = ["reproduce", "graphcl-tu", "--quick", "--store", str(tmp_path / "r.sqlite"), "--out",
            str(tmp_path / "out"), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ran 0 task(s)" in out and f"left to another run working on them: {task.id}" in out
    handle.close()


def test_a_dataset_asked_for_by_name_that_is_not_found_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import gcl.bench.runner as runner

    monkeypatch.setattr(runner, "dataset_available", lambda entry: entry.name != "NCI1")  # as without GCL_DATA
    store = tmp_path / "r.sqlite"
    assert main(["reproduce", "graphcl-tu", "--datasets", "NCI1", "--store", str(store),
                 "--out", str(tmp_path)]) == 2
    assert "--datasets: NCI1 not found under the data roots" in capsys.readouterr().err
    assert not store.exists()


@pytest.mark.filterwarnings("ignore:NCI109 from .* has 188 graphs")  # MUTAG's graphs under another name
def test_a_dataset_asked_for_by_name_is_looked_for_under_its_rows_root(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from . import _fake

    _fake.unshipped_tu_copy(tmp_path / "mine")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setenv("GCL_DATA", str(tmp_path / "elsewhere"))
    config = tmp_path / "own.yaml"
    config.write_text(
        "table: own\nprotocol: svc\nseeds: 1\nmethods: {graphcl: {options: {hidden_channels: 8, num_layers: 2}}}\n"
        f"datasets:\n  NCI109: {{dataset: {{root: {tmp_path / 'mine'}}}}}\n  ENZYMES: {{dataset: {{root: {tmp_path / 'none'}}}}}\n"
        "train: {epochs: 1, batch_size: 64}\nevaluation: {n_splits: 2, inner_splits: 2, C_grid: [1.0]}\n")
    store, out = tmp_path / "r.sqlite", tmp_path / "out"
    assert main(["bench", str(config), "--datasets", "NCI109", "--store", str(store), "--out", str(out),
                 "--no-progress"]) == 0
    assert "ran 1 task(s)" in capsys.readouterr().out
    rows = {line.split(" | ")[0]: line for line in (out / "own.md").read_text().splitlines() if line.startswith("| ")}
    assert rows["| NCI109"].endswith("| done |") and rows["| ENZYMES"].endswith("| data not available |")
    # a row whose root lacks the files is named with the roots searched for it, its own first
    assert main(["bench", str(config), "--datasets", "ENZYMES", "--store", str(store), "--out", str(out)]) == 2
    assert f"--datasets: ENZYMES not found under the data roots (ENZYMES: {tmp_path / 'none'}, " \
        f"{tmp_path / 'elsewhere'}," in capsys.readouterr().err


def test_reproduce_node_table_quick_on_the_shipped_cora(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GCL_DATA", raising=False)
    store, out = tmp_path / "r.sqlite", tmp_path / "out"
    assert main(["reproduce", "node-gca", "--quick", "--store", str(store), "--out", str(out), "--no-progress"]) == 0
    assert "ran 1 task(s)" in capsys.readouterr().out
    with ResultsStore(store) as db:
        records = db.records("node-gca")
    assert [r.fold for r in records] == [0, 1]  # the quick section's two random splits
    assert all(r.dataset == "Cora" and r.method == "grace" and 0.0 <= r.score <= 1.0 for r in records)
    text = (out / "node-gca.md").read_text()
    assert "| Cora | grace |" in text and "83.30 ± 0.40" in text and "(quick)" in text


def test_ogb_protocol_end_to_end_on_the_shipped_molbace(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # the ogb protocol (official split, OGB's evaluator, early stopping on validation ROC-AUC, pre-training then
    # fine-tuning) at toy size on the shipped ogbg-molbace
    monkeypatch.delenv("GCL_DATA", raising=False)
    gin = "{encoder: gin, hidden_channels: 16, num_layers: 2, ogb_mol: true, layout: ogb, readout: mean}"
    config = tmp_path / "bace.yaml"
    config.write_text(
        "table: bace\nprotocol: ogb\naggregate: folds\nmetric: rocauc\nseeds: 1\n"
        f"methods:\n  supervised: {{method: supervised, options: {gin}}}\n"
        f"  finetune:\n    method: supervised\n    options: {gin}\n"
        "    pretrain: {method: graphcl, options: {hidden_channels: 16, num_layers: 2, ogb_mol: true, layout: ogb,"
        " readout: mean, augmentations: [identity, drop_nodes]}, train: {epochs: 1, batch_size: 256}}\n"
        "train: {epochs: 2, batch_size: 128, lr: 0.001, patience: 2}\ndatasets: [ogbg-molbace]\n")
    store = tmp_path / "r.sqlite"
    assert main(["bench", str(config), "--store", str(store), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert "ran 2 task(s)" in capsys.readouterr().out
    with ResultsStore(store) as db:
        records = db.records("bace")
    assert sorted(r.method for r in records) == ["finetune", "supervised"]
    assert all(0.0 <= r.score <= 1.0 and r.val_score is not None and r.metric == "rocauc" for r in records)


def test_a_pretrained_lcgnn_starts_its_key_encoder_from_the_pretrained_weights(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import gcl.train
    from gcl.methods import LCGNN

    seen: list[bool] = []
    real_fit = gcl.train.fit

    def fit(method, data, config=None, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(method, LCGNN):  # the fine-tuning run, after the pre-trained weights were loaded
            seen.append(all(torch.equal(method.key_encoder.state_dict()[k], v)
                            for k, v in method.encoder.state_dict().items()))
        return real_fit(method, data, config, **kwargs)

    monkeypatch.setattr(gcl.train, "fit", fit)
    config = tmp_path / "lc.yaml"
    config.write_text(
        "table: lc\nprotocol: supervised-random\naggregate: folds\nmetric: accuracy\nseeds: 1\n"
        "methods:\n  lcgnn:\n    method: lcgnn\n    options: {hidden_channels: 16, num_layers: 2, memory_size: 64}\n"
        "    pretrain: {method: graphcl, options: {hidden_channels: 16, num_layers: 2}, train: {epochs: 1}}\n"
        "train: {epochs: 1, batch_size: 64}\nevaluation: {num_runs: 1, ratios: [0.8, 0.1, 0.1]}\ndatasets: [MUTAG]\n")
    assert main(["bench", str(config), "--store", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "out"),
                 "--no-progress"]) == 0
    assert seen == [True]


def test_without_matplotlib_the_report_is_written_without_its_chart(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from gcl.bench.config import load_config

    config = tmp_path / "mini.yaml"
    config.write_text(_MINI)
    store = _stored(tmp_path / "r.sqlite", load_config(config))  # rows to plot
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as where the optional plot extra is not installed
    assert main(["bench", str(config), "--report-only", "--store", str(store), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: matplotlib is not installed: the report is written without the chart; "
                     "pip install matplotlib") == 1
    assert (tmp_path / "out" / "mini.md").read_text().count("| done |") == 2
    assert (tmp_path / "out" / "mini.csv").is_file() and not (tmp_path / "out" / "mini.png").exists()


def test_a_store_and_an_out_under_home_are_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gcl.bench.config import load_config

    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    config = tmp_path / "mini.yaml"
    config.write_text(_MINI)
    _stored(home / "results" / "r.sqlite", load_config(config))
    assert main(["bench", str(config), "--report-only", "--store", "~/results/r.sqlite", "--out", "~/out"]) == 0
    assert (home / "out" / "mini.md").read_text().count("| done |") == 2
    assert not (cwd / "~").exists()  # nothing under a folder named "~"


def test_quick_with_rows_outside_its_section_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--quick", "--report-only", "--store", str(tmp_path / "r.sqlite"), "--out", str(tmp_path)]
    # rows of the table, but not of its quick section (MUTAG; lcgnn-gin and supervised-gin)
    assert main(["reproduce", "graphcl-tu", "--datasets", "PROTEINS,MUTAG", *common]) == 2
    assert "--quick runs only MUTAG (the quick: section of graphcl-tu); --datasets PROTEINS is not part of it: " \
        "leave out --quick to run it" in capsys.readouterr().err
    assert main(["reproduce", "lcgnn-tu", "--methods", "lcgnn-hgpsl", *common]) == 2
    assert "--quick runs only lcgnn-gin, supervised-gin (the quick: section of lcgnn-tu); --methods lcgnn-hgpsl " \
        "is not part of it" in capsys.readouterr().err
    # names the full table does not have are named with the full table's rows
    assert main(["reproduce", "graphcl-tu", "--datasets", "CIFAR", *common]) == 2
    assert "has no dataset 'CIFAR'; it has ['MUTAG', 'PROTEINS'," in capsys.readouterr().err
    # rows of the quick section narrow the quick run (a name as load_dataset knows it too)
    _stored(tmp_path / "r.sqlite", _table("lcgnn-tu").reduced())
    assert main(["reproduce", "lcgnn-tu", "--datasets", "mutag", "--methods", "supervised-gin", *common]) == 0
    assert "| MUTAG | supervised-gin |" in (tmp_path / "lcgnn-tu.md").read_text()


def test_quick_that_finds_none_of_its_data_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GCL_DATA", raising=False)  # a fresh checkout: ogbg-molhiv is not shipped
    text = (_CONFIGS / "ogb-molhiv-full.yaml").read_text()
    stand_in = "  datasets: [ogbg-molbace]"
    assert stand_in in text
    table = tmp_path / "ogb-molhiv-full.yaml"  # its quick run without the shipped stand-in
    table.write_text(text.replace(stand_in, "  datasets: [ogbg-molhiv]"))
    assert main(["reproduce", str(table), "--quick", "--store", str(tmp_path / "r.sqlite"),
                 "--out", str(tmp_path), "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "ran 0 task(s)" in captured.out and "data not available: ogbg-molhiv" in captured.out
    assert "--quick ran nothing: the data of its rows (the quick: section of ogb-molhiv-full) is not found " \
        "under the data roots (ogbg-molhiv: " in captured.err


def test_a_run_that_finds_none_of_its_data_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from gcl.bench.config import load_config

    (tmp_path / "wrong").mkdir()
    monkeypatch.setenv("GCL_DATA", str(tmp_path / "wrong"))  # NCI109 is not shipped either
    config = tmp_path / "mini.yaml"
    config.write_text(_MINI.replace("[MUTAG, PTC_MR]", "[NCI109]"))
    out = tmp_path / "out"
    assert main(["bench", str(config), "--store", str(tmp_path / "r.sqlite"), "--out", str(out),
                 "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "ran 0 task(s)" in captured.out and "data not available: NCI109" in captured.out
    assert f"ran nothing: the data of its rows (NCI109) is not found under the data roots (NCI109: " \
        f"{tmp_path / 'wrong'}, " in captured.err
    assert "| NCI109 | graphcl |" in (out / "mini.md").read_text()  # the report still says so
    # a run where some rows lack their data is no error: the report names them
    config.write_text(_MINI.replace("[MUTAG, PTC_MR]", "[MUTAG, NCI109]"))
    store = _stored(tmp_path / "done.sqlite", load_config(config).restricted(["MUTAG"]))
    assert main(["bench", str(config), "--store", str(store), "--out", str(out), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "data not available: NCI109" in captured.out and "ran nothing" not in captured.err


_CONFIGS = Path(__file__).resolve().parents[2] / "benchmarks" / "configs"


@pytest.mark.parametrize("table", sorted(p.stem for p in _CONFIGS.glob("*.yaml")))
def test_quick_sections_run_on_the_shipped_data(table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from gcl.bench.config import find_config, load_config
    from gcl.bench.protocols import make_tasks
    from gcl.bench.runner import dataset_available

    monkeypatch.delenv("GCL_DATA", raising=False)  # a fresh checkout: the shipped datasets/ only
    quick = load_config(find_config(table)).reduced()
    runs = [task for task in make_tasks(quick) if dataset_available(task.entry)]
    assert runs
