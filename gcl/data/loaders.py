r"""The one entry point for datasets: :func:`load_dataset`."""

from __future__ import annotations

import contextlib
import copy
import inspect
import numbers
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import InMemoryDataset

from gcl.data.features import add_fallback_features, resolve_mode
from gcl.data.locks import held_lock
from gcl.data.mapped import MappedDataset, is_intact, record_checksum, save_mapped
from gcl.data.registry import DatasetSpec, get_spec
from gcl.data.roots import (
    CorruptDatasetError,
    DatasetNotFoundError,
    cache_dir,
    candidate_folders,
    layout_folders,
    locate,
    mirror,
    missing_files,
    move_into_place,
    own_folder,
    search_roots,
    staging,
    unpack,
)

_SAFE_GLOBALS_DONE = False


def register_safe_globals() -> None:
    r"""Allow ``torch.load(weights_only=True)`` to read PyG storage classes.

    ``ogb`` 1.3.6 loads its processed cache with a bare ``torch.load``; since
    torch 2.6 that refuses PyG's ``Data`` storage classes unless they are
    registered as safe globals. Registering them is harmless otherwise.
    """
    global _SAFE_GLOBALS_DONE
    if _SAFE_GLOBALS_DONE:
        return
    import torch
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage

    if hasattr(torch.serialization, "add_safe_globals"):
        torch.serialization.add_safe_globals([DataEdgeAttr, DataTensorAttr, GlobalStorage])
    _SAFE_GLOBALS_DONE = True


def _read_table(path: Path, **options: Any) -> pd.DataFrame:
    r"""The comma-separated rows of ``path``, one per line (blank lines too, as empty rows)."""
    try:
        return pd.read_csv(path, sep=",", header=None, skipinitialspace=True, skip_blank_lines=False,
                           na_filter=False, **options)
    except ValueError as exc:  # pandas' parser and decoding errors are ValueErrors
        raise CorruptDatasetError(f"Cannot parse {path}: {exc}") from exc


_INTEGER = r"[+-]?\d{1,18}"  # (int64 holds every integer of 18 digits)
_NOT_A_NUMBER = r"[+-]?(?:nan|inf|infinity)"  # what Python's float() reads beside decimals


def _read_numbers(path: Path, columns: int | None, integers: bool) -> np.ndarray:
    r"""The values of the first ``columns`` columns of ``path`` (all for ``None``): integers, or
    floating-point numbers (``nan`` and ``inf`` included, which later checks name), as PyG's TU
    reader parses them.

    Files of numbers alone are parsed by pandas' C reader into numeric columns at once; only a
    file that has something else is read again as text, to find the first line at fault.

    Raises:
        CorruptDatasetError: Naming the file and the first line that is not ``columns`` such
            numbers (an empty line too), or the file when it does not parse at all.
    """
    frame = _read_table(path)
    if columns is not None and frame.shape[1] < columns:
        raise CorruptDatasetError(f"{path} has {frame.shape[1]} column(s), expected {columns}.")
    selected = frame if columns is None else frame.iloc[:, :columns]
    if all(dtype.kind in ("i" if integers else "iuf") for dtype in selected.dtypes):  # (text has kind "O")
        return selected.to_numpy(dtype=np.int64 if integers else np.float64)
    # something else than numbers (or, for integers, a number with a point or an exponent, of which a
    # float column keeps no trace, or one past int64): read as text again to find its line
    text = _read_table(path, dtype=str).iloc[:, :selected.shape[1]]
    fields = [column.str.strip() for _, column in text.items()]
    good = np.ones(len(text), dtype=bool)
    for field in fields:
        if integers:
            good &= field.str.fullmatch(_INTEGER).to_numpy(dtype=bool, na_value=False)
        else:
            good &= (pd.to_numeric(field, errors="coerce").notna().to_numpy()
                     | field.str.fullmatch(_NOT_A_NUMBER, case=False).to_numpy(dtype=bool, na_value=False))
    if not good.all():
        row = int(np.flatnonzero(~good)[0])
        values = [str(field.iloc[row]) for field in fields]
        got = "an empty line" if not any(values) else repr(", ".join(values))
        what = f"{len(fields)} {'integer' if integers else 'number'}(s)"
        raise CorruptDatasetError(f"{path}, line {row + 1}: expected {what}, got {got}.")
    try:  # as PyG's reader converts them: Python's int() and float()
        return np.stack([np.asarray(field, dtype=object).astype(np.int64 if integers else np.float64)
                         for field in fields], axis=1)
    except (ValueError, OverflowError) as exc:
        raise CorruptDatasetError(f"Cannot parse {path}: {exc}") from exc


