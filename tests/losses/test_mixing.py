from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gcl.losses import IMixLoss, InfoNCE, MoCHiLoss, functional, imix_mix, mochi_mix

from . import naive

# --------------------------------------------------------------------------- MoCHi


def _naive_mochi(
    q: torch.Tensor, bank: torch.Tensor, n_hard: int, s: int, s_query: int, seed: int
) -> torch.Tensor:
    """MoCHi section 4: mix two of the N hardest, or the query into one (beta < 0.5)."""
    g = torch.Generator().manual_seed(seed)
    qn, bn = naive.unit(q.double()), naive.unit(bank.double())
    out = []
    for b in range(q.size(0)):
        scores = [float(qn[b] @ n) for n in bn]
        order = sorted(range(len(scores)), key=lambda j: -scores[j])[:n_hard]
        out.append([order])
    # Draws happen batch-wide in the order: i, j, alpha, then j', beta.
    i = torch.randint(n_hard, (q.size(0), s), generator=g)
    j = torch.randint(n_hard, (q.size(0), s), generator=g)
    alpha = torch.rand((q.size(0), s, 1), generator=g).double()
    j2 = torch.randint(n_hard, (q.size(0), s_query), generator=g)
    beta = 0.5 * torch.rand((q.size(0), s_query, 1), generator=g).double()
    rows = []
    for b in range(q.size(0)):
        hard = bn[out[b][0]]
        mixed = [
            naive.unit(alpha[b, t] * hard[i[b, t]] + (1 - alpha[b, t]) * hard[j[b, t]])
            for t in range(s)
        ]
        mixed += [
            naive.unit(beta[b, t] * qn[b] + (1 - beta[b, t]) * hard[j2[b, t]])
            for t in range(s_query)
        ]
        rows.append(torch.stack(mixed))
    return torch.stack(rows)


def test_mochi_mix_matches_paper_construction() -> None:
    q = torch.randn(4, 6, dtype=torch.float64)
    bank = torch.randn(30, 6, dtype=torch.float64)
    out = mochi_mix(q, bank, 5, 7, 3, generator=torch.Generator().manual_seed(11))
    expected = _naive_mochi(q, bank, 5, 7, 3, seed=11)
    assert out.shape == (4, 10, 6)
    assert not out.requires_grad
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(4, 10, dtype=torch.float64))


def test_mochi_mix_with_one_hardest_reproduces_it_and_query_mix_stays_closer_to_it() -> None:
    q = torch.randn(3, 5)
    bank = torch.randn(20, 5)
    out = mochi_mix(q, bank, 1, 4, 6, generator=torch.Generator().manual_seed(0))
    hardest = F.normalize(bank, dim=1)[
        (F.normalize(q, dim=1) @ F.normalize(bank, dim=1).T).argmax(1)
    ]
    torch.testing.assert_close(out[:, :4], hardest[:, None].expand(3, 4, 5), rtol=1e-5, atol=1e-6)
    query_mix = out[:, 4:]
    to_negative = (query_mix * hardest[:, None]).sum(-1)
    to_query = (query_mix * F.normalize(q, dim=1)[:, None]).sum(-1)
    assert (to_negative >= to_query - 1e-6).all()


def test_mochi_loss_matches_formula_and_reduces_to_moco() -> None:
    q, k = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    bank = torch.randn(25, 6, dtype=torch.float64)
    loss = MoCHiLoss(0.2, 8, 5, 2)(q, k, bank, generator=torch.Generator().manual_seed(5))
    synthetic = _naive_mochi(q, bank, 8, 5, 2, seed=5)
    qn, kn, bn = naive.unit(q), naive.unit(k), naive.unit(bank)
    total = 0.0
    for b in range(4):
        pos = math.exp(float(qn[b] @ kn[b]) / 0.2)
        den = pos + sum(math.exp(float(qn[b] @ n) / 0.2) for n in bn)
        den += sum(math.exp(float(qn[b] @ h) / 0.2) for h in synthetic[b])
        total += -math.log(pos / den)
    assert loss.item() == pytest.approx(total / 4, rel=1e-10)
    plain = MoCHiLoss(0.2, 8, 0, 0)(q, k, bank)
    assert plain.item() == pytest.approx(InfoNCE.moco(0.2)(q, k, bank).item(), rel=1e-12)
    assert loss.item() > plain.item()


def test_mochi_gradients_and_functional_twin() -> None:
    q = torch.randn(4, 6, requires_grad=True)
    k, bank = torch.randn(4, 6), torch.randn(40, 6)
    loss = MoCHiLoss(0.1, 16, 8, 4)(q, k, bank, generator=torch.Generator().manual_seed(1))
    twin = functional.mochi_loss(
        q,
        k,
        bank,
        temperature=0.1,
        num_hardest=16,
        num_synthetic_negatives=8,
        num_synthetic_query_mix=4,
        generator=torch.Generator().manual_seed(1),
    )
    assert torch.equal(loss, twin)
    (grad,) = torch.autograd.grad(loss, q)
    assert torch.isfinite(grad).all()


