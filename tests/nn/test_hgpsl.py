"""HGP-SL encoder: shapes on real data, a dense reference, tiny graphs, invariances."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from gcl.nn import HGPSL, Classifier, EncoderOutput

MODES = list(itertools.product([True, False], [True, False], [True, False]))


@pytest.fixture(scope="module")
def proteins_batch(proteins):  # type: ignore[no-untyped-def]
    return next(iter(DataLoader(proteins[:48], batch_size=48)))


@pytest.fixture(scope="module")
def mutag_batch(mutag):  # type: ignore[no-untyped-def]
    return next(iter(DataLoader(mutag[:40], batch_size=40)))


@pytest.mark.parametrize(("sample", "sparse", "learn"), MODES)
def test_shapes_on_proteins(proteins_batch, sample: bool, sparse: bool, learn: bool) -> None:  # type: ignore[no-untyped-def]
    data = proteins_batch
    model = HGPSL(
        data.num_features,
        32,
        sample_neighbor=sample,
        sparse_attention=sparse,
        structure_learning=learn,
    )
    out = model(data.x, data.edge_index, data.batch, num_graphs=data.num_graphs)
    assert isinstance(out, EncoderOutput)
    assert out.graph.shape == (data.num_graphs, 64) and model.out_channels == 64
    assert out.node.shape == (data.num_nodes, 32)
    assert torch.isfinite(out.graph).all() and (out.graph >= 0).all()
    # The paper's supervised head on top.
    logits = Classifier(64, [32, 16], 2, dropout=0.5)(out.graph)
    logits.logsumexp(-1).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
    # Without structure learning the pools have no attention parameters at all.
    assert all(pool.att is None for pool in model.pools) != learn
    assert any(name.endswith(".att") for name in model.state_dict()) == learn


def dense_reference(model: HGPSL, data: Data) -> Tensor:
    """ratio=1 without structure learning: plain GCN levels on each graph, dense."""
    out = []
    for graph in range(data.num_graphs):
        nodes = (data.batch == graph).nonzero().view(-1)
        n = nodes.numel()
        offset = int(nodes[0])
        adj = torch.zeros(n, n, dtype=data.x.dtype)
        mask = data.batch[data.edge_index[0]] == graph
        for s, d in (data.edge_index[:, mask] - offset).t().tolist():
            adj[s, d] += 1.0
        first = model.convs[0]
        loops = adj + torch.eye(n, dtype=adj.dtype)
        isqrt = loops.sum(0).rsqrt()
        prop = isqrt[:, None] * loops.t() * isqrt[None, :]
        h = (prop @ data.x[nodes] @ first.lin.weight.t() + first.bias).relu()
        deg = adj.sum(1)
        isqrt = torch.where(deg > 0, deg.rsqrt(), torch.zeros_like(deg))
        prop = isqrt[:, None] * adj.t() * isqrt[None, :]
        total = torch.zeros(2 * model.hidden_channels, dtype=adj.dtype)
        for conv in model.convs[1:]:
            total += torch.cat([h.max(0).values, h.mean(0)]).relu()
            h = (prop @ h @ conv.lin.weight.t() + conv.bias).relu()
        total += torch.cat([h.max(0).values, h.mean(0)]).relu()
        out.append(total)
    return torch.stack(out)


def test_matches_dense_reference_without_pooling(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    data = mutag_batch
    model = HGPSL(data.num_features, 16, pooling_ratio=1.0, structure_learning=False).double()
    x = data.x.double()
    for conv in model.convs:  # non-zero biases make the bias path visible
        torch.nn.init.normal_(conv.bias)
    with torch.no_grad():
        out = model(x, data.edge_index, data.batch)
        expected = dense_reference(
            model,
            Data(x=x, edge_index=data.edge_index, batch=data.batch, num_graphs=data.num_graphs),
        )
    assert torch.allclose(out.graph, expected, atol=1e-10)


def tiny_batch() -> Batch:
    empty = torch.empty(2, 0, dtype=torch.long)
    return Batch.from_data_list(
        [
            Data(x=torch.randn(1, 3), edge_index=empty),
            Data(x=torch.randn(5, 3), edge_index=empty),
            Data(x=torch.randn(2, 3), edge_index=torch.tensor([[0, 1], [1, 0]])),
            Data(x=torch.randn(3, 3), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])),
        ]
    )


@pytest.mark.parametrize(("sample", "sparse", "learn"), MODES)
def test_one_node_edgeless_and_empty_graphs(sample: bool, sparse: bool, learn: bool) -> None:
    data = tiny_batch()
    model = HGPSL(
        3,
        8,
        num_layers=4,
        sample_neighbor=sample,
        sparse_attention=sparse,
        structure_learning=learn,
    )
    # A fifth, trailing graph with no nodes at all still gets a (zero) row.
    out = model(data.x, data.edge_index, data.batch, num_graphs=5)
    assert out.graph.shape == (5, 16) and torch.isfinite(out.graph).all()
    assert (out.graph[4] == 0).all()
    assert (out.graph[:4].abs().sum(1) > 0).all()
    single = model(data.x[:1], torch.empty(2, 0, dtype=torch.long))
    assert torch.allclose(single.graph[0], out.graph[0], atol=1e-5)


# Learned self-loop weights depend on each node's own features, so scores do not tie;
# induced unweighted subgraphs can tie (see HGPSLPool) and are left out here.
@pytest.mark.parametrize(
    ("sample", "sparse"), [(True, True), (True, False), (False, True), (False, False)]
)
def test_permutation_invariance(mutag_batch, sample: bool, sparse: bool) -> None:  # type: ignore[no-untyped-def]
    data = mutag_batch
    model = HGPSL(
        data.num_features,
        16,
        sample_neighbor=sample,
        sparse_attention=sparse,
    )
    model = model.double().eval()
    x = data.x.double() + 0.01 * torch.randn(data.num_nodes, data.num_features, dtype=torch.float64)
    perm = torch.randperm(data.num_nodes)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(data.num_nodes)
    with torch.no_grad():
        out = model(x, data.edge_index, data.batch)
        shuffled = model(
            x[perm], inverse[data.edge_index], data.batch[perm], num_graphs=data.num_graphs
        )
    assert torch.allclose(out.graph, shuffled.graph, atol=1e-8)
    assert torch.allclose(out.node[perm], shuffled.node, atol=1e-8)


@pytest.mark.parametrize(("sample", "sparse", "learn"), MODES)
def test_sparse_sums_give_what_message_passing_gives(proteins_batch, monkeypatch, sample: bool, sparse: bool,  # type: ignore[no-untyped-def]
                                                     learn: bool) -> None:
    """The convolutions and node scores sum over neighbours by sparse products (learnt edge
    weights get their gradient per edge); PyG's message passing gives the same outputs and gradients."""

    import gcl.nn.hgpsl as hgpsl_module
    import gcl.nn.pool as pool_module

    data = proteins_batch
    torch.manual_seed(3)
    model = HGPSL(3, 16, num_layers=3, sample_neighbor=sample, sparse_attention=sparse,
                  structure_learning=learn).double()
    x = data.x.double()

    def run() -> tuple[Tensor, ...]:
        model.zero_grad()
        out = model(x, data.edge_index, data.batch, data.num_graphs)
        (out.graph.pow(2).sum() + out.node.sum()).backward()
        return (out.graph.detach(), out.node.detach(),
                *(p.grad.clone() for p in model.parameters() if p.grad is not None))

    fast = run()
    monkeypatch.setattr(hgpsl_module, "supports_sparse_aggregation", lambda x: False)
    monkeypatch.setattr(pool_module, "supports_sparse_aggregation", lambda x: False)

    slow = run()
    assert len(fast) == len(slow) and len(fast) > 2
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_tied_maxima_share_the_readout_gradient() -> None:
    """Structurally equivalent nodes embed alike, so a graph's maximum is often reached by
    several nodes: they share its gradient (as PyG's scatter maximum does). A segment maximum
    that gave each of them the whole gradient doubled it, and cost the HGP-SL table's PROTEINS
    row three points."""
    model = HGPSL(3, 4, num_layers=1)
    x = torch.tensor([[2.0, 1.0, 0.0, 5.0], [2.0, 3.0, 0.0, 5.0], [1.0, 3.0, 0.0, 4.0], [7.0, 7.0, 7.0, 7.0]],
                     requires_grad=True)
    batch = torch.tensor([0, 0, 0, 1])
    readout = model._readout(x, batch, 2)
    readout[:, :4].sum().backward()  # the maximum's half
    assert x.grad is not None
    # two nodes tie in columns 0, 1 and 3: half each
    assert [row[:2] + row[3:] for row in x.grad[:3].tolist()] == [[0.5, 0.0, 0.5], [0.5, 0.5, 0.5], [0.0, 0.5, 0.0]]
    from torch_geometric.nn import global_max_pool

    reference = x.detach().clone().requires_grad_()
    global_max_pool(reference, batch, 2).sum().backward()
    assert torch.equal(x.grad, reference.grad)


