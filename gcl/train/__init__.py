r"""The one training loop: seeding, progress, checkpoints with exact resume.

The common case is two lines:

>>> from gcl.train import run
>>> result = run("graphcl", "MUTAG", epochs=20)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch_geometric.data import Data, Dataset

from gcl.train.config import TrainConfig
from gcl.train.loop import Trainer, TrainingDiverged, TrainResult, fit, loss_of
from gcl.train.seed import seed_everything

__all__ = [
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "fit",
    "loss_of",
    "run",
    "seed_everything",
]


def run(method: str, dataset: str | Dataset | Data = "MUTAG", *, config: TrainConfig | None = None,
        method_options: dict[str, Any] | None = None, dataset_options: dict[str, Any] | None = None,
        out_dir: str | os.PathLike[str] | Path | None = None, run_key: dict[str, Any] | None = None,
        **train_overrides: Any) -> TrainResult:
    r"""Load a dataset by name, build a method by name and train it.

    Args:
        method (str): A name accepted by :func:`gcl.methods.build_method`.
        dataset (str, Dataset or Data): A name for :func:`gcl.data.load_dataset`
            or loaded data. Node-level methods train on the dataset's single graph
            (a dataset of several graphs is refused), graph-level methods on a
            dataset of several graphs (a single graph is refused).
        config (TrainConfig, optional): Training settings.
        method_options (dict, optional): Hyper-parameters of the method builder.
        dataset_options (dict, optional): Keyword arguments of ``load_dataset``.
        out_dir (path, optional): Checkpoint folder (resumed when it has one,
            and only when it holds this run: the same method name and
            options, dataset and loading options, and training settings).
        run_key (dict, optional): Entries added to (or replacing) the run's
            identity kept in the checkpoints: ``method``, ``method_options``,
            ``dataset`` (the name, or loaded data's ``name``) and
            ``dataset_options`` (e.g. how data passed loaded was loaded).
        **train_overrides: Override fields of ``config`` (``epochs=5`` ...).
    """
    from gcl.data import load_dataset
    from gcl.data.loaders import identifying_options
    from gcl.methods import LEVEL, build_method
    from gcl.methods.registry import check_level, non_default_options
    from gcl.train.seed import seed_everything

    data = load_dataset(dataset, **(dataset_options or {})) if isinstance(dataset, str) else dataset
    if method.lower() in LEVEL:
        check_level(method, data)
    base = config if config is not None else TrainConfig()
    seed_everything(int(train_overrides.get("seed", base.seed)))
    built = build_method(method, data, **(method_options or {}))
    train_data: Dataset | Data = data
    if LEVEL.get(method.lower()) == "node" and isinstance(data, Dataset):
        train_data = data[0]
    # the registry's name where gcl loaded the data (aliases and OGB's ogbg_molhiv spelling agree)
    spec = getattr(data, "spec", None)
    name = getattr(spec, "name", None) or getattr(data, "name", None) or type(data).__name__
    key = {"method": method.lower(), "method_options": non_default_options(method, dict(method_options or {})),
           "dataset": str(name).lower(),
           "dataset_options": dataset_options or {}, **(run_key or {})}
    # how the data is held or found names no run, nor does an option written out at its default
    key["dataset_options"] = identifying_options(key["dataset_options"])
    return fit(built, train_data, base, out_dir=out_dir, run_key=key, **train_overrides)
