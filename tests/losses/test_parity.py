"""Parity with other libraries' implementations, run only where they are installed.

Neither library is a dependency of gcl; install them in a separate environment
(``pip install pytorch-metric-learning lightly``) to run these.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

from gcl.losses import BarlowTwinsLoss, InfoNCE, SupConLoss


@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_nt_xent_matches_pytorch_metric_learning(temperature: float) -> None:
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    z1, z2 = torch.randn(16, 8, dtype=torch.float64), torch.randn(16, 8, dtype=torch.float64)
    labels = torch.arange(16).repeat(2)
    theirs = pml_losses.NTXentLoss(temperature=temperature)(torch.cat([z1, z2]), labels)
    ours = InfoNCE(temperature=temperature)(z1, z2)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-8)


@pytest.mark.parametrize("temperature", [0.1, 0.3])
def test_sup_con_matches_pytorch_metric_learning(temperature: float) -> None:
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    embeddings = torch.randn(24, 8, dtype=torch.float64)
    labels = torch.randint(5, (24,))
    theirs = pml_losses.SupConLoss(temperature=temperature)(embeddings, labels)
    ours = SupConLoss(temperature=temperature)(embeddings, labels)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-8)


def _lightly_barlow_twins_module() -> ModuleType:
    # lightly.loss imports torchvision ops at package import; the Barlow Twins module
    # itself needs torch only, so load that file alone.
    spec = importlib.util.find_spec("lightly")
    if spec is None or spec.origin is None:
        pytest.skip("lightly is not installed")
    path = Path(spec.origin).parent / "loss" / "barlow_twins_loss.py"
    module_spec = importlib.util.spec_from_file_location("_lightly_barlow_twins_loss", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_barlow_twins_matches_lightly() -> None:
    lightly_loss = _lightly_barlow_twins_module()
    z1, z2 = torch.randn(32, 16), torch.randn(32, 16)
    theirs = lightly_loss.BarlowTwinsLoss(lambda_param=5e-3)(z1, z2)
    ours = BarlowTwinsLoss(off_diagonal_weight=5e-3, normalization="batchnorm", eps=1e-5)(z1, z2)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)
