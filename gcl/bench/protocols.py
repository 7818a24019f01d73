r"""The evaluation protocols of the paper tables, one function per protocol.

Each protocol turns one :class:`Task` (a dataset, a method, a seed and the
folds it covers) into :class:`~gcl.bench.store.Record` rows. Test folds are
only ever scored: epochs, early stopping and every hyper-parameter are chosen
on training or validation data.

- ``svc``: self-supervised pre-training for a fixed number of epochs, frozen
  embeddings, :class:`~gcl.eval.SVCEvaluator` (GraphCL / InfoGraph).
- ``supervised-kfold``: stratified :math:`K`-fold CV with a validation part
  carved from each training part for early stopping (LCGNN).
- ``supervised-random``: random 80/10/10 splits, early stopping on the
  validation part (HGP-SL).
- ``node-linear``: node-level pre-training, :class:`~gcl.eval.LinearProbe` on
  random 10/10/80 splits (GRACE, GCA, Graph Barlow Twins).
- ``ogb``: OGB's official split and metric; supervised training (optionally
  from a self-supervised pre-trained encoder) with early stopping on ``valid``.
"""

from __future__ import annotations

import difflib
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gcl.bench.config import (
    EVALUATION_KEYS,
    PROBE_KEYS,
    DatasetEntry,
    MethodSpec,
    TableConfig,
)
from gcl.bench.store import Record

# TrainConfig fields no grid selects: each task sets its own seed, device and progress bar
_TASK_OWN = ("seed", "device", "progress")
_NOT_SELECTED = frozenset({*_TASK_OWN, "extra"})
_SVC_KEYS = EVALUATION_KEYS["svc"]  # SVCEvaluator's arguments


@dataclass(frozen=True)
class Task:
    r"""One unit of work: a method on a dataset for one seed, covering some folds.

    Args:
        entry (DatasetEntry): The dataset row.
        spec (MethodSpec): The method.
        seed (int): Seed.
        folds (tuple[int, ...]): Fold indices this task produces.
        variant (str): Settings fingerprint (see :meth:`TableConfig.variant`).
    """

    entry: DatasetEntry
    spec: MethodSpec
    seed: int
    folds: tuple[int, ...]
    variant: str

    @property
    def id(self) -> str:
        r"""Readable identifier, e.g. ``MUTAG/graphcl/seed0`` or ``NCI1/lcgnn-gin/seed0/fold3``."""
        base = f"{self.entry.label}/{self.spec.label}/seed{self.seed}"
        return base + (f"/fold{self.folds[0]}" if len(self.folds) == 1 else "")


@dataclass
class Context:
    r"""What tasks of one run share: loaded datasets, a scratch folder for checkpoints, the device."""

    work_dir: Path
    device: str = "cpu"
    datasets: dict[str, Any] = field(default_factory=dict)

    def load(self, options: dict[str, Any]) -> Any:
        r"""Loads (once per run) the dataset described by ``options`` (``name`` + ``load_dataset`` kwargs)."""
        key = json.dumps(options, sort_keys=True, default=str)
        if key not in self.datasets:
            from gcl.data import load_dataset

            kwargs = {k: v for k, v in options.items() if k != "name"}
            self.datasets[key] = load_dataset(options["name"], **kwargs)
        return self.datasets[key]


def folds_of(config: TableConfig) -> tuple[int, bool]:
    r"""Number of folds per seed and whether each fold is a task of its own."""
    ev = config.evaluation
    if config.protocol == "svc":
        return int(ev.get("n_splits", 10)), False
    if config.protocol == "supervised-kfold":
        return int(ev.get("n_splits", 10)), True
    if config.protocol == "supervised-random":
        return int(ev.get("num_runs", 10)), True
    if config.protocol == "node-linear":
        return int(ev.get("num_splits", 20)), False
    return 1, True


def make_tasks(config: TableConfig) -> list[Task]:
    r"""All tasks of a table, dataset by dataset, method by method, seed by seed."""
    num_folds, per_fold = folds_of(config)
    tasks: list[Task] = []
    for entry in config.datasets:
        for spec in config.methods:
            variant = config.variant(entry, spec)
            for seed in range(config.seeds):
                if per_fold:
                    tasks.extend(Task(entry, spec, seed, (fold,), variant) for fold in range(num_folds))
                else:
                    tasks.append(Task(entry, spec, seed, tuple(range(num_folds)), variant))
    return tasks


# -- shared steps ---------------------------------------------------------------
def _train_config(train: dict[str, Any], seed: int, device: str) -> Any:
    from gcl.train import TrainConfig

    values = {**train, "seed": seed, "progress": False}
    values.setdefault("device", device)
    return TrainConfig.from_dict(values)


