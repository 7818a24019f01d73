from __future__ import annotations

import io
import lzma
import re
import shutil
import stat
import tarfile
import warnings
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
import torch
from torch_geometric.utils import to_networkx

from gcl.data import (
    CorruptDatasetError,
    DatasetNotFoundError,
    get_spec,
    known_datasets,
    load_dataset,
    search_roots,
)
from gcl.data.features import one_hot_degree, resolve_mode
from gcl.data.roots import REPO_DATASETS

SHIPPED = {"MUTAG": (188, 7, 2), "PTC_MR": (344, 18, 2), "PROTEINS": (1113, 3, 2), "IMDB-BINARY": (1000, None, 2)}


def edit_line(path: Path, index: int, text: str) -> None:
    """Replace line ``index`` (from 0) of a raw text file."""
    lines = path.read_text().splitlines()
    lines[index] = text
    path.write_text("\n".join(lines) + "\n")


def copy_tu(name: str, root: Path) -> Path:
    """Copy a shipped raw TU dataset (plain or packed) into ``root/TU/name``."""
    src = REPO_DATASETS / "TU" / name
    dest = root / "TU" / name
    shutil.copytree(src, dest)
    return dest


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_datasets_load_offline(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GCL_DATA", raising=False)
    ds = load_dataset(name)
    graphs, features, classes = SHIPPED[name]
    assert len(ds) == graphs
    assert ds.num_classes == classes
    assert ds[0].x is not None and ds[0].x.dtype == torch.float32
    if features is not None:
        assert ds.num_features == features
    assert Path(ds.source).resolve().is_relative_to(REPO_DATASETS) or "unpacked" in str(ds.source)


def test_explicit_root_beats_env_beats_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit, env = tmp_path / "explicit", tmp_path / "env"
    copy_tu("MUTAG", explicit)
    copy_tu("MUTAG", env)
    monkeypatch.setenv("GCL_DATA", str(env))
    assert load_dataset("MUTAG", root=explicit).source == (explicit / "TU" / "MUTAG").resolve()
    assert load_dataset("MUTAG").source == (env / "TU" / "MUTAG").resolve()
    monkeypatch.delenv("GCL_DATA")
    assert load_dataset("MUTAG").source == (REPO_DATASETS / "TU" / "MUTAG").resolve()
    roots = search_roots(explicit)
    assert roots[0] == explicit.resolve() and roots[1] == REPO_DATASETS.resolve()
    assert roots[-1].name == "download"


def test_root_may_point_at_family_folder(tmp_path: Path) -> None:
    copy_tu("PTC_MR", tmp_path)
    ds = load_dataset("PTC_MR", root=tmp_path / "TU")
    assert ds.source == (tmp_path / "TU" / "PTC_MR").resolve()


@pytest.mark.parametrize("inside", ["", "raw"], ids=["dataset-folder", "raw-folder"])
def test_root_may_be_the_dataset_folder_itself(inside: str, tmp_path: Path) -> None:
    folder = copy_tu("MUTAG", tmp_path)
    labels = folder / "raw" / "MUTAG_graph_labels.txt"
    labels.write_text("1\n" * 188)  # this copy differs from the shipped one: every graph of one class
    ds = load_dataset("MUTAG", root=folder / inside)
    assert ds.source == folder.resolve()
    assert ds._data.y.unique().numel() == 1


@pytest.mark.parametrize("inside", ["", "raw"], ids=["dataset-folder", "raw-folder"])
@pytest.mark.parametrize("named", ["link", "target"])
def test_root_may_be_a_link_to_the_dataset_folder(named: str, inside: str, tmp_path: Path) -> None:
    folder = copy_tu("MUTAG", tmp_path / "copy")
    (folder / "raw" / "MUTAG_graph_labels.txt").write_text("1\n" * 188)  # unlike the shipped copy
    if named == "link":  # a link of the dataset's name to a folder of another name
        folder = folder.rename(tmp_path / "mutag-2026")
        link = tmp_path / "data" / "MUTAG"
        link.parent.mkdir()
    else:  # a link of another name to the dataset's folder
        link = tmp_path / "my-mutag"
    link.symlink_to(folder, target_is_directory=True)
    ds = load_dataset("MUTAG", root=link / inside)
    assert ds.source == folder.resolve()
    assert ds._data.y.unique().numel() == 1


def test_a_dataset_folder_given_as_root_without_its_files_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "TU" / "MUTAG"
    empty.mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match=r"MUTAG's folder by its name, but .* lacks raw/MUTAG_A\.txt"):
        load_dataset("MUTAG", root=empty)
    folder = copy_tu("MUTAG", tmp_path / "copy")
    (folder / "raw" / "MUTAG_node_labels.txt").unlink()
    for root in (folder, folder / "raw"):
        with pytest.raises(DatasetNotFoundError, match=r"holds MUTAG without raw/MUTAG_node_labels\.txt"):
            load_dataset("MUTAG", root=root)


