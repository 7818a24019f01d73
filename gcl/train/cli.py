r"""``gcl train METHOD --dataset NAME [--config FILE] [--out DIR] [--nproc N]``.

Data-parallel training: ``--nproc N`` starts ``N`` local processes; under
``torchrun --nproc-per-node=N -m gcl.cli train ...`` (one or several nodes)
the command joins the launcher's process group instead (see docs/scaling.md).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import inspect
import json
import os
from pathlib import Path
from typing import Any

import torch.distributed as dist


def non_empty_path(value: str) -> Path:
    r"""An argparse type: a path, refusing an empty string (which ``Path`` reads as the current
    folder, e.g. from an unset shell variable)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("empty path (an unset variable?); give a folder, '.' for this one")
    return Path(value)


def add_parser(sub: Any) -> None:
    from gcl.methods import BUILDERS

    parser = sub.add_parser(
        "train", help="train a method on a dataset and evaluate its embeddings",
        description="Train METHOD on a dataset, then evaluate: the 10-fold SVC protocol for graph-level "
                    "self-supervised methods, a logistic-regression probe on random 10/10/80 splits for "
                    "node-level ones.")
    parser.add_argument("method", choices=sorted(BUILDERS), help="method to train")
    parser.add_argument("--dataset", default="MUTAG", help="dataset name (default: MUTAG)")
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML file with 'method:', 'dataset:' and 'train:' sections")
    parser.add_argument("--out", type=non_empty_path, default=None,
                        help="folder for checkpoints and results; a run with the same folder resumes")
    parser.add_argument("--restart", action="store_true",
                        help="start over in --out instead of resuming its checkpoint (which is replaced)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--eval", choices=("auto", "svc", "linear", "none"), default="auto",
                        help="evaluation of the frozen embeddings after training (default: auto: SVC for "
                             "graph-level, linear probe for node-level methods, none for the supervised ones, "
                             "which refuse svc and linear)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads per process on CPU (default: 1; small graph batches gain "
                             "nothing from more, and oversubscribed cores slow them down a lot)")
    parser.add_argument("--nproc", type=int, default=1,
                        help="data-parallel processes on this machine; --batch-size stays the global "
                             "batch (default: 1; use torchrun for several nodes)")
    parser.add_argument("--backend", choices=("gloo", "nccl"), default=None,
                        help="torch.distributed backend (default: nccl on CUDA, gloo on CPU)")
    parser.add_argument("--view-workers", type=int, default=None,
                        help="background processes that collate batches and draw their augmented views "
                             "ahead of each step (default: 0, in the training process; Linux)")
    parser.add_argument("--view-timeout", type=float, default=None,
                        help="with --view-workers: seconds to wait for a step's views before stopping "
                             "(default: no limit)")
    parser.add_argument("--mmap", action="store_true",
                        help="memory-map the dataset's collated storage (built once in the cache): the "
                             "processes of a machine share one copy, and data larger than memory pages in")
    parser.add_argument("--sync-batchnorm", action="store_true",
                        help="batch-norm statistics over the global batch (CUDA, several processes)")
    parser.set_defaults(func=cmd_train)


def _load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    if path.is_dir() or not path.exists():  # (pipes and /dev/fd/N are read as files)
        raise FileNotFoundError(f"--config {path}: {'is a folder, not' if path.is_dir() else 'no such'} YAML file")
    from gcl.train.config import check_keys, read_yaml

    content = read_yaml(path) or {}
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a mapping with 'method', 'dataset' and 'train' sections")
    check_keys(str(path), content, _SECTIONS, what="section")
    for section in _SECTIONS:
        if content.get(section) is None:  # an empty section (`train:` and nothing under it)
            content[section] = {}
        if not isinstance(content[section], dict):
            raise ValueError(f"{path}: the {section!r} section must be a mapping "
                             f"(got {type(content[section]).__name__})")
    return content


_SECTIONS = ("method", "dataset", "train")
#: Training settings that ``gcl train`` starts from (the config and the flags override them):
#: GraphCL's unsupervised TU setting, GRACE's / GCA's Cora settings, and Graph Barlow Twins' Cora
#: run of the node table (its lr and weight decay, 300 of the paper's 1000 epochs), as
#: ``benchmarks/configs/node-gca.yaml`` runs them; other methods take TrainConfig's.
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "graphcl": {"epochs": 20, "batch_size": 128, "lr": 0.01},
    "grace": {"epochs": 200, "lr": 0.0005, "weight_decay": 0.00001},
    "gca": {"epochs": 200, "lr": 0.0005, "weight_decay": 0.00001},
    "gbt": {"epochs": 300, "lr": 0.0005, "weight_decay": 0.00001, "optimizer": "adamw"},
    "adaptive-gbt": {"epochs": 300, "lr": 0.0005, "weight_decay": 0.00001, "optimizer": "adamw"},
}
#: load_dataset arguments a config cannot give: the name is --dataset, a transform is Python code
_NOT_DATASET_SETTINGS = {"name", "transform"}


