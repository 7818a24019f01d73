from __future__ import annotations

import time
from pathlib import Path

import pytest

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


def test_bench_config_file_report_only(tmp_path: Path) -> None:
    config = tmp_path / "mini.yaml"
    config.write_text("table: mini\nprotocol: svc\nmethods: {graphcl: {}}\ndatasets: [MUTAG]\n")
    assert main(["bench", str(config), "--report-only", "--store", str(tmp_path / "r.sqlite"),
                 "--out", str(tmp_path)]) == 0
    assert "not run yet" in (tmp_path / "mini.md").read_text()
