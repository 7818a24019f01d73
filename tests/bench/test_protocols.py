from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gcl.bench.config import parse_config
from gcl.bench.protocols import Context, TaskClock, make_tasks, run_task, scorer, task_dir


def test_accuracy_scorer() -> None:
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0]])
    assert scorer("accuracy", "MUTAG")(np.array([0, 1, 1, 1]), logits) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="metric must be"):
        scorer("f1", "MUTAG")


def test_rocauc_scorer_ranks_by_the_logit_margin_without_saturated_ties() -> None:
    from sklearn.metrics import roc_auc_score

    # margins above ~17 give softmax probabilities of exactly 1.0 in float32: three positives
    # and one negative would tie there
    logits = np.zeros((8, 2), dtype=np.float32)
    logits[:, 1] = [30, 25, 18, 20, -3, -4, -5, -6]
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    expected = roc_auc_score(y, logits[:, 1].astype(np.float64))
    assert expected == pytest.approx(14 / 15)
    assert scorer("rocauc", "ogbg-molhiv")(y, logits) == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"two-class logits \[N, 2\]"):
        scorer("rocauc", "ogbg-molhiv")(y, logits[:, :1])


@pytest.mark.parametrize("protocol, evaluation", [
    ("supervised-random", {"num_runs": 2, "ratios": [0.8, 0.1, 0.1]}),
    ("supervised-kfold", {"n_splits": 2, "val_size": 0.1}),
    ("supervised-kfold", {"n_splits": 2, "val_size": 0.1, "selection": "loss"}),
])
def test_supervised_protocols_on_mutag(tmp_path: Path, protocol: str, evaluation: dict[str, Any]) -> None:
    config = parse_config({
        "table": "t", "protocol": protocol, "seeds": 1, "evaluation": evaluation,
        "methods": {"gin": {"method": "supervised", "options": {"hidden_channels": 16, "num_layers": 2}}},
        "train": {"epochs": 3, "batch_size": 64, "lr": 0.01, "patience": 2},
        "datasets": ["MUTAG"],
    })
    torch.set_num_threads(1)
    ctx = Context(tmp_path)
    tasks = make_tasks(config)
    assert [t.folds for t in tasks] == [(0,), (1,)]
    # an earlier, interrupted attempt at the task took 300 s up to its last checkpoint
    folder = task_dir(config, tasks[1], ctx)
    folder.mkdir(parents=True)
    (folder / TaskClock.LEDGER).write_text(json.dumps({"kept": 300.0, "started": time.time() + 3600}))
    records = run_task(config, tasks[1], ctx)
    assert len(records) == 1
    record = records[0]
    assert 300.0 < record.task_seconds < 400.0
    assert record.fold == 1 and 0.0 <= record.score <= 1.0 and record.val_score is not None
    assert 1 <= record.extra["best_epoch"] <= record.extra["epochs_trained"] <= 3
    # Test folds have the expected size: 188 - 150 - 18 graphs (random) or half of them (2-fold CV).
    n_test = round(record.score * (20 if protocol == "supervised-random" else 94))
    assert abs(record.score * (20 if protocol == "supervised-random" else 94) - n_test) < 1e-6


def _kfold_config(evaluation: dict[str, Any], train: dict[str, Any], seeds: int = 1) -> Any:
    r"""A supervised-kfold table: a one-layer GIN of 8 channels on MUTAG."""
    return parse_config({
        "table": "t", "protocol": "supervised-kfold", "seeds": seeds,
        "evaluation": {"n_splits": 2, "val_size": 0.1, **evaluation},
        "methods": {"gin": {"method": "supervised", "options": {"hidden_channels": 8, "num_layers": 1}}},
        "train": {"batch_size": 64, **train},
        "datasets": ["MUTAG"],
    })