def test_determinism_given_seed(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    data = mutag_batch
    outputs = []
    for _ in range(2):
        torch.manual_seed(11)
        model = HGPSL(data.num_features, 16, dropout=0.3)
        outputs.append(model(data.x, data.edge_index, data.batch).graph)
    assert torch.equal(outputs[0], outputs[1])


def test_single_layer_has_no_pooling(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    data = mutag_batch
    model = HGPSL(data.num_features, 8, num_layers=1)
    assert len(model.pools) == 0
    out = model(data.x, data.edge_index, data.batch)
    node = out.node
    expected = torch.cat(
        [
            torch.stack([node[data.batch == g].max(0).values for g in range(data.num_graphs)]),
            torch.stack([node[data.batch == g].mean(0) for g in range(data.num_graphs)]),
        ],
        dim=1,
    )
    assert torch.allclose(out.graph, expected, atol=1e-6)
    # the caller's batch vector need not be grouped by graph: the nodes in another order
    order = torch.randperm(data.num_nodes, generator=torch.Generator().manual_seed(0))
    position = torch.empty_like(order)
    position[order] = torch.arange(data.num_nodes)
    shuffled = model(data.x[order], position[data.edge_index], data.batch[order], data.num_graphs)
    assert torch.allclose(shuffled.graph, expected, atol=1e-6)


def test_rejects_bad_hyperparameters() -> None:
    with pytest.raises(ValueError, match=r"pooling_ratio must be in \(0, 1\] \(got 0.0\)"):
        HGPSL(3, pooling_ratio=0.0)
    with pytest.raises(ValueError, match="num_layers"):
        HGPSL(3, num_layers=0)
    with pytest.raises(ValueError, match="dropout"):
        HGPSL(3, dropout=-0.1)
    assert repr(HGPSL(3)).startswith("HGPSL(3, 128, num_layers=3, pooling_ratio=0.5")


def test_convolution_weights_at_a_node_of_zero_degree_get_finite_gradients() -> None:
    # node 2's only outgoing edge weighs zero: its inverse degree is zero, and the backward pass must
    # not multiply that edge's gradient by an infinite one (0 * inf = NaN)
    from gcl.nn.hgpsl import _source_degree_norm

    edge_index = torch.tensor([[0, 1, 2], [1, 0, 0]])
    weight = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64, requires_grad=True)
    norm = _source_degree_norm(edge_index, weight, 3, torch.float64)
    assert norm[2] == 0
    (grad,) = torch.autograd.grad((norm * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum(), weight)
    assert torch.isfinite(grad).all()
    without = _source_degree_norm(edge_index[:, :2], weight[:2], 3, torch.float64)
    (expected,) = torch.autograd.grad((without * torch.tensor([1.0, 2.0], dtype=torch.float64)).sum(), weight)
    assert torch.allclose(grad[:2], expected[:2])


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state")
def test_a_sparse_adjacency_is_refused_up_front(mutag_batch) -> None:  # type: ignore[no-untyped-def]
    # the pooling selects and relabels edges: a sparse adjacency would fail deep inside it
    from torch_geometric.utils import to_torch_csr_tensor

    data = mutag_batch
    adjacency = to_torch_csr_tensor(data.edge_index.flip(0), size=(data.num_nodes, data.num_nodes))
    with pytest.raises(ValueError, match=r"HGPSL needs edge_index as \[2, num_edges\] index pairs \(got a "
                                         r"torch.sparse_csr tensor\)"):
        HGPSL(data.num_features, 8)(data.x, adjacency, data.batch, data.num_graphs)