def test_mochi_bad_inputs() -> None:
    q, bank = torch.randn(4, 6), torch.randn(10, 6)
    with pytest.raises(ValueError, match=r"num_hardest must be an integer >= 1 \(got 0\)"):
        MoCHiLoss(num_hardest=0)
    assert "normalize=False" in repr(MoCHiLoss(normalize=False))
    with pytest.raises(ValueError, match="num_synthetic_negatives"):
        mochi_mix(q, bank, 4, -1, 0)
    with pytest.raises(ValueError, match="feature size 6"):
        mochi_mix(q, torch.randn(10, 5), 4, 1, 1)
    with pytest.raises(ValueError, match="at least one entry"):
        mochi_mix(q, bank[:0], 4, 1, 1)
    # More hardest than stored negatives uses all of them.
    assert mochi_mix(q, bank, 100, 2, 2).shape == (4, 4, 6)


# --------------------------------------------------------------------------- i-Mix


def test_imix_mix_is_a_convex_mix_with_a_permutation() -> None:
    x = torch.randn(9, 3, 2)
    mixed = imix_mix(x, alpha=1.0, generator=torch.Generator().manual_seed(4))
    assert 0.0 <= mixed.coefficient <= 1.0
    assert torch.equal(torch.sort(mixed.permutation).values, torch.arange(9))
    lam = mixed.coefficient
    torch.testing.assert_close(mixed.inputs, lam * x + (1 - lam) * x[mixed.permutation])
    again = imix_mix(x, alpha=1.0, generator=torch.Generator().manual_seed(4))
    assert again.coefficient == mixed.coefficient
    assert torch.equal(again.permutation, mixed.permutation)


@pytest.mark.parametrize("alpha", [0.05, 0.3, 1.0, 2.5])
def test_imix_coefficient_follows_beta_distribution(alpha: float) -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(123)
    draws = [imix_mix(torch.zeros(2, 1), alpha, g).coefficient for _ in range(400)]
    result = scipy_stats.kstest(draws, scipy_stats.beta(alpha, alpha).cdf)
    assert result.pvalue > 0.01


def test_imix_coefficient_with_a_tiny_alpha_sits_next_to_0_and_1() -> None:
    # Beta(0.001, 0.001) puts all but 0.45 % of its mass within 0.01 of 0 or 1, half on each
    # side. Its Gamma draws underflow to 0 unless taken in logarithms, which made 23 % of the
    # coefficients exactly 0.5. (A KS test cannot tell: draws within 1e-16 of 1 round to 1.)
    scipy_stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(7)
    draws = np.array([imix_mix(torch.zeros(2, 1), 0.001, g).coefficient for _ in range(2000)])
    beta = scipy_stats.beta(0.001, 0.001)
    middle = float(beta.cdf(0.99) - beta.cdf(0.01))
    inside = int(((draws > 0.01) & (draws < 0.99)).sum())
    assert scipy_stats.binomtest(inside, draws.size, middle).pvalue > 0.01
    assert scipy_stats.binomtest(int((draws < 0.5).sum()), draws.size, 0.5).pvalue > 0.01


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_imix_loss_matches_virtual_label_formula(lam: float) -> None:
    q, k = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    perm = torch.tensor([2, 0, 1, 5, 3, 4])
    loss = IMixLoss(0.2)(q, k, perm, lam)
    assert loss.item() == pytest.approx(naive.imix(q, k, perm, lam, 0.2), rel=1e-10)


def test_imix_loss_at_lambda_one_is_cross_view_infonce_and_takes_negatives() -> None:
    q, k = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    perm = torch.randperm(6)
    reference = InfoNCE(0.2, symmetric=False, intra_view_negatives=False)
    assert IMixLoss(0.2)(q, k, perm, 1.0).item() == pytest.approx(reference(q, k).item(), rel=1e-12)
    negatives = torch.randn(5, 4, dtype=torch.float64)
    assert IMixLoss(0.2)(q, k, perm, 1.0, negatives).item() == pytest.approx(
        reference(q, k, negatives).item(), rel=1e-12
    )


def test_imix_loss_gradients_and_twin() -> None:
    q = torch.randn(6, 4, requires_grad=True)
    k, perm = torch.randn(6, 4), torch.randperm(6)
    loss = IMixLoss(0.1)(q, k, perm, 0.4)
    assert torch.equal(loss, functional.imix_loss(q, k, perm, 0.4, temperature=0.1))
    (grad,) = torch.autograd.grad(loss, q)
    assert torch.isfinite(grad).all()


def test_imix_bad_inputs() -> None:
    q, k = torch.randn(4, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"alpha must be .* \(got 0.0\)"):
        imix_mix(q, alpha=0.0)
    with pytest.raises(ValueError, match="permutation of range"):
        IMixLoss()(q, k, torch.tensor([0, 0, 1, 2]), 0.5)
    with pytest.raises(ValueError, match=r"permutation values must lie in \[0, 4\)"):
        IMixLoss()(q, k, torch.tensor([0, 1, 2, 7]), 0.5)
    with pytest.raises(ValueError, match=r"coefficient must be in \[0, 1\] \(got 1.5\)"):
        IMixLoss()(q, k, torch.arange(4), 1.5)
    with pytest.raises(ValueError, match="length 4"):
        IMixLoss()(q, k, torch.arange(3), 0.5)
    with pytest.raises(ValueError, match="temperature"):
        IMixLoss(-0.2)
    with pytest.raises(ValueError, match="at least one negative"):
        IMixLoss()(q[:1], k[:1], torch.arange(1), 0.5)