def _refuse_unknown(path: Path | None, section: str, values: Any, known: set[str]) -> None:
    from gcl.train.config import check_keys

    if not isinstance(values, dict):
        raise ValueError(f"{path}: the {section!r} section must be a mapping (got {type(values).__name__})")
    check_keys(str(path), values, known, what=f"{section} setting")


def _settings(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    from gcl.data import load_dataset
    from gcl.train import TrainConfig

    if getattr(args, "config_content", None) is None:
        # read once: a config from a pipe or /dev/stdin has nothing left for a second read, and the
        # processes of --nproc get the parsed content with the other arguments
        args.config_content = _load_config(args.config)
    content = copy.deepcopy(args.config_content)
    train_values = dict(content.get("train", {}))
    known = {f.name for f in dataclasses.fields(TrainConfig)} - {"extra"}
    _refuse_unknown(args.config, "train", train_values, known)
    _refuse_unknown(args.config, "dataset", content.get("dataset", {}),
                    set(inspect.signature(load_dataset).parameters) - _NOT_DATASET_SETTINGS)
    for key in ("epochs", "batch_size", "lr", "seed", "device", "view_workers", "view_timeout"):
        value = getattr(args, key)
        if value is not None:
            train_values[key] = value
    if args.quiet:
        train_values["progress"] = False
    if args.sync_batchnorm:
        train_values["sync_batchnorm"] = True
    if train_values.get("patience") is not None:
        raise ValueError(f"{args.config}: 'patience' (early stopping) needs validation scores, and gcl train "
                         "trains on the whole dataset without a validation part; leave it out (early stopping "
                         "is part of the benchmark's supervised protocols, gcl reproduce, and of "
                         "gcl.train.fit(..., validate=...))")
    for key, value in METHOD_DEFAULTS.get(args.method, {}).items():
        train_values.setdefault(key, value)
    return content, TrainConfig.from_dict(train_values)


def _dataset_options(args: argparse.Namespace, content: dict[str, Any]) -> dict[str, Any]:
    r"""``load_dataset`` keyword arguments: the config's ``dataset`` section; node-level methods
    row-normalise the features unless it says otherwise (as GRACE's, GCA's and G-BT's code and
    the node table load every set)."""
    from gcl.methods import LEVEL

    options = dict(content.get("dataset", {}))
    if args.mmap:
        options["mmap"] = True
    if LEVEL.get(args.method) == "node":
        options.setdefault("normalize_features", True)
    return options


#: Graph-level methods whose GIN takes OGB's atom and bond embeddings (``ogb_mol``).
_OGB_MOL_METHODS = frozenset({"graphcl", "lcgnn", "supervised", "adaptive-bt"})


def _method_options(method: str, content: dict[str, Any], dataset: Any) -> dict[str, Any]:
    r"""The method's options: the config's ``method`` section, and on an OGB molecule set (integer
    atom features) what the graph-level methods' GIN needs there unless the section says otherwise
    (or chooses another encoder, or edge features of its own, ``edge_dim``):
    OGB's atom and bond embeddings (``ogb_mol: true``), and for GraphCL views without attribute
    masking, which needs floating-point features (``[identity, random3]``, as the ogb-molhiv
    table pre-trains)."""
    options = dict(content.get("method", {}))
    name = str(getattr(getattr(dataset, "spec", None), "name", ""))
    x = getattr(dataset[0], "x", None) if len(dataset) else None
    if method in _OGB_MOL_METHODS and name.startswith("ogbg-mol") and x is not None \
            and not x.is_floating_point() and options.get("encoder", "gin") == "gin" and "edge_dim" not in options:
        options.setdefault("ogb_mol", True)
        if method == "graphcl":
            options.setdefault("augmentations", ["identity", "random3"])
    return options


def cmd_train(args: argparse.Namespace) -> int:
    from gcl.train.distributed import init_distributed, launch, shutdown_distributed

    if args.nproc < 1:
        raise ValueError(f"--nproc must be at least 1 (got {args.nproc})")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1 (got {args.threads})")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; give a folder for the checkpoints and result.json")
    from gcl.methods import SUPERVISED

    if args.method in SUPERVISED and args.eval in ("svc", "linear"):
        # the encoder learnt every graph's label, the test folds' too: their score would be leaked
        raise ValueError(f"--eval {args.eval} scores frozen embeddings on folds of the training data, whose "
                         f"labels {args.method} trained on; evaluate supervised methods by cross-validation "
                         "with training restricted to the training folds: gcl reproduce lcgnn-tu")
    content, config = _settings(args)
    device = config.resolve_device()  # an unknown or missing device is named before anything runs
    if args.nproc > 1 and device.type == "cuda" and device.index is not None and args.backend != "gloo":
        # NCCL refuses two ranks on one GPU, and does so only once the processes have started
        raise ValueError(f"--device {device} puts all {args.nproc} processes on one GPU; with --nproc use "
                         "--device cuda (process k on GPU k) and CUDA_VISIBLE_DEVICES to choose the GPUs")
    if args.backend == "nccl" and device.type != "cuda":
        raise ValueError(f"--backend nccl runs on CUDA devices (the device is {device}); leave --backend out "
                         "or use gloo on the CPU")
    from gcl.methods import check_method_options

    check_method_options(args.method, content.get("method", {}))  # a typo, before the dataset loads
    if args.nproc > 1:
        if "WORLD_SIZE" in os.environ:
            raise ValueError("--nproc starts its own processes; under torchrun leave it out")
        from gcl.data import load_dataset

        # processed caches are written once here, before the workers read them
        load_dataset(args.dataset, **_dataset_options(args, content))
        return int(launch(_train, args.nproc, (args,), backend=args.backend, device=config.device))
    # under torchrun (RANK / WORLD_SIZE set) join its group, and leave only a group joined here
    joined = not _in_group() and init_distributed(args.backend, device=config.device)
    try:
        return _train(args)
    finally:
        if joined:
            shutdown_distributed()


