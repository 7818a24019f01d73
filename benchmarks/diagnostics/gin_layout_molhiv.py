r"""Validation ROC-AUC on ogbg-molhiv of gcl's supervised GIN against the OGB leaderboard's GIN layout.

Both train with the leaderboard's settings (Adam, lr 0.001, batch 32, dropout 0.5, 5 layers of width 300,
OGB atom and bond encoders) on the official training split, seed 0, and are scored on the official *valid*
split after every epoch (the test split is never scored):

* ``gcl``: ``build_method("supervised", encoder="gin", ogb_mol=True)``: GraphCL/InfoGraph layout (ReLU then
  batch norm after each convolution, sum readout of every layer concatenated) and a two-layer classifier;
* ``ogb``: the same with ``layout="ogb", readout="mean"``, the leaderboard layout: batch norm inside each GIN MLP
  (width 600), batch norm after each convolution, no ReLU after the last one, dropout after every layer, mean
  readout of the last layer, one linear layer.

A diagnostic only; nothing it computes enters a results table. Prints one JSON line per epoch.

Usage::

    GCL_DATA=../shared/datasets python benchmarks/diagnostics/gin_layout_molhiv.py ogb --epochs 3
    GCL_DATA=../shared/datasets python benchmarks/diagnostics/gin_layout_molhiv.py gcl --epochs 3
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Leaderboard GIN settings shared by both layouts; ``layout`` only changes the architecture.
SETTINGS = {"encoder": "gin", "hidden_channels": 300, "num_layers": 5, "dropout": 0.5, "ogb_mol": True}
LAYOUTS = {"gcl": {}, "ogb": {"layout": "ogb", "readout": "mean"}}


class Supervised(nn.Module):
    r"""gcl's supervised GIN in one of :obj:`LAYOUTS`, returning class logits."""

    def __init__(self, dataset: object, layout: str) -> None:
        from gcl.methods import build_method

        super().__init__()
        self.method = build_method("supervised", dataset, **SETTINGS, **LAYOUTS[layout])

    def forward(self, batch: object) -> Tensor:
        encoded = self.method.encoder(batch.x, batch.edge_index, batch.batch,  # type: ignore[attr-defined, operator]
                                      edge_attr=batch.edge_attr, num_graphs=batch.num_graphs)  # type: ignore[attr-defined]
        return self.method.classifier(encoded.graph)  # type: ignore[operator]


def main() -> None:
    from ogb.graphproppred import Evaluator

    from gcl.data import CollatedLoader, load_dataset
    from gcl.train import seed_everything

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("layout", choices=list(LAYOUTS))
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = load_dataset("ogbg-molhiv")
    split = dataset.get_idx_split()
    train, valid = dataset[split["train"]], dataset[split["valid"]]
    seed_everything(0)
    model = Supervised(dataset, args.layout)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    generator = torch.Generator().manual_seed(0)
    evaluator = Evaluator("ogbg-molhiv")
    started = time.time()
    for epoch in range(1, args.epochs + 1):
        model.train()
        for batch in CollatedLoader(train, 32, shuffle=True, generator=generator):
            loss = F.cross_entropy(model(batch), batch.y.view(-1).long())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        labels, scores = [], []
        with torch.no_grad():
            for batch in CollatedLoader(valid, 256):
                scores.append(model(batch).softmax(1)[:, 1:])
                labels.append(batch.y.view(-1, 1))
        rocauc = evaluator.eval({"y_true": torch.cat(labels).numpy(), "y_pred": torch.cat(scores).numpy()})["rocauc"]
        print(json.dumps({"layout": args.layout, "epoch": epoch, "valid_rocauc": round(rocauc, 4),
                          "minutes": round((time.time() - started) / 60, 1)}), flush=True)


if __name__ == "__main__":
    main()
