"""GCN node encoder against the dense propagation rule of Kipf & Welling."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import Tensor
from torch_geometric.loader import DataLoader

from gcl.nn import GCN


@pytest.fixture(scope="module")
def mutag_graph(mutag):  # type: ignore[no-untyped-def]
    return next(iter(DataLoader(mutag[:30], batch_size=30)))


def dense_gcn(model: GCN, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> Tensor:
    n = x.size(0)
    adj = torch.zeros(n, n, dtype=x.dtype)
    weight = torch.ones(edge_index.size(1), dtype=x.dtype) if edge_weight is None else edge_weight
    adj.index_put_((edge_index[1], edge_index[0]), weight, accumulate=True)
    adj += torch.eye(n, dtype=x.dtype)
    isqrt = adj.sum(1).rsqrt()
    prop = isqrt[:, None] * adj * isqrt[None, :]
    h = x
    for layer, conv in enumerate(model.convs):
        h = prop @ h @ conv.lin.weight.t() + conv.bias
        if layer < len(model.acts):
            norm, act = model.norms[layer], model.acts[layer]
            if model.batch_norm:
                h = (h - norm.running_mean) / (norm.running_var + norm.eps).sqrt()
                h = h * norm.weight + norm.bias
            if model.activation == "prelu":
                h = h.clamp(min=0) + act.weight * h.clamp(max=0)
            else:
                h = h.relu()
    return h


@pytest.mark.parametrize(
    ("kwargs", "width"),
    [
        ({"num_layers": 2, "out_channels": 16}, 16),  # GRACE / GCA
        (
            {"num_layers": 2, "batch_norm": True, "plain_last": True, "batch_norm_momentum": 0.01},
            32,
        ),  # G-BT
        ({"num_layers": 3, "activation": "relu"}, 32),
        ({"num_layers": 1, "out_channels": 8}, 8),
    ],
)
def test_matches_dense_rule(mutag_graph, kwargs: dict, width: int) -> None:  # type: ignore[no-untyped-def]
    data = mutag_graph
    model = GCN(data.num_features, 32, **kwargs)
    with torch.no_grad():
        for act in model.acts:
            if isinstance(act, torch.nn.PReLU):
                act.weight.fill_(0.1)
    model.train()
    model(data.x, data.edge_index)  # non-trivial batch-norm statistics
    model.eval()
    half = data.edge_index[0] < data.edge_index[1]
    pair_weight = torch.rand(int(half.sum()))
    # symmetric weights: the weight of (u, v) equals that of (v, u)
    lookup = {
        tuple(e): w for e, w in zip(data.edge_index[:, half].t().tolist(), pair_weight.tolist())
    }
    weight = torch.tensor([lookup[(min(s, d), max(s, d))] for s, d in data.edge_index.t().tolist()])
    for edge_weight in (None, weight):
        with torch.no_grad():
            out = model(data.x, data.edge_index, edge_weight)
            expected = dense_gcn(model, data.x, data.edge_index, edge_weight)
        assert out.shape == (data.num_nodes, width) and model.out_channels == width
        assert torch.allclose(out, expected, atol=1e-5)


def test_structure_of_paper_layouts() -> None:
    gbt = GCN(10, 64, out_channels=32, batch_norm=True, plain_last=True, batch_norm_momentum=0.01)
    assert len(gbt.acts) == 1 and isinstance(gbt.acts[0], torch.nn.PReLU)
    assert isinstance(gbt.norms[0], torch.nn.BatchNorm1d) and gbt.norms[0].momentum == 0.01
    grace = GCN(10, 64, out_channels=32)
    assert len(grace.acts) == 2 and all(isinstance(n, torch.nn.Identity) for n in grace.norms)
    assert [c.lin.weight.shape for c in grace.convs] == [(64, 10), (32, 64)]
    assert "plain_last=True" in repr(gbt)


def test_cora_shapes_and_gradients() -> None:
    from gcl.data import load_dataset

    data = load_dataset("Cora")[0]
    model = GCN(data.num_features, 64, out_channels=32, dropout=0.2)
    out = model(data.x, data.edge_index)
    assert out.shape == (data.num_nodes, 32)
    out.pow(2).mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_dropout_and_determinism(mutag_graph) -> None:  # type: ignore[no-untyped-def]
    data = mutag_graph
    torch.manual_seed(3)
    model = GCN(data.num_features, 16, dropout=0.5)
    torch.manual_seed(3)
    twin = GCN(data.num_features, 16, dropout=0.5)
    torch.manual_seed(4)
    a = model(data.x, data.edge_index)
    torch.manual_seed(4)
    assert torch.equal(a, twin(data.x, data.edge_index))
    model.eval()
    assert torch.equal(model(data.x, data.edge_index), model(data.x, data.edge_index))


def test_rejects_bad_hyperparameters() -> None:
    with pytest.raises(ValueError, match="activation must be one of"):
        GCN(3, 8, activation="gelu")
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\) \(got 1.0\)"):
        GCN(3, 8, dropout=1.0)
    with pytest.raises(ValueError, match="batch_norm_momentum"):
        GCN(3, 8, batch_norm_momentum=2.0)
    with pytest.raises(ValueError, match="hidden_channels"):
        GCN(3, 0)


def _outputs(model: GCN, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> list[Tensor]:
    model.zero_grad()
    out = model(x, edge_index, edge_weight)
    out.pow(2).sum().backward()
    return [out.detach(), *(p.grad.clone() for p in model.parameters() if p.grad is not None)]


@pytest.mark.parametrize("weighted", [False, True])
def test_the_sparse_sum_computes_what_message_passing_does(mutag_graph, weighted, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """gcn_norm's weights and self-loops on a directed graph with repeated edges and self loops,
    int32 indices: the same outputs and gradients as PyG's GCNConv.forward."""
    import gcl.nn.gcn as gcn_module

    generator = torch.Generator().manual_seed(0)
    edge_index = mutag_graph.edge_index[:, torch.randperm(mutag_graph.num_edges, generator=generator)[:300]]
    edge_index = torch.cat([edge_index, edge_index[:, :20], torch.arange(5).repeat(2, 1)], dim=1)
    weight = torch.rand(edge_index.size(1), generator=generator, dtype=torch.float64) if weighted else None
    x = mutag_graph.x.double()
    model = GCN(x.size(1), 16, num_layers=3, batch_norm=True).double()
    for indices in (edge_index, edge_index.int()):
        sparse = _outputs(model, x, indices, weight)
        monkeypatch.setattr(gcn_module, "supports_sparse_aggregation", lambda x: False)
        passing = _outputs(model, x, indices, weight)
        monkeypatch.undo()
        assert len(sparse) == len(passing)
        for a, b in zip(sparse, passing, strict=True):
            torch.testing.assert_close(a, b)


