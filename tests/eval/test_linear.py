from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from gcl.eval import LinearProbe, random_splits, stratified_kfold_indices

GRID = (0.01, 0.1, 1.0)


@pytest.fixture(scope="module")
def cora_public(cora: Any) -> LinearProbe:
    return LinearProbe(C_grid=GRID).fit(cora.x, cora.y, cora)


def test_cora_public_split_raw_features(cora_public: LinearProbe) -> None:
    # Raw bag-of-words features on the 140/500/1000 split: 58.80 with C = 0.1, measured by
    # tests/eval/measure_reference_numbers.py.
    result = cora_public.result_
    assert len(result.fold_scores) == 1
    assert 0.55 <= result.mean <= 0.65
    assert result.std == 0.0
    assert "1 given train/val/test split" in result.protocol


def test_choice_matches_naive_validation_selection(cora: Any, cora_public: LinearProbe) -> None:
    X, y = cora.x.numpy().astype(np.float64), cora.y.numpy()
    train, val, test = (m.numpy() for m in (cora.train_mask, cora.val_mask, cora.test_mask))
    models = [LogisticRegression(C=C, max_iter=1000).fit(X[train], y[train]) for C in GRID]
    val_accuracy = [float((m.predict(X[val]) == y[val]).mean()) for m in models]
    best = int(np.argmax(val_accuracy))  # argmax keeps the first of tied values, as documented
    assert cora_public.best_params_ == [{"C": GRID[best]}]
    assert cora_public.val_scores_[0] == pytest.approx(val_accuracy[best])
    test_accuracy = float((models[best].predict(X[test]) == y[test]).mean())
    assert cora_public.fold_scores_[0] == pytest.approx(test_accuracy)


def test_test_labels_cannot_influence_the_choice(cora: Any, cora_public: LinearProbe) -> None:
    # Leak detector: scramble the test labels; the selection may only depend on train and val.
    y = cora.y.clone()
    test = cora.test_mask.nonzero().view(-1)
    y[test] = y[test][torch.randperm(len(test), generator=torch.Generator().manual_seed(0))]
    scrambled = LinearProbe(C_grid=GRID).fit(cora.x, y, cora)
    assert scrambled.best_params_ == cora_public.best_params_
    assert np.array_equal(scrambled.val_scores_, cora_public.val_scores_)
    assert scrambled.fold_scores_[0] < cora_public.fold_scores_[0] - 0.2


def test_choice_is_made_on_validation_rows_on_shipped_data(mutag_histograms: tuple[np.ndarray, np.ndarray]) -> None:
    # The same checks on MUTAG, with a split where validation and test disagree on the best C (on
    # Cora's public split they may agree), so that choosing on test fails.
    from gcl.eval import random_splits

    X, y = mutag_histograms[0].astype(np.float64), mutag_histograms[1]
    grid = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
    for seed in range(20):
        split = random_splits(len(y), train=0.5, val=0.25, num_splits=1, random_state=seed)[0]
        models = [LogisticRegression(C=C, max_iter=1000).fit(X[split.train], y[split.train]) for C in grid]
        val_accuracy = [float((m.predict(X[split.val]) == y[split.val]).mean()) for m in models]
        test_accuracy = [float((m.predict(X[split.test]) == y[split.test]).mean()) for m in models]
        if int(np.argmax(val_accuracy)) != int(np.argmax(test_accuracy)):
            break
    else:
        pytest.fail("no split where validation and test choose different C")
    best = int(np.argmax(val_accuracy))
    probe = LinearProbe(C_grid=grid).fit(X, y, [split])
    assert probe.best_params_ == [{"C": grid[best]}]
    assert probe.val_scores_[0] == pytest.approx(val_accuracy[best])
    assert probe.fold_scores_[0] == pytest.approx(test_accuracy[best])
    scrambled = y.copy()
    scrambled[split.test] = np.random.default_rng(0).permutation(y[split.test])
    again = LinearProbe(C_grid=grid).fit(X, scrambled, [split])
    assert again.best_params_ == probe.best_params_ and np.array_equal(again.val_scores_, probe.val_scores_)


def test_random_node_splits_mean_and_std(cora: Any) -> None:
    splits = random_splits(cora.num_nodes, train=0.1, val=0.1, num_splits=2, random_state=0)
    probe = LinearProbe(C_grid=(0.1, 1.0))
    result = probe.evaluate(cora.x, cora.y, splits)
    assert len(result.fold_scores) == 2
    assert result.mean == pytest.approx(np.mean(result.fold_scores))
    assert result.std == pytest.approx(np.std(result.fold_scores))
    assert result.mean > 0.55
    again = LinearProbe(C_grid=(0.1, 1.0)).evaluate(cora.x, cora.y, splits)
    assert again.fold_scores == result.fold_scores


