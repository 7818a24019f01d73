r"""Index splits for the evaluation and supervised-training protocols.

The split functions return lists of :class:`Split` triples of ``torch.long`` index tensors, so the same
object can index a PyG dataset (``dataset[split.train]``), a node tensor (``x[split.val]``) or a
numpy array of embeddings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold, train_test_split
from torch import Tensor

from gcl.eval._validation import (
    as_index_tensor,
    check_int,
    check_labels,
    check_min_class_count,
    check_random_state,
    class_counts,
    to_numpy,
)


class Split(NamedTuple):
    r"""Disjoint train / validation / test indices (``torch.long``, sorted within
    :func:`stratified_kfold_indices`, in draw order within the random splits)."""

    train: Tensor
    val: Tensor
    test: Tensor


def _torch_generator(random_state: int | torch.Generator | None) -> torch.Generator | None:
    if isinstance(random_state, torch.Generator) or random_state is None:
        return random_state
    check_random_state(random_state)
    return torch.Generator().manual_seed(int(random_state))


def check_ratios(ratios: Any) -> tuple[float, float, float]:
    r"""Returns the train, validation and test fractions of :func:`random_split_indices`: three
    numbers in :math:`(0, 1)` summing to one, or raises :class:`ValueError` with the value received.

    Example:
        >>> check_ratios([0.8, 0.1, 0.1])
        (0.8, 0.1, 0.1)
    """
    try:
        if isinstance(ratios, (str, bytes)):  # "811" would read as (8, 1, 1)
            raise TypeError("ratios")
        fractions = tuple(float(r) for r in ratios)
    except (TypeError, ValueError):
        raise ValueError(f"ratios must be three fractions in (0, 1) (got {ratios!r})") from None
    if len(fractions) != 3 or not all(0.0 < r < 1.0 for r in fractions):
        raise ValueError(f"ratios must be three fractions in (0, 1) (got {tuple(ratios)!r})")
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"ratios must sum to 1 (got {tuple(ratios)!r}, sum {sum(fractions)})")
    return fractions[0], fractions[1], fractions[2]


def random_split_indices(
    num_samples: int,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    num_runs: int = 10,
    random_state: int | torch.Generator | None = 0,
) -> list[Split]:
    r"""Random train / validation / test splits, the 80/10/10 protocol of `"Hierarchical Graph
    Pooling with Structure Learning" <https://arxiv.org/abs/1911.05954>`_ (HGP-SL), repeated
    :obj:`num_runs` times.

    Each run draws a permutation :math:`\pi` of :math:`\{0, \dots, N-1\}` and cuts it into
    consecutive blocks

    .. math::
        n_{\text{train}} = \lfloor r_1 N \rfloor, \quad
        n_{\text{val}} = \lfloor r_2 N \rfloor, \quad
        n_{\text{test}} = N - n_{\text{train}} - n_{\text{val}},

    exactly as :func:`torch.utils.data.random_split` does with lengths
    ``[n_train, n_val, n_test]``: with the same seeded generator, run 0 equals
    ``random_split(range(N), [n_train, n_val, n_test], generator)``. Runs are drawn one after
    another from one generator.

    Args:
        num_samples (int): Number of graphs or nodes :math:`N`.
        ratios ((float, float, float), optional): Train, validation and test fractions; positive,
            summing to one. (default: :obj:`(0.8, 0.1, 0.1)`)
        num_runs (int, optional): Number of independent splits. (default: :obj:`10`)
        random_state (int or torch.Generator, optional): Seed of a fresh
            :class:`torch.Generator`, a generator to draw from, or :obj:`None` for torch's global
            generator. (default: :obj:`0`)

    Example:
        >>> splits = random_split_indices(100, num_runs=2)
        >>> [len(part) for part in splits[0]]
        [80, 10, 10]
    """
    check_int(num_samples, "num_samples", 1)
    check_int(num_runs, "num_runs", 1)
    fractions = check_ratios(ratios)
    num_train = int(num_samples * fractions[0])
    num_val = int(num_samples * fractions[1])
    num_test = num_samples - num_train - num_val
    if min(num_train, num_val, num_test) < 1:
        raise ValueError(
            f"ratios {tuple(ratios)!r} leave an empty part for num_samples={num_samples} "
            f"(train {num_train}, val {num_val}, test {num_test})"
        )
    generator = _torch_generator(random_state)
    splits = []
    for _ in range(num_runs):
        # on the generator's device (a CUDA generator draws on its GPU); the splits live on the CPU
        perm = torch.randperm(num_samples, generator=generator,
                              device=None if generator is None else generator.device).cpu()
        splits.append(
            Split(
                train=perm[:num_train],
                val=perm[num_train : num_train + num_val],
                test=perm[num_train + num_val :],
            )
        )
    return splits


def random_splits(
    num_nodes: int,
    train: float = 0.1,
    val: float = 0.1,
    num_splits: int = 20,
    random_state: int | torch.Generator | None = 0,
    *,
    among: Tensor | np.ndarray | Sequence[int] | None = None,
) -> list[Split]:
    r"""Random node splits with 10 % training, 10 % validation and 80 % test nodes, the linear
    evaluation protocol of `"Graph Contrastive Learning with Adaptive Augmentation"
    <https://arxiv.org/abs/2010.14945>`_ (GCA) and `"Graph Barlow Twins"
    <https://arxiv.org/abs/2106.02466>`_.

    A thin wrapper around :func:`random_split_indices` with ratios
    :math:`(r_{\text{train}}, r_{\text{val}}, 1 - r_{\text{train}} - r_{\text{val}})`:

    .. math::
        n_{\text{train}} = \lfloor r_{\text{train}} N \rfloor, \quad
        n_{\text{val}} = \lfloor r_{\text{val}} N \rfloor, \quad
        n_{\text{test}} = N - n_{\text{train}} - n_{\text{val}}.

    Args:
        num_nodes (int): Number of nodes :math:`N`.
        train (float, optional): Training fraction. (default: :obj:`0.1`)
        val (float, optional): Validation fraction. (default: :obj:`0.1`)
        num_splits (int, optional): Number of splits. (default: :obj:`20`)
        random_state (int or torch.Generator, optional): See :func:`random_split_indices`.
            (default: :obj:`0`)
        among (Tensor or array, optional): The node indices to split, or a bool mask of
            them (e.g. the labelled nodes, ``labels >= 0``, where ``-1`` marks a node
            without a label): the fractions are of their number and the splits hold only them.
            Given all :math:`N` nodes in order, the splits are those without it.
            (default: :obj:`None`, every node)

    Example:
        >>> splits = random_splits(2708, num_splits=3)
        >>> [len(part) for part in splits[0]]
        [270, 270, 2168]
        >>> labels = torch.tensor([0, -1, 1, 1, -1, 0, 1, 0, 1, 0, 0, 1])
        >>> [len(part) for part in random_splits(12, 0.25, 0.25, among=torch.nonzero(labels >= 0).view(-1))[0]]
        [2, 2, 6]
    """
    if not (0.0 < train < 1.0 and 0.0 < val < 1.0 and train + val < 1.0):
        raise ValueError(
            f"train and val must be fractions in (0, 1) with train + val < 1 "
            f"(got train={train!r}, val={val!r})"
        )
    ratios = (train, val, 1.0 - train - val)
    if among is None:
        return random_split_indices(num_nodes, ratios, num_runs=num_splits, random_state=random_state)
    nodes = (among.detach().cpu() if isinstance(among, Tensor) else torch.as_tensor(np.asarray(among))).view(-1)
    if nodes.dtype == torch.bool:  # a mask over the nodes
        if nodes.numel() != num_nodes:
            raise ValueError(f"among as a mask must hold one entry per node ({num_nodes}; got {nodes.numel()})")
        nodes = torch.nonzero(nodes).view(-1)
    elif nodes.is_floating_point() or nodes.is_complex():
        raise ValueError(f"among must hold integer node indices or a bool mask (got {nodes.dtype})")
    nodes = nodes.long()
    if nodes.numel() == 0:
        raise ValueError("among holds no node to split (no labelled node?)")
    if (int(nodes.min()) < 0 or int(nodes.max()) >= num_nodes):
        raise ValueError(f"among must hold node indices in [0, {num_nodes}) (got values from {int(nodes.min())} "
                         f"to {int(nodes.max())})")
    if torch.unique(nodes).numel() != nodes.numel():
        raise ValueError("among must not repeat a node index")
    splits = random_split_indices(nodes.numel(), ratios, num_runs=num_splits, random_state=random_state)
    return [Split(*(nodes[part] for part in split)) for split in splits]


def _check_stratified_draw(labels: np.ndarray, val_size: float, fold: int, n_splits: int) -> None:
    r"""What scikit-learn's stratified validation draw from a fold's training part needs, named
    with the settings that change it: two members of every class, and room for every class
    on both sides."""
    counts = class_counts(labels)
    smallest = min(counts, key=lambda label: counts[label])
    if counts[smallest] < 2:
        raise ValueError(
            f"class {smallest!r} has {counts[smallest]} member in the training part of fold {fold} "
            f"(class counts {counts}); a stratified validation part needs 2 in every fold's training part: "
            f"give the class more members or leave it out, use fewer folds (n_splits={n_splits}; at least 2) "
            "while the class has enough members for them, or, where the protocol allows it, draw no "
            "validation part (val_size=0 in stratified_kfold_indices)")
    num_val = math.ceil(val_size * labels.shape[0])
    num_classes = len(counts)
    if num_val < num_classes or labels.shape[0] - num_val < num_classes:
        raise ValueError(
            f"a stratified validation part of fold {fold} would hold {num_val} of its {labels.shape[0]} training "
            f"items, and both parts need one item of each of the {num_classes} classes; choose val_size between "
            f"{num_classes / labels.shape[0]:.3g} and {1 - num_classes / labels.shape[0]:.3g} (now {val_size:g})")


def stratified_kfold_indices(
    y: Any,
    n_splits: int = 10,
    val_size: float = 0.1,
    random_state: int | None = 0,
) -> list[Split]:
    r"""Stratified :math:`K`-fold cross-validation folds with a validation subset carved out of each
    training part, the graph-classification protocol of `"Label Contrastive Coding based Graph
    Neural Network for Graph Classification" <https://arxiv.org/abs/2101.05486>`_ (LCGNN), with the
    held-out validation set of `"A Fair Comparison of Graph Neural Networks for Graph
    Classification" <https://arxiv.org/abs/1912.09893>`_.

    Fold :math:`k` tests on the :math:`k`-th block :math:`T_k` of a shuffled
    :class:`~sklearn.model_selection.StratifiedKFold`; its validation set :math:`V_k` is a
    stratified sample of the remaining graphs, so early stopping and model selection never look at
    the test fold:

    .. math::
        V_k \subset \{1, \dots, N\} \setminus T_k, \quad
        |V_k| = \lceil \rho \, (N - |T_k|) \rceil, \quad
        \mathrm{train}_k = \{1, \dots, N\} \setminus (T_k \cup V_k).

    The test blocks partition the data set. Every part is sorted.

    Args:
        y (array-like or torch.Tensor): Class label of every graph, shape ``[N]`` or ``[N, 1]``.
        n_splits (int, optional): Number of folds :math:`K`; every class needs at least
            :math:`K` members. (default: :obj:`10`)
        val_size (float, optional): Validation fraction :math:`\rho` of each training part, in
            :math:`[0, 1)`; ``0`` gives empty validation sets. (default: :obj:`0.1`)
        random_state (int, optional): Seed for the fold shuffle and the validation draw;
            :obj:`None` draws from numpy's global state as scikit-learn does. (default: :obj:`0`)

    Example:
        >>> folds = stratified_kfold_indices([0] * 50 + [1] * 50, n_splits=5)
        >>> [len(part) for part in folds[0]]
        [72, 8, 20]
    """
    labels = to_numpy(y)
    labels = check_labels(labels, labels.shape[0] if labels.ndim else 0)
    check_int(n_splits, "n_splits", 2)
    if not (0.0 <= float(val_size) < 1.0):
        raise ValueError(f"val_size must be a fraction in [0, 1) (got {val_size!r})")
    check_random_state(random_state)
    check_min_class_count(labels, n_splits, "stratified_kfold_indices")

    outer = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    folds = []
    placeholder = np.zeros((labels.shape[0], 1))
    for fold, (train_part, test) in enumerate(outer.split(placeholder, labels)):
        if val_size > 0:
            _check_stratified_draw(labels[train_part], float(val_size), fold, n_splits)
            train, val = train_test_split(
                train_part,
                test_size=val_size,
                stratify=labels[train_part],
                random_state=random_state,
            )
        else:
            train, val = train_part, np.empty(0, dtype=np.int64)
        folds.append(
            Split(
                train=as_index_tensor(np.sort(train)),
                val=as_index_tensor(np.sort(val)),
                test=as_index_tensor(np.sort(test)),
            )
        )
    return folds


def masks_to_splits(train_mask: Any, val_mask: Any, test_mask: Any) -> list[Split]:
    r"""Converts boolean masks to index splits.

    Masks of shape ``[N]`` give one split; masks of shape ``[N, S]`` (PyG's layout for data sets
    shipped with several splits) give :math:`S` splits, one per column, and a mask of shape ``[N]``
    beside them serves every split (WikiCS's single test mask).

    Args:
        train_mask (array-like or torch.Tensor): Training mask.
        val_mask (array-like or torch.Tensor): Validation mask.
        test_mask (array-like or torch.Tensor): Test mask.
    """
    masks = [to_numpy(mask) for mask in (train_mask, val_mask, test_mask)]
    for name, mask in zip(("train_mask", "val_mask", "test_mask"), masks):
        if mask.dtype != np.bool_:
            raise ValueError(f"{name} must be boolean (got dtype {mask.dtype})")
        if mask.ndim not in (1, 2):
            raise ValueError(f"{name} must have shape [N] or [N, S] (got {tuple(mask.shape)})")
    columns = [mask.reshape(mask.shape[0], -1) for mask in masks]
    widths = {column.shape[1] for column in columns} - {1}
    # a 1-D mask serves every split (PyG's WikiCS: 20 training / validation columns, one test mask)
    if len({column.shape[0] for column in columns}) != 1 or len(widths) > 1:
        raise ValueError(
            "train_mask, val_mask and test_mask must have the same shape, or [N] beside [N, S] "
            f"(got {[tuple(mask.shape) for mask in masks]})"
        )
    width = widths.pop() if widths else 1
    columns = [np.repeat(column, width, axis=1) if column.shape[1] == 1 else column for column in columns]
    return [
        check_split(tuple(column[:, s] for column in columns), num_samples=columns[0].shape[0])
        for s in range(columns[0].shape[1])
    ]


def public_splits(data: Any) -> list[Split]:
    r"""Returns the public split(s) stored on a PyG :class:`~torch_geometric.data.Data` object as
    ``train_mask`` / ``val_mask`` / ``test_mask`` (e.g. Planetoid's 140/500/1000 nodes on Cora).

    Args:
        data (torch_geometric.data.Data): Graph carrying the three masks.
    """
    missing = [
        name
        for name in ("train_mask", "val_mask", "test_mask")
        if getattr(data, name, None) is None
    ]
    if missing:
        raise ValueError(f"data has no public split: missing attribute(s) {missing}")
    return masks_to_splits(data.train_mask, data.val_mask, data.test_mask)


def _as_indices(part: Any, num_samples: int, name: str) -> np.ndarray:
    array = to_numpy(part)
    if array.ndim != 1:
        raise ValueError(f"split part '{name}' must be 1-D (got shape {tuple(array.shape)})")
    if array.dtype == np.bool_:
        if array.shape[0] != num_samples:
            raise ValueError(
                f"boolean mask '{name}' has length {array.shape[0]} but there are {num_samples} samples"
            )
        return np.flatnonzero(array)
    if array.size == 0:
        return np.empty(0, dtype=np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"split part '{name}' must be a boolean mask or integer indices (got dtype {array.dtype})"
        )
    if array.min() < 0 or array.max() >= num_samples:
        raise ValueError(
            f"split part '{name}' has indices outside [0, {num_samples}) "
            f"(got min {array.min()}, max {array.max()})"
        )
    if np.unique(array).size != array.size:
        raise ValueError(f"split part '{name}' repeats indices")
    return array.astype(np.int64, copy=False)


def check_split(split: Any, num_samples: int) -> Split:
    r"""Validates one split and returns it as a :class:`Split` of index tensors.

    Args:
        split: A :class:`Split`, a ``(train, val, test)`` sequence, or a mapping with keys
            ``"train"``, ``"val"`` (or OGB's ``"valid"``) and ``"test"``; each part is a boolean
            mask of length :obj:`num_samples` or an array of integer indices.
        num_samples (int): Number of samples the indices refer to.

    Raises:
        ValueError: If a part is malformed, out of range, empty (train and test), or if two parts
            share an index, which would leak test or validation samples into training.
    """
    if isinstance(split, Mapping):
        if "val" in split and "valid" in split:
            raise ValueError("split mapping has both 'val' and 'valid': give the validation part once")
        val_key = "val" if "val" in split else "valid"
        missing = [key for key in ("train", val_key, "test") if key not in split]
        if missing:
            raise ValueError(
                f"split mapping needs keys 'train', 'val' (or 'valid') and 'test' "
                f"(got keys {sorted(split)})"
            )
        parts = (split["train"], split[val_key], split["test"])
    elif isinstance(split, Sequence) and len(split) == 3:
        parts = tuple(split)
    else:
        raise ValueError(
            "a split must be a Split, a (train, val, test) sequence or a mapping with keys "
            f"train/val/test (got {type(split).__name__})"
        )
    train, val, test = (
        _as_indices(part, num_samples, name) for part, name in zip(parts, ("train", "val", "test"))
    )
    for name, part in (("train", train), ("test", test)):
        if part.size == 0:
            raise ValueError(f"split part '{name}' is empty")
    for (name_a, a), (name_b, b) in (
        (("train", train), ("val", val)),
        (("train", train), ("test", test)),
        (("val", val), ("test", test)),
    ):
        shared = np.intersect1d(a, b)
        if shared.size > 0:
            raise ValueError(
                f"split parts '{name_a}' and '{name_b}' overlap in {shared.size} index(es), "
                f"e.g. {shared[:5].tolist()}"
            )
    return Split(as_index_tensor(train), as_index_tensor(val), as_index_tensor(test))


def _is_single_split(split: Any) -> bool:
    if isinstance(split, (Split, Mapping)):
        return True
    if isinstance(split, Sequence) and not isinstance(split, str) and len(split) == 3:
        # A single split holds three 1-D index containers; a list of splits holds containers of them.
        return all(_is_flat(part) for part in split)
    return False


def _is_flat(part: Any) -> bool:
    if isinstance(part, (Tensor, np.ndarray)):
        return part.ndim == 1
    if isinstance(part, Sequence) and not isinstance(part, str):
        return len(part) == 0 or not isinstance(part[0], (Sequence, Mapping, Tensor, np.ndarray))
    return False


def to_splits(split: Any, num_samples: int) -> list[Split]:
    r"""Normalises any accepted split description to a list of validated :class:`Split` objects.

    Accepts one split (see :func:`check_split`), a sequence of splits, or an object with
    ``train_mask`` / ``val_mask`` / ``test_mask`` attributes (see :func:`public_splits`).

    Args:
        split: The split description.
        num_samples (int): Number of samples the indices refer to.
    """
    if hasattr(split, "train_mask"):
        mask_length = to_numpy(split.train_mask).shape[0]
        if mask_length != num_samples:
            raise ValueError(
                f"the split masks have length {mask_length} but there are {num_samples} samples"
            )
        return public_splits(split)
    if _is_single_split(split):
        return [check_split(split, num_samples)]
    if isinstance(split, Sequence) and not isinstance(split, str) and len(split) > 0:
        return [check_split(one, num_samples) for one in split]
    raise ValueError(f"cannot read a split from {type(split).__name__}")