def test_weights_that_need_gradients_get_those_of_message_passing(mutag_graph, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import gcl.nn.gcn as gcn_module

    x, edge_index = mutag_graph.x.double(), mutag_graph.edge_index
    model = GCN(x.size(1), 8, num_layers=2).double()
    grads = []
    for sparse in (True, False):
        if not sparse:
            monkeypatch.setattr(gcn_module, "supports_sparse_aggregation", lambda x: False)
        weight = torch.rand(edge_index.size(1), dtype=torch.float64,
                            generator=torch.Generator().manual_seed(1)).requires_grad_()
        model(x, edge_index, weight).pow(2).sum().backward()
        grads.append(weight.grad)
    assert bool(grads[0].abs().sum() > 0)
    torch.testing.assert_close(grads[0], grads[1])


def test_watched_layers_use_message_passing(mutag_graph) -> None:  # type: ignore[no-untyped-def]
    x, edge_index = mutag_graph.x, mutag_graph.edge_index
    model = GCN(x.size(1), 8)
    seen = []
    handle = model.convs[0].register_forward_hook(lambda module, args, out: seen.append(out.shape))
    try:
        model(x, edge_index)
    finally:
        handle.remove()
    assert seen == [(x.size(0), 8)]


def test_edge_weights_of_the_wrong_shape_are_refused(mutag_graph) -> None:  # type: ignore[no-untyped-def]
    x, edge_index = mutag_graph.x, mutag_graph.edge_index
    model = GCN(x.size(1), 8)
    for weight in (torch.ones(edge_index.size(1) - 1), torch.ones(edge_index.size(1), 2)):
        with pytest.raises(ValueError, match="one weight per edge"):
            model(x, edge_index, weight)


@pytest.mark.parametrize("options", [
    {"batch_norm": True, "dropout": 0.3},
    {"activation": "elu", "dropout": 0.5},
    {"batch_norm": True, "plain_last": True, "num_layers": 3},
])
def test_activation_checkpointing_changes_no_number(options: dict) -> None:  # type: ignore[type-arg]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(30, 5, generator=generator)
    edge_index = torch.randint(30, (2, 90), generator=generator)
    weight = torch.rand(90, generator=generator)
    torch.manual_seed(0)
    plain = GCN(5, 8, out_channels=4, **options)
    recomputed = GCN(5, 8, out_channels=4, activation_checkpointing=True, **options)
    recomputed.load_state_dict(plain.state_dict())
    assert "activation_checkpointing=True" in repr(recomputed)
    results = []
    for model in (plain, recomputed):
        model.train()
        edge_weight = weight.clone().requires_grad_()  # learnt edge weights get their gradient too
        torch.manual_seed(1)
        out = model(x, edge_index, edge_weight)
        (out.sin().sum()).backward()
        results.append((out.detach(), [p.grad for p in model.parameters()], edge_weight.grad,
                        [b.clone() for b in model.buffers()], torch.rand(1)))
    (out_a, grads_a, weight_a, buffers_a, next_a), (out_b, grads_b, weight_b, buffers_b, next_b) = results
    assert torch.equal(out_a, out_b) and torch.equal(weight_a, weight_b) and torch.equal(next_a, next_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))
    assert all(torch.equal(a, b) for a, b in zip(buffers_a, buffers_b))  # running statistics updated once


