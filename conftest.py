"""Configuration shared by the tests and the docstring examples of ``gcl``.

The examples assume ``import torch``, as PyTorch's and PyG's do; every other name
they use is imported in the example itself (or defined in the module it documents).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest
import torch

# Tests and examples run offline and must not touch the user's cache: every run
# gets its own cache directory unless the caller chose one.
os.environ.setdefault("GCL_OFFLINE", "1")
os.environ.setdefault("GCL_CACHE", tempfile.mkdtemp(prefix="gcl-test-cache-"))


@pytest.fixture(autouse=True)
def _doctest_torch(doctest_namespace: dict[str, Any]) -> None:
    doctest_namespace["torch"] = torch