def test_graph_level_cross_validation(mutag_histograms: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = mutag_histograms
    probe = LinearProbe(C_grid=GRID, n_splits=5, random_state=0).fit(X, y)
    expected = stratified_kfold_indices(y, n_splits=5, val_size=0.1, random_state=0)
    assert len(probe.splits_) == 5
    for ours, reference in zip(probe.splits_, expected):
        for a, b in zip(ours, reference):
            assert torch.equal(a, b)
    assert probe.result_.mean > 0.7
    assert "5-fold stratified" in probe.result_.protocol


def test_macro_f1_metric(mutag_histograms: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = mutag_histograms
    probe = LinearProbe(C_grid=(1.0,), metric="macro_f1", n_splits=3).fit(X, y)
    test = probe.splits_[0].test.numpy()
    prediction = probe.estimators_[0].predict(X[test].astype(np.float64))
    assert probe.fold_scores_[0] == pytest.approx(f1_score(y[test], prediction, average="macro"))


def test_sklearn_conventions(mutag_histograms: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = mutag_histograms
    probe = LinearProbe(C_grid=(1.0,), n_splits=3, scale=True)
    assert not hasattr(probe, "result_")
    copy = clone(probe)
    assert copy.fit(X, y) is copy
    assert "standardised" in copy.result_.protocol


def test_normalize_scales_rows_to_unit_norm(cora: Any) -> None:
    splits = random_splits(cora.num_nodes, train=0.1, val=0.1, num_splits=2, random_state=0)
    x = cora.x.numpy().astype(np.float64) * np.linspace(0.5, 3.0, cora.num_nodes)[:, None]
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    normalized = LinearProbe(C_grid=(0.1, 1.0), normalize=True).evaluate(x, cora.y, splits)
    by_hand = LinearProbe(C_grid=(0.1, 1.0)).evaluate(unit, cora.y, splits)
    raw = LinearProbe(C_grid=(0.1, 1.0)).evaluate(x, cora.y, splits)
    assert np.allclose(normalized.fold_scores, by_hand.fold_scores)
    assert not np.allclose(normalized.fold_scores, raw.fold_scores)
    assert "unit norm" in normalized.protocol


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"C_grid": [0.0]}, "C_grid"),
        ({"metric": "auc"}, r"metric must be one of .* \(got 'auc'\)"),
        ({"max_iter": 0}, "max_iter"),
        ({"n_splits": 1}, "n_splits"),
        ({"val_size": 0.0}, r"val_size .*\(got 0.0\)"),
        ({"val_size": "0.1"}, r"val_size .*\(got '0.1'\)"),
        ({"normalize": "l2"}, r"normalize must be True or False \(got 'l2'\)"),
    ],
)
def test_rejects_bad_parameters(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LinearProbe(**kwargs)


@pytest.mark.parametrize("name", ["scale", "normalize"])
@pytest.mark.parametrize("value", ["false", "no", 1, 0, None])
def test_switches_are_bools(name: str, value: Any) -> None:
    # a config file's "false" is a truthy string: read as a switch it would turn the step on
    with pytest.raises(ValueError, match=rf"{name} must be True or False \(got {value!r}\)"):
        LinearProbe(**{name: value})


def test_rejects_bad_splits_and_data(cora: Any) -> None:
    probe = LinearProbe(C_grid=(1.0,))
    train, val, test = (
        m.nonzero().view(-1) for m in (cora.train_mask, cora.val_mask, cora.test_mask)
    )
    with pytest.raises(ValueError, match="'val' and 'test' overlap"):
        probe.fit(cora.x, cora.y, (train, torch.cat([val, test[:3]]), test))
    with pytest.raises(ValueError, match="empty validation set"):
        probe.fit(cora.x, cora.y, (train, [], test))
    single_class = train[cora.y[train] == 0]
    with pytest.raises(ValueError, match="single class"):
        probe.fit(cora.x, cora.y, (single_class, val, test))
    x = cora.x.clone()
    x[0, 0] = float("inf")
    with pytest.raises(ValueError, match="non-finite"):
        probe.fit(x, cora.y, cora)
    with pytest.raises(ValueError, match="2708 rows in X and 2707 labels"):
        probe.fit(cora.x, cora.y[:-1], cora)


def test_scaler_is_fitted_on_the_training_part(mutag_histograms: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = mutag_histograms
    split = random_splits(len(y), train=0.5, val=0.25, num_splits=1, random_state=0)[0]
    probe = LinearProbe(C_grid=GRID, scale=True).fit(X, y, [split])
    train = split.train.numpy()
    np.testing.assert_allclose(probe.estimators_[0].named_steps["scale"].mean_, X[train].astype(np.float64).mean(0))
