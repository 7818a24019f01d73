r"""How much of a node-table row's score is the probe: one run, several linear probes.

Trains one row of a ``node-linear`` table (e.g. ``node-gca`` / Cora / ``grace``)
exactly as ``gcl reproduce`` does for one seed, then scores the same frozen
embeddings with:

* the table's probe (``evaluation`` of the config: logistic regression, ``C``
  chosen on the validation nodes of each of the random 10/10/80 splits);
* the same probe with GRACE's wider grid of ``C`` (``2^-10 … 2^9``);
* GRACE's own evaluation (``eval.py`` of its code): unit-norm embeddings,
  one-vs-rest ``liblinear`` logistic regressions, ``C`` over ``2^-10 … 2^9``
  by 5-fold cross-validation on 10 % training nodes, micro-F1 (accuracy) on the
  other 90 %; repeated over as many random splits.

``C`` is never chosen on the test nodes in any of the three. It is a diagnostic:
nothing it computes enters a results table.

Usage::

    GCL_DATA=../shared/datasets python benchmarks/diagnostics/probe_grid.py \
        --table node-gca --dataset Cora --method grace --markdown benchmarks/results/node-gca-probe.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _diagnostic import emit, provenance, row_settings

GRACE_GRID = tuple(float(2.0**k) for k in range(-10, 10))


def embeddings(table: str, dataset: str, method_label: str, seed: int, epochs: int | None) -> tuple[Any, Any, dict]:
    r"""The frozen node embeddings and labels of one seed of the row, trained as the benchmark does."""
    from gcl.bench.protocols import Context, _train_config
    from gcl.methods import build_method, embed_dataset
    from gcl.train import fit, seed_everything

    settings = row_settings(table, dataset, method_label, "node-linear")
    target = Context(Path(".")).load(settings["dataset"])[0]
    train = dict(settings["train"])
    if epochs is not None:
        train["epochs"] = epochs
    seed_everything(seed)
    method = build_method(settings["method"], target, **settings["options"])
    result = fit(method, target, _train_config(train, seed, "cpu"))
    features, labels = embed_dataset(result.method, target)
    return features, labels, settings["evaluation"]


def grace_protocol(features: np.ndarray, labels: np.ndarray, runs: int, seed: int) -> list[float]:
    r"""GRACE's ``label_classification``: accuracy (micro-F1) on 90 % of the nodes per run."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, train_test_split
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import normalize

    x = normalize(features, norm="l2")
    scores = []
    for run in range(runs):
        x_train, x_test, y_train, y_test = train_test_split(x, labels, test_size=0.9, random_state=seed * 1000 + run)
        search = GridSearchCV(OneVsRestClassifier(LogisticRegression(solver="liblinear")),
                              {"estimator__C": list(GRACE_GRID)}, cv=5)
        search.fit(x_train, y_train)
        scores.append(float((search.predict(x_test) == y_test).mean()))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--table", default="node-gca")
    parser.add_argument("--dataset", default="Cora")
    parser.add_argument("--method", default="grace")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="default: the table's")
    parser.add_argument("--splits", type=int, default=None, help="default: the table's number of splits")
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.time()
    from gcl.bench.config import PROBE_KEYS
    from gcl.eval import LinearProbe, random_splits

    features, labels, evaluation = embeddings(args.table, args.dataset, args.method, args.seed, args.epochs)
    num_splits = args.splits or int(evaluation.get("num_splits", 20))
    splits = random_splits(len(labels), num_splits=num_splits, random_state=args.seed)
    options = {k: evaluation[k] for k in PROBE_KEYS if k in evaluation}
    rows: list[tuple[str, list[float]]] = []
    table_probe = LinearProbe(random_state=args.seed, **options)
    rows.append((f"the table's probe (C in {', '.join(f'{c:g}' for c in table_probe.C_grid)})",
                 list(table_probe.evaluate(features, labels, splits).fold_scores)))
    wide = LinearProbe(random_state=args.seed, **{**options, "C_grid": GRACE_GRID})
    rows.append(("the table's probe with GRACE's grid (C in 2^-10 ... 2^9)",
                 list(wide.evaluate(features, labels, splits).fold_scores)))
    rows.append(("GRACE's evaluation (10 % train, 5-fold CV for C, 90 % test, one-vs-rest liblinear)",
                 grace_protocol(np.asarray(features), np.asarray(labels), num_splits, args.seed)))
    for name, scores in rows:
        print(f"{name}: {100 * statistics.mean(scores):.2f} ± {100 * statistics.pstdev(scores):.2f}", flush=True)

    lines = [f"# {args.table}: {args.method} on {args.dataset}, one run scored by several probes (diagnostic)", "",
             provenance(started), "",
             f"One pre-training run (seed {args.seed}) with the table's settings; its frozen embeddings scored by "
             f"each probe over {num_splits} random splits. No probe chooses `C` on its test nodes. Nothing here "
             "enters a results table.", "",
             "| probe | accuracy (mean ± std over splits, %) |", "|---|---:|"]
    for name, scores in rows:
        lines.append(f"| {name} | {100 * statistics.mean(scores):.2f} ± {100 * statistics.pstdev(scores):.2f} |")
    text = "\n".join(lines) + "\n"
    emit(text, args.markdown)


if __name__ == "__main__":
    main()
