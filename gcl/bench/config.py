r"""Benchmark table configurations: one YAML file per paper table.

A configuration names the protocol, the methods (a builder of
:func:`gcl.methods.build_method` with its hyper-parameters and training
settings), the datasets with per-dataset overrides, the number of seeds, the
evaluation settings and a reduced ``quick:`` version for smoke tests. See
``docs/benchmarks.md`` for the format.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcl.train.config import check_keys, read_yaml

PROTOCOLS = ("svc", "supervised-kfold", "supervised-random", "node-linear", "ogb")
AGGREGATES = ("seeds", "folds")
# the metrics each protocol computes, and the evaluation settings it reads
METRICS = {"svc": ("accuracy",), "node-linear": ("accuracy", "macro_f1", "micro_f1"),
           "supervised-kfold": ("accuracy",), "supervised-random": ("accuracy",),
           "ogb": ("accuracy", "rocauc")}
_SELECTION = ("selection", "grid")
EVALUATION_KEYS = {"svc": ("n_splits", "C_grid", "inner_splits", "kernel", "scale"),
                   "node-linear": ("num_splits", "splits", "C_grid", "max_iter", "scale", "normalize"),
                   "supervised-kfold": ("n_splits", "val_size", *_SELECTION),
                   "supervised-random": ("num_runs", "ratios", *_SELECTION),
                   "ogb": _SELECTION}
# TrainConfig fields that change no score: the bar, how often to checkpoint (a resumed run is
# exact), DDP's unused-parameter search, how long to wait for a view worker, and the seed (every
# task trains with its own)
BOOKKEEPING_TRAIN = frozenset({"progress", "checkpoint_every", "find_unused_parameters", "view_timeout", "seed"})
# evaluation counts and their least valid values (folds need two parts)
_COUNT_KEYS = {"n_splits": 2, "inner_splits": 2, "num_splits": 1, "num_runs": 1}
# node-linear's splits: random 10/10/80 ones drawn per seed, or those the data set ships (WikiCS)
SPLITS = ("random", "public")
# node-linear's evaluation settings that are LinearProbe's arguments (the splits are the protocol's)
PROBE_KEYS = tuple(k for k in EVALUATION_KEYS["node-linear"] if k not in ("num_splits", "splits"))
# how the supervised protocols judge an epoch (and a grid point) on the validation part: by the
# table's metric, or by the negative cross-entropy
SELECTIONS = ("metric", "loss")
_TOP_KEYS = ("table", "title", "protocol", "methods", "datasets", "seeds", "aggregate", "metric", "evaluation",
             "train", "paper", "quick", "description", "notes")



@dataclass(frozen=True)
class MethodSpec:
    r"""One column of methods in a table.

    Args:
        label (str): Name in the table and in the paper CSV (``"lcgnn-gin"``).
        method (str): Builder name for :func:`gcl.methods.build_method`.
        options (dict): Builder hyper-parameters.
        train (dict): :class:`gcl.train.TrainConfig` fields for this method.
        pretrain (dict, optional): ``{"method", "options", "train"}`` of a
            self-supervised method whose encoder initialises this one (fine-tuning).
    """

    label: str
    method: str
    options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    pretrain: dict[str, Any] | None = None


@dataclass(frozen=True)
class DatasetEntry:
    r"""One dataset row of a table.

    Args:
        label (str): Name in the table and paper CSV (``"IMDB-B"``).
        name (str): Name for :func:`gcl.data.load_dataset`. (default: the label)
        dataset (dict): Keyword arguments of ``load_dataset``.
        train (dict): Training overrides for every method on this dataset.
        methods (dict): Per-method overrides ``{label: {"options": ..., "train": ...}}``.
        note (str): A documented reduction or remark printed beside the row.
        evaluation (dict): Evaluation settings of this row over the table's, except the
            counts of folds, splits and runs, which are the table's (``splits: public``).
    """

    label: str
    name: str
    dataset: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str = ""
    evaluation: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TableConfig:
    r"""A paper table to reproduce.

    Args:
        table (str): Identifier (the file stem), used by the store and the report.
        title (str): Human-readable title.
        protocol (str): ``"svc"``, ``"supervised-kfold"``, ``"supervised-random"``,
            ``"node-linear"`` or ``"ogb"``.
        methods (list[MethodSpec]): Methods compared.
        datasets (list[DatasetEntry]): Datasets, in table order.
        seeds (int): Seeds :math:`0, \dots, S-1` per dataset and method.
        aggregate (str): ``"seeds"``: mean ± std of the per-seed fold means
            (GraphCL); ``"folds"``: mean ± std over all folds/runs.
        metric (str): ``"accuracy"`` or ``"rocauc"``.
        evaluation (dict): Protocol settings (``n_splits``, ``C_grid`` ...).
        train (dict): Training settings shared by all methods.
        paper (str): File name of the published numbers in ``benchmarks/papers``.
        quick (dict): Overrides of the reduced run (``seeds``, ``datasets``,
            ``methods``, ``train``, ``evaluation``); ``datasets`` may name a stand-in the
            table does not hold (run with the table's settings), for a table whose data
            is not shipped.
        description (str): Protocol text for the report.
        notes (str): Markdown appended to the report (investigations, reductions).
        source (Path, optional): The YAML file it came from.
        is_quick (bool): This is the ``quick:`` version (:meth:`reduced`); its report prints the
            difference from the paper for reference but judges no row against the paper's std.
            (default: :obj:`False`)
    """

    table: str
    title: str
    protocol: str
    methods: list[MethodSpec]
    datasets: list[DatasetEntry]
    seeds: int = 5
    aggregate: str = "seeds"
    metric: str = "accuracy"
    evaluation: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    paper: str = ""
    quick: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    notes: str = ""
    source: Path | None = None
    is_quick: bool = False

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS} (got {self.protocol!r})")
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES} (got {self.aggregate!r})")
        _check_seeds(f"table {self.table!r}", self.seeds)
        if not self.methods:
            raise ValueError(f"table {self.table!r} names no methods")
        if not self.datasets:
            raise ValueError(f"table {self.table!r} names no datasets")
        labels = [m.label for m in self.methods]
        if len(set(labels)) != len(labels):
            raise ValueError(f"method labels must be unique (got {labels})")
        if self.metric not in METRICS[self.protocol]:
            raise ValueError(f"table {self.table!r}: the {self.protocol} protocol computes "
                             f"{' or '.join(METRICS[self.protocol])} (got metric {self.metric!r})")
        for where, evaluation in (("evaluation", self.evaluation), ("quick.evaluation", self.quick.get("evaluation", {}))):
            check_keys(f"table {self.table!r}, {where} ({self.protocol})", evaluation, EVALUATION_KEYS[self.protocol])
        row_keys = tuple(k for k in EVALUATION_KEYS[self.protocol] if k not in _COUNT_KEYS)
        for entry in self.datasets:
            check_keys(f"table {self.table!r}, datasets.{entry.label}.evaluation ({self.protocol}; the counts "
                       "are the table's)", entry.evaluation, row_keys)
        # the full run's evaluation, the quick run's (which overrides some of it) and every row's
        # (over the table's): a table's own mistake is named before a row's
        for where, evaluation in (
                ("evaluation", self.evaluation),
                ("quick.evaluation", {**self.evaluation, **self.quick.get("evaluation", {})}),
                *((f"datasets.{entry.label}.evaluation", {**self.evaluation, **entry.evaluation})
                  for entry in self.datasets)):
            self._check_evaluation(f"table {self.table!r}, {where}", evaluation)
        self._check_ogb_rows()
        self._check_training()

    def _check_evaluation(self, where: str, evaluation: dict[str, Any]) -> None:
        r"""The values of one evaluation, as the protocol's tasks read them: counts, the validation
        part, the splits and the selection, and the evaluator's parameters, checked by building the
        evaluator. A bad value is refused when the table loads, not after each task's training;
        ``where`` starts the message."""
        for key, least in _COUNT_KEYS.items():
            value = evaluation.get(key, least)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{where}: {key} must be an integer of at least {least} (got {value!r})")
        if self.protocol == "node-linear" and evaluation.get("splits", "random") not in SPLITS:
            raise ValueError(f"{where}: splits must be one of {SPLITS} (got {evaluation['splits']!r})")
        if "selection" in evaluation and evaluation["selection"] not in SELECTIONS:
            raise ValueError(f"{where}: selection must be one of {SELECTIONS} (got {evaluation['selection']!r})")
        if self.protocol == "supervised-kfold":
            val_size = evaluation.get("val_size", 0.1)
            if isinstance(val_size, bool) or not isinstance(val_size, numbers.Real) or not 0 < float(val_size) < 1:
                hint = "; YAML reads a number such as 1e-1 as text: write 0.1" if isinstance(val_size, str) else ""
                raise ValueError(f"{where}: val_size must be a fraction in (0, 1), as early stopping needs a "
                                 f"validation part (got {val_size!r}{hint})")
        try:
            if self.protocol == "supervised-random":
                from gcl.eval.splits import check_ratios

                check_ratios(evaluation.get("ratios", (0.8, 0.1, 0.1)))
            elif self.protocol == "svc":
                from gcl.eval import SVCEvaluator

                SVCEvaluator(**{k: v for k, v in evaluation.items() if k in EVALUATION_KEYS["svc"]})
            elif self.protocol == "node-linear":
                from gcl.eval import LinearProbe

                LinearProbe(metric=self.metric, **{k: v for k, v in evaluation.items() if k in PROBE_KEYS})
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None

    def _check_ogb_rows(self) -> None:
        r"""The ``ogb`` protocol trains and scores one classification task of an OGB graph data set
        (its official split), and ROC-AUC needs OGB's evaluator of a binary task: every row must name
        such a set. An OGB graph data set, in turn, is scored only as OGB prescribes: by the ``ogb``
        protocol (its official scaffold split) and its evaluator's metric, never by another protocol's
        random folds."""
        for entry in self.datasets:
            where = f"table {self.table!r}, {entry.label}"
            if not _is_ogb_graph(entry.name):
                if self.protocol == "ogb":
                    raise ValueError(f"{where}: the ogb protocol needs an OGB graph data set "
                                     f"(ogbg-...; got {entry.name!r}); TU data sets are scored by accuracy")
                continue
            from gcl.eval import OGBGraphEvaluator

            evaluator = OGBGraphEvaluator(entry.name)
            if self.protocol != "ogb":
                official = {"acc": "accuracy"}.get(evaluator.metric, evaluator.metric)
                raise ValueError(f"{where}: {entry.name} is an OGB data set, scored on its official scaffold split "
                                 f"by OGB's evaluator ({evaluator.metric}); the {self.protocol} protocol would score "
                                 f"it by {self.metric} on random folds, which no OGB result is comparable with. "
                                 f"Put it in a table of protocol: ogb (metric: {official})")
            if evaluator.num_tasks != 1:
                raise ValueError(f"{where}: {entry.name} has {evaluator.num_tasks} tasks; the supervised "
                                 "protocols train and score one classification task")
            if self.metric == "rocauc" and evaluator.metric != "rocauc":
                raise ValueError(f"{where}: {entry.name} is scored by {evaluator.metric} (OGB's evaluator), "
                                 "not by the rocauc of a binary task")
            if evaluator.metric not in ("rocauc", "acc"):
                raise ValueError(f"{where}: {entry.name} is a regression task ({evaluator.metric}); "
                                 "the supervised protocols train classifiers")
            if self.metric == "accuracy" and evaluator.metric != "acc":  # (the protocol is ogb here)
                raise ValueError(f"{where}: the ogb protocol scores with OGB's evaluator, which scores "
                                 f"{entry.name} by {evaluator.metric}; set metric: {evaluator.metric}")

    def _check_training(self) -> None:
        r"""Every row names a known data set and method with options it takes, and its training
        settings are :class:`gcl.train.TrainConfig` fields of valid values."""
        from gcl.data import get_spec
        from gcl.methods import check_method_options
        from gcl.train import TrainConfig

        fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"extra"}
        for entry in self.datasets:
            try:
                get_spec(entry.name)
            except ValueError as exc:
                raise ValueError(f"table {self.table!r}, {entry.label}: {exc}") from None
            for spec in self.methods:
                settings = self.settings(entry, spec)
                methods = [("", settings["method"], settings["options"])]
                if settings["pretrain"]:
                    pre = settings["pretrain"]
                    methods.append(("pretrain, ", pre.get("method"), pre.get("options", {})))
                for part, name, options in methods:
                    try:
                        check_method_options(str(name), options)
                    except ValueError as exc:
                        raise ValueError(f"table {self.table!r}, {entry.label} / {spec.label}, {part}{exc}") from None
                sections = [("train", settings["train"])]
                if settings["pretrain"]:
                    sections.append(("pretrain.train", {**settings["pretrain"].get("train", {})}))
                for where, train in sections:
                    unvalidated = where == "pretrain.train" or self.protocol in ("svc", "node-linear")
                    where = f"table {self.table!r}, {entry.label} / {spec.label}, {where}"
                    check_keys(where, train, fields)
                    if unvalidated and train.get("patience") is not None:
                        raise ValueError(f"{where}: patience needs validation scores, and this training has "
                                         "none (pre-training and the svc / node-linear protocols train on "
                                         "every graph without a validation part); leave patience out")
                    try:
                        TrainConfig.from_dict(train)
                    except (TypeError, ValueError) as exc:
                        raise ValueError(f"{where}: {exc}") from exc
                self._check_grid(entry, spec, settings)

    def _check_grid(self, entry: DatasetEntry, spec: MethodSpec, settings: dict[str, Any]) -> None:
        r"""The row's ``evaluation.grid`` maps training settings to lists of values, and every
        point of it, over the row's training settings, is a valid :class:`gcl.train.TrainConfig`:
        a bad grid is refused when the table loads, not in every task of the run."""
        from gcl.bench.protocols import grid_points
        from gcl.train import TrainConfig

        grid = settings["evaluation"].get("grid")
        if grid is None:
            return
        where = f"table {self.table!r}, {entry.label} / {spec.label}"
        try:
            points = grid_points(grid)
        except ValueError as exc:
            raise ValueError(f"{where}, {exc}") from None
        for point in points:
            try:
                TrainConfig.from_dict({**settings["train"], **point})
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{where}, evaluation.grid point {point}: {exc}") from None

    # -- derived settings ---------------------------------------------------
    def method(self, label: str) -> MethodSpec:
        r"""The method with this label."""
        for spec in self.methods:
            if spec.label == label:
                return spec
        raise ValueError(f"table {self.table!r} has no method {label!r}; it has {[m.label for m in self.methods]}")

    def dataset_entry(self, label: str) -> DatasetEntry:
        r"""The dataset row with this label, case-insensitive; else the one row that loads the data
        set of this name (``imdb-binary`` for the row ``IMDB-B: {name: IMDB-BINARY}``). A label wins
        over the load name of another row (``MUTAG`` is the row ``MUTAG``, not an earlier
        ``MUTAG-small: {name: MUTAG}``); a name several rows load, and none is labelled, is refused."""
        rows = self._rows_named(label)
        if len(rows) == 1:
            return rows[0]
        if rows:
            raise ValueError(f"table {self.table!r}: dataset {label!r} could be any of the rows "
                             f"{[d.label for d in rows]}, and none is labelled {label!r}; name one of them "
                             "by its label")
        raise ValueError(
            f"table {self.table!r} has no dataset {label!r}; it has {[d.label for d in self.datasets]}")

    def _rows_named(self, label: str) -> list[DatasetEntry]:
        r"""The rows :meth:`dataset_entry` chooses among: the row labelled ``label`` (the same label
        in another case only where no row has it exactly), else every row loading ``label``."""
        wanted = label.lower()
        for matches in ([d for d in self.datasets if d.label == label],
                        [d for d in self.datasets if d.label.lower() == wanted],
                        [d for d in self.datasets if d.name.lower() == wanted]):
            if matches:
                return matches[:1] if len({d.label for d in matches}) == 1 else matches
        return []

    def settings(self, entry: DatasetEntry, spec: MethodSpec) -> dict[str, Any]:
        r"""Everything that determines a score of ``spec`` on ``entry`` (seed and fold aside)."""
        override = entry.methods.get(spec.label, {})
        train = {**self.train, **spec.train, **entry.train, **override.get("train", {})}
        options = {**spec.options, **override.get("options", {})}
        return {
            "protocol": self.protocol,
            "metric": self.metric,
            "method": spec.method,
            "options": options,
            "train": train,
            "pretrain": spec.pretrain,
            "dataset": {"name": entry.name, **entry.dataset, **override.get("dataset", {})},
            "evaluation": {**self.evaluation, **entry.evaluation},
        }

    def variant(self, entry: DatasetEntry, spec: MethodSpec) -> str:
        r"""Short fingerprint of :meth:`settings`; scores of other settings never mix with these.
        How the data is held or found (``dataset: {mmap: true}``, ``root``, ``download``) changes no
        score and is left out, as are the training settings that only keep books
        (:data:`BOOKKEEPING_TRAIN`: ``progress``, ``checkpoint_every``, ...; ``seed`` is the task's).
        Settings count as written: ``1.0`` and ``1``, or a default written out (``epochs: 20``) and
        left out, give different fingerprints (and so rows that run again)."""
        from gcl.data.loaders import STORAGE_OPTIONS

        settings = self.settings(entry, spec)
        settings["dataset"] = {k: v for k, v in settings["dataset"].items() if k not in STORAGE_OPTIONS}
        settings["train"] = _scoring(settings["train"])
        if settings["pretrain"] and "train" in settings["pretrain"]:
            settings["pretrain"] = {**settings["pretrain"], "train": _scoring(settings["pretrain"]["train"])}
        text = json.dumps(settings, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def reduced(self) -> TableConfig:
        r"""The ``quick:`` version: fewer seeds, datasets, epochs and folds. The training settings
        of ``quick.train`` (default: one epoch) hold over an ``evaluation.grid``: the grid's values
        of those settings are dropped (and a grid left empty with them)."""
        quick = self.quick
        names = quick.get("datasets")
        datasets = [self._quick_dataset(n) for n in names] if names else self.datasets[:1]
        methods = [self.method(label) for label in quick["methods"]] if "methods" in quick else self.methods
        train_override = dict(quick.get("train", {"epochs": 1}))
        # pre-training is never validated: the quick run's early-stopping setting is not for it
        pretrain_override = {k: v for k, v in train_override.items() if k != "patience"}
        datasets = [
            DatasetEntry(d.label, d.name, d.dataset, {**d.train, **train_override},
                         {k: {**v, "train": {**v.get("train", {}), **train_override}} for k, v in d.methods.items()},
                         d.note, _without_grid_keys(d.evaluation, train_override, row=True))
            for d in datasets
        ]
        return TableConfig(
            table=self.table, title=self.title + " (quick)", protocol=self.protocol,
            methods=[MethodSpec(m.label, m.method, m.options, {**m.train, **train_override},
                                {**m.pretrain, "train": {**m.pretrain.get("train", {}), **pretrain_override}}
                                if m.pretrain else None)
                     for m in methods],
            datasets=datasets, seeds=quick.get("seeds", 1), aggregate=self.aggregate, metric=self.metric,
            evaluation=_without_grid_keys({**self.evaluation, **quick.get("evaluation", {})}, train_override),
            train={**self.train, **train_override}, paper=self.paper, quick={}, description=self.description,
            notes="Reduced smoke-test run (`--quick`); not comparable with the paper.", source=self.source,
            is_quick=True,
        )

    def _quick_dataset(self, label: str) -> DatasetEntry:
        r"""A dataset of ``quick.datasets``: the table's row, or a stand-in the table does not hold
        (a shipped dataset for a table whose data is not shipped) with the table's settings."""
        from gcl.data.registry import get_spec

        if self._rows_named(label):  # one row, or several that load it (refused, naming them)
            return self.dataset_entry(label)
        try:
            name = get_spec(label).name
        except ValueError:
            raise ValueError(f"table {self.table!r} has no dataset {label!r}; it has "
                             f"{[d.label for d in self.datasets]}, and {label!r} is no dataset gcl knows") from None
        return DatasetEntry(name, name)

    def restricted(self, datasets: list[str] | None = None, seeds: int | None = None,
                   methods: list[str] | None = None) -> TableConfig:
        r"""The same table on a subset of datasets and/or methods (labels), and/or another
        number of seeds. The settings of each row, and so its fingerprint, stay the same."""
        entries = [self.dataset_entry(n) for n in datasets] if datasets else self.datasets
        specs = [self.method(label) for label in methods] if methods else self.methods
        return TableConfig(**{**self.__dict__, "datasets": entries, "methods": specs,
                              "seeds": self.seeds if seeds is None else int(seeds)})


def _is_ogb_graph(name: str) -> bool:
    r"""Whether ``name`` is an OGB graph property prediction data set (``ogbg-...``)."""
    return name.lower().replace("_", "-").startswith("ogbg-")


def _without_grid_keys(evaluation: dict[str, Any], train: dict[str, Any], *, row: bool = False) -> dict[str, Any]:
    r"""``evaluation`` whose ``grid`` no longer selects the training settings ``train`` fixes
    (the quick run's), without the grid where nothing is left of it. A row's emptied grid stays,
    empty: it still replaces the table's grid for that row, as the row's grid did."""
    grid = evaluation.get("grid")
    if not isinstance(grid, dict) or not any(key in train for key in grid):
        return evaluation
    kept = {key: values for key, values in grid.items() if key not in train}
    reduced = {key: value for key, value in evaluation.items() if key != "grid"}
    return {**reduced, "grid": kept} if kept or row else reduced


def _scoring(train: dict[str, Any]) -> dict[str, Any]:
    r"""``train`` without its :data:`BOOKKEEPING_TRAIN` settings."""
    return {k: v for k, v in train.items() if k not in BOOKKEEPING_TRAIN}


def _load_options() -> tuple[str, ...]:
    r"""The keyword arguments of :func:`gcl.data.load_dataset` a table's ``dataset:`` may set."""
    import inspect

    from gcl.data import load_dataset

    return tuple(p for p in inspect.signature(load_dataset).parameters if p not in ("name", "transform"))


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a mapping (got {type(value).__name__})")
    return dict(value)


def _check_unsupervised_pretraining(where: str, pretrain: dict[str, Any]) -> None:
    r"""Pre-training sees every graph of the data set, the test graphs of each fold included:
    a method that reads labels would train on the test labels."""
    from gcl.methods.registry import SUPERVISED

    method = str(pretrain.get("method", ""))
    if method in SUPERVISED:
        raise ValueError(
            f"{where}: method {method!r} trains on labels, but pre-training runs on every graph of the data "
            "set, test graphs included; pre-train without labels (e.g. graphcl) or train the method as a row "
            "of its own")


def parse_config(content: dict[str, Any], *, table: str | None = None, source: Path | None = None) -> TableConfig:
    r"""Builds a :class:`TableConfig` from a parsed YAML mapping.

    Raises:
        ValueError: A missing or malformed section (the message names it).
    """
    content = copy.deepcopy(content)
    name = str(content.get("table") or table or "")
    if not name:
        raise ValueError("a table configuration needs a 'table:' name")
    check_keys(f"table {name!r}", content, _TOP_KEYS)
    quick = _mapping(content.get("quick"), "quick")
    check_keys(f"table {name!r}, quick", quick, ("seeds", "datasets", "methods", "train", "evaluation"))
    for key in ("train", "evaluation"):
        _mapping(quick.get(key), f"table {name!r}, quick.{key}")
    for key in ("protocol", "methods", "datasets"):
        if key not in content:
            raise ValueError(f"table {name!r}: missing '{key}:' section")
    methods = []
    for label, raw in _mapping(content["methods"], "methods").items():
        raw = _mapping(raw, f"methods.{label}")
        check_keys(f"table {name!r}, methods.{label}", raw, ("method", "options", "train", "pretrain"))
        if raw.get("pretrain") is not None:
            check_keys(f"table {name!r}, methods.{label}.pretrain", _mapping(raw["pretrain"], "pretrain"),
                       ("method", "options", "train"))
            _check_unsupervised_pretraining(f"table {name!r}, methods.{label}.pretrain", raw["pretrain"])
        methods.append(MethodSpec(
            label=str(label), method=str(raw.get("method", label)), options=_mapping(raw.get("options"), "options"),
            train=_mapping(raw.get("train"), "train"), pretrain=raw.get("pretrain")))
    datasets = []
    raw_datasets = content["datasets"]
    if isinstance(raw_datasets, list):
        raw_datasets = {str(d): {} for d in raw_datasets}
    load_options = _load_options()
    for label, raw in _mapping(raw_datasets, "datasets").items():
        raw = _mapping(raw, f"datasets.{label}")
        check_keys(f"table {name!r}, datasets.{label}", raw, ("name", "dataset", "train", "methods", "note",
                                                               "evaluation"))
        check_keys(f"table {name!r}, datasets.{label}.dataset", _mapping(raw.get("dataset"), "dataset"),
                   load_options)
        for method, override in _mapping(raw.get("methods"), f"datasets.{label}.methods").items():
            override = _mapping(override, f"datasets.{label}.methods.{method}")
            check_keys(f"table {name!r}, datasets.{label}.methods.{method}", override, ("options", "train", "dataset"))
            check_keys(f"table {name!r}, datasets.{label}.methods.{method}.dataset",
                       _mapping(override.get("dataset"), "dataset"), load_options)
        datasets.append(DatasetEntry(
            label=str(label), name=str(raw.get("name", label)), dataset=_mapping(raw.get("dataset"), "dataset"),
            train=_mapping(raw.get("train"), "train"), methods=_mapping(raw.get("methods"), "methods"),
            note=str(raw.get("note", "")).strip(),
            evaluation=_mapping(raw.get("evaluation"), f"datasets.{label}.evaluation")))
    config = TableConfig(
        table=name, title=str(content.get("title", name)), protocol=str(content["protocol"]),
        methods=methods, datasets=datasets, seeds=content.get("seeds", 5),
        aggregate=str(content.get("aggregate", "seeds")), metric=str(content.get("metric", "accuracy")),
        evaluation=_mapping(content.get("evaluation"), "evaluation"), train=_mapping(content.get("train"), "train"),
        paper=str(content.get("paper", "")), quick=_mapping(content.get("quick"), "quick"),
        description=str(content.get("description", "")).strip(), notes=str(content.get("notes", "")).strip(),
        source=source,
    )
    labels = [m.label for m in methods]
    for entry in datasets:
        for label in entry.methods:
            if label not in labels:
                raise ValueError(f"table {name!r}, datasets.{entry.label}.methods: {label!r} is not a method of "
                                 f"the table ({', '.join(labels)})")
    _check_quick(config)
    return config


def _check_seeds(where: str, seeds: object) -> None:
    r"""A number of seeds: an integer (not a bool) of at least 1; ``where`` starts the message."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"{where}: seeds must be an integer of at least 1 (got {seeds!r})")


def _check_quick(config: TableConfig) -> None:
    r"""The ``quick:`` section names datasets and methods of the table, a number of seeds and an
    ``evaluation.grid`` of the right form: a mistake in them is refused when the table loads, not
    when ``--quick`` runs (which checks the quick version's settings as those of any table)."""
    from gcl.bench.protocols import grid_points

    quick = config.quick
    for key, lookup in (("datasets", config._quick_dataset), ("methods", config.method)):
        if key not in quick:
            continue
        names = quick[key]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"table {config.table!r}, quick.{key} must be a list of the table's {key} "
                             f"(got {names!r})")
        for label in names:
            try:
                lookup(label)
            except ValueError as exc:
                raise ValueError(f"quick.{key}: {exc}") from None
    _check_seeds(f"table {config.table!r}, quick", quick.get("seeds", 1))
    evaluation = quick.get("evaluation")
    try:
        grid_points(evaluation.get("grid") if isinstance(evaluation, dict) else None)
    except ValueError as exc:
        raise ValueError(f"table {config.table!r}, quick.{exc}") from None


def load_config(path: str | os.PathLike[str]) -> TableConfig:
    r"""Reads a table configuration from a YAML file."""
    file = Path(path)
    content = read_yaml(file) or {}
    if not isinstance(content, dict):
        raise ValueError(f"{file}: expected a mapping at the top level")
    return parse_config(content, table=file.stem, source=file)


def benchmarks_dir() -> Path:
    r"""The ``benchmarks/`` folder: ``$GCL_BENCHMARKS``, else ``./benchmarks``, else the one
    next to the installed package (a source checkout)."""
    env = os.environ.get("GCL_BENCHMARKS")
    if env:
        return Path(env).expanduser()
    local = Path.cwd() / "benchmarks"
    if (local / "configs").is_dir():
        return local
    return Path(__file__).resolve().parents[2] / "benchmarks"


def find_config(table: str, root: str | os.PathLike[str] | None = None) -> Path:
    r"""The configuration file of ``table`` (a name like ``graphcl-tu`` or a path)."""
    candidate = Path(table)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    folder = Path(root) if root is not None else benchmarks_dir() / "configs"
    path = folder / f"{table}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        raise ValueError(f"no configuration for table {table!r} in {folder}; known tables: {known}")
    return path
