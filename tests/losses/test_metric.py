from __future__ import annotations

import math

import pytest
import torch

from gcl.losses import ContrastiveLoss, NCELoss, NPairLoss, TripletLoss, functional

from . import naive


def _pairs(n: int = 7, d: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, d, dtype=torch.float64), torch.randn(n, d, dtype=torch.float64)


@pytest.mark.parametrize("margin", [0.5, 2.0, 10.0])
def test_contrastive_matches_hadsell_formula(margin: float) -> None:
    x1, x2 = _pairs()
    similar = torch.tensor([1, 0, 0, 1, 1, 0, 0], dtype=torch.bool)
    loss = ContrastiveLoss(margin)(x1, x2, similar)
    assert loss.item() == pytest.approx(
        naive.contrastive_margin(x1, x2, similar, margin), rel=1e-12
    )
    assert ContrastiveLoss(margin)(x1, x2, similar.long()).item() == pytest.approx(loss.item())
    assert ContrastiveLoss(margin)(x2, x1, similar).item() == pytest.approx(loss.item(), rel=1e-12)


def test_contrastive_zero_distance_dissimilar_pair_is_pushed_apart() -> None:
    # distance 0 is where a collapsed encoder sits: the margin term keeps a (finite) gradient there
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    loss = ContrastiveLoss(1.0)(x, x.detach().clone(), torch.zeros(3, dtype=torch.bool))
    assert loss.item() == pytest.approx(0.5, abs=1e-5)
    (grad,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(grad).all() and float(grad.norm()) > 0.1


@pytest.mark.parametrize("squared", [False, True])
def test_triplet_matches_formula(squared: bool) -> None:
    a, p = _pairs()
    n = torch.randn(7, 4, dtype=torch.float64)
    loss = TripletLoss(margin=0.3, squared=squared)(a, p, n)
    assert loss.item() == pytest.approx(naive.triplet(a, p, n, 0.3, squared), rel=1e-12)


def test_triplet_matches_torch_builtin() -> None:
    a, p = _pairs()
    n = torch.randn(7, 4, dtype=torch.float64)
    builtin = torch.nn.TripletMarginLoss(margin=1.0, eps=0.0)(a, p, n)
    assert TripletLoss(1.0)(a, p, n).item() == pytest.approx(builtin.item(), rel=1e-12)


def test_triplet_coinciding_points_get_the_gradient_of_torch_builtin() -> None:
    """A negative on its anchor (a collapsed encoder) is pushed away: at distance 0 the norm
    has no gradient, so the distance is measured there as F.pairwise_distance does (like
    ContrastiveLoss); before, such a negative got no gradient at all."""
    a, p = _pairs()
    n = torch.randn(7, 4, dtype=torch.float64)
    n[[0, 3]] = a[[0, 3]]
    ours = [x.clone().requires_grad_() for x in (a, p, n)]
    theirs = [x.clone().requires_grad_() for x in (a, p, n)]
    loss = TripletLoss(2.0)(*ours)
    builtin = torch.nn.TripletMarginLoss(margin=2.0, p=2.0, eps=1e-6)(*theirs)
    loss.backward()
    builtin.backward()
    assert loss.item() == pytest.approx(builtin.item(), abs=1e-5)
    assert ours[2].grad is not None and float(ours[2].grad[[0, 3]].norm()) > 0.1
    for mine, reference in zip(ours, theirs):
        torch.testing.assert_close(mine.grad, reference.grad, rtol=0, atol=1e-5)


def test_triplet_leaves_a_positive_on_its_anchor_where_it_is() -> None:
    """The shift at distance 0 is for the negative only: d(a, p) = 0 is a perfect match, and
    the plain norm's gradient there is 0 (nn.TripletMarginLoss shifts it too and pushes the
    positive away with a unit-norm gradient)."""
    a = torch.randn(3, 4, dtype=torch.float64)
    n = a + 0.1  # hinge active: d(a, n) = 0.2 < margin
    p = a.clone().requires_grad_()
    loss = TripletLoss(1.0)(a, p, n)
    assert loss.item() == pytest.approx(0.8, rel=1e-12)  # 0 - 0.2 + 1, with no epsilon in d(a, p)
    (grad,) = torch.autograd.grad(loss, p)
    assert torch.equal(grad, torch.zeros_like(grad))
    # away from 0 the distances are the formula's, exactly, and so are the gradients
    p = (a + 0.3).requires_grad_()
    ours = TripletLoss(1.0)(a, p, n)
    assert ours.item() == pytest.approx(naive.triplet(a, p.detach(), n, 1.0, False), rel=1e-12)
    expected = torch.full((3, 4), 0.3 / (3 * 0.6), dtype=torch.float64)  # (p - a) / (N d(a, p))
    torch.testing.assert_close(torch.autograd.grad(ours, p)[0], expected)


def test_triplet_zero_when_margin_satisfied() -> None:
    a = torch.zeros(2, 2)
    assert TripletLoss(0.5)(a, a + 0.1, a + 5.0).item() == 0.0


@pytest.mark.parametrize("l2_reg", [0.0, 0.002, 0.5])
def test_n_pair_matches_sohn_formula(l2_reg: float) -> None:
    a, p = _pairs(n=6)
    loss = NPairLoss(l2_reg=l2_reg)(a, p)
    assert loss.item() == pytest.approx(naive.n_pair(a, p, l2_reg), rel=1e-10)


def test_n_pair_with_distinct_labels_equals_without() -> None:
    a, p = _pairs(n=6)
    assert NPairLoss()(a, p, torch.arange(6) * 3).item() == pytest.approx(
        NPairLoss()(a, p).item(), rel=1e-12
    )


def test_n_pair_with_shared_labels_uses_soft_targets() -> None:
    a, p = _pairs(n=4)
    labels = torch.tensor([0, 0, 1, 2])
    loss = NPairLoss()(a, p, labels)
    logits = a @ p.T
    log_prob = torch.log_softmax(logits, dim=1)
    expected = (
        -(
            0.5 * (log_prob[0, 0] + log_prob[0, 1])
            + 0.5 * (log_prob[1, 0] + log_prob[1, 1])
            + log_prob[2, 2]
            + log_prob[3, 3]
        )
        / 4
    )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)


