r"""Argument checks shared by the subpackages (private)."""

from __future__ import annotations

from typing import Literal, overload

import numpy as np
import torch


@overload
def check_switch(name: str, value: object, optional: Literal[False] = False) -> bool: ...


@overload
def check_switch(name: str, value: object, optional: bool) -> bool | None: ...


def check_switch(name: str, value: object, optional: bool = False) -> bool | None:
    r"""``value`` as a :class:`bool` (a NumPy bool too; :obj:`None` where ``optional``), or
    :class:`ValueError`: ``0``, ``"no"`` or a config file's ``"false"`` would otherwise read
    as a truth value."""
    if value is None and optional:
        return None
    if not isinstance(value, (bool, np.bool_)):
        allowed = "True, False or None" if optional else "True or False"
        raise ValueError(f"{name} must be {allowed} (got {value!r})")
    return bool(value)


def check_generator(name: str, value: object) -> torch.Generator | None:
    r"""``value`` if it is a :class:`torch.Generator` or :obj:`None`, else
    :class:`TypeError`: a seed or a NumPy generator would otherwise fail only at
    the first draw, deep inside torch."""
    if value is not None and not isinstance(value, torch.Generator):
        kind = type(value)
        found = repr(value) if kind.__module__ == "builtins" else f"a {kind.__module__}.{kind.__qualname__}"
        raise TypeError(f"{name} must be a torch.Generator or None (got {found})")
    return value
