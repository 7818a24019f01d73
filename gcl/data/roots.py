r"""Where datasets are looked for, and where derived files are written.

Search order for raw files (first match wins):

1. the explicit ``root`` argument,
2. ``$GCL_DATA`` (several roots may be joined with ``os.pathsep``),
3. the ``datasets/`` folder shipped with the repository,
4. the user cache directory (``$GCL_CACHE``, else ``$XDG_CACHE_HOME/gcl``, else
   ``~/.cache/gcl``), where online downloads land.

A root holds families in the layout ``<root>/TU/NAME/raw/``,
``<root>/OGB/ogbg_NAME/``, ``<root>/Planetoid/NAME/raw/``, ``<root>/Amazon/NAME/raw``,
``<root>/Coauthor/NAME/raw``, ``<root>/WikiCS/raw``; a root may also point
directly at a family folder (``<root>/NAME/raw/``), or at the dataset's own
folder (``<root>/TU/NAME``) or its ``raw/`` folder. A dataset may be shipped
packed as ``<folder>/NAME.tar.xz`` holding ``NAME/raw/...`` (``<root>/TU/NAME/NAME.tar.xz``,
``<root>/Planetoid/Cora/Cora.tar.xz``); it is unpacked once into the cache.

Raw roots are treated as read-only: processed caches and unpacked archives
always go to the user cache directory, never next to the raw files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gcl.data.locks import held_lock
from gcl.data.registry import DatasetSpec

REPO_DATASETS = Path(__file__).resolve().parents[2] / "datasets"


class DatasetNotFoundError(FileNotFoundError):
    r"""A dataset's raw files are in none of the searched roots and cannot be downloaded."""


class CorruptDatasetError(ValueError):
    r"""A raw or packed dataset file exists but cannot be read."""


def cache_dir() -> Path:
    r"""Return the user cache directory (created on demand)."""
    env = os.environ.get("GCL_CACHE")
    if env:
        path = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base).expanduser() / "gcl"
    path.mkdir(parents=True, exist_ok=True)
    return path


def search_roots(root: str | os.PathLike[str] | None = None) -> list[Path]:
    r"""Return the roots searched for raw files, in priority order: absolute paths as given
    (symbolic links kept, so that a root named as a dataset's folder is recognised by that name
    whatever the link's target is called), one per folder they resolve to."""
    roots: list[Path] = []
    if root is not None:
        roots.append(Path(root).expanduser())
    env = os.environ.get("GCL_DATA")
    if env:
        roots.extend(Path(p).expanduser() for p in env.split(os.pathsep) if p)
    roots.append(REPO_DATASETS)
    roots.append(cache_dir() / "download")
    unique: dict[Path, Path] = {}
    for path in roots:
        unique.setdefault(path.resolve(), Path(os.path.abspath(path)))
    return list(unique.values())


@dataclass(frozen=True)
class Located:
    r"""Where a dataset was found.

    Args:
        root (Path): The search root that holds it.
        folder (Path): The dataset folder (holding ``raw/`` etc.).
        archive (Path | None): The packed archive, when the dataset is packed.
    """

    root: Path
    folder: Path
    archive: Path | None = None

    def size_bytes(self) -> int:
        r"""Disk size of the raw files (or the archive)."""
        if self.archive is not None:
            return self.archive.stat().st_size
        return sum(f.stat().st_size for f in self.folder.rglob("*") if f.is_file()
                   and "processed" not in f.relative_to(self.folder).parts)


def candidate_folders(spec: DatasetSpec, root: Path) -> list[Path]:
    r"""Folders where ``spec`` may live for the root ``root``: inside it (``root/FAMILY/NAME``,
    ``root/NAME``), or ``root`` itself when it is the dataset's own folder or that folder's
    ``raw/`` (:func:`own_folder`)."""
    folders = [root / spec.family / spec.folder, root / spec.folder]
    own = own_folder(spec, root)
    if own is not None and own not in folders:
        folders.append(own)
    return folders


def layout_folders(spec: DatasetSpec, root: Path) -> list[Path]:
    r"""The folders that are ``spec``'s copy in ``root`` by the layout alone, whatever they hold:
    ``root/FAMILY/NAME`` (``root/OGB/ogbg_molhiv``, ``root/Planetoid/Cora``, ``root/WikiCS``), and
    ``root/NAME`` when ``root`` is the family folder by its name (``.../TU`` for MUTAG), by the name
    given or by the name of the folder a symbolic link leads to. Unlike the other
    :func:`candidate_folders`, an existing one of these is the dataset's copy even without its
    ``raw/`` folder (an explicit ``root`` holding it empty is an error, not a reason to search on)."""
    folders = [root / spec.family / spec.folder]
    if spec.folder != "." and spec.family in {path.name for path in (root, root.resolve())}:
        folders.append(root / spec.folder)
    return folders


