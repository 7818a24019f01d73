from __future__ import annotations

import collections

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gcl.losses import MemoryBank, MemoryQueue, update_momentum

# --------------------------------------------------------------------------- MemoryQueue


def _reference_fifo(size: int, batches: list[torch.Tensor]) -> list[torch.Tensor]:
    fifo: collections.deque[torch.Tensor] = collections.deque(maxlen=size)
    for batch in batches:
        for row in batch:
            fifo.append(row)
    return list(fifo)


@pytest.mark.parametrize("batch_sizes", [[3, 3, 3, 3], [4, 7, 1, 9], [12], [25, 2], [5, 13, 6]])
def test_queue_is_fifo_with_wrap_around_for_any_batch_size(batch_sizes: list[int]) -> None:
    queue = MemoryQueue(size=10, dim=2)
    batches, label_batches = [], []
    counter = 0
    for b in batch_sizes:
        keys = torch.arange(counter, counter + b, dtype=torch.float32)[:, None].repeat(1, 2)
        labels = torch.arange(counter, counter + b)
        counter += b
        batches.append(keys)
        label_batches.append(labels)
        queue.enqueue(keys, labels)
        expected = _reference_fifo(10, batches)
        contents = queue.get()
        assert len(queue) == len(expected)
        assert torch.equal(contents.keys, torch.stack(expected))
        assert contents.labels is not None
        assert torch.equal(contents.labels, contents.keys[:, 0].long())
    assert queue.is_full == (counter >= 10)


def test_queue_state_dict_resumes_exactly() -> None:
    queue = MemoryQueue(size=8, dim=3)
    queue.enqueue(torch.randn(5, 3), torch.randint(4, (5,)))
    queue.enqueue(torch.randn(6, 3), torch.randint(4, (6,)))
    state = queue.state_dict()
    assert set(state) == {"queue", "labels", "ptr", "num_filled"}
    restored = MemoryQueue(size=8, dim=3)
    restored.load_state_dict(state)
    nxt, nxt_labels = torch.randn(3, 3), torch.randint(4, (3,))
    queue.enqueue(nxt, nxt_labels)
    restored.enqueue(nxt, nxt_labels)
    a, b = queue.get(), restored.get()
    assert torch.equal(a.keys, b.keys)
    assert a.labels is not None and b.labels is not None
    assert torch.equal(a.labels, b.labels)
    assert int(queue.ptr) == int(restored.ptr) == (5 + 6 + 3) % 8


def test_queue_without_labels_and_detaches() -> None:
    queue = MemoryQueue(size=4, dim=2, store_labels=False)
    assert "labels" not in queue.state_dict()
    keys = torch.randn(3, 2, requires_grad=True)
    queue.enqueue(keys)
    contents = queue.get()
    assert contents.labels is None
    assert not contents.keys.requires_grad
    queue.reset()
    assert len(queue) == 0 and queue.get().keys.shape == (0, 2)