def _read_ints(path: Path, columns: int | None) -> np.ndarray:
    r"""The integers of the first ``columns`` columns of ``path`` (:func:`_read_numbers`)."""
    return _read_numbers(path, columns, integers=True)


def check_tu_raw(folder: Path, name: str) -> None:
    r"""Check that a TU raw folder is structurally sound before PyG processes it.

    Raises:
        CorruptDatasetError: Naming the offending file (and line) when a file
            does not parse or holds a value that is not an integer (a float for
            attribute files), the graph indicator lists a graph's nodes after a
            later graph's, node indices in ``NAME_A.txt`` fall outside the node
            range, or the label count disagrees with the graph indicator.
    """
    raw = folder / "raw"
    indicator_path = raw / f"{name}_graph_indicator.txt"
    indicator = _read_ints(indicator_path, 1)[:, 0]
    edges = _read_ints(raw / f"{name}_A.txt", 2)
    labels = _read_ints(raw / f"{name}_graph_labels.txt", 1)
    num_nodes, num_graphs = indicator.size, int(indicator.max()) if indicator.size else 0
    if num_nodes == 0:
        raise CorruptDatasetError(f"{indicator_path} lists no nodes.")
    # PyG cuts the nodes into graphs by counting them: each graph's nodes must come together, in order
    backwards = np.flatnonzero(indicator[1:] < indicator[:-1])
    if backwards.size:
        line = int(backwards[0]) + 2  # the line of node `line`
        raise CorruptDatasetError(
            f"{indicator_path}, line {line}: node {line} belongs to graph {int(indicator[line - 1])}, listed "
            f"after a node of graph {int(indicator[line - 2])}; the nodes must be listed graph by graph, "
            "graphs in increasing order."
        )
    if edges.size and (edges.min() < 1 or edges.max() > num_nodes):
        bad = edges.min() if edges.min() < 1 else edges.max()
        line = int(np.flatnonzero((edges == bad).any(axis=1))[0]) + 1
        raise CorruptDatasetError(
            f"{raw / f'{name}_A.txt'}, line {line}: node {int(bad)} is outside 1..{num_nodes}, the "
            f"nodes {name}_graph_indicator.txt lists (indices are 1-based)."
        )
    if labels.shape[0] != num_graphs:
        raise CorruptDatasetError(
            f"{raw / f'{name}_graph_labels.txt'} has {labels.shape[0]} labels but "
            f"{name}_graph_indicator.txt describes {num_graphs} graphs."
        )
    # one row of integers (labels) or numbers (attributes) per node / per edge in the optional files
    for suffix, integers, rows, of in (
            ("node_labels", True, num_nodes, f"{name}_graph_indicator.txt lists nodes"),
            ("node_attributes", False, num_nodes, f"{name}_graph_indicator.txt lists nodes"),
            ("edge_labels", True, edges.shape[0], f"{name}_A.txt lists edges"),
            ("edge_attributes", False, edges.shape[0], f"{name}_A.txt lists edges")):
        path = raw / f"{name}_{suffix}.txt"
        if path.is_file() and (count := _read_numbers(path, None, integers).shape[0]) != rows:
            raise CorruptDatasetError(f"{path} has {count} rows but {of.replace('lists', f'lists {rows}')}.")


