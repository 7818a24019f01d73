from __future__ import annotations

import pytest
import torch

from gcl.losses import InfoNCE, LabelContrastiveLoss, SupConLoss, functional
from gcl.losses.functional import _sample_at_most_k

from . import naive


def _features(n: int = 8, views: int = 2, d: int = 4) -> torch.Tensor:
    return torch.randn(n, views, d, dtype=torch.float64)


@pytest.mark.parametrize("views", [1, 2, 3])
@pytest.mark.parametrize("base_temperature", [None, 0.07])
def test_supcon_matches_formula(views: int, base_temperature: float | None) -> None:
    features = _features(views=views)
    labels = torch.tensor([0, 1, 0, 2, 1, 1, 3, 0])
    loss = SupConLoss(temperature=0.1, base_temperature=base_temperature)(features, labels)
    expected = naive.sup_con(features, labels, 0.1, base_temperature)
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_supcon_without_labels_is_nt_xent() -> None:
    features = _features(n=6)
    loss = SupConLoss(temperature=0.5)(features)
    expected = InfoNCE(temperature=0.5)(features[:, 0], features[:, 1])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)


def test_supcon_2d_input_is_one_view() -> None:
    features = _features(views=1)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    a = SupConLoss(0.2)(features, labels)
    b = SupConLoss(0.2)(features[:, 0], labels)
    assert torch.equal(a, b)


def test_supcon_no_positive_anywhere_gives_zero_with_finite_grad() -> None:
    features = _features(n=4, views=1).requires_grad_(True)
    loss = SupConLoss(0.1)(features, torch.arange(4))
    assert loss.item() == 0.0
    (grad,) = torch.autograd.grad(loss, features)
    assert torch.isfinite(grad).all()


def test_supcon_invariant_to_label_renaming_and_permutation() -> None:
    features = _features()
    labels = torch.tensor([0, 1, 0, 2, 1, 1, 3, 0])
    loss = SupConLoss(0.1)(features, labels)
    assert SupConLoss(0.1)(features, labels * 7 + 3).item() == pytest.approx(loss.item(), rel=1e-12)
    perm = torch.randperm(8)
    assert SupConLoss(0.1)(features[perm], labels[perm]).item() == pytest.approx(
        loss.item(), rel=1e-12
    )


def test_kcl_with_large_k_equals_supcon() -> None:
    features = _features()
    labels = torch.tensor([0, 1, 0, 2, 1, 1, 3, 0])
    full = SupConLoss(0.1)(features, labels)
    kcl = SupConLoss(0.1, k_positives=100)(features, labels)
    assert kcl.item() == pytest.approx(full.item(), rel=1e-12)


