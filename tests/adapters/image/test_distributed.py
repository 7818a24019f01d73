"""PCL's E-step under torch.distributed: every replica must end with rank 0's clustering."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor

pytest.importorskip("kornia")

from gcl.adapters.image import PCL, SmallResNet

WORLD = 2


def _identity(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    return images


def _worker(local_rank: int, out_dir: str, init_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=local_rank, world_size=WORLD)
    try:
        torch.manual_seed(0)  # the same encoder and images on both ranks
        images = torch.rand(24, 1, 8, 8)
        method = PCL(SmallResNet(1, 8), _identity, num_items=24, num_clusters=[4, 6], queue_size=16,
                     generator=torch.Generator().manual_seed(local_rank))  # k-means draws differ by rank
        method.update_prototypes(images)
        torch.save({name: buffer.clone() for name, buffer in method.named_buffers()
                    if name.startswith(("assignments", "prototypes_", "concentrations_"))},
                   os.path.join(out_dir, f"rank{local_rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_pcl_replicas_share_rank_zeros_clustering(tmp_path: Path) -> None:
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    mp.spawn(_worker, args=(str(tmp_path), str(tmp_path / "init")), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    assert set(ranks[0]) == {"assignments", "prototypes_0", "prototypes_1", "concentrations_0", "concentrations_1"}
    for name, value in ranks[0].items():
        assert torch.equal(value, ranks[1][name]), name
    # rank 0's own clustering, computed alone
    torch.manual_seed(0)
    images = torch.rand(24, 1, 8, 8)
    alone = PCL(SmallResNet(1, 8), _identity, num_items=24, num_clusters=[4, 6], queue_size=16,
                generator=torch.Generator().manual_seed(0))
    alone.update_prototypes(images)
    assert torch.equal(alone.assignments, ranks[0]["assignments"])
