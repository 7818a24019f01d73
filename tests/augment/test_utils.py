from __future__ import annotations

import pytest
import torch

from gcl.augment import _utils


@pytest.mark.parametrize("numpy_on_cpu", [True, False])
@pytest.mark.parametrize("grouped", [True, False])
def test_pointer_is_the_cumulative_count(numpy_on_cpu, grouped, monkeypatch) -> None:
    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", numpy_on_cpu)
    generator = torch.Generator().manual_seed(0)
    for size in (1, 5, 40):
        counts = torch.randint(0, 4, (size,), generator=generator)  # empty groups too, the last included
        index = torch.repeat_interleave(torch.arange(size), counts)
        if not grouped:
            index = index[torch.randperm(index.numel(), generator=generator)]
        ptr = _utils.pointer(index, size)
        assert ptr.dtype == torch.long
        assert ptr.tolist() == [0, *torch.cumsum(counts, 0).tolist()]


@pytest.mark.parametrize("numpy_on_cpu", [True, False])
def test_count_true(numpy_on_cpu, monkeypatch) -> None:
    monkeypatch.setattr(_utils, "NUMPY_ON_CPU", numpy_on_cpu)
    mask = torch.rand(1000, generator=torch.Generator().manual_seed(1)) < 0.3
    assert _utils.count_true(mask) == int(mask.sum())
    assert _utils.count_true(mask[::3]) == int(mask[::3].sum())  # strided views too
    assert _utils.count_true(torch.zeros(0, dtype=torch.bool)) == 0
