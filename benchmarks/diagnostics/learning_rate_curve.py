r"""Training curves of one supervised table row at several learning rates, without the test fold.

For a ``supervised-kfold`` table (e.g. ``lcgnn-tu``), this trains the table's
configuration of one method on the training part of one fold of the table's own
split, with early stopping switched off, once per learning rate, and records
after every epoch (model in evaluation mode, as the benchmark scores it):

* the validation cross-entropy and accuracy (the fold's validation part);
* the accuracy on the training part itself.

The test part of the fold is never scored. The report lists, per learning rate,
the epoch of lowest validation loss (what the table's early stopping keeps), the
validation accuracy there, and how much the training-part accuracy moves from one
epoch to the next. It is a diagnostic only; nothing it computes enters a results
table.

Usage::

    GCL_DATA=../shared/datasets python benchmarks/diagnostics/learning_rate_curve.py \
        --table lcgnn-tu --dataset NCI1 --method supervised-gin --lrs 0.005 0.001 \
        --markdown benchmarks/results/lcgnn-tu-lr.md
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _diagnostic import emit, provenance, row_settings


def curve(table: str, dataset: str, method_label: str, fold: int, lr: float, seed: int,
          epochs: int | None = None) -> list[dict[str, float]]:
    from gcl.bench.protocols import Context, _train_config, mean_cross_entropy, predict
    from gcl.eval import stratified_kfold_indices
    from gcl.methods import build_method
    from gcl.train import fit, seed_everything

    settings = row_settings(table, dataset, method_label, "supervised-kfold")
    data = Context(Path(".")).load(settings["dataset"])
    labels = data.y.view(len(data), -1)[:, 0]
    splits = stratified_kfold_indices(labels, n_splits=int(settings["evaluation"].get("n_splits", 10)),
                                      val_size=float(settings["evaluation"].get("val_size", 0.1)),
                                      random_state=seed)
    split = splits[fold]
    train_part, val_part = data[split.train], data[split.val]  # the test part stays untouched
    seed_everything(seed * 1000 + fold)  # as the benchmark seeds this fold
    method = build_method(settings["method"], data, **settings["options"])
    rows: list[dict[str, float]] = []

    def validate(m: torch.nn.Module) -> float:
        y, logits = predict(m, val_part)
        train_y, train_logits = predict(m, train_part)
        loss = mean_cross_entropy(y, logits)
        rows.append({"epoch": len(rows) + 1, "val_loss": loss, "val_acc": float((logits.argmax(1) == y).mean()),
                     "train_acc": float((train_logits.argmax(1) == train_y).mean())})
        return -loss

    train = {**settings["train"], "lr": lr, "patience": None}
    if epochs is not None:
        train["epochs"] = epochs
    fit(method, train_part, _train_config(train, seed * 1000 + fold, "cpu"), validate=validate)
    return rows


def summary(rows: list[dict[str, float]]) -> dict[str, float]:
    best = min(rows, key=lambda r: r["val_loss"])
    jumps = [abs(b["train_acc"] - a["train_acc"]) for a, b in itertools.pairwise(rows)]
    tail = rows[len(rows) // 2:]
    return {"best_epoch": best["epoch"], "best_val_loss": best["val_loss"], "val_acc_at_best": best["val_acc"],
            "train_acc_at_best": best["train_acc"], "final_train_acc": rows[-1]["train_acc"],
            "median_jump": statistics.median(jumps) if jumps else 0.0, "max_jump": max(jumps, default=0.0),
            "min_train_acc_second_half": min(r["train_acc"] for r in tail)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--table", default="lcgnn-tu")
    parser.add_argument("--dataset", default="NCI1")
    parser.add_argument("--method", default="supervised-gin")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.005, 0.001])
    parser.add_argument("--epochs", type=int, default=None, help="default: the table's")
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.time()
    results = {}
    for lr in args.lrs:
        rows = curve(args.table, args.dataset, args.method, args.fold, lr, args.seed, args.epochs)
        results[lr] = (rows, summary(rows))
        print(f"lr {lr}: {results[lr][1]}", flush=True)
    lines = [f"# {args.table}: {args.method} on {args.dataset}, training curves by learning rate (diagnostic)", "",
             provenance(started), "",
             f"Fold {args.fold} of the table's stratified 10-fold split (seed {args.seed}): training on its training "
             "part with the table's settings except the learning rate, early stopping off; after every epoch the model "
             "is scored in evaluation mode on the fold's validation part and on its own training part. **The test "
             "part is never scored.** Nothing here enters a results table.", "",
             "| lr | epoch of lowest val. loss | val. loss there | val. acc. there | train acc. there | "
             "train acc. at the end | median / max epoch-to-epoch change of train acc. | lowest train acc., 2nd half |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for lr, (_, s) in results.items():
        lines.append(f"| {lr:g} | {s['best_epoch']:.0f} | {s['best_val_loss']:.3f} | {100 * s['val_acc_at_best']:.1f} | "
                     f"{100 * s['train_acc_at_best']:.1f} | {100 * s['final_train_acc']:.1f} | "
                     f"{100 * s['median_jump']:.1f} / {100 * s['max_jump']:.1f} | "
                     f"{100 * s['min_train_acc_second_half']:.1f} |")
    lines += ["", "Every epoch (validation loss / validation accuracy % / training-part accuracy %):", ""]
    for lr, (rows, _) in results.items():
        cells = "; ".join(f"{r['epoch']:.0f}: {r['val_loss']:.3f} / {100 * r['val_acc']:.0f} / {100 * r['train_acc']:.0f}"
                          for r in rows)
        lines += [f"- lr {lr:g}: {cells}", ""]
    text = "\n".join(lines).rstrip() + "\n"
    emit(text, args.markdown)


if __name__ == "__main__":
    main()
