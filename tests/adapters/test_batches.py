from __future__ import annotations

import pytest
import torch

from gcl.adapters import Batch, TensorBatches, linear_probe, split_indices


def test_tensor_batches_cover_every_sample_once_per_pass() -> None:
    inputs = torch.arange(10).float()[:, None]
    targets = torch.arange(10)
    calls: list[int] = []
    batches = TensorBatches(
        inputs, targets, batch_size=3, drop_last=False,
        generator=torch.Generator().manual_seed(0), on_epoch_start=lambda: calls.append(1),
    )
    assert len(batches) == 4
    seen = [b for b in batches]
    assert all(isinstance(b, Batch) for b in seen)
    assert sorted(torch.cat([b.targets for b in seen]).tolist()) == list(range(10))
    assert all(torch.equal(b.inputs[:, 0].long(), b.targets) for b in seen)
    list(batches)
    assert calls == [1, 1]


def test_tensor_batches_validate() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        TensorBatches(torch.zeros(4, 2), batch_size=0)
    with pytest.raises(ValueError, match="targets"):
        TensorBatches(torch.zeros(4, 2), torch.zeros(3), batch_size=2)
    with pytest.raises(ValueError, match="drop_last"):
        TensorBatches(torch.zeros(4, 2), batch_size=8)


def test_linear_probe_separable_and_split_is_stratified() -> None:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat(40)
    features = torch.randn(120, 5, generator=generator) * 0.1
    features[:, 0] += labels.float() * 3
    train, test = split_indices(labels, test_size=0.25, random_state=0)
    assert set(train.tolist()).isdisjoint(test.tolist()) and len(train) + len(test) == 120
    assert torch.bincount(labels[test]).tolist() == [10, 10, 10]
    assert linear_probe(features[train], labels[train], features[test], labels[test]) == 1.0
    noise = torch.randn(120, 5, generator=generator)
    assert linear_probe(noise[train], labels[train], noise[test], labels[test]) < 0.7


def test_evaluation_mode_puts_every_submodule_back_in_its_own_mode() -> None:
    from gcl.adapters.batches import evaluation_mode

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2), torch.nn.Dropout(0.5))
    model[1].eval()  # a layer frozen by the user inside a training model
    with evaluation_mode(model):
        assert not any(m.training for m in model.modules())
    assert model.training and model[0].training and not model[1].training and model[2].training


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_shuffled_batches_from_a_cuda_generator() -> None:
    batches = TensorBatches(torch.arange(12.0).view(12, 1), batch_size=4,
                            generator=torch.Generator("cuda").manual_seed(0))
    seen = torch.cat([batch.view(-1) for batch in batches])
    assert sorted(seen.tolist()) == [float(i) for i in range(12)]


def test_tensor_batches_index_targets_on_their_own_device() -> None:
    # inputs on another device than the targets (images on a GPU, torch.arange(M) item indices on
    # the CPU, as in PCL's recipe): the meta device stands in for the GPU
    inputs = torch.empty(10, 3, device="meta")
    targets = torch.arange(10) * 10
    batches = TensorBatches(inputs, targets, batch_size=4, drop_last=False,
                            generator=torch.Generator().manual_seed(0))
    seen = list(batches)
    assert all(b.inputs.device.type == "meta" and b.inputs.shape[1:] == (3,) for b in seen)
    assert all(b.targets.device.type == "cpu" for b in seen)
    assert sorted(torch.cat([b.targets for b in seen]).tolist()) == list(range(0, 100, 10))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tensor_batches_cuda_inputs_with_cpu_targets() -> None:
    inputs = torch.arange(12.0, device="cuda").view(12, 1)
    batches = TensorBatches(inputs, torch.arange(12), batch_size=4, generator=torch.Generator().manual_seed(0))
    for batch in batches:
        assert batch.inputs.is_cuda and batch.targets.device.type == "cpu"
        assert torch.equal(batch.inputs[:, 0].long().cpu(), batch.targets)
