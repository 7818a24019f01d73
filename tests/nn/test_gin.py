"""GIN encoder against a per-graph dense implementation of the GraphCL layer order."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from gcl.data import load_dataset
from gcl.nn import GIN, EncoderOutput


@pytest.fixture(scope="module")
def mutag_batch(mutag):  # type: ignore[no-untyped-def]
    return next(iter(DataLoader(mutag, batch_size=32)))


def naive_gin(model: GIN, data: Data) -> tuple[Tensor, Tensor]:
    """One graph at a time: h <- BN(ReLU(MLP((1 + eps) h + sum_j msg_j))), readout per layer."""
    graphs, nodes_out = [], torch.zeros(data.num_nodes, model.out_channels)
    for graph in range(data.num_graphs):
        nodes = (data.batch == graph).nonzero().view(-1)
        local = {int(n): i for i, n in enumerate(nodes)}
        edges = [
            (local[s], local[d], e)
            for e, (s, d) in enumerate(data.edge_index.t().tolist())
            if s in local
        ]
        h = data.x[nodes]
        per_layer = []
        for conv, norm in zip(model.convs, model.norms):
            agg = torch.zeros_like(h)
            for s, d, e in edges:
                if model.edge_dim is not None:
                    agg[d] += torch.relu(h[s] + conv.lin(data.edge_attr[e]))
                else:
                    agg[d] += h[s]
            h = conv.nn((1 + conv.eps) * h + agg).relu()
            if model.batch_norm:
                h = (h - norm.running_mean) / (norm.running_var + norm.eps).sqrt()
                h = h * norm.weight + norm.bias
            per_layer.append(h)
        node = torch.cat(per_layer, dim=1)
        nodes_out[nodes] = node
        if model.readout == "sum":
            graphs.append(node.sum(0))
        elif model.readout == "mean":
            graphs.append(node.mean(0))
        else:
            graphs.append(node.max(0).values)
    return torch.stack(graphs), nodes_out


@pytest.mark.parametrize("readout", ["sum", "mean", "max"])
def test_matches_naive_per_graph_loop(mutag_batch, readout: str) -> None:  # type: ignore[no-untyped-def]
    data = mutag_batch
    model = GIN(data.num_features, 32, 3, readout=readout)
    model.train()
    model(data.x, data.edge_index, data.batch)  # non-trivial running statistics
    model.eval()
    with torch.no_grad():
        out = model(data.x, data.edge_index, data.batch, num_graphs=data.num_graphs)
        graph, node = naive_gin(model, data)
    assert isinstance(out, EncoderOutput)
    assert out.graph.shape == (data.num_graphs, 96) and model.out_channels == 96
    assert out.node.shape == (data.num_nodes, 96)
    assert torch.allclose(out.node, node, atol=1e-4)
    assert torch.allclose(out.graph, graph, atol=1e-3)


def test_edge_features_match_naive(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    data = mutag_batch
    model = GIN(data.num_features, 16, 2, edge_dim=data.edge_attr.size(1), train_eps=True)
    with torch.no_grad():
        for conv in model.convs:
            conv.eps.fill_(0.3)
    model.eval()
    with torch.no_grad():
        out = model(data.x, data.edge_index, data.batch, edge_attr=data.edge_attr)
        graph, node = naive_gin(model, data)
    assert torch.allclose(out.node, node, atol=1e-4)
    assert torch.allclose(out.graph, graph, atol=1e-3)
    with pytest.raises(ValueError, match="edge_attr is None"):
        model(data.x, data.edge_index, data.batch)


def test_emptied_graph_keeps_a_zero_row(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    # Drop every node of graph 3 (as a node-dropping augmentation may) and the last graph.
    data = mutag_batch
    keep = (data.batch != 3) & (data.batch != data.num_graphs - 1)
    mapping = torch.full((data.num_nodes,), -1).index_put_(
        (keep.nonzero().view(-1),), torch.arange(int(keep.sum()))
    )
    edge_mask = keep[data.edge_index].all(0)
    edge_index = mapping[data.edge_index[:, edge_mask]]
    for readout in ("sum", "mean", "max"):
        model = GIN(data.num_features, 8, 2, readout=readout).eval()
        out = model(data.x[keep], edge_index, data.batch[keep], num_graphs=data.num_graphs)
        assert out.graph.shape == (data.num_graphs, 16)
        assert (out.graph[3] == 0).all() and (out.graph[-1] == 0).all()
        assert (out.graph[0] != 0).any()


def test_one_node_and_edgeless_graphs() -> None:
    graphs = [
        Data(x=torch.randn(1, 5), edge_index=torch.empty(2, 0, dtype=torch.long)),
        Data(x=torch.randn(4, 5), edge_index=torch.empty(2, 0, dtype=torch.long)),
        Data(x=torch.randn(3, 5), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])),
    ]
    data = Batch.from_data_list(graphs)
    model = GIN(5, 8, 3)
    out = model(data.x, data.edge_index, data.batch)  # training mode works too
    assert out.graph.shape == (3, 24) and torch.isfinite(out.graph).all()
    model.eval()
    with torch.no_grad():
        graph, node = naive_gin(model, data)
        out = model(data.x, data.edge_index, data.batch)
    assert torch.allclose(out.graph, graph, atol=1e-4)
    assert torch.allclose(out.node, node, atol=1e-5)
    single = model(graphs[0].x, graphs[0].edge_index)  # batch=None: one graph
    assert single.graph.shape == (1, 24)
    assert torch.allclose(single.graph[0], graph[0], atol=1e-4)


def test_permutation_invariance(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    data = mutag_batch
    model = GIN(data.num_features).eval()
    perm = torch.randperm(data.num_nodes)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(data.num_nodes)
    with torch.no_grad():
        out = model(data.x, data.edge_index, data.batch)
        shuffled = model(
            data.x[perm], inverse[data.edge_index], data.batch[perm], num_graphs=data.num_graphs
        )
    assert torch.allclose(out.graph, shuffled.graph, atol=1e-4)
    assert torch.allclose(out.node[perm], shuffled.node, atol=1e-5)


def test_determinism_and_reset(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    data = mutag_batch
    torch.manual_seed(7)
    first = GIN(data.num_features, dropout=0.2)
    torch.manual_seed(7)
    second = GIN(data.num_features, dropout=0.2)
    torch.manual_seed(1)
    a = first(data.x, data.edge_index, data.batch).graph
    torch.manual_seed(1)
    b = second(data.x, data.edge_index, data.batch).graph
    assert torch.equal(a, b)
    before = [p.clone() for p in first.parameters()]
    first.reset_parameters()
    assert any(not torch.equal(p, q) for p, q in zip(before, first.parameters()))


def test_gradients_reach_every_parameter(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    data = mutag_batch
    model = GIN(data.num_features, edge_dim=4, train_eps=True)
    model(data.x, data.edge_index, data.batch, edge_attr=data.edge_attr).graph.sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
def test_ogb_molecules() -> None:
    dataset = load_dataset("ogbg-molbace")
    data = next(iter(DataLoader(dataset[:16], batch_size=16)))
    model = GIN(dataset.num_features, 16, 2, ogb_mol=True)
    assert dataset.num_features == 9 and "ogb_mol=True" in repr(model)
    out = model(data.x, data.edge_index, data.batch, edge_attr=data.edge_attr)
    assert out.graph.shape == (16, 32) and torch.isfinite(out.graph).all()
    out.graph.sum().backward()
    assert model.bond_encoders is not None
    assert all(p.grad is not None for p in model.bond_encoders.parameters() if p.requires_grad)
    # Bond types change the messages, so they change the embedding.
    model.eval()
    other_bonds = (data.edge_attr + 1) % 2  # valid for every bond feature
    with torch.no_grad():
        a = model(data.x, data.edge_index, data.batch, edge_attr=data.edge_attr).graph
        b = model(data.x, data.edge_index, data.batch, edge_attr=other_bonds).graph
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="in_channels=9"):
        GIN(7, ogb_mol=True)


def test_rejects_bad_hyperparameters() -> None:
    with pytest.raises(ValueError, match="readout must be one of"):
        GIN(7, readout="attention")
    with pytest.raises(ValueError, match=r"num_layers must be a positive integer \(got 0\)"):
        GIN(7, num_layers=0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\) \(got 1.5\)"):
        GIN(7, dropout=1.5)
    with pytest.raises(ValueError, match="exclusive"):
        GIN(9, edge_dim=3, ogb_mol=True)
    assert repr(GIN(7)) == (
        "GIN(7, 32, num_layers=3, readout='sum', batch_norm=True, out_channels=96)"
    )


def _message_passing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make GIN sum neighbours with PyG's message passing (its path for other dtypes/devices)."""
    from gcl.nn import gin as gin_module

    monkeypatch.setattr(gin_module, "supports_sparse_aggregation", lambda x: False)


