"""Fixtures for the encoder tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_thread() -> Iterator[None]:
    # The tensors here are small; on a shared, busy CPU intra-op threads mostly
    # wait for each other, so one thread is several times faster.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