def check_loaded(dataset: InMemoryDataset, name: str, source: Path) -> None:
    r"""Checks a freshly built dataset: every graph's edges point at its own feature rows (or
    nodes), the feature rows are those of the graphs, and the features are finite; a dataset of
    one graph (node level) has its edges checked against its nodes.

    Raises:
        CorruptDatasetError: Naming the first graph found at fault.
    """
    import torch

    store, slices = dataset._data, getattr(dataset, "slices", None) or {}
    x = store.x
    if x is not None and x.is_floating_point() and not bool(torch.isfinite(x).all()):
        row = int((~torch.isfinite(x)).any(dim=-1).nonzero()[0]) if x.dim() > 1 else int(
            (~torch.isfinite(x)).nonzero()[0])
        raise CorruptDatasetError(f"{name} from {source}: node features contain NaN or inf (first at row {row}).")
    if not slices:  # one graph (the node-level sets), which PyG keeps without slices
        _check_single_graph(store, name, source)
        return
    if "edge_index" not in slices or store.edge_index is None:
        return
    e_slices = slices["edge_index"]
    if x is not None and "x" in slices:
        x_slices = slices["x"]
        if int(x_slices[-1]) != x.size(0):
            raise CorruptDatasetError(f"{name} from {source}: {x.size(0)} feature rows for "
                                      f"{int(x_slices[-1])} nodes (a node-feature file of the wrong length?).")
        sizes, rows = x_slices.diff(), "feature rows"
    elif x is None and isinstance(getattr(store, "_num_nodes", None), list):
        # featureless graphs (IMDB, COLLAB, REDDIT): PyG keeps each graph's node count
        sizes, rows = torch.tensor(store._num_nodes, dtype=torch.long), "nodes"
    else:
        return
    num_graphs = sizes.numel()
    if store.edge_index.numel() and num_graphs > 0 and e_slices.numel() == num_graphs + 1:
        edge_graph = torch.repeat_interleave(torch.arange(num_graphs), e_slices.diff())
        highest = torch.full((num_graphs,), -1, dtype=torch.long).scatter_reduce(
            0, edge_graph, store.edge_index.max(dim=0).values, reduce="amax")
        lowest = torch.zeros(num_graphs, dtype=torch.long).scatter_reduce(
            0, edge_graph, store.edge_index.min(dim=0).values, reduce="amin")
        bad = ((highest >= sizes) | (lowest < 0)).nonzero()
        if bad.numel():
            graph = int(bad[0])
            if int(lowest[graph]) < 0:  # an edge into an earlier graph of the raw files
                raise CorruptDatasetError(
                    f"{name} from {source}: graph {graph} has an edge to a node of an earlier graph "
                    f"({int(lowest[graph])} nodes before its first) (an edge file that joins two graphs?).")
            raise CorruptDatasetError(
                f"{name} from {source}: graph {graph} has edges up to node {int(highest[graph])} but "
                f"{int(sizes[graph])} {rows} (a node-feature file of the wrong length, or an edge file that "
                "joins two graphs?).")


def _check_single_graph(graph: Any, name: str, source: Path) -> None:
    r"""Checks that the edges of a dataset of one graph join its nodes (its feature rows; without
    features PyG reads the node count from the edges themselves, which they then cannot miss).

    Raises:
        CorruptDatasetError: Naming the index out of range and the number of nodes.
    """
    edge_index = graph.edge_index
    if edge_index is None or edge_index.numel() == 0:
        return
    if graph.x is None:
        return
    num_nodes = graph.x.size(0)
    highest, lowest = int(edge_index.max()), int(edge_index.min())
    if lowest < 0:
        raise CorruptDatasetError(f"{name} from {source}: an edge has the negative node index {lowest} "
                                  f"(the graph has {num_nodes} feature rows).")
    if highest >= num_nodes:
        raise CorruptDatasetError(f"{name} from {source}: edges reach node {highest}, but the graph has "
                                  f"{num_nodes} feature rows (nodes 0..{num_nodes - 1}; a graph file that names "
                                  "nodes the feature files lack?).")


