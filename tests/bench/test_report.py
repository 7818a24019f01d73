from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest

from gcl.bench.config import TableConfig, parse_config
from gcl.bench.papers import PaperResult
from gcl.bench.report import (
    build_rows,
    is_quick_report,
    lost_rows,
    write_chart,
    write_csv,
    write_markdown,
    write_report,
)
from gcl.bench.store import Record, ResultsStore

SCORES = {0: [0.80, 0.90], 1: [0.70, 0.70], 2: [0.85, 0.95]}  # seed -> two folds


def _config(aggregate: str = "seeds", seeds: int = 3) -> TableConfig:
    return parse_config({
        "table": "demo", "protocol": "svc", "seeds": seeds, "aggregate": aggregate, "paper": "demo.csv",
        "evaluation": {"n_splits": 2}, "notes": "We tried X.",
        "methods": {"graphcl": {}}, "datasets": {"MUTAG": {"note": "reduced"}, "NCI1": {}, "RDT-M5K": {}},
    })


def _fill(store: ResultsStore, config: TableConfig, seeds: dict[int, list[float]]) -> None:
    entry, spec = config.dataset_entry("MUTAG"), config.method("graphcl")
    variant = config.variant(entry, spec)
    store.add(Record("demo", variant, "MUTAG", "graphcl", seed, fold, score, task=f"s{seed}", task_seconds=10.0)
              for seed, scores in seeds.items() for fold, score in enumerate(scores))


PAPER = [PaperResult("MUTAG", "graphcl", 86.80, 1.34, citation="You et al.", source="Table 3"),
         PaperResult("NCI1", "graphcl", 77.87, 0.41, citation="You et al.", source="Table 3")]


def test_aggregate_over_seeds(tmp_path: Path) -> None:
    config = _config("seeds")
    with ResultsStore(tmp_path / "r.sqlite") as store:
        _fill(store, config, SCORES)
        rows = build_rows(config, store, PAPER, available=lambda e: e.label != "RDT-M5K")
    mutag, nci1, rdt = rows
    per_seed = [100 * statistics.fmean(s) for s in SCORES.values()]
    assert mutag.mean == pytest.approx(statistics.fmean(per_seed))
    assert mutag.std == pytest.approx(statistics.pstdev(per_seed))
    assert mutag.difference == pytest.approx(mutag.mean - 86.80)
    assert mutag.within_paper_std == (abs(mutag.mean - 86.80) <= 1.34)
    assert mutag.status == "done" and mutag.seeds_done == 3 and mutag.wall_seconds == pytest.approx(30.0)
    assert nci1.status == "not run yet" and nci1.mean is None and nci1.paper_mean == 77.87
    assert rdt.status == "data not available"


@pytest.mark.parametrize("paper_mean, within", [(80.5, True), (81.0, True), (79.0, True), (81.5, False),
                                                (78.25, False)])
def test_within_paper_std_verdict(tmp_path: Path, paper_mean: float, within: bool) -> None:
    # every seed scores 80 %: |Δ| = 0.5 and 1.0 (the boundary counts as within) against a std of 1.0
    config = _config("seeds")
    paper = [PaperResult("MUTAG", "graphcl", paper_mean, 1.0, citation="c", source="s")]
    with ResultsStore(tmp_path / "r.sqlite") as store:
        _fill(store, config, {seed: [0.80, 0.80] for seed in range(3)})
        mutag = build_rows(config, store, paper)[0]
    assert mutag.mean == 80.0 and mutag.within_paper_std is within
    write_markdown(config, [mutag], tmp_path / "x.md")
    row = next(line for line in (tmp_path / "x.md").read_text().splitlines() if line.startswith("| MUTAG |"))
    assert f"| {'yes' if within else 'no'} |" in row


