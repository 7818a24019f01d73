from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from gcl import losses
from gcl.data import CollatedLoader, attach_index, load_dataset
from gcl.methods import (
    GRACE,
    LCGNN,
    GraphBarlowTwins,
    GraphCL,
    GraphLevelBarlowTwins,
    LossParts,
    build_method,
    embed_dataset,
)
from gcl.nn import GIN
from gcl.train import loss_of, seed_everything


def _fixed_loss(method: torch.nn.Module, batches: list[Any], draws: int = 8) -> float:
    """The loss on the given batches averaged over ``draws`` augmentations, their randomness
    fixed: an estimate of the expected loss (one draw of the views is too noisy a yardstick
    for a small graph)."""
    state = torch.get_rng_state()
    torch.manual_seed(1234)
    with torch.no_grad():
        value = sum(float(loss_of(method(batch))) for _ in range(draws) for batch in batches)
    torch.set_rng_state(state)
    return value / (draws * len(batches))


def _steps(method: torch.nn.Module, batches: list[Any], steps: int, lr: float = 0.01) -> list[float]:
    """Train for ``steps`` and return [fixed-seed loss before, per-step losses..., fixed-seed loss after]."""
    optimizer = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=lr)
    method.train()
    values = [_fixed_loss(method, batches)]
    for step in range(steps):
        batch = batches[step % len(batches)]
        optimizer.zero_grad()
        loss = loss_of(method(batch))
        loss.backward()
        optimizer.step()
        if hasattr(method, "after_step"):
            method.after_step()
        values.append(float(loss.detach()))
    values.append(_fixed_loss(method, batches))
    return values


def _first_batches(dataset: Any, size: int = 64, count: int = 2) -> list[Batch]:
    loader = DataLoader(dataset, batch_size=size, shuffle=False)
    return [b for _, b in zip(range(count), loader)]


def _decreases(values: list[float]) -> bool:
    """The fixed-seed loss after training is lower than before."""
    return values[-1] < values[0]


def _mutag_as_one_graph(mutag: Any) -> Data:
    big = Batch.from_data_list(list(mutag[:32]))
    return Data(x=big.x, edge_index=big.edge_index, y=big.y[big.batch])


@pytest.mark.parametrize(
    ("name", "options", "cls"),
    [
        ("graphcl", {}, GraphCL),
        ("graphcl", {"augmentations": ("identity", "random4"), "graphcl_reference": True}, GraphCL),
        ("graphcl", {"pool_per_graph": True}, GraphCL),
        ("lcgnn", {"hidden_channels": 32, "num_layers": 3, "memory_size": 128}, LCGNN),
        ("lcgnn", {"encoder": "hgpsl", "hidden_channels": 32, "num_layers": 3, "memory_size": 128}, LCGNN),
        ("supervised", {"hidden_channels": 32, "num_layers": 3}, torch.nn.Module),
        ("adaptive-bt", {}, GraphLevelBarlowTwins),
    ],
    ids=["graphcl", "graphcl-reference", "graphcl-pool-per-graph", "lcgnn-gin", "lcgnn-hgpsl", "supervised", "adaptive-bt"],
)
def test_graph_methods_loss_decreases_on_mutag(name: str, options: dict[str, Any], cls: type, mutag: Any) -> None:
    seed_everything(0)
    method = build_method(name, mutag, **options)
    assert isinstance(method, cls)
    batches = _first_batches(mutag)
    values = _steps(method, batches, 24)
    assert all(torch.isfinite(torch.tensor(values)))
    assert _decreases(values), values
    features, labels = embed_dataset(method, mutag)
    assert features.shape[0] == 188 and labels.shape == (188,)