def _offline() -> bool:
    return os.environ.get("GCL_OFFLINE", "").lower() not in ("", "0", "false", "no")


def _not_found(spec: DatasetSpec, roots: list[Path], reason: str) -> DatasetNotFoundError:
    searched = "\n".join(f"  - {folder}" for root in roots for folder in candidate_folders(spec, root))
    files = ", ".join(spec.files)
    return DatasetNotFoundError(
        f"Dataset {spec.name!r} not found ({reason}).\n"
        f"Expected the files [{files}] in one of:\n{searched}\n"
        f"Get them from {spec.url} and place them under <root>/{spec.family}/{spec.folder}/, "
        f"or point GCL_DATA at a root holding them."
    )


def _construct(spec: DatasetSpec, root: Path, use_node_attr: bool, transform: Callable[..., Any] | None
               ) -> InMemoryDataset:
    from torch_geometric import datasets as pyg

    if spec.family == "TU":
        return pyg.TUDataset(str(root), spec.name, transform=transform, use_node_attr=use_node_attr)
    if spec.family == "OGB":
        register_safe_globals()
        from ogb.graphproppred import PygGraphPropPredDataset

        return PygGraphPropPredDataset(name=spec.name, root=str(root), transform=transform)
    if spec.family == "Planetoid":
        return pyg.Planetoid(str(root), spec.name, transform=transform)
    if spec.family == "Amazon":
        return pyg.Amazon(str(root), spec.name, transform=transform)
    if spec.family == "Coauthor":
        return pyg.Coauthor(str(root), spec.name, transform=transform)
    if spec.family == "WikiCS":
        return pyg.WikiCS(str(root), transform=transform, is_undirected=True)
    raise ValueError(f"Unsupported dataset family {spec.family!r}")


#: Written into a processed cache once a load of it has passed :func:`check_loaded`.
CHECKED_MARKER = ".gcl-checked"

def _check_once(dataset: InMemoryDataset, name: str, source: Path, marker: Path) -> None:
    r""":func:`check_loaded` until a load of the processed cache ``marker.parent`` has passed it
    (then ``marker`` is written); a cache that fails is removed, so that the next load checks again."""
    if marker.is_file():
        return
    try:
        check_loaded(dataset, name, source)
    except CorruptDatasetError:
        shutil.rmtree(marker.parent, ignore_errors=True)
        raise
    if marker.parent.is_dir():
        marker.touch()


#: :func:`load_dataset` options that change how the data is held or found, not what it is: runs and
#: benchmark scores that differ only in them are the same (resumes, result fingerprints).
STORAGE_OPTIONS = frozenset({"mmap", "root", "download"})


