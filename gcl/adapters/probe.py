r"""Linear probe on frozen features, shared by the adapters' demonstrations."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["linear_probe", "split_indices"]


def split_indices(labels: Tensor, test_size: float = 0.3, random_state: int = 0) -> tuple[Tensor, Tensor]:
    r"""Stratified training / test indices (scikit-learn's :func:`train_test_split`).

    Args:
        labels (torch.Tensor): Classes :obj:`[M]`.
        test_size (float, optional): Fraction held out for testing. (default: :obj:`0.3`)
        random_state (int, optional): Seed of the split. (default: :obj:`0`)

    Returns:
        (train_index, test_index): Two ``long`` tensors that partition ``range(M)``.
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1) (got {test_size})")
    from sklearn.model_selection import train_test_split

    y = labels.detach().cpu().numpy()
    train, test = train_test_split(
        np.arange(len(y)), test_size=test_size, stratify=y, random_state=random_state
    )
    return torch.as_tensor(np.sort(train)), torch.as_tensor(np.sort(test))


def linear_probe(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    C: float = 1.0,
    random_state: int = 0,
) -> float:
    r"""Test accuracy of a logistic regression fitted on frozen features, the linear
    evaluation protocol of `SimCLR <https://arxiv.org/abs/2002.05709>`_.

    Features are standardised with statistics of the training part only; the test part
    is seen once, for scoring.

    .. math::
        \mathrm{acc} = \frac{1}{|T|} \sum_{i \in T} \mathbb{1}\big[\arg\max_c
        (W \hat{h}_i + b)_c = y_i\big].

    Args:
        train_features (torch.Tensor): :obj:`[M_train, d]`.
        train_labels (torch.Tensor): :obj:`[M_train]`.
        test_features (torch.Tensor): :obj:`[M_test, d]`.
        test_labels (torch.Tensor): :obj:`[M_test]`.
        C (float, optional): Inverse L2 strength of the classifier. (default: :obj:`1.0`)
        random_state (int, optional): Seed of the solver. (default: :obj:`0`)

    Returns:
        float: Accuracy on the test part, in :math:`[0, 1]`.
    """
    if C <= 0:
        raise ValueError(f"C must be > 0 (got {C})")
    for name, x, y in [
        ("train", train_features, train_labels),
        ("test", test_features, test_labels),
    ]:
        if x.dim() != 2 or y.shape != (x.size(0),) or x.size(0) == 0:
            raise ValueError(
                f"{name}_features must be [M, d] and {name}_labels [M] with M > 0 "
                f"(got {tuple(x.shape)} and {tuple(y.shape)})"
            )
    if train_features.size(1) != test_features.size(1):
        raise ValueError(
            "train_features and test_features must have the same width "
            f"(got {train_features.size(1)} and {test_features.size(1)})"
        )
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=random_state)
    )
    model.fit(train_features.detach().cpu().double().numpy(), train_labels.cpu().numpy())
    predicted = model.predict(test_features.detach().cpu().double().numpy())
    return float(np.mean(predicted == test_labels.cpu().numpy()))
