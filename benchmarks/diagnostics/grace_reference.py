r"""Is a node-table GRACE gap gcl's or the method's? gcl's GRACE beside a plain PyG loop.

Trains GRACE on one dataset of the ``node-gca`` table two ways, for the same
seeds:

* **gcl**: the table's row, as ``gcl reproduce`` trains it (``build_method`` +
  ``fit``);
* **plain PyG**: the method written out with PyG's own parts only, as the
  GRACE paper and its code describe it (two ``GCNConv`` layers F → 2d → d, an
  activation after each; a Linear–ELU–Linear head; per view
  ``torch_geometric.utils.dropout_edge`` on every stored edge and zeroed
  feature columns drawn per column; the symmetric loss with intra-view
  negatives, each direction
  :math:`-\log \frac{e^{s(u_n, v_n)/\tau}}{\sum_m e^{s(u_n, v_m)/\tau} + \sum_{m \ne n} e^{s(u_n, u_m)/\tau}}`;
  full-batch Adam for the row's epochs; embeddings of the un-augmented graph).

Both sets of frozen embeddings are scored by the table's probe on the same
random 10/10/80 splits (``C`` chosen on the validation nodes). If the two
agree, a gap to the published number is not in gcl's implementation. It is a
diagnostic: nothing it computes enters a results table.

Usage::

    GCL_DATA=../shared/datasets python benchmarks/diagnostics/grace_reference.py \
        --seeds 0 1 2 3 4 --markdown benchmarks/results/node-gca-grace-reference.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _diagnostic import emit, provenance, row_settings


class PlainGRACE(nn.Module):
    r"""GRACE from PyG parts only (no gcl module), for comparison."""

    def __init__(self, in_channels: int, hidden: int, projection: int, temperature: float) -> None:
        super().__init__()
        from torch_geometric.nn import GCNConv

        self.conv1 = GCNConv(in_channels, 2 * hidden)
        self.conv2 = GCNConv(2 * hidden, hidden)
        self.fc1 = nn.Linear(hidden, projection)
        self.fc2 = nn.Linear(projection, hidden)
        self.temperature = temperature

    def encode(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x, edge_index)), edge_index))

    def direction(self, h1: Tensor, h2: Tensor) -> Tensor:
        h1, h2 = F.normalize(h1), F.normalize(h2)
        within = torch.exp(h1 @ h1.t() / self.temperature)
        across = torch.exp(h1 @ h2.t() / self.temperature)
        return -torch.log(across.diagonal() / (within.sum(1) - within.diagonal() + across.sum(1)))

    def loss(self, z1: Tensor, z2: Tensor) -> Tensor:
        h1 = self.fc2(F.elu(self.fc1(z1)))
        h2 = self.fc2(F.elu(self.fc1(z2)))
        return 0.5 * (self.direction(h1, h2) + self.direction(h2, h1)).mean()


def zero_columns(x: Tensor, p: float) -> Tensor:
    r"""Zeroes each feature column with probability ``p`` (the same columns for every node)."""
    keep = torch.rand(x.size(1), device=x.device) >= p
    return x * keep.to(x.dtype)


def plain_embeddings(data: Any, settings: dict[str, Any], seed: int) -> Tensor:
    from torch_geometric.utils import dropout_edge

    options, train = settings["options"], settings["train"]
    torch.manual_seed(seed)
    model = PlainGRACE(int(data.num_features), int(options.get("hidden_channels", 128)),
                       int(options.get("projection_channels", 128)), float(options.get("temperature", 0.4)))
    optimizer = torch.optim.Adam(model.parameters(), lr=float(train["lr"]),
                                 weight_decay=float(train.get("weight_decay", 0.0)))
    edge_drop = options.get("edge_drop", (0.2, 0.4))
    feature_mask = options.get("feature_mask", (0.3, 0.4))
    for _ in range(int(train["epochs"])):
        model.train()
        optimizer.zero_grad()
        z1 = model.encode(zero_columns(data.x, feature_mask[0]), dropout_edge(data.edge_index, p=edge_drop[0])[0])
        z2 = model.encode(zero_columns(data.x, feature_mask[1]), dropout_edge(data.edge_index, p=edge_drop[1])[0])
        loss = model.loss(z1, z2)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        return model.encode(data.x, data.edge_index)


def gcl_embeddings(data: Any, settings: dict[str, Any], seed: int) -> Tensor:
    from gcl.bench.protocols import _train_config
    from gcl.methods import build_method, embed_dataset
    from gcl.train import fit, seed_everything

    seed_everything(seed)
    method = build_method(settings["method"], data, **settings["options"])
    result = fit(method, data, _train_config(dict(settings["train"]), seed, "cpu"))
    features, _ = embed_dataset(result.method, data)
    return torch.as_tensor(features)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--table", default="node-gca")
    parser.add_argument("--dataset", default="Cora")
    parser.add_argument("--method", default="grace")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="default: the row's")
    parser.add_argument("--splits", type=int, default=None, help="default: the table's number of splits")
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.time()
    from gcl.bench.config import PROBE_KEYS
    from gcl.bench.protocols import Context
    from gcl.eval import LinearProbe, random_splits

    settings = row_settings(args.table, args.dataset, args.method, "node-linear")
    if settings["method"] != "grace":
        raise SystemExit(f"{args.method!r} is {settings['method']!r}; this diagnostic compares GRACE rows")
    activation = settings["options"].get("activation", "relu")
    if activation != "relu":
        raise SystemExit(f"the plain loop uses ReLU; the row uses {activation!r}")
    if args.epochs is not None:
        settings["train"] = {**settings["train"], "epochs": args.epochs}
    data = Context(Path(".")).load(settings["dataset"])[0]
    evaluation = settings["evaluation"]
    options = {k: evaluation[k] for k in PROBE_KEYS if k in evaluation}
    labels = data.y.numpy()
    scores: dict[str, list[float]] = {"gcl": [], "plain PyG": []}
    for seed in args.seeds:
        splits = random_splits(len(labels), num_splits=args.splits or int(evaluation.get("num_splits", 20)), random_state=seed)
        for name, embed in (("gcl", gcl_embeddings), ("plain PyG", plain_embeddings)):
            features = embed(data, settings, seed).numpy()
            result = LinearProbe(random_state=seed, **options).evaluate(features, labels, splits)
            scores[name].append(float(statistics.mean(result.fold_scores)))
            print(f"seed {seed} {name}: {100 * scores[name][-1]:.2f}", flush=True)

    lines = [f"# {args.table}: GRACE on {args.dataset}, gcl against a plain PyG loop (diagnostic)", "",
             provenance(started), "",
             f"Seeds {', '.join(map(str, args.seeds))}; each seed pre-trains both with the row's settings "
             f"({settings['train']['epochs']} epochs, lr {settings['train']['lr']}), and both embeddings are "
             "scored by the table's probe on the seed's random 10/10/80 splits. Nothing here enters a results "
             "table.", "",
             "| implementation | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean ± std over seeds |",
             "|---|" + "---:|" * (len(args.seeds) + 1)]
    for name, values in scores.items():
        cells = " | ".join(f"{100 * v:.2f}" for v in values)
        lines.append(f"| {name} | {cells} | {100 * statistics.mean(values):.2f} ± "
                     f"{100 * statistics.pstdev(values):.2f} |")
    emit("\n".join(lines) + "\n", args.markdown)


if __name__ == "__main__":
    main()