@torch.no_grad()
def predict(method: nn.Module, data: Any, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    r"""Labels and class logits of every graph in ``data`` from ``method.predict``."""
    from gcl.data import ordered_batches

    was_training = method.training
    method.eval()
    device = next(method.parameters()).device
    labels, logits = [], []
    try:
        for batch in ordered_batches(data, batch_size):
            batch = batch.to(device)
            logits.append(method.predict(batch).float().cpu())  # type: ignore[operator]
            labels.append(batch.y.view(int(batch.num_graphs), -1)[:, 0].cpu())
    finally:
        method.train(was_training)
    return torch.cat(labels).numpy(), torch.cat(logits).numpy()


def mean_cross_entropy(labels: np.ndarray, logits: np.ndarray) -> float:
    r"""Mean cross-entropy of class ``logits`` against integer ``labels``."""
    return float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels).long()))


def validation_loss(method: nn.Module, data: Any) -> float:
    r"""Mean cross-entropy of ``method.predict`` on ``data`` (early stopping on the
    validation loss, and the diagnostics that trace it)."""
    return mean_cross_entropy(*predict(method, data))


def scorer(metric: str, dataset_name: str) -> Callable[[np.ndarray, np.ndarray], float]:
    r"""``score(labels, logits)``: accuracy, or OGB's ROC-AUC of the positive class's logit margin
    (the ranking of its probability, without the ties of probabilities rounded to 1)."""
    if metric == "accuracy":
        return lambda y, logits: float((logits.argmax(1) == y).mean())
    if metric == "rocauc":
        from gcl.eval import OGBGraphEvaluator

        evaluator = OGBGraphEvaluator(dataset_name)

        def rocauc(y: np.ndarray, logits: np.ndarray) -> float:
            if logits.ndim != 2 or logits.shape[1] != 2:
                raise ValueError(f"rocauc scores two-class logits [N, 2] (got shape {logits.shape})")
            # softmax(logits)[:, 1] orders the graphs as this margin does, but in float32 it
            # rounds to exactly 1 from a margin of about 17 on, and the ties change the score
            margin = logits[:, 1].astype(np.float64) - logits[:, 0].astype(np.float64)
            return evaluator.score(y.astype(np.float64), margin)

        return rocauc
    raise ValueError(f"metric must be 'accuracy' or 'rocauc' (got {metric!r})")


def _pretrained(settings: dict[str, Any], data: Any, seed: int, device: str, out_dir: Path) -> nn.Module:
    from gcl.methods import build_method
    from gcl.train import fit, seed_everything

    pre = settings["pretrain"]
    seed_everything(seed)
    method = build_method(pre["method"], data, **pre.get("options", {}))
    fit(method, data, _train_config(pre.get("train", {}), seed, device), out_dir=out_dir)
    return method


def _supervised_fold(config: TableConfig, task: Task, settings: dict[str, Any], data: Any, split: Any,
                     train_seed: int, ctx: Context, out_dir: Path) -> tuple[float, float, dict[str, Any]]:
    from gcl.methods import build_method
    from gcl.train import fit, seed_everything

    score = scorer(config.metric, task.entry.name)
    selection = settings["evaluation"].get("selection", "metric")  # one of SELECTIONS: checked at load
    encoder_state: dict[str, Any] | None = None
    if settings.get("pretrain"):
        pre = _pretrained(settings, data, train_seed, ctx.device, out_dir / "pretrain")
        encoder_state = pre.get_submodule("encoder").state_dict()
    train_part, val_part, test_part = data[split.train], data[split.val], data[split.test]

    def validate(m: nn.Module) -> float:
        if selection == "loss":
            # negative validation cross-entropy: on validation parts of a few dozen graphs,
            # accuracy ties for many epochs and early stopping keeps an early state
            return -validation_loss(m, val_part)
        return score(*predict(m, val_part))

    # Every point of the optional grid is trained on the training part and judged on the
    # validation part only; the test part is scored once, for the chosen point.
    points = grid_points(settings.get("evaluation", {}).get("grid"))
    chosen: tuple[dict[str, Any], Any] | None = None
    chosen_val = float("-inf")
    validation_by_point: dict[str, float] = {}
    for point in points:
        seed_everything(train_seed)
        method = build_method(settings["method"], data, **settings["options"])
        if encoder_state is not None:
            method.get_submodule("encoder").load_state_dict(encoder_state)
            sync = getattr(method, "sync_key_encoder", None)
            if callable(sync):  # a momentum (key) encoder starts as the loaded one, not the random one
                sync()
        name = "train" if not point else "train-" + "-".join(f"{k}={v}" for k, v in sorted(point.items()))
        result = fit(method, train_part, _train_config({**settings["train"], **point}, train_seed, ctx.device),
                     out_dir=out_dir / name, validate=validate)
        best_val = float(result.best_val) if result.best_val is not None else float("-inf")
        best_val = float("-inf") if math.isnan(best_val) else best_val
        validation_by_point[name] = best_val
        if chosen is None or best_val > chosen_val:  # ties keep the earlier point
            chosen, chosen_val = (point, result), best_val
    assert chosen is not None
    point, result = chosen
    test = score(*predict(result.method, test_part))
    best_epoch = max(range(len(result.history)), key=lambda i: _comparable(result.history[i].get("val"))) + 1
    extra: dict[str, Any] = {"epochs_trained": len(result.history), "best_epoch": best_epoch,
                             "stopped_early": result.stopped_early}
    if len(points) > 1:
        extra.update(selected=point, validation_by_point=validation_by_point)
    return test, float(result.best_val if result.best_val is not None else float("nan")), extra