def test_queue_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"size must be an integer >= 1 \(got 0\)"):
        MemoryQueue(0, 4)
    queue = MemoryQueue(4, 3)
    with pytest.raises(ValueError, match="feature size 3"):
        queue.enqueue(torch.randn(2, 5), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="pass labels="):
        queue.enqueue(torch.randn(2, 3))
    with pytest.raises(ValueError, match="length 2"):
        queue.enqueue(torch.randn(2, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="store_labels=False"):
        MemoryQueue(4, 3, store_labels=False).enqueue(
            torch.randn(2, 3), torch.zeros(2, dtype=torch.long)
        )
    with pytest.raises(ValueError, match="NaN"):
        queue.enqueue(torch.full((2, 3), float("nan")), torch.zeros(2, dtype=torch.long))
    # keys are stored in a floating dtype, and not past its range
    with pytest.raises(ValueError, match=r"floating-point dtype for the keys \(got torch.int64\)"):
        MemoryQueue(4, 2, dtype=torch.long)
    half = MemoryQueue(4, 2, store_labels=False, dtype=torch.float16)
    with pytest.raises(ValueError, match=r"keys stored as torch.float16 \(a value beyond its range\) contains NaN or inf"):
        half.enqueue(torch.tensor([[1.0, 7.0e4]]))
    half.enqueue(torch.tensor([[1.0, 6.0e4]]))
    assert len(half) == 1
    assert "dtype=torch.float16" in repr(half) and "dtype" not in repr(MemoryQueue(4, 2))


# --------------------------------------------------------------------------- MemoryBank


def test_bank_momentum_update_matches_formula() -> None:
    bank = MemoryBank(num_items=6, dim=3, momentum=0.3, generator=torch.Generator().manual_seed(0))
    before = bank.get().clone()
    torch.testing.assert_close(before.norm(dim=1), torch.ones(6))
    index = torch.tensor([4, 1])
    new = torch.randn(2, 3)
    bank.update(index, new, labels=torch.tensor([7, 8]))
    after = bank.get()
    for row, i in enumerate(index.tolist()):
        mixed = 0.3 * before[i] + 0.7 * new[row]
        torch.testing.assert_close(after[i], mixed / mixed.norm())
    untouched = [0, 2, 3, 5]
    assert torch.equal(after[untouched], before[untouched])
    assert bank.labels is not None
    assert bank.labels.tolist() == [-1, 8, -1, -1, 7, -1]
    torch.testing.assert_close(bank.get(index), after[index])


def test_bank_slot_named_twice_takes_its_last_occurrence(monkeypatch: pytest.MonkeyPatch) -> None:
    bank = MemoryBank(num_items=4, dim=3, momentum=0.5, generator=torch.Generator().manual_seed(0))
    before = bank.get().clone()
    written: list[list[int]] = []
    index_copy = torch.Tensor.index_copy_

    def recording(self: torch.Tensor, dim: int, index: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        written.append(index.tolist())
        return index_copy(self, dim, index, source)

    # a device decides the winner of duplicate indices in index_copy_ as it likes: none may reach it
    monkeypatch.setattr(torch.Tensor, "index_copy_", recording)
    new = torch.randn(4, 3)
    bank.update(torch.tensor([2, 0, 2, 3]), new, labels=torch.tensor([5, 6, 7, 8]))
    assert written and all(len(set(index)) == len(index) for index in written)
    after = bank.get()
    for slot, row in ((0, 1), (2, 2), (3, 3)):
        mixed = 0.5 * before[slot] + 0.5 * new[row]
        torch.testing.assert_close(after[slot], mixed / mixed.norm())
    assert torch.equal(after[1], before[1])
    assert bank.labels is not None and bank.labels.tolist() == [6, -1, 7, 8]


def test_bank_zero_momentum_overwrites_and_state_dict_round_trips() -> None:
    bank = MemoryBank(5, 2, momentum=0.0)
    new = torch.randn(5, 2)
    bank.update(torch.arange(5), new)
    torch.testing.assert_close(bank.get(), F.normalize(new, dim=1))
    restored = MemoryBank(5, 2, momentum=0.0)
    restored.load_state_dict(bank.state_dict())
    assert torch.equal(restored.get(), bank.get())
    assert set(bank.state_dict()) == {"bank", "labels"}


def test_bank_sample_is_seeded() -> None:
    bank = MemoryBank(50, 4)
    a = bank.sample(10, generator=torch.Generator().manual_seed(1))
    b = bank.sample(10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[1], b[1]) and torch.equal(a[0], bank.get(a[1]))
    assert a[0].shape == (10, 4) and a[2] is not None


def test_bank_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\) \(got 1.0\)"):
        MemoryBank(4, 2, momentum=1.0)
    bank = MemoryBank(4, 2)
    with pytest.raises(ValueError, match=r"indices values must lie in \[0, 4\)"):
        bank.update(torch.tensor([1, 4]), torch.randn(2, 2))
    with pytest.raises(ValueError, match="indices must be a 1-D tensor of length 2"):
        bank.update(torch.tensor([1]), torch.randn(2, 2))
    with pytest.raises(ValueError, match="feature size 2"):
        bank.update(torch.tensor([1]), torch.randn(1, 3))
    with pytest.raises(ValueError, match="store_labels=False"):
        MemoryBank(4, 2, store_labels=False).update(
            torch.tensor([1]), torch.randn(1, 2), torch.tensor([0])
        )


# --------------------------------------------------------------------------- momentum


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def test_update_momentum_is_ema_and_copies_buffers() -> None:
    online, target = _net(), _net()
    online.train()
    online(torch.randn(8, 3))  # moves the batch-norm running statistics
    before = {k: v.clone() for k, v in target.state_dict().items()}
    update_momentum(online, target, momentum=0.9)
    for name, param in target.named_parameters():
        expected = 0.9 * before[name] + 0.1 * dict(online.named_parameters())[name].detach()
        torch.testing.assert_close(param.detach(), expected)
    for name, buffer in target.named_buffers():
        assert torch.equal(buffer, dict(online.named_buffers())[name])
    update_momentum(online, target, momentum=0.0)
    for (_, a), (_, b) in zip(online.named_parameters(), target.named_parameters()):
        assert torch.equal(a, b)
    assert not any(p.grad is not None for p in target.parameters())


def test_update_momentum_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\] \(got 1.5\)"):
        update_momentum(_net(), _net(), 1.5)
    with pytest.raises(ValueError, match="differ in parameters"):
        update_momentum(_net(), nn.Linear(3, 4), 0.5)
    with pytest.raises(ValueError, match="shape"):
        update_momentum(nn.Linear(3, 4), nn.Linear(3, 5), 0.5)


