from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

pytest.importorskip("kornia")

import gcl.losses
from gcl.adapters import Batch
from gcl.adapters.image import (
    PCL,
    AdversarialSimCLR,
    ImageAugment,
    IMix,
    MoCHi,
    MoCo,
    SimCLR,
    SmallResNet,
    SupCon,
    load_digits,
)


def identity(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    return images


def naive_nt_xent(z1: Tensor, z2: Tensor, temperature: float) -> float:
    z = F.normalize(torch.cat([z1, z2]), dim=1).double()
    n = z1.size(0)
    total = 0.0
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        denominator = sum(math.exp(float(z[i] @ z[j]) / temperature) for j in range(2 * n) if j != i)
        total -= math.log(math.exp(float(z[i] @ z[positive]) / temperature) / denominator)
    return total / (2 * n)


@pytest.fixture(scope="module")
def digits() -> tuple[Tensor, Tensor]:
    data = load_digits()
    return data.images[:64], data.labels[:64]


def test_methods_reuse_the_loss_core_unchanged() -> None:
    encoder, augment = SmallResNet(1, 8), ImageAugment.digits()
    assert type(SimCLR(encoder, augment).loss) is gcl.losses.InfoNCE
    assert type(AdversarialSimCLR(encoder, augment).loss) is gcl.losses.InfoNCE
    assert type(MoCo(encoder, augment, queue_size=32).loss) is gcl.losses.InfoNCE
    assert type(MoCo(encoder, augment, queue_size=32).queue) is gcl.losses.MemoryQueue
    assert type(SupCon(encoder, augment).loss) is gcl.losses.SupConLoss
    assert type(PCL(encoder, augment, num_items=10, num_clusters=[2], queue_size=32).loss) is gcl.losses.ProtoNCELoss
    assert type(MoCHi(encoder, augment, queue_size=32).loss) is gcl.losses.MoCHiLoss
    assert type(IMix(encoder, augment).loss) is gcl.losses.IMixLoss


def test_simclr_pairs_the_two_views_of_each_image(digits: tuple[Tensor, Tensor]) -> None:
    torch.manual_seed(0)
    method = SimCLR(SmallResNet(1, 8), identity).eval()
    images = digits[0][:6]
    z = method.project(torch.cat([images, images])).detach()
    expected = naive_nt_xent(z[:6], z[6:], 0.5)
    assert float(method(images).detach()) == pytest.approx(expected, rel=1e-5)


def test_moco_loss_queue_and_momentum(digits: tuple[Tensor, Tensor]) -> None:
    torch.manual_seed(0)
    method = MoCo(SmallResNet(1, 8), identity, queue_size=16, momentum=0.5,
                  generator=torch.Generator().manual_seed(0)).eval()
    images = digits[0][:4]
    queue_before = method.queue.get().keys.clone()
    q, k = method.project(images), method.keys(images)
    qn, kn = F.normalize(q, dim=1), F.normalize(k, dim=1)
    logits = torch.cat([(qn * kn).sum(1, keepdim=True), qn @ queue_before.T], dim=1) / 0.2
    expected = F.cross_entropy(logits, torch.zeros(4, dtype=torch.long))
    assert float(method(images).detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert torch.equal(method.queue.get().keys, queue_before)  # eval: nothing enqueued
    method.train()
    with torch.no_grad():
        for p in method.encoder.parameters():
            p.add_(1.0)
    key_before = [p.clone() for p in method.key_encoder.parameters()]
    method(images)
    for before, online, key in zip(key_before, method.encoder.parameters(), method.key_encoder.parameters()):
        assert torch.allclose(key, 0.5 * before + 0.5 * online)
    assert torch.equal(method.queue.get().keys[:-4], queue_before[4:])  # FIFO: 4 newest keys at the end


def test_supcon_requires_labels_and_accepts_batch(digits: tuple[Tensor, Tensor]) -> None:
    method = SupCon(SmallResNet(1, 8), ImageAugment.digits())
    images, labels = digits
    with pytest.raises(ValueError, match="labels"):
        method(images)
    assert float(method(Batch(images, labels)).detach()) > 0


def test_adversarial_view_is_an_fgsm_step_that_raises_the_loss(digits: tuple[Tensor, Tensor]) -> None:
    torch.manual_seed(0)
    method = AdversarialSimCLR(SmallResNet(1, 8), ImageAugment.digits(), epsilon=0.05).eval()
    images = digits[0][:16]
    view1 = ImageAugment.digits()(images, torch.Generator().manual_seed(0))
    view2 = ImageAugment.digits()(images, torch.Generator().manual_seed(1))
    adversarial = method.adversarial_view(view1, view2)
    step = (adversarial - view1).abs()
    interior = (view1 > 0.05) & (view1 < 0.95)
    assert torch.allclose(step[interior], torch.full_like(step[interior], 0.05), atol=1e-6)
    assert all(p.grad is None for p in method.parameters())
    with torch.no_grad():
        clean = method.loss(method.project(view1), method.project(view2))
        attacked = method.loss(method.project(adversarial), method.project(view2))
    assert float(attacked) > float(clean)
    with pytest.raises(ValueError, match="epsilon"):
        AdversarialSimCLR(SmallResNet(1, 8), identity, epsilon=-1.0)


def test_pcl_rescales_concentrations_to_any_real_loss_temperature() -> None:
    for temperature in (1, 1.0, 0.5):
        method = PCL(SmallResNet(1, 8), identity, num_items=10, num_clusters=[2], queue_size=16,
                     loss=gcl.losses.ProtoNCELoss(temperature=temperature))
        assert method.concentration_temperature == float(temperature)


def test_pcl_e_step_then_prototype_term(digits: tuple[Tensor, Tensor]) -> None:
    torch.manual_seed(0)
    images = digits[0][:40]
    method = PCL(SmallResNet(1, 8), identity, num_items=40, num_clusters=[3, 5], queue_size=32,
                 generator=torch.Generator().manual_seed(0)).eval()
    index = torch.arange(8)
    instance_only = float(method(images[:8], index).detach())
    assert not method.has_prototypes
    method.update_prototypes(images)
    assert method.has_prototypes
    assert int(method.assignments[0].max()) < 3 and int(method.assignments[1].max()) < 5
    assert float(method(Batch(images[:8], index)).detach()) > instance_only  # prototype term added
    with pytest.raises(ValueError, match="num_clusters"):
        PCL(SmallResNet(1, 8), identity, num_items=4, num_clusters=[5])


@pytest.mark.parametrize("name", ["simclr", "supcon", "imix", "adversarial"])
def test_loss_falls_over_a_few_steps(name: str, digits: tuple[Tensor, Tensor]) -> None:
    torch.manual_seed(0)
    images, labels = digits[0][:24], digits[1][:24]
    encoder, augment = SmallResNet(1, 8), ImageAugment.digits()
    generator = torch.Generator().manual_seed(0)
    method = {
        "simclr": lambda: SimCLR(encoder, augment),
        "supcon": lambda: SupCon(encoder, augment),
        "imix": lambda: IMix(encoder, augment),
        "adversarial": lambda: AdversarialSimCLR(encoder, augment),
    }[name]()
    method.generator = generator
    optimizer = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(10):
        loss = method(images, labels) if name == "supcon" else method(images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3


@pytest.mark.parametrize("cls", [MoCo, MoCHi])
def test_query_network_learns_against_fixed_keys(cls: type, digits: tuple[Tensor, Tensor]) -> None:
    # A MoCo loss rises while its queue fills with real keys, so "falls within a few
    # steps" is checked with the key side held fixed: a frozen key network
    # (momentum 1) and the same queue every step. The query path must then descend.
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    method = cls(SmallResNet(1, 8), ImageAugment.digits(), queue_size=32, momentum=1.0, generator=generator)
    method.generator = generator
    queue = {k: v.clone() for k, v in method.queue.state_dict().items()}
    optimizer = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(10):
        method.queue.load_state_dict(queue)
        loss = method(digits[0][:24])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3


def test_moco_key_splits_normalise_each_key_within_its_part(digits: tuple[Tensor, Tensor]) -> None:
    # MoCo's shuffling BN in one process: with key_splits=2 every key equals the key network's
    # output on the random half of the batch it was drawn into (its batch statistics), not on
    # the whole batch the query saw
    images = digits[0][:8]
    method = MoCo(SmallResNet(1, 8), identity, queue_size=16, key_splits=2,
                  generator=torch.Generator().manual_seed(0)).train()
    assert method.generator is not None
    state = method.generator.get_state()
    keys = method.keys(images)
    order = torch.randperm(8, generator=torch.Generator().set_state(state))
    expected = torch.empty_like(keys)
    with torch.no_grad():
        for part in order.tensor_split(2):
            expected[part] = method.key_head(method.key_encoder(images[part]))
        whole = method.key_head(method.key_encoder(images))
    assert torch.allclose(keys, expected, atol=1e-6)
    assert not torch.allclose(keys, whole, atol=1e-3)
    assert torch.allclose(method.eval().keys(images), method.key_head(method.key_encoder(images)))
    method.train()
    assert float(method(images).detach()) > 0
    with pytest.raises(ValueError, match="key_splits=2 needs at least 4 items per batch"):
        method(images[:3])
    with pytest.raises(ValueError, match="key_splits must be an integer >= 1"):
        MoCo(SmallResNet(1, 8), identity, key_splits=0)


def test_embed_uses_running_statistics_and_leaves_them(digits: tuple[Tensor, Tensor]) -> None:
    images = digits[0][:8]
    method = SimCLR(SmallResNet(1, 8), identity).train()
    stats = [b.clone() for b in method.encoder.buffers()]
    features = method.embed(images)
    assert method.training and method.encoder.training  # mode restored
    assert all(torch.equal(a, b) for a, b in zip(stats, method.encoder.buffers()))
    assert torch.allclose(features[:1], method.embed(images[:1]), atol=1e-5)  # each image on its own


def test_bad_inputs_of_the_image_methods_are_named(digits: tuple[Tensor, Tensor]) -> None:
    images, labels = digits
    with pytest.raises(ValueError, match="SupCon needs at least 2 images per batch"):
        SupCon(SmallResNet(1, 8), identity)(images[:1], labels[:1])
    with pytest.raises(ValueError, match=r"images are torch.float64 but the encoder's weights are torch.float32"):
        SimCLR(SmallResNet(1, 8), identity)(images[:4].double())
    method = PCL(SmallResNet(1, 8), identity, num_items=10, num_clusters=[2], queue_size=16)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 10\) \(num_items; got 0 to 99\)"):
        method(images[:2], torch.tensor([0, 99]))
    with pytest.raises(ValueError, match="one position per image"):
        method(images[:2], torch.tensor([0]))
    with pytest.raises(ValueError, match="1-D integer tensor"):
        method(images[:2], torch.tensor([0.0, 1.0]))


def test_supcon_and_pcl_check_the_images_before_counting_them(digits: tuple[Tensor, Tensor]) -> None:
    images, labels = digits
    supcon = SupCon(SmallResNet(1, 8), identity)
    with pytest.raises(ValueError, match=r"images must be a torch.Tensor \(got list\)"):
        supcon(list(images[:4]), labels[:4])
    pcl = PCL(SmallResNet(1, 8), identity, num_items=10, num_clusters=[2], queue_size=16)
    key_weights = [p.detach().clone() for p in pcl.key_encoder.parameters()]
    with pytest.raises(ValueError, match=r"images must not be empty \(got shape \(0, 1, 8, 8\)\)"):
        pcl(torch.rand(0, 1, 8, 8), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"images must be a torch.Tensor \(got list\)"):
        pcl(list(images[:2]), torch.tensor([0, 1]))
    # refused before the momentum update
    assert all(torch.equal(a, b) for a, b in zip(key_weights, pcl.key_encoder.parameters()))


def test_the_adversarial_attack_leaves_the_running_statistics(digits: tuple[Tensor, Tensor]) -> None:
    images = digits[0][:8]
    method = AdversarialSimCLR(SmallResNet(1, 8), identity, epsilon=0.05).train()
    before = [b.clone() for b in method.buffers()]
    method.adversarial_view(images, images)
    assert all(torch.equal(a, b) for a, b in zip(before, method.buffers()))
    method(images)  # the training pass itself updates them, once
    tracked = [b for name, b in method.named_buffers() if name.endswith("num_batches_tracked")]
    assert tracked and all(int(b) == 1 for b in tracked)
