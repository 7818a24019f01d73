"""Segment sparsemax against the closed form of Martins & Astudillo (2016)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gcl.nn import sparsemax


def naive_sparsemax(z: list[float]) -> list[float]:
    """Sparsemax of one vector: sort, cumulative sum, threshold (paper, Alg. 1)."""
    ordered = sorted(z, reverse=True)
    running, support, support_sum = 0.0, 0, 0.0
    for k, value in enumerate(ordered, start=1):
        running += value
        if 1 + k * value > running:
            support, support_sum = k, running
    tau = (support_sum - 1) / support
    return [max(value - tau, 0.0) for value in z]


def naive_segments(src: torch.Tensor, index: torch.Tensor, num_segments: int) -> torch.Tensor:
    out = torch.zeros_like(src)
    for segment in range(num_segments):
        positions = (index == segment).nonzero().view(-1)
        if positions.numel():
            values = naive_sparsemax(src[positions].tolist())
            out[positions] = torch.tensor(values, dtype=src.dtype)
    return out


def test_matches_naive_per_segment() -> None:
    gen = torch.Generator().manual_seed(1)
    src = 3 * torch.randn(400, generator=gen, dtype=torch.float64)
    index = torch.randint(0, 37, (400,), generator=gen)  # unsorted, some segments empty
    out = sparsemax(src, index, 40)
    assert torch.allclose(out, naive_segments(src, index, 40), atol=1e-12)
    assert (out >= 0).all()
    sums = torch.zeros(40, dtype=torch.float64).index_add_(0, index, out)
    nonempty = torch.bincount(index, minlength=40) > 0
    assert torch.allclose(sums[nonempty], torch.ones(int(nonempty.sum()), dtype=torch.float64))
    assert (sums[~nonempty] == 0).all()
    assert (out == 0).any(), "sparsemax should zero out some entries"


def test_infers_num_segments_and_known_values() -> None:
    src = torch.tensor([2.0, 1.0, 0.1, 1.0, 0.5, 7.0])
    index = torch.tensor([0, 0, 0, 1, 1, 2])
    assert sparsemax(src, index).tolist() == [1.0, 0.0, 0.0, 0.75, 0.25, 1.0]


def test_invariant_to_per_segment_shift_and_fp32_accuracy() -> None:
    # Large, segment-specific offsets stress the global cumulative sum.
    gen = torch.Generator().manual_seed(2)
    index = torch.arange(2000).repeat_interleave(5)
    src = torch.randn(index.numel(), generator=gen, dtype=torch.float64)
    offsets = 1e4 * torch.randn(2000, generator=gen, dtype=torch.float64)
    shifted = src + offsets[index]
    expected = sparsemax(src, index)
    assert torch.allclose(sparsemax(shifted, index), expected, atol=1e-8)
    assert torch.allclose(sparsemax(shifted.float(), index).double(), expected, atol=1e-2)
    assert torch.allclose(sparsemax(src.float(), index).double(), expected, atol=1e-5)


def test_gradcheck() -> None:
    gen = torch.Generator().manual_seed(3)
    src = torch.randn(60, generator=gen, dtype=torch.float64, requires_grad=True)
    index = torch.randint(0, 9, (60,), generator=gen)
    assert torch.autograd.gradcheck(lambda z: sparsemax(z, index, 10), (src,))


def test_gradient_equals_closed_form_jacobian() -> None:
    # d p_i / d z_j = s_i (delta_ij - s_j / k) inside a segment, s the support.
    gen = torch.Generator().manual_seed(4)
    src = torch.randn(12, generator=gen, dtype=torch.float64, requires_grad=True)
    index = torch.zeros(12, dtype=torch.long)
    jac = torch.autograd.functional.jacobian(lambda z: sparsemax(z, index, 1), src)
    support = (sparsemax(src, index, 1) > 0).double()
    expected = torch.diag(support) - torch.outer(support, support) / support.sum()
    assert torch.allclose(jac, expected)


def test_entries_tied_with_the_threshold_take_no_gradient() -> None:
    # z_i == tau puts i outside the support (p_i = 0), so its row and column of the Jacobian
    # are zero: a clamp at zero alone would let gradient through it
    z = torch.tensor([1.0, 0.0], requires_grad=True)
    p = sparsemax(z, torch.tensor([0, 0]))
    assert p.tolist() == [1.0, 0.0]
    assert torch.autograd.grad(p.sum(), z)[0].tolist() == [0.0, 0.0]
    # the docstring's example: 1.0 ties with the first segment's threshold
    src = torch.tensor([2.0, 1.0, 0.1, 1.0, 0.5], requires_grad=True)
    p = sparsemax(src, torch.tensor([0, 0, 0, 1, 1]))
    assert torch.autograd.grad(p.sum(), src)[0].tolist() == [0.0] * 5


def test_jacobian_equals_closed_form_on_ties() -> None:
    # small integer scores: many ties, among them entries equal to their segment's threshold
    gen = torch.Generator().manual_seed(5)
    src = torch.randint(-2, 3, (60,), generator=gen).double().requires_grad_()
    index = torch.randint(0, 12, (60,), generator=gen)
    tied = 0
    for segment in range(12):
        values = src[index == segment].tolist()
        if values:
            tau = max(values) - max(naive_sparsemax(values))
            tied += sum(value == tau for value in values)
    assert tied > 0
    jac = torch.autograd.functional.jacobian(lambda z: sparsemax(z, index, 12), src)
    support = (sparsemax(src, index, 12) > 0).double()
    same = (index[:, None] == index[None, :]).double()
    size = torch.zeros(12, dtype=torch.float64).index_add_(0, index, support)[index]
    expected = same * (torch.diag(support) - torch.outer(support, support) / size[:, None])
    assert torch.equal(jac == 0, expected == 0)
    assert torch.allclose(jac, expected)


def test_empty_and_bad_input() -> None:
    empty = torch.empty(0)
    assert sparsemax(empty, torch.empty(0, dtype=torch.long), 3).numel() == 0
    with pytest.raises(ValueError, match="equal length"):
        sparsemax(torch.zeros(3), torch.zeros(2, dtype=torch.long))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.floats(-50, 50, allow_nan=False, width=64)),
        min_size=1,
        max_size=40,
    )
)
def test_property_matches_naive(entries: list[tuple[int, float]]) -> None:
    index = torch.tensor([segment for segment, _ in entries])
    src = torch.tensor([value for _, value in entries], dtype=torch.float64)
    out = sparsemax(src, index, 6)
    assert torch.allclose(out, naive_segments(src, index, 6), atol=1e-9)


def test_non_finite_scores_stay_in_their_segment() -> None:
    index = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    for bad in (float("nan"), float("inf")):
        out = sparsemax(torch.tensor([bad, 1.0, 2.0, 0.5, 1.0, 2.0, 0.1]), index)
        assert torch.isnan(out[:2]).all()  # undefined in its own segment
        assert out[2:].tolist() == sparsemax(torch.tensor([2.0, 0.5, 1.0, 2.0, 0.1]), index[2:] - 1).tolist()
    # a masked (-inf) score gets weight 0 and leaves the rest as without it
    out = sparsemax(torch.tensor([1.0, float("-inf"), 2.0, 0.5, 1.0, 2.0, 0.1]), index)
    assert out[1] == 0 and out[0] == 1
    assert torch.allclose(out[2:], sparsemax(torch.tensor([2.0, 0.5, 1.0, 2.0, 0.1]), index[2:] - 1))


def test_large_scores_keep_summing_to_one() -> None:
    for base in (1e4, 1e5, 1e6):
        out = sparsemax(torch.tensor([0.0, 0.25, -0.25]) + base, torch.zeros(3, dtype=torch.long))
        assert abs(float(out.sum()) - 1.0) < 1e-6


def test_one_key_sort_orders_as_two_stable_sorts() -> None:
    """float32 scores sort once on a 64-bit key (segment, then the value's bits): the same
    order as sorting by value and then stably by segment, including ties, -0.0 next to 0.0,
    infinities and NaNs of either sign."""
    from gcl.nn.sparsemax import _sort_by_segment

    generator = torch.Generator().manual_seed(0)
    src = torch.randn(5000, generator=generator).round(decimals=1)  # many ties, and -0.0
    src[::97] = float("inf")
    src[::89] = float("-inf")
    src[::83] = float("nan")
    src[::79] = -float("nan")
    src[::71] = -0.0
    index = torch.randint(0, 300, (5000,), generator=generator)
    expected = torch.argsort(src, descending=True, stable=True)
    expected = expected[torch.argsort(index[expected], stable=True)]
    assert torch.equal(_sort_by_segment(src, index, 300), expected)
    # float64 and very many segments take the two sorts
    assert torch.equal(_sort_by_segment(src.double(), index, 300), expected)
    assert torch.equal(_sort_by_segment(src, index, 2**30), expected)