def test_nce_matches_gutmann_formula_shared_and_per_query_noise() -> None:
    q, pos = _pairs(n=5)
    noise = torch.randn(6, 4, dtype=torch.float64)
    log_pn = torch.full((5, 7), -math.log(100.0), dtype=torch.float64)
    loss = NCELoss(temperature=0.5, log_partition=1.5)(q, pos, noise, -math.log(100.0))
    assert loss.item() == pytest.approx(naive.nce(q, pos, noise, log_pn, 0.5, 1.5), rel=1e-10)

    per_query = torch.randn(5, 3, 4, dtype=torch.float64)
    log_pn = torch.log(torch.rand(5, 4, dtype=torch.float64) * 0.1 + 0.01)
    loss = NCELoss(temperature=0.3)(q, pos, per_query, log_pn)
    assert loss.item() == pytest.approx(naive.nce(q, pos, per_query, log_pn, 0.3, 0.0), rel=1e-10)


def test_nce_prefers_positive_close_to_query() -> None:
    q = torch.randn(8, 4)
    noise = torch.randn(16, 4)
    near = NCELoss(0.1)(q, q + 0.01 * torch.randn(8, 4), noise, -math.log(1000))
    far = NCELoss(0.1)(q, -q, noise, -math.log(1000))
    assert 0 < near.item() < far.item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_finite(dtype: torch.dtype) -> None:
    a = torch.randn(5, 3, dtype=dtype, requires_grad=True)
    b, c = torch.randn(5, 3, dtype=dtype), torch.randn(5, 3, dtype=dtype)
    for loss in (
        ContrastiveLoss()(a, b, torch.tensor([1, 0, 1, 0, 0])),
        TripletLoss()(a, b, c),
        NPairLoss(0.01)(a, b),
        NCELoss()(a, b, c, -2.0),
    ):
        assert loss.dtype == dtype
        (grad,) = torch.autograd.grad(loss, a)
        assert torch.isfinite(grad).all()


def test_functional_twins() -> None:
    a, b = _pairs()
    c = torch.randn(7, 4, dtype=torch.float64)
    s = torch.rand(7) > 0.5
    assert torch.equal(
        ContrastiveLoss(2.0)(a, b, s), functional.contrastive_loss(a, b, s, margin=2.0)
    )
    assert torch.equal(TripletLoss(0.2)(a, b, c), functional.triplet_loss(a, b, c, margin=0.2))
    assert torch.equal(NPairLoss(0.1)(a, b), functional.n_pair_loss(a, b, l2_reg=0.1))
    assert torch.equal(
        NCELoss(0.2)(a, b, c, -3.0), functional.nce_loss(a, b, c, -3.0, temperature=0.2)
    )


def test_bad_inputs() -> None:
    a, b = _pairs()
    with pytest.raises(ValueError, match=r"margin must be .* \(got 0\)"):
        ContrastiveLoss(0)
    with pytest.raises(ValueError, match="margin"):
        TripletLoss(-1.0)
    with pytest.raises(ValueError, match="l2_reg"):
        NPairLoss(-0.1)
    with pytest.raises(ValueError, match="temperature"):
        NCELoss(0.0)
    with pytest.raises(
        ValueError, match=r"similar must be a 1-D tensor of length 7 \(got \(6,\)\)"
    ):
        ContrastiveLoss()(a, b, torch.ones(6))
    with pytest.raises(ValueError, match="same shape"):
        TripletLoss()(a, b, b[:3])
    with pytest.raises(ValueError, match="at least 2 pairs"):
        NPairLoss()(a[:1], b[:1])
    with pytest.raises(ValueError, match="length 7"):
        NPairLoss()(a, b, torch.arange(5))
    with pytest.raises(ValueError, match="noise_log_prob must be a finite log-probability"):
        NCELoss()(a, b, b, 0.5)
    with pytest.raises(ValueError, match="broadcast"):
        NCELoss()(a, b, b, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="per-query noise"):
        NCELoss()(a, b, torch.randn(3, 2, 4), -1.0)
    with pytest.raises(ValueError, match="NaN"):
        TripletLoss()(a, b, torch.full((7, 4), float("nan")))


def test_nce_hyper_parameters_are_numbers() -> None:
    # a tensor could change after the check; a bool is not a log-probability
    q, pos, noise = torch.randn(4, 8), torch.randn(4, 8), torch.randn(16, 8)
    with pytest.raises(ValueError, match="log_partition must be a real number, not Tensor"):
        NCELoss(log_partition=torch.tensor(1.0))
    with pytest.raises(ValueError, match="log_partition must be a real number, not Tensor"):
        functional.nce_loss(q, pos, noise, -1.0, log_partition=torch.tensor(1.0))
    with pytest.raises(ValueError, match="noise_log_prob must be a real number, not bool"):
        NCELoss()(q, pos, noise, False)
    assert torch.isfinite(NCELoss(log_partition=1)(q, pos, noise, -math.log(16)))