def test_raw_root_is_never_written(tmp_path: Path) -> None:
    folder = copy_tu("MUTAG", tmp_path)
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        ds = load_dataset("MUTAG", root=tmp_path)
        assert len(ds) == 188
        assert sorted(p.name for p in folder.iterdir()) == ["raw"]
    finally:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_unknown_name_suggests_closest() -> None:
    with pytest.raises(ValueError, match=r"Did you mean 'PROTEINS'\?.*Known datasets: MUTAG"):
        load_dataset("PROTEIN")
    assert "ogbg-molhiv" in known_datasets()
    assert get_spec("imdb-b").name == "IMDB-BINARY"


def test_missing_dataset_offline_names_files_and_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GCL_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("ENZYMES", root=tmp_path, download=False)
    message = str(info.value)
    assert "ENZYMES_A.txt" in message and "ENZYMES_graph_indicator.txt" in message
    assert str(tmp_path / "TU" / "ENZYMES") in message
    assert str(REPO_DATASETS / "TU" / "ENZYMES") in message
    assert "chrsmrrs" in message


def test_gcl_offline_env_disables_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCL_OFFLINE", "1")
    with pytest.raises(DatasetNotFoundError, match="offline"):
        load_dataset("Computers", root=tmp_path)


def test_corrupt_raw_file_is_named(tmp_path: Path) -> None:
    folder = copy_tu("MUTAG", tmp_path)
    edit_line(folder / "raw" / "MUTAG_A.txt", 4, "2, banana")
    with pytest.raises(CorruptDatasetError, match=r"MUTAG_A\.txt, line 5"):
        load_dataset("MUTAG", root=tmp_path)


@pytest.mark.parametrize(("file", "index", "text", "message"), [
    ("A", 3, "1.7, 2", r"MUTAG_A\.txt, line 4: expected 2 integer\(s\), got '1\.7, 2'"),
    ("A", 3, "1.0, 2", r"MUTAG_A\.txt, line 4: expected 2 integer\(s\), got '1\.0, 2'"),
    ("A", 3, "1", r"MUTAG_A\.txt, line 4: expected 2 integer\(s\)"),
    ("A", 3, "", r"MUTAG_A\.txt, line 4: expected 2 integer\(s\), got an empty line"),
    ("graph_indicator", 6, "1e0", r"MUTAG_graph_indicator\.txt, line 7: expected 1 integer\(s\)"),
    ("graph_labels", 2, "0.5", r"MUTAG_graph_labels\.txt, line 3: expected 1 integer\(s\), got '0\.5'"),
    ("node_labels", 2, "C", r"MUTAG_node_labels\.txt, line 3: expected 1 integer\(s\), got 'C'"),
    ("edge_labels", 2, "1.5", r"MUTAG_edge_labels\.txt, line 3: expected 1 integer\(s\), got '1\.5'"),
], ids=["edge-float", "edge-point-zero", "edge-short", "edge-empty-line", "indicator-exponent", "graph-label",
        "node-label", "edge-label"])
def test_a_value_that_is_not_an_integer_is_named_with_its_line(file: str, index: int, text: str, message: str,
                                                               tmp_path: Path) -> None:
    folder = copy_tu("MUTAG", tmp_path)
    edit_line(folder / "raw" / f"MUTAG_{file}.txt", index, text)
    with pytest.raises(CorruptDatasetError, match=message):
        load_dataset("MUTAG", root=tmp_path)


def test_attribute_files_are_parsed_as_numbers(tmp_path: Path) -> None:
    folder = copy_tu("MUTAG", tmp_path)
    rows = ["0.5, 1e-3"] * 3371
    rows[3] = "-inf, 2"  # read as PyG reads it (NaN and inf are named by the feature check)
    rows[20] = "0.25, one"
    (folder / "raw" / "MUTAG_node_attributes.txt").write_text("\n".join(rows) + "\n")
    with pytest.raises(CorruptDatasetError, match=r"MUTAG_node_attributes\.txt, line 21: expected 2 number\(s\), "
                                                   r"got '0\.25, one'"):
        load_dataset("MUTAG", root=tmp_path, use_node_attr=True)


def test_a_graph_listed_after_a_later_one_in_the_indicator_is_named(tmp_path: Path) -> None:
    # MUTAG's graph 1 has nodes 1..17: node 17 moved to graph 2 and node 18 to graph 1 keeps the counts
    folder = copy_tu("MUTAG", tmp_path)
    indicator = folder / "raw" / "MUTAG_graph_indicator.txt"
    edit_line(indicator, 16, "2")
    edit_line(indicator, 17, "1")
    with pytest.raises(CorruptDatasetError, match=r"MUTAG_graph_indicator\.txt, line 18: node 18 belongs to graph "
                                                   r"1, listed after a node of graph 2"):
        load_dataset("MUTAG", root=tmp_path)


