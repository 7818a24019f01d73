from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import TensorDataset, random_split

from gcl.eval import (
    Split,
    check_split,
    masks_to_splits,
    public_splits,
    random_split_indices,
    random_splits,
    stratified_kfold_indices,
    to_splits,
)


def assert_partition(split: Split, num_samples: int) -> None:
    parts = [part.numpy() for part in split]
    joined = np.concatenate(parts)
    assert joined.size == num_samples
    assert np.array_equal(np.sort(joined), np.arange(num_samples))


def test_random_split_indices_equals_torch_random_split() -> None:
    # HGP-SL splits with torch.utils.data.random_split; the first run must match it exactly.
    n = 188
    lengths = [int(n * 0.8), int(n * 0.1), n - int(n * 0.8) - int(n * 0.1)]
    dataset = TensorDataset(torch.arange(n))
    reference = random_split(dataset, lengths, generator=torch.Generator().manual_seed(7))
    ours = random_split_indices(n, (0.8, 0.1, 0.1), num_runs=3, random_state=7)
    for ref_part, our_part in zip(reference, ours[0]):
        assert list(ref_part.indices) == our_part.tolist()
    assert [len(p) for p in ours[0]] == [150, 18, 20]


def test_random_split_indices_runs_differ_and_are_reproducible() -> None:
    first = random_split_indices(100, num_runs=4, random_state=3)
    again = random_split_indices(100, num_runs=4, random_state=3)
    for a, b in zip(first, again):
        for pa, pb in zip(a, b):
            assert torch.equal(pa, pb)
    assert not torch.equal(first[0].test, first[1].test)
    generator = torch.Generator().manual_seed(3)
    from_generator = random_split_indices(100, num_runs=4, random_state=generator)
    assert torch.equal(from_generator[2].train, first[2].train)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(10, 500),
    train=st.floats(0.05, 0.6),
    val=st.floats(0.05, 0.3),
    seed=st.integers(0, 2**31 - 1),
)
def test_random_splits_partition(n: int, train: float, val: float, seed: int) -> None:
    num_train, num_val = int(n * train), int(n * val)
    if min(num_train, num_val, n - num_train - num_val) < 1:
        with pytest.raises(ValueError, match="empty part"):
            random_splits(n, train, val, num_splits=1, random_state=seed)
        return
    (split,) = random_splits(n, train, val, num_splits=1, random_state=seed)
    assert_partition(split, n)
    assert (len(split.train), len(split.val)) == (num_train, num_val)


def test_random_splits_gca_sizes_on_cora_size() -> None:
    splits = random_splits(2708, num_splits=20)
    assert len(splits) == 20
    assert [len(p) for p in splits[0]] == [270, 270, 2168]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ratios": (0.8, 0.1)}, "three fractions"),
        ({"ratios": (0.8, 0.3, 0.1)}, "sum to 1"),
        ({"ratios": (1.0, 0.0, 0.0)}, "three fractions"),
        # a config file's mistakes: a ValueError naming the value, not a TypeError or float()'s message
        ({"ratios": 0.8}, r"ratios must be three fractions in \(0, 1\) \(got 0.8\)"),
        ({"ratios": ["a", "b", "c"]}, r"ratios must be three fractions in \(0, 1\) \(got \['a', 'b', 'c'\]\)"),
        ({"num_runs": 0}, "num_runs"),
        ({"random_state": -1}, "random_state"),
    ],
)
def test_random_split_indices_rejects(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        random_split_indices(100, **kwargs)


def test_random_splits_among_some_nodes() -> None:
    labels = torch.tensor([0, -1, 1] * 40)  # every third node without a label
    labelled = torch.nonzero(labels >= 0).view(-1)
    splits = random_splits(len(labels), num_splits=3, random_state=4, among=labelled)
    # the fractions are of the 80 labelled nodes, and the splits hold them all, each once
    for split in splits:
        assert [len(part) for part in split] == [8, 8, 64]
        assert torch.equal(torch.sort(torch.cat(list(split))).values, labelled)
    # among every node, in order: the splits of the plain call
    for got, want in zip(random_splits(120, num_splits=3, random_state=4, among=np.arange(120)),
                         random_splits(120, num_splits=3, random_state=4), strict=True):
        assert all(torch.equal(a, b) for a, b in zip(got, want))
    with pytest.raises(ValueError, match=r"among must hold node indices in \[0, 120\) \(got values from 0 to 120\)"):
        random_splits(120, among=[0, 120])
    with pytest.raises(ValueError, match="among must not repeat a node index"):
        random_splits(120, among=[3, 3, 4])
    # a mask of the nodes gives the splits of their indices
    for got, want in zip(random_splits(120, num_splits=3, random_state=4, among=labels >= 0), splits, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(got, want))
    with pytest.raises(ValueError, match=r"among as a mask must hold one entry per node \(120; got 3\)"):
        random_splits(120, among=torch.tensor([True, False, True]))
    with pytest.raises(ValueError, match="among must hold integer node indices or a bool mask"):
        random_splits(120, among=[0.5, 1.7])
    with pytest.raises(ValueError, match=r"among holds no node to split \(no labelled node\?\)"):
        random_splits(120, among=torch.zeros(120, dtype=torch.bool))


def test_random_splits_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError, match=r"got train=0.6, val=0.5"):
        random_splits(100, train=0.6, val=0.5)


