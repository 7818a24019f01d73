from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch_geometric.data import Data, InMemoryDataset

from gcl.data import CollatedLoader, MappedDataset, load_dataset, save_mapped
from gcl.data.mapped import checksum_path, is_intact

from .graphs_custom import LabelledGraph, LabelledGraphs, OneGraph


def _same_storage(a: InMemoryDataset, b: InMemoryDataset) -> None:
    assert type(a._data) is type(b._data)
    assert sorted(a._data.keys()) == sorted(b._data.keys())
    for key in a._data.keys():
        left, right = a._data[key], b._data[key]
        assert torch.equal(left, right) if isinstance(left, torch.Tensor) else left == right, key
    assert {k: v.tolist() for k, v in a.slices.items()} == {k: v.tolist() for k, v in b.slices.items()}


@pytest.mark.parametrize("name, options", [("MUTAG", {}), ("IMDB-BINARY", {}), ("PROTEINS", {"use_node_attr": True})])
def test_mapped_dataset_is_the_dataset(tmp_path: Path, name: str, options: dict[str, Any]) -> None:
    dataset = load_dataset(name, **options)
    mapped = MappedDataset(save_mapped(dataset, tmp_path / "d.pt"))
    _same_storage(dataset, mapped)
    assert len(mapped) == len(dataset) and mapped.num_features == dataset.num_features
    assert mapped.num_classes == dataset.num_classes and mapped.name == dataset.name
    for i in (0, 7, len(dataset) - 1):
        assert all(torch.equal(dataset[i][k], mapped[i][k]) for k in dataset[i].keys()
                   if isinstance(dataset[i][k], torch.Tensor))
    ours = next(iter(CollatedLoader(mapped, batch_size=50)))
    theirs = next(iter(CollatedLoader(dataset, batch_size=50)))
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs.keys() if isinstance(theirs[k], torch.Tensor))
    assert ours.num_nodes == theirs.num_nodes
    if hasattr(dataset, "node_feature_fallback"):
        assert mapped.node_feature_fallback == dataset.node_feature_fallback


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_storage_is_mapped_from_the_file_not_read(tmp_path: Path) -> None:
    path = save_mapped(load_dataset("PROTEINS"), tmp_path / "proteins.pt")
    mapped = MappedDataset(path)
    assert str(path) in Path("/proc/self/maps").read_text()  # a mapping of the file, not a copy of it
    # copy-on-write: writing to a tensor changes this process's pages, never the file
    before = mapped._data.x[0].clone()
    mapped._data.x[0] += 1.0
    assert torch.equal(MappedDataset(path)._data.x[0], before)


def test_subsets_and_pickling_share_the_file(tmp_path: Path) -> None:
    dataset = load_dataset("PROTEINS")
    mapped = MappedDataset(save_mapped(dataset, tmp_path / "p.pt"))
    subset = mapped[100:300]
    assert isinstance(subset, MappedDataset) and subset._data is mapped._data  # a subset shares the mapping
    payload = pickle.dumps(subset)
    assert len(payload) < 10_000  # the path and indices, not the data
    restored = pickle.loads(payload)
    assert len(restored) == 200 and torch.equal(restored[5].x, dataset[105].x)
    # a materialised copy is plain in-memory data: pickled whole
    copied = mapped[:10].copy()
    again = pickle.loads(pickle.dumps(copied))
    assert len(again) == 10 and torch.equal(again[9].x, dataset[9].x)
    # a saved subset keeps its indices
    part = MappedDataset(save_mapped(dataset[50:60], tmp_path / "part.pt"))
    assert len(part) == 10 and torch.equal(part[0].x, dataset[50].x)


class SplitGraphs(LabelledGraphs):
    """LabelledGraphs with an official split, as OGB's datasets have."""

    def get_idx_split(self) -> dict[str, torch.Tensor]:
        return {"train": torch.arange(0, 14), "valid": torch.arange(14, 17), "test": torch.arange(17, 20)}


def test_graph_class_and_split_survive(tmp_path: Path) -> None:
    dataset = SplitGraphs()
    mapped = MappedDataset(save_mapped(dataset, tmp_path / "s.pt"))
    assert isinstance(mapped[0], LabelledGraph) and mapped[3].doubled_nodes == 2 * dataset[3].num_nodes
    assert {k: v.tolist() for k, v in mapped.get_idx_split().items()} == \
        {k: v.tolist() for k, v in dataset.get_idx_split().items()}
    batch = next(iter(CollatedLoader(mapped, batch_size=5)))
    assert torch.equal(batch.anchor, next(iter(CollatedLoader(dataset, batch_size=5))).anchor)
    plain = MappedDataset(save_mapped(LabelledGraphs(), tmp_path / "plain.pt"))
    with pytest.raises(AttributeError, match="no official split"):
        plain.get_idx_split()