def test_embed_dataset_restores_the_mode_when_embedding_fails(mutag: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    method = build_method("graphcl", mutag)
    method.train()

    def broken(batch: Any) -> torch.Tensor:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(method, "embed", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        embed_dataset(method, mutag)
    assert method.training and all(m.training for m in method.modules())


@pytest.mark.parametrize(("name", "cls"), [("gbt", GraphBarlowTwins), ("adaptive-gbt", GraphBarlowTwins),
                                           ("grace", GRACE), ("gca", GRACE)])
def test_node_methods_loss_decreases(name: str, cls: type, mutag: Any) -> None:
    seed_everything(0)
    graph = _mutag_as_one_graph(mutag)
    method = build_method(name, graph, **({"hidden_channels": 64} if "gbt" in name else {}))
    assert isinstance(method, cls)
    values = _steps(method, [graph], 80, lr=0.003)
    assert _decreases(values), values
    features, _ = embed_dataset(method, graph)
    assert features.shape[0] == graph.num_nodes


def test_methods_reuse_the_loss_core(mutag: Any) -> None:
    assert type(build_method("graphcl", mutag).loss) is losses.InfoNCE
    assert type(build_method("lcgnn", mutag).loss) is losses.LabelContrastiveLoss
    assert type(build_method("adaptive-bt", mutag).loss) is losses.BarlowTwinsLoss


def test_lcgnn_reports_loss_parts_and_fills_memory(mutag: Any) -> None:
    method = build_method("lcgnn", mutag, hidden_channels=16, num_layers=2, memory_size=100)
    out = method(_first_batches(mutag, 64, 1)[0])
    assert isinstance(out, LossParts)
    assert set(out.parts) == {"classification", "contrastive"}
    assert torch.allclose(out.loss, out.parts["classification"] + 0.5 * out.parts["contrastive"])
    keys, labels = method.memory.get()
    assert keys.shape == (64, 128) and labels.shape == (64,)


def test_lcgnn_key_encoder_follows_weights_loaded_into_the_encoder(mutag: Any) -> None:
    """Pre-trained weights loaded into the query encoder reach the key encoder (MoCo starts
    the key as a copy); otherwise keys come from the random start for thousands of steps."""
    method = build_method("lcgnn", mutag, hidden_channels=16, num_layers=2, memory_size=100)
    other = build_method("graphcl", mutag, hidden_channels=16, num_layers=2)
    method.encoder.load_state_dict(other.encoder.state_dict())
    assert not all(torch.equal(method.key_encoder.state_dict()[k], v) for k, v in method.encoder.state_dict().items())
    method.sync_key_encoder()
    for key, value in method.encoder.state_dict().items():
        assert torch.equal(method.key_encoder.state_dict()[key], value), key
    assert all(torch.equal(a, b) for a, b in zip(method.key_head.parameters(), method.head.parameters(), strict=True))
    assert not any(p.requires_grad for p in method.key_encoder.parameters())


def test_graph_methods_embed_one_graph_and_node_methods_a_one_graph_dataset(mutag: Any) -> None:
    for name in ("graphcl", "lcgnn", "supervised"):
        method = build_method(name, mutag, hidden_channels=16, num_layers=2)
        features, labels = embed_dataset(method, mutag[0])  # a single Data: one graph
        assert features.shape[0] == 1 and labels.tolist() == [int(mutag[0].y)]
    cora = load_dataset("Cora")
    features, labels = embed_dataset(build_method("grace", cora), cora)  # the dataset, not cora[0]
    assert features.shape[0] == labels.shape[0] == cora[0].num_nodes
    assert (labels == cora[0].y.numpy()).all()


def test_lcgnn_memory_bank_uses_graph_indices(mutag: Any) -> None:
    dataset = attach_index(load_dataset("MUTAG"))
    method = build_method("lcgnn", dataset, hidden_channels=16, num_layers=2, memory="bank")
    batch = next(iter(DataLoader(dataset[10:42], batch_size=32)))
    assert batch.idx.tolist() == list(range(10, 42))
    values = _steps(method, [batch], 3)
    assert all(v > 0 for v in values)
    # batches from elsewhere, without the positions, are refused
    fresh = load_dataset("MUTAG")
    method = build_method("lcgnn", fresh, memory="bank")
    plain = Batch.from_data_list([Data(x=g.x, edge_index=g.edge_index, y=g.y) for g in fresh[:8]])
    with pytest.raises(ValueError, match=r"needs batch\.idx"):
        method(plain)


@pytest.mark.parametrize("memory", ["queue", "bank"])
def test_lcgnn_in_evaluation_mode_reads_its_memory_without_writing(memory: str) -> None:
    dataset = attach_index(load_dataset("MUTAG"))
    size = {"memory_size": 64} if memory == "queue" else {}
    method = build_method("lcgnn", dataset, hidden_channels=16, num_layers=2, memory=memory, **size)
    batches = list(DataLoader(dataset[:96], batch_size=32))
    method(batches[0])  # training: written
    stored = {k: v.clone() for k, v in method.memory.state_dict().items()}
    method.eval()
    with torch.no_grad():
        value = method(batches[1]).loss  # a validation loss over held-out graphs
    assert torch.isfinite(value)
    for key, before in stored.items():
        assert torch.equal(method.memory.state_dict()[key], before), key
    method.train()
    method(batches[2])
    assert any(not torch.equal(method.memory.state_dict()[k], v) for k, v in stored.items())


def test_contrastive_batch_of_one_is_rejected(mutag: Any) -> None:
    method = build_method("graphcl", mutag)
    with pytest.raises(ValueError, match="at least 2 graphs per batch"):
        method(Batch.from_data_list([mutag[0]]))


def test_lcgnn_without_labels_is_rejected(mutag: Any) -> None:
    batch = Batch.from_data_list([Data(x=g.x, edge_index=g.edge_index) for g in mutag[:4]])
    with pytest.raises(ValueError, match="LCGNN is supervised"):
        build_method("lcgnn", mutag)(batch)


def test_featureless_graphs_are_rejected_with_advice(mutag: Any) -> None:
    batch = Batch.from_data_list([Data(edge_index=g.edge_index, num_nodes=g.num_nodes) for g in mutag[:4]])
    with pytest.raises(ValueError, match="node_features="):
        build_method("graphcl", mutag)(batch)


def test_featureless_dataset_trains_with_fallback_features() -> None:
    imdb = load_dataset("IMDB-BINARY", node_features="constant")
    seed_everything(0)
    method = build_method("graphcl", imdb)
    values = _steps(method, _first_batches(imdb, 64, 1), 3)
    assert all(torch.isfinite(torch.tensor(values)))


def test_graphcl_xavier_init_as_the_reference_code(mutag: Any) -> None:
    """init='xavier': every linear layer Xavier-uniform with zero bias; batch norm untouched."""
    seed_everything(0)
    method = build_method("graphcl", mutag, init="xavier")
    linears = [m for m in method.modules() if isinstance(m, nn.Linear) or type(m).__name__ == "Linear"]
    assert len(linears) == 8  # two per GIN layer, two in the head
    for layer in linears:
        fan_out, fan_in = layer.weight.shape
        assert float(layer.weight.detach().abs().max()) <= math.sqrt(6.0 / (fan_in + fan_out))
        assert layer.bias is not None and not layer.bias.any()
    norms = [m for m in method.modules() if isinstance(m, nn.BatchNorm1d)]
    assert norms and all(bool((m.weight == 1).all()) and not m.bias.any() for m in norms)
    seed_everything(0)
    default = build_method("graphcl", mutag)
    assert any(layer.bias is not None and layer.bias.any() for layer in default.modules()
               if isinstance(layer, nn.Linear) or type(layer).__name__ == "Linear")
    with pytest.raises(ValueError, match="init must be 'default' or 'xavier'"):
        build_method("graphcl", mutag, init="kaiming")


def test_graphcl_on_categorical_features_rejects_masking_views() -> None:
    # OGB-style molecules: 9 integer atom features, 3 integer bond features per edge.
    generator = torch.Generator().manual_seed(0)
    graphs = []
    for n in (5, 7, 6, 8):
        ring = torch.arange(n)
        edge_index = torch.cat([torch.stack([ring, (ring + 1) % n]), torch.stack([(ring + 1) % n, ring])], dim=1)
        graphs.append(Data(x=torch.randint(0, 2, (n, 9), generator=generator), edge_index=edge_index,
                           edge_attr=torch.zeros(2 * n, 3, dtype=torch.long), y=torch.tensor([[n % 2]])))
    with pytest.raises(ValueError, match=r"attribute masking.*integers.*'random3'"):
        build_method("graphcl", graphs[0], ogb_mol=True)  # the default views are random4
    seed_everything(0)
    method = build_method("graphcl", graphs[0], ogb_mol=True, augmentations=("identity", "random3"))
    loss = loss_of(method(Batch.from_data_list(graphs * 4)))
    assert torch.isfinite(loss)


def test_edgeless_graphs_train(mutag: Any) -> None:
    graphs = [Data(x=g.x, edge_index=torch.empty(2, 0, dtype=torch.long), y=g.y) for g in mutag[:16]]
    batch = Batch.from_data_list(graphs)
    for name in ("graphcl", "lcgnn", "adaptive-bt"):
        loss = loss_of(build_method(name, mutag)(batch))
        assert torch.isfinite(loss), name


def test_unknown_method_and_option() -> None:
    mutag = load_dataset("MUTAG")
    with pytest.raises(ValueError, match="unknown method 'simclr'"):
        build_method("simclr", mutag)
    with pytest.raises(ValueError, match=r"does not take \['tau'\]"):
        build_method("graphcl", mutag, tau=0.5)
    # an option of the other encoder is named as such
    with pytest.raises(ValueError, match=r"'activation_checkpointing' is an option of encoder='gin', not of "
                                         r"encoder='hgpsl'"):
        build_method("lcgnn", mutag, encoder="hgpsl", activation_checkpointing=True)
    with pytest.raises(ValueError, match=r"'pooling_ratio' is an option of encoder='hgpsl', not of encoder='gin'"):
        build_method("supervised", mutag, pooling_ratio=0.5)


@pytest.mark.parametrize("name", ["grace", "gbt"])
def test_node_views_zero_feature_columns_and_drop_edges(name: str, mutag: Any) -> None:
    graph = _mutag_as_one_graph(mutag)
    view = build_method(name, graph).augment1(graph)
    assert ((view.x == graph.x) | (view.x == 0)).all()  # masked columns are zeroed, never noise
    assert view.edge_index.size(1) < graph.edge_index.size(1)


def test_supervised_ogb_layout_is_the_leaderboard_model(mutag: Any) -> None:
    seed_everything(0)
    method = build_method("supervised", mutag, hidden_channels=32, num_layers=3, dropout=0.5, layout="ogb",
                          readout="mean")
    encoder = method.encoder
    assert encoder.layout == "ogb" and encoder.readout == "mean" and encoder.train_eps
    assert encoder.dropout == 0.5  # the leaderboard drops out after every GIN layer ...
    assert isinstance(method.classifier.mlp, torch.nn.Sequential)
    layers = list(method.classifier.mlp)  # ... and predicts with one linear layer
    assert len(layers) == 1 and isinstance(layers[0], torch.nn.Linear)
    assert (layers[0].in_features, layers[0].out_features) == (32, 2)
    values = _steps(method, _first_batches(mutag), 24)
    assert _decreases(values), values
    # The default layout keeps its two-layer classifier with dropout and an encoder without dropout.
    default = build_method("supervised", mutag, hidden_channels=32, num_layers=3, dropout=0.5)
    assert default.encoder.layout == "graphcl" and default.encoder.dropout == 0.0
    assert [type(m).__name__ for m in default.classifier.mlp] == ["Linear", "ReLU", "Dropout", "Linear"]


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
def test_supervised_ogb_layout_trains_on_molbace() -> None:
    dataset = load_dataset("ogbg-molbace")
    seed_everything(0)
    method = build_method("supervised", dataset, hidden_channels=32, num_layers=3, ogb_mol=True, layout="ogb",
                          readout="mean")
    values = _steps(method, _first_batches(dataset, 64, 2), 16, lr=0.003)
    assert all(torch.isfinite(torch.tensor(values)))
    assert _decreases(values), values


def test_graphcl_ogb_encoder_loads_into_the_supervised_model(mutag: Any) -> None:
    options = {"hidden_channels": 32, "num_layers": 3, "layout": "ogb", "readout": "mean"}
    seed_everything(0)
    pretrained = build_method("graphcl", mutag, **options)
    batches = _first_batches(mutag)
    _steps(pretrained, batches, 2)
    state = pretrained.get_submodule("encoder").state_dict()  # what the benchmark harness transfers
    supervised = build_method("supervised", mutag, dropout=0.5, **options)
    supervised.get_submodule("encoder").load_state_dict(state)  # strict
    pretrained.eval(), supervised.eval()
    batch = batches[0]
    with torch.no_grad():
        expected = pretrained.encoder(batch.x, batch.edge_index, batch.batch, num_graphs=batch.num_graphs).graph
    assert expected.shape == (batch.num_graphs, 32)
    torch.testing.assert_close(supervised.embed(batch), expected)
    # Encoders of different layouts do not mix.
    with pytest.raises(RuntimeError, match="state_dict"):
        build_method("supervised", mutag, hidden_channels=32, num_layers=3).encoder.load_state_dict(state)


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
def test_ogb_molhiv_table_builds_the_leaderboard_gin_and_transfers_weights() -> None:
    from gcl.bench.config import find_config, load_config

    config = load_config(find_config("ogb-molhiv"))
    dataset = load_dataset("ogbg-molbace")  # same features as molhiv, smaller
    for spec in config.methods:
        method = build_method(spec.method, dataset, **spec.options)
        assert method.encoder.layout == "ogb" and method.encoder.out_channels == 300
        assert len(list(method.classifier.mlp)) == 1
        if spec.pretrain:
            pretrained = build_method(spec.pretrain["method"], dataset, **spec.pretrain["options"])
            method.get_submodule("encoder").load_state_dict(pretrained.get_submodule("encoder").state_dict())


@pytest.mark.parametrize("edge_features", [False, True])
def test_encode_views_equals_one_pass_per_view(edge_features: bool, mutag: Any) -> None:
    """Without batch statistics (no batch norm, or batch norm in eval mode) one pass over the
    union gives every view the embeddings of its own pass, also for views of different sizes."""
    from gcl.augment import DropNodes, RandomWalkSubgraph
    from gcl.methods import encode_graphs, encode_views
    from gcl.nn import GIN

    batch = Batch.from_data_list(list(mutag[:16]))
    views = [DropNodes(0.3)(batch), RandomWalkSubgraph(0.5)(batch), batch]
    assert len({int(v.num_nodes) for v in views}) == 3
    edge_dim = int(batch.edge_attr.size(1)) if edge_features else None
    for encoder in (GIN(7, 16, 3, batch_norm=False, edge_dim=edge_dim), GIN(7, 16, 3, edge_dim=edge_dim).eval()):
        joint = encode_views(encoder, views)
        for view, got in zip(views, joint):
            assert torch.allclose(got, encode_graphs(encoder, view).graph, atol=1e-5)


def test_graphcl_joint_views_same_loss_without_batch_statistics(mutag: Any) -> None:
    from gcl.augment import Identity
    from gcl.nn import GIN, ProjectionHead

    batch = Batch.from_data_list(list(mutag[:32]))
    seed_everything(0)
    separate = GraphCL(GIN(7, 16, 2, batch_norm=False), Identity(), Identity(), ProjectionHead(32, 32, 32))
    joint = GraphCL(separate.encoder, Identity(), Identity(), separate.head, joint_views=True)
    assert "joint_views=True" in repr(joint)
    assert torch.allclose(separate(batch), joint(batch), atol=1e-6)


@pytest.mark.parametrize("name", ["graphcl", "adaptive-bt"])
def test_joint_views_train_on_mutag(name: str, mutag: Any) -> None:
    seed_everything(0)
    method = build_method(name, mutag, joint_views=True)
    assert method.joint_views
    values = _steps(method, _first_batches(mutag), 24)
    assert all(torch.isfinite(torch.tensor(values)))
    assert _decreases(values), values


def test_encode_views_without_edge_features_for_an_edge_encoder(mutag: Any) -> None:
    from gcl.methods import encode_views
    from gcl.nn import GIN

    batch = Batch.from_data_list(list(mutag[:4]))
    bare = batch.clone()
    bare.edge_attr = None
    with pytest.raises(ValueError, match="edge_attr is None"):
        encode_views(GIN(7, 16, 2, edge_dim=4), [batch, bare])



@pytest.mark.parametrize("name", ["graphcl", "adaptive-bt"])
@pytest.mark.parametrize("joint", [False, True])
def test_views_drawn_outside_forward_give_the_forward_loss(name: str, joint: bool, mutag: Any) -> None:
    seed_everything(0)
    method = build_method(name, mutag, joint_views=joint)
    batch = Batch.from_data_list(list(mutag[:32]))
    torch.manual_seed(5)
    inside = method(batch)
    torch.manual_seed(5)  # forward draws the first view, then the second: no other randomness between
    views = tuple(augment(batch) for augment in method.view_augmentations())
    assert len(views) == 2
    assert torch.allclose(inside, method(batch, views=views), atol=1e-6)
    with pytest.raises(ValueError, match="contrasts two views"):
        method(batch, views=views[:1])


def test_lcgnn_and_supervised_take_their_views_from_the_caller(mutag: Any) -> None:
    from gcl.augment import DropNodes

    seed_everything(0)
    lcgnn = build_method("lcgnn", mutag, hidden_channels=16, num_layers=2, memory_size=64)
    batch = Batch.from_data_list(list(mutag[:16]))
    assert lcgnn.view_augmentations() == ()
    with pytest.raises(ValueError, match="takes 0 precomputed views"):
        lcgnn(batch, views=(batch,))
    keyed = LCGNN(lcgnn.encoder, lcgnn.classifier, lcgnn.head, lcgnn.memory,
                  key_augment=DropNodes(0.5))
    (augment,) = keyed.view_augmentations()
    assert augment is keyed.key_augment
    assert torch.isfinite(loss_of(keyed(batch, views=(augment(batch),))))
    supervised = build_method("supervised", mutag, hidden_channels=16, num_layers=2)
    assert supervised.view_augmentations() == ()
    supervised.eval()  # no dropout: the two calls compare
    assert torch.allclose(supervised(batch), supervised(batch, views=()))
    with pytest.raises(ValueError, match="takes no views"):
        supervised(batch, views=(batch,))


def test_gca_options_of_the_authors_configs(mutag: Any) -> None:
    """GCA's 'rrelu' is torch's functional rrelu as its code calls it (training=False), and
    dense=True weighs the adaptive masking by |x| (its WikiCS setting)."""
    from torch.nn import functional as F

    from gcl.nn._utils import make_activation

    x = torch.linspace(-3, 3, 13)
    assert torch.allclose(make_activation("rrelu")(x), F.rrelu(x))
    graph = _mutag_as_one_graph(mutag)
    gca = build_method("gca", graph, activation="rrelu", dense=True)
    masking = gca.augment1.transforms[-1]
    assert masking.dense
    with pytest.raises(ValueError, match="needs adaptive=True"):
        build_method("grace", graph, dense=True)


def test_lcgnn_bank_holds_each_graphs_newest_key_and_finds_its_slots() -> None:
    """As the authors' code: one slot per graph, overwritten (a momentum of 0.5 kept half of the
    random start in every first write); a subset of a dataset without positions trains too."""
    from gcl.methods import encode_graphs

    dataset = load_dataset("MUTAG")
    subset = dataset[torch.arange(20, 150)]
    seed_everything(0)
    method = build_method("lcgnn", subset, memory="bank", hidden_channels=16, num_layers=2)
    assert len(method.memory) == len(dataset)  # slots addressed by the positions in the whole dataset
    batch = next(iter(CollatedLoader(subset, 32)))
    method(batch)
    with torch.no_grad():
        keys = torch.nn.functional.normalize(method.key_head(encode_graphs(method.key_encoder, batch).graph), dim=-1)
    stored = method.memory.get(batch.idx)
    assert torch.allclose(stored, keys, atol=1e-5)
    assert torch.equal(method.memory.labels[batch.idx], batch.y)


def test_classifier_widths_are_an_option() -> None:
    dataset = load_dataset("MUTAG")
    paper = build_method("supervised", dataset, encoder="hgpsl", hidden_channels=32, num_layers=2,
                         classifier_channels=[32, 16])
    assert [m.out_features for m in paper.classifier.modules() if isinstance(m, torch.nn.Linear)] == [32, 16, 2]
    lcgnn = build_method("lcgnn", dataset, hidden_channels=16, num_layers=2, classifier_channels=[16, 8])
    assert [m.out_features for m in lcgnn.classifier.modules() if isinstance(m, torch.nn.Linear)] == [16, 8, 2]


def test_run_refuses_a_method_of_the_other_level(tmp_path: Any) -> None:
    from gcl.train import run

    with pytest.raises(ValueError, match="grace is a node-level method: it trains on one graph, but this dataset "
                                         "holds 188 graphs"):
        run("grace", "MUTAG", epochs=1)
    one_graph = load_dataset("MUTAG")[:1]
    with pytest.raises(ValueError, match="graphcl is a graph-level method: it needs a dataset of many graphs"):
        run("graphcl", one_graph, epochs=1)


def test_supervised_methods_refuse_labels_a_classifier_would_misread() -> None:
    dataset = load_dataset("MUTAG")
    cases = {
        "has 3 columns": torch.randint(0, 2, (len(dataset), 3)),  # multi-task (OGB moltox21 style)
        "NaN or inf": torch.where(torch.arange(len(dataset)) == 3, float("nan"), 1.0),
        "not whole numbers": torch.rand(len(dataset)),
        r"0 … C-1 \(found -1\)": torch.where(torch.arange(len(dataset)) % 2 == 0, -1, 1),
    }
    for message, y in cases.items():
        copy = load_dataset("MUTAG")
        copy._data.y = y
        if y.dim() == 2:
            copy.slices["y"] = torch.arange(len(dataset) + 1)
        for name in ("supervised", "lcgnn"):
            with pytest.raises(ValueError, match=message):
                build_method(name, copy)
    unlabelled = Data(x=torch.randn(4, 7), edge_index=torch.tensor([[0, 1], [1, 2]]))
    with pytest.raises(ValueError, match="has no labels"):
        build_method("supervised", unlabelled)


def test_supervised_methods_refuse_other_than_one_label_per_graph() -> None:
    # node labels (Cora's 2,708 for its one graph): the first node's label was the graph's, silently
    for name in ("supervised", "lcgnn"):
        with pytest.raises(ValueError, match="y holds 2708 labels for 1 graph"):
            build_method(name, load_dataset("Cora"))
    # a batch with two labels per graph: the first column was taken, silently
    dataset = load_dataset("MUTAG")
    batch = next(iter(CollatedLoader(dataset, batch_size=4)))
    labels = batch.y
    for name in ("supervised", "lcgnn"):
        method = build_method(name, dataset, hidden_channels=16, num_layers=2)
        batch.y = torch.stack([labels, 1 - labels], dim=1)
        with pytest.raises(ValueError, match=r"batch.y holds 8 values for 4 graph\(s\) \(shape \(4, 2\)\)"):
            method(batch)
        batch.y = labels[:, None]  # one label per graph, as a column: trains
        out = method(batch)
        assert torch.isfinite(out.loss if name == "lcgnn" else out)


def test_non_finite_input_features_are_named_as_input() -> None:
    dataset = load_dataset("MUTAG")
    batch = next(iter(CollatedLoader(dataset, batch_size=16)))
    batch.x[3, 0] = float("nan")
    for name in ("graphcl", "supervised", "lcgnn"):
        method = build_method(name, dataset, hidden_channels=16, num_layers=2)
        with pytest.raises(ValueError, match="node features contain NaN or inf values"):
            method(batch)
        with pytest.raises(ValueError, match="node features contain NaN or inf values"):
            method.embed(batch)  # embeddings for an evaluator as well
    cora = load_dataset("Cora")
    graph = cora[0].clone()
    graph.x = graph.x.clone()
    graph.x[0, 0] = float("nan")
    for name in ("grace", "gbt"):  # node-level methods too, in forward and embed
        method = build_method(name, cora)
        for call in (method, method.embed):
            with pytest.raises(ValueError, match="node features contain NaN or inf values"):
                call(graph)
    losses.set_finite_check(False)  # the switch of the losses' value checks turns this one off too
    try:
        build_method("supervised", dataset, hidden_channels=16, num_layers=2)(batch)
    finally:
        losses.set_finite_check(True)


@pytest.mark.parametrize("name", ["supervised", "lcgnn"])
def test_supervised_encoders_default_to_their_papers_sizes(name: str) -> None:
    # GIN 5 x 64 (LCGNN's GIN runs); HGP-SL 3 x 128, two poolings (its paper and code), not GIN's sizes
    data = load_dataset("MUTAG")
    gin = build_method(name, data)
    assert (gin.encoder.hidden_channels, gin.encoder.num_layers, gin.encoder.out_channels) == (64, 5, 320)
    hgpsl = build_method(name, data, encoder="hgpsl")
    assert (hgpsl.encoder.hidden_channels, hgpsl.encoder.num_layers) == (128, 3)
    assert len(hgpsl.encoder.pools) == 2
    assert build_method(name, data, encoder="hgpsl", hidden_channels=32).encoder.num_layers == 3


@pytest.mark.parametrize(("name", "options"), [
    ("graphcl", {}),
    ("lcgnn", {"hidden_channels": 32, "num_layers": 3, "memory_size": 128}),
    ("supervised", {"hidden_channels": 32, "num_layers": 3}),
    ("adaptive-bt", {}),
])
def test_activation_checkpointing_trains_to_the_same_parameters(name: str, options: dict[str, Any],
                                                                mutag: Any) -> None:
    batches = _first_batches(mutag)
    states = []
    for checkpoint in (False, True):
        seed_everything(0)
        method = build_method(name, mutag, activation_checkpointing=checkpoint, **options)
        encoders = [module for module in method.modules() if isinstance(module, GIN)]
        assert encoders and all(encoder.activation_checkpointing is checkpoint for encoder in encoders)
        losses_seen = _steps(method, batches, 4)
        states.append((losses_seen, method.state_dict()))
    assert states[0][0] == states[1][0]
    assert states[0][1].keys() == states[1][1].keys()
    assert all(torch.equal(states[0][1][key], states[1][1][key]) for key in states[0][1])


@pytest.mark.parametrize(("name", "options"), [
    ("graphcl", {}),
    ("graphcl", {"joint_views": True}),
    ("lcgnn", {"hidden_channels": 32, "num_layers": 3, "memory_size": 128}),
    ("supervised", {"hidden_channels": 32, "num_layers": 3}),
    ("adaptive-bt", {}),
])
def test_micro_batches_train_like_the_whole_batch_without_batch_norm(name: str, options: dict[str, Any],
                                                                      mutag: Any) -> None:
    # 64 graphs per batch in micro-batches of 24: the loss still sees every graph of the batch
    # (the contrastive negatives, the Barlow Twins statistics), so the loss and every gradient are
    # the whole batch's, on two consecutive steps (LCGNN's second reads keys its first queued)
    batches = _first_batches(mutag)
    runs = []
    for micro in (None, 24):
        seed_everything(0)
        extra = {} if micro is None else {"micro_batch_size": micro}
        method = build_method(name, mutag, batch_norm=False, **extra, **options)
        encoders = [module for module in method.modules() if isinstance(module, GIN)]
        assert encoders and all(encoder.micro_batch_size == micro for encoder in encoders)
        optimizer = torch.optim.SGD(method.parameters(), lr=0.01)
        method.train()
        seen = []
        for batch in batches:
            optimizer.zero_grad()
            loss = loss_of(method(batch))
            loss.backward()
            seen.append((loss.item(), {n: p.grad.clone() for n, p in method.named_parameters() if p.grad is not None}))
            optimizer.step()
            if hasattr(method, "after_step"):
                method.after_step()
        runs.append(seen)
    for (loss, grads), (expected_loss, expected) in zip(runs[1], runs[0]):
        assert loss == pytest.approx(expected_loss, rel=1e-5)
        assert grads.keys() == expected.keys() and any(k.startswith("encoder.") for k in grads)
        scale = max(float(g.norm()) for g in expected.values())
        for key, grad in expected.items():
            assert float((grads[key] - grad).norm()) <= 1e-5 * scale + 1e-5 * float(grad.norm()), key


def test_micro_batches_with_batch_norm_train(mutag: Any) -> None:
    # ghost batch norm: another objective than the whole batch's, but a working one
    seed_everything(0)
    method = build_method("graphcl", mutag, micro_batch_size=16)
    values = _steps(method, _first_batches(mutag), 24)
    assert all(torch.isfinite(torch.tensor(values))) and _decreases(values), values


@pytest.mark.parametrize(("option", "value"), [("hidden_channels", "32"), ("num_layers", 2.5),
                                                ("num_layers", True), ("dropout", "0.5")])
def test_option_values_of_the_wrong_type_are_named(option: str, value: Any, mutag: Any) -> None:
    # e.g. `hidden_channels: "32"` in a config file: a ValueError naming it, not a TypeError deep inside
    with pytest.raises(ValueError, match=f"{option} must be"):
        build_method("supervised", mutag, **{option: value})


@pytest.mark.parametrize("name", ["grace", "gca", "gbt"])
def test_node_methods_with_activation_checkpointing_train_to_the_same_parameters(name: str, mutag: Any) -> None:
    graph = _mutag_as_one_graph(mutag)
    states = []
    for checkpoint in (False, True):
        seed_everything(0)
        method = build_method(name, graph, hidden_channels=16, activation_checkpointing=checkpoint)
        assert method.encoder.activation_checkpointing is checkpoint
        optimizer = torch.optim.Adam(method.parameters(), lr=0.01)
        losses_seen = []
        for _ in range(3):
            optimizer.zero_grad()
            loss = loss_of(method(graph))
            loss.backward()
            optimizer.step()
            losses_seen.append(float(loss))
        states.append((losses_seen, method.state_dict()))
    assert states[0][0] == states[1][0]
    assert all(torch.equal(states[0][1][key], states[1][1][key]) for key in states[0][1])


def test_methods_ask_graph_encoders_for_graph_embeddings_only(mutag: Any) -> None:
    # GIN takes node_embeddings=False (no node-sized tensor); HGP-SL does not take the switch
    batch = _first_batches(mutag, size=8, count=1)[0]
    calls: list[dict[str, Any]] = []
    for name, options in (("graphcl", {}), ("lcgnn", {"memory_size": 16}), ("supervised", {}),
                          ("lcgnn", {"encoder": "hgpsl", "memory_size": 16})):
        method = build_method(name, mutag, **options)
        encoder = method.encoder
        encoder.register_forward_hook(lambda module, args, kwargs, out: calls.append(dict(kwargs)), with_kwargs=True)
        loss_of(method(batch)).backward()
        if isinstance(encoder, GIN):
            assert calls and all(call.get("node_embeddings") is False for call in calls), name
        else:
            assert calls and all("node_embeddings" not in call for call in calls), name
        calls.clear()


def test_node_view_probabilities_take_one_number_or_two(mutag: Any) -> None:
    graph = _mutag_as_one_graph(mutag)
    both = build_method("gbt", graph, edge_drop=0.3, feature_mask=0.2)
    for view in (both.augment1, both.augment2):
        assert view.transforms[0].p == 0.3 and view.transforms[1].p == 0.2
    pair = build_method("grace", graph, edge_drop=[0.1, 0.5], feature_mask=(0.2, 0.4))
    assert [pair.augment1.transforms[0].p, pair.augment2.transforms[0].p] == [0.1, 0.5]
    assert [pair.augment1.transforms[1].p, pair.augment2.transforms[1].p] == [0.2, 0.4]
    for bad in ([0.3], [0.3, 0.4, 0.5], "0.3", [True, 0.2]):
        with pytest.raises(ValueError, match=r"edge_drop must be one probability \(both views\) or two"):
            build_method("grace", graph, edge_drop=bad)


@pytest.mark.parametrize(("name", "options", "message"), [
    ("grace", {"centrality": "pagerank"}, "centrality='pagerank' weighs the adaptive views"),
    ("gbt", {"centrality": "degree"}, "centrality='degree' weighs the adaptive views"),
    ("lcgnn", {"memory_momentum": 0.9}, "memory_momentum sets how a memory bank's slots move"),
    ("lcgnn", {"memory": "bank", "memory_size": 8}, "memory_size sets the queue's length"),
])
def test_options_that_would_change_nothing_are_refused(name: str, options: dict[str, Any], message: str,
                                                       mutag: Any) -> None:
    # they would change the run's key (so its results look like another setting's) and nothing else
    data = _mutag_as_one_graph(mutag) if name in ("grace", "gbt") else mutag
    with pytest.raises(ValueError, match=message):
        build_method(name, data, **options)
    adaptive = {"grace": "gca", "gbt": "adaptive-gbt"}.get(name)
    if adaptive is not None:  # where they act, they are taken
        assert build_method(adaptive, data, **options).augment1.transforms[1].centrality == options["centrality"]
