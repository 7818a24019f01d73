r"""The Open Graph Benchmark evaluator, and a linear probe on OGB's official splits."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from gcl._checks import check_switch
from gcl.eval._validation import check_features, check_grid, check_int, to_numpy
from gcl.eval.result import EvalResult, make_result
from gcl.eval.splits import check_split

_ARRAY_METRICS = ("rocauc", "ap", "rmse", "acc")
_PROBE_METRICS = ("rocauc", "ap")


def canonical_ogb_name(name: str) -> str:
    r"""Returns OGB's spelling of a graph property prediction data set name:
    ``"molhiv"``, ``"ogbg_molhiv"`` and ``"ogbg-molhiv"`` all give ``"ogbg-molhiv"``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string (got {name!r})")
    canonical = name.strip().lower().replace("_", "-")
    return canonical if canonical.startswith("ogbg-") else f"ogbg-{canonical}"


def _ogb_evaluator(name: str) -> Any:
    try:
        from ogb.graphproppred import Evaluator
    except ImportError as error:  # pragma: no cover - ogb is a core dependency
        raise ImportError(
            "OGB evaluation needs the 'ogb' package: pip install 'ogb>=1.3.6'"
        ) from error
    # ogb prints the offending name to stdout before raising; the ValueError below says it already.
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            return Evaluator(name)
        except ValueError as error:
            raise ValueError(
                f"unknown OGB graph property prediction data set {name!r} "
                f"(expected e.g. 'ogbg-molhiv', 'ogbg-molbace', 'ogbg-molpcba')"
            ) from error


def _as_task_matrix(values: Any, num_tasks: int, name: str) -> np.ndarray:
    array = to_numpy(values).astype(np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] != num_tasks:
        raise ValueError(
            f"{name} must have shape [num_graphs, {num_tasks}] (or [num_graphs] for one task) "
            f"(got shape {tuple(to_numpy(values).shape)})"
        )
    return array


class OGBGraphEvaluator:
    r"""The official metric of an `"Open Graph Benchmark" <https://arxiv.org/abs/2005.00687>`_
    graph property prediction data set, a thin wrapper around
    :class:`ogb.graphproppred.Evaluator` (imported on construction, not with :mod:`gcl.eval`).

    For the binary molecule tasks the metric is the ROC-AUC averaged over the :math:`T` tasks
    that have both classes among the labelled graphs (``NaN`` labels are skipped):

    .. math::
        \mathrm{ROC\text{-}AUC} = \frac{1}{|\mathcal{T}'|} \sum_{t \in \mathcal{T}'}
        \Pr\big(\hat{y}_{it} > \hat{y}_{jt} \,\big|\, y_{it} = 1, y_{jt} = 0\big).

    Args:
        name (str): Data set name, e.g. ``"ogbg-molhiv"`` (``"molhiv"`` and ``"ogbg_molhiv"``
            are accepted too).

    Shapes:
        - **y_true:** :math:`(N, T)`, or :math:`(N)` when :math:`T = 1`.
        - **y_pred:** same shape as **y_true**; scores (any monotone scale) for ROC-AUC / AP.

    Example:
        >>> evaluator = OGBGraphEvaluator("molbace")
        >>> evaluator.metric, evaluator.num_tasks
        ('rocauc', 1)
        >>> evaluator.score([0, 1, 1, 0], [0.1, 0.8, 0.4, 0.5])
        0.75
    """

    def __init__(self, name: str) -> None:
        self.name = canonical_ogb_name(name)
        self._evaluator = _ogb_evaluator(self.name)
        if self.metric not in _ARRAY_METRICS:
            raise ValueError(
                f"OGBGraphEvaluator scores arrays with one of {_ARRAY_METRICS}; {self.name} uses "
                f"{self.metric!r} (use ogb.graphproppred.Evaluator directly)"
            )

    @property
    def metric(self) -> str:
        r"""OGB's metric name: ``"rocauc"``, ``"ap"``, ``"rmse"`` or ``"acc"``."""
        return str(self._evaluator.eval_metric)

    @property
    def num_tasks(self) -> int:
        r"""Number of prediction tasks :math:`T`."""
        return int(self._evaluator.num_tasks)

    @property
    def higher_is_better(self) -> bool:
        r"""Whether a larger score is better (all metrics except RMSE)."""
        return self.metric != "rmse"

    def score(self, y_true: Any, y_pred: Any) -> float:
        r"""Returns the official metric of predictions :obj:`y_pred` against :obj:`y_true`.

        Args:
            y_true (numpy.ndarray or torch.Tensor): Targets; ``NaN`` marks a missing label.
            y_pred (numpy.ndarray or torch.Tensor): Scores or predictions, same shape.
        """
        true = _as_task_matrix(y_true, self.num_tasks, "y_true")
        pred = _as_task_matrix(y_pred, self.num_tasks, "y_pred")
        if true.shape != pred.shape:
            raise ValueError(
                f"y_true and y_pred must have the same shape (got {true.shape} and {pred.shape})"
            )
        if not np.isfinite(pred).all():
            raise ValueError("y_pred contains NaN or inf")
        labelled = true[~np.isnan(true)]
        if labelled.size == 0:
            raise ValueError(f"{self.name}: y_true holds no label (all NaN): there is nothing to score")
        if self.metric in _PROBE_METRICS and not np.isin(labelled, (0.0, 1.0)).all():
            # OGB reads anything but 1 as negative in a single task and leaves a multi-task set's
            # task without both classes out of its mean silently
            raise ValueError(f"{self.name}: y_true must hold binary labels 0/1 or NaN for {self.metric} "
                             f"(got values {np.unique(labelled)[:10].tolist()})")
        try:
            result = self._evaluator.eval({"y_true": true, "y_pred": pred})
        except RuntimeError as error:
            raise ValueError(
                f"{self.name}: {error} (y_true has {int((labelled == 1).sum())} positive and "
                f"{int((labelled == 0).sum())} negative labels)"
            ) from error
        return float(result[self.metric])

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(name={self.name!r}, metric={self.metric!r})"