def test_activation_checkpointing_keeps_less_for_the_backward() -> None:
    x = torch.randn(500, 64)
    edge_index = torch.randint(500, (2, 2000))

    def saved_bytes(model: GCN) -> int:
        storages: dict[int, int] = {}

        def keep(tensor: Tensor) -> Tensor:
            storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
            out = model(x, edge_index)
        out.sum().backward()
        return sum(storages.values())

    options = {"num_layers": 3, "batch_norm": True, "dropout": 0.2}
    width = 500 * 64 * 4  # one layer's node states
    assert saved_bytes(GCN(64, 64, **options)) > 5 * width
    # the layers' inputs (the features and two layers' states) and the edges
    assert saved_bytes(GCN(64, 64, activation_checkpointing=True, **options)) <= 3 * width + 2000 * 2 * 8


def test_activation_checkpointing_takes_true_or_false_only() -> None:
    with pytest.raises(ValueError, match=r"activation_checkpointing must be True or False \(got 'false'\)"):
        GCN(5, 8, activation_checkpointing="false")  # type: ignore[arg-type]


def test_a_gcn_pickled_before_activation_checkpointing_still_runs(mutag_graph) -> None:  # type: ignore[no-untyped-def]
    data = mutag_graph
    model = GCN(data.num_features, 16, num_layers=2).eval()
    expected = model(data.x, data.edge_index)
    del model.__dict__["activation_checkpointing"]  # what such a pickle lacks
    old = pickle.loads(pickle.dumps(model))
    assert torch.equal(old(data.x, data.edge_index), expected)