def own_folder(spec: DatasetSpec, root: Path) -> Path | None:
    r"""The dataset folder of ``spec`` that ``root`` is, by its name (``.../TU/MUTAG`` for MUTAG,
    ``.../WikiCS`` for WikiCS, whose files lie in the family folder), or whose ``raw/`` folder
    ``root`` is (``.../TU/MUTAG/raw``), by the name given or by the name of the folder a
    symbolic link leads to; ``None`` when ``root`` is neither."""
    name = spec.family if spec.folder == "." else Path(spec.folder).name
    for path in dict.fromkeys((root, root.resolve())):
        if path.name == "raw" and path.parent.name == name:
            return path.parent
        if path.name == name:
            return path
    return None


def _complete(spec: DatasetSpec, folder: Path) -> bool:
    return not missing_files(spec, folder)


def locate(spec: DatasetSpec, roots: list[Path]) -> Located | None:
    r"""Find ``spec`` in the first root that holds all of its raw files (or its archive)."""
    for root in roots:
        for folder in candidate_folders(spec, root):
            if _complete(spec, folder):
                return Located(root, folder.resolve())
            archive = folder / f"{spec.folder}.tar.xz"
            if archive.is_file():
                return Located(root, folder.resolve(), archive.resolve())
    return None


def _key(path: Path) -> str:
    return hashlib.sha1(str(path).encode()).hexdigest()[:12]


def raw_fingerprint(folder: Path) -> str:
    r"""Names, sizes and modification times of the raw files under ``folder`` (``processed``
    folders aside): a cache built from them is rebuilt when one of them changes."""
    entries = []
    for current, dirs, files in os.walk(folder, followlinks=True):  # raw/ may be a link
        dirs[:] = sorted(d for d in dirs if d != "processed")
        for name in files:
            path = Path(current) / name
            stat = path.stat()
            entries.append(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}")
    entries.sort()
    return hashlib.sha1("\n".join(entries).encode()).hexdigest()[:8]


def missing_files(spec: DatasetSpec, folder: Path) -> list[str]:
    r"""The raw files of ``spec`` that ``folder`` lacks."""
    return [f for f in spec.files if not (folder / f).is_file()]


def unpack(spec: DatasetSpec, archive: Path) -> Path:
    r"""Unpack ``archive`` once into the cache and return the dataset folder inside it.

    The archive must contain ``NAME/raw/...``. Extraction goes to a temporary
    folder that is renamed into place, so an interrupted unpack never leaves a
    half-written dataset behind. Processes that unpack the same archive at
    once take turns (a lock file next to the folder): the first unpacks, the
    others find the folder complete.
    """
    stat = archive.stat()
    # size and modification time: an archive replaced by another of the same size is unpacked again
    target_root = cache_dir() / "unpacked" / f"{_key(archive)}-{stat.st_size}-{stat.st_mtime_ns}"
    folder = target_root / spec.folder
    if _complete(spec, folder):
        return folder
    with held_lock(target_root / ".unpack.lock"):
        if _complete(spec, folder):  # another process unpacked it while this one waited
            return folder
        return _unpack_into(spec, archive, target_root, folder)


def _unpack_into(spec: DatasetSpec, archive: Path, target_root: Path, folder: Path) -> Path:
    try:
        with staging(target_root, ".unpack-") as tmp:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
            missing = missing_files(spec, tmp / spec.folder)
            if missing:
                raise CorruptDatasetError(
                    f"Archive {archive} does not contain the files {spec.name} needs "
                    f"(missing inside '{spec.folder}/': {', '.join(missing)})."
                )
            move_into_place(tmp / spec.folder, folder)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise CorruptDatasetError(f"Cannot unpack {archive}: {exc}") from exc
    return folder


@contextmanager
def staging(parent: Path, prefix: str) -> Iterator[Path]:
    r"""A new temporary folder in ``parent`` (created if missing), removed when the ``with``
    block ends, however it ends: a dataset folder is built there and moved into place with
    :func:`move_into_place` once complete, so an interruption never leaves half of one."""
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def move_into_place(staged: Path, folder: Path) -> None:
    r"""Moves the complete folder ``staged`` to ``folder``, replacing what is there."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, folder)


def mirror(spec: DatasetSpec, folder: Path, tag: str) -> Path:
    r"""Build a writable mirror of ``folder`` in the cache and return its root.

    The mirror links every entry of the raw dataset folder (``raw/``,
    ``split/`` ...) and gets its own ``processed/`` folder, so PyG / OGB write
    their caches there and never next to the raw files. ``tag`` separates
    caches built with different options (e.g. node-feature fallbacks).
    """
    root = cache_dir() / "processed" / spec.family / f"{_key(folder)}-{raw_fingerprint(folder)}-{tag}"
    dest = root / spec.folder
    dest.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.name.startswith("processed"):
            continue
        link = dest / entry.name
        if link.is_symlink() or link.exists():
            if link.is_symlink() and link.resolve() == entry.resolve():
                continue
            if link.is_dir() and not link.is_symlink():
                shutil.rmtree(link)
            else:
                link.unlink()
        try:
            link.symlink_to(entry, target_is_directory=entry.is_dir())
        except FileExistsError:  # another process linked it meanwhile
            if not (link.is_symlink() and link.resolve() == entry.resolve()):
                raise
        except OSError:  # filesystems without symlinks: copy instead
            if entry.is_dir():
                shutil.copytree(entry, link)
            else:
                shutil.copy2(entry, link)
    return root