def load_dataset(
    name: str,
    root: str | os.PathLike[str] | None = None,
    *,
    node_features: str = "auto",
    max_degree: int | None = None,
    use_node_attr: bool = False,
    normalize_features: bool = False,
    transform: Callable[..., Any] | None = None,
    download: bool | None = None,
    mmap: bool = False,
) -> InMemoryDataset:
    r"""Load a graph- or node-level benchmark dataset by name, offline first.

    TU datasets load through PyG's :class:`~torch_geometric.datasets.TUDataset`,
    ``ogbg-mol*`` through :class:`ogb.graphproppred.PygGraphPropPredDataset`,
    node-level sets through PyG's Planetoid / Amazon / Coauthor / WikiCS classes.
    Raw files are searched in ``root`` → ``$GCL_DATA`` → the repository's
    ``datasets/`` → the user cache (see :mod:`gcl.data.roots`); processed caches
    are always written to the user cache, never next to the raw files.

    Args:
        name (str): Dataset name or alias, case-insensitive (``"MUTAG"``,
            ``"IMDB-B"``, ``"ogbg-molhiv"``, ``"Cora"`` ...).
        root (str or PathLike, optional): A data root searched first.
        node_features (str): Fallback for featureless graphs: ``"auto"``
            (GIN convention: constant for REDDIT, one-hot degree otherwise),
            ``"degree"`` or ``"constant"``. Ignored when graphs have features.
            (default: :obj:`"auto"`)
        max_degree (int, optional): Cap of the one-hot degree features; larger
            degrees share the last bucket. ``None`` uses the dataset's maximum.
        use_node_attr (bool): TU only: append continuous node attributes to
            the node-label one-hot. (default: :obj:`False`)
        normalize_features (bool): Row-normalise the node features once, with
            PyG's :class:`~torch_geometric.transforms.NormalizeFeatures` (each
            row sums to 1), as GRACE's, GCA's and Graph Barlow Twins' code load
            the node-level sets. (default: :obj:`False`)
        transform (callable, optional): Per-access PyG transform.
        download (bool, optional): Try the normal PyG / OGB download when the
            files are found nowhere (into the cache, through a temporary folder:
            a failed download leaves nothing behind). ``None`` downloads unless
            ``$GCL_OFFLINE`` is set. (default: :obj:`None`)
        mmap (bool): Return a :class:`~gcl.data.MappedDataset`: the collated
            storage (with the options above applied) is written once to a file
            in the processed cache, and every load maps that file instead of
            reading it, so processes of one machine share one copy and data
            larger than memory pages in as batches need it. The first load
            processes the dataset in memory as usual. (default: :obj:`False`)

    Returns:
        InMemoryDataset: The dataset; ``dataset.source`` names the folder the
        raw files came from.

    Raises:
        ValueError: Unknown name (the message lists known names and the closest).
        DatasetNotFoundError: Files missing offline; names the files expected and
            the folders searched.
        CorruptDatasetError: A raw or packed file cannot be read; names the file.

    Example:
        >>> ds = load_dataset("MUTAG")
        >>> len(ds), ds.num_features
        (188, 7)
    """
    dataset = _load(name, root, node_features, max_degree, use_node_attr, normalize_features, transform,
                    download, mmap)
    return _fallback_used(dataset, node_features, max_degree)


