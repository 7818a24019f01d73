from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gcl.losses import InfoNCE, NTXentLoss, functional

from . import naive


def _views(
    n: int = 6, d: int = 5, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    z1 = torch.randn(n, d, dtype=dtype)
    return z1, z1 + 0.5 * torch.randn(n, d, dtype=dtype)


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_nt_xent_matches_simclr_formula(temperature: float) -> None:
    z1, z2 = _views()
    loss = InfoNCE(temperature=temperature)(z1, z2)
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(naive.nt_xent(z1, z2, temperature), rel=1e-10)
    assert NTXentLoss is InfoNCE
    assert InfoNCE.simclr(temperature)(z1, z2).item() == pytest.approx(loss.item(), rel=1e-12)


def test_graphcl_variant_matches_reference_formula() -> None:
    z1, z2 = _views(n=7)
    loss = InfoNCE.graphcl(temperature=0.2)(z1, z2)
    assert loss.item() == pytest.approx(naive.graphcl(z1, z2, 0.2), rel=1e-10)
    explicit = InfoNCE(
        temperature=0.2,
        symmetric=False,
        intra_view_negatives=False,
        exclude_positive_from_denominator=True,
    )(z1, z2)
    assert explicit.item() == pytest.approx(loss.item(), rel=1e-12)


def test_graphcl_variant_can_be_negative() -> None:
    # Perfectly aligned, well separated views: the positive dominates the negatives.
    z = torch.eye(4, dtype=torch.float64)
    assert InfoNCE.graphcl(temperature=0.1)(z, z).item() < 0


def test_moco_form_matches_formula() -> None:
    q, k = _views(n=5)
    queue = torch.randn(11, 5, dtype=torch.float64)
    loss = InfoNCE.moco(temperature=0.2)(q, k, queue)
    assert loss.item() == pytest.approx(naive.moco(q, k, queue, 0.2), rel=1e-10)
    # One-directional: the key's view never acts as an anchor.
    assert InfoNCE.moco(0.2)(q, k, queue).item() != pytest.approx(
        InfoNCE.moco(0.2)(k, q, queue).item()
    )


def test_external_negatives_are_added_to_in_batch_ones() -> None:
    z1, z2 = _views(n=4)
    negatives = torch.randn(3, 5, dtype=torch.float64)
    loss = InfoNCE(temperature=0.5, symmetric=False, intra_view_negatives=False)(z1, z2, negatives)
    a, b, c = (F.normalize(x, dim=1) for x in (z1, z2, negatives))
    total = 0.0
    for i in range(4):
        pos = math.exp(float(a[i] @ b[i]) / 0.5)
        den = sum(math.exp(float(a[i] @ b[j]) / 0.5) for j in range(4))
        den += sum(math.exp(float(a[i] @ c[j]) / 0.5) for j in range(3))
        total += -math.log(pos / den)
    assert loss.item() == pytest.approx(total / 4, rel=1e-10)


def test_symmetric_variant_is_symmetric_and_one_way_is_not() -> None:
    z1, z2 = _views()
    sym = InfoNCE(0.3)
    assert sym(z1, z2).item() == pytest.approx(sym(z2, z1).item(), rel=1e-12)
    one_way = InfoNCE(0.3, symmetric=False)
    assert one_way(z1, z2).item() != pytest.approx(one_way(z2, z1).item(), rel=1e-6)
    assert sym(z1, z2).item() == pytest.approx(
        0.5 * (one_way(z1, z2) + one_way(z2, z1)).item(), rel=1e-12
    )


def test_invariant_to_batch_permutation_and_positive_scaling() -> None:
    z1, z2 = _views()
    loss = InfoNCE(0.5)(z1, z2)
    perm = torch.randperm(z1.size(0))
    assert InfoNCE(0.5)(z1[perm], z2[perm]).item() == pytest.approx(loss.item(), rel=1e-12)
    scale = torch.rand(z1.size(0), 1, dtype=torch.float64) + 0.5
    assert InfoNCE(0.5)(z1 * scale, z2).item() == pytest.approx(loss.item(), rel=1e-10)


def test_lower_for_aligned_views() -> None:
    z1 = torch.randn(16, 8)
    aligned = InfoNCE(0.2)(z1, z1 + 0.01 * torch.randn(16, 8))
    random = InfoNCE(0.2)(z1, torch.randn(16, 8))
    assert 0 < aligned.item() < random.item()


def test_unnormalised_uses_dot_products() -> None:
    z1, z2 = _views(n=3)
    loss = InfoNCE(1.0, symmetric=False, intra_view_negatives=False, normalize=False)(z1, z2)
    expected = F.cross_entropy(z1 @ z2.T, torch.arange(3))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)


def test_functional_twin() -> None:
    z1, z2 = _views()
    module = InfoNCE(0.4, intra_view_negatives=False)(z1, z2)
    func = functional.info_nce_loss(z1, z2, temperature=0.4, intra_view_negatives=False)
    assert torch.equal(module, func)
    assert functional.nt_xent_loss is functional.info_nce_loss


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_are_finite(dtype: torch.dtype) -> None:
    z1, z2 = _views(dtype=dtype)
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    for loss_fn in (InfoNCE(0.1), InfoNCE.graphcl(), InfoNCE.moco()):
        negatives = (
            torch.randn(4, 5, dtype=dtype) if loss_fn.cross_view_negatives is False else None
        )
        loss = loss_fn(z1, z2, negatives)
        (g1, g2) = torch.autograd.grad(loss, (z1, z2))
        assert torch.isfinite(g1).all() and torch.isfinite(g2).all()
        assert g1.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_stable_and_returns_float32(dtype: torch.dtype) -> None:
    # Raw dot products of ~1e3 divided by 0.01 overflow half precision.
    z1 = (torch.randn(8, 16) * 30).to(dtype)
    z2 = (z1.float() + torch.randn(8, 16)).to(dtype)
    loss = InfoNCE(0.01, normalize=False)(z1, z2)
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss)
    reference = InfoNCE(0.01, normalize=False)(z1.float(), z2.float())
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)


