"""Every method and encoder on a CUDA device: training stays on the device and finite, and the
encoders compute what they compute on the CPU. Skipped without CUDA."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from gcl import losses
from gcl.methods import build_method, embed_dataset
from gcl.nn import GCN, GIN, HGPSL
from gcl.train import fit, seed_everything

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")

GRAPH_METHODS = [
    ("graphcl", {}),
    ("graphcl", {"augmentations": ("identity", "random4"), "graphcl_reference": True}),
    ("lcgnn", {"hidden_channels": 32, "num_layers": 3, "memory_size": 128}),
    ("lcgnn", {"encoder": "hgpsl", "hidden_channels": 32, "num_layers": 3, "memory_size": 128}),
    ("supervised", {"hidden_channels": 32, "num_layers": 3}),
    ("supervised", {"encoder": "hgpsl", "hidden_channels": 32, "num_layers": 3}),
    ("adaptive-bt", {}),
]


def _on_cuda(module: torch.nn.Module) -> bool:
    return all(t.device.type == "cuda" for t in [*module.parameters(), *module.buffers()])


@pytest.mark.parametrize(("name", "options"), GRAPH_METHODS,
                         ids=["graphcl", "graphcl-reference", "lcgnn-gin", "lcgnn-hgpsl", "supervised-gin",
                              "supervised-hgpsl", "adaptive-bt"])
def test_graph_methods_train_on_cuda(name: str, options: dict[str, Any], mutag: Any) -> None:
    seed_everything(0)
    method = build_method(name, mutag, **options)
    result = fit(method, mutag, epochs=3, batch_size=64, lr=0.01, device="cuda", progress=False)
    losses_seen = [row["loss"] for row in result.history]
    assert len(losses_seen) == 3 and all(torch.isfinite(torch.tensor(losses_seen)))
    assert _on_cuda(method)
    features, labels = embed_dataset(method, mutag)
    assert features.shape[0] == 188 and labels.shape == (188,)


@pytest.mark.parametrize("name", ["gbt", "adaptive-gbt", "grace", "gca"])
def test_node_methods_train_on_cuda(name: str, mutag: Any) -> None:
    big = Batch.from_data_list(list(mutag[:32]))
    graph = Data(x=big.x, edge_index=big.edge_index, y=big.y[big.batch])
    seed_everything(0)
    method = build_method(name, graph, **({"hidden_channels": 64} if "gbt" in name else {}))
    result = fit(method, graph, epochs=5, lr=0.003, device="cuda", progress=False)
    assert all(torch.isfinite(torch.tensor([row["loss"] for row in result.history])))
    assert _on_cuda(method)
    features, _ = embed_dataset(method, graph)
    assert features.shape[0] == graph.num_nodes
    # training and evaluation moved copies: the caller's graph is still on the CPU
    assert graph.x.device.type == "cpu" and graph.edge_index.device.type == "cpu"


def _encoder_outputs(encoder: torch.nn.Module, batch: Batch, device: str) -> torch.Tensor:
    encoder = encoder.to(device).eval()
    b = batch.clone().to(device)  # Batch.to moves in place
    with torch.no_grad():
        return encoder(b.x, b.edge_index, b.batch, num_graphs=b.num_graphs).graph.cpu()


def _encoder_gradients(encoder: torch.nn.Module, batch: Batch, device: str) -> list[torch.Tensor]:
    encoder = encoder.to(device).train()
    encoder.zero_grad()
    b = batch.clone().to(device)
    x = b.x.clone().requires_grad_()
    out = encoder(x, b.edge_index, b.batch, num_graphs=b.num_graphs).graph
    (out * torch.linspace(-1, 1, out.numel(), device=device).view_as(out)).sum().backward()
    return [x.grad.cpu()] + [p.grad.cpu() for p in encoder.parameters()]


@pytest.mark.parametrize(("in_channels", "checkpoint", "micro"), [(7, False, None), (96, False, None), (7, True, None),
                                                                 (7, False, 16)])
def test_gin_on_cuda_equals_cpu(in_channels: int, checkpoint: bool, micro: int | None, mutag: Any) -> None:
    """Forward and backward (the sparse products on cuSPARSE: both CSR matrices; with activation
    checkpointing, recomputed in the backward pass; in micro-batches of 16 graphs, each recomputed)."""
    batch = next(iter(DataLoader(mutag, batch_size=64)))
    batch.x = torch.randn(batch.num_nodes, in_channels) if in_channels != 7 else batch.x
    seed_everything(0)
    encoder = GIN(in_channels, 32, num_layers=3, activation_checkpointing=checkpoint, micro_batch_size=micro)
    cpu = _encoder_outputs(encoder, batch, "cpu")
    assert torch.allclose(_encoder_outputs(encoder, batch, "cuda"), cpu, rtol=1e-4, atol=1e-4)
    state = {k: v.clone() for k, v in encoder.cpu().state_dict().items()}
    on_cpu = _encoder_gradients(encoder, batch, "cpu")
    encoder.cpu().load_state_dict(state)
    for a, b in zip(_encoder_gradients(encoder, batch, "cuda"), on_cpu, strict=True):
        assert (a - b).norm() <= 1e-4 * b.norm().clamp_min(1.0)


@pytest.mark.parametrize("checkpoint", [False, True])
def test_gcn_on_cuda_equals_cpu(checkpoint: bool, mutag: Any) -> None:
    """The GCN's weighted sparse products on cuSPARSE, forward and backward, with edge weights (with
    activation checkpointing, recomputed in the backward pass)."""
    graph = next(iter(DataLoader(mutag, batch_size=64)))
    weight = torch.rand(graph.num_edges, generator=torch.Generator().manual_seed(0))
    seed_everything(0)
    encoder = GCN(graph.num_features, 32, num_layers=2, batch_norm=True, activation_checkpointing=checkpoint)

    def run(device: str) -> list[torch.Tensor]:
        model = encoder.to(device).train()
        model.zero_grad()
        x = graph.x.to(device).requires_grad_()
        out = model(x, graph.edge_index.to(device), weight.to(device))
        (out * torch.linspace(-1, 1, out.numel(), device=device).view_as(out)).sum().backward()
        return [out.detach().cpu(), x.grad.cpu()] + [p.grad.cpu() for p in model.parameters()]

    state = {k: v.clone() for k, v in encoder.state_dict().items()}
    on_cpu = run("cpu")
    encoder.load_state_dict(state)
    for a, b in zip(run("cuda"), on_cpu, strict=True):
        assert (a - b).norm() <= 1e-4 * b.norm().clamp_min(1.0)


def test_hgpsl_on_cuda_equals_cpu(proteins: Any) -> None:
    batch = next(iter(DataLoader(proteins, batch_size=32)))
    # continuous features: PROTEINS' one-hot features tie many node scores, and rounding
    # differences between the devices then pick different (equally scored) nodes to keep
    batch.x = torch.randn(batch.num_nodes, proteins.num_features, generator=torch.Generator().manual_seed(0))
    seed_everything(0)
    encoder = HGPSL(proteins.num_features, 64, num_layers=3)
    cpu = _encoder_outputs(encoder, batch, "cpu")
    assert torch.allclose(_encoder_outputs(encoder, batch, "cuda"), cpu, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    "loss",
    [losses.InfoNCE(0.2), losses.BarlowTwinsLoss(), losses.SupConLoss(0.1)],
    ids=["infonce", "barlow-twins", "supcon"],
)
def test_loss_core_on_cuda_equals_cpu(loss: torch.nn.Module) -> None:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, 16, generator=gen), torch.randn(64, 16, generator=gen)
    labels = torch.randint(0, 3, (64,), generator=gen)
    values = []
    for device in ("cpu", "cuda"):
        args = (a.to(device), b.to(device))
        if isinstance(loss, losses.SupConLoss):
            value = loss(torch.stack(args, 1), labels.to(device))
        else:
            value = loss(*args)
        values.append(value.cpu())
    assert torch.allclose(values[0], values[1], rtol=1e-4, atol=1e-5)
