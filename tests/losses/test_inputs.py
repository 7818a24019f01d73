"""Inputs every loss shares: autocast, dtypes, hyper-parameter types, degenerate batches."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import gcl.losses as L
from gcl.losses import functional as F


def _pair(n: int = 12, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = torch.Generator().manual_seed(seed)
    z1 = torch.randn(n, d, generator=rng)
    z2 = z1 + 0.3 * torch.randn(n, d, generator=rng)
    labels = torch.randint(0, 3, (n,), generator=rng)
    return z1, z2, labels


CASES: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "info_nce": lambda a, b, y: L.InfoNCE(0.1)(a, b),
    "info_nce_raw": lambda a, b, y: L.InfoNCE(0.1, normalize=False)(a, b),
    "sup_con": lambda a, b, y: L.SupConLoss(0.1)(torch.stack([a, b], 1), y),
    "barlow": lambda a, b, y: L.BarlowTwinsLoss()(a, b),
    "graph_barlow": lambda a, b, y: L.BarlowTwinsLoss.graph_barlow_twins()(a, b),
    "n_pair": lambda a, b, y: L.NPairLoss()(a, b),
    "triplet": lambda a, b, y: L.TripletLoss()(a, b, b.flip(0)),
    "debiased": lambda a, b, y: L.DebiasedContrastiveLoss(0.5)(a, b),
    "hard_negative": lambda a, b, y: L.HardNegativeLoss(0.5)(a, b),
    "multiview": lambda a, b, y: L.MultiviewContrastiveLoss(0.1)([a, b, a + b]),
}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(CASES))
def test_autocast_does_not_lower_the_precision_of_the_loss(name: str, dtype: torch.dtype) -> None:
    """Under autocast a loss computes as it does on the same half-precision inputs outside
    it: in float32 (before, its matrix products ran in half precision again)."""
    z1, z2, labels = _pair()
    with torch.autocast("cpu", dtype=dtype):
        inside = CASES[name](z1.to(dtype), z2.to(dtype), labels)
    outside = CASES[name](z1.to(dtype), z2.to(dtype), labels)
    assert inside.dtype == torch.float32
    assert torch.equal(inside, outside)


def test_graph_barlow_twins_of_a_large_batch_stays_finite_under_float16_autocast() -> None:
    # C * N exceeds float16's range (65504) for N = 70,000 when C is formed in half precision
    z = torch.randn(70_000, 4, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.float16):
        loss = L.BarlowTwinsLoss.graph_barlow_twins()(z.half(), z.half())
    assert torch.isfinite(loss) and float(loss) < 1e-2


def test_different_precisions_get_a_clear_error() -> None:
    z1, z2, _ = _pair()
    for loss in (lambda a, b: L.InfoNCE()(a, b), lambda a, b: L.BarlowTwinsLoss()(a, b),
                 lambda a, b: L.TripletLoss()(a, b, b), lambda a, b: L.MultiviewContrastiveLoss()([a, b])):
        with pytest.raises(ValueError, match="same floating dtype"):
            loss(z1, z2.double())
        # half precision next to float32 is fine: both compute in float32
        assert loss(z1, z2.half()).dtype == torch.float32


_PHI = torch.tensor([0.3, 0.5, 0.4])

# each loss of a memory (queue, bank rows, noise, prototypes, keys) given as (query, key, memory)
MEMORIES: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "info_nce": lambda q, k, m: L.InfoNCE(0.1)(q, k, negatives=m),
    "proto_nce_negatives": lambda q, k, m: L.ProtoNCELoss(0.2)(q, k, negatives=m),
    "proto_nce_prototypes": lambda q, k, m: L.ProtoNCELoss(0.2)(
        q, k, None, [torch.arange(q.size(0)) % 3], [m[:3]], [_PHI]),
    "mochi": lambda q, k, m: L.MoCHiLoss(0.2, num_hardest=4, num_synthetic_negatives=3, num_synthetic_query_mix=2)(
        q, k, m, generator=torch.Generator().manual_seed(0)),
    "imix": lambda q, k, m: L.IMixLoss(0.2)(q, k, torch.arange(q.size(0)).flip(0), 0.3, negatives=m),
    "label_contrastive": lambda q, k, m: L.LabelContrastiveLoss(0.1)(
        q, torch.arange(q.size(0)) % 2, m, torch.arange(m.size(0)) % 2),
    "nce": lambda q, k, m: L.NCELoss(0.1)(q, k, m, -math.log(50)),
}


@pytest.mark.parametrize(("query_dtype", "memory_dtype", "computation_dtype"), [
    (torch.float32, torch.float64, torch.float32),
    (torch.float64, torch.float16, torch.float64),
    (torch.float16, torch.float64, torch.float32),
    (torch.float64, torch.float32, torch.float64),
])
@pytest.mark.parametrize("name", sorted(MEMORIES))
def test_a_memory_is_cast_to_the_dtype_the_query_computes_in(
    name: str, query_dtype: torch.dtype, memory_dtype: torch.dtype, computation_dtype: torch.dtype,
) -> None:
    """One policy for every external memory: it is used in the query's computation dtype
    (half precision upcast to float32), whatever its own floating dtype. Before, a queue or
    memory negatives of another dtype were refused while keys, noise and prototypes were
    cast after their normalisation in their own, possibly lower, precision."""
    q, k, _ = _pair()
    memory = torch.randn(7, q.size(1), generator=torch.Generator().manual_seed(1))
    q, k, memory = q.to(query_dtype), k.to(query_dtype), memory.to(memory_dtype)
    loss = MEMORIES[name](q, k, memory)
    by_hand = MEMORIES[name](q, k, memory.to(computation_dtype))
    assert loss.dtype == computation_dtype
    assert torch.equal(loss, by_hand)


@pytest.mark.parametrize("name", sorted(MEMORIES))
def test_a_memory_that_is_not_floating_gets_a_clear_error(name: str) -> None:
    q, k, _ = _pair()
    with pytest.raises(ValueError, match=r"must be a floating-point tensor \(got dtype torch.int64\)"):
        MEMORIES[name](q, k, torch.ones(7, q.size(1), dtype=torch.long))


def test_memory_errors_name_the_query() -> None:
    q, k, _ = _pair()
    with pytest.raises(ValueError, match="feature size 8 like query"):
        L.ProtoNCELoss()(q, k, negatives=torch.randn(5, 3))


def test_numpy_numbers_are_accepted_and_tensors_refused_as_hyper_parameters() -> None:
    z1, z2, _ = _pair()
    assert float(L.InfoNCE(np.float32(0.5))(z1, z2)) == pytest.approx(float(L.InfoNCE(0.5)(z1, z2)))
    assert float(F.barlow_twins_loss(z1, z2, off_diagonal_weight=np.float64(0.01))) == pytest.approx(
        float(F.barlow_twins_loss(z1, z2, off_diagonal_weight=0.01)))
    with pytest.raises(ValueError, match=r"real number, not Tensor.*float\(value\)"):
        L.InfoNCE(torch.tensor(0.5))
    with pytest.raises(ValueError, match="real number"):
        L.InfoNCE(True)  # type: ignore[arg-type]


def test_embeddings_without_features_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one feature"):
        L.InfoNCE()(torch.randn(4, 0), torch.randn(4, 0))
    with pytest.raises(ValueError, match="at least one feature"):
        L.BarlowTwinsLoss()(torch.randn(4, 0), torch.randn(4, 0))


@pytest.mark.parametrize("loss", [
    lambda a: L.ContrastiveLoss()(a, a, torch.zeros(0, dtype=torch.bool)),
    lambda a: L.TripletLoss()(a, a, a),
])
def test_pair_losses_refuse_an_empty_batch(loss: Callable[[torch.Tensor], Any]) -> None:
    with pytest.raises(ValueError, match="empty batch"):
        loss(torch.randn(0, 4))


@pytest.mark.parametrize("loss", [
    lambda a: L.InfoNCE()(a, a),
    lambda a: L.BarlowTwinsLoss()(a, a),
    lambda a: L.NPairLoss()(a, a),
    lambda a: L.DebiasedContrastiveLoss()(a, a),
    lambda a: L.SupConLoss()(torch.stack([a, a], 1), torch.zeros(0, dtype=torch.long)),
])
def test_losses_with_in_batch_negatives_refuse_an_empty_batch(loss: Callable[[torch.Tensor], Any]) -> None:
    with pytest.raises(ValueError, match=r"batch|length 0|pairs \(got shape \(0, 4\)\)"):
        loss(torch.randn(0, 4))


@pytest.mark.parametrize("loss", [
    lambda a, q, y: L.InfoNCE()(a, a, negatives=q),
    lambda a, q, y: L.MoCHiLoss()(a, a, q),
    lambda a, q, y: L.LabelContrastiveLoss()(a, torch.zeros(0, dtype=torch.long), q, y),
])
@pytest.mark.parametrize("queue_size", [1, 16])
def test_losses_with_outside_negatives_give_zero_on_an_empty_batch(loss: Callable[..., torch.Tensor],
                                                                   queue_size: int) -> None:
    """A rank without anchors under DDP still joins the gradient all-reduce."""
    anchors = torch.randn(0, 4, requires_grad=True)
    queue = torch.nn.functional.normalize(torch.randn(queue_size, 4), dim=1)
    value = loss(anchors, queue, torch.randint(0, 2, (queue_size,)))
    assert value.item() == 0.0 and value.requires_grad
    value.backward()
    assert anchors.grad is not None and anchors.grad.shape == (0, 4)


def test_contrastive_loss_refuses_labels_other_than_0_and_1() -> None:
    x1, x2, _ = _pair(6)
    with pytest.raises(ValueError, match=r"0 \(dissimilar\) and 1 \(similar\).*-1"):
        L.ContrastiveLoss()(x1, x2, torch.tensor([1, -1, 1, -1, 1, 1]))
    with pytest.raises(ValueError, match=r"got also \[2\]"):
        L.ContrastiveLoss()(x1, x2, torch.tensor([0, 1, 2, 0, 1, 0]))
    as_int = L.ContrastiveLoss()(x1, x2, torch.tensor([1, 0, 1, 0, 1, 1]))
    as_bool = L.ContrastiveLoss()(x1, x2, torch.tensor([True, False, True, False, True, True]))
    assert torch.equal(as_int, as_bool) and float(as_int) >= 0


def test_nce_refuses_positive_log_probabilities_given_as_a_tensor() -> None:
    q, p, _ = _pair(4)
    noise = torch.randn(5, 8)
    with pytest.raises(ValueError, match="log-probabilities <= 0"):
        L.NCELoss()(q, p, noise, torch.full((4, 6), 0.5))


def test_all_finite_answers_for_every_entry_also_when_the_sum_overflows() -> None:
    from gcl.losses._checks import all_finite

    big = torch.full((4, 3), 3e38)  # finite entries whose sum overflows float32
    assert not bool(torch.isfinite(big.sum())) and all_finite(big)
    for bad in (float("nan"), float("inf"), float("-inf")):
        with_bad = big.clone()
        with_bad[2, 1] = bad
        assert not all_finite(with_bad)
        small = torch.randn(5, 2)
        small[4, 0] = bad
        assert not all_finite(small)
    assert all_finite(torch.randn(6, 2)) and all_finite(torch.empty(0, 3))
    assert all_finite(torch.arange(5))


_INTEGER_DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                   torch.uint16, torch.uint32, torch.uint64]


def _memory_entry_points(y: torch.Tensor) -> list[torch.Tensor]:
    bank = L.MemoryBank(6, 2, momentum=0.5, generator=torch.Generator().manual_seed(0))
    bank.update(y[:4], torch.ones(4, 2), labels=y[:4])
    queue = L.MemoryQueue(8, 2)
    queue.enqueue(torch.ones(4, 2), labels=y[:4])
    assert bank.labels is not None and queue.labels is not None
    return [bank.get(y[:4]), bank.get(), bank.labels, queue.labels]


# each entry point taking labels or positions: its results for the positions [2, 0, 1, 2, 1, 0]
POSITIONS: dict[str, Callable[[torch.Tensor], list[torch.Tensor]]] = {
    "proto_nce": lambda y: [L.ProtoNCELoss(0.2)(_pair(6)[0], _pair(6)[1], None, [y], [torch.randn(
        3, 8, generator=torch.Generator().manual_seed(2))], [torch.tensor([0.3, 0.5, 0.4])])],
    "memory": _memory_entry_points,
    "imix": lambda y: [L.IMixLoss(0.2)(_pair(6)[0], _pair(6)[1], torch.tensor([2, 0, 1, 4, 5, 3]).to(y.dtype), 0.3)],
    "estimate_concentration": lambda y: [L.estimate_concentration(
        _pair(6)[0], y, torch.randn(3, 8, generator=torch.Generator().manual_seed(2)))],
    "sup_con": lambda y: [L.SupConLoss(0.1)(torch.stack(_pair(6)[:2], 1), y)],
    "label_contrastive": lambda y: [L.LabelContrastiveLoss(0.1)(_pair(6)[0], y, _pair(6)[1], y)],
    "n_pair": lambda y: [L.NPairLoss()(_pair(6)[0], _pair(6)[1], y)],
}


@pytest.mark.parametrize("dtype", _INTEGER_DTYPES)
@pytest.mark.parametrize("name", sorted(POSITIONS))
def test_labels_and_positions_of_every_integer_dtype_are_accepted(name: str, dtype: torch.dtype) -> None:
    """uint16/uint32/uint64 labels and positions used to crash in the range check (torch has
    no min/max for them): they are read as int64 now, like the other integer dtypes."""
    positions = torch.tensor([2, 0, 1, 2, 1, 0])
    results = POSITIONS[name](positions.to(dtype))
    for result, expected in zip(results, POSITIONS[name](positions), strict=True):
        assert torch.equal(result, expected)


def test_uint64_positions_beyond_int64_are_refused() -> None:
    bank = L.MemoryBank(6, 2)
    with pytest.raises(ValueError, match=r"indices values must be below 2\*\*63.*9223372036854775810"):
        bank.get(torch.tensor([1, 2**63 + 2], dtype=torch.uint64))
    with pytest.raises(ValueError, match=r"labels values must be below 2\*\*63"):
        L.SupConLoss()(torch.randn(2, 2, 4), torch.tensor([0, 2**63], dtype=torch.uint64))
    with pytest.raises(ValueError, match="not a bool mask"):
        bank.get(torch.ones(6, dtype=torch.bool))
