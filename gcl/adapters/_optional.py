r"""Lazy imports of the optional dependencies of the adapters."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


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
            f"`pip install -e '.[{extra}]'` from the gcl repository"
        ) from error


def reset_children(module: Any) -> None:
    r"""Call ``reset_parameters()`` on every submodule of ``module`` that has one."""
    for child in module.modules():
        reset = getattr(child, "reset_parameters", None)
        if child is not module and callable(reset):
            reset()
