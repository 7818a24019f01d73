r"""gcl: graph contrastive learning for PyTorch Geometric.

Subpackages are imported lazily so that ``import gcl.losses`` pulls in torch
only, and ``import gcl.augment`` does not import the model zoo.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = (
    "adapters",
    "augment",
    "bench",
    "cli",
    "data",
    "eval",
    "losses",
    "methods",
    "nn",
    "train",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"gcl.{name}")
    raise AttributeError(f"module 'gcl' has no attribute {name!r}")
