from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gcl.bench.store import Record, ResultsStore


def _rec(seed: int, fold: int, score: float = 0.5, **kw: object) -> Record:
    return Record("t", kw.pop("variant", "v"), kw.pop("dataset", "MUTAG"), "graphcl", seed, fold,  # type: ignore[arg-type]
                  score, **kw)  # type: ignore[arg-type]


def test_roundtrip_and_done(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.sqlite") as store:
        assert store.add([_rec(0, f, 0.1 * f, params={"C": 10.0}, val_score=0.7) for f in range(3)]) == 3
        assert store.done("t", "v", "MUTAG", "graphcl", 0, [0, 1, 2])
        assert not store.done("t", "v", "MUTAG", "graphcl", 0, [0, 1, 2, 3])
        assert not store.done("t", "v", "MUTAG", "graphcl", 1, [0])
        assert not store.done("t", "other", "MUTAG", "graphcl", 0, [0])
        got = store.records("t", "v")
    assert [r.fold for r in got] == [0, 1, 2]
    assert [r.score for r in got] == pytest.approx([0.0, 0.1, 0.2])
    assert got[1].params == {"C": 10.0} and got[1].val_score == pytest.approx(0.7)


def test_holds(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.sqlite") as store:
        assert not store.holds("t")
        store.add([_rec(0, 0, variant="v")])
        assert store.holds("t") and store.holds("t", "v")
        assert not store.holds("t", "other") and not store.holds("other")


def test_wal_mode_and_persistence(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        store.add([_rec(0, 0)])
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    with ResultsStore(path) as again:
        assert len(again.records("t")) == 1


def test_duplicate_keeps_first(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.sqlite") as store:
        assert store.add([_rec(0, 0, 0.25)]) == 1
        assert store.add([_rec(0, 0, 0.75), _rec(0, 1, 0.5)]) == 1
        scores = {r.fold: r.score for r in store.records("t")}
    assert scores == {0: 0.25, 1: 0.5}


def test_failed_batch_writes_nothing(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.sqlite") as store:
        with pytest.raises(ValueError, match="must be finite"):
            store.add([_rec(0, 0), _rec(0, 1, math.nan)])
        assert store.records("t") == []
        assert store.add([_rec(0, 0)]) == 1


def test_runs_are_recorded(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.sqlite") as store:
        run = store.start_run("t", "v", "gcl reproduce t", {"torch": "x"})
        store.finish_run(run)
        runs = store.runs("t")
    assert len(runs) == 1 and runs[0]["command"] == "gcl reproduce t" and runs[0]["finished"] is not None


def _writer(path: str, start: int, count: int) -> None:
    with ResultsStore(path, timeout=30) as store:
        for i in range(start, start + count):
            store.add([Record("t", "v", "D", "m", 0, i, i / 1000.0)])


def test_two_concurrent_writers(tmp_path: Path, fork_context: Any) -> None:
    path = str(tmp_path / "r.sqlite")
    ResultsStore(path).close()
    ctx = fork_context
    # Overlapping ranges: both processes write folds 60..99.
    procs = [ctx.Process(target=_writer, args=(path, 0, 100)), ctx.Process(target=_writer, args=(path, 60, 100))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with ResultsStore(path) as store:
        folds = [r.fold for r in store.records("t")]
    assert folds == list(range(160))


def test_bad_timeout() -> None:
    with pytest.raises(ValueError, match="timeout must be positive"):
        ResultsStore(":memory:", timeout=0)


def test_exception_inside_transaction_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ResultsStore(tmp_path / "r.sqlite") as store:
        real = json.dumps
        calls = {"n": 0}

        def flaky(*args: object, **kwargs: object) -> str:
            calls["n"] += 1
            if calls["n"] > 3:
                raise RuntimeError("disk on fire")
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr("gcl.bench.store.json.dumps", flaky)
        with pytest.raises(RuntimeError):
            store.add([_rec(0, f) for f in range(3)])
        monkeypatch.undo()
        assert store.records("t") == []
        with pytest.raises(RuntimeError):
            with store._write() as conn:
                conn.execute("INSERT INTO records VALUES ('t','v','D','m',0,0,'a',0.5,NULL,'',0,'{}','{}',0)")
                raise RuntimeError("killed between two statements")
        assert store.records("t") == []


def test_a_path_under_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    with ResultsStore("~/results/r.sqlite") as store:
        store.add([_rec(0, 0)])
        assert store.path == str(tmp_path / "home" / "results" / "r.sqlite")
    with ResultsStore(tmp_path / "home" / "results" / "r.sqlite") as store:
        assert len(store.records("t")) == 1
    assert not (tmp_path / "~").exists()  # no folder named "~" in the working directory
    with ResultsStore(":memory:") as store:
        assert store.path == ":memory:"