def _load(name: str, root: str | os.PathLike[str] | None, node_features: str, max_degree: int | None,
          use_node_attr: bool, normalize_features: bool, transform: Callable[..., Any] | None,
          download: bool | None, mmap: bool) -> Any:
    r""":func:`load_dataset` without its warning about fallback options that nothing used."""
    spec = get_spec(name)
    resolve_mode(node_features, spec.name)  # a misspelt mode is named even where graphs have features
    if max_degree is not None and (isinstance(max_degree, bool) or not isinstance(max_degree, numbers.Integral)
                                   or max_degree < 0):
        raise ValueError(f"max_degree must be a non-negative integer or None (got {max_degree!r})")
    if root is not None and not Path(root).expanduser().is_dir():
        raise DatasetNotFoundError(f"root {root} is not a folder: pass the folder that holds "
                                   f"{spec.family}/{spec.folder}/ (or leave root out to search $GCL_DATA, the "
                                   "shipped datasets/ and the cache)")
    roots = search_roots(root)
    if root is not None and locate(spec, roots[:1]) is None:
        # the caller's own copy: an incomplete one is an error, not a reason to look elsewhere
        layout = layout_folders(spec, roots[0])
        for folder in candidate_folders(spec, roots[0]):
            missing = missing_files(spec, folder)
            if (folder / "raw").is_dir() and missing:
                raise DatasetNotFoundError(f"{folder} holds {spec.name} without {', '.join(missing)}.")
            misplaced = [f for f in missing if (folder / Path(f).name).is_file()]
            if misplaced:
                raise DatasetNotFoundError(f"{folder} holds {', '.join(Path(f).name for f in misplaced)} "
                                           f"directly; {spec.name}'s files belong in {folder / 'raw'}/ "
                                           f"({', '.join(spec.files)}).")
            if folder in layout and folder.is_dir():  # the copy by the layout, even without raw/ (empty)
                raise DatasetNotFoundError(f"{folder} holds {spec.name} without {', '.join(missing)}.")
        own = own_folder(spec, roots[0])
        if own is not None:  # named as the dataset's folder (or its raw/), without its files
            raise DatasetNotFoundError(f"root {root} is {spec.name}'s folder by its name, but {own} lacks "
                                       f"{', '.join(missing_files(spec, own))}: place {spec.name}'s files "
                                       f"there, or pass the data root that holds {spec.family}/{spec.folder}/.")
    found = locate(spec, roots)
    mapped_file: Path | None = None
    if found is None:
        if download is False or (download is None and _offline()):
            raise _not_found(spec, roots, "offline")
        download_root = cache_dir() / "download" / spec.family
        if mmap:
            mapped_file = _mapped_file(download_root / spec.folder / "processed", node_features, max_degree,
                                       normalize_features, use_node_attr)
            mapped = _open_mapped(mapped_file, transform, download_root / spec.folder, spec)
            if mapped is not None:
                return mapped
        source = download_root / spec.folder
        # beside the folder, not in it (WikiCS's folder is download_root itself)
        with held_lock(download_root.parent / f".{spec.family}-{spec.name}.lock"):
            if missing_files(spec, source):  # (another process may have downloaded it while this one waited)
                _download(spec, download_root, use_node_attr, roots)
            try:
                dataset = _construct(spec, download_root, use_node_attr, transform)
            except (CorruptDatasetError, DatasetNotFoundError):
                raise
            except Exception as exc:  # the files are all there: what they hold cannot be read
                raise CorruptDatasetError(f"Cannot load {spec.name} from {source}: {type(exc).__name__}: "
                                          f"{exc}") from exc
            # one processed cache serves both use_node_attr settings here (a local copy has one each)
            _check_once(dataset, spec.name, source,
                        Path(dataset.processed_dir) / f"{CHECKED_MARKER}-attr{int(use_node_attr)}")
    else:
        source = unpack(spec, found.archive) if found.archive is not None else found.folder
        tag = f"attr{int(use_node_attr)}"
        mirror_root = mirror(spec, source, tag)
        processed = mirror_root / spec.folder / "processed"
        if mmap:
            mapped_file = _mapped_file(processed, node_features, max_degree, normalize_features, use_node_attr)
            mapped = _open_mapped(mapped_file, transform, source, spec)
            if mapped is not None:
                return mapped
        # one process builds the processed cache while the others wait, then read it
        with held_lock(mirror_root / ".build.lock"):
            # checked until a load has passed the checks: PyG creates processed/ before it processes, so
            # an interrupted processing leaves the folder without a complete, checked cache
            checked = processed / CHECKED_MARKER

            def construct() -> InMemoryDataset:
                if spec.family == "TU" and not checked.is_file():
                    check_tu_raw(source, spec.name)
                # whether PyG processes the raw files now (no cache file yet) or reads a cache
                processing = not processed.is_dir() or not any(processed.iterdir())
                try:
                    return _construct(spec, mirror_root, use_node_attr, transform)
                except (CorruptDatasetError, DatasetNotFoundError):
                    raise
                except Exception as exc:
                    if processing:
                        raise CorruptDatasetError(f"Cannot load {spec.name} from {source}: "
                                                  f"{type(exc).__name__}: {exc}") from exc
                    # the processed cache is unreadable (a processing interrupted while writing it):
                    # process the raw files again, once
                    warnings.warn(f"{spec.name}: the processed cache {processed} could not be read ({exc}); "
                                  "processing the raw files again", stacklevel=4)
                    shutil.rmtree(processed, ignore_errors=True)
                    raise _Rebuild() from exc

            try:
                dataset = construct()
            except _Rebuild:  # (which removed the cache and its marker: checked as new)
                dataset = construct()
            _check_once(dataset, spec.name, source, checked)

    if len(dataset) == 0:
        raise CorruptDatasetError(f"{spec.name} from {source} loaded with no graphs.")
    if spec.level == "graph" and len(dataset) != spec.num_graphs:
        warnings.warn(f"{spec.name} from {source} has {len(dataset)} graphs; the reference release has "
                      f"{spec.num_graphs}.", stacklevel=3)
    if spec.featureless or dataset._data.x is None:
        mode = resolve_mode(node_features, spec.name)
        used = add_fallback_features(dataset, mode, max_degree)
        dataset.node_feature_fallback = (mode, used)
    if normalize_features:
        _normalize_features(dataset, spec.name)
    dataset.source = source
    dataset.spec = spec
    if mapped_file is not None:
        # one process writes the file and its record at a time; one that waited maps what the
        # other wrote
        with held_lock(mapped_file.with_name(f".{mapped_file.name}.lock")):
            mapped = _open_mapped(mapped_file, transform, source, spec)
            if mapped is None:
                save_mapped(dataset, mapped_file)
                mapped = _open_mapped(mapped_file, transform, source, spec)
        assert mapped is not None
        return mapped
    return dataset