def test_aggregate_over_folds_and_partial(tmp_path: Path) -> None:
    config = _config("folds", seeds=4)
    partial = {0: SCORES[0], 1: SCORES[1], 2: SCORES[2][:1]}  # seed 2 lacks a fold: not counted
    with ResultsStore(tmp_path / "r.sqlite") as store:
        _fill(store, config, partial)
        mutag = build_rows(config, store, PAPER)[0]
    folds = [100 * v for v in SCORES[0] + SCORES[1]]
    assert mutag.mean == pytest.approx(statistics.fmean(folds))
    assert mutag.std == pytest.approx(statistics.pstdev(folds))
    assert mutag.status == "partial (2/4 seeds)"
    assert mutag.difference is not None and mutag.within_paper_std is None  # no verdict on a sample of seeds


def test_seeds_beyond_the_table_do_not_count(tmp_path: Path) -> None:
    # a run with more seeds left records the report must not average in while naming seeds 0..2
    config = _config("seeds", seeds=3)
    with ResultsStore(tmp_path / "r.sqlite") as store:
        _fill(store, config, {**SCORES, 3: [0.1, 0.1], 4: [0.2, 0.2]})
        mutag = build_rows(config, store, PAPER)[0]
    per_seed = [100 * statistics.fmean(s) for s in SCORES.values()]
    assert mutag.mean == pytest.approx(statistics.fmean(per_seed))
    assert mutag.status == "done" and mutag.seeds_done == 3 and mutag.wall_seconds == pytest.approx(30.0)


def test_other_settings_do_not_mix(tmp_path: Path) -> None:
    config = _config()
    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.add([Record("demo", "old-settings", "MUTAG", "graphcl", 0, f, 0.1) for f in range(2)])
        assert build_rows(config, store, PAPER)[0].status == "not run yet"