def test_an_unreadable_processed_cache_is_processed_again(tmp_path: Path) -> None:
    copy_tu("MUTAG", tmp_path)
    first = load_dataset("MUTAG", root=tmp_path)
    cache = Path(first.processed_paths[0])
    assert cache.is_file() and tmp_path not in cache.parents  # in the user cache
    cache.write_bytes(cache.read_bytes()[:100])  # a processing interrupted while writing it
    with pytest.warns(UserWarning, match="could not be read .* processing the raw files again"):
        again = load_dataset("MUTAG", root=tmp_path)
    assert torch.equal(again._data.x, first._data.x) and len(again) == 188
    load_dataset("MUTAG", root=tmp_path)  # and the next load reads the new cache


def test_a_cache_left_half_written_by_a_killed_first_processing_is_processed_again(tmp_path: Path) -> None:
    copy_tu("MUTAG", tmp_path)
    first = load_dataset("MUTAG", root=tmp_path)
    cache = Path(first.processed_paths[0])
    (cache.parent / ".gcl-checked").unlink()  # killed before its first load finished its checks
    cache.write_bytes(cache.read_bytes()[:100])  # ... while writing the cache
    with pytest.warns(UserWarning, match="could not be read .* processing the raw files again"):
        again = load_dataset("MUTAG", root=tmp_path)
    assert torch.equal(again._data.x, first._data.x) and (cache.parent / ".gcl-checked").is_file()


def test_out_of_range_edge_is_named(tmp_path: Path) -> None:
    folder = copy_tu("MUTAG", tmp_path)
    with (folder / "raw" / "MUTAG_A.txt").open("a") as handle:
        handle.write("1, 999999\n")
    with pytest.raises(CorruptDatasetError, match=r"MUTAG_A\.txt, line 7443: node 999999 is outside 1\.\.3371"):
        load_dataset("MUTAG", root=tmp_path)


def test_an_edge_between_two_graphs_is_named(tmp_path: Path) -> None:
    # MUTAG_A.txt line 40 is an edge of graph 2 (nodes 18..30); pointing it at node 3 of graph 1
    # gave graph 2 a negative local index, which the largest-index check did not see
    folder = copy_tu("MUTAG", tmp_path)
    edit_line(folder / "raw" / "MUTAG_A.txt", 39, "18, 3")
    with pytest.raises(CorruptDatasetError, match=r"graph 1 has an edge to a node of an earlier graph"):
        load_dataset("MUTAG", root=tmp_path)