def test_stratified_kfold_indices_on_mutag(mutag_histograms: tuple[np.ndarray, np.ndarray]) -> None:
    _, y = mutag_histograms
    n, k = len(y), 10
    folds = stratified_kfold_indices(torch.as_tensor(y), n_splits=k, val_size=0.1, random_state=0)
    assert len(folds) == k
    tests = np.concatenate([fold.test.numpy() for fold in folds])
    assert np.array_equal(np.sort(tests), np.arange(n))  # test folds partition the data set
    classes, totals = np.unique(y, return_counts=True)
    for fold in folds:
        assert_partition(fold, n)
        test, val, train = fold.test.numpy(), fold.val.numpy(), fold.train.numpy()
        assert np.intersect1d(val, test).size == 0
        for cls, total in zip(classes, totals):
            # stratified: every class appears floor or ceil of total / k times per test fold
            assert int((y[test] == cls).sum()) in (total // k, -(-total // k))
        # the validation share is carved from the training part: ceil(0.1 * (n - |test|))
        assert len(val) == int(np.ceil(0.1 * (n - len(test))))
        for cls in classes:
            share_val = (y[val] == cls).mean()
            share_train = (y[train] == cls).mean()
            assert abs(share_val - share_train) < 0.15
    again = stratified_kfold_indices(y, n_splits=k, random_state=0)
    other = stratified_kfold_indices(y, n_splits=k, random_state=1)
    assert all(
        torch.equal(a.val, b.val) and torch.equal(a.test, b.test) for a, b in zip(folds, again)
    )
    assert any(not torch.equal(a.test, b.test) for a, b in zip(folds, other))


def test_stratified_kfold_indices_without_validation() -> None:
    y = np.array([0] * 12 + [1] * 8)
    folds = stratified_kfold_indices(y, n_splits=4, val_size=0.0)
    assert all(fold.val.numel() == 0 for fold in folds)
    assert all(len(fold.train) + len(fold.test) == 20 for fold in folds)


def test_stratified_kfold_indices_rejects_tiny_class() -> None:
    y = np.array([0] * 30 + [1] * 3)
    with pytest.raises(ValueError, match=r"class 1 has 3 \(got class counts \{0: 30, 1: 3\}\)"):
        stratified_kfold_indices(y, n_splits=10)
    with pytest.raises(ValueError, match="val_size"):
        stratified_kfold_indices(y, n_splits=3, val_size=1.0)


def test_stratified_kfold_indices_names_what_the_validation_draw_lacks() -> None:
    # every class has K members, yet a fold's training part keeps one of class 0
    with pytest.raises(ValueError, match=r"class 0 has 1 member in the training part of fold 0 .* give the class "
                                         r"more members .*n_splits=2; at least 2.*val_size=0"):
        stratified_kfold_indices([0, 0, 1, 1, 1, 1, 1, 1], n_splits=2)
    assert len(stratified_kfold_indices([0, 0, 1, 1, 1, 1, 1, 1], n_splits=2, val_size=0.0)) == 2
    # ten classes, 90 training items per fold: a 10 % validation part (9 items) cannot hold one of each
    many = np.repeat(np.arange(10), 10)
    with pytest.raises(ValueError, match=r"would hold 9 of its 90 training items.*10 classes; choose val_size "
                                         r"between 0\.111 and 0\.889 \(now 0\.1\)"):
        stratified_kfold_indices(many, n_splits=10)
    folds = stratified_kfold_indices(many, n_splits=10, val_size=0.2)
    assert all(set(many[fold.val.numpy()]) == set(range(10)) for fold in folds)


def test_check_split_forms_agree_and_reject_leaks() -> None:
    n = 10
    train, val, test = np.arange(0, 6), np.arange(6, 8), np.arange(8, 10)
    masks = [np.isin(np.arange(n), part) for part in (train, val, test)]
    from_indices = check_split((train, val, test), n)
    from_masks = check_split(tuple(torch.as_tensor(m) for m in masks), n)
    from_ogb = check_split({"train": train.tolist(), "valid": val, "test": test}, n)
    for split in (from_masks, from_ogb):
        for a, b in zip(from_indices, split):
            assert torch.equal(a, b)
    with pytest.raises(ValueError, match="'train' and 'test' overlap in 1"):
        check_split((np.array([0, 1, 2, 9]), val, test), n)
    with pytest.raises(ValueError, match="both 'val' and 'valid'"):
        check_split({"train": train, "val": val, "valid": np.arange(8, 9), "test": test}, n)
    with pytest.raises(ValueError, match="outside"):
        check_split((train, val, np.array([8, 10])), n)
    with pytest.raises(ValueError, match="length 9"):
        check_split((masks[0][:9], masks[1], masks[2]), n)
    with pytest.raises(ValueError, match="keys"):
        check_split({"train": train, "test": test}, n)
    with pytest.raises(ValueError, match="'test' is empty"):
        check_split((train, val, []), n)


def test_public_splits_on_cora(cora: Any) -> None:
    (split,) = public_splits(cora)
    assert [len(part) for part in split] == [140, 500, 1000]
    assert torch.equal(split.train, cora.train_mask.nonzero().view(-1))
    assert len(to_splits(cora, cora.num_nodes)) == 1
    with pytest.raises(ValueError, match="length 2708 but there are 100"):
        to_splits(cora, 100)


def test_masks_with_several_columns_give_several_splits() -> None:
    generator = torch.Generator().manual_seed(0)
    perm = torch.stack([torch.randperm(30, generator=generator) for _ in range(3)], dim=1)
    train, val, test = perm < 10, (perm >= 10) & (perm < 20), perm >= 20
    splits = masks_to_splits(train, val, test)
    assert len(splits) == 3
    for s, split in enumerate(splits):
        assert torch.equal(split.val, val[:, s].nonzero().view(-1))
        assert_partition(split, 30)


def test_a_one_column_mask_serves_every_split() -> None:
    # PyG's WikiCS: 20 columns of training / validation masks, one test mask
    generator = torch.Generator().manual_seed(0)
    test = torch.zeros(30, dtype=torch.bool)
    test[20:] = True
    perm = torch.stack([torch.randperm(20, generator=generator) for _ in range(4)], dim=1)
    train = torch.cat([perm < 10, torch.zeros(10, 4, dtype=torch.bool)])
    val = torch.cat([perm >= 10, torch.zeros(10, 4, dtype=torch.bool)])
    splits = masks_to_splits(train, val, test)
    assert len(splits) == 4 and all(torch.equal(split.test, torch.arange(20, 30)) for split in splits)
    with pytest.raises(ValueError, match=r"the same shape, or \[N\] beside \[N, S\]"):
        masks_to_splits(train, val[:, :2], test)


def test_to_splits_distinguishes_one_split_from_a_list() -> None:
    one = ([0, 1, 2], [3], [4, 5])
    assert len(to_splits(one, 6)) == 1
    assert len(to_splits([one, one], 6)) == 2
    assert len(to_splits(random_splits(50, num_splits=3), 50)) == 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_random_splits_from_a_cuda_generator() -> None:
    splits = random_split_indices(20, num_runs=2, random_state=torch.Generator("cuda").manual_seed(0))
    assert all(part.device.type == "cpu" for split in splits for part in (split.train, split.val, split.test))
    assert sorted(torch.cat([splits[0].train, splits[0].val, splits[0].test]).tolist()) == list(range(20))