def test_files(tmp_path: Path) -> None:
    config = _config()
    (tmp_path / "papers").mkdir()
    (tmp_path / "papers" / "demo.csv").write_text(
        "dataset,method,mean,std,metric,citation,source,notes\n"
        "MUTAG,graphcl,86.80,1.34,accuracy,You et al.,Table 3,five seeds\n")
    with ResultsStore(tmp_path / "r.sqlite") as store:
        _fill(store, config, SCORES)
        run = store.start_run("demo", config.variant(config.datasets[0], config.methods[0]), "gcl reproduce demo",
                              {"torch": "2"})
        store.finish_run(run)
        written = write_report(config, store, tmp_path / "out", papers_dir=tmp_path / "papers")
    text = written["md"].read_text()
    assert "| MUTAG | graphcl | 81.67 ± " in text and "86.80 ± 1.34" in text
    assert "not run yet" in text and "We tried X." in text and "gcl reproduce demo" in text
    assert "**MUTAG**: reduced" in text and "Table 3" in text and "![demo](demo.png)" in text
    with written["csv"].open() as handle:
        table = list(csv.DictReader(handle))
    assert [r["dataset"] for r in table] == ["MUTAG", "NCI1", "RDT-M5K"]
    assert float(table[0]["mean"]) == pytest.approx(81.6667, abs=1e-3) and table[1]["mean"] == ""
    assert written["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nothing_to_plot(tmp_path: Path) -> None:
    config = _config()
    with ResultsStore(tmp_path / "r.sqlite") as store:
        rows = build_rows(config, store, [])
    assert write_chart(config, rows, tmp_path / "x.png") is None
    write_csv(rows, tmp_path / "x.csv")
    write_markdown(config, rows, tmp_path / "x.md")
    assert "not run yet" in (tmp_path / "x.md").read_text()


def test_published_numbers_of_another_metric_are_refused(tmp_path: Path) -> None:
    config = _config()
    rocauc = [PaperResult("MUTAG", "graphcl", 86.80, 1.34, metric="rocauc", citation="c", source="s")]
    with ResultsStore(tmp_path / "r.sqlite") as store, pytest.raises(
            ValueError, match=r"reports accuracy, but its published numbers for MUTAG / graphcl are rocauc"):
        build_rows(config, store, rocauc)


def test_unmatched_paper_rows() -> None:
    from gcl.bench.papers import unmatched_paper_rows

    misspelt = PaperResult("mutag", "GraphCL", 1.0, 0.1)
    assert unmatched_paper_rows([*PAPER, misspelt], ["MUTAG", "NCI1"], ["graphcl"]) == [misspelt]


@pytest.mark.parametrize("aggregate", ["seeds", "folds"])
def test_a_single_value_has_no_spread(tmp_path: Path, aggregate: str) -> None:
    # one seed over seeds; over folds, a protocol with one run per seed
    if aggregate == "seeds":
        config, scores = _config("seeds", seeds=1), {0: [0.80, 0.90]}
    else:
        config = parse_config({"table": "demo", "protocol": "supervised-random", "seeds": 1, "aggregate": "folds",
                               "evaluation": {"num_runs": 1}, "methods": {"s": {"method": "supervised"}},
                               "datasets": ["MUTAG"]})
        scores = {0: [0.85]}
    entry, spec = config.datasets[0], config.methods[0]
    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.add(Record("demo", config.variant(entry, spec), entry.label, spec.label, seed, fold, score, task="t")
                  for seed, values in scores.items() for fold, score in enumerate(values))
        row = build_rows(config, store)[0]
    assert row.status == "done" and row.mean == pytest.approx(85.0) and row.std is None
    write_markdown(config, [row], tmp_path / "x.md")
    line = next(line for line in (tmp_path / "x.md").read_text().splitlines() if line.startswith("| MUTAG |"))
    assert line.split(" | ")[2] == "85.00"  # the mean alone, not "85.00 ± 0.00"


def test_without_matplotlib_the_report_is_written_without_its_chart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    config = _config()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as where the optional plot extra is not installed
    with ResultsStore(tmp_path / "r.sqlite") as store:
        _fill(store, config, SCORES)
        with pytest.warns(UserWarning, match=r"without the chart; pip install matplotlib"):
            written = write_report(config, store, tmp_path / "out")
    assert sorted(written) == ["csv", "md"] and not (tmp_path / "out" / "demo.png").exists()
    text = written["md"].read_text()
    assert "| MUTAG | graphcl | 81.67 ± " in text and "demo.png" not in text


def test_lost_rows_compares_reports_of_the_same_kind(tmp_path: Path) -> None:
    config = _config("seeds")
    quick = config.reduced()  # MUTAG, one seed, other settings
    with ResultsStore(tmp_path / "full.sqlite") as store:
        _fill(store, config, SCORES)
        write_report(config, store, tmp_path / "full", chart=False)
    with ResultsStore(tmp_path / "quick.sqlite") as store:
        _fill(store, quick, {0: SCORES[0]})
        write_report(quick, store, tmp_path / "quick", chart=False)
    full_report, quick_report = tmp_path / "full" / "demo.md", tmp_path / "quick" / "demo.md"
    assert is_quick_report(quick_report) and not is_quick_report(full_report)
    with ResultsStore(":memory:") as empty:
        assert lost_rows(config, empty, full_report) == [("MUTAG", "graphcl", 3, 0)]
        assert lost_rows(quick, empty, quick_report) == [("MUTAG", "graphcl", 1, 0)]
        # the seeds of a quick report are not the full table's, nor the other way round
        assert lost_rows(config, empty, quick_report) == []
        assert lost_rows(quick, empty, full_report) == []
    # a full table whose title ends in "(quick)" writes no quick report
    smoke = parse_config({"table": "demo", "title": "Smoke test (quick)", "protocol": "svc", "seeds": 1,
                          "evaluation": {"n_splits": 2}, "methods": {"graphcl": {}}, "datasets": {"MUTAG": {}}})
    with ResultsStore(":memory:") as store:
        write_report(smoke, store, tmp_path / "smoke", chart=False)
    assert (tmp_path / "smoke" / "demo.md").read_text().startswith("# Smoke test (quick)\n")
    assert not is_quick_report(tmp_path / "smoke" / "demo.md")
    (tmp_path / "notes.md").write_text("# Notes (quick)\n")
    assert not is_quick_report(tmp_path / "notes.md") and not is_quick_report(tmp_path / "none.md")
