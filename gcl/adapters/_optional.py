r"""Lazy imports of the optional dependencies of the adapters."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str) -> ModuleType:
    r"""Imports ``module`` or raises an :class:`ImportError` naming the extra to install.

    Args:
        module (str): Module name, e.g. ``"kornia.augmentation"``.
        extra (str): The ``gcl`` extra that provides it, e.g. ``"image"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = module.split(".")[0]
        raise ImportError(
            f"{top} is required for gcl.adapters.{extra}; install it with "
            f"`pip install gcl[{extra}]`"
        ) from error