def _comparable(value: float | None) -> float:
    r"""A validation score as the loop ranks it: a missing or NaN score never wins."""
    return float("-inf") if value is None or math.isnan(value) else float(value)


def grid_points(grid: Any) -> list[dict[str, Any]]:
    r"""The points of ``evaluation.grid`` (training settings to choose among, per fold, on
    the validation part): every combination of the listed values, ``[{}]`` without a grid.

    Example:
        >>> grid_points({"lr": [0.005, 0.001]})
        [{'lr': 0.005}, {'lr': 0.001}]
    """
    if grid is None or grid == {}:
        return [{}]
    from gcl.train import TrainConfig

    if not isinstance(grid, dict):
        raise ValueError(f"evaluation.grid must map training settings to lists of values (got {grid!r})")
    allowed = sorted(set(TrainConfig.__dataclass_fields__) - _NOT_SELECTED)
    points: list[dict[str, Any]] = [{}]
    for key, values in grid.items():
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, 1)
            why = ("each task sets its own seed, device and progress bar" if key in _TASK_OWN
                   else f"did you mean {close[0]!r}?" if close else "")
            raise ValueError(f"evaluation.grid: {key!r} is not a training setting to select"
                             + (f" ({why})" if why else "") + f"; it takes {', '.join(allowed)}")
        if not isinstance(values, list) or not values:
            raise ValueError(f"evaluation.grid.{key} must be a non-empty list (got {values!r})")
        points = [{**point, key: value} for point in points for value in values]
    return points


