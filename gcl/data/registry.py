r"""The catalogue of datasets :func:`gcl.data.load_dataset` knows by name.

Each entry records the dataset family (which PyG / OGB class loads it), the
files that must be present for an offline load, where the files come from
online, and the reference sizes used to reject silently truncated data.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

TU_URL = "https://www.chrsmrrs.com/graphkerneldatasets/{name}.zip"
OGB_URL = "http://snap.stanford.edu/ogb/data/graphproppred/csv_mol_download/{download_name}.zip"
PLANETOID_URL = "https://github.com/kimiyoung/planetoid/raw/master/data"


@dataclass(frozen=True)
class DatasetSpec:
    r"""Static description of one named dataset.

    Args:
        name (str): Canonical name, e.g. ``"MUTAG"`` or ``"ogbg-molhiv"``.
        family (str): One of ``"TU"``, ``"OGB"``, ``"Planetoid"``, ``"Amazon"``,
            ``"Coauthor"``, ``"WikiCS"``; also the folder name inside a data root.
        folder (str): Folder of the dataset inside ``<root>/<family>/``.
        files (tuple[str, ...]): Raw files (relative to the dataset folder) that
            an offline load needs.
        url (str): Where the files come from online.
        num_graphs (int): Reference number of graphs (``1`` for node-level sets).
        num_classes (int): Reference number of classes.
        level (str): ``"graph"`` or ``"node"``.
        featureless (bool): The raw files carry no node features.
        aliases (tuple[str, ...]): Other accepted names (matched case-insensitively).
    """

    name: str
    family: str
    folder: str
    files: tuple[str, ...]
    url: str
    num_graphs: int
    num_classes: int
    level: str = "graph"
    featureless: bool = False
    aliases: tuple[str, ...] = field(default_factory=tuple)


def _tu(name: str, graphs: int, classes: int, *, extra: tuple[str, ...] = (),
        featureless: bool = False, aliases: tuple[str, ...] = ()) -> DatasetSpec:
    files = tuple(f"raw/{name}_{part}.txt" for part in ("A", "graph_indicator", "graph_labels", *extra))
    return DatasetSpec(name, "TU", name, files, TU_URL.format(name=name), graphs, classes,
                       featureless=featureless, aliases=aliases)


def _ogb(name: str, graphs: int, tasks: int) -> DatasetSpec:
    folder = name.replace("-", "_")
    files = ("RELEASE_v1.txt", "raw/edge.csv.gz", "raw/node-feat.csv.gz", "raw/edge-feat.csv.gz",
             "raw/graph-label.csv.gz", "raw/num-node-list.csv.gz", "raw/num-edge-list.csv.gz",
             "split/scaffold/train.csv.gz", "split/scaffold/valid.csv.gz", "split/scaffold/test.csv.gz")
    return DatasetSpec(name, "OGB", folder, files,
                       OGB_URL.format(download_name=name.split("-")[1]), graphs, 2 if tasks == 1 else tasks)


def _planetoid(name: str, classes: int) -> DatasetSpec:
    low = name.lower()
    files = tuple(f"raw/ind.{low}.{part}" for part in ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"))
    return DatasetSpec(name, "Planetoid", name, files, PLANETOID_URL, 1, classes, level="node")


SPECS: tuple[DatasetSpec, ...] = (
    _tu("MUTAG", 188, 2, extra=("node_labels", "edge_labels")),
    _tu("PTC_MR", 344, 2, extra=("node_labels", "edge_labels")),
    _tu("PROTEINS", 1113, 2, extra=("node_labels",)),
    _tu("NCI1", 4110, 2, extra=("node_labels",)),
    _tu("NCI109", 4127, 2, extra=("node_labels",)),
    _tu("DD", 1178, 2, extra=("node_labels",)),
    _tu("ENZYMES", 600, 6, extra=("node_labels",)),
    _tu("Mutagenicity", 4337, 2, extra=("node_labels",)),
    _tu("IMDB-BINARY", 1000, 2, featureless=True, aliases=("IMDB-B",)),
    _tu("IMDB-MULTI", 1500, 3, featureless=True, aliases=("IMDB-M",)),
    _tu("COLLAB", 5000, 3, featureless=True),
    _tu("REDDIT-BINARY", 2000, 2, featureless=True, aliases=("RDT-B",)),
    _tu("REDDIT-MULTI-5K", 4999, 5, featureless=True, aliases=("RDT-M5K",)),
    _ogb("ogbg-molhiv", 41127, 1),
    _ogb("ogbg-molbace", 1513, 1),
    _ogb("ogbg-molbbbp", 2039, 1),
    _ogb("ogbg-moltox21", 7831, 12),
    _ogb("ogbg-molclintox", 1477, 2),
    _ogb("ogbg-molsider", 1427, 27),
    _ogb("ogbg-molpcba", 437929, 128),
    _planetoid("Cora", 7),
    _planetoid("CiteSeer", 6),
    _planetoid("PubMed", 3),
    DatasetSpec("Computers", "Amazon", "Computers", ("raw/amazon_electronics_computers.npz",),
                "https://github.com/shchur/gnn-benchmark/raw/master/data/npz/", 1, 10, level="node",
                aliases=("Amazon-Computers", "Am-Computers")),
    DatasetSpec("Photo", "Amazon", "Photo", ("raw/amazon_electronics_photo.npz",),
                "https://github.com/shchur/gnn-benchmark/raw/master/data/npz/", 1, 8, level="node",
                aliases=("Amazon-Photo", "Am-Photo")),
    DatasetSpec("CS", "Coauthor", "CS", ("raw/ms_academic_cs.npz",),
                "https://github.com/shchur/gnn-benchmark/raw/master/data/npz/", 1, 15, level="node",
                aliases=("Coauthor-CS", "Co-CS")),
    DatasetSpec("Physics", "Coauthor", "Physics", ("raw/ms_academic_phy.npz",),
                "https://github.com/shchur/gnn-benchmark/raw/master/data/npz/", 1, 5, level="node",
                aliases=("Coauthor-Physics", "Co-Physics")),
    DatasetSpec("WikiCS", "WikiCS", ".", ("raw/data.json",),
                "https://github.com/pmernyei/wiki-cs-dataset/raw/master/dataset", 1, 10, level="node",
                aliases=("Wiki-CS",)),
)

_BY_NAME: dict[str, DatasetSpec] = {}
for _spec in SPECS:
    for _key in (_spec.name, *_spec.aliases):
        _BY_NAME[_key.lower()] = _spec


def known_datasets() -> list[str]:
    r"""Return the canonical names of every dataset :func:`load_dataset` resolves."""
    return [spec.name for spec in SPECS]


def get_spec(name: str) -> DatasetSpec:
    r"""Look up a dataset by name or alias (case-insensitive).

    Raises:
        ValueError: If the name is unknown; the message lists the known names and
            suggests the closest one.
    """
    spec = _BY_NAME.get(name.lower())
    if spec is None:
        close = difflib.get_close_matches(name.lower(), list(_BY_NAME), n=1, cutoff=0.5)
        hint = f" Did you mean {_BY_NAME[close[0]].name!r}?" if close else ""
        raise ValueError(
            f"Unknown dataset {name!r}.{hint} Known datasets: {', '.join(known_datasets())}."
        )
    return spec