def _download(spec: DatasetSpec, download_root: Path, use_node_attr: bool, roots: list[Path]) -> None:
    r"""Downloads ``spec`` with PyG / OGB into ``download_root / spec.folder`` through a temporary
    folder beside ``download_root``: the download and its first processing run there, and the
    dataset folder is moved into place once they succeeded. A download that fails, or a process
    killed while downloading, thus never leaves a partial dataset folder (OGB takes a folder
    without its ``RELEASE_v1.txt`` for an outdated release and asks on the terminal whether to
    update it); one that an older version left is removed first. Called under the dataset's
    download lock.

    Raises:
        DatasetNotFoundError: The download failed (no network, a server error ...), or what it
            fetched lacks files ``spec`` needs.
    """
    folder, parent = download_root / spec.folder, download_root.parent
    if folder.exists():  # incomplete (the caller found files missing): never handed to PyG / OGB
        shutil.rmtree(folder)
    prefix = f".{spec.family}-{spec.name}.partial-"
    for stale in parent.glob(f"{prefix}*"):  # left by a killed process (this one holds the lock)
        shutil.rmtree(stale, ignore_errors=True)
    with staging(parent, prefix) as tmp:
        staged = tmp / spec.family / spec.folder
        try:
            _construct(spec, tmp / spec.family, use_node_attr, None)
        except Exception as exc:  # any network or parse failure means "not available"
            raise _not_found(spec, roots, f"download failed: {exc}") from exc
        missing = missing_files(spec, staged)
        if missing:
            raise _not_found(spec, roots, f"the download lacks {', '.join(missing)}")
        move_into_place(staged, folder)


def _fallback_used(dataset: Any, node_features: str, max_degree: int | None) -> Any:
    r"""``dataset``, with a warning when ``node_features`` or ``max_degree`` was asked for but
    nothing used it: the graphs have features of their own (so no fallback was added), or the
    fallback is not the one-hot degree that ``max_degree`` caps."""
    fallback = getattr(dataset, "node_feature_fallback", None)
    name = getattr(getattr(dataset, "spec", None), "name", "the dataset")
    if node_features != "auto" and fallback is None:
        warnings.warn(f"{name} has node features: node_features={node_features!r} (a fallback for "
                      "featureless graphs) is ignored", stacklevel=3)
    if max_degree is not None and (fallback is None or fallback[0] != "degree"):
        why = "has node features" if fallback is None else f"gets {fallback[0]!r} fallback features"
        warnings.warn(f"{name} {why}: max_degree={max_degree} (the cap of one-hot degree features) is "
                      "ignored", stacklevel=3)
    return dataset


