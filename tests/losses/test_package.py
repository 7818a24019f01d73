from __future__ import annotations

import subprocess
import sys

import torch
from torch import nn

import gcl.losses as losses
from gcl.losses import functional


def test_imports_torch_only() -> None:
    code = (
        "import sys, gcl.losses; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('torch_geometric', 'ogb', 'sklearn', 'networkx', 'numpy.random')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_all_names_exist_and_losses_are_modules() -> None:
    for name in losses.__all__:
        assert hasattr(losses, name), name
    module_names = [
        "InfoNCE",
        "SupConLoss",
        "LabelContrastiveLoss",
        "BarlowTwinsLoss",
        "ContrastiveLoss",
        "TripletLoss",
        "NPairLoss",
        "NCELoss",
        "DebiasedContrastiveLoss",
        "HardNegativeLoss",
        "MoCHiLoss",
        "ProtoNCELoss",
        "MultiviewContrastiveLoss",
        "IMixLoss",
    ]
    for name in module_names:
        cls = getattr(losses, name)
        assert issubclass(cls, nn.Module)
        assert name in losses.__all__
    for name in functional.__all__:
        assert callable(getattr(functional, name))


def test_losses_are_scalars_and_stateless() -> None:
    z1, z2 = torch.randn(8, 4), torch.randn(8, 4)
    for loss_fn in (losses.InfoNCE(), losses.BarlowTwinsLoss(), losses.DebiasedContrastiveLoss()):
        loss = loss_fn(z1, z2)
        assert loss.dim() == 0
        assert len(loss_fn.state_dict()) == 0