def test_queue_contents_are_copies_that_later_writes_leave_alone() -> None:
    """MoCo's loop enqueues the new keys before backward(): the loss's saved negatives must
    not be the buffer the enqueue writes (before, a filling queue handed out a view, and
    backward() failed with an in-place modification error)."""
    from gcl.losses import InfoNCE

    queue = MemoryQueue(8, 4, store_labels=False)
    queue.enqueue(torch.ones(2, 4))
    snapshot = queue.get().keys
    query = torch.randn(3, 4, requires_grad=True)
    loss = InfoNCE(0.1, normalize=False)(query, torch.randn(3, 4), negatives=snapshot)
    queue.enqueue(torch.full((7, 4), 9.0))  # wraps around
    loss.backward()
    assert torch.equal(snapshot, torch.ones(2, 4))
    assert query.grad is not None


def test_bank_contents_are_copies_that_later_updates_leave_alone() -> None:
    bank = MemoryBank(5, 3, momentum=0.0)
    everything = bank.get()
    before = everything.clone()
    bank.update(torch.tensor([1, 3]), torch.randn(2, 3))
    assert torch.equal(everything, before)


def test_update_momentum_moves_online_values_to_the_target() -> None:
    """A key encoder kept on another device or in another dtype: values follow the target."""
    online = _net()
    online.train()
    online(torch.randn(8, 3))
    target = _net().to(torch.float64)
    before = {k: v.clone() for k, v in target.named_parameters()}
    update_momentum(online, target, momentum=0.5)
    for name, param in target.named_parameters():
        assert param.dtype == torch.float64
        expected = 0.5 * before[name] + 0.5 * dict(online.named_parameters())[name].detach().double()
        torch.testing.assert_close(param.detach(), expected)
    on_meta = _net().to("meta")  # another device than the online network's
    update_momentum(online, on_meta, momentum=0.5)
    assert all(t.device.type == "meta" for t in [*on_meta.parameters(), *on_meta.buffers()])


def test_numpy_sizes_and_bool_positions() -> None:
    import numpy as np

    queue = MemoryQueue(np.int64(16), np.int32(4), store_labels=False)
    queue.enqueue(torch.randn(5, 4))
    assert queue.get().keys.shape == (5, 4)
    bank = MemoryBank(np.int64(6), 2, momentum=0.0, store_labels=False)
    mask = torch.tensor([False, False, True])  # a mask, not slots 0 and 1
    with pytest.raises(ValueError, match="indices must hold integer positions, not a bool mask"):
        bank.update(mask, torch.randn(3, 2))
    with pytest.raises(ValueError, match="indices must hold integer positions, not a bool mask"):
        bank.get(torch.zeros(6, dtype=torch.bool))
    with pytest.raises(ValueError, match="size must be an integer >= 1"):
        MemoryQueue(np.float64(16.0), 4)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
def test_bank_get_reads_the_rows_of_narrow_integer_indices(dtype: torch.dtype) -> None:
    """A uint8 index used to be taken as a bool mask (other rows, silently) and int8/int16
    ones crashed; update() read them as positions all along."""
    bank = MemoryBank(6, 3, generator=torch.Generator().manual_seed(0))
    positions = torch.tensor([1, 0, 1, 5, 2, 2])  # as many as slots: a uint8 mask would fit
    assert torch.equal(bank.get(positions.to(dtype)), bank.get(positions))