def test_edges_past_a_featureless_graph_are_named(tmp_path: Path) -> None:
    # IMDB-BINARY has no node features: the check reads the graphs' node counts instead
    import tarfile

    with tarfile.open(REPO_DATASETS / "TU" / "IMDB-BINARY" / "IMDB-BINARY.tar.xz") as archive:  # shipped packed
        archive.extractall(tmp_path / "TU", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    edit_line(tmp_path / "TU" / "IMDB-BINARY" / "raw" / "IMDB-BINARY_A.txt", 0, "1, 40")  # graph 0 has 20 nodes
    with pytest.raises(CorruptDatasetError, match=r"graph 0 has edges up to node 39 but 20 nodes"):
        load_dataset("IMDB-BINARY", root=tmp_path)


def test_edges_past_the_nodes_of_a_node_level_graph_are_named(tmp_path: Path) -> None:
    import pickle

    with tarfile.open(REPO_DATASETS / "Planetoid" / "Cora" / "Cora.tar.xz") as archive:  # shipped packed
        archive.extractall(tmp_path / "Planetoid", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    path = tmp_path / "Planetoid" / "Cora" / "raw" / "ind.cora.graph"
    with path.open("rb") as handle:
        graph = pickle.load(handle, encoding="latin1")
    graph[0] = [*graph[0], 50000]  # an edge to a node that does not exist
    with path.open("wb") as handle:
        pickle.dump(graph, handle)
    with pytest.raises(CorruptDatasetError, match=r"Cora from .*: edges reach node 50000, but the graph has "
                                                   r"2708 feature rows"):
        load_dataset("Cora", root=tmp_path)


def test_zero_node_index_is_named(tmp_path: Path) -> None:
    folder = copy_tu("MUTAG", tmp_path)
    edit_line(folder / "raw" / "MUTAG_A.txt", 2, "0, 2")
    with pytest.raises(CorruptDatasetError, match=r"MUTAG_A\.txt, line 3: node 0 is outside 1\.\.3371"):
        load_dataset("MUTAG", root=tmp_path)


@pytest.mark.parametrize("change", [-100, 50])
def test_node_label_file_of_the_wrong_length_is_named(tmp_path: Path, change: int) -> None:
    folder = copy_tu("MUTAG", tmp_path)
    labels = folder / "raw" / "MUTAG_node_labels.txt"
    lines = labels.read_text().splitlines()
    lines = lines[:change] if change < 0 else lines + lines[:change]
    labels.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorruptDatasetError, match=rf"MUTAG_node_labels\.txt has {3371 + change} rows but "
                                                   r"MUTAG_graph_indicator\.txt lists 3371 nodes"):
        load_dataset("MUTAG", root=tmp_path)


def test_nan_node_attributes_are_refused(tmp_path: Path) -> None:
    folder = copy_tu("MUTAG", tmp_path)
    rows = ["0.5, 1.0"] * 3371
    rows[10] = "nan, 1.0"
    (folder / "raw" / "MUTAG_node_attributes.txt").write_text("\n".join(rows) + "\n")
    with pytest.raises(CorruptDatasetError, match="node features contain NaN or inf"):
        load_dataset("MUTAG", root=tmp_path, use_node_attr=True)


def test_an_interrupted_first_processing_is_checked_when_done_again(tmp_path: Path) -> None:
    from gcl.data.roots import mirror

    folder = copy_tu("MUTAG", tmp_path)
    rows = ["0.5, 1.0"] * 3371
    rows[10] = "nan, 1.0"
    (folder / "raw" / "MUTAG_node_attributes.txt").write_text("\n".join(rows) + "\n")
    # what a processing killed before writing its cache leaves: PyG creates processed/ first
    cache_root = mirror(get_spec("MUTAG"), folder.resolve(), "attr1")
    (cache_root / "MUTAG" / "processed").mkdir(parents=True)
    with pytest.raises(CorruptDatasetError, match="node features contain NaN or inf"):
        load_dataset("MUTAG", root=tmp_path, use_node_attr=True)


def test_a_downloaded_dataset_is_checked_like_a_local_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gcl.data.loaders as loaders

    published = copy_tu("MUTAG", tmp_path / "server")
    rows = ["0.5, 1.0"] * 3371
    rows[10] = "nan, 1.0"
    (published / "raw" / "MUTAG_node_attributes.txt").write_text("\n".join(rows) + "\n")
    construct = loaders._construct

    def download(spec: Any, root: Path, use_node_attr: bool, transform: Any) -> Any:
        # what PyG's download step leaves before it processes: the raw files under root/NAME/raw
        if not (root / "MUTAG" / "raw").is_dir():
            shutil.copytree(published / "raw", root / "MUTAG" / "raw")
        return construct(spec, root, use_node_attr, transform)

    monkeypatch.setattr(loaders, "_construct", download)
    monkeypatch.setattr(loaders, "locate", lambda spec, roots: None)  # no local copy anywhere
    monkeypatch.setattr(loaders, "cache_dir", lambda: tmp_path / "cache")
    with pytest.raises(CorruptDatasetError, match="node features contain NaN or inf"):
        load_dataset("MUTAG", download=True, use_node_attr=True)
    with pytest.raises(CorruptDatasetError, match="node features contain NaN or inf"):  # checked again
        load_dataset("MUTAG", download=True, use_node_attr=True)
    assert len(load_dataset("MUTAG", download=True)) == 188  # without the attributes: checked once, then read
    with pytest.raises(CorruptDatasetError, match="node features contain NaN or inf"):  # the same cache
        load_dataset("MUTAG", download=True, use_node_attr=True)


class _Response:
    """What ``urllib.request.urlopen`` returns, as far as ogb's download reads it."""

    def __init__(self, payload: bytes) -> None:
        self._payload = io.BytesIO(payload)
        self._size = len(payload)

    def info(self) -> dict[str, str]:
        return {"Content-Length": str(self._size)}

    def read(self, size: int = -1) -> bytes:
        return self._payload.read(size)


def _offline_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, serve: bytes | None) -> list[str]:
    """A cache in ``tmp_path``, no data root, a server that fails (``serve=None``: no network, as a
    DNS failure) or sends ``serve``; returns the prompts shown (stdin answers them as closed)."""
    import builtins
    import urllib.error
    import urllib.request

    prompts: list[str] = []

    def urlopen(url: str, *args: Any, **kwargs: Any) -> _Response:
        if serve is None:
            raise urllib.error.URLError("[Errno -2] Name or service not known")
        return _Response(serve)

    def closed_stdin(prompt: str = "") -> str:
        prompts.append(prompt)
        raise EOFError("EOF when reading a line")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(builtins, "input", closed_stdin)
    monkeypatch.setenv("GCL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GCL_DATA", raising=False)
    return prompts