def test_kcl_matches_formula_for_the_sampled_positives() -> None:
    features = _features(n=10)
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 0])
    k = 2
    loss = SupConLoss(0.1, k_positives=k)(
        features, labels, generator=torch.Generator().manual_seed(3)
    )
    # Rebuild the mask the loss drew from the same generator state.
    views = 2
    index = torch.arange(20)
    lab = labels.repeat_interleave(views)
    is_self = index[None] == index[:, None]
    same_sample = (index[None] // views) == (index[:, None] // views)
    positive = (lab[:, None] == lab[None]) & ~is_self
    picked = _sample_at_most_k(positive & ~same_sample, k, torch.Generator().manual_seed(3))
    mask = (same_sample & ~is_self) | picked
    assert (picked.sum(1) <= k).all()
    assert (picked.sum(1) == torch.clamp((positive & ~same_sample).sum(1), max=k)).all()
    expected = naive.sup_con(features, labels, 0.1, positives=mask)
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_kcl_sampling_is_seeded() -> None:
    features = _features(n=10)
    labels = torch.zeros(10, dtype=torch.long)
    loss_fn = SupConLoss(0.1, k_positives=1)
    a = loss_fn(features, labels, generator=torch.Generator().manual_seed(0))
    b = loss_fn(features, labels, generator=torch.Generator().manual_seed(0))
    c = loss_fn(features, labels, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert a.item() != pytest.approx(c.item())


def test_supcon_functional_twin_and_gradients() -> None:
    features = _features().float().requires_grad_(True)
    labels = torch.tensor([0, 1, 0, 2, 1, 1, 3, 0])
    loss = SupConLoss(0.1)(features, labels)
    assert torch.equal(loss, functional.sup_con_loss(features, labels, temperature=0.1))
    (grad,) = torch.autograd.grad(loss, features)
    assert torch.isfinite(grad).all()


def test_supcon_bad_inputs() -> None:
    features = _features()
    with pytest.raises(ValueError, match="temperature"):
        SupConLoss(temperature=0.0)
    with pytest.raises(ValueError, match="k_positives"):
        SupConLoss(k_positives=0)
    with pytest.raises(ValueError, match=r"length 8 \(got shape \(7,\)\)"):
        SupConLoss()(features, torch.zeros(7, dtype=torch.long))
    with pytest.raises(ValueError, match="integer class labels"):
        SupConLoss()(features, torch.zeros(8))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        SupConLoss()(features[0, 0])
    with pytest.raises(ValueError, match="at least two"):
        SupConLoss()(features[:1, :1], torch.zeros(1, dtype=torch.long))
    # one view and no labels: every sample is its own class with one member, and no anchor has a positive
    with pytest.raises(ValueError, match=r"without labels needs two or more views .* \(got features of shape \(8, 4\)\)"):
        SupConLoss()(features[:, 0])
    with pytest.raises(ValueError, match=r"two or more views"):
        SupConLoss()(features[:, :1])
    bad = features.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        SupConLoss()(bad, torch.zeros(8, dtype=torch.long))


@pytest.mark.parametrize("views", [2, 3])
def test_supcon_without_labels_refuses_a_batch_of_one_sample(views: int) -> None:
    # the sample's views are all positives of each other: no anchor has a negative (as InfoNCE refuses it)
    features = _features(n=1, views=views)
    with pytest.raises(ValueError, match=rf"at least one negative per anchor \(got a global batch of 1 sample "
                                         rf"with {views} views"):
        SupConLoss()(features)
    with pytest.raises(ValueError, match="global batch of 1"):
        functional.sup_con_loss(features)
    # with labels, one sample (and a batch whose labels are all equal) stays as it was
    assert torch.isfinite(SupConLoss()(features, torch.zeros(1, dtype=torch.long)))
    same = SupConLoss()(_features(n=4, views=views), torch.zeros(4, dtype=torch.long))
    assert same.item() > 0
    assert SupConLoss()(_features(n=2, views=views)).item() > 0


def test_label_contrastive_matches_formula() -> None:
    q = torch.randn(6, 5, dtype=torch.float64)
    q_labels = torch.tensor([0, 1, 2, 0, 1, 3])
    keys = torch.randn(20, 5, dtype=torch.float64)
    key_labels = torch.randint(3, (20,))
    loss = LabelContrastiveLoss(temperature=0.07)(q, q_labels, keys, key_labels)
    # Query with label 3 has no positive key and is left out.
    expected = naive.label_contrastive(q, q_labels, keys, key_labels, 0.07)
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    assert loss.item() > 0


def test_label_contrastive_single_class_is_zero() -> None:
    q, keys = torch.randn(4, 3), torch.randn(9, 3)
    loss = LabelContrastiveLoss(0.1)(
        q, torch.zeros(4, dtype=torch.long), keys, torch.zeros(9, dtype=torch.long)
    )
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_label_contrastive_decreases_when_queries_move_to_their_class() -> None:
    keys = torch.cat(
        [torch.tensor([[1.0, 0.0]]).repeat(5, 1), torch.tensor([[0.0, 1.0]]).repeat(5, 1)]
    )
    key_labels = torch.tensor([0] * 5 + [1] * 5)
    near = LabelContrastiveLoss(0.1)(
        torch.tensor([[1.0, 0.1]]), torch.tensor([0]), keys, key_labels
    )
    far = LabelContrastiveLoss(0.1)(torch.tensor([[0.1, 1.0]]), torch.tensor([0]), keys, key_labels)
    assert near.item() < far.item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_label_contrastive_gradients_and_dtypes(dtype: torch.dtype) -> None:
    q = torch.randn(6, 5).to(dtype).requires_grad_(True)
    loss = LabelContrastiveLoss(0.05)(
        q, torch.randint(2, (6,)), torch.randn(30, 5).to(dtype), torch.randint(2, (30,))
    )
    assert loss.dtype == (torch.float32 if dtype == torch.float16 else dtype)
    (grad,) = torch.autograd.grad(loss, q)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("far", [False, True])
def test_log_ratio_of_sums_on_both_paths(far: bool) -> None:
    # far: row 0's only positive lies 2000 below its maximum, which takes the separately shifted path
    logits = torch.tensor([[0.0, -2000.0 if far else -2.0, 1.0], [0.0, 1.0, 2.0], [0.0, 3.0, 1.0]],
                          dtype=torch.float64, requires_grad=True)
    positive = torch.tensor([[0, 1, 0], [0, 0, 0], [1, 1, 0]], dtype=torch.bool)
    out = functional._log_ratio_of_sums(logits, positive, positive.any(1))
    for row in (0, 2):
        expected = torch.logsumexp(logits[row], 0) - torch.logsumexp(logits[row][positive[row]], 0)
        torch.testing.assert_close(out[row], expected)
    assert out[1] == 0  # a row without a positive: 0, with no gradient
    out.sum().backward()
    assert logits.grad is not None and bool((logits.grad[1] == 0).all())
    assert bool(torch.isfinite(logits.grad).all())


def test_masked_logsumexp_of_an_empty_row_is_zero() -> None:
    x = torch.randn(2, 4, dtype=torch.float64, requires_grad=True, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[1, 0, 1, 1], [0, 0, 0, 0]], dtype=torch.bool)
    out = functional._masked_logsumexp(x, mask)
    torch.testing.assert_close(out[0], torch.logsumexp(x[0][mask[0]], 0))
    assert out[1] == 0
    out.sum().backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all()) and bool((x.grad[1] == 0).all())


