r"""The frozen-embedding SVC protocol of InfoGraph and GraphCL for graph classification."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from gcl._checks import check_switch
from gcl.eval._validation import (
    check_features,
    check_grid,
    check_int,
    check_labels,
    check_min_class_count,
    check_random_state,
    to_numpy,
)
from gcl.eval.result import EvalResult, make_result

_KERNELS = ("rbf", "linear", "poly", "sigmoid")


class SVCEvaluator(BaseEstimator):
    r"""Nested cross-validation of a support vector classifier on frozen graph embeddings, the
    unsupervised graph-classification protocol of `"InfoGraph"
    <https://arxiv.org/abs/1908.01000>`_ and `"Graph Contrastive Learning with Augmentations"
    <https://arxiv.org/abs/2010.13902>`_ (GraphCL).

    The data set is split into :math:`K` shuffled stratified folds :math:`T_1, \dots, T_K`. For
    fold :math:`k`, the penalty :math:`C` is chosen by a :math:`J`-fold stratified
    :class:`~sklearn.model_selection.GridSearchCV` on the training part
    :math:`D_k = D \setminus T_k` **only**; the SVC refitted on all of :math:`D_k` with that
    :math:`C` is scored once on :math:`T_k`:

    .. math::
        C_k^{\star} = \operatorname*{arg\,max}_{C \in \mathcal{C}} \frac{1}{J}
        \sum_{j=1}^{J} \mathrm{acc}\big(f_C[D_k \setminus I_{kj}],\, I_{kj}\big), \qquad
        \mathrm{acc} = \frac{1}{K} \sum_{k=1}^{K}
        \mathrm{acc}\big(f_{C_k^{\star}}[D_k],\, T_k\big),

    where :math:`I_{k1}, \dots, I_{kJ}` are the inner folds of :math:`D_k` and ties go to the
    first :math:`C` in :obj:`C_grid`.

    Defaults follow the reference ``svc_classify`` of InfoGraph / GraphCL
    (``unsupervised_TU/evaluate_embedding.py``): ``SVC()`` with scikit-learn's default RBF kernel
    and ``gamma="scale"``, :math:`\mathcal{C} = \{10^{-3}, \dots, 10^{3}\}`, 10 outer folds,
    5 inner folds on the training part, accuracy, and no feature scaling. Like the reference, the
    test fold never takes part in choosing :math:`C`. Unlike it, the outer folds are seeded
    (the reference passes ``random_state=None``, so its folds change from call to call), the inner
    folds are shuffled with the same seed, and :attr:`result_` reports the standard deviation over
    the :math:`K` folds, whereas the papers report the spread of the fold mean over several
    pre-training seeds.

    Scores are fractions in :math:`[0, 1]`; ``str(result)`` prints percent. Choosing a
    pre-training epoch or any other upstream hyper-parameter by this score would select on the
    test folds; use :class:`~gcl.eval.LinearProbe` with a validation split for that.

    Args:
        C_grid (sequence of float, optional): Candidate penalties :math:`\mathcal{C}`.
            (default: :obj:`(1e-3, 1e-2, 1e-1, 1, 10, 100, 1000)`)
        n_splits (int, optional): Number of outer folds :math:`K`. (default: :obj:`10`)
        inner_splits (int, optional): Number of inner folds :math:`J` used to choose :math:`C`.
            (default: :obj:`5`)
        kernel (str, optional): SVC kernel, one of ``"rbf"``, ``"linear"``, ``"poly"``,
            ``"sigmoid"``. (default: :obj:`"rbf"`)
        scale (bool, optional): Standardise features inside every fit (the scaler is fitted on
            training rows only). The reference does not. (default: :obj:`False`)
        random_state (int, optional): Seed of the outer and inner fold shuffles; :obj:`None`
            leaves both unseeded (the reference's outer folds are shuffled unseeded; its inner
            folds, ``GridSearchCV(cv=5)``, are not shuffled at all). (default: :obj:`0`)
        n_jobs (int, optional): Parallel jobs of each grid search. (default: :obj:`None`)

    Shapes:
        - **X:** :math:`(N, F)` graph embeddings (numpy array or torch tensor).
        - **y:** :math:`(N)` or :math:`(N, 1)` class labels.

    Attributes:
        result_ (EvalResult): Mean, std and per-fold scores with the chosen ``C`` per fold.
        fold_scores_ (numpy.ndarray): Test accuracy of every outer fold, shape :math:`(K)`.
        best_params_ (list[dict]): ``{"C": value}`` chosen in every outer fold.
        splits_ (list[tuple[numpy.ndarray, numpy.ndarray]]): ``(train, test)`` indices of every
            outer fold.

    Example:
        >>> from sklearn.datasets import load_iris
        >>> X, y = load_iris(return_X_y=True)
        >>> result = SVCEvaluator(C_grid=(0.1, 1, 10), n_splits=5, inner_splits=3).evaluate(X, y)
        >>> 0.9 < result.mean <= 1.0
        True
    """

    def __init__(
        self,
        C_grid: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0),
        n_splits: int = 10,
        inner_splits: int = 5,
        kernel: str = "rbf",
        scale: bool = False,
        random_state: int | None = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.C_grid = C_grid
        self.n_splits = n_splits
        self.inner_splits = inner_splits
        self.kernel = kernel
        self.scale = scale
        self.random_state = random_state
        self.n_jobs = n_jobs
        self._check_params()

    def _check_params(self) -> tuple[float, ...]:
        grid = check_grid(self.C_grid, "C_grid")
        check_int(self.n_splits, "n_splits", 2)
        check_int(self.inner_splits, "inner_splits", 2)
        if self.kernel not in _KERNELS:
            raise ValueError(f"kernel must be one of {_KERNELS} (got {self.kernel!r})")
        check_switch("scale", self.scale)
        check_random_state(self.random_state)
        return grid

    def _make_pipeline(self) -> Pipeline:
        return Pipeline(
            [
                ("scale", StandardScaler() if self.scale else "passthrough"),
                ("svc", SVC(kernel=self.kernel)),
            ]
        )

    def protocol(self) -> str:
        r"""One-paragraph description of the protocol with the current parameters."""
        grid = ", ".join(f"{c:g}" for c in check_grid(self.C_grid, "C_grid"))
        return (
            f"{self.n_splits}-fold stratified cross-validation (shuffled, random_state="
            f"{self.random_state}) of SVC(kernel='{self.kernel}', gamma='scale') on frozen "
            f"embeddings{', standardised per fit' if self.scale else ''}; C in {{{grid}}} chosen "
            f"per fold by {self.inner_splits}-fold stratified grid search on the training folds "
            f"only; accuracy, mean ± std over the {self.n_splits} test folds."
        )

    def check_labels(self, y: Any) -> None:
        r"""Raises :class:`ValueError` if the labels ``y`` do not allow the nested
        cross-validation (a single class, or a class with fewer members than
        the outer or, within an outer training fold, the inner search has
        folds), as :meth:`fit` would. The folds depend on the labels alone,
        so this runs before any embedding exists (e.g. before pre-training).

        Args:
            y (numpy.ndarray or torch.Tensor): Class labels, shape :math:`(N)`.

        Example:
            >>> SVCEvaluator(n_splits=3).check_labels([0, 0, 0, 1, 1])
            Traceback (most recent call last):
              ...
            ValueError: SVCEvaluator(n_splits=3) needs at least n_splits=3 samples in every class ...
        """
        self._check_params()
        labels = to_numpy(y)
        self._outer_folds(check_labels(labels, labels.shape[0] if labels.ndim else 1))

    def _outer_folds(self, labels: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        r"""The outer folds' ``(train, test)`` indices, checked for the outer and inner searches."""
        check_min_class_count(labels, self.n_splits, f"SVCEvaluator(n_splits={self.n_splits})")
        outer = StratifiedKFold(
            n_splits=self.n_splits, shuffle=True, random_state=self.random_state
        )
        folds = list(outer.split(np.zeros((labels.shape[0], 1)), labels))
        for train, _ in folds:
            check_min_class_count(
                labels[train],
                self.inner_splits,
                f"the inner search (inner_splits={self.inner_splits}) on an outer training fold",
            )
        return folds

    def fit(self, X: Any, y: Any) -> SVCEvaluator:
        r"""Runs the nested cross-validation and stores the fitted attributes.

        Args:
            X (numpy.ndarray or torch.Tensor): Embeddings, shape :math:`(N, F)`.
            y (numpy.ndarray or torch.Tensor): Class labels, shape :math:`(N)`.
        """
        grid = self._check_params()
        features = check_features(X)
        labels = check_labels(y, features.shape[0])
        fold_scores: list[float] = []
        inner_scores: list[float] = []
        best_params: list[dict[str, Any]] = []
        splits: list[tuple[np.ndarray, np.ndarray]] = []
        for train, test in self._outer_folds(labels):
            inner = StratifiedKFold(
                n_splits=self.inner_splits, shuffle=True, random_state=self.random_state
            )
            search = GridSearchCV(
                self._make_pipeline(),
                {"svc__C": list(grid)},
                scoring="accuracy",
                cv=inner,
                refit=True,
                n_jobs=self.n_jobs,
            )
            search.fit(features[train], labels[train])
            fold_scores.append(float(search.score(features[test], labels[test])))
            inner_scores.append(float(search.best_score_))
            best_params.append({"C": float(search.best_params_["svc__C"])})
            splits.append((train, test))

        self.fold_scores_ = np.asarray(fold_scores)
        self.best_params_ = best_params
        self.splits_ = splits
        self.result_ = make_result(
            fold_scores, best_params, self.protocol(), "accuracy", val_scores=inner_scores
        )
        return self

    def evaluate(self, X: Any, y: Any) -> EvalResult:
        r"""Runs :meth:`fit` and returns :attr:`result_`.

        Args:
            X (numpy.ndarray or torch.Tensor): Embeddings, shape :math:`(N, F)`.
            y (numpy.ndarray or torch.Tensor): Class labels, shape :math:`(N)`.
        """
        return self.fit(X, y).result_
