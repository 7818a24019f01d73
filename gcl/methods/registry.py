r"""Build a method by name for a dataset, from plain hyper-parameters.

This is what the command line, the configuration files and the benchmark
harness use; in Python, methods can equally be assembled by hand from their
parts (see each method's docstring).
"""

from __future__ import annotations

import difflib
import inspect
import numbers
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data, Dataset, InMemoryDataset

from gcl import augment as A
from gcl.losses import InfoNCE, MemoryBank, MemoryQueue
from gcl.methods.barlow import GraphBarlowTwins, GraphLevelBarlowTwins
from gcl.methods.grace import GRACE
from gcl.methods.graphcl import GraphCL
from gcl.methods.lcgnn import LCGNN
from gcl.methods.supervised import SupervisedClassifier
from gcl.nn import GCN, GIN, HGPSL, Classifier, ProjectionHead

GRAPHCL_AUGMENTATIONS = ("drop_nodes", "subgraph", "perturb_edges", "mask_features")
RANDOM_POOLS = {
    "random2": ("drop_nodes", "subgraph"),
    "random3": ("drop_nodes", "perturb_edges", "subgraph"),
    "random4": ("drop_nodes", "perturb_edges", "subgraph", "mask_features"),
}


def make_augmentation(name: str, ratio: float = 0.2, *, reference: bool = False,
                      per_graph: bool = False) -> Callable[[Any], Any]:
    r"""A GraphCL augmentation by name.

    Args:
        name (str): ``"identity"``, ``"drop_nodes"``, ``"subgraph"``,
            ``"perturb_edges"``, ``"mask_features"``, or a random pool
            ``"random2"`` / ``"random3"`` / ``"random4"`` (one of 2/3/4
            augmentations drawn per batch, or per graph with ``per_graph``).
        ratio (float): Augmentation strength: the fraction of nodes dropped,
            edges perturbed or node features masked; subgraphs keep
            ``1 - ratio`` of the nodes. (default: :obj:`0.2`)
        reference (bool): Reproduce the GraphCL reference code's deviations
            from the paper (see :mod:`gcl.augment`). (default: :obj:`False`)
        per_graph (bool): A random pool draws every graph's augmentation, as
            GraphCL's code does (:class:`~gcl.augment.RandomChoice` with
            ``per_graph=True``), instead of one for the whole batch.
            (default: :obj:`False`)
    """
    if name == "identity" or ratio == 0.0:
        return A.Identity()
    if name in RANDOM_POOLS:
        return A.RandomChoice([make_augmentation(n, ratio, reference=reference) for n in RANDOM_POOLS[name]],
                              per_graph=per_graph)
    if name == "drop_nodes":
        return A.DropNodes(p=ratio, graphcl_reference=reference)
    if name == "subgraph":
        return A.RandomWalkSubgraph(ratio=1.0 - ratio, graphcl_reference=reference)
    if name == "perturb_edges":
        return A.PerturbEdges(p=ratio, graphcl_reference=reference)
    if name == "mask_features":
        return A.MaskFeatures(p=ratio, mode="node", graphcl_reference=reference)
    raise ValueError(
        f"unknown augmentation {name!r}; choose from identity, {', '.join(GRAPHCL_AUGMENTATIONS)}, "
        f"{', '.join(RANDOM_POOLS)}"
    )


def _info(data: Dataset | Data) -> tuple[int, int]:
    if isinstance(data, Dataset) and len(data) == 0:
        raise ValueError("the dataset is empty: there is nothing to build the method for")
    first = data[0] if isinstance(data, Dataset) else data
    x = getattr(first, "x", None)
    if isinstance(x, Tensor) and x.dim() != 2:
        raise ValueError(f"node features must be a [num_nodes, num_features] matrix (got shape {tuple(x.shape)}); "
                         "give one feature per node as x.view(-1, 1)")
    num_features = int(data.num_features)
    if num_features == 0:
        raise ValueError("the dataset has no node features; load it with gcl.data.load_dataset, which adds them")
    num_classes = int(getattr(data, "num_classes", 0) or 0)
    return num_features, num_classes