def test_large_logits_do_not_overflow() -> None:
    z1 = torch.randn(6, 4) * 1e3
    loss = InfoNCE(0.01, normalize=False)(z1, z1.clone())
    assert torch.isfinite(loss)


def test_bad_inputs() -> None:
    z1, z2 = _views()
    with pytest.raises(ValueError, match=r"temperature must be .* \(got 0\)"):
        InfoNCE(temperature=0)
    with pytest.raises(ValueError, match="temperature"):
        InfoNCE(temperature=-0.5)
    with pytest.raises(ValueError, match=r"same shape \(got \(6, 5\) and \(5, 5\)\)"):
        InfoNCE()(z1, z2[:5])
    with pytest.raises(ValueError, match="2-D"):
        InfoNCE()(z1[0], z2[0])
    with pytest.raises(ValueError, match="feature size 5"):
        InfoNCE.moco()(z1, z2, torch.randn(3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least one negative"):
        InfoNCE()(z1[:1], z2[:1])
    with pytest.raises(ValueError, match="at least one negative"):
        InfoNCE.moco()(z1, z2)
    bad = z1.clone()
    bad[2, 3] = float("nan")
    with pytest.raises(ValueError, match=r"z1 contains NaN"):
        InfoNCE()(bad, z2)
    with pytest.raises(ValueError, match="floating-point"):
        InfoNCE()(torch.ones(3, 2, dtype=torch.long), torch.ones(3, 2, dtype=torch.long))


def test_batch_of_one_with_queue_is_fine() -> None:
    z1, z2 = _views(n=1)
    loss = InfoNCE.moco()(z1, z2, torch.randn(4, 5, dtype=torch.float64))
    assert torch.isfinite(loss)


def test_finite_check_can_be_disabled() -> None:
    from gcl.losses import set_finite_check

    z1, z2 = _views()
    z1[0, 0] = float("nan")
    set_finite_check(False)
    try:
        assert torch.isnan(InfoNCE()(z1, z2))
    finally:
        set_finite_check(True)
    with pytest.raises(ValueError):
        InfoNCE()(z1, z2)


def test_finite_check_sees_inf_and_accepts_a_sum_that_overflows() -> None:
    # The check reduces once and tests every entry only when the sum is not finite:
    # an inf must still be caught, and finite values whose sum overflows must pass.
    z1, z2 = _views()
    bad = z1.clone()
    bad[1, 2] = float("-inf")
    with pytest.raises(ValueError, match=r"z1 contains NaN or inf"):
        InfoNCE()(bad, z2)
    huge = torch.full((4, 3), 3e38, dtype=torch.float32)
    assert torch.isinf(huge.sum())
    assert torch.isfinite(InfoNCE(normalize=True)(huge, huge.clone()))


def test_repr_lists_settings() -> None:
    assert "temperature=0.2" in repr(InfoNCE.graphcl())
    assert "exclude_positive_from_denominator=True" in repr(InfoNCE.graphcl())


def _explicit_info_nce(z1: torch.Tensor, z2: torch.Tensor, negatives: torch.Tensor | None, temperature: float,
                       symmetric: bool, intra: bool, cross: bool, exclude: bool) -> torch.Tensor:
    """Every direction written out: the concatenated logits of each anchor and a cross-entropy."""
    a1, a2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    extra = None if negatives is None else F.normalize(negatives, dim=1)
    eye = torch.eye(a1.size(0), dtype=torch.bool)

    def direction(anchors: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        positive = (anchors * other).sum(1, keepdim=True) / temperature
        columns = []
        if not exclude:
            columns.append(positive)
        if cross:
            columns.append((anchors @ other.T / temperature).masked_fill(eye, -math.inf))
        if intra:
            columns.append((anchors @ anchors.T / temperature).masked_fill(eye, -math.inf))
        if extra is not None:
            columns.append(anchors @ extra.T / temperature)
        return (torch.logsumexp(torch.cat(columns, dim=1), dim=1) - positive[:, 0]).mean()

    loss = direction(a1, a2)
    return 0.5 * (loss + direction(a2, a1)) if symmetric else loss


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize(("intra", "cross"), [(True, True), (False, True), (True, False)])
@pytest.mark.parametrize("exclude", [False, True])
@pytest.mark.parametrize("queue", [False, True])
def test_every_option_matches_the_concatenated_logits(symmetric: bool, intra: bool, cross: bool, exclude: bool,
                                                      queue: bool) -> None:
    # the symmetric loss reads the second direction's cross-view block off the first's transpose
    torch.manual_seed(3)
    z1, z2 = (z.requires_grad_() for z in _views(n=7, d=4))
    negatives = torch.randn(5, 4, dtype=torch.float64, requires_grad=True) if queue else None
    loss = functional.info_nce_loss(z1, z2, negatives, temperature=0.3, symmetric=symmetric,
                                    intra_view_negatives=intra, cross_view_negatives=cross,
                                    exclude_positive_from_denominator=exclude)
    inputs = [z1, z2] + ([negatives] if negatives is not None else [])
    got = torch.autograd.grad(loss, inputs)
    expected_loss = _explicit_info_nce(z1, z2, negatives, 0.3, symmetric, intra, cross, exclude)
    expected = torch.autograd.grad(expected_loss, inputs)
    torch.testing.assert_close(loss, expected_loss, rtol=1e-12, atol=1e-12)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
