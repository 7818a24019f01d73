r"""The result record every evaluator returns, and the mean ± std summary behind it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gcl.eval._validation import to_numpy


def summarize(scores: Any, ddof: int = 0) -> tuple[float, float]:
    r"""Returns the mean and standard deviation of per-fold (or per-split) scores.

    .. math::
        \mu = \frac{1}{K} \sum_{k=1}^{K} s_k, \qquad
        \sigma = \sqrt{\frac{1}{K - \mathrm{ddof}} \sum_{k=1}^{K} (s_k - \mu)^2}

    The default ``ddof=0`` is the population standard deviation that ``numpy.std`` returns and that
    the InfoGraph / GraphCL / GCA evaluation scripts report.

    Args:
        scores (array-like or torch.Tensor): The :math:`K` scores, any 1-D sequence.
        ddof (int, optional): Delta degrees of freedom, ``0`` or ``1``. (default: :obj:`0`)

    Example:
        >>> summarize([0.5, 1.0])
        (0.75, 0.25)
    """
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 or 1 (got {ddof!r})")
    values = to_numpy(scores).astype(np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("scores must hold at least one value (got an empty sequence)")
    if not np.isfinite(values).all():
        raise ValueError(f"scores must be finite (got {values.tolist()})")
    if values.size <= ddof:
        raise ValueError(f"ddof={ddof} needs more than {ddof} score(s) (got {values.size})")
    return float(values.mean()), float(values.std(ddof=ddof))


@dataclass(frozen=True)
class EvalResult:
    r"""Outcome of one evaluation protocol: the summary, the per-fold scores and how they were made.

    Scores are fractions in :math:`[0, 1]` (accuracy, F1 or ROC-AUC); ``str(result)`` prints them in
    percent the way papers do, e.g. ``"86.80 ± 1.34"`` (a single score without the ``±``).

    Args:
        mean (float): Mean test score over folds or splits.
        std (float): Standard deviation of the test scores (``ddof=0``).
        fold_scores (tuple[float, ...]): Test score of every fold or split, in order.
        best_params (tuple[dict, ...]): The hyper-parameters selected in every fold or split,
            e.g. ``({"C": 10.0}, ...)``.
        protocol (str): One paragraph describing the protocol, for reports.
        metric (str, optional): Name of the score. (default: :obj:`"accuracy"`)
        val_scores (tuple[float, ...], optional): Selection score of the chosen hyper-parameters in
            every fold or split (validation score, or inner cross-validation score).
            (default: :obj:`()`)
    """

    mean: float
    std: float
    fold_scores: tuple[float, ...]
    best_params: tuple[dict[str, Any], ...]
    protocol: str
    metric: str = "accuracy"
    val_scores: tuple[float, ...] = field(default=())

    @property
    def mean_percent(self) -> float:
        r"""The mean score in percent."""
        return 100.0 * self.mean

    @property
    def std_percent(self) -> float:
        r"""The standard deviation in percent."""
        return 100.0 * self.std

    def __str__(self) -> str:
        if len(self.fold_scores) == 1:  # one score (e.g. OGB's official test split): no spread to give
            return f"{self.mean_percent:.2f}"
        return f"{self.mean_percent:.2f} ± {self.std_percent:.2f}"

    def to_dict(self) -> dict[str, Any]:
        r"""Returns a JSON-serialisable dictionary of all fields."""
        return {
            "mean": self.mean,
            "std": self.std,
            "fold_scores": list(self.fold_scores),
            "best_params": [dict(params) for params in self.best_params],
            "protocol": self.protocol,
            "metric": self.metric,
            "val_scores": list(self.val_scores),
        }


def make_result(
    fold_scores: Sequence[float],
    best_params: Sequence[dict[str, Any]],
    protocol: str,
    metric: str,
    val_scores: Sequence[float] = (),
) -> EvalResult:
    r"""Builds an :class:`EvalResult` from per-fold scores."""
    mean, std = summarize(fold_scores)
    return EvalResult(
        mean=mean,
        std=std,
        fold_scores=tuple(float(score) for score in fold_scores),
        best_params=tuple(dict(params) for params in best_params),
        protocol=protocol,
        metric=metric,
        val_scores=tuple(float(score) for score in val_scores),
    )
