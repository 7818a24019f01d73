"""LCGNN's memories: labels required, the bank's momentum, and evaluation under torch.distributed."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch_geometric.data import Batch

from gcl.data import attach_index, load_dataset
from gcl.losses import MemoryBank, MemoryQueue
from gcl.methods import LCGNN, build_method, encode_graphs
from gcl.nn import GIN, Classifier, ProjectionHead
from gcl.train import seed_everything
from gcl.train.distributed import launch

WORLD = 2
GLOBAL = range(100, 108)  # the evaluation batch; rank r holds its r-th half
MEMORIES = ("queue", "bank")


def _parts(memory: MemoryQueue | MemoryBank) -> tuple[GIN, Classifier, ProjectionHead, MemoryQueue | MemoryBank]:
    encoder = GIN(7, 16, 2)
    return encoder, Classifier(encoder.out_channels, 16, 2), ProjectionHead(encoder.out_channels, 16, 8), memory


@pytest.mark.parametrize("kind", MEMORIES)
def test_memory_without_labels_is_refused_when_built(kind: str) -> None:
    memory = MemoryQueue(16, 8, store_labels=False) if kind == "queue" else MemoryBank(188, 8, store_labels=False)
    with pytest.raises(ValueError, match=r"LCGNN needs a memory that stores labels \(store_labels=True\)"):
        LCGNN(*_parts(memory))


def test_built_bank_holds_newest_keys_and_a_momentum_bank_mixes_them() -> None:
    dataset = attach_index(load_dataset("MUTAG"))
    seed_everything(0)
    built = build_method("lcgnn", dataset, memory="bank", hidden_channels=16, num_layers=2)
    assert isinstance(built.memory, MemoryBank) and built.memory.momentum == 0.0
    # a bank with a momentum, assembled by hand: each write mixes the slot with the new key
    method = LCGNN(*_parts(MemoryBank(len(dataset), 8, momentum=0.5)))
    batch = Batch.from_data_list([dataset[i] for i in range(16)])
    before = method.memory.get(batch.idx)
    method(batch)
    with torch.no_grad():
        keys = F.normalize(method.key_head(encode_graphs(method.key_encoder, batch).graph), dim=-1)
    mixed = F.normalize(0.5 * before + 0.5 * keys, dim=-1)
    torch.testing.assert_close(method.memory.get(batch.idx), mixed)


def _methods() -> tuple[Any, dict[str, LCGNN]]:
    """Small LCGNNs in evaluation mode, each with a memory filled alike in every process."""
    dataset = attach_index(load_dataset("MUTAG"))
    methods = {}
    for memory in MEMORIES:
        seed_everything(0)
        size = {"memory_size": 32} if memory == "queue" else {}
        method = build_method("lcgnn", dataset, memory=memory, hidden_channels=16, num_layers=2,
                              projection_channels=8, temperature=1.0, **size)
        g = torch.Generator().manual_seed(3)
        state = method.memory.state_dict()
        if memory == "queue":
            state["queue"] = F.normalize(torch.randn(32, 8, generator=g), dim=1)
            state["labels"] = torch.randint(2, (32,), generator=g)
            state["num_filled"], state["ptr"] = torch.tensor(32), torch.tensor(0)
        else:  # every slot written, the evaluation graphs' too (they must give way to the current keys)
            state["bank"] = F.normalize(torch.randn(len(dataset), 8, generator=g), dim=1)
            state["labels"] = dataset._data.y.clone()
        method.memory.load_state_dict(state)
        methods[memory] = method.eval()
    return dataset, methods


def _batch(dataset: Any, graphs: range) -> Batch:
    return Batch.from_data_list([dataset[i] for i in graphs])


def _evaluate_half(methods: dict[str, LCGNN]) -> list[dict[str, float]]:
    dataset = attach_index(load_dataset("MUTAG"))
    half = len(GLOBAL) // WORLD
    rank = dist.get_rank()
    batch = _batch(dataset, GLOBAL[rank * half:(rank + 1) * half])
    result = {}
    for name, method in methods.items():
        with torch.no_grad():
            result[name] = float(method(batch).parts["contrastive"])
    gathered: list[Any] = [None] * WORLD
    dist.all_gather_object(gathered, result)
    return gathered


@pytest.fixture(scope="module")
def evaluated() -> dict[str, Any]:
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    dataset, methods = _methods()
    ranks = launch(_evaluate_half, WORLD, args=(copy.deepcopy(methods),), backend="gloo", device="cpu",
                   start_method="spawn" if torch.cuda.is_initialized() else "fork")
    return {"ranks": ranks, "dataset": dataset, "methods": methods}


@pytest.mark.parametrize("memory", MEMORIES)
def test_evaluation_loss_of_two_ranks_is_that_of_one_process(evaluated: dict[str, Any], memory: str) -> None:
    method = evaluated["methods"][memory]
    stored = {k: v.clone() for k, v in method.memory.state_dict().items()}
    with torch.no_grad():
        single = float(method(_batch(evaluated["dataset"], GLOBAL)).parts["contrastive"])
    averaged = sum(r[memory] for r in evaluated["ranks"]) / WORLD
    assert averaged == pytest.approx(single, rel=1e-5)
    assert all(torch.equal(method.memory.state_dict()[k], v) for k, v in stored.items())
