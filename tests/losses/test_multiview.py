from __future__ import annotations

import pytest
import torch

from gcl.losses import InfoNCE, MultiviewContrastiveLoss, functional

from . import naive


def _views(m: int, n: int = 5, d: int = 3) -> list[torch.Tensor]:
    base = torch.randn(n, d, dtype=torch.float64)
    return [base + 0.7 * torch.randn(n, d, dtype=torch.float64) for _ in range(m)]


@pytest.mark.parametrize("m", [2, 3, 4])
@pytest.mark.parametrize("mode", ["full", "core"])
def test_matches_cmc_formula(m: int, mode: str) -> None:
    views = _views(m)
    loss = MultiviewContrastiveLoss(0.2, mode=mode)(views)
    assert loss.item() == pytest.approx(naive.cmc(views, 0.2, mode), rel=1e-10)


def test_two_views_is_twice_cross_view_infonce_and_modes_agree() -> None:
    views = _views(2)
    full = MultiviewContrastiveLoss(0.5, "full")(views)
    core = MultiviewContrastiveLoss(0.5, "core")(views)
    cross = InfoNCE(0.5, intra_view_negatives=False)(*views)
    assert full.item() == pytest.approx(2 * cross.item(), rel=1e-12)
    assert core.item() == pytest.approx(full.item(), rel=1e-12)


def test_full_graph_is_invariant_to_view_order_core_is_not() -> None:
    views = _views(3)
    reordered = [views[2], views[0], views[1]]
    full = MultiviewContrastiveLoss(0.2, "full")
    core = MultiviewContrastiveLoss(0.2, "core")
    assert full(views).item() == pytest.approx(full(reordered).item(), rel=1e-12)
    assert core(views).item() != pytest.approx(core(reordered).item(), rel=1e-6)


def test_gradients_twin_and_dtypes() -> None:
    views = [v.float().requires_grad_(True) for v in _views(3)]
    loss = MultiviewContrastiveLoss(0.07)(views)
    assert loss.dtype == torch.float32
    assert torch.equal(loss, functional.multiview_contrastive_loss(views, temperature=0.07))
    grads = torch.autograd.grad(loss, views)
    assert all(torch.isfinite(g).all() for g in grads)


def test_bad_inputs() -> None:
    views = _views(3)
    with pytest.raises(ValueError, match=r"mode must be one of \('full', 'core'\) \(got 'star'\)"):
        MultiviewContrastiveLoss(mode="star")
    with pytest.raises(ValueError, match="at least 2 tensors"):
        MultiviewContrastiveLoss()(views[:1])
    with pytest.raises(ValueError, match="at least 2 tensors"):
        MultiviewContrastiveLoss()(torch.stack(views))
    with pytest.raises(ValueError, match=r"views\[0\] and views\[2\] must have the same shape"):
        MultiviewContrastiveLoss()([views[0], views[1], views[2][:3]])
    with pytest.raises(ValueError, match="batch of at least 2"):
        MultiviewContrastiveLoss()([v[:1] for v in views])
    with pytest.raises(ValueError, match="temperature"):
        MultiviewContrastiveLoss(temperature=0)