class _Rebuild(Exception):
    r"""The processed cache was unreadable and is removed: process the raw files again."""


def _mapped_file(processed: Path, node_features: str, max_degree: int | None, normalize_features: bool,
                 use_node_attr: bool) -> Path:
    r"""Where ``load_dataset(mmap=True)`` keeps the mapped storage of these options
    (in the processed cache, which a change of the raw files replaces)."""
    options = f"{node_features}-{max_degree}-{int(normalize_features)}-{int(use_node_attr)}"
    return processed / f"gcl-mapped-{options}.pt"


def identifying_options(options: dict[str, Any]) -> dict[str, Any]:
    r"""The ``load_dataset`` options that tell one run's data from another's: without how the
    data is held or found (:data:`STORAGE_OPTIONS`) and without those written out at their
    defaults (``node_features: auto`` loads what leaving it out loads)."""
    from gcl.methods.registry import without_defaults

    return without_defaults({k: v for k, v in options.items() if k not in STORAGE_OPTIONS},
                            inspect.signature(load_dataset).parameters)


def _open_mapped(path: Path, transform: Callable[..., Any] | None, source: Path, spec: DatasetSpec
                 ) -> InMemoryDataset | None:
    r"""The mapped dataset at ``path``, or ``None`` when there is none (or one of an
    older format, or one whose bytes changed since it was written: the caller then writes it
    again)."""
    if not path.is_file():
        return None
    intact = is_intact(path)
    if intact is None:  # written by an older version: taken as it is, and recorded from now on
        with contextlib.suppress(OSError):
            record_checksum(path)
    elif not intact and os.access(path.parent, os.W_OK):
        return None  # written again by the caller (a read-only cache is mapped as it is, with a warning)
    try:
        dataset = MappedDataset(path, transform)
    except (FileNotFoundError, ValueError):
        return None
    dataset.source = source
    dataset.spec = spec
    return dataset


def _normalize_features(dataset: InMemoryDataset, name: str) -> None:
    r"""Row-normalises the collated node features of ``dataset`` in one pass, with the
    values PyG's per-access :class:`~torch_geometric.transforms.NormalizeFeatures`
    gives every graph: each graph's features shifted by that graph's minimum, then
    every row divided by its sum (at least 1)."""
    store = dataset._data
    if store.x is None or not store.x.is_floating_point():
        dtype = None if store.x is None else store.x.dtype
        raise ValueError(f"normalize_features needs floating-point node features; {name} has {dtype}")
    x = store.x
    if x.numel() == 0:
        return
    ptr = dataset.slices["x"] if dataset.slices is not None and "x" in dataset.slices else torch.tensor([0, len(x)])
    graph = torch.repeat_interleave(torch.arange(len(ptr) - 1), ptr.diff(), output_size=len(x))
    minima = torch.full((len(ptr) - 1,), float("inf"), dtype=x.dtype)
    minima = minima.scatter_reduce(0, graph, x.amin(dim=1), "amin")
    shifted = x - minima[graph].unsqueeze(1)
    if not bool(shifted.any()):
        warnings.warn(f"normalize_features: {name}'s node features are constant within every graph, and "
                      "shifting them by the minimum (as NormalizeFeatures does) leaves zeros; load it without "
                      "normalize_features", stacklevel=4)
    shifted.div_(shifted.sum(dim=-1, keepdim=True).clamp_(min=1.0))
    normalized = copy.copy(store)
    normalized.x = shifted
    dataset._data = normalized
    dataset._data_list = None  # cached per-graph copies would hold the old features