class OGBLinearProbe(BaseEstimator):
    r"""Logistic-regression probe on frozen graph embeddings evaluated on an `"Open Graph
    Benchmark" <https://arxiv.org/abs/2005.00687>`_ data set's official (scaffold) split: one
    :math:`\ell_2`-regularised logistic regression per task is fitted on the labelled training
    graphs for every :math:`C \in \mathcal{C}`, :math:`C` is chosen by the official metric on the
    validation graphs, and that model is scored once on the test graphs:

    .. math::
        C^{\star} = \operatorname*{arg\,max}_{C \in \mathcal{C}}
        \mathrm{metric}\big(f_C[\mathcal{T}], \mathcal{V}\big), \qquad
        \text{score} = \mathrm{metric}\big(f_{C^{\star}}[\mathcal{T}], \mathcal{E}\big).

    The probe ranks graphs by the logistic regression's decision function, which keeps
    ROC-AUC ties out of saturated probabilities. A task whose training labels are all one class
    gets a constant score. Only binary tasks (metric ``"rocauc"`` or ``"ap"``) are supported.

    Args:
        name (str): Data set name, e.g. ``"ogbg-molhiv"``.
        C_grid (sequence of float, optional): Candidate inverse regularisation strengths.
            (default: :obj:`(1e-3, 1e-2, 1e-1, 1, 10, 100)`)
        max_iter (int, optional): Iterations of the L-BFGS solver. (default: :obj:`1000`)
        scale (bool, optional): Standardise features, fitted on the training graphs.
            (default: :obj:`False`)
        class_weight (str, optional): ``None`` or ``"balanced"`` (reweights rare positives).
            (default: :obj:`None`)

    Shapes:
        - **X:** :math:`(N, F)` graph embeddings.
        - **y:** :math:`(N, T)` or :math:`(N)` binary labels, ``NaN`` where missing.

    Attributes:
        result_ (EvalResult): Test score (``std`` is ``0`` for the single official split).
        best_params_ (dict): ``{"C": value}`` chosen on the validation graphs.
        val_score_ (float): Validation score of the chosen ``C``.
        test_score_ (float): Test score of the chosen ``C``.
        estimators_ (list): Per task, the fitted pipeline or the constant score.
        evaluator_ (OGBGraphEvaluator): The metric used.
    """

    def __init__(
        self,
        name: str,
        C_grid: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0),
        max_iter: int = 1000,
        scale: bool = False,
        class_weight: str | None = None,
    ) -> None:
        self.name = name
        self.C_grid = C_grid
        self.max_iter = max_iter
        self.scale = scale
        self.class_weight = class_weight
        self._check_params()

    def _check_params(self) -> tuple[float, ...]:
        grid = check_grid(self.C_grid, "C_grid")
        check_int(self.max_iter, "max_iter", 1)
        check_switch("scale", self.scale)
        if self.class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be None or 'balanced' (got {self.class_weight!r})")
        canonical_ogb_name(self.name)
        return grid

    def _fit_tasks(self, features: np.ndarray, targets: np.ndarray, C: float) -> list[Any]:
        estimators: list[Any] = []
        for task in range(targets.shape[1]):
            labelled = ~np.isnan(targets[:, task])
            task_y = targets[labelled, task].astype(np.int64)
            if task_y.size == 0 or np.unique(task_y).size < 2:
                estimators.append(float(task_y[0]) if task_y.size else 0.0)
                continue
            model = Pipeline(
                [
                    ("scale", StandardScaler() if self.scale else "passthrough"),
                    (
                        "logreg",
                        LogisticRegression(
                            C=C, max_iter=self.max_iter, class_weight=self.class_weight
                        ),
                    ),
                ]
            )
            estimators.append(model.fit(features[labelled], task_y))
        return estimators

    @staticmethod
    def _scores(estimators: list[Any], features: np.ndarray) -> np.ndarray:
        columns = [
            np.full(features.shape[0], est)
            if isinstance(est, float)
            else est.decision_function(features)
            for est in estimators
        ]
        return np.stack(columns, axis=1)

    def fit(self, X: Any, y: Any, split_idx: Any) -> OGBLinearProbe:
        r"""Fits on the training graphs, selects :math:`C` on the validation graphs and scores the
        test graphs.

        Args:
            X (numpy.ndarray or torch.Tensor): Graph embeddings, shape :math:`(N, F)`.
            y (numpy.ndarray or torch.Tensor): Labels, shape :math:`(N, T)` or :math:`(N)`.
            split_idx (dict): OGB's ``dataset.get_idx_split()``: indices under ``"train"``,
                ``"valid"`` and ``"test"``.
        """
        grid = self._check_params()
        evaluator = OGBGraphEvaluator(self.name)
        if evaluator.metric not in _PROBE_METRICS:
            raise ValueError(
                f"OGBLinearProbe needs binary tasks scored by {_PROBE_METRICS}; "
                f"{evaluator.name} uses {evaluator.metric!r}"
            )
        features = check_features(X)
        targets = _as_task_matrix(y, evaluator.num_tasks, "y")
        if targets.shape[0] != features.shape[0]:
            raise ValueError(
                f"X and y must have the same number of graphs (got {features.shape[0]} and "
                f"{targets.shape[0]})"
            )
        labelled = targets[~np.isnan(targets)]
        if not np.isin(labelled, (0.0, 1.0)).all():
            raise ValueError(
                f"y must hold binary labels 0/1 or NaN (got values {np.unique(labelled)[:10].tolist()})"
            )
        split = check_split(split_idx, features.shape[0])
        train, val, test = (part.numpy() for part in split)
        if val.size == 0:
            raise ValueError("split_idx has an empty 'valid' part; C cannot be chosen")

        best: tuple[float, float, list[Any]] | None = None
        for C in grid:
            estimators = self._fit_tasks(features[train], targets[train], C)
            val_score = evaluator.score(targets[val], self._scores(estimators, features[val]))
            if best is None or val_score > best[1]:
                best = (C, val_score, estimators)
        assert best is not None
        best_C, val_score, estimators = best
        test_score = evaluator.score(targets[test], self._scores(estimators, features[test]))

        self.evaluator_ = evaluator
        self.estimators_ = estimators
        self.best_params_ = {"C": best_C}
        self.val_score_ = val_score
        self.test_score_ = test_score
        values = ", ".join(f"{c:g}" for c in grid)
        self.result_ = make_result(
            [test_score],
            [self.best_params_],
            (
                f"{evaluator.name} official split ({train.size}/{val.size}/{test.size} graphs): "
                f"one L2 logistic regression per task on frozen embeddings"
                f"{', standardised' if self.scale else ''}"
                f"{', balanced class weights' if self.class_weight else ''}; C in {{{values}}} "
                f"chosen by validation {evaluator.metric}; test {evaluator.metric} of that model."
            ),
            evaluator.metric,
            val_scores=[val_score],
        )
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        r"""Returns the per-task scores of the fitted probe, shape :math:`(N, T)`."""
        if not hasattr(self, "estimators_"):
            raise ValueError("OGBLinearProbe is not fitted yet; call fit(X, y, split_idx) first")
        return self._scores(self.estimators_, check_features(X))

    def evaluate(self, X: Any, y: Any, split_idx: Any) -> EvalResult:
        r"""Runs :meth:`fit` and returns :attr:`result_` (see :meth:`fit` for the arguments)."""
        return self.fit(X, y, split_idx).result_