#: Default ``(hidden_channels, num_layers)`` of the supervised encoders: GIN as in LCGNN's GIN
#: experiments, HGP-SL as in its paper and code (three GCN layers of 128 units, two poolings).
ENCODER_SIZES = {"gin": (64, 5), "hgpsl": (128, 3)}


def encoder_size(kind: str, hidden_channels: int | None, num_layers: int | None) -> tuple[int, int]:
    r"""``(hidden_channels, num_layers)`` with the missing ones taken from the encoder's defaults."""
    if kind not in ENCODER_SIZES:
        raise ValueError(f"encoder must be 'gin' or 'hgpsl' (got {kind!r})")
    hidden, layers = ENCODER_SIZES[kind]
    return (hidden if hidden_channels is None else hidden_channels,
            layers if num_layers is None else num_layers)


def graph_encoder(kind: str, in_channels: int, *, hidden_channels: int, num_layers: int,
                  **options: Any) -> nn.Module:
    r"""``"gin"`` (:class:`gcl.nn.GIN`) or ``"hgpsl"`` (:class:`gcl.nn.HGPSL`)."""
    if kind == "gin":
        return GIN(in_channels, hidden_channels, num_layers, **options)
    if kind == "hgpsl":
        return HGPSL(in_channels, hidden_channels, num_layers, **options)
    raise ValueError(f"encoder must be 'gin' or 'hgpsl' (got {kind!r})")


def build_graphcl(data: Dataset, *, hidden_channels: int = 32, num_layers: int = 3, readout: str | None = None,
                  augmentations: tuple[str, str] | list[str] = ("random4", "random4"), aug_ratio: float = 0.2,
                  temperature: float = 0.2, graphcl_reference: bool = False, joint_views: bool = False,
                  pool_per_graph: bool = False, init: str = "default", **encoder_options: Any) -> GraphCL:
    r"""GraphCL with a GIN encoder (GraphCL defaults: 3 × 32, sum readout, τ = 0.2, ratio 0.2).

    ``pool_per_graph=True`` makes the random pools (``random2`` ... ``random4``) draw every graph's
    augmentation, as GraphCL's code does, instead of one per batch (one pass per augmentation of
    the pool and view instead of one per view).

    ``init="xavier"`` initialises every linear layer of the encoder and projection head with
    Xavier-uniform weights and zero biases, as GraphCL's (and InfoGraph's) code does;
    ``"default"`` keeps PyTorch's per-layer initialisation.

    The remaining options go to :class:`gcl.nn.GIN` (e.g. ``layout="ogb"``, ``ogb_mol=True``). Given
    the same ``hidden_channels``, ``num_layers`` and encoder options (the two builders' defaults differ),
    :func:`build_supervised` builds the same encoder, so the pre-trained state loads into it for fine-tuning.
    """
    if init not in ("default", "xavier"):
        raise ValueError(f"init must be 'default' or 'xavier' (got {init!r})")
    in_channels, _ = _info(data)
    encoder = GIN(in_channels, hidden_channels, num_layers, readout=readout, **encoder_options)
    dim = int(encoder.out_channels)
    if len(augmentations) != 2:
        raise ValueError(f"augmentations must name two views (got {augmentations!r})")
    masking = [name for name in augmentations if "mask_features" in RANDOM_POOLS.get(name, (name,))]
    if masking and not _floating_features(data):
        raise ValueError(
            f"the views {masking} include attribute masking, which replaces node features with Gaussian noise "
            "and needs floating-point features, but this dataset's node features are integers (categorical, "
            "e.g. OGB atom features); choose views without it, such as ('identity', 'random3'), and pass "
            "ogb_mol=True for OGB molecules"
        )
    aug1, aug2 = (make_augmentation(name, aug_ratio, reference=graphcl_reference, per_graph=pool_per_graph)
                  for name in augmentations)
    method = GraphCL(encoder, aug1, aug2, ProjectionHead(dim, dim, dim), InfoNCE.graphcl(temperature),
                     joint_views=joint_views)
    if init == "xavier":
        xavier_linear_init(method)
    return method


