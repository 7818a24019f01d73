from __future__ import annotations

import math

import pytest
import torch

from gcl.losses import DebiasedContrastiveLoss, HardNegativeLoss, InfoNCE, functional

from . import naive


def _views(n: int = 6, d: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    z1 = torch.randn(n, d, dtype=torch.float64)
    return z1, z1 + 0.8 * torch.randn(n, d, dtype=torch.float64)


@pytest.mark.parametrize("temperature", [0.1, 0.5])
@pytest.mark.parametrize("tau_plus", [0.0, 0.05, 0.1, 0.3])
def test_dcl_matches_reference_estimator(temperature: float, tau_plus: float) -> None:
    z1, z2 = _views()
    loss = DebiasedContrastiveLoss(temperature, tau_plus)(z1, z2)
    assert loss.item() == pytest.approx(
        naive.dcl_hcl(z1, z2, temperature, tau_plus, None), rel=1e-10
    )


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("tau_plus", [0.0, 0.1])
def test_hcl_matches_reference_estimator(beta: float, tau_plus: float) -> None:
    z1, z2 = _views()
    loss = HardNegativeLoss(0.5, tau_plus, beta)(z1, z2)
    assert loss.item() == pytest.approx(naive.dcl_hcl(z1, z2, 0.5, tau_plus, beta), rel=1e-10)


def test_clamp_branch_is_used_and_matches() -> None:
    # Large tau_plus pushes the estimate below M e^{-1/t}: the clamp must take over.
    z1, z2 = _views()
    z2 = z1.clone()
    loss = DebiasedContrastiveLoss(0.5, tau_plus=0.9)(z1, z2)
    expected = naive.dcl_hcl(z1, z2, 0.5, 0.9, None)
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    m = 2 * z1.size(0) - 2
    assert loss.item() == pytest.approx(
        math.log(1 + m * math.exp(-1 / 0.5) / math.exp(1 / 0.5)), rel=1e-9
    )


def test_tau_plus_zero_is_nt_xent_and_beta_zero_is_dcl() -> None:
    z1, z2 = _views()
    nt_xent = InfoNCE(0.5)(z1, z2)
    assert DebiasedContrastiveLoss(0.5, 0.0)(z1, z2).item() == pytest.approx(
        nt_xent.item(), rel=1e-10
    )
    assert HardNegativeLoss(0.5, 0.1, 0.0)(z1, z2).item() == pytest.approx(
        DebiasedContrastiveLoss(0.5, 0.1)(z1, z2).item(), rel=1e-10
    )


def test_debiasing_lowers_the_loss_and_hardness_raises_it() -> None:
    z1, z2 = _views(n=16)
    plain = DebiasedContrastiveLoss(0.5, 0.0)(z1, z2).item()
    debiased = DebiasedContrastiveLoss(0.5, 0.1)(z1, z2).item()
    hard = HardNegativeLoss(0.5, 0.0, 2.0)(z1, z2).item()
    assert debiased < plain < hard


def test_symmetric_in_views() -> None:
    z1, z2 = _views()
    f = HardNegativeLoss(0.3, 0.1, 1.0)
    assert f(z1, z2).item() == pytest.approx(f(z2, z1).item(), rel=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_gradients_finite_including_small_temperature(dtype: torch.dtype) -> None:
    z1 = torch.randn(8, 4).to(dtype).requires_grad_(True)
    z2 = torch.randn(8, 4).to(dtype)
    for loss_fn in (
        DebiasedContrastiveLoss(0.02, 0.2),
        HardNegativeLoss(0.02, 0.2, 1.0),
        DebiasedContrastiveLoss(0.5, 0.9),
    ):
        loss = loss_fn(z1, z2)
        assert torch.isfinite(loss)
        (grad,) = torch.autograd.grad(loss, z1)
        assert torch.isfinite(grad).all()


def test_functional_twins() -> None:
    z1, z2 = _views()
    assert torch.equal(
        DebiasedContrastiveLoss(0.4, 0.2)(z1, z2),
        functional.debiased_contrastive_loss(z1, z2, temperature=0.4, tau_plus=0.2),
    )
    assert torch.equal(
        HardNegativeLoss(0.4, 0.2, 2.0)(z1, z2),
        functional.hard_negative_loss(z1, z2, temperature=0.4, tau_plus=0.2, beta=2.0),
    )


def test_bad_inputs() -> None:
    z1, z2 = _views()
    with pytest.raises(ValueError, match=r"tau_plus must be in \[0, 1\) \(got 1.0\)"):
        DebiasedContrastiveLoss(0.5, 1.0)
    with pytest.raises(ValueError, match="tau_plus"):
        HardNegativeLoss(0.5, -0.1)
    with pytest.raises(ValueError, match=r"beta must be .* \(got -1.0\)"):
        HardNegativeLoss(0.5, 0.1, -1.0)
    with pytest.raises(ValueError, match="temperature"):
        DebiasedContrastiveLoss(0.0)
    with pytest.raises(ValueError, match="at least 2"):
        DebiasedContrastiveLoss()(z1[:1], z2[:1])
    with pytest.raises(ValueError, match="same shape"):
        HardNegativeLoss()(z1, z2[:4])
