r"""Dataset resolution: TU, OGB and node-level benchmarks, offline first.

>>> from gcl.data import load_dataset
>>> dataset = load_dataset("MUTAG")
"""

from gcl.data.features import FEATURE_MODES, add_fallback_features, attach_index, one_hot_degree
from gcl.data.loader import CollatedLoader, DatasetBatches, moved_to, ordered_batches
from gcl.data.loaders import check_tu_raw, load_dataset, register_safe_globals
from gcl.data.mapped import MappedDataset, save_mapped
from gcl.data.prefetch import ViewPrefetcher
from gcl.data.registry import SPECS, DatasetSpec, get_spec, known_datasets
from gcl.data.roots import (
    CorruptDatasetError,
    DatasetNotFoundError,
    Located,
    cache_dir,
    locate,
    search_roots,
)

__all__ = [
    "FEATURE_MODES",
    "SPECS",
    "CollatedLoader",
    "CorruptDatasetError",
    "DatasetBatches",
    "DatasetNotFoundError",
    "DatasetSpec",
    "Located",
    "MappedDataset",
    "ViewPrefetcher",
    "add_fallback_features",
    "attach_index",
    "cache_dir",
    "check_tu_raw",
    "get_spec",
    "known_datasets",
    "load_dataset",
    "locate",
    "moved_to",
    "one_hot_degree",
    "ordered_batches",
    "register_safe_globals",
    "save_mapped",
    "search_roots",
]
