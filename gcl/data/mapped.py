r"""Memory-mapped collated datasets: one file on disk, shared by every process.

:class:`MappedDataset` is an :class:`~torch_geometric.data.InMemoryDataset`
whose collated storage (``x``, ``edge_index``, ``y`` ... and the slice
pointers) lives in one file that ``torch.load(mmap=True)`` maps instead of
reading. The pages a batch touches (and those the kernel reads around them)
are held in the operating system's page cache, not in the process: clean,
shared and evictable. Several processes of one
machine that map the same file (DDP ranks, view workers, benchmark jobs) share
one copy, and a dataset larger than the machine's memory pages in and out as
batches need it. Everything that takes an in-memory dataset takes it:
:class:`~gcl.data.CollatedLoader` slices it, ``dataset[idx]`` subsets it,
``dataset[i]`` returns a graph.

:func:`save_mapped` writes such a file from any in-memory dataset;
:func:`gcl.data.load_dataset` does it for you with ``mmap=True`` (the first
load builds the file, later loads only map it).

Example:
    >>> import tempfile, pathlib
    >>> from gcl.data import load_dataset
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> mapped = MappedDataset(save_mapped(load_dataset("MUTAG"), folder / "mutag.pt"))
    >>> len(mapped), mapped.num_features
    (188, 7)
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import InMemoryDataset

FORMAT = "gcl-mapped-1"

# instance attributes of PyG / OGB datasets that describe the data and travel with it
_SIMPLE = (str, int, float, bool)
_SKIPPED = {"root", "log", "force_reload", "transform", "pre_transform", "pre_filter", "cleaned", "source"}


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_class(path: str) -> type:
    module, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not isinstance(target, type):
        raise TypeError(f"{path} is not a class")
    return target


def _plain(value: Any) -> bool:
    r"""Whether ``torch.load(weights_only=True)`` reads ``value`` back (and it is small)."""
    if value is None or isinstance(value, (*_SIMPLE, Tensor)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def save_mapped(dataset: InMemoryDataset, path: str | os.PathLike[str]) -> Path:
    r"""Writes the collated storage of ``dataset`` to ``path`` for
    :class:`MappedDataset`, and returns the path.

    The whole dataset is written (a subset ``dataset[idx]`` writes its parent's
    storage and keeps its indices). The file is written under a temporary
    name and renamed, so processes that build it at once (DDP ranks) never
    read a partial file. Besides the storage it keeps the dataset's simple
    attributes (``name``, ``num_tasks`` ...), TU's ``sizes`` and OGB's split
    (``get_idx_split()``), and the graph class by import path. Beside it,
    ``<path>.sum`` records its size, modification time and CRC-32
    (:func:`is_intact`; :class:`MappedDataset` warns when the bytes changed).

    Args:
        dataset (InMemoryDataset): The dataset (no per-access ``transform`` is
            saved: pass one to :class:`MappedDataset`).
        path (str or PathLike): The file to write.

    Raises:
        TypeError: ``dataset`` is not an :class:`InMemoryDataset`, or its graph
            class cannot be imported by name (a class defined inside a function).
    """
    if not isinstance(dataset, InMemoryDataset):
        raise TypeError(f"save_mapped needs an InMemoryDataset (got {type(dataset).__name__})")
    store = dataset._data
    data_class = _class_path(type(store))
    try:
        _import_class(data_class)
    except (ImportError, AttributeError, TypeError) as error:
        raise TypeError(f"the graph class {data_class} cannot be imported by name ({error}); "
                        "define it at module level") from None
    attrs: dict[str, Any] = {key: value for key, value in vars(dataset).items()
                             if not key.startswith("_") and key not in _SKIPPED and isinstance(value, _SIMPLE)}
    sizes = getattr(dataset, "sizes", None)
    if isinstance(sizes, dict) and _plain(sizes):
        attrs["sizes"] = sizes
    fallback = getattr(dataset, "node_feature_fallback", None)
    if fallback is not None and _plain(fallback):
        attrs["node_feature_fallback"] = list(fallback)
    if type(dataset).num_classes is not InMemoryDataset.num_classes:
        # the class's own count (OGB's from its metadata: 2 for every task of a multi-task set),
        # which PyG's inference from ``y`` would not give back
        try:
            attrs["num_classes"] = int(dataset.num_classes)
        except Exception:  # a count the class cannot give is not saved
            pass
    split = None
    if callable(getattr(dataset, "get_idx_split", None)):
        split = {key: torch.as_tensor(value) for key, value in dataset.get_idx_split().items()}
    num_nodes = getattr(store._store, "_num_nodes", None)
    content = {
        "format": FORMAT,
        "data_class": data_class,
        # contiguous tensors: a view of a larger tensor would save (and map) all of it
        "store": {key: value.contiguous() if isinstance(value, Tensor) else value
                  for key, value in store._store.items()},
        "num_nodes": list(num_nodes) if num_nodes is not None else None,
        # single-graph datasets (Planetoid ...) have no slices
        "slices": None if dataset.slices is None else {key: value.contiguous() for key, value in dataset.slices.items()},
        "indices": None if dataset._indices is None else torch.as_tensor(list(dataset.indices())),
        "split": split,
        "attrs": attrs,
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        torch.save(content, partial)
        # the record first: the renamed file keeps the size and time recorded, and a reader never
        # finds the new file beside no record, or beside the old file's
        _write_record(target, _file_state(partial, with_checksum=True))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def checksum_path(path: str | os.PathLike[str]) -> Path:
    r"""Where :func:`save_mapped` keeps the size, modification time and CRC-32 of the file at
    ``path`` (:func:`is_intact` reads them)."""
    target = Path(path)
    return target.with_name(f"{target.name}.sum")


def is_intact(path: str | os.PathLike[str]) -> bool | None:
    r"""Whether the file :func:`save_mapped` wrote at ``path`` still holds the bytes it wrote:
    :obj:`None` where there is no record of them beside it (a file of an older version).

    A file of the size and modification time recorded is taken as written (a stat, no
    read). Otherwise, e.g. after bytes were overwritten in place, or for a copy that took a
    new modification time, its CRC-32 is computed again (once per process for a given size
    and time): the same bytes are intact (and the new time is recorded where the folder
    allows), others are not.

    Args:
        path (str or PathLike): The mapped file.
    """
    target = Path(path)
    try:
        text = checksum_path(target).read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return False
    try:
        recorded = json.loads(text)
        current = _file_state(target, with_checksum=False)
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict) or recorded.get("size") != current["size"]:
        return False
    if recorded.get("mtime_ns") == current["mtime_ns"]:
        return True
    seen = (str(target.resolve()), current["size"], current["mtime_ns"], recorded.get("crc32"))
    if seen not in _CHECKED:
        try:
            current = _file_state(target, with_checksum=True)
        except OSError:
            return False
        _CHECKED[seen] = recorded.get("crc32") == current["crc32"]
        if _CHECKED[seen]:
            try:  # the same bytes with a new time (a copy): no read the next time
                _write_record(target, current)
            except OSError:  # a read-only folder: checked again by the next process
                pass
    return _CHECKED[seen]


#: The CRC-32 checks :func:`is_intact` made in this process, by file, size, time and recorded CRC.
_CHECKED: dict[tuple[str, int, int, Any], bool] = {}


def record_checksum(path: str | os.PathLike[str]) -> None:
    r"""Records the size, modification time and CRC-32 of the mapped file at ``path`` beside it,
    as :func:`save_mapped` does (for a file an older version wrote without the record)."""
    target = Path(path)
    _write_record(target, _file_state(target, with_checksum=True))


def _file_state(path: Path, with_checksum: bool) -> dict[str, Any]:
    stat = path.stat()
    state: dict[str, Any] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if with_checksum:
        crc = 0
        with open(path, "rb") as file:
            while chunk := file.read(1 << 24):
                crc = zlib.crc32(chunk, crc)
        state["crc32"] = crc
    return state


def _write_record(target: Path, state: dict[str, Any]) -> None:
    r"""Writes ``state`` as the record of ``target`` (:func:`checksum_path`), atomically."""
    record = checksum_path(target)
    partial = record.with_name(f".{record.name}.{os.getpid()}.partial")
    try:
        partial.write_text(json.dumps(state))
        os.replace(partial, record)
    finally:
        partial.unlink(missing_ok=True)


class MappedDataset(InMemoryDataset):
    r"""An in-memory dataset whose collated storage is memory-mapped from the
    file :func:`save_mapped` wrote (see the module documentation).

    The tensors are mapped copy-on-write: reading shares the file's pages
    with every other process mapping it; writing to a tensor (in place) gives
    this process a private copy of the pages written, and never changes the
    file. Pickling a mapped dataset (to a spawned process) sends its path,
    not its data, and the receiving process maps the same file.

    Args:
        path (str or PathLike): File written by :func:`save_mapped`.
        transform (callable, optional): Per-access PyG transform (as for any
            PyG dataset; :class:`~gcl.data.CollatedLoader` refuses those).

    Attributes:
        path (Path): The mapped file.

    Raises:
        FileNotFoundError: No file at ``path``.
        ValueError: The file is not a mapped dataset (or of another format
            version).
    """

    _mapped: tuple[Any, ...] | None
    _split: dict[str, Tensor] | None
    _num_classes: int | None

    def __init__(self, path: str | os.PathLike[str], transform: Callable[..., Any] | None = None) -> None:
        super().__init__(None, transform)
        self.path = Path(path)
        self._map()
        if is_intact(self.path) is False:
            warnings.warn(f"{self.path}: its bytes differ from those save_mapped wrote (overwritten or damaged "
                          "since, see is_intact); mapped as they are: write it again with save_mapped",
                          stacklevel=2)

    def _map(self) -> None:
        if not self.path.is_file():
            raise FileNotFoundError(f"no mapped dataset at {self.path}")
        try:
            content = torch.load(self.path, mmap=True, weights_only=True, map_location="cpu")
        except Exception as error:
            raise ValueError(f"{self.path} is not a mapped dataset ({type(error).__name__}: {error})") from None
        if not isinstance(content, dict) or content.get("format") != FORMAT:
            found = content.get("format") if isinstance(content, dict) else type(content).__name__
            raise ValueError(f"{self.path} is not a mapped dataset of format {FORMAT} (found {found!r}); "
                             "write it again with save_mapped")
        data_class = _import_class(content["data_class"])
        data = data_class()
        for key, value in content["store"].items():
            data[key] = value
        if content["num_nodes"] is not None:
            data._store._num_nodes = content["num_nodes"]
        self._data = data
        self.slices = content["slices"]
        self._mapped = self._fingerprint()  # what pickling may replace by the path
        self._data_list = None
        self._split = content["split"]
        self._num_classes = None
        indices = content["indices"]  # a saved subset (a pickled one restores its own after this)
        self._indices = None if indices is None else indices.tolist()
        for key, value in content["attrs"].items():
            if key == "node_feature_fallback":
                value = tuple(value)
            if key == "num_classes":
                self._num_classes = int(value)
                continue
            setattr(self, key, value)

    def _fingerprint(self) -> tuple[Any, ...]:
        r"""The objects of the storage (held, so that their identities stay theirs) and the
        version counters of its tensors (which in-place writes advance)."""
        slices = self.slices
        tensors = [*self._data._store.values(), *(slices.values() if slices is not None else ())]
        return (self._data, dict(self._data._store.items()), self.slices,
                dict(slices.items()) if slices is not None else None,
                # (tensors made under torch.inference_mode keep no counter: their writes go unseen)
                tuple(None if t.is_inference() else t._version for t in tensors if isinstance(t, torch.Tensor)))

    def _unchanged(self) -> bool:
        r"""Whether the storage is still the mapped file's: the same objects (an attribute added
        by ``attach_index``, a replaced tensor or a swapped storage are other objects), none of
        them written in place (the mapping is copy-on-write: such writes never reach the file)."""
        if self._mapped is None:
            return False

        def same(old: Any, new: Any) -> bool:
            if isinstance(old, dict) and isinstance(new, dict):
                return old.keys() == new.keys() and all(old[key] is new[key] for key in old)
            if isinstance(old, tuple) and isinstance(new, tuple):  # the version counters
                return old == new
            return old is new

        return all(same(old, new) for old, new in zip(self._mapped, self._fingerprint()))

    @property
    def num_classes(self) -> int:
        r"""The saved dataset's class count (its class's own, e.g. OGB's metadata), else
        inferred from ``y`` as PyG does."""
        if self._num_classes is not None:
            return self._num_classes
        return int(super().num_classes)

    def _size(self, key: str) -> int:
        sizes = self.__dict__.get("sizes")
        if not isinstance(sizes, dict) or key not in sizes:  # not a TU dataset
            raise AttributeError(key)
        return int(sizes[key])

    @property
    def num_node_labels(self) -> int:
        r"""TU: columns of the node-label one-hot."""
        return self._size("num_node_labels")

    @property
    def num_node_attributes(self) -> int:
        r"""TU: continuous node attributes."""
        return self._size("num_node_attributes")

    @property
    def num_edge_labels(self) -> int:
        r"""TU: columns of the edge-label one-hot."""
        return self._size("num_edge_labels")

    @property
    def num_edge_attributes(self) -> int:
        r"""TU: continuous edge attributes."""
        return self._size("num_edge_attributes")

    def get_idx_split(self) -> dict[str, Tensor]:
        r"""The saved dataset's official split (OGB's ``get_idx_split()``).

        Raises:
            AttributeError: The saved dataset had no split.
        """
        if self._split is None:
            raise AttributeError(f"the dataset mapped from {self.path} has no official split")
        return dict(self._split)

    def __copy__(self) -> MappedDataset:
        # a shallow copy (what ``dataset[idx]`` makes) shares the mapping
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(self.__dict__)
        return clone

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        unchanged = self._unchanged()
        state.pop("_mapped", None)
        if unchanged:
            for key in ("_data", "slices", "_data_list", "_split", "_num_classes"):
                state.pop(key, None)
        # else the storage changed (``dataset.copy()``, ``attach_index``, a replaced tensor): pickled as it is
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_data" in state:
            self.__dict__.update(state)
            self._mapped = None
            return
        indices = state.get("_indices")
        self.__dict__.update(state)
        self._map()
        self._indices = indices

    def __repr__(self) -> str:
        name = getattr(self, "name", type(self).__name__)
        return f"{name}({len(self)}, mapped from {self.path})"
