r"""``gcl train METHOD --dataset NAME [--config FILE] [--out DIR]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml


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
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for checkpoints and results; a run with the same folder resumes")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--eval", choices=("auto", "svc", "linear", "none"), default="auto",
                        help="evaluation after training (default: auto)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_train)


def _load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    content = yaml.safe_load(path.read_text()) or {}
    if not isinstance(content, dict):
        raise SystemExit(f"{path}: expected a mapping with 'method', 'dataset' and 'train' sections")
    return content


def cmd_train(args: argparse.Namespace) -> int:
    from gcl.data import load_dataset
    from gcl.methods import LEVEL, SUPERVISED, embed_dataset
    from gcl.train import TrainConfig, run

    content = _load_config(args.config)
    train_values = dict(content.get("train", {}))
    for key in ("epochs", "batch_size", "lr", "seed", "device"):
        value = getattr(args, key)
        if value is not None:
            train_values[key] = value
    if args.quiet:
        train_values["progress"] = False
    method_defaults = {"graphcl": {"epochs": 20, "batch_size": 128, "lr": 0.01}}
    for key, value in method_defaults.get(args.method, {}).items():
        train_values.setdefault(key, value)
    config = TrainConfig.from_dict(train_values)

    dataset = load_dataset(args.dataset, **content.get("dataset", {}))
    print(f"{args.method} on {args.dataset}: {len(dataset)} graph(s), {dataset.num_features} features; "
          f"{config.epochs} epochs, batch {config.batch_size}, lr {config.lr}, seed {config.seed}")
    result = run(args.method, dataset, config=config, method_options=content.get("method", {}),
                 out_dir=args.out)
    last = result.history[-1]
    print(f"trained {len(result.history)} epochs: final loss {last['loss']:.4f}, "
          f"{sum(r['seconds'] for r in result.history):.1f} s")

    mode = args.eval
    level = LEVEL[args.method]
    if mode == "auto":
        mode = "none" if args.method in SUPERVISED else ("svc" if level == "graph" else "linear")
    report: dict[str, Any] = {"method": args.method, "dataset": args.dataset, "history": result.history}
    if mode != "none":
        from gcl.eval import LinearProbe, SVCEvaluator, random_splits

        target = dataset[0] if level == "node" else dataset
        features, labels = embed_dataset(result.method, target)
        if mode == "svc":
            evaluation = SVCEvaluator(random_state=config.seed).evaluate(features, labels)
        else:
            splits = random_splits(len(labels), num_splits=20, random_state=config.seed)
            evaluation = LinearProbe(random_state=config.seed).evaluate(features, labels, splits)
        print(f"{mode.upper()} accuracy ({evaluation.protocol.split('.')[0]}): {evaluation} %")
        report["evaluation"] = evaluation.to_dict()
    elif args.method in SUPERVISED:
        print("supervised methods are evaluated by cross-validation: see `gcl reproduce lcgnn-tu`")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "result.json").write_text(json.dumps(report, indent=2))
    return 0