def xavier_linear_init(module: nn.Module) -> nn.Module:
    r"""Xavier-uniform weights and zero biases in every :class:`torch.nn.Linear` of ``module``
    (PyG's :class:`~torch_geometric.nn.dense.linear.Linear` included), the initialisation of
    GraphCL's and InfoGraph's code; other layers (batch norm) keep theirs. Returns ``module``."""
    from torch_geometric.nn.dense.linear import Linear as PyGLinear

    for layer in module.modules():
        if isinstance(layer, (nn.Linear, PyGLinear)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


def _floating_features(data: Dataset | Data) -> bool:
    example = data if isinstance(data, Data) else data[0]
    x = getattr(example, "x", None)
    return x is None or bool(x.is_floating_point())


def build_lcgnn(data: Dataset, *, encoder: str = "gin", hidden_channels: int | None = None,
                num_layers: int | None = None,
                projection_channels: int = 128, memory: str = "queue", memory_size: int | None = None,
                memory_momentum: float | None = None, contrastive_weight: float = 0.5, temperature: float = 0.07,
                momentum: float = 0.999, dropout: float = 0.5, classifier_channels: list[int] | None = None,
                **encoder_options: Any) -> LCGNN:
    r"""LCGNN with a GIN or HGP-SL encoder and a label-aware memory queue or bank.

    ``memory="queue"`` keeps the newest ``memory_size`` keys (default 1,024). ``memory="bank"`` keeps
    one slot per graph of the dataset, overwritten with the graph's newest key (``memory_momentum``
    default 0, as the authors' code does); it addresses the slots by ``batch.idx`` and attaches the
    graphs' positions to ``data`` (:func:`gcl.data.attach_index`) when it has none. An option of the
    other memory (``memory_momentum`` with the queue, ``memory_size`` with the bank) is refused.
    ``classifier_channels`` sets the classifier's hidden widths (default ``[hidden_channels]``; the
    authors' HGP-SL MLP is ``[128, 64]``). The encoder's size defaults to its paper's: GIN 5 × 64,
    HGP-SL 3 × 128 (:func:`encoder_size`).
    """
    in_channels, num_classes = _info(data)
    hidden_channels, num_layers = encoder_size(encoder, hidden_channels, num_layers)
    enc = graph_encoder(encoder, in_channels, hidden_channels=hidden_channels, num_layers=num_layers,
                        **encoder_options)
    dim = int(enc.out_channels)  # type: ignore[arg-type]
    classifier = _classifier(dim, hidden_channels if classifier_channels is None else classifier_channels,
                             num_classes, dropout)
    head = ProjectionHead(dim, dim, projection_channels)
    store: MemoryQueue | MemoryBank
    if memory == "queue":
        if memory_momentum is not None:
            raise ValueError("memory_momentum sets how a memory bank's slots move (memory='bank'); the queue "
                             "replaces its oldest keys: leave memory_momentum out")
        store = MemoryQueue(1024 if memory_size is None else memory_size, projection_channels)
    elif memory == "bank":
        if memory_size is not None:
            raise ValueError("memory_size sets the queue's length (memory='queue'); the bank has one slot per "
                             "graph of the dataset: leave memory_size out")
        store = MemoryBank(_indexed_size(data), projection_channels,
                           momentum=0.0 if memory_momentum is None else memory_momentum)
    else:
        raise ValueError(f"memory must be 'queue' or 'bank' (got {memory!r})")
    return LCGNN(enc, classifier, head, store, contrastive_weight=contrastive_weight,
                 temperature=temperature, momentum=momentum)


def _indexed_size(data: Dataset) -> int:
    r"""Slots a memory bank needs for ``data``: the graphs of its storage (a subset keeps the
    positions of the whole dataset), their positions attached as ``idx`` when missing."""
    from gcl.data import attach_index

    if not isinstance(data, InMemoryDataset):
        raise ValueError(f"memory='bank' needs an in-memory dataset of graphs (got {type(data).__name__})")
    if "idx" not in data._data:
        attach_index(data)
    return int(data._data.idx.numel())


def _classifier(dim: int, hidden: int | list[int], num_classes: int, dropout: float) -> nn.Module:
    if num_classes < 2:
        raise ValueError(f"supervised methods need at least 2 classes (got {num_classes})")
    return Classifier(dim, hidden, num_classes, dropout=dropout)


def build_supervised(data: Dataset, *, encoder: str = "gin", hidden_channels: int | None = None,
                     num_layers: int | None = None,
                     dropout: float = 0.5, classifier_channels: list[int] | None = None,
                     **encoder_options: Any) -> SupervisedClassifier:
    r"""Plain supervised GIN / HGP-SL classifier (cross-entropy).

    By default the classifier is Linear–ReLU–Dropout(``dropout``)–Linear on the graph embedding;
    ``classifier_channels`` sets its hidden widths (the HGP-SL paper's MLP: ``[128, 64]``).
    With the GIN option ``layout="ogb"`` the model is the OGB leaderboard GIN instead: ``dropout``
    acts after every GIN layer and the classifier is a single linear layer. The encoder's size
    defaults to its paper's: GIN 5 × 64, HGP-SL 3 × 128 (:func:`encoder_size`).
    """
    in_channels, num_classes = _info(data)
    hidden_channels, num_layers = encoder_size(encoder, hidden_channels, num_layers)
    ogb = encoder_options.get("layout") == "ogb"
    if ogb:
        encoder_options["dropout"] = dropout
    enc = graph_encoder(encoder, in_channels, hidden_channels=hidden_channels, num_layers=num_layers,
                        **encoder_options)
    hidden: int | list[int] = hidden_channels if classifier_channels is None else classifier_channels
    classifier = _classifier(int(enc.out_channels), [] if ogb else hidden, num_classes,  # type: ignore[arg-type]
                             0.0 if ogb else dropout)
    return SupervisedClassifier(enc, classifier)


def build_graph_barlow_twins(data: Dataset | Data, *, hidden_channels: int = 256, num_layers: int = 2,
                             edge_drop: float | tuple[float, float] = (0.3, 0.3),
                             feature_mask: float | tuple[float, float] = (0.1, 0.1),
                             adaptive: bool = False, centrality: str | None = None,
                             batch_norm: bool = True, dense: bool = False,
                             activation_checkpointing: bool = False) -> GraphBarlowTwins:
    r"""Node-level Graph Barlow Twins with a GCN encoder (λ = 1/d); ``adaptive=True`` swaps in
    centrality-adaptive edge dropping and feature masking (``centrality``, default degree;
    ``dense=True``: feature weights from :math:`|x|`, GCA's choice for dense features such as
    WikiCS'). ``edge_drop`` and ``feature_mask`` are one probability for both views or two."""
    in_channels, _ = _info(data)
    # the G-BT encoder: GCN(F, 2d) -> BN -> PReLU -> GCN(2d, d), batch-norm momentum 0.01
    encoder = GCN(in_channels, 2 * hidden_channels, num_layers, out_channels=hidden_channels,
                  batch_norm=batch_norm, plain_last=True, batch_norm_momentum=0.01,
                  activation_checkpointing=activation_checkpointing)
    aug1, aug2 = _node_views(edge_drop, feature_mask, adaptive, centrality, dense)
    return GraphBarlowTwins(encoder, aug1, aug2)


def _view_pair(name: str, value: Any) -> tuple[float, float]:
    r"""``value`` as the probabilities of the two views: one number for both, or two numbers."""
    number = _PLAIN_TYPES["float"][0]
    if number(value):
        return float(value), float(value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(number(item) for item in value):
        return float(value[0]), float(value[1])
    raise ValueError(f"{name} must be one probability (both views) or two (view 1, view 2) (got {value!r})")


def _node_views(edge_drop: Any, feature_mask: Any, adaptive: bool, centrality: str | None,
                dense: bool) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    r"""The two views of GRACE / GCA / Graph Barlow Twins."""
    if centrality is not None and not adaptive:
        raise ValueError(f"centrality={centrality!r} weighs the adaptive views; it needs adaptive=True "
                         "(gca, adaptive-gbt)")
    edges, features = _view_pair("edge_drop", edge_drop), _view_pair("feature_mask", feature_mask)
    first, second = (_node_view(pe, pf, adaptive, centrality or "degree", dense) for pe, pf in zip(edges, features))
    return first, second


def _node_view(edge_p: float, feature_p: float, adaptive: bool, centrality: Any,
               dense: bool = False) -> Callable[[Any], Any]:
    if dense and not adaptive:
        raise ValueError("dense=True weighs the adaptive feature masking; it needs adaptive=True")
    if adaptive:
        # GCA weighs edges and feature dimensions by the centralities of the input graph (computed
        # once, before any edge is dropped): stored first, both steps read them
        return A.Compose([A.AddCentrality.adaptive(centrality),
                          A.AdaptiveDropEdges(p=edge_p, centrality=centrality),
                          A.AdaptiveMaskFeatures(p=feature_p, centrality=centrality, dense=dense)])
    # GRACE / G-BT views: every stored edge dropped independently (their code's dropout_adj) and
    # zeroed feature columns
    return A.Compose([A.DropEdges(p=edge_p, force_undirected=False),
                      A.MaskFeatures(p=feature_p, mode="dim", fill="zero")])


def build_adaptive_barlow_twins(data: Dataset, *, hidden_channels: int = 32, num_layers: int = 3,
                                edge_drop: float = 0.2, feature_mask: float = 0.2,
                                centrality: str = "degree", projection_channels: int = 128,
                                joint_views: bool = False, **encoder_options: Any) -> GraphLevelBarlowTwins:
    r"""Graph-level Barlow Twins with degree-centrality-adaptive edge dropping and
    unimportant-dimension masking, GIN encoder (the remaining options go to :class:`gcl.nn.GIN`,
    e.g. ``activation_checkpointing=True``)."""
    in_channels, _ = _info(data)
    encoder = GIN(in_channels, hidden_channels, num_layers, **encoder_options)
    dim = int(encoder.out_channels)
    aug1 = _node_view(edge_drop, feature_mask, True, centrality)
    aug2 = _node_view(edge_drop, feature_mask, True, centrality)
    head = ProjectionHead(dim, projection_channels, projection_channels)
    return GraphLevelBarlowTwins(encoder, aug1, aug2, head, joint_views=joint_views)


def build_grace(data: Data | Dataset, *, hidden_channels: int = 128, projection_channels: int = 128,
                num_layers: int = 2, temperature: float = 0.4,
                edge_drop: float | tuple[float, float] = (0.2, 0.4),
                feature_mask: float | tuple[float, float] = (0.3, 0.4), adaptive: bool = False,
                centrality: str | None = None, activation: str = "relu", dense: bool = False,
                activation_checkpointing: bool = False) -> GRACE:
    r"""GRACE (``adaptive=False``) or GCA (``adaptive=True``) with a GCN encoder; defaults are
    GRACE's Cora settings. ``centrality`` (GCA only, default degree) weighs its views, and
    ``dense=True`` its feature masking by :math:`|x|` (its code's choice for WikiCS). ``edge_drop``
    and ``feature_mask`` are one probability for both views or two."""
    in_channels, _ = _info(data)
    # the GRACE encoder: GCN(F, 2d) -> act -> GCN(2d, d) -> act
    encoder = GCN(in_channels, 2 * hidden_channels, num_layers, out_channels=hidden_channels,
                  activation=activation, activation_checkpointing=activation_checkpointing)
    aug1, aug2 = _node_views(edge_drop, feature_mask, adaptive, centrality, dense)
    head = ProjectionHead(hidden_channels, projection_channels, hidden_channels, activation="elu")
    return GRACE(encoder, aug1, aug2, head, temperature=temperature)


BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "graphcl": build_graphcl,
    "lcgnn": build_lcgnn,
    "supervised": build_supervised,
    "gbt": build_graph_barlow_twins,
    "adaptive-bt": build_adaptive_barlow_twins,
    "grace": build_grace,
    "gca": lambda data, **kw: build_grace(data, **{"adaptive": True, **kw}),
    "adaptive-gbt": lambda data, **kw: build_graph_barlow_twins(data, **{"adaptive": True, **kw}),
}

LEVEL = {"graphcl": "graph", "lcgnn": "graph", "supervised": "graph", "adaptive-bt": "graph",
         "gbt": "node", "adaptive-gbt": "node", "grace": "node", "gca": "node"}
SUPERVISED = {"lcgnn", "supervised"}


def build_method(name: str, data: Dataset | Data, **hyperparameters: Any) -> nn.Module:
    r"""Build method ``name`` for ``data`` (a dataset, or one graph for node-level methods).

    Args:
        name (str): One of ``graphcl``, ``lcgnn``, ``supervised``, ``adaptive-bt``
            (graph level) or ``gbt``, ``adaptive-gbt``, ``grace``, ``gca`` (node level).
        data: Supplies the input dimension and number of classes.
        **hyperparameters: Passed to the builder (see ``build_<method>``).

    Raises:
        ValueError: Unknown method or hyper-parameter (the message lists the accepted ones).
    """
    check_method_options(name, hyperparameters)
    key = name.lower()
    if key in SUPERVISED:
        _check_labels(key, data)
    return BUILDERS[key](data, **hyperparameters)


def _option_parameters(key: str, hyperparameters: dict[str, Any]) -> tuple[Any, Any]:
    r"""The parameters of method ``key``'s builder, and of the encoder it hands its remaining
    options to (GIN / HGP-SL, by the ``encoder`` option), or :obj:`None` when it hands none on."""
    target = cast(Callable[..., Any], {"gca": build_grace, "adaptive-gbt": build_graph_barlow_twins}.get(
        key, BUILDERS[key]))
    parameters = inspect.signature(target).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return parameters, None
    encoder = GIN if key == "graphcl" else {"gin": GIN, "hgpsl": HGPSL}.get(
        str(hyperparameters.get("encoder", "gin")), GIN)
    return parameters, inspect.signature(encoder).parameters


#: What a value of a plain annotation must be: its check and how the error names it.
_PLAIN_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool), "an integer"),
    "float": (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool), "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "str": (lambda v: isinstance(v, str), "a string"),
}