def _count_scored_graphs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    r"""The number of graphs of every ``protocols.predict`` call, in order."""
    from gcl.bench import protocols

    scored: list[int] = []
    original = protocols.predict

    def counting_predict(method: Any, data: Any, batch_size: int = 256) -> Any:
        scored.append(len(data))
        return original(method, data, batch_size)

    monkeypatch.setattr(protocols, "predict", counting_predict)
    return scored


def test_selection_on_validation_loss_is_a_negative_cross_entropy(tmp_path: Path) -> None:
    def config(selection: str) -> Any:
        return _kfold_config({"selection": selection}, {"epochs": 2, "lr": 0.01})

    torch.set_num_threads(1)
    record = run_task(config("loss"), make_tasks(config("loss"))[0], Context(tmp_path))[0]
    assert record.val_score is not None and record.val_score < 0  # -CE
    # another selection is refused when the table loads, before any task trains
    with pytest.raises(ValueError, match=r"evaluation: selection must be one of \('metric', 'loss'\) \(got 'f1'\)"):
        config("f1")


def test_grid_is_chosen_per_fold_on_validation_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _kfold_config({"selection": "loss", "grid": {"lr": [0.01, 0.001]}}, {"epochs": 2, "lr": 0.005})
    scored = _count_scored_graphs(monkeypatch)
    torch.set_num_threads(1)
    record = run_task(config, make_tasks(config)[0], Context(tmp_path))[0]
    extra = record.extra
    assert extra["selected"] in ({"lr": 0.01}, {"lr": 0.001})
    by_point = extra["validation_by_point"]
    assert set(by_point) == {"train-lr=0.01", "train-lr=0.001"}
    chosen = "train-lr=" + str(extra["selected"]["lr"])
    assert by_point[chosen] == max(by_point.values()) == pytest.approx(record.val_score)
    # Two epochs of validation per grid point, then the 94-graph test fold exactly once.
    assert scored.count(94) == 1 and len(scored) == 2 * 2 + 1


def test_grid_points() -> None:
    from gcl.bench.protocols import grid_points

    assert grid_points(None) == [{}]
    assert grid_points({"lr": [0.1, 0.2], "batch_size": [32]}) == [
        {"lr": 0.1, "batch_size": 32}, {"lr": 0.2, "batch_size": 32}]
    with pytest.raises(ValueError, match="not a training setting"):
        grid_points({"learning_rate": [0.1]})
    with pytest.raises(ValueError, match="non-empty list"):
        grid_points({"lr": []})
    with pytest.raises(ValueError, match="not a training setting"):
        grid_points({"seed": [1, 2]})


@pytest.mark.parametrize("key", ["lrr", "seed", "device", "progress", "extra"])
def test_a_grid_key_that_selects_nothing_is_named_with_the_keys_that_do(key: str) -> None:
    from gcl.bench.protocols import grid_points

    with pytest.raises(ValueError, match=f"evaluation.grid: '{key}' is not a training setting to select") as info:
        grid_points({key: [1]})
    takes = str(info.value).partition("; it takes ")[2].split(", ")
    assert "lr" in takes and "epochs" in takes
    assert not {"seed", "device", "progress", "extra"} & set(takes)  # each task sets these itself


def test_grid_point_with_nan_validation_never_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gcl.train
    from gcl.train import TrainResult

    validation = {0.1: float("nan"), 0.01: 0.9, 0.001: 0.5}  # lr 0.1 "diverged"

    def fake_fit(method: Any, data: Any, config: Any, **kwargs: Any) -> TrainResult:
        val = validation[config.lr]
        return TrainResult(method, [{"epoch": 1.0, "loss": 1.0, "val": val}], val, False, None)

    monkeypatch.setattr(gcl.train, "fit", fake_fit)
    config = _kfold_config({"grid": {"lr": [0.1, 0.01, 0.001]}}, {"epochs": 1})
    record = run_task(config, make_tasks(config)[0], Context(tmp_path))[0]
    assert record.extra["selected"] == {"lr": 0.01} and record.val_score == 0.9


