"""Measures the reference numbers quoted in the evaluator tests (not collected by pytest).

Command (from the repository root, with the shared benchmark data next to it)::

    GCL_OFFLINE=1 python tests/eval/measure_reference_numbers.py

Prints, with the same small grids as the tests:
- MUTAG node-label histograms, SVCEvaluator 10-fold (C in {0.1, 1, 10}),
- Cora raw features, LinearProbe on the public split (C in {0.01, 0.1, 1}),
- ogbg-molbace mean atom features + atom count, OGBLinearProbe (C in {0.01, 1}).
"""

from __future__ import annotations

from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

from gcl.data import load_dataset
from gcl.eval import LinearProbe, OGBLinearProbe, SVCEvaluator

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def main() -> None:
    mutag = load_dataset("MUTAG")
    X = torch.stack([graph.x.sum(dim=0) for graph in mutag])
    y = torch.cat([graph.y for graph in mutag])
    result = SVCEvaluator(C_grid=(0.1, 1.0, 10.0)).evaluate(X, y)
    print(
        f"MUTAG histograms, SVC 10-fold: {result}  (C per fold: {[p['C'] for p in result.best_params]})"
    )

    cora = load_dataset("Cora", root=SHARED)[0]
    result = LinearProbe(C_grid=(0.01, 0.1, 1.0)).evaluate(cora.x, cora.y, cora)
    print(f"Cora raw features, public split: {result}  (C: {result.best_params[0]['C']})")

    bace = load_dataset("ogbg-molbace", root=SHARED)
    X = torch.stack(
        [torch.cat([g.x.float().mean(dim=0), torch.tensor([float(g.num_nodes)])]) for g in bace]
    )
    result = OGBLinearProbe("ogbg-molbace", C_grid=(0.01, 1.0)).evaluate(
        X, bace.y, bace.get_idx_split()
    )
    print(
        f"ogbg-molbace atom statistics, test ROC-AUC: {result}  (C: {result.best_params[0]['C']})"
    )


if __name__ == "__main__":
    with threadpool_limits(limits=1):
        main()