def _type_mismatch(annotation: Any, value: Any) -> str | None:
    r"""What ``value`` should be when its parameter is annotated with plain types only (``int``,
    ``float``, ``bool``, ``str``, unions of them and ``None``) and it is none of them; :obj:`None`
    when it fits or the annotation is another kind (left to the builder)."""
    if not isinstance(annotation, str):
        return None
    parts = [part.strip() for part in annotation.split("|")]
    plain = [part for part in parts if part != "None"]
    if not plain or any(part not in _PLAIN_TYPES for part in plain):
        return None
    if value is None and "None" in parts:
        return None
    if any(_PLAIN_TYPES[part][0](value) for part in plain):
        return None
    expected = " or ".join(_PLAIN_TYPES[part][1] for part in plain)
    return expected + (" (or null)" if "None" in parts else "")


def check_method_options(name: str, hyperparameters: dict[str, Any]) -> None:
    r"""Checks a method's name, hyper-parameter names and the types of those whose parameters
    take plain values (integers, numbers, switches, strings) without building it (no data needed).

    Raises:
        ValueError: Unknown method, or hyper-parameters it does not take, each with the
            closest accepted name, and the accepted ones; or a value of the wrong type.
    """
    key = name.lower()
    if key not in BUILDERS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(BUILDERS)}")
    parameters, encoder_parameters = _option_parameters(key, hyperparameters)
    accepted = set(parameters) - {"data", "encoder_options"}
    if encoder_parameters is not None:  # builders forward the remaining options to the encoder
        accepted |= set(encoder_parameters) - {"self", "in_channels", "hidden_channels", "num_layers"}
    unknown = sorted(str(k) for k in set(hyperparameters) - accepted)
    if unknown:
        hints = [f"{k!r}: did you mean {close[0]!r}?" for k in unknown
                 if (close := difflib.get_close_matches(k, sorted(accepted), 1))]
        if "encoder" in parameters:  # an option of the other encoder (GIN / HGP-SL)
            chosen = str(hyperparameters.get("encoder", "gin"))
            for other, cls in (("gin", GIN), ("hgpsl", HGPSL)):
                theirs = [k for k in unknown if other != chosen and k in inspect.signature(cls).parameters]
                hints += [f"{k!r} is an option of encoder={other!r}, not of encoder={chosen!r}" for k in theirs]
        suggested = f" ({'; '.join(hints)})" if hints else ""
        raise ValueError(f"{name} does not take {unknown}{suggested}; it accepts {sorted(accepted)}")
    for option, value in hyperparameters.items():
        parameter = parameters.get(option) or (encoder_parameters or {}).get(option)
        expected = None if parameter is None else _type_mismatch(parameter.annotation, value)
        if expected is not None:
            raise ValueError(f"{option} must be {expected} (got {value!r})")