@pytest.mark.parametrize("scale", [1.0, 300.0])
def test_label_contrastive_far_below_maximum_positives(scale: float) -> None:
    # Unnormalised logits spread over hundreds of units: the positives' sum underflows
    # when shifted by the row maximum, and the loss must fall back to separate shifts.
    torch.manual_seed(0)
    q = (scale * torch.randn(5, 4)).requires_grad_(True)
    keys, q_labels = scale * torch.randn(40, 4), torch.tensor([0, 1, 2, 0, 3])
    key_labels = torch.randint(3, (40,))
    loss = functional.label_contrastive_loss(q, q_labels, keys, key_labels, temperature=0.5, normalize=False)
    (grad,) = torch.autograd.grad(loss, q)
    # Reference in float64: log-sum-exp over all keys minus over same-label keys.
    q64 = q.detach().double().requires_grad_(True)
    logits = q64 @ keys.double().T / 0.5
    positive = q_labels[:, None] == key_labels[None, :]
    valid = positive.any(1)
    per = torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~positive, -torch.inf), 1)
    expected = per[valid].mean()
    (expected_grad,) = torch.autograd.grad(expected, q64)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    torch.testing.assert_close(loss.double(), expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(grad.double(), expected_grad, rtol=1e-3, atol=1e-5)


def test_label_contrastive_bad_inputs() -> None:
    q, keys = torch.randn(4, 3), torch.randn(9, 3)
    ql, kl = torch.zeros(4, dtype=torch.long), torch.zeros(9, dtype=torch.long)
    with pytest.raises(ValueError, match="temperature"):
        LabelContrastiveLoss(-1.0)
    with pytest.raises(ValueError, match="feature size 3"):
        LabelContrastiveLoss()(q, ql, torch.randn(9, 4), kl)
    with pytest.raises(ValueError, match=r"key_labels must be a 1-D tensor of length 9"):
        LabelContrastiveLoss()(q, ql, keys, kl[:5])
    with pytest.raises(ValueError, match=r"query_labels must be a 1-D tensor of length 4"):
        LabelContrastiveLoss()(q, ql[:2], keys, kl)
    with pytest.raises(ValueError, match="at least one entry"):
        LabelContrastiveLoss()(q, ql, keys[:0], kl[:0])
