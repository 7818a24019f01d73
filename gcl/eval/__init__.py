r"""Evaluation protocols for frozen embeddings, with scikit-learn conventions.

- :class:`SVCEvaluator`: the InfoGraph / GraphCL 10-fold SVC protocol for graph classification.
- :class:`LinearProbe`: logistic regression with validation-based selection, for node splits
  (public or random 10/10/80) and graph-level stratified cross-validation.
- :class:`OGBGraphEvaluator` and :class:`OGBLinearProbe`: the Open Graph Benchmark metric and a
  probe on OGB's official splits (``ogb`` is imported only when these are constructed).
- Split utilities shared with the supervised training protocols, and :class:`EvalResult`.
"""

from gcl.eval.linear import LinearProbe
from gcl.eval.ogb import OGBGraphEvaluator, OGBLinearProbe, canonical_ogb_name
from gcl.eval.result import EvalResult, summarize
from gcl.eval.splits import (
    Split,
    check_split,
    masks_to_splits,
    public_splits,
    random_split_indices,
    random_splits,
    stratified_kfold_indices,
    to_splits,
)
from gcl.eval.svc import SVCEvaluator

__all__ = [
    "EvalResult",
    "LinearProbe",
    "OGBGraphEvaluator",
    "OGBLinearProbe",
    "SVCEvaluator",
    "Split",
    "canonical_ogb_name",
    "check_split",
    "masks_to_splits",
    "public_splits",
    "random_split_indices",
    "random_splits",
    "stratified_kfold_indices",
    "summarize",
    "to_splits",
]