def test_task_clock_adds_earlier_attempts_up_to_their_last_checkpoint(tmp_path: Path) -> None:
    folder = tmp_path / "task"
    first = TaskClock(folder)
    assert first.kept == 0.0 and 0.0 <= first.seconds() < 5.0
    # the first attempt started 100 s ago, wrote its last checkpoint 40 s ago, then was killed
    now = time.time()
    ledger = folder / TaskClock.LEDGER
    ledger.write_text(json.dumps({"kept": 0.0, "started": now - 100}))
    checkpoint = folder / "train" / "checkpoint.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"state")
    os.utime(checkpoint, (now - 40, now - 40))
    (folder / ".lock").touch()  # the lock is not progress
    second = TaskClock(folder)
    assert second.kept == pytest.approx(60.0, abs=1.0) and second.seconds() >= 60.0
    # a third attempt after one that left nothing new keeps the sum
    ledger.write_text(json.dumps({"kept": 60.0, "started": now + 10}))
    assert TaskClock(folder).kept == pytest.approx(60.0)
    ledger.write_text("{not json")  # an unreadable ledger counts from now
    assert TaskClock(folder).kept == 0.0


def test_best_epoch_skips_nan_validation_scores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop never keeps an epoch whose validation score is NaN; the record's best epoch agrees."""
    import gcl.train
    from gcl.train import TrainResult

    def fake_fit(method: Any, data: Any, config: Any, **kwargs: Any) -> TrainResult:
        history = [{"epoch": float(e), "loss": 1.0, "val": v} for e, v in ((1, float("nan")), (2, 0.6), (3, 0.7))]
        return TrainResult(method, history, 0.7, False, None)

    monkeypatch.setattr(gcl.train, "fit", fake_fit)
    config = parse_config({
        "table": "t", "protocol": "supervised-kfold", "seeds": 1, "evaluation": {"n_splits": 2, "val_size": 0.1},
        "methods": {"gin": {"method": "supervised", "options": {"hidden_channels": 8, "num_layers": 1}}},
        "train": {"epochs": 3, "batch_size": 64}, "datasets": ["MUTAG"],
    })
    record = run_task(config, make_tasks(config)[0], Context(tmp_path))[0]
    assert record.extra["best_epoch"] == 3


def _node_table(num_splits: int, row_evaluation: dict[str, Any] | None) -> Any:
    return parse_config({
        "table": "t", "protocol": "node-linear", "seeds": 1, "evaluation": {"num_splits": num_splits},
        "methods": {"grace": {"method": "grace", "options": {"hidden_channels": 8, "projection_channels": 8},
                              "train": {"epochs": 1}}},
        "datasets": {"Cora": {} if row_evaluation is None else {"evaluation": row_evaluation}},
    })


def _graph_with_public_splits(num_nodes: int = 60, num_splits: int = 3) -> Any:
    from torch_geometric.data import Data

    generator = torch.Generator().manual_seed(0)
    edge_index = torch.randint(num_nodes, (2, 4 * num_nodes), generator=generator)
    y = torch.arange(num_nodes) % 3
    train = torch.zeros(num_nodes, num_splits, dtype=torch.bool)
    val = torch.zeros(num_nodes, num_splits, dtype=torch.bool)
    for split in range(num_splits):  # WikiCS' layout: per-split training/validation masks, one test mask
        train[split * 6:split * 6 + 12, split] = True
        val[40 - split * 3:46 - split * 3, split] = True
    test = torch.zeros(num_nodes, dtype=torch.bool)
    test[48:] = True
    return Data(x=torch.randn(num_nodes, 5, generator=generator), edge_index=edge_index, y=y,
                train_mask=train, val_mask=val, test_mask=test)


