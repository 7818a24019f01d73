r"""Linear probe (logistic regression) with validation-based selection of the regularisation."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from gcl._checks import check_switch
from gcl.eval._validation import (
    check_features,
    check_grid,
    check_int,
    check_labels,
    check_random_state,
)
from gcl.eval.result import EvalResult, make_result
from gcl.eval.splits import Split, stratified_kfold_indices, to_splits

_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy_score,
    "macro_f1": partial(f1_score, average="macro"),
    "micro_f1": partial(f1_score, average="micro"),
}


class LinearProbe(BaseEstimator):
    r"""Logistic-regression probe on frozen embeddings whose inverse regularisation strength is
    chosen on a validation set, the node-classification protocol of `"Deep Graph Infomax"
    <https://arxiv.org/abs/1809.10341>`_, `"GCA" <https://arxiv.org/abs/2010.14945>`_ and
    `"Graph Barlow Twins" <https://arxiv.org/abs/2106.02466>`_.

    For every split :math:`s` with training, validation and test sets
    :math:`(\mathcal{T}_s, \mathcal{V}_s, \mathcal{E}_s)`, an :math:`\ell_2`-regularised
    logistic regression :math:`f_C` is fitted on :math:`\mathcal{T}_s` for every
    :math:`C \in \mathcal{C}` (:math:`C` is the inverse of the weight decay), the best on
    :math:`\mathcal{V}_s` is kept (ties go to the first :math:`C` in :obj:`C_grid`) and scored
    once on :math:`\mathcal{E}_s`:

    .. math::
        C_s^{\star} = \operatorname*{arg\,max}_{C \in \mathcal{C}}
        m\big(f_C[\mathcal{T}_s], \mathcal{V}_s\big), \qquad
        \text{score} = \frac{1}{S} \sum_{s=1}^{S} m\big(f_{C_s^{\star}}[\mathcal{T}_s],
        \mathcal{E}_s\big).

    The splits are whatever :meth:`evaluate` receives: a data set's public split
    (:func:`~gcl.eval.public_splits`), the random 10/10/80 splits of
    :func:`~gcl.eval.random_splits`, or, when no split is given, graph-level stratified
    :math:`K`-fold cross-validation whose validation set is carved out of each training part
    (:func:`~gcl.eval.stratified_kfold_indices`), so the test fold never influences :math:`C`.

    Args:
        C_grid (sequence of float, optional): Candidate inverse regularisation strengths
            :math:`\mathcal{C}`. (default: :obj:`(1e-2, 1e-1, 1, 10, 100)`)
        max_iter (int, optional): Iterations of the L-BFGS solver. (default: :obj:`1000`)
        scale (bool, optional): Standardise features, fitted on the training rows of each split.
            (default: :obj:`False`)
        normalize (bool, optional): Scale every embedding to unit :math:`\ell_2` norm before the
            regression (row-wise, so nothing is fitted), as GRACE's and Graph Barlow Twins'
            evaluation does (GCA's does not). (default: :obj:`False`)
        metric (str, optional): ``"accuracy"``, ``"macro_f1"`` or ``"micro_f1"`` (equal to
            accuracy for single-label data). (default: :obj:`"accuracy"`)
        n_splits (int, optional): Number of folds :math:`K` when no split is given.
            (default: :obj:`10`)
        val_size (float, optional): Validation fraction of each training part when no split is
            given. (default: :obj:`0.1`)
        random_state (int, optional): Seed of the folds when no split is given.
            (default: :obj:`0`)

    Shapes:
        - **X:** :math:`(N, F)` node or graph embeddings (numpy array or torch tensor).
        - **y:** :math:`(N)` or :math:`(N, 1)` class labels.

    Attributes:
        result_ (EvalResult): Mean ± std of the test scores over splits.
        fold_scores_ (numpy.ndarray): Test score of every split.
        val_scores_ (numpy.ndarray): Validation score of the chosen ``C`` in every split.
        best_params_ (list[dict]): ``{"C": value}`` chosen in every split.
        splits_ (list[Split]): The validated splits.
        estimators_ (list[sklearn.pipeline.Pipeline]): The chosen classifier of every split.

    Example:
        >>> from sklearn.datasets import load_iris
        >>> X, y = load_iris(return_X_y=True)
        >>> probe = LinearProbe(C_grid=(0.1, 1.0, 10.0), n_splits=5)
        >>> result = probe.evaluate(X, y)  # stratified 5-fold CV, validation inside training
        >>> 0.85 < result.mean <= 1.0
        True
    """

    def __init__(
        self,
        C_grid: Sequence[float] = (1e-2, 1e-1, 1.0, 10.0, 100.0),
        max_iter: int = 1000,
        scale: bool = False,
        metric: str = "accuracy",
        normalize: bool = False,
        n_splits: int = 10,
        val_size: float = 0.1,
        random_state: int | None = 0,
    ) -> None:
        self.C_grid = C_grid
        self.max_iter = max_iter
        self.scale = scale
        self.normalize = normalize
        self.metric = metric
        self.n_splits = n_splits
        self.val_size = val_size
        self.random_state = random_state
        self._check_params()

    def _check_params(self) -> tuple[float, ...]:
        grid = check_grid(self.C_grid, "C_grid")
        check_int(self.max_iter, "max_iter", 1)
        check_switch("scale", self.scale)
        check_switch("normalize", self.normalize)
        if self.metric not in _METRICS:
            raise ValueError(f"metric must be one of {tuple(_METRICS)} (got {self.metric!r})")
        check_int(self.n_splits, "n_splits", 2)
        if (isinstance(self.val_size, bool) or not isinstance(self.val_size, numbers.Real)
                or not 0.0 < float(self.val_size) < 1.0):
            raise ValueError(f"val_size must be a fraction in (0, 1) (got {self.val_size!r})")
        check_random_state(self.random_state)
        return grid

    def _make_pipeline(self, C: float) -> Pipeline:
        return Pipeline(
            [
                ("normalize", Normalizer() if self.normalize else "passthrough"),
                ("scale", StandardScaler() if self.scale else "passthrough"),
                ("logreg", LogisticRegression(C=C, max_iter=self.max_iter)),
            ]
        )

    def _protocol(self, grid: tuple[float, ...], num_splits: int, given: bool) -> str:
        values = ", ".join(f"{c:g}" for c in grid)
        if given:
            source = f"{num_splits} given train/val/test split(s)"
        else:
            source = (
                f"{self.n_splits}-fold stratified cross-validation (shuffled, random_state="
                f"{self.random_state}) with a stratified {self.val_size:g} validation share carved "
                f"out of each training part"
            )
        return (
            f"L2 logistic regression (lbfgs, max_iter={self.max_iter}) on frozen embeddings"
            f"{', scaled to unit norm' if self.normalize else ''}"
            f"{', standardised per fit' if self.scale else ''}; C in {{{values}}} chosen on the "
            f"validation set of each split, the model trained on the training set with that C "
            f"scored once on the test set; {self.metric}, mean ± std over {source}."
        )

    def fit(self, X: Any, y: Any, split: Any = None) -> LinearProbe:
        r"""Selects :math:`C` on every split's validation set and scores on its test set.

        Args:
            X (numpy.ndarray or torch.Tensor): Embeddings, shape :math:`(N, F)`.
            y (numpy.ndarray or torch.Tensor): Class labels, shape :math:`(N)`.
            split (optional): One split (a :class:`~gcl.eval.Split`, a ``(train, val, test)``
                tuple, or a mapping with ``train`` / ``val`` / ``test``; masks or indices), a list
                of splits, a PyG ``Data`` object with ``train_mask`` / ``val_mask`` /
                ``test_mask``, or :obj:`None` for stratified :math:`K`-fold cross-validation.
                (default: :obj:`None`)
        """
        grid = self._check_params()
        features = check_features(X)
        labels = check_labels(y, features.shape[0])
        if split is None:
            splits: list[Split] = stratified_kfold_indices(
                labels, self.n_splits, self.val_size, self.random_state
            )
        else:
            splits = to_splits(split, features.shape[0])
        score = _METRICS[self.metric]

        fold_scores, val_scores, best_params, estimators = [], [], [], []
        for index, one in enumerate(splits):
            train, val, test = (part.numpy() for part in one)
            if val.size == 0:
                raise ValueError(f"split {index} has an empty validation set; C cannot be chosen")
            if np.unique(labels[train]).size < 2:
                raise ValueError(
                    f"split {index} has a single class in its training set "
                    f"(label {labels[train][0]!r}); a classifier cannot be fitted"
                )
            best_val, best_model, best_C = -np.inf, None, grid[0]
            for C in grid:
                model = self._make_pipeline(C).fit(features[train], labels[train])
                val_score = float(score(labels[val], model.predict(features[val])))
                if val_score > best_val:
                    best_val, best_model, best_C = val_score, model, C
            assert best_model is not None
            fold_scores.append(float(score(labels[test], best_model.predict(features[test]))))
            val_scores.append(best_val)
            best_params.append({"C": best_C})
            estimators.append(best_model)

        self.fold_scores_ = np.asarray(fold_scores)
        self.val_scores_ = np.asarray(val_scores)
        self.best_params_ = best_params
        self.splits_ = splits
        self.estimators_ = estimators
        self.result_ = make_result(
            fold_scores,
            best_params,
            self._protocol(grid, len(splits), given=split is not None),
            self.metric,
            val_scores=val_scores,
        )
        return self

    def evaluate(self, X: Any, y: Any, split: Any = None) -> EvalResult:
        r"""Runs :meth:`fit` and returns :attr:`result_` (see :meth:`fit` for the arguments)."""
        return self.fit(X, y, split).result_