def _in_group() -> bool:
    return dist.is_available() and dist.is_initialized()


def _train(args: argparse.Namespace) -> int:
    import torch

    if args.threads is not None and args.threads > 0:
        torch.set_num_threads(args.threads)
    from gcl.data import load_dataset
    from gcl.methods import LEVEL, SUPERVISED, embed_dataset
    from gcl.train import run
    from gcl.train.distributed import is_main_process, main_process_first

    content, config = _settings(args)
    with main_process_first():
        dataset = load_dataset(args.dataset, **_dataset_options(args, content))
    main = is_main_process()
    world = dist.get_world_size() if _in_group() else 1
    if main:
        print(f"{args.method} on {args.dataset}: {len(dataset)} graph(s), {dataset.num_features} features; "
              f"{config.epochs} epochs, batch {config.batch_size}"
              f"{f' over {world} processes' if world > 1 else ''}, lr {config.lr}, seed {config.seed}")
    if args.restart and args.out is not None and main:
        (args.out / "result.json").unlink(missing_ok=True)  # the earlier run's, not this one's
    result = run(args.method, dataset, config=config, method_options=_method_options(args.method, content, dataset),
                 out_dir=args.out, resume=not args.restart,
                 run_key={"dataset_options": _dataset_options(args, content)})
    if not main:
        return 0  # rank 0 reports, evaluates and writes the results
    last = result.history[-1]
    print(f"trained {len(result.history)} epochs: final loss {last['loss']:.4f}, "
          f"{sum(r['seconds'] for r in result.history):.1f} s")

    mode = args.eval
    level = LEVEL[args.method]
    if mode == "auto":
        mode = "none" if args.method in SUPERVISED else ("svc" if level == "graph" else "linear")
    report: dict[str, Any] = {"method": args.method, "dataset": args.dataset, "history": result.history}
    if mode != "none":
        import numpy as np

        from gcl.eval import LinearProbe, SVCEvaluator, random_splits

        target = dataset[0] if level == "node" else dataset
        features, labels = embed_dataset(result.method, target)
        official = level == "graph" and callable(getattr(dataset, "get_idx_split", None))
        if official:  # OGB: its metric on its official split, not accuracy on random folds
            from gcl.eval import OGBLinearProbe

            evaluation = OGBLinearProbe(args.dataset).evaluate(features, labels, dataset.get_idx_split())
            label = f"official-split test {evaluation.metric} of a linear probe (C chosen on the validation graphs)"
        elif mode == "svc":
            evaluation = SVCEvaluator(random_state=config.seed).evaluate(features, labels)
            label = "10-fold SVC accuracy"
        else:
            # among the labelled items only (-1: no label), which the probe must neither learn nor score
            splits = random_splits(len(labels), num_splits=20, random_state=config.seed,
                                   among=np.flatnonzero(labels >= 0))
            # embeddings scaled to unit norm, as GRACE's and G-BT's evaluation and the node table do
            evaluation = LinearProbe(random_state=config.seed, normalize=True).evaluate(features, labels, splits)
            label = "linear-probe accuracy (unit-norm embeddings, 20 random 10/10/80 splits)"
        print(f"{label}: {evaluation} %")
        report["evaluation"] = evaluation.to_dict()
    elif args.method in SUPERVISED:
        print("supervised methods are evaluated by cross-validation: see `gcl reproduce lcgnn-tu`")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "result.json").write_text(json.dumps(report, indent=2))
    return 0