# -- the protocols ---------------------------------------------------------------
def run_task(config: TableConfig, task: Task, ctx: Context) -> list[Record]:
    r"""Runs one task and returns its records (one per fold)."""
    settings = config.settings(task.entry, task.spec)
    out_dir = task_dir(config, task, ctx)
    data = ctx.load(settings["dataset"])
    clock = TaskClock(out_dir)  # training and evaluation, not the (once per process) loading

    def record(fold: int, score: float, val: float | None, params: dict[str, Any],
               extra: dict[str, Any]) -> Record:
        return Record(config.table, task.variant, task.entry.label, task.spec.label, task.seed, fold, score,
                      metric=config.metric, val_score=val, task=task.id,
                      task_seconds=clock.seconds(), params=params, extra=extra)

    records: list[Record] = []
    evaluation_settings = settings["evaluation"]  # the table's, with the row's own on top
    if config.protocol in ("svc", "node-linear"):
        from gcl.eval import LinearProbe, SVCEvaluator, public_splits, random_splits
        from gcl.methods import build_method, embed_dataset
        from gcl.train import fit, seed_everything

        target = data[0] if config.protocol == "node-linear" else data
        # the evaluation, and the public splits it takes, are checked before the pre-training they would waste
        evaluator: SVCEvaluator | LinearProbe
        public: list[Any] | None = None
        if config.protocol == "svc":
            svc_options = {k: evaluation_settings[k] for k in _SVC_KEYS if k in evaluation_settings}
            evaluator = SVCEvaluator(random_state=task.seed, **svc_options)
            # the folds depend on the labels alone: too few graphs of a class for them fails here
            labels_now = getattr(target, "y", None)
            if isinstance(labels_now, Tensor) and labels_now.numel() == len(target):
                try:
                    evaluator.check_labels(labels_now.view(-1))
                except ValueError as exc:
                    raise ValueError(f"{task.entry.label}: {exc}") from exc
        else:
            probe_options = {k: evaluation_settings[k] for k in PROBE_KEYS if k in evaluation_settings}
            evaluator = LinearProbe(random_state=task.seed, metric=config.metric, **probe_options)
            if evaluation_settings.get("splits", "random") == "public":
                # the splits the data set ships (WikiCS: 20 training/validation masks, one test mask)
                public = public_splits(target)
                if len(public) < len(task.folds):
                    raise ValueError(f"{task.entry.label}: the data set ships {len(public)} public split(s), the "
                                     f"table's evaluation asks for num_splits: {len(task.folds)}")
        seed_everything(task.seed)
        method = build_method(settings["method"], target, **settings["options"])
        result = fit(method, target, _train_config(settings["train"], task.seed, ctx.device), out_dir=out_dir)
        features, labels = embed_dataset(result.method, target)
        extra = {"final_loss": result.history[-1]["loss"], "epochs": len(result.history)}
        if isinstance(evaluator, SVCEvaluator):
            evaluation = evaluator.evaluate(features, labels)
        else:
            splits = (public[: len(task.folds)] if public is not None
                      else random_splits(len(labels), num_splits=len(task.folds), random_state=task.seed,
                                         among=np.flatnonzero(labels >= 0)))  # -1: no label
            evaluation = evaluator.evaluate(features, labels, splits)
        val_scores: list[float | None] = list(evaluation.val_scores) or [None] * len(evaluation.fold_scores)
        for fold, (score, val, params) in enumerate(zip(evaluation.fold_scores, val_scores, evaluation.best_params)):
            records.append(record(fold, score, val, params, extra))
    elif config.protocol in ("supervised-kfold", "supervised-random"):
        from gcl.eval import random_split_indices, stratified_kfold_indices

        num_folds = folds_of(config)[0]
        if config.protocol == "supervised-kfold":
            labels = data.y.view(len(data), -1)[:, 0]
            splits = stratified_kfold_indices(labels, n_splits=num_folds,
                                              val_size=float(evaluation_settings.get("val_size", 0.1)),
                                              random_state=task.seed)
        else:
            ratios = tuple(evaluation_settings.get("ratios", (0.8, 0.1, 0.1)))
            splits = random_split_indices(len(data), ratios, num_runs=num_folds, random_state=task.seed)
        for fold in task.folds:
            test, val, extra = _supervised_fold(config, task, settings, data, splits[fold],
                                                task.seed * 1000 + fold, ctx, out_dir)
            records.append(record(fold, test, val, {}, extra))
    elif config.protocol == "ogb":
        from gcl.eval import check_split

        try:  # OGB's official split, checked as `gcl train` checks it: a corrupt one is never scored
            split = check_split(data.get_idx_split(), len(data))
        except ValueError as exc:
            raise ValueError(f"{task.entry.label}: the official split of {task.entry.name} is not valid: "
                             f"{exc}") from exc
        test, val, extra = _supervised_fold(config, task, settings, data, split, task.seed, ctx, out_dir)
        records.append(record(0, test, val, {}, extra))
    else:  # pragma: no cover - rejected by TableConfig
        raise ValueError(f"unknown protocol {config.protocol!r}")
    return records


class TaskClock:
    r"""The seconds a task has taken, over every attempt at it.

    A task interrupted by a kill resumes from its last checkpoint, so the time
    its earlier attempts spent up to their last checkpoint is part of what its
    records cost; the time after it was lost and is spent again. The clock
    keeps that sum in ``folder/.seconds.json``: each attempt notes when it
    started, and the next one adds the span from that start to the newest
    file the attempt left in :obj:`folder` (its last checkpoint).

    Args:
        folder (path): The task's work folder (:func:`task_dir`).
    """

    LEDGER = ".seconds.json"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        ledger = self.folder / self.LEDGER
        self.kept = 0.0
        try:
            previous = json.loads(ledger.read_text())
            kept, started = float(previous["kept"]), float(previous["started"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # first attempt (or an unreadable ledger: count from now)
        else:
            newest = max((p.stat().st_mtime for p in self.folder.rglob("*")
                          if p.is_file() and p.name not in (self.LEDGER, ".lock")), default=started)
            self.kept = kept + max(0.0, newest - started)
        ledger.write_text(json.dumps({"kept": self.kept, "started": time.time()}))
        self._start = time.perf_counter()

    def seconds(self) -> float:
        r"""Seconds of the earlier attempts (to their last checkpoint) plus this one so far."""
        return self.kept + time.perf_counter() - self._start


def task_dir(config: TableConfig, task: Task, ctx: Context) -> Path:
    r"""Checkpoint folder of a task: an interrupted task resumes its training from there."""
    return ctx.work_dir / config.table / task.variant / task.id.replace("/", "_")


def clean_task(config: TableConfig, task: Task, ctx: Context) -> None:
    r"""Removes a task's checkpoints (call once its records are stored), and its settings' and
    table's folders once empty."""
    folder = task_dir(config, task, ctx)
    shutil.rmtree(folder, ignore_errors=True)
    for parent in (folder.parent, folder.parent.parent):
        try:
            parent.rmdir()  # only when empty: another task (or run) may still work in it
        except OSError:
            break