def test_a_failed_download_leaves_nothing_ogb_would_prompt_about(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    prompts = _offline_download(monkeypatch, tmp_path, serve=None)
    download = tmp_path / "cache" / "download"
    for attempt in range(3):
        if attempt == 2:  # what a failed download of an earlier version left: raw/ without RELEASE_v1.txt
            (download / "OGB" / "ogbg_molclintox" / "raw").mkdir(parents=True)
        with pytest.raises(DatasetNotFoundError, match=r"download failed: <urlopen error \[Errno -2\] Name or "):
            load_dataset("ogbg-molclintox", download=True)
        assert prompts == []  # ogb asks whether to update a folder without its release file
        assert not (download / "OGB" / "ogbg_molclintox").exists()
        assert [p.name for p in download.iterdir() if ".partial-" in p.name] == []  # nor a temporary folder


def _zipped_molbace(leave_out: str = "") -> bytes:
    """The shipped ogbg-molbace as OGB's server sends it (``bace/...``), without the files under ``leave_out``."""
    import zipfile

    folder = REPO_DATASETS / "OGB" / "ogbg_molbace"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            name = path.relative_to(folder).as_posix()
            if path.is_file() and "processed" not in name and not (leave_out and name.startswith(leave_out)):
                archive.write(path, f"bace/{name}")
    return buffer.getvalue()


def test_a_download_is_moved_into_place_once_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gcl.data.loaders as loaders

    _offline_download(monkeypatch, tmp_path, serve=_zipped_molbace(leave_out="split/"))
    search_roots = loaders.search_roots
    monkeypatch.setattr(loaders, "search_roots", lambda root=None: search_roots(root)[-1:])  # not the shipped copy
    folder = tmp_path / "cache" / "download" / "OGB" / "ogbg_molbace"
    with pytest.raises(DatasetNotFoundError, match=r"the download lacks split/scaffold/train\.csv\.gz"):
        load_dataset("ogbg-molbace", download=True)
    assert not folder.exists()
    _offline_download(monkeypatch, tmp_path, serve=_zipped_molbace())
    dataset = load_dataset("ogbg-molbace", download=True)
    assert len(dataset) == 1513 and dataset.source == folder and (folder / "RELEASE_v1.txt").is_file()
    assert sum(len(part) for part in dataset.get_idx_split().values()) == 1513  # read from the folder in place
    assert [p.name for p in folder.parents[1].iterdir() if ".partial-" in p.name] == []
    assert len(load_dataset("ogbg-molbace")) == 1513  # found in the cache now, without a download


def _pack_mutag(archive: Path, labels: list[str]) -> None:
    source = REPO_DATASETS / "TU" / "MUTAG" / "raw"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        for path in sorted(source.iterdir()):
            payload = "\n".join(labels).encode() if path.name == "MUTAG_graph_labels.txt" else path.read_bytes()
            info = tarfile.TarInfo(f"MUTAG/raw/{path.name}")
            info.size = len(payload)  # mtime 0: the same bytes for the same contents
            tar.addfile(info, io.BytesIO(payload))
    archive.write_bytes(buffer.getvalue())


def test_a_replaced_archive_of_the_same_size_is_unpacked_again(tmp_path: Path) -> None:
    labels = (REPO_DATASETS / "TU" / "MUTAG" / "raw" / "MUTAG_graph_labels.txt").read_text().split("\n")
    archive = tmp_path / "root" / "TU" / "MUTAG" / "MUTAG.tar.xz"
    archive.parent.mkdir(parents=True)
    _pack_mutag(archive, labels)
    size = archive.stat().st_size
    assert load_dataset("MUTAG", root=tmp_path / "root").y[:3].tolist() == [1, 0, 0]
    # a corrected release of the same size: the first few labels flipped
    for flipped in range(1, 50):
        edited = ["1" if line.strip() == "-1" else "-1" for line in labels[:flipped]] + labels[flipped:]
        _pack_mutag(tmp_path / "candidate.tar.xz", edited)
        if (tmp_path / "candidate.tar.xz").stat().st_size == size:
            break
    else:
        pytest.fail("no edit of the labels keeps the archive's size")
    (tmp_path / "candidate.tar.xz").replace(archive)
    expected = [1 - label for label in [1, 0, 0][:flipped]] + [1, 0, 0][flipped:]
    assert load_dataset("MUTAG", root=tmp_path / "root").y[:3].tolist() == expected


def test_edited_raw_files_are_read_again(tmp_path: Path) -> None:
    # the processed cache follows the raw files, not only their folder
    folder = copy_tu("MUTAG", tmp_path)
    labels = folder / "raw" / "MUTAG_graph_labels.txt"
    assert load_dataset("MUTAG", root=tmp_path).y[:3].tolist() == [1, 0, 0]
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join(["-1", "1", "1", *lines[3:]]) + "\n")
    assert load_dataset("MUTAG", root=tmp_path).y[:3].tolist() == [0, 1, 1]


