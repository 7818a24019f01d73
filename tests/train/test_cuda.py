"""Training on a CUDA device: data-parallel semantics, checkpoints across devices, the command line.

With one GPU, two processes share it over gloo (NCCL refuses two ranks on one device), which
still runs every collective of the losses and of DDP on CUDA tensors; one NCCL process checks
that backend's set-up. Skipped without CUDA.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import Tensor

from gcl.train import fit
from gcl.train.distributed import launch

from .test_distributed import _config, _dataset, _global_batches, _methods, _rank_batches, _state

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DEVICE = "cuda:0"
# float32 sums on the GPU are reassociated between one and two processes (and atomics make
# them order-dependent); 1e-4 is far below what a missing or doubled term would change
TOLERANCE = 1e-4


def _cpu_state(module: torch.nn.Module) -> dict[str, Tensor]:
    return {k: v.cpu() for k, v in _state(module).items()}


def _cuda_worker(methods: dict[str, torch.nn.Module]) -> dict[str, Any]:
    rank = dist.get_rank()
    batches = _rank_batches(_dataset(), rank)
    states = {name: _cpu_state(fit(copy.deepcopy(m), batches, _config(device=DEVICE)).method)
              for name, m in methods.items()}
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, {"rank": rank, "backend": dist.get_backend(), "states": states})
    return {"ranks": gathered}


@pytest.fixture(scope="module")
def two_on_one_gpu() -> dict[str, Any]:
    dataset = _dataset()
    methods = _methods(dataset)
    spawned = launch(_cuda_worker, 2, args=(methods,), backend="gloo", device=DEVICE, start_method="spawn")
    single = {name: _cpu_state(fit(copy.deepcopy(m), _global_batches(dataset), _config(device=DEVICE)).method)
              for name, m in methods.items()}
    return {"ranks": spawned["ranks"], "single": single}


@pytest.mark.parametrize("name", ["graphcl", "lcgnn-queue", "lcgnn-bank", "barlow"])
def test_two_processes_on_cuda_match_one_process(two_on_one_gpu: dict[str, Any], name: str) -> None:
    ranks = two_on_one_gpu["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["backend"] == "gloo"
    expected = two_on_one_gpu["single"][name]
    for rank in ranks:
        got = rank["states"][name]
        assert got.keys() == expected.keys()
        for key in expected:
            torch.testing.assert_close(got[key], expected[key], rtol=0, atol=TOLERANCE, msg=key)


def test_checkpoint_moves_between_cuda_and_cpu(tmp_path: Path) -> None:
    """A run checkpointed on the GPU resumes on the CPU, and the reverse."""
    dataset = _dataset()
    method = _methods(dataset)["lcgnn-bank"]
    batches = _global_batches(dataset)
    for first, second in ((DEVICE, "cpu"), ("cpu", DEVICE)):
        out = tmp_path / f"{first}-{second}".replace(":", "")
        fit(copy.deepcopy(method), batches, _config(epochs=1, device=first), out_dir=out)
        resumed = fit(copy.deepcopy(method), batches, _config(epochs=2, device=second), out_dir=out)
        assert len(resumed.history) == 2
        assert all(t.device.type == torch.device(second).type for t in resumed.method.state_dict().values())


@pytest.mark.slow
def test_torchrun_with_nccl_on_one_gpu(tmp_path: Path) -> None:
    """The documented multi-GPU command with one process: NCCL and SyncBatchNorm on CUDA."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=1", "-m", "gcl.cli", "train",
               "graphcl", "--dataset", "MUTAG", "--epochs", "2", "--batch-size", "64", "--eval", "svc",
               "--quiet", "--device", "cuda", "--backend", "nccl", "--sync-batchnorm", "--out", str(out)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=False, map_location="cpu")
    assert checkpoint["epoch"] == 2 and checkpoint["world_size"] == 1
    assert (out / "result.json").is_file()


def test_view_workers_feed_a_cuda_run(mutag: Any) -> None:
    """The workers draw on the CPU and deliver on the GPU exactly what they deliver on the CPU."""
    from gcl.data import CollatedLoader, ViewPrefetcher
    from gcl.methods import build_method
    from gcl.train import TrainConfig, seed_everything

    loader = CollatedLoader(mutag, 32)
    seed_everything(0)
    method = build_method("graphcl", mutag)
    delivered = {}
    for device in ("cpu", DEVICE):
        with ViewPrefetcher(loader.collate, method.view_augmentations(), device=device) as prefetcher:
            delivered[device] = next(iter(prefetcher.epoch(loader.batch_indices()[:1], [7])))
    (cpu_batch, cpu_views), (batch, views) = delivered["cpu"], delivered[DEVICE]
    for on_cpu, on_cuda in zip([cpu_batch, *cpu_views], [batch, *views], strict=True):
        for key in on_cpu.keys():
            if isinstance(on_cpu[key], Tensor):
                assert on_cuda[key].device.type == "cuda"
                assert torch.equal(on_cpu[key], on_cuda[key].cpu()), key
    # one step's loss from the delivered views is the CPU's
    on_gpu = copy.deepcopy(method).to(DEVICE)
    assert torch.allclose(method(cpu_batch, views=cpu_views), on_gpu(batch, views=views).cpu(), atol=1e-4)
    config = TrainConfig(epochs=2, batch_size=32, seed=1, progress=False, device=DEVICE, view_workers=1)
    result = fit(method, mutag, config)
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in result.history)
    assert next(result.method.parameters()).device.type == "cuda"
