"""Two gloo processes on half-batches must reproduce the single-process loss and gradients.

Each rank computes its loss on its slice of the global batch and back-propagates; the
parameter gradients are then averaged over ranks as DDP does. The average loss and the
averaged gradients must equal the loss and gradients of one process on the whole batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn

from gcl.losses import (
    BarlowTwinsLoss,
    ContrastiveLoss,
    DebiasedContrastiveLoss,
    HardNegativeLoss,
    IMixLoss,
    InfoNCE,
    LabelContrastiveLoss,
    MemoryBank,
    MemoryQueue,
    MultiviewContrastiveLoss,
    NPairLoss,
    SupConLoss,
    TripletLoss,
    all_reduce_mean,
    gather_with_grad,
    is_distributed,
    rank,
    world_size,
)

WORLD = 2
BATCH = 12
SPLITS = ((6, 6), (5, 7), (0, 12))  # a rank may hold nothing of a step

Case = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


def _keys() -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(7)
    return torch.randn(9, 4, generator=g, dtype=torch.float64), torch.randint(3, (9,), generator=g)


CASES: dict[str, Case] = {
    "infonce": lambda z1, z2, y, p: InfoNCE(0.5)(z1, z2),
    "infonce_graphcl": lambda z1, z2, y, p: InfoNCE.graphcl(0.2)(z1, z2),
    "infonce_queue": lambda z1, z2, y, p: InfoNCE(0.3)(z1, z2, _keys()[0]),
    # hard negatives of each rank's own rows (supervised SimCSE's contradictions)
    "infonce_hard_negatives": lambda z1, z2, y, p: InfoNCE(
        0.05, symmetric=False, intra_view_negatives=False, gather_negatives=True)(z1, z2, z1 - 2 * z2),
    "barlow_original": lambda z1, z2, y, p: BarlowTwinsLoss.original()(z1, z2),
    "barlow_graph": lambda z1, z2, y, p: BarlowTwinsLoss.graph_barlow_twins()(z1, z2),
    "supcon": lambda z1, z2, y, p: SupConLoss(0.1)(torch.stack([z1, z2], dim=1), y),
    "supcon_one_view": lambda z1, z2, y, p: SupConLoss(0.1)(z1, y),
    "label_contrastive": lambda z1, z2, y, p: LabelContrastiveLoss(0.1)(z1, y, *_keys()),
    "dcl": lambda z1, z2, y, p: DebiasedContrastiveLoss(0.5, 0.1)(z1, z2),
    "hcl": lambda z1, z2, y, p: HardNegativeLoss(0.5, 0.1, 1.0)(z1, z2),
    "cmc": lambda z1, z2, y, p: MultiviewContrastiveLoss(0.2)([z1, z2, z1 - z2]),
    "npair": lambda z1, z2, y, p: NPairLoss(0.01)(z1, z2, y),
    "imix": lambda z1, z2, y, p: IMixLoss(0.2)(z1, z2, p, 0.3),
    "triplet": lambda z1, z2, y, p: TripletLoss(1.0)(z1, z2, z1[p]),
    "contrastive": lambda z1, z2, y, p: ContrastiveLoss(1.0)(z1, z2[p], y == y[p]),
}


def _data() -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(BATCH, 6, generator=g, dtype=torch.float64)
    x2 = x1 + 0.5 * torch.randn(BATCH, 6, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, 1, 3, 2, 1])
    return x1, x2, labels


def _encoder() -> nn.Linear:
    torch.manual_seed(1)
    return nn.Linear(6, 4).double()


def _local_permutation(size: int) -> Tensor:
    return torch.flip(torch.arange(size), dims=[0])


def _run(case: Case, x1: Tensor, x2: Tensor, y: Tensor, perm: Tensor) -> dict[str, Tensor]:
    encoder = _encoder()
    loss = case(encoder(x1), encoder(x2), y, perm)
    loss.backward()
    assert encoder.weight.grad is not None and encoder.bias.grad is not None
    return {
        "loss": loss.detach(),
        "weight": encoder.weight.grad.clone(),
        "bias": encoder.bias.grad.clone(),
    }


def _worker(local_rank: int, out_dir: str, init_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=local_rank, world_size=WORLD
    )
    try:
        x1, x2, labels = _data()
        results: dict[str, Any] = {
            "is_distributed": is_distributed(),
            "rank": rank(),
            "world_size": world_size(),
        }
        for split in SPLITS:
            start = sum(split[:local_rank])
            rows = slice(start, start + split[local_rank])
            for name, case in CASES.items():
                results[f"{split}/{name}"] = _run(
                    case, x1[rows], x2[rows], labels[rows], _local_permutation(split[local_rank])
                )
            # Memories: every replica must hold the keys of all ranks in rank order.
            queue = MemoryQueue(size=8, dim=6)
            queue.enqueue(x1[rows], labels[rows])
            results[f"{split}/queue"] = queue.get()
            bank = MemoryBank(BATCH, 6, momentum=0.0)
            bank.update(torch.arange(BATCH)[rows], x1[rows], labels[rows])
            results[f"{split}/bank"] = (bank.get().clone(), bank.labels)
        local = torch.full((2,), float(local_rank + 1), dtype=torch.float64, requires_grad=True)
        gathered = gather_with_grad(local * 2)
        (gathered * torch.arange(4, dtype=torch.float64)).sum().backward()
        results["gather"] = (gathered.detach(), local.grad)
        results["mean"] = all_reduce_mean(torch.tensor(float(local_rank)))
        torch.save(results, os.path.join(out_dir, f"rank{local_rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    tmp = tmp_path_factory.mktemp("gloo")
    mp.spawn(_worker, args=(str(tmp), str(tmp / "init")), nprocs=WORLD, join=True)
    return [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def test_process_group_helpers(rank_results: list[dict[str, Any]]) -> None:
    for r, result in enumerate(rank_results):
        assert result["is_distributed"] is True
        assert result["rank"] == r and result["world_size"] == WORLD
        assert float(result["mean"]) == pytest.approx(0.5)
    assert not is_distributed() and rank() == 0 and world_size() == 1


def test_gather_with_grad_sums_gradients_over_ranks(rank_results: list[dict[str, Any]]) -> None:
    expected_gathered = torch.tensor([2.0, 2.0, 4.0, 4.0], dtype=torch.float64)
    for r, result in enumerate(rank_results):
        gathered, grad = result["gather"]
        assert torch.equal(gathered, expected_gathered)
        # Each rank's loss weights the gathered rows by 0..3; both losses depend on every row.
        expected_grad = 2 * WORLD * torch.arange(4, dtype=torch.float64)[2 * r : 2 * r + 2]
        assert torch.equal(grad, expected_grad)


@pytest.mark.parametrize("split", SPLITS, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", list(CASES))
def test_distributed_equals_single_process(
    rank_results: list[dict[str, Any]], name: str, split: tuple[int, int]
) -> None:
    x1, x2, labels = _data()
    permutation = torch.cat([_local_permutation(split[0]), split[0] + _local_permutation(split[1])])
    full = _run(CASES[name], x1, x2, labels, permutation)
    per_rank = [result[f"{split}/{name}"] for result in rank_results]
    for key in ("loss", "weight", "bias"):
        averaged = torch.stack([r[key] for r in per_rank]).mean(dim=0)
        torch.testing.assert_close(averaged, full[key], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("split", SPLITS, ids=lambda s: "x".join(map(str, s)))
def test_memories_gather_all_ranks(
    rank_results: list[dict[str, Any]], split: tuple[int, int]
) -> None:
    x1, _, labels = _data()
    single_queue = MemoryQueue(size=8, dim=6)
    single_queue.enqueue(x1, labels)
    expected = single_queue.get()
    for result in rank_results:
        contents = result[f"{split}/queue"]
        assert torch.equal(contents.keys, expected.keys.to(contents.keys.dtype))
        assert expected.labels is not None
        assert torch.equal(contents.labels, expected.labels)
        bank, bank_labels = result[f"{split}/bank"]
        torch.testing.assert_close(bank, torch.nn.functional.normalize(x1.float(), dim=1))
        assert torch.equal(bank_labels, labels)


def test_runs_without_process_group(tmp_path: Path) -> None:
    # The same code path in one process is the single-process loss (no collectives).
    x1, x2, labels = _data()
    out = _run(CASES["infonce"], x1, x2, labels, _local_permutation(BATCH))
    assert torch.isfinite(out["loss"])