def test_an_incomplete_copy_in_the_given_root_is_an_error(tmp_path: Path) -> None:
    folder = copy_tu("MUTAG", tmp_path)
    (folder / "raw" / "MUTAG_node_labels.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"holds MUTAG without raw/MUTAG_node_labels\.txt"):
        load_dataset("MUTAG", root=tmp_path)


@pytest.mark.parametrize("name", ["MUTAG", "ogbg-molbace", "Cora", "WikiCS"])
@pytest.mark.parametrize("given", ["data-root", "family-folder"])
def test_an_empty_dataset_folder_in_the_given_root_is_an_error(name: str, given: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # the copy of the root passed, even without raw/: not a reason to load the shipped copy (or download one)
    monkeypatch.setenv("GCL_OFFLINE", "1")
    spec = get_spec(name)
    folder = tmp_path / spec.family / spec.folder
    folder.mkdir(parents=True)
    root = tmp_path if given == "data-root" else tmp_path / spec.family
    expected = re.escape(f"{folder} holds {spec.name} without {', '.join(spec.files)}.")
    if root == folder:  # WikiCS's family folder is its dataset folder
        expected = re.escape(f"root {root} is WikiCS's folder by its name, but {folder} lacks raw/data.json")
    with pytest.raises(DatasetNotFoundError, match=rf"^{expected}"):
        load_dataset(name, root=root)


def test_an_empty_dataset_folder_in_gcl_data_is_searched_past(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a search root ($GCL_DATA) is one place among several: the next one that holds the dataset is loaded
    (tmp_path / "TU" / "MUTAG").mkdir(parents=True)
    monkeypatch.setenv("GCL_DATA", str(tmp_path))
    assert load_dataset("MUTAG").source == (REPO_DATASETS / "TU" / "MUTAG").resolve()


def test_files_outside_raw_in_the_given_root_are_an_error(tmp_path: Path) -> None:
    folder = copy_tu("MUTAG", tmp_path)
    for path in (folder / "raw").iterdir():
        path.rename(folder / path.name)
    (folder / "raw").rmdir()
    with pytest.raises(DatasetNotFoundError, match=r"holds .*MUTAG_A\.txt.* directly; MUTAG's files belong in"):
        load_dataset("MUTAG", root=tmp_path)


def test_a_complete_copy_beside_an_unrelated_folder_loads(tmp_path: Path) -> None:
    copy_tu("MUTAG", tmp_path)
    (tmp_path / "MUTAG" / "runs").mkdir(parents=True)  # the other candidate folder, not a dataset copy
    assert load_dataset("MUTAG", root=tmp_path).source == (tmp_path / "TU" / "MUTAG").resolve()


def test_edits_behind_a_linked_raw_folder_are_read_again(tmp_path: Path) -> None:
    source = copy_tu("MUTAG", tmp_path / "elsewhere")
    folder = tmp_path / "root" / "TU" / "MUTAG"
    folder.mkdir(parents=True)
    (folder / "raw").symlink_to(source / "raw", target_is_directory=True)
    assert load_dataset("MUTAG", root=tmp_path / "root").y[:3].tolist() == [1, 0, 0]
    labels = source / "raw" / "MUTAG_graph_labels.txt"
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join(["-1", "1", "1", *lines[3:]]) + "\n")
    assert load_dataset("MUTAG", root=tmp_path / "root").y[:3].tolist() == [0, 1, 1]


def test_label_count_mismatch_is_named(tmp_path: Path) -> None:
    folder = copy_tu("MUTAG", tmp_path)
    labels = folder / "raw" / "MUTAG_graph_labels.txt"
    labels.write_text("\n".join(labels.read_text().splitlines()[:-3]) + "\n")
    with pytest.raises(CorruptDatasetError, match=r"MUTAG_graph_labels\.txt has 185 labels"):
        load_dataset("MUTAG", root=tmp_path)


def test_truncated_archive_is_named(tmp_path: Path) -> None:
    folder = copy_tu("PROTEINS", tmp_path)
    archive = folder / "PROTEINS.tar.xz"
    archive.write_bytes(archive.read_bytes()[:5000])
    with pytest.raises(CorruptDatasetError, match=r"PROTEINS\.tar\.xz"):
        load_dataset("PROTEINS", root=tmp_path)


def test_archive_missing_files_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "TU" / "ENZYMES"
    folder.mkdir(parents=True)
    payload = b"1, 2\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("ENZYMES/raw/ENZYMES_A.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    (folder / "ENZYMES.tar.xz").write_bytes(lzma.compress(buffer.getvalue()))
    with pytest.raises(CorruptDatasetError, match=r"missing inside 'ENZYMES/': raw/ENZYMES_graph_indicator\.txt"):
        load_dataset("ENZYMES", root=tmp_path)


def test_degree_features_match_networkx() -> None:
    ds = load_dataset("IMDB-BINARY", node_features="degree")
    mode, cap = ds.node_feature_fallback
    assert mode == "degree" and ds.num_features == cap + 1
    for index in (0, 17, 999):
        data = ds[index]
        graph = to_networkx(data, to_undirected=True)
        expected = torch.tensor([graph.degree(n) for n in range(data.num_nodes)])
        assert torch.equal(data.x.argmax(dim=1), expected)
        assert torch.equal(data.x.sum(dim=1), torch.ones(data.num_nodes))


def test_degree_cap_clamps_into_last_bucket() -> None:
    ds = load_dataset("IMDB-BINARY", node_features="degree", max_degree=10)
    assert ds.num_features == 11
    data = ds[0]
    degree = torch.bincount(data.edge_index[0], minlength=data.num_nodes)
    assert torch.equal(data.x.argmax(dim=1), degree.clamp(max=10))


def test_constant_features() -> None:
    ds = load_dataset("IMDB-BINARY", node_features="constant")
    assert ds.num_features == 1
    assert torch.equal(ds[3].x, torch.ones(ds[3].num_nodes, 1))


def test_feature_mode_conventions() -> None:
    assert resolve_mode("auto", "REDDIT-BINARY") == "constant"
    assert resolve_mode("auto", "COLLAB") == "degree"
    with pytest.raises(ValueError, match=r"node_features must be one of .* \(got 'onehot'\)"):
        resolve_mode("onehot", "COLLAB")
    with pytest.raises(ValueError, match="max_degree must be non-negative"):
        one_hot_degree(torch.tensor([1]), -1)


def test_graphs_with_features_are_left_alone() -> None:
    with pytest.warns(UserWarning, match=r"MUTAG has node features: node_features='constant' \(a fallback"):
        ds = load_dataset("MUTAG", node_features="constant")
    assert ds.num_features == 7 and not hasattr(ds, "node_feature_fallback")
    for _ in range(2):  # a memory-mapped copy, written then read from the cache
        with pytest.warns(UserWarning, match="MUTAG has node features"):
            assert load_dataset("MUTAG", node_features="constant", mmap=True).num_features == 7


def test_a_degree_cap_nothing_uses_is_named() -> None:
    # max_degree caps the one-hot degree fallback: with features of the graphs' own, or another fallback, it does nothing
    with pytest.warns(UserWarning, match=r"MUTAG has node features: max_degree=5 .* is ignored"):
        assert load_dataset("MUTAG", max_degree=5).num_features == 7
    with pytest.warns(UserWarning, match=r"IMDB-BINARY gets 'constant' fallback features: max_degree=5"):
        load_dataset("IMDB-BINARY", node_features="constant", max_degree=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # where it acts, no warning
        assert load_dataset("IMDB-BINARY", node_features="degree", max_degree=5).num_features == 6


def test_ogb_molecules_from_benchmark_root(shared_data: Path, load_shared: Any) -> None:
    ds = load_shared("ogbg-molbace")
    split = ds.get_idx_split()
    assert len(ds) == 1513
    assert [len(split[k]) for k in ("train", "valid", "test")] == [1210, 151, 152]
    assert not (shared_data / "OGB" / "ogbg_molbace" / "processed").exists()


def test_ogb_molecules_shipped_without_a_cache_beside_them() -> None:
    shipped = Path(__file__).resolve().parents[2] / "datasets" / "OGB" / "ogbg_molbace"
    before = sorted(p.relative_to(shipped) for p in shipped.rglob("*"))
    ds = load_dataset("ogbg-molbace", root=shipped.parents[1])
    assert len(ds) == 1513 and ds.num_features == 9 and Path(ds.source) == shipped
    assert [len(v) for v in ds.get_idx_split().values()] == [1210, 151, 152]
    assert sorted(p.relative_to(shipped) for p in shipped.rglob("*")) == before  # processed/ went to the cache


def test_cora_from_benchmark_root(load_shared: Any) -> None:
    ds = load_shared("Cora")
    assert ds[0].num_nodes == 2708 and ds.num_features == 1433 and int(ds[0].train_mask.sum()) == 140


@pytest.mark.slow
@pytest.mark.parametrize("name", ["NCI1", "DD", "ENZYMES", "Mutagenicity", "IMDB-MULTI", "REDDIT-BINARY", "COLLAB"])
def test_every_benchmark_tu_dataset_loads(name: str, shared_data: Path) -> None:
    ds = load_dataset(name, root=shared_data)
    assert len(ds) == get_spec(name).num_graphs
    assert ds[0].x is not None


def test_degree_fallback_matches_networkx_on_generated_graphs() -> None:
    # property check on generated graphs: the vectorised degree over the collated
    # storage equals networkx degrees graph by graph
    from torch_geometric.data import Data, InMemoryDataset

    from gcl.data import add_fallback_features

    graphs = []
    for seed in range(6):
        g = nx.gnp_random_graph(5 + seed, 0.4, seed=seed)
        edges = torch.tensor(list(g.edges()), dtype=torch.long).t().reshape(2, -1)
        edges = torch.cat([edges, edges.flip(0)], dim=1)
        graphs.append(Data(edge_index=edges, num_nodes=g.number_of_nodes(), y=torch.tensor([0])))

    class Memory(InMemoryDataset):
        def __init__(self) -> None:
            super().__init__()
            self.data, self.slices = self.collate(graphs)

    ds = Memory()
    add_fallback_features(ds, "degree", None)
    for seed, data in enumerate(ds):
        g = nx.gnp_random_graph(5 + seed, 0.4, seed=seed)
        assert data.x.argmax(1).tolist() == [g.degree(n) for n in range(g.number_of_nodes())]


def test_normalize_features_matches_pygs_transform_graph_by_graph() -> None:
    from torch_geometric.transforms import NormalizeFeatures

    import gcl.data.loaders as loaders

    dataset = load_dataset("MUTAG")
    dataset._data.x = dataset._data.x * torch.rand(dataset._data.x.shape, generator=torch.Generator().manual_seed(0))
    before = [dataset[i] for i in (0, 5, len(dataset) - 1)]
    loaders._normalize_features(dataset, "MUTAG")
    for graph, index in zip(before, (0, 5, len(dataset) - 1), strict=True):
        assert torch.allclose(dataset[index].x, NormalizeFeatures()(graph).x)


def test_normalize_features_on_a_node_level_set() -> None:
    from torch_geometric.transforms import NormalizeFeatures

    plain = load_dataset("Cora")
    normalized = load_dataset("Cora", normalize_features=True)
    assert torch.allclose(normalized[0].x, NormalizeFeatures()(plain[0]).x)
    assert torch.allclose(normalized[0].x.sum(1), torch.ones(plain[0].num_nodes))


def test_normalize_features_shifts_every_graph_by_its_own_minimum() -> None:
    # negative features and graphs whose minima differ: the shift is per graph, as the transform's
    from torch_geometric.transforms import NormalizeFeatures

    import gcl.data.loaders as loaders

    dataset = load_dataset("MUTAG")
    graph = torch.repeat_interleave(torch.arange(len(dataset)), dataset.slices["x"].diff())
    dataset._data.x = dataset._data.x - 0.5 + graph.unsqueeze(1) * 0.01
    before = [dataset[i] for i in range(len(dataset))]
    loaders._normalize_features(dataset, "MUTAG")
    for index, graph_before in enumerate(before):
        assert torch.allclose(dataset[index].x, NormalizeFeatures()(graph_before).x), index


def test_normalize_features_warns_where_it_leaves_zeros() -> None:
    with pytest.warns(UserWarning, match="constant within every graph.* leaves zeros"):
        dataset = load_dataset("IMDB-BINARY", node_features="constant", normalize_features=True)
    assert not bool(dataset._data.x.any())


def test_normalize_features_refuses_what_it_cannot_normalise(monkeypatch: pytest.MonkeyPatch) -> None:
    import gcl.data.loaders as loaders

    dataset = load_dataset("MUTAG")
    dataset._data.x = dataset._data.x.long()
    with pytest.raises(ValueError, match="floating-point node features"):
        loaders._normalize_features(dataset, "MUTAG")


def test_loading_options_are_checked_on_every_dataset(tmp_path: Path) -> None:
    # MUTAG has features, so node_features is not used: a misspelt mode is still named
    with pytest.raises(ValueError, match=r"node_features must be one of .* \(got 'degre'\)"):
        load_dataset("MUTAG", node_features="degre")
    for bad in (5.5, True, -1):
        with pytest.raises(ValueError, match=rf"max_degree must be a non-negative integer or None \(got {bad!r}\)"):
            load_dataset("IMDB-BINARY", max_degree=bad)
    with pytest.raises(DatasetNotFoundError, match=r"root .*missing is not a folder"):
        load_dataset("MUTAG", root=tmp_path / "missing")


def test_a_root_under_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy_tu("MUTAG", tmp_path / "data")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_dataset("MUTAG", root="~/data").source == (tmp_path / "data" / "TU" / "MUTAG").resolve()


def test_check_loaded_names_feature_rows_that_do_not_fit() -> None:
    import copy

    from gcl.data.loaders import check_loaded

    dataset = load_dataset("MUTAG")
    check_loaded(dataset, "MUTAG", Path("src"))
    short = copy.copy(dataset)
    short._data = copy.copy(dataset._data)
    short._data.x = dataset._data.x[:-5]
    with pytest.raises(CorruptDatasetError, match="3366 feature rows for 3371 nodes"):
        check_loaded(short, "MUTAG", Path("src"))
    # rows of the right total but one graph's edges beyond its own rows (a shifted file)
    shifted = copy.copy(dataset)
    shifted.slices = {**dataset.slices, "x": dataset.slices["x"].clone()}
    shifted.slices["x"][1] -= 3
    with pytest.raises(CorruptDatasetError, match="graph 0 has edges up to node 16 but 14 feature rows"):
        check_loaded(shifted, "MUTAG", Path("src"))


def _load_in_turn(name: str, start: Any, results: Any) -> None:
    start.wait()  # every process starts its first load at once
    try:
        dataset = load_dataset(name)
        results.put(("ok", len(dataset), float(dataset._data.x.sum())))
    except Exception as exc:  # reported to the test, which names it
        results.put(("error", f"{type(exc).__name__}: {exc}", 0.0))


@pytest.mark.parametrize("round_", range(2))
def test_processes_loading_into_an_empty_cache_at_once_all_succeed(
        round_: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fork_context: Any) -> None:
    # PROTEINS is shipped packed: the processes race to unpack it, then to build its processed cache

    monkeypatch.delenv("GCL_DATA", raising=False)
    monkeypatch.setenv("GCL_CACHE", str(tmp_path / "cache"))
    context = fork_context
    start, results = context.Barrier(3), context.Queue()
    workers = [context.Process(target=_load_in_turn, args=("PROTEINS", start, results)) for _ in range(3)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert [o[0] for o in outcomes] == ["ok"] * 3, outcomes
    assert len({o[1:] for o in outcomes}) == 1 and outcomes[0][1] == 1113
