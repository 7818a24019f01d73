from __future__ import annotations

from typing import Any

import pytest
import torch

from gcl.losses import BarlowTwinsLoss, cross_correlation, functional


def _views(
    n: int = 32, d: int = 8, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    z1 = torch.randn(n, d, dtype=dtype) * 3 + 1
    return z1, 0.7 * z1 + torch.randn(n, d, dtype=dtype)


def _off_diagonal(c: torch.Tensor) -> torch.Tensor:
    d = c.size(0)
    return torch.stack([c[i, j] for i in range(d) for j in range(d) if i != j])


def reference_facebook(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 0.0051) -> torch.Tensor:
    """facebookresearch/barlowtwins: c = bn(z1).T @ bn(z2) / N with BatchNorm1d(affine=False)."""
    bn = torch.nn.BatchNorm1d(z1.size(1), affine=False).to(z1.dtype).train()
    c = bn(z1).T @ bn(z2) / z1.size(0)
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    return on_diag + lambd * _off_diagonal(c).pow(2).sum()


def reference_graph_barlow_twins(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    """pbielak/graph-barlow-twins: unbiased std + 1e-15, lambda = 1 / d."""
    eps = 1e-15
    n, d = z_a.shape
    a = (z_a - z_a.mean(dim=0)) / (z_a.std(dim=0) + eps)
    b = (z_b - z_b.mean(dim=0)) / (z_b.std(dim=0) + eps)
    c = a.T @ b / n
    return (1 - c.diagonal()).pow(2).sum() + (1 / d) * _off_diagonal(c).pow(2).sum()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_original_matches_facebook_reference(dtype: torch.dtype) -> None:
    z1, z2 = _views(dtype=dtype)
    loss = BarlowTwinsLoss.original()(z1, z2)
    expected = reference_facebook(z1, z2)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert loss.dtype == dtype
    assert loss.item() == pytest.approx(expected.item(), rel=tol)
    assert BarlowTwinsLoss()(z1, z2).item() == pytest.approx(loss.item(), rel=tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_graph_barlow_twins_matches_reference(dtype: torch.dtype) -> None:
    z1, z2 = _views(dtype=dtype)
    loss = BarlowTwinsLoss.graph_barlow_twins()(z1, z2)
    expected = reference_graph_barlow_twins(z1, z2)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert loss.item() == pytest.approx(expected.item(), rel=tol)


def test_gradients_match_references() -> None:
    z1, z2 = _views()
    for ours, reference in (
        (BarlowTwinsLoss.original(), reference_facebook),
        (BarlowTwinsLoss.graph_barlow_twins(), reference_graph_barlow_twins),
    ):
        a1, a2 = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
        b1, b2 = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
        ga = torch.autograd.grad(ours(a1, a2), (a1, a2))
        gb = torch.autograd.grad(reference(b1, b2), (b1, b2))
        for x, y in zip(ga, gb):
            assert torch.isfinite(x).all()
            torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-12)


def test_invariant_to_per_dimension_affine_rescaling() -> None:
    z1, z2 = _views()
    scale1 = torch.rand(8, dtype=torch.float64) * 3 + 0.2
    scale2 = torch.rand(8, dtype=torch.float64) * 3 + 0.2
    shift1, shift2 = torch.randn(8, dtype=torch.float64) * 5, torch.randn(8, dtype=torch.float64)
    for loss_fn in (
        BarlowTwinsLoss(normalization="batchnorm", eps=0.0),
        BarlowTwinsLoss.graph_barlow_twins(),
    ):
        base = loss_fn(z1, z2)
        moved = loss_fn(z1 * scale1 + shift1, z2 * scale2 + shift2)
        assert moved.item() == pytest.approx(base.item(), rel=1e-9)


def test_identical_standardised_views_are_near_zero_on_diagonal() -> None:
    # Decorrelated dimensions (orthonormal columns after centring) give C = I, loss 0.
    q, _ = torch.linalg.qr(torch.randn(64, 4, dtype=torch.float64))
    z = q - q.mean(dim=0)
    loss = BarlowTwinsLoss(normalization="batchnorm", eps=0.0)(z, z)
    c = cross_correlation(z, z, normalization="batchnorm", eps=0.0)
    assert torch.allclose(torch.diagonal(c), torch.ones(4, dtype=torch.float64))
    assert loss.item() >= 0
    assert loss.item() < 0.1


def test_symmetric_in_views_and_scale_and_weight() -> None:
    z1, z2 = _views()
    loss_fn = BarlowTwinsLoss(off_diagonal_weight=0.1)
    assert loss_fn(z1, z2).item() == pytest.approx(loss_fn(z2, z1).item(), rel=1e-12)
    assert BarlowTwinsLoss(off_diagonal_weight=0.1, scale=0.5)(z1, z2).item() == pytest.approx(
        0.5 * loss_fn(z1, z2).item(), rel=1e-12
    )
    c = cross_correlation(z1, z2)
    on = (1 - torch.diagonal(c)).pow(2).sum()
    assert BarlowTwinsLoss(off_diagonal_weight=0.0)(z1, z2).item() == pytest.approx(
        on.item(), rel=1e-12
    )


def test_functional_twin() -> None:
    z1, z2 = _views()
    assert torch.equal(
        BarlowTwinsLoss.graph_barlow_twins()(z1, z2),
        functional.barlow_twins_loss(z1, z2, off_diagonal_weight=None, normalization="unbiased"),
    )


def test_half_precision_returns_float32() -> None:
    z1, z2 = _views(dtype=torch.float32)
    loss = BarlowTwinsLoss()(z1.half(), z2.half())
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(
        BarlowTwinsLoss()(z1.half().float(), z2.half().float()).item(), rel=1e-6
    )


def test_bad_inputs() -> None:
    z1, z2 = _views()
    with pytest.raises(ValueError, match=r"off_diagonal_weight must be .* \(got -0.1\)"):
        BarlowTwinsLoss(off_diagonal_weight=-0.1)
    with pytest.raises(ValueError, match="normalization"):
        BarlowTwinsLoss(normalization="layernorm")
    with pytest.raises(ValueError, match="eps"):
        BarlowTwinsLoss(eps=-1.0)
    with pytest.raises(ValueError, match="scale"):
        BarlowTwinsLoss(scale=0.0)
    with pytest.raises(ValueError, match="at least 2"):
        BarlowTwinsLoss()(z1[:1], z2[:1])
    with pytest.raises(ValueError, match="same shape"):
        BarlowTwinsLoss()(z1, z2[:, :3])
    bad = z2.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="z2 contains NaN or inf"):
        BarlowTwinsLoss()(z1, bad)


@pytest.mark.parametrize("make", [BarlowTwinsLoss.graph_barlow_twins, BarlowTwinsLoss,
                                  lambda: BarlowTwinsLoss(eps=0.0)])
def test_a_dimension_constant_over_the_batch_gets_finite_gradients(make: Any) -> None:
    """A dead unit (constant output) has zero variance: the square root's infinite
    derivative there used to turn its weights' gradients into NaN, which one optimiser
    step spreads through the model. torch.std's gradient (the reference) is zero there."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(5, 4)
    with torch.no_grad():
        layer.weight[2] = 0.0
    x1, x2 = torch.randn(16, 5), torch.randn(16, 5)
    loss = make()(layer(x1), layer(x2))
    loss.backward()
    assert torch.isfinite(loss)
    # the dead unit is uncorrelated (C_ii = 0, not the ±1 that rounding in its mean would
    # give after standardisation) and its weights get no gradient
    loss_fn = make()
    c = cross_correlation(layer(x1), layer(x2), normalization=loss_fn.normalization, eps=loss_fn.eps)
    assert c[2, 2] == 0.0
    assert torch.equal(layer.weight.grad[2], torch.zeros(5))
    assert torch.isfinite(layer.weight.grad).all() and torch.isfinite(layer.bias.grad).all()


def test_a_dimension_constant_in_one_view_only_gets_the_references_gradient() -> None:
    """Constant in one view only, a dimension is not dead: C_ii pulls it towards the other
    view's with a gradient of order 1/eps ('unbiased') or 1/sqrt(eps) ('batchnorm'), as in
    the reference implementations (the documentation promised zero)."""
    z1, z2 = _views()
    z2[:, 3] = 2.5
    for ours, reference, order in (
        (BarlowTwinsLoss.original(), reference_facebook, 1e-5 ** -0.5),
        (BarlowTwinsLoss.graph_barlow_twins(), reference_graph_barlow_twins, 1e15),
    ):
        a1, a2 = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
        b1, b2 = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
        ga = torch.autograd.grad(ours(a1, a2), (a1, a2))
        gb = torch.autograd.grad(reference(b1, b2), (b1, b2))
        for x, y in zip(ga, gb):
            torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-9)
        assert 1e-3 * order < float(ga[1][:, 3].abs().max()) < order
