from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest
import torch

from gcl.eval import EvalResult, summarize
from gcl.eval.result import make_result


def naive_mean_std(scores: list[float], ddof: int) -> tuple[float, float]:
    mean = sum(scores) / len(scores)
    var = sum((s - mean) ** 2 for s in scores) / (len(scores) - ddof)
    return mean, math.sqrt(var)


@pytest.mark.parametrize("ddof", [0, 1])
def test_summarize_matches_formula(ddof: int) -> None:
    scores = [0.8421, 0.8947, 0.7895, 0.9474, 0.8333, 0.8889, 0.7778, 0.9444, 0.8889, 0.8333]
    mean, std = summarize(scores, ddof=ddof)
    ref_mean, ref_std = naive_mean_std(scores, ddof)
    assert mean == pytest.approx(ref_mean, abs=1e-12)
    assert std == pytest.approx(ref_std, abs=1e-12)
    if ddof == 1:
        assert std == pytest.approx(statistics.stdev(scores), abs=1e-12)
    else:
        assert std == pytest.approx(statistics.pstdev(scores), abs=1e-12)


def test_summarize_accepts_tensors_and_single_score() -> None:
    assert summarize(torch.tensor([0.5, 1.0])) == (0.75, 0.25)
    assert summarize(np.array([0.6])) == (pytest.approx(0.6), 0.0)


@pytest.mark.parametrize(
    ("scores", "ddof", "match"),
    [
        ([], 0, "empty"),
        ([0.5, float("nan")], 0, "finite"),
        ([0.5], 1, "ddof=1"),
        ([0.5], 2, "ddof"),
    ],
)
def test_summarize_rejects(scores: list[float], ddof: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        summarize(scores, ddof=ddof)


def test_eval_result_prints_percent_and_serialises() -> None:
    result = make_result([0.868, 0.8546, 0.8814], [{"C": 1.0}] * 3, "protocol", "accuracy")
    mean, std = naive_mean_std([0.868, 0.8546, 0.8814], 0)
    assert str(result) == f"{100 * mean:.2f} ± {100 * std:.2f}"
    fixed = EvalResult(0.868, 0.01344, (0.85456, 0.88144), ({"C": 1.0},) * 2, "p")
    assert str(fixed) == "86.80 ± 1.34"
    # one score (OGB's official test split): no spread, so no "± 0.00"
    assert str(make_result([0.7611], [{"C": 1.0}], "p", "rocauc")) == "76.11"
    assert fixed.mean_percent == pytest.approx(86.8)
    loaded = json.loads(json.dumps(result.to_dict()))
    assert loaded["fold_scores"] == list(result.fold_scores)
    assert loaded["best_params"] == [{"C": 1.0}] * 3
    assert loaded["protocol"] == "protocol"