def _probed_node_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, graph: Any,
                      row_evaluation: dict[str, Any] | None) -> tuple[list[Any], list[Any]]:
    r"""Runs a node-linear task of two splits on ``graph``; returns its records and what the
    linear probe was given, ``(labels, splits)`` per call."""
    from gcl.eval import LinearProbe

    seen: list[Any] = []
    evaluate = LinearProbe.evaluate

    def recording(self: Any, features: Any, labels: Any, splits: Any) -> Any:
        seen.append((labels, splits))
        return evaluate(self, features, labels, splits)

    monkeypatch.setattr(LinearProbe, "evaluate", recording)
    torch.set_num_threads(1)
    config = _node_table(2, row_evaluation)
    task = make_tasks(config)[0]
    ctx = Context(tmp_path)
    ctx.datasets[json.dumps(config.settings(task.entry, task.spec)["dataset"], sort_keys=True)] = [graph]
    return run_task(config, task, ctx), seen


def test_node_linear_splits_only_the_labelled_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # -1 marks a node without a label: the probe must neither learn it as a class nor be scored on it
    graph = _graph_with_public_splits()
    graph.y = graph.y.clone()
    graph.y[::2] = -1
    _, seen = _probed_node_task(tmp_path, monkeypatch, graph, None)
    (labels, splits), = seen
    for split in splits:
        assert [len(part) for part in split] == [3, 3, 24]  # 10/10/80 % of the 30 labelled nodes
        assert all((labels[part.numpy()] >= 0).all() for part in split)


@pytest.mark.parametrize("row_evaluation", [None, {"splits": "public"}])
def test_node_linear_takes_the_data_sets_public_splits_where_the_row_asks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, row_evaluation: dict[str, Any] | None) -> None:
    from gcl.eval import masks_to_splits

    graph = _graph_with_public_splits()
    records, seen = _probed_node_task(tmp_path, monkeypatch, graph, row_evaluation)
    assert len(records) == 2 and len(seen) == 1
    splits = seen[0][1]
    public = masks_to_splits(graph.train_mask, graph.val_mask, graph.test_mask)[:2]
    same = [all(np.array_equal(getattr(got, part), getattr(want, part)) for part in ("train", "val", "test"))
            for got, want in zip(splits, public)]
    assert same == ([True, True] if row_evaluation else [False, False])  # else random 10/10/80 splits
    if row_evaluation is None:
        assert [len(split.test) for split in splits] == [48, 48]