def test_bad_files_and_inputs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no mapped dataset"):
        MappedDataset(tmp_path / "missing.pt")
    torch.save({"weights": torch.ones(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a mapped dataset of format"):
        MappedDataset(tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("not a torch file")
    with pytest.raises(ValueError, match="is not a mapped dataset"):
        MappedDataset(tmp_path / "text.pt")
    with pytest.raises(TypeError, match="needs an InMemoryDataset"):
        save_mapped([Data()], tmp_path / "list.pt")  # type: ignore[arg-type]

    class Local(Data):  # not importable by name
        pass

    dataset = LabelledGraphs()
    dataset._data = Local(**dict(dataset._data._store.items()))
    with pytest.raises(TypeError, match="cannot be imported by name"):
        save_mapped(dataset, tmp_path / "local.pt")
    assert not list(tmp_path.glob("*.partial"))


def test_load_dataset_maps_after_the_first_load(monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_dataset("IMDB-BINARY", mmap=True, normalize_features=False)
    assert isinstance(first, MappedDataset) and first.source.name == "IMDB-BINARY"
    import gcl.data.loaders as loaders

    def no_processing(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a mapped load must not construct the PyG dataset")

    monkeypatch.setattr(loaders, "_construct", no_processing)
    second = load_dataset("IMDB-BINARY", mmap=True)
    assert second.path == first.path and second.spec.name == "IMDB-BINARY"
    assert second.node_feature_fallback == ("degree", 135)
    # other options are another file (built from the processed cache)
    monkeypatch.undo()
    constant = load_dataset("IMDB-BINARY", mmap=True, node_features="constant")
    assert constant.path != first.path and constant.num_features == 1
    _same_storage(constant, load_dataset("IMDB-BINARY", node_features="constant"))


def test_load_dataset_rewrites_an_unreadable_mapped_file() -> None:
    first = load_dataset("MUTAG", mmap=True)
    first.path.write_bytes(b"truncated")
    again = load_dataset("MUTAG", mmap=True)
    _same_storage(again, load_dataset("MUTAG"))


def test_load_dataset_rewrites_a_mapped_file_whose_bytes_changed() -> None:
    import os

    first = load_dataset("MUTAG", mmap=True)
    path = first.path
    written = path.read_bytes()
    changed = bytearray(written)
    middle = len(changed) // 2
    changed[middle:middle + 64] = bytes(64)  # overwritten in place: the same size, other bytes
    path.write_bytes(bytes(changed))
    again = load_dataset("MUTAG", mmap=True)
    _same_storage(again, load_dataset("MUTAG"))
    assert path.read_bytes() == written  # written again
    # the same bytes with a new modification time (a copy) are read once, not written again
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    inode = path.stat().st_ino
    _same_storage(load_dataset("MUTAG", mmap=True), load_dataset("MUTAG"))
    assert path.stat().st_ino == inode
    assert f'"mtime_ns": {path.stat().st_mtime_ns}' in checksum_path(path).read_text()
    # without the record beside it (an older version's file) the file is mapped as it is, and recorded
    checksum_path(path).unlink()
    _same_storage(load_dataset("MUTAG", mmap=True), load_dataset("MUTAG"))
    assert path.stat().st_ino == inode and is_intact(path) is True


def test_changed_bytes_where_the_cache_cannot_be_written_are_mapped_with_a_warning(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    path = load_dataset("MUTAG", mmap=True).path
    changed = bytearray(path.read_bytes())
    changed[len(changed) // 2] ^= 0xFF
    path.write_bytes(bytes(changed))
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)  # a read-only cache
    with pytest.warns(UserWarning, match="its bytes differ from those save_mapped wrote"):
        load_dataset("MUTAG", mmap=True)
    assert path.read_bytes() == bytes(changed)  # not written again


def test_mapped_dataset_warns_when_its_bytes_changed(tmp_path: Path) -> None:
    path = save_mapped(load_dataset("MUTAG"), tmp_path / "mutag.pt")
    assert is_intact(path) is True
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MappedDataset(path)  # intact: no warning
    changed = bytearray(path.read_bytes())
    changed[len(changed) // 2] ^= 0xFF
    path.write_bytes(bytes(changed))
    assert is_intact(path) is False
    with pytest.warns(UserWarning, match="its bytes differ from those save_mapped wrote"):
        MappedDataset(path)


def test_training_on_a_mapped_dataset_matches_in_memory(tmp_path: Path) -> None:
    from gcl.methods import build_method
    from gcl.train import TrainConfig, fit, seed_everything

    losses = []
    for mmap in (False, True):
        dataset = load_dataset("MUTAG", mmap=mmap)
        seed_everything(0)
        method = build_method("graphcl", dataset, hidden_channels=16, num_layers=2)
        result = fit(method, dataset, TrainConfig(epochs=2, batch_size=64, seed=0, progress=False))
        losses.append([h["loss"] for h in result.history])
    assert losses[0] == losses[1]


def test_ogb_split_is_kept() -> None:
    dataset = load_dataset("ogbg-molbace", mmap=True)
    assert isinstance(dataset, MappedDataset)
    assert [len(v) for v in dataset.get_idx_split().values()] == [1210, 151, 152]


class MultiTask(LabelledGraphs):
    """Twelve binary tasks per graph, counted as OGB counts them (2 classes, whatever ``y``'s width)."""

    def __init__(self) -> None:
        super().__init__()
        self._data.y = torch.randint(0, 2, (len(self), 12), generator=torch.Generator().manual_seed(1))
        self.slices["y"] = torch.arange(len(self) + 1)

    @property
    def num_classes(self) -> int:
        return 2


def test_single_graph_datasets(tmp_path: Path) -> None:
    dataset = OneGraph()
    assert dataset.slices is None
    mapped = MappedDataset(save_mapped(dataset, tmp_path / "one.pt"))
    assert len(mapped) == 1 and mapped.num_classes == 3 and mapped.num_features == 5
    assert all(torch.equal(mapped[0][k], dataset[0][k]) for k in dataset[0].keys())
    assert torch.equal(pickle.loads(pickle.dumps(mapped))[0].train_mask, dataset[0].train_mask)


def test_cora_maps() -> None:
    mapped = load_dataset("Cora", mmap=True, normalize_features=True)
    plain = load_dataset("Cora", normalize_features=True)
    assert isinstance(mapped, MappedDataset) and mapped.num_classes == plain.num_classes == 7
    assert all(torch.equal(mapped[0][k], plain[0][k]) for k in plain[0].keys())


def test_class_counts_are_the_datasets(tmp_path: Path) -> None:
    multi = MappedDataset(save_mapped(MultiTask(), tmp_path / "multi.pt"))
    assert multi.num_classes == 2  # not y's 12 columns
    tu = load_dataset("PROTEINS", use_node_attr=True)
    mapped = MappedDataset(save_mapped(tu, tmp_path / "tu.pt"))
    for name in ("num_node_labels", "num_node_attributes", "num_edge_labels", "num_edge_attributes"):
        assert getattr(mapped, name) == getattr(tu, name), name
    with pytest.raises(AttributeError, match="num_node_labels"):  # not a TU dataset
        _ = MappedDataset(save_mapped(LabelledGraphs(), tmp_path / "l.pt")).num_node_labels


def test_pickling_keeps_what_was_added_to_the_storage(tmp_path: Path) -> None:
    from gcl.data import attach_index

    mapped = MappedDataset(save_mapped(load_dataset("MUTAG"), tmp_path / "m.pt"))
    indexed = pickle.loads(pickle.dumps(attach_index(mapped)))  # LCGNN's memory bank adds graph indices
    assert int(indexed[5].idx) == 5
    replaced = MappedDataset(mapped.path)
    replaced._data.x = replaced._data.x * 2  # a replaced tensor
    assert torch.equal(pickle.loads(pickle.dumps(replaced))._data.x, replaced._data.x)
    assert len(pickle.dumps(MappedDataset(mapped.path))) < 10_000  # unchanged: the path only
    edited = MappedDataset(mapped.path)
    edited._data.x.mul_(3)  # written in place: copy-on-write pages that never reach the file
    assert torch.equal(pickle.loads(pickle.dumps(edited))._data.x, edited._data.x)
    assert torch.equal(MappedDataset(mapped.path)._data.x, mapped._data.x)  # the file is as it was
    with torch.inference_mode():  # evaluation scripts map datasets there too
        inferred = MappedDataset(mapped.path)
        assert len(pickle.dumps(inferred)) < 10_000 and len(load_dataset("MUTAG", mmap=True)) == 188