def non_default_options(name: str, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    r"""``hyperparameters`` without those set to their default (the builder's, or for options
    it hands to its encoder, the encoder's): how a run is identified, so that writing a default
    out (``hidden_channels: 32`` for GraphCL) names the same run as leaving it out. Values
    compare as JSON would hold them (tuples as lists)."""
    parameters, encoder_parameters = _option_parameters(name.lower(), hyperparameters)
    return without_defaults(hyperparameters, encoder_parameters or {}, parameters)  # the builder's win


def without_defaults(options: dict[str, Any], *signatures: Any) -> dict[str, Any]:
    r"""``options`` without those equal to their default among the parameters ``signatures``
    (mappings of name to :class:`inspect.Parameter`; a later one's default wins), compared as
    JSON would hold them (tuples as lists)."""
    import json

    def plain(value: Any) -> Any:
        return json.loads(json.dumps(value, sort_keys=True, default=repr))

    defaults = {option: parameter.default for group in signatures
                for option, parameter in group.items() if parameter.default is not inspect.Parameter.empty}
    return {option: value for option, value in options.items()
            if option not in defaults or plain(value) != plain(defaults[option])}


def check_level(name: str, data: Dataset | Data) -> None:
    r"""Refuses to train a node-level method on a dataset of many graphs (it would train on the
    first graph only) and a graph-level one on a single graph (nothing to contrast or classify).

    Raises:
        ValueError: With the methods of the other level.
    """
    key = name.lower()
    graph_methods = ", ".join(k for k, v in LEVEL.items() if v == "graph")
    node_methods = ", ".join(k for k, v in LEVEL.items() if v == "node")
    if LEVEL[key] == "node" and isinstance(data, Dataset) and len(data) > 1:
        raise ValueError(f"{key} is a node-level method: it trains on one graph, but this dataset holds "
                         f"{len(data)} graphs; use a graph-level method ({graph_methods}) or a node-level "
                         "dataset such as Cora")
    single = (isinstance(data, Dataset) and len(data) == 1) or (isinstance(data, Data) and not isinstance(
        data, Batch))
    if LEVEL[key] == "graph" and single:
        raise ValueError(f"{key} is a graph-level method: it needs a dataset of many graphs, but got one graph "
                         f"(a node-level dataset?); use a node-level method ({node_methods}) for one graph")


def _check_labels(key: str, data: Dataset | Data) -> None:
    r"""Refuses labels a classifier would misread: missing, several per graph (multi-task),
    NaN, non-integer values or negative classes."""
    y = getattr(data, "y", None)
    graphs = len(data) if isinstance(data, Dataset) else int(getattr(data, "num_graphs", 1) or 1)
    if y is None and isinstance(data, Dataset) and len(data):
        y, graphs = getattr(data[0], "y", None), 1  # datasets not in memory: the first graph's label
    if not isinstance(y, Tensor):
        raise ValueError(f"{key} is supervised, but the dataset has no labels (y)")
    if y.dim() > 1 and y.size(-1) != 1:
        raise ValueError(f"{key} classifies one label per graph, but y has {y.size(-1)} columns (a multi-task "
                         "dataset such as ogbg-moltox21?); train one task at a time, e.g. y = y[:, [t]]")
    if y.numel() != graphs:
        raise ValueError(f"{key} classifies one label per graph, but y holds {y.numel()} labels for {graphs} "
                         "graph(s): node labels of a node-level dataset such as Cora?")
    flat = y.reshape(-1)
    if flat.is_floating_point():
        if not bool(torch.isfinite(flat).all()):
            raise ValueError(f"{key}: labels contain NaN or inf (missing labels?); drop those graphs first")
        if not torch.equal(flat, flat.round()):
            raise ValueError(f"{key} classifies, but the labels are not whole numbers (regression targets?)")
    if flat.numel() and int(flat.min()) < 0:
        raise ValueError(f"{key}: class labels must be 0 … C-1 (found {int(flat.min())}); remap them, "
                         "e.g. y = (y + 1) // 2 for labels -1 / 1")