def _no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    r"""Makes any (pre-)training of a task fail the test: what it checks must come first."""
    import gcl.train

    def fit(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the task trained before refusing its settings")

    monkeypatch.setattr(gcl.train, "fit", fit)


def test_public_splits_refuse_more_folds_than_the_data_set_ships(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Cora ships one public split: a table asking for 20 fails when its task starts, not after pre-training
    _no_training(monkeypatch)
    config = _node_table(4, {"splits": "public"})
    task = make_tasks(config)[0]
    ctx = Context(tmp_path)
    ctx.datasets[json.dumps(config.settings(task.entry, task.spec)["dataset"], sort_keys=True)] = [
        _graph_with_public_splits(num_splits=3)]
    with pytest.raises(ValueError, match=r"Cora: the data set ships 3 public split\(s\), the table's evaluation "
                                         r"asks for num_splits: 4"):
        run_task(config, task, ctx)
    real = _node_table(20, {"splits": "public"})  # the real Cora
    with pytest.raises(ValueError, match=r"Cora: the data set ships 1 public split\(s\), the table's evaluation "
                                         r"asks for num_splits: 20"):
        run_task(real, make_tasks(real)[0], Context(tmp_path / "real"))


def test_svc_refuses_classes_smaller_than_its_folds_before_pretraining(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # MUTAG's classes hold 63 and 125 graphs: 70 outer folds, or 10 outer and 60 inner ones, cannot
    # each hold every class; found when the task starts, not after pre-training
    _no_training(monkeypatch)
    for evaluation, message in [
        ({"n_splits": 70}, r"MUTAG: SVCEvaluator\(n_splits=70\) needs at least n_splits=70 samples in every "
                           r"class .* class 0 has 63"),
        ({"n_splits": 10, "inner_splits": 60}, r"MUTAG: the inner search \(inner_splits=60\) on an outer "
                                               r"training fold needs .* class 0 has 5[67]"),
    ]:
        config = parse_config({
            "table": "t", "protocol": "svc", "seeds": 1, "evaluation": evaluation,
            "methods": {"graphcl": {"method": "graphcl", "options": {"hidden_channels": 8, "num_layers": 1}}},
            "train": {"epochs": 1, "batch_size": 64},
            "datasets": ["MUTAG"],
        })
        with pytest.raises(ValueError, match=message):
            run_task(config, make_tasks(config)[0], Context(tmp_path))


def test_ogb_refuses_an_official_split_whose_parts_overlap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a copy of ogbg-molbace whose test part is its validation part: scored, the test score would be the
    # validation score; `gcl train` refuses the split, and so does the ogb protocol, before any training
    import shutil

    from gcl.data.roots import REPO_DATASETS

    folder = tmp_path / "data" / "OGB" / "ogbg_molbace"
    shutil.copytree(REPO_DATASETS / "OGB" / "ogbg_molbace", folder, ignore=shutil.ignore_patterns("processed"))
    shutil.copyfile(folder / "split" / "scaffold" / "valid.csv.gz", folder / "split" / "scaffold" / "test.csv.gz")
    monkeypatch.setenv("GCL_CACHE", str(tmp_path / "cache"))
    _no_training(monkeypatch)
    config = parse_config({
        "table": "t", "protocol": "ogb", "metric": "rocauc", "seeds": 1,
        "methods": {"ft": {"method": "supervised", "options": {"hidden_channels": 8, "num_layers": 1, "ogb_mol": True},
                           "pretrain": {"method": "graphcl", "options": {
                               "hidden_channels": 8, "num_layers": 1, "ogb_mol": True,
                               "augmentations": ["identity", "random3"]}}}},
        "datasets": {"BACE": {"name": "ogbg-molbace", "dataset": {"root": str(tmp_path / "data")}}},
    })
    task = make_tasks(config)[0]
    # in every one of the 151 validation graphs
    with pytest.raises(ValueError, match=r"BACE: the official split of ogbg-molbace is not valid: split parts 'val' "
                                         r"and 'test' overlap in 151 index\(es\)"):
        run_task(config, task, Context(tmp_path / "work"))


# The protocols' selection and seeding: each test fails on a leak or a lost seed
def test_metric_selection_scores_the_test_fold_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _kfold_config({}, {"epochs": 2, "lr": 0.01})  # selection: metric (default)
    scored = _count_scored_graphs(monkeypatch)
    torch.set_num_threads(1)
    run_task(config, make_tasks(config)[0], Context(tmp_path))
    # two epochs on the (~9-graph) validation part, then the 94-graph test fold exactly once
    assert scored.count(94) == 1 and len(scored) == 3
    assert all(n < 20 for n in scored[:-1]) and scored[-1] == 94


def test_kfold_folds_are_drawn_with_the_task_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gcl.eval

    seeds_seen: list[Any] = []
    original = gcl.eval.stratified_kfold_indices

    def recording(labels: Any, n_splits: int, val_size: float = 0.1, random_state: Any = 0) -> Any:
        seeds_seen.append(random_state)
        return original(labels, n_splits, val_size=val_size, random_state=random_state)
    monkeypatch.setattr(gcl.eval, "stratified_kfold_indices", recording)
    config = _kfold_config({}, {"epochs": 1, "lr": 0.01}, seeds=2)
    torch.set_num_threads(1)
    task = next(t for t in make_tasks(config) if t.seed == 1)
    run_task(config, task, Context(tmp_path))
    assert seeds_seen == [1]


def test_svc_folds_are_drawn_with_the_task_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gcl.eval import SVCEvaluator

    seeds_seen: list[Any] = []
    evaluate = SVCEvaluator.evaluate

    def recording(self: Any, features: Any, labels: Any) -> Any:
        seeds_seen.append(self.random_state)
        return evaluate(self, features, labels)
    monkeypatch.setattr(SVCEvaluator, "evaluate", recording)
    config = parse_config({
        "table": "t", "protocol": "svc", "seeds": 2, "evaluation": {"n_splits": 2},
        "methods": {"graphcl": {"method": "graphcl", "options": {"hidden_channels": 8, "num_layers": 1}}},
        "train": {"epochs": 1, "batch_size": 64, "lr": 0.01},
        "datasets": ["MUTAG"],
    })
    torch.set_num_threads(1)
    task = next(t for t in make_tasks(config) if t.seed == 1)
    records = run_task(config, task, Context(tmp_path))
    assert seeds_seen == [1]
    assert [r.fold for r in records] == [0, 1] and all(r.seed == 1 for r in records)


def test_node_linear_random_splits_follow_the_task_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gcl.eval import LinearProbe, random_splits

    graph = _graph_with_public_splits()
    seen: list[Any] = []
    evaluate = LinearProbe.evaluate

    def recording(self: Any, features: Any, labels: Any, splits: Any) -> Any:
        seen.append((self.random_state, splits))
        return evaluate(self, features, labels, splits)
    monkeypatch.setattr(LinearProbe, "evaluate", recording)
    torch.set_num_threads(1)
    config = parse_config({
        "table": "t", "protocol": "node-linear", "seeds": 2, "evaluation": {"num_splits": 2},
        "methods": {"grace": {"method": "grace", "options": {"hidden_channels": 8, "projection_channels": 8},
                              "train": {"epochs": 1}}},
        "datasets": {"Cora": {}},
    })
    task = next(t for t in make_tasks(config) if t.seed == 1)
    ctx = Context(tmp_path)
    ctx.datasets[json.dumps(config.settings(task.entry, task.spec)["dataset"], sort_keys=True)] = [graph]
    run_task(config, task, ctx)
    want = random_splits(graph.num_nodes, num_splits=2, random_state=1)
    assert seen[0][0] == 1
    assert all(np.array_equal(g.test, w.test) for g, w in zip(seen[0][1], want))


def test_test_fold_is_scored_with_the_validation_selected_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gcl.bench import protocols

    calls = iter(range(1, 100))
    monkeypatch.setattr(protocols, "validation_loss", lambda m, d: float(next(calls)))  # epoch 1 is best
    snapshots: list[dict[str, torch.Tensor]] = []
    original = protocols.predict

    def recording(method: Any, data: Any, batch_size: int = 256) -> Any:
        snapshots.append({k: v.detach().clone() for k, v in method.state_dict().items()})
        return original(method, data, batch_size)
    monkeypatch.setattr(protocols, "predict", recording)
    config = _kfold_config({"selection": "loss"}, {"epochs": 3, "lr": 0.05, "patience": 10})
    torch.set_num_threads(1)
    snap_epochs: list[dict[str, torch.Tensor]] = []
    orig_vl = protocols.validation_loss

    def vl(m: Any, d: Any) -> float:
        snap_epochs.append({k: v.detach().clone() for k, v in m.state_dict().items()})
        return orig_vl(m, d)
    monkeypatch.setattr(protocols, "validation_loss", vl)
    record = run_task(config, make_tasks(config)[0], Context(tmp_path))[0]
    assert record.extra["best_epoch"] == 1 and record.extra["epochs_trained"] == 3
    test_state = snapshots[-1]
    assert all(torch.equal(test_state[k], snap_epochs[0][k]) for k in test_state)
    assert not all(torch.equal(test_state[k], snap_epochs[-1][k]) for k in test_state)