@pytest.mark.parametrize(("name", "layout"), [("MUTAG", "graphcl"), ("IMDB-BINARY", "graphcl"), ("MUTAG", "ogb")])
def test_sparse_aggregation_gives_what_message_passing_gives(
    name: str, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same embeddings and same gradients (learnable eps included, layout="ogb") as PyG's GINConv on
    edge_index, in training mode, on shipped batches: MUTAG (7 features) and IMDB-BINARY with one-hot
    degrees (136 features, where a message per edge would be an [E, 136] tensor)."""
    dataset = load_dataset(name, node_features="degree" if name == "IMDB-BINARY" else "auto")
    batch = next(iter(DataLoader(dataset, batch_size=64)))
    torch.manual_seed(0)
    model = GIN(dataset.num_features, 32, 3, layout=layout)
    with torch.no_grad():  # non-zero eps, so its scaling is exercised
        for conv in model.convs:
            conv.eps.fill_(0.25)

    def run() -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        model.zero_grad()
        x = batch.x.clone().requires_grad_()
        out = model(x, batch.edge_index, batch.batch, num_graphs=batch.num_graphs)
        weights = torch.linspace(-1, 1, out.graph.numel()).view_as(out.graph)
        ((out.graph * weights).sum() + out.node.square().mean()).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        grads["x"] = x.grad.clone()
        return out.graph.detach(), out.node.detach(), grads

    state = {k: v.clone() for k, v in model.state_dict().items()}
    sparse = run()
    model.load_state_dict(state)  # batch norm's running statistics moved
    with monkeypatch.context() as patch:
        _message_passing(patch)
        reference = run()
    torch.testing.assert_close(sparse[0], reference[0], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(sparse[1], reference[1], rtol=1e-5, atol=1e-5)
    assert sparse[2].keys() == reference[2].keys()
    if layout == "ogb":
        assert "convs.0.eps" in sparse[2]
    for key, expected in reference[2].items():  # sums in another order: compare relative to the whole
        error = (sparse[2][key] - expected).norm() / expected.norm().clamp_min(1e-12)
        assert error < 1e-5, (key, float(error))


def test_sparse_aggregation_counts_repeated_edges_and_keeps_the_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    # (1, 0) and (5, 4) are stored twice and (2, 2) is a self loop: message passing sums every copy, so
    # must the sparse path; node 6 is isolated and the edges are neither sorted nor symmetric.
    edge_index = torch.tensor([[3, 0, 1, 1, 2, 2, 0, 4, 5, 5], [0, 1, 0, 0, 1, 2, 3, 5, 4, 4]])
    batch = torch.tensor([0, 0, 0, 1, 1, 1, 2])
    torch.manual_seed(0)
    model = GIN(100, 16, 3).eval()
    x = torch.randn(7, 100)
    sparse = model(x, edge_index, batch, num_graphs=3)
    with monkeypatch.context() as patch:
        _message_passing(patch)
        dense = model(x, edge_index, batch, num_graphs=3)
    torch.testing.assert_close(sparse.node, dense.node, rtol=1e-5, atol=1e-5)
    double = model.double()(x.double(), edge_index, batch, num_graphs=3)
    assert double.node.dtype == torch.float64
    torch.testing.assert_close(double.node.float(), dense.node, rtol=1e-4, atol=1e-4)


def test_other_dtypes_and_given_sparse_adjacencies_use_message_passing(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    from torch_geometric.utils import to_torch_csr_tensor

    from gcl.nn.aggregate import supports_sparse_aggregation

    data = mutag_batch
    torch.manual_seed(0)
    model = GIN(7, 32, 3).eval()
    expected = model(data.x, data.edge_index, data.batch, num_graphs=data.num_graphs).graph
    # A caller's own sparse transposed adjacency is used as given.
    adjacency = to_torch_csr_tensor(data.edge_index.flip(0), size=(data.num_nodes, data.num_nodes))
    given = model(data.x, adjacency, data.batch, num_graphs=data.num_graphs).graph
    torch.testing.assert_close(given, expected, rtol=1e-5, atol=1e-4)
    # bfloat16 goes through PyG's message passing and still encodes.
    assert not supports_sparse_aggregation(data.x.bfloat16())
    low = model.bfloat16()(data.x.bfloat16(), data.edge_index, data.batch, num_graphs=data.num_graphs).graph
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), expected, rtol=0.1, atol=0.5)


# -- the OGB leaderboard layout ----------------------------------------------------------


class LeaderboardReference(torch.nn.Module):
    """The OGB leaderboard GIN (no virtual node) written out from its description with PyG's
    convolutions and ogb's encoders: per layer GIN(E)Conv with MLP Linear(F, 2h)-BN(2h)-ReLU-Linear(2h, h)
    and learnable eps, then BN(h), ReLU except after the last layer, dropout; readout of the last layer."""

    def __init__(self, in_channels: int, hidden: int, num_layers: int, dropout: float, readout: str,
                 edge_dim: int | None = None, ogb_mol: bool = False) -> None:
        from torch import nn
        from torch_geometric.nn import GINConv, GINEConv

        super().__init__()
        self.dropout, self.readout, self.ogb_mol, self.edge_dim = dropout, readout, ogb_mol, edge_dim
        if ogb_mol:
            from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder

            self.atom = AtomEncoder(hidden)
            self.bonds = nn.ModuleList(BondEncoder(hidden) for _ in range(num_layers))
        self.convs = nn.ModuleList()
        for layer in range(num_layers):
            width = hidden if ogb_mol or layer > 0 else in_channels
            mlp = nn.Sequential(nn.Linear(width, 2 * hidden), nn.BatchNorm1d(2 * hidden), nn.ReLU(),
                                nn.Linear(2 * hidden, hidden))
            if ogb_mol:
                self.convs.append(GINEConv(mlp, train_eps=True))
            elif edge_dim is not None:
                self.convs.append(GINEConv(mlp, train_eps=True, edge_dim=edge_dim))
            else:
                self.convs.append(GINConv(mlp, train_eps=True))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(num_layers))

    def forward(self, data: Data) -> tuple[Tensor, Tensor]:
        from torch_geometric.nn import global_add_pool, global_mean_pool

        x = self.atom(data.x) if self.ogb_mol else data.x
        last = len(self.convs) - 1
        for layer, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            if self.ogb_mol:
                x = conv(x, data.edge_index, self.bonds[layer](data.edge_attr))
            elif self.edge_dim is not None:
                x = conv(x, data.edge_index, data.edge_attr)
            else:
                x = conv(x, data.edge_index)
            x = norm(x)
            if layer < last:
                x = torch.relu(x)
            x = torch.nn.functional.dropout(x, self.dropout, self.training)
        pool = global_mean_pool if self.readout == "mean" else global_add_pool
        return pool(x, data.batch, size=data.num_graphs), x


def _reference_of(model: GIN, readout: str) -> LeaderboardReference:
    """A reference with ``model``'s parameters and batch-norm statistics, copied by name."""
    edge_dim = model.edge_dim
    reference = LeaderboardReference(model.in_channels, model.hidden_channels, model.num_layers,
                                     model.dropout, readout, edge_dim=edge_dim, ogb_mol=model.ogb_mol)
    renamed = {
        key.replace("atom_encoder.", "atom.").replace("bond_encoders.", "bonds."): value
        for key, value in model.state_dict().items()
    }
    reference.load_state_dict(renamed)  # strict: the same modules, parameter for parameter
    return reference


def _randomise(model: GIN) -> None:
    """Non-trivial eps, batch-norm affine parameters and running statistics."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for layer, conv in enumerate(model.convs):
            conv.eps.fill_(0.1 * (layer + 1))
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                size = module.num_features
                module.weight.copy_(1 + 0.3 * torch.randn(size, generator=generator))
                module.bias.copy_(0.3 * torch.randn(size, generator=generator))
                module.running_mean.copy_(0.5 * torch.randn(size, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(size, generator=generator))


def _check_against_reference(model: GIN, data: Data, readout: str) -> None:
    _randomise(model)
    reference = _reference_of(model, readout)
    edge_attr = data.edge_attr if model.uses_edge_attr else None
    model.eval(), reference.eval()
    with torch.no_grad():
        out = model(data.x, data.edge_index, data.batch, edge_attr=edge_attr, num_graphs=data.num_graphs)
        graph, node = reference(data)
    assert out.graph.shape == (data.num_graphs, model.hidden_channels) == graph.shape
    assert out.node.shape == (data.num_nodes, model.hidden_channels)
    torch.testing.assert_close(out.node, node, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.graph, graph, rtol=1e-5, atol=1e-5)
    # Training mode too: batch statistics, and dropout drawn in the same order.
    model.train(), reference.train()
    torch.manual_seed(11)
    trained = model(data.x, data.edge_index, data.batch, edge_attr=edge_attr, num_graphs=data.num_graphs)
    torch.manual_seed(11)
    graph, _ = reference(data)
    torch.testing.assert_close(trained.graph, graph, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("readout", "edge_dim"), [("mean", None), ("sum", None), ("mean", 4)],
                         ids=["mean", "sum", "edge-features"])
def test_ogb_layout_matches_the_leaderboard_reference(mutag_batch, readout: str,  # type: ignore[no-untyped-def]
                                                      edge_dim: int | None) -> None:
    kwargs = {} if readout == "mean" else {"readout": readout}  # mean is the layout's default
    model = GIN(mutag_batch.num_features, 16, 3, dropout=0.5, edge_dim=edge_dim, layout="ogb", **kwargs)
    _check_against_reference(model, mutag_batch, readout)


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
def test_ogb_layout_with_ogb_molecules_matches_the_leaderboard_reference() -> None:
    dataset = load_dataset("ogbg-molbace")
    data = next(iter(DataLoader(dataset[:48], batch_size=48)))
    model = GIN(9, 24, 3, dropout=0.5, ogb_mol=True, layout="ogb")
    assert "layout='ogb'" in repr(model) and "out_channels=24" in repr(model)
    _check_against_reference(model, data, "mean")


def test_ogb_layout_defaults_and_shapes() -> None:
    model = GIN(5, 8, 3, layout="ogb")
    assert model.readout == "mean" and model.train_eps and model.out_channels == 8
    assert all(isinstance(conv.eps, torch.nn.Parameter) for conv in model.convs)
    assert [type(m).__name__ for m in model.convs[0].nn] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert model.convs[0].nn[0].weight.shape == (16, 5) and model.convs[1].nn[0].weight.shape == (16, 8)
    overridden = GIN(5, 8, 3, readout="sum", train_eps=False, layout="ogb")
    assert overridden.readout == "sum" and not overridden.train_eps
    assert not any(name.endswith("eps") for name, _ in overridden.named_parameters())
    # Without batch norm there is none anywhere, neither inside the MLPs nor after the convolutions.
    plain = GIN(5, 8, 3, batch_norm=False, layout="ogb")
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in plain.modules())
    graphs = [Data(x=torch.randn(n, 5), edge_index=torch.tensor([[0, 1], [1, 0]])) for n in (2, 4, 3)]
    data = Batch.from_data_list(graphs)
    out = model(data.x, data.edge_index, data.batch)
    assert out.graph.shape == (3, 8) and out.node.shape == (9, 8)
    # The last layer has no ReLU, so node embeddings take negative values.
    assert (out.node < 0).any()
    out.graph.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_default_layout_is_unchanged() -> None:
    model = GIN(7)
    assert model.layout == "graphcl" and model.readout == "sum" and not model.train_eps
    assert "eps" not in dict(model.named_parameters()) and model.out_channels == 96
    assert [type(m).__name__ for m in model.convs[0].nn] == ["Linear", "ReLU", "Linear"]
    assert sorted(model.state_dict()) == sorted(
        [f"convs.{i}.{name}" for i in range(3) for name in ("eps", "nn.0.weight", "nn.0.bias", "nn.2.weight",
                                                            "nn.2.bias")]
        + [f"norms.{i}.{name}" for i in range(3) for name in ("weight", "bias", "running_mean", "running_var",
                                                             "num_batches_tracked")]
    )


def test_rejects_an_unknown_layout() -> None:
    with pytest.raises(ValueError, match=r"layout must be one of \('graphcl', 'ogb'\) \(got 'leaderboard'\)"):
        GIN(7, layout="leaderboard")


@pytest.mark.parametrize("path", ["sparse", "message passing"])
def test_out_of_range_edges_are_refused_on_both_paths(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if path == "message passing":
        _message_passing(monkeypatch)
    for channels in (8, 100):
        encoder = GIN(channels, 32, 3).eval()
        x = torch.randn(3, channels)
        for bad in (3, 1000, -1):
            with pytest.raises(IndexError):
                encoder(x, torch.tensor([[0, 1, bad], [1, 0, 0]]))


def test_hooks_and_explainer_masks_see_the_convolutions(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    """The sparse sum bypasses GINConv.forward: a watched convolution runs by message passing, so
    forward hooks fire and PyG's explainer edge masks apply."""
    data = mutag_batch
    torch.manual_seed(0)
    model = GIN(7, 32, 3).eval()
    plain = model(data.x, data.edge_index, data.batch, num_graphs=data.num_graphs).graph
    calls: list[int] = []
    handle = model.convs[1].register_forward_hook(lambda module, args, out: calls.append(1))
    hooked = model(data.x, data.edge_index, data.batch, num_graphs=data.num_graphs).graph
    handle.remove()
    assert calls == [1]
    torch.testing.assert_close(hooked, plain, rtol=1e-5, atol=1e-4)
    from torch_geometric.explain.algorithm.utils import clear_masks, set_masks

    mask = torch.zeros(data.num_edges)  # every edge masked out: no neighbours
    set_masks(model, mask, data.edge_index, apply_sigmoid=False)
    try:
        masked = model(data.x, data.edge_index, data.batch, num_graphs=data.num_graphs).graph
    finally:
        clear_masks(model)
    no_edges = model(data.x, torch.empty(2, 0, dtype=torch.long), data.batch, num_graphs=data.num_graphs).graph
    torch.testing.assert_close(masked, no_edges, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("edge_dim", [None, 4])
def test_int32_edge_indices_give_the_int64_gradients(edge_dim: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """PyG's GIN(E)Conv back-propagates wrongly through int32 indices; the GIN hands it int64."""
    generator = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, 10, (2, 40), generator=generator)
    edge_attr = torch.randn(40, 4, generator=generator) if edge_dim else None
    torch.manual_seed(0)
    model = GIN(6, 16, 2, edge_dim=edge_dim)
    with monkeypatch.context() as patch:
        _message_passing(patch)
        grads = []
        for index in (edge_index, edge_index.int()):
            x = torch.randn(10, 6, generator=torch.Generator().manual_seed(1), requires_grad=True)
            model(x, index, edge_attr=edge_attr).node.sum().backward()
            grads.append(x.grad)
    torch.testing.assert_close(grads[1], grads[0])


def test_integer_features_are_refused() -> None:
    from gcl.nn import HGPSL

    x, edge_index = torch.randint(0, 5, (4, 9)), torch.tensor([[0, 1, 2], [1, 2, 3]])
    for encoder in (GIN(9, 32, 3), GIN(100, 32, 3), HGPSL(9, 16)):
        features = x if encoder.in_channels == 9 else torch.randint(0, 5, (4, 100))
        with pytest.raises(ValueError, match="node features must be floating point"):
            encoder(features, edge_index)


@pytest.mark.parametrize("channels", [9, 100])  # the wide inputs' CSR path accepted [E, 2] silently
def test_malformed_inputs_are_refused_by_every_encoder(channels: int) -> None:
    from gcl.nn import GCN, HGPSL

    x, edge_index = torch.randn(6, channels), torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    for encoder in (GIN(channels, 32, 3), HGPSL(channels, 16), GCN(channels, 16)):
        run = encoder
        with pytest.raises(ValueError, match=r"edge_index must have shape \[2, num_edges\] \(got \(4, 2\)\) "
                                             r"\(transposed: pass edge_index.t\(\)\)"):
            run(x, edge_index.t().contiguous())
        with pytest.raises(ValueError, match="edge_index must hold integer node indices"):
            run(x, edge_index.float())
        with pytest.raises(ValueError, match=r"node features must be a \[num_nodes, num_features\] matrix"):
            run(x[:, 0], edge_index)
        with pytest.raises(ValueError, match=f"node features have 3 columns; this encoder was built for {channels}"):
            run(x[:, :3], edge_index)
    batch = torch.tensor([0, 0, 0, 1, 1, 2])
    for encoder in (GIN(channels, 32, 3), HGPSL(channels, 16)):
        with pytest.raises(ValueError, match=r"batch holds graph index 2, but num_graphs is 2; pass data\.num_graphs"):
            encoder(x, edge_index, batch, num_graphs=2)
        assert encoder(x, edge_index, batch, num_graphs=4).graph.shape[0] == 4  # a trailing empty graph keeps a row
    with pytest.raises(ValueError, match="node features must be floating point"):
        GCN(channels, 16)(torch.randint(0, 5, (6, channels)), edge_index)


#: GIN options whose training step the recomputing variants must reproduce (data: :func:`_batch_for`).
VARIANTS: list[dict] = [  # type: ignore[type-arg]
    {},
    {"dropout": 0.3},
    {"layout": "ogb", "dropout": 0.5},
    {"edge_dim": 4, "dropout": 0.3},
    {"ogb_mol": True, "dropout": 0.5},
]


def _batch_for(options: dict, mutag_batch: Batch) -> Batch:  # type: ignore[type-arg]
    r"""32 graphs for a GIN built with ``options``: OGB molecules for ``ogb_mol``, MUTAG with
    random 4-d edge features for ``edge_dim``, MUTAG otherwise."""
    if options.get("ogb_mol"):
        return next(iter(DataLoader(load_dataset("ogbg-molbace"), batch_size=32)))
    if "edge_dim" in options:
        data = mutag_batch.clone()
        data.edge_attr = torch.randn(data.num_edges, 4)
        return data
    return mutag_batch


def _step(model: GIN, data: Data, seed: int) -> tuple[Tensor, list[Tensor], list[Tensor], Tensor]:
    r"""One forward and backward pass in training mode: graph embeddings, gradients, buffers after
    the step, and the next number the global generator draws."""
    model.train()
    model.zero_grad()
    torch.manual_seed(seed)
    out = model(data.x, data.edge_index, data.batch, edge_attr=data.get("edge_attr"),
                num_graphs=data.num_graphs)
    (out.graph.square().sum() + out.node.sin().sum()).backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    return out.graph.detach(), grads, [b.clone() for b in model.buffers()], torch.rand(1)


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
@pytest.mark.parametrize("options", [
    *VARIANTS,
    {"ogb_mol": True, "layout": "ogb", "dropout": 0.5, "batch_norm": False},
])
def test_activation_checkpointing_changes_no_number(mutag_batch, options: dict) -> None:  # type: ignore[no-untyped-def]
    data = _batch_for(options, mutag_batch)
    torch.manual_seed(0)
    plain = GIN(data.num_features, 16, 3, **options)
    recomputed = GIN(data.num_features, 16, 3, activation_checkpointing=True, **options)
    recomputed.load_state_dict(plain.state_dict())
    for seed in (1, 2):  # the second step starts from running statistics the first one updated
        expected, got = _step(plain, data, seed), _step(recomputed, data, seed)
        assert torch.equal(got[0], expected[0])
        assert len(got[1]) == len(expected[1]) > 0
        assert all(torch.equal(a, b) for a, b in zip(got[1], expected[1]))
        # running statistics updated once per forward, not again by the recomputation
        assert all(torch.equal(a, b) for a, b in zip(got[2], expected[2]))
        assert torch.equal(got[3], expected[3])  # the recomputation leaves the generator alone


def _saved_bytes(model: GIN, data: Data) -> int:
    r"""Bytes of the tensors the forward pass hands autograd to keep (storages counted once)."""
    storages: dict[int, int] = {}

    def keep(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        out = model(data.x, data.edge_index, data.batch, num_graphs=data.num_graphs)
    out.graph.sum().backward()
    return sum(storages.values())


def test_activation_checkpointing_keeps_less_for_the_backward(proteins) -> None:  # type: ignore[no-untyped-def]
    data = next(iter(DataLoader(proteins, batch_size=128)))
    torch.manual_seed(0)
    plain = GIN(proteins.num_features, 32, 3)
    recomputed = GIN(proteins.num_features, 32, 3, activation_checkpointing=True)
    width = data.num_nodes * 32 * 4  # bytes of one layer's node states
    # without: every layer's MLP input, hidden and output activations and batch-norm input
    assert _saved_bytes(plain, data) > 6 * width
    # with: the layers' inputs only (the features, the states of the first two layers, the edges)
    edges = data.edge_index.numel() * data.edge_index.element_size()
    assert _saved_bytes(recomputed, data) < 2.5 * width + edges


def test_activation_checkpointing_only_when_recording_gradients(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    data = mutag_batch
    torch.manual_seed(0)
    model = GIN(data.num_features, 16, 3, activation_checkpointing=True, dropout=0.5)
    assert "activation_checkpointing=True" in repr(model)
    calls = []
    model.convs[0].register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():  # nothing to recompute: each layer runs once
        model(data.x, data.edge_index, data.batch, num_graphs=data.num_graphs)
    assert len(calls) == 1
    model.eval()  # gradients in evaluation mode (e.g. attributions): recomputed, running statistics used
    out = model(data.x, data.edge_index, data.batch, num_graphs=data.num_graphs)
    out.graph.sum().backward()
    assert len(calls) == 3
    plain = GIN(data.num_features, 16, 3, dropout=0.5).eval()
    plain.load_state_dict(model.state_dict())
    assert torch.equal(plain(data.x, data.edge_index, data.batch, num_graphs=data.num_graphs).graph,
                       out.graph.detach())


@pytest.mark.parametrize("options", [{"dropout": 0.5}, {"dropout": 0.0}, {"layout": "ogb", "dropout": 0.5}])
def test_activation_checkpointing_recomputes_in_the_forward_passes_mode(mutag_batch, options: dict) -> None:  # type: ignore[no-untyped-def]
    # e.g. a validation callback switching to evaluation mode between the loss and its backward pass
    data = mutag_batch
    torch.manual_seed(0)
    plain = GIN(data.num_features, 16, 3, **options)
    recomputed = GIN(data.num_features, 16, 3, activation_checkpointing=True, **options)
    recomputed.load_state_dict(plain.state_dict())
    grads = []
    for model in (plain, recomputed):
        model.train()
        torch.manual_seed(1)
        out = model(data.x, data.edge_index, data.batch, num_graphs=data.num_graphs)
        model.eval()
        out.graph.square().sum().backward()
        assert not model.training and not any(m.training for m in model.modules())  # left as the caller set it
        grads.append([p.grad for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads))
    assert all(torch.equal(a, b) for a, b in zip(plain.buffers(), recomputed.buffers()))


def test_activation_checkpointing_refuses_edges_changed_before_the_backward_pass(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    data = mutag_batch.clone()
    data.edge_attr = torch.randn(data.num_edges, 4)  # GINE: message passing reads edge_index again
    model = GIN(data.num_features, 16, 2, edge_dim=4, activation_checkpointing=True)
    edge_index = data.edge_index.clone()
    out = model(data.x, edge_index, data.batch, edge_attr=data.edge_attr, num_graphs=data.num_graphs)
    edge_index[0] = edge_index[0].flip(0)  # in place, as the plain GIN's autograd would refuse too
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.graph.sum().backward()


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
def test_edge_features_of_the_wrong_shape_are_refused(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    data = mutag_batch
    model = GIN(data.num_features, 16, 2, edge_dim=2)
    for bad in (torch.randn(1, 2), torch.randn(2), torch.randn(data.num_edges, 3)):
        with pytest.raises(ValueError, match="edge features"):
            model(data.x, data.edge_index, data.batch, edge_attr=bad)
    molecules = next(iter(DataLoader(load_dataset("ogbg-molbace")[:4], batch_size=4)))
    ogb = GIN(9, 16, 2, ogb_mol=True)
    with pytest.raises(ValueError, match="node features have 2 columns"):  # missing atom features
        ogb(molecules.x[:, :2], molecules.edge_index, molecules.batch, edge_attr=molecules.edge_attr)
    for bad in (molecules.edge_attr[:, :1], molecules.edge_attr[:1]):  # missing bond features, one row
        with pytest.raises(ValueError, match="edge features"):
            ogb(molecules.x, molecules.edge_index, molecules.batch, edge_attr=bad)
    ogb(molecules.x, molecules.edge_index, molecules.batch, edge_attr=molecules.edge_attr)


def test_activation_checkpointing_takes_true_or_false_only() -> None:
    # a config file's `activation_checkpointing: "false"` would otherwise switch it on
    for value in ("false", 1, None):
        with pytest.raises(ValueError, match=r"activation_checkpointing must be True or False"):
            GIN(7, activation_checkpointing=value)  # type: ignore[arg-type]


# -- micro-batches ----------------------------------------------------------------------------


def _micro_batch_reference(model: GIN, data: Data, size: int, seed: int) -> tuple[Tensor, Tensor, list[Tensor],
                                                                                   list[Tensor], Tensor]:
    r"""``model`` on PyG's own collation of each micro-batch, one after the other, then one backward
    pass through the embeddings put back in the batch's order: graph and node embeddings, gradients,
    buffers and the generator's next number. With batch norm the micro-batches are random groups
    (the permutation the GIN draws first), otherwise runs of ``size`` consecutive graphs."""
    graphs = data.to_data_list()
    model.train()
    model.zero_grad()
    torch.manual_seed(seed)
    shuffled = any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())
    order = torch.randperm(len(graphs)) if shuffled else torch.arange(len(graphs))
    outs = []
    for start in range(0, len(graphs), size):
        part = Batch.from_data_list([graphs[int(i)] for i in order[start:start + size]])
        outs.append(model(part.x, part.edge_index, part.batch, edge_attr=part.get("edge_attr"),
                          num_graphs=part.num_graphs))
    graph = torch.cat([o.graph for o in outs])[torch.argsort(order)]
    node_rows = torch.cat([torch.arange(int(data.ptr[i]), int(data.ptr[i + 1])) for i in order])
    node = torch.cat([o.node for o in outs])[torch.argsort(node_rows)]
    (graph.square().sum() + node.sin().sum()).backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    return graph.detach(), node.detach(), grads, [b.clone() for b in model.buffers()], torch.rand(1)


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
@pytest.mark.parametrize("options", [
    *VARIANTS,
    {"activation_checkpointing": True, "dropout": 0.3},  # layers recomputed inside a recomputed micro-batch
])
def test_micro_batches_give_what_encoding_them_one_by_one_gives(mutag_batch, options: dict) -> None:  # type: ignore[no-untyped-def]
    # 32 graphs in micro-batches of 10: 10, 10, 10, 2, random groups of graphs (batch norm in training).
    # Ghost batch norm: each micro-batch's own statistics, running statistics updated once per
    # micro-batch; the same dropout masks.
    data = _batch_for(options, mutag_batch)
    torch.manual_seed(0)
    plain = GIN(data.num_features, 16, 3, **options)
    micro = GIN(data.num_features, 16, 3, micro_batch_size=10, **options)
    assert "micro_batch_size=10" in repr(micro)
    micro.load_state_dict(plain.state_dict())
    for seed in (1, 2):  # the second step starts from running statistics the first one updated
        expected = _micro_batch_reference(plain, data, 10, seed)
        micro.train()
        micro.zero_grad()
        torch.manual_seed(seed)
        out = micro(data.x, data.edge_index, data.batch, edge_attr=data.get("edge_attr"), num_graphs=data.num_graphs)
        assert out.graph.shape == (32, micro.out_channels) and out.node.shape == (data.num_nodes, micro.out_channels)
        (out.graph.square().sum() + out.node.sin().sum()).backward()
        assert torch.equal(out.graph, expected[0]) and torch.equal(out.node, expected[1])
        grads = [p.grad for p in micro.parameters() if p.grad is not None]
        assert len(grads) == len(expected[2]) > 0
        for got, want in zip(grads, expected[2]):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        assert all(torch.equal(a, b) for a, b in zip(micro.buffers(), expected[3]))  # updated once per micro-batch
        assert torch.equal(torch.rand(1), expected[4])  # the recomputation leaves the generator alone


def test_micro_batches_without_batch_norm_encode_the_whole_batch(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    # nothing couples the graphs then: the same embeddings and gradients as one pass over the batch
    data = mutag_batch
    torch.manual_seed(0)
    whole = GIN(data.num_features, 16, 3, batch_norm=False)
    micro = GIN(data.num_features, 16, 3, batch_norm=False, micro_batch_size=7)
    micro.load_state_dict(whole.state_dict())
    results = []
    for model in (whole, micro):
        x = data.x.clone().requires_grad_()
        out = model(x, data.edge_index, data.batch, num_graphs=data.num_graphs)
        (out.graph.square().sum() + out.node.sin().sum()).backward()
        results.append((out.graph.detach(), out.node.detach(), x.grad, [p.grad for p in model.parameters()]))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(results[1][2], results[0][2], rtol=1e-5, atol=1e-5)  # input gradients too
    for got, want in zip(results[1][3], results[0][3]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # batch norm in evaluation mode uses the running statistics: the whole batch's result as well
    normed = GIN(data.num_features, 16, 3).eval()
    micro_normed = GIN(data.num_features, 16, 3, micro_batch_size=7).eval()
    micro_normed.load_state_dict(normed.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(micro_normed(data.x, data.edge_index, data.batch, num_graphs=32).graph,
                                   normed(data.x, data.edge_index, data.batch, num_graphs=32).graph,
                                   rtol=1e-5, atol=1e-5)


def test_micro_batches_keep_only_inputs_for_the_backward(proteins) -> None:  # type: ignore[no-untyped-def]
    data = next(iter(DataLoader(proteins, batch_size=128)))
    torch.manual_seed(0)
    micro = GIN(proteins.num_features, 32, 3, micro_batch_size=16)
    # the features (gathered inside the recomputation), each micro-batch's node and edge positions,
    # shifted edges and batch vector, and the graphs' order
    inputs = sum(t.numel() * t.element_size() for t in (data.x, data.edge_index, data.batch, data.batch))
    assert _saved_bytes(micro, data) <= inputs + data.num_edges * 8 + data.num_graphs * 8
    plain = GIN(proteins.num_features, 32, 3)
    assert _saved_bytes(plain, data) > 6 * data.num_nodes * 32 * 4  # every layer's activations


def test_micro_batches_of_unsorted_edges_and_of_graphs_without_nodes() -> None:
    torch.manual_seed(0)
    # graphs 0-1 have nodes, graphs 2-3 none (a whole micro-batch of 2), graph 4 has nodes, 5-6 trail empty
    sizes = {0: 3, 1: 2, 4: 4}
    batch = torch.cat([torch.full((n,), g) for g, n in sizes.items()])
    ptr = {0: 0, 1: 3, 4: 5}
    pairs = [(0, 1), (1, 2), (0, 2), (3, 4), (5, 6), (6, 7), (7, 8), (5, 8)]
    edge_index = torch.tensor(pairs + [(d, s) for s, d in pairs]).t()
    assert all(int(batch[ptr[g]]) == g for g in sizes)
    x = torch.randn(9, 5)
    whole = GIN(5, 8, 2, batch_norm=False).eval()
    micro = GIN(5, 8, 2, batch_norm=False, micro_batch_size=2).eval()
    micro.load_state_dict(whole.state_dict())
    expected = whole(x, edge_index, batch, num_graphs=7)
    shuffled = edge_index[:, torch.randperm(edge_index.size(1))]
    for edges in (edge_index, shuffled):
        got = micro(x, edges, batch, num_graphs=7)
        torch.testing.assert_close(got.graph, expected.graph, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got.node, expected.node, rtol=1e-5, atol=1e-6)
    assert torch.equal(got.graph[[2, 3, 5, 6]], torch.zeros(4, micro.out_channels))
    # the edge features follow their edges through the reordering
    edge_model = GIN(5, 8, 2, batch_norm=False, edge_dim=3).eval()
    edge_micro = GIN(5, 8, 2, batch_norm=False, edge_dim=3, micro_batch_size=2).eval()
    edge_micro.load_state_dict(edge_model.state_dict())
    attr = torch.randn(edge_index.size(1), 3)
    order = torch.randperm(edge_index.size(1))
    torch.testing.assert_close(edge_micro(x, edge_index[:, order], batch, edge_attr=attr[order], num_graphs=7).graph,
                               edge_model(x, edge_index, batch, edge_attr=attr, num_graphs=7).graph,
                               rtol=1e-5, atol=1e-6)


def test_a_batch_within_one_micro_batch_is_encoded_in_one_pass(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    data = mutag_batch
    torch.manual_seed(0)
    plain = GIN(data.num_features, 16, 3, dropout=0.3)
    micro = GIN(data.num_features, 16, 3, dropout=0.3, micro_batch_size=32)
    micro.load_state_dict(plain.state_dict())
    calls: list[int] = []
    for model in (plain, micro):  # (a hook makes both sum neighbours by message passing)
        model.convs[0].register_forward_hook(lambda *_: calls.append(1))
    expected, got = _step(plain, data, 1), _step(micro, data, 1)
    calls.pop()
    assert len(calls) == 1  # not recomputed
    assert torch.equal(got[0], expected[0]) and all(torch.equal(a, b) for a, b in zip(got[1], expected[1]))


def test_micro_batches_refuse_what_they_cannot_split(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    from torch_geometric.utils import to_torch_csr_tensor

    data = mutag_batch
    model = GIN(data.num_features, 16, 2, micro_batch_size=4)
    with pytest.raises(ValueError, match="nodes grouped by graph in order"):
        model(data.x, data.edge_index, data.batch.flip(0), num_graphs=32)
    joined = data.edge_index.clone()
    joined[1, 0] = data.num_nodes - 1  # an edge from the first graph to the last
    with pytest.raises(ValueError, match="an edge joins two graphs"):
        model(data.x, joined, data.batch, num_graphs=32)
    adjacency = to_torch_csr_tensor(data.edge_index.flip(0), size=(data.num_nodes, data.num_nodes))
    with pytest.raises(ValueError, match=r"micro-batches need edge_index as \[2, E\] index pairs"):
        model(data.x, adjacency, data.batch, num_graphs=32)
    for value in (0, -1, True, "16", 2.5):
        with pytest.raises(ValueError, match="micro_batch_size must be a positive integer"):
            GIN(7, micro_batch_size=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("readout", "layout", "micro"), [("sum", "graphcl", None), ("mean", "graphcl", None),
                                                           ("max", "graphcl", 10), ("mean", "ogb", 10)])
def test_graph_embeddings_alone(mutag_batch, readout: str, layout: str, micro: int | None) -> None:  # type: ignore[no-untyped-def]
    # node_embeddings=False: the same graph embeddings (each layer pooled on its own) and gradients,
    # no node-sized output
    data = mutag_batch
    torch.manual_seed(0)
    model = GIN(data.num_features, 16, 3, readout=readout, layout=layout, micro_batch_size=micro)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    results = []
    for nodes in (True, False):
        model.load_state_dict(state)
        model.zero_grad()
        torch.manual_seed(1)  # the same random micro-batches
        out = model(data.x, data.edge_index, data.batch, num_graphs=data.num_graphs, node_embeddings=nodes)
        out.graph.square().sum().backward()
        results.append((out, [p.grad.clone() for p in model.parameters()]))
    (full, full_grads), (alone, alone_grads) = results
    assert torch.equal(alone.graph, full.graph)
    assert full.node.shape == (data.num_nodes, model.out_channels) and alone.node.shape == (data.num_nodes, 0)
    for got, want in zip(alone_grads, full_grads):
        assert float((got - want).norm()) <= 1e-5 * float(want.norm()) + 1e-6
    with pytest.raises(ValueError, match="node_embeddings must be True or False"):
        model(data.x, data.edge_index, data.batch, node_embeddings="false")  # type: ignore[arg-type]


def test_micro_batches_refuse_graph_indices_beyond_num_graphs(mutag_batch, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # on a GPU resolve_batch does not read the batch vector (no synchronisation); the micro-batches'
    # bounds, read on the host anyway, must then catch nodes of graphs beyond num_graphs, which would
    # otherwise fall outside every micro-batch and leave their node embeddings unwritten
    from gcl.nn import gin as gin_module

    data = mutag_batch
    monkeypatch.setattr(gin_module, "resolve_batch", lambda x, batch, num_graphs: (batch, num_graphs))
    model = GIN(data.num_features, 16, 2, micro_batch_size=4)
    with pytest.raises(ValueError, match=r"batch holds graph indices outside \[0, 30\)"):
        model(data.x, data.edge_index, data.batch, num_graphs=30)


def test_micro_batches_refuse_a_single_node_under_batch_norm_and_sync_batch_norm() -> None:
    # only a batch of a single node in all (a one-node graph and an emptied one): batch norm refuses it too
    graphs = [Data(x=torch.randn(1, 5), edge_index=torch.empty(2, 0, dtype=torch.long)),
              Data(x=torch.empty(0, 5), edge_index=torch.empty(2, 0, dtype=torch.long))]
    lone = Batch.from_data_list(graphs)
    model = GIN(5, 8, 2, micro_batch_size=1)
    with pytest.raises(ValueError, match="the batch has a single node"):
        model(lone.x, lone.edge_index, lone.batch, num_graphs=2)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        GIN(5, 8, 2)(lone.x, lone.edge_index, lone.batch, num_graphs=2)
    model.eval()  # running statistics: one node is fine
    assert model(lone.x, lone.edge_index, lone.batch, num_graphs=2).graph.shape == (2, 16)
    plain = GIN(5, 8, 2, micro_batch_size=1, batch_norm=False).train()  # nothing to normalise
    assert plain(lone.x, lone.edge_index, lone.batch, num_graphs=2).graph.shape == (2, 16)
    graphs = [Data(x=torch.randn(n, 5), edge_index=torch.tensor([[0, n - 1], [n - 1, 0]])) for n in (1, 1, 6, 6)]
    data = Batch.from_data_list(graphs)
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(GIN(5, 8, 2, micro_batch_size=2))
    with pytest.raises(ValueError, match="cannot be combined with SyncBatchNorm in training"):
        synced(data.x, data.edge_index, data.batch, num_graphs=4)


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
def test_a_one_node_graph_drawn_alone_joins_another_micro_batch() -> None:
    # four 3-node graphs and a one-atom molecule in micro-batches of 2: the random groups leave the
    # molecule alone whenever it is drawn last, which batch norm in training cannot normalise; it
    # then joins the micro-batch before it, whatever the seed
    graphs = [Data(x=torch.randn(3, 4), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])) for _ in range(4)]
    graphs.append(Data(x=torch.randn(1, 4), edge_index=torch.empty(2, 0, dtype=torch.long)))
    data = Batch.from_data_list(graphs)
    torch.manual_seed(0)
    micro = GIN(4, 8, 2, micro_batch_size=2)
    reference = GIN(4, 8, 2)
    reference.load_state_dict(micro.state_dict())
    joined = 0
    for seed in range(100):
        torch.manual_seed(seed)
        order = torch.randperm(5).tolist()
        groups = [order[:2], order[2:4], order[4:]]
        if order[4] == 4:  # drawn alone
            groups = [order[:2], order[2:]]
            joined += 1
        tracked = int(micro.norms[0].num_batches_tracked)
        torch.manual_seed(seed)
        out = micro(data.x, data.edge_index, data.batch, num_graphs=5)
        # the running statistics are updated once per micro-batch
        assert int(micro.norms[0].num_batches_tracked) == tracked + len(groups)
        if seed % 10 == 0:  # and the result is that of encoding those micro-batches one by one
            expected = torch.empty_like(out.graph)
            for group in groups:
                part = Batch.from_data_list([graphs[g] for g in group])
                expected[group] = reference(part.x, part.edge_index, part.batch, num_graphs=len(group)).graph
            assert torch.equal(out.graph, expected)
        reference.load_state_dict(micro.state_dict())
    assert joined > 0


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
def test_joined_micro_batches_give_what_encoding_them_one_by_one_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    # one graph per micro-batch: three one-node graphs, two of them paired and one joining a larger
    # graph, wherever the random order puts them, and an emptied graph
    from gcl.nn import gin as gin_module

    def path(n: int) -> Data:
        first = torch.arange(max(n - 1, 0))
        return Data(x=torch.randn(n, 4), edge_index=torch.stack([torch.cat([first, first + 1]),
                                                                 torch.cat([first + 1, first])]))

    graphs = [path(n) for n in (3, 1, 3, 1, 1, 3, 0)]
    data = Batch.from_data_list(graphs)
    seen: list[list[np.ndarray]] = []
    join = gin_module._join_single_nodes
    monkeypatch.setattr(gin_module, "_join_single_nodes", lambda *args: seen.append(join(*args)) or seen[-1])
    torch.manual_seed(0)
    micro = GIN(4, 8, 2, micro_batch_size=1)
    reference = GIN(4, 8, 2)
    for seed in range(10):
        reference.load_state_dict(micro.state_dict())
        torch.manual_seed(seed)
        out = micro(data.x, data.edge_index, data.batch, num_graphs=7)
        groups = [g.tolist() for g in seen[-1]]
        assert sorted(np.concatenate(seen[-1]).tolist()) == list(range(7)) and len(groups) < 7
        expected_graph, expected_node = torch.empty_like(out.graph), torch.empty_like(out.node)
        for group in groups:
            if all(graphs[g].num_nodes == 0 for g in group):  # nothing to encode: zero rows
                expected_graph[group] = 0
                continue
            part = Batch.from_data_list([graphs[g] for g in group])
            got = reference(part.x, part.edge_index, part.batch, num_graphs=len(group))
            expected_graph[group] = got.graph
            rows = torch.cat([torch.arange(int(data.ptr[g]), int(data.ptr[g + 1])) for g in group])
            expected_node[rows] = got.node
        assert torch.equal(out.graph, expected_graph) and torch.equal(out.node, expected_node)
        assert all(torch.equal(a, b) for a, b in zip(micro.buffers(), reference.buffers()))


def test_single_node_groups_are_joined_to_others() -> None:
    from gcl.nn import gin as gin_module

    rng = np.random.default_rng(0)
    for _ in range(500):
        num_graphs = int(rng.integers(1, 12))
        sizes = rng.choice([0, 1, 1, 2, 5], num_graphs)
        graphs = [None, 1, 2, 3][int(rng.integers(4))]
        nodes = [None, 1, 2, 4][int(rng.integers(4))]
        order = rng.permutation(num_graphs)
        before = gin_module._micro_batch_groups(order, sizes, graphs, nodes)
        after = gin_module._join_single_nodes(before, sizes)
        assert sorted(np.concatenate(after).tolist()) == list(range(num_graphs))
        totals = [int(sizes[g].sum()) for g in after]
        if sizes.sum() < 2:
            assert after is before
            continue
        assert 1 not in totals
        # a group keeps its graphs and takes at most one graph and one node beyond the limits
        # (two where no group held more than one node)
        extra = 2 if max(int(sizes[g].sum()) for g in before) <= 1 else 1
        for group, total in zip(after, totals):
            if graphs is not None:
                assert len(group) <= graphs + extra
            if nodes is not None and total > nodes:
                assert total <= max(nodes, int(sizes[group].max())) + extra
        kept = {tuple(g[sizes[g] > 0]) for g in before if sizes[g].sum() > 1}
        assert all(any(set(k) <= set(g.tolist()) for g in after) for k in kept)


def _as_pickled_before_the_options(model: torch.nn.Module) -> torch.nn.Module:
    # what such a pickle lacks: the layouts, the edge-feature check and the memory options
    for name in ("layout", "_edge_width", "activation_checkpointing", "micro_batch_size", "micro_batch_nodes"):
        model.__dict__.pop(name, None)
    return pickle.loads(pickle.dumps(model))


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
@pytest.mark.parametrize("options", [{}, {"edge_dim": 3}, {"ogb_mol": True}])
def test_a_gin_pickled_before_its_newer_options_still_runs(mutag_batch, options: dict) -> None:  # type: ignore[no-untyped-def]
    if options.get("ogb_mol"):
        data = next(iter(DataLoader(load_dataset("ogbg-molbace")[:8], batch_size=8)))
    else:
        data = mutag_batch.clone()
        data.edge_attr = torch.randn(data.num_edges, 3)  # (MUTAG's own bond types have 4 columns)
    model = GIN(data.num_features, 16, 2, **options).eval()
    expected = model(data.x, data.edge_index, data.batch, edge_attr=data.edge_attr, num_graphs=data.num_graphs)
    old = _as_pickled_before_the_options(model)
    got = old(data.x, data.edge_index, data.batch, edge_attr=data.edge_attr, num_graphs=data.num_graphs)
    assert torch.equal(got.graph, expected.graph) and torch.equal(got.node, expected.node)
    if options:  # edge features of the wrong width are still refused
        with pytest.raises(ValueError, match="edge features must be a"):
            old(data.x, data.edge_index, data.batch, edge_attr=data.edge_attr[:, :1], num_graphs=data.num_graphs)


def test_micro_batches_within_a_node_budget(proteins) -> None:  # type: ignore[no-untyped-def]
    from gcl.nn import gin as gin_module

    data = next(iter(DataLoader(proteins, batch_size=64)))
    sizes = (data.ptr[1:] - data.ptr[:-1]).numpy()
    budget = 300
    assert sizes.max() > budget  # one graph alone exceeds it
    torch.manual_seed(0)
    whole = GIN(proteins.num_features, 16, 2, batch_norm=False)
    micro = GIN(proteins.num_features, 16, 2, batch_norm=False, micro_batch_nodes=budget)
    assert "micro_batch_nodes=300" in repr(micro)
    micro.load_state_dict(whole.state_dict())
    seen: list[int] = []
    encode = micro._encode
    micro._encode = lambda x, *args: seen.append(x.size(0)) or encode(x, *args)  # type: ignore[method-assign]
    out = micro(data.x, data.edge_index, data.batch, num_graphs=data.num_graphs)
    # every micro-batch within the budget unless it is one graph larger than the budget, and a
    # micro-batch is closed only when the next graph would not fit
    groups = gin_module._micro_batch_groups(np.arange(64), sizes, None, budget)
    assert seen == [int(sizes[g].sum()) for g in groups] and sum(seen) == data.num_nodes
    for group, following in itertools.pairwise(groups):
        assert sizes[group].sum() <= budget or len(group) == 1
        assert sizes[group].sum() + sizes[following[0]] > budget
    torch.testing.assert_close(out.graph, whole(data.x, data.edge_index, data.batch, num_graphs=64).graph,
                               rtol=1e-5, atol=1e-5)
    # both limits: at most 5 graphs and 300 nodes
    groups = gin_module._micro_batch_groups(np.arange(64), sizes, 5, budget)
    assert all(len(g) <= 5 and (sizes[g].sum() <= budget or len(g) == 1) for g in groups)
    assert np.array_equal(np.concatenate(groups), np.arange(64))
    with pytest.raises(ValueError, match="micro_batch_nodes must be a positive integer"):
        GIN(7, micro_batch_nodes=0)
