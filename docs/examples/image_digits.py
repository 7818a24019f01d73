"""Self-supervised pre-training on scikit-learn's 8x8 digits, then a linear probe.

Every method is built from gcl.losses objects by gcl.adapters.image and trained by the
one loop, gcl.train.fit. The probe (logistic regression on frozen encoder features) is
fitted on a stratified 70 % training split and scored on the held-out 30 %; the
encoders are pre-trained on the training split only. The same probe on the randomly
initialised encoder is the baseline.

    python docs/examples/image_digits.py                       # SimCLR, about a minute
    python docs/examples/image_digits.py --methods all         # every method (the benchmark table)
    python docs/examples/image_digits.py --methods moco pcl --epochs 10
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time

import torch
from torch import nn

from gcl.adapters import TensorBatches, linear_probe, split_indices
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
from gcl.train import fit

METHODS = ("simclr", "moco", "supcon", "pcl", "mochi", "imix", "adversarial")


def build(name: str, encoder: nn.Module, num_items: int, generator: torch.Generator) -> nn.Module:
    augment = ImageAugment.digits()
    if name == "simclr":
        return SimCLR(encoder, augment, generator=generator)
    if name == "moco":
        return MoCo(encoder, augment, queue_size=1024, momentum=0.99, generator=generator)
    if name == "supcon":
        return SupCon(encoder, augment, generator=generator)
    if name == "pcl":
        return PCL(encoder, augment, num_items, num_clusters=[10, 30], queue_size=1024, generator=generator)
    if name == "mochi":
        return MoCHi(encoder, augment, queue_size=1024, generator=generator)
    if name == "imix":
        return IMix(encoder, augment, generator=generator)
    if name == "adversarial":
        return AdversarialSimCLR(encoder, augment, epsilon=0.03, generator=generator)
    raise ValueError(f"unknown method {name!r}; choose from {METHODS}")


class EStep:
    """PCL's E-step before every epoch after the first (the first is the warm-up with the
    instance term only): cluster the whole training split."""

    def __init__(self, method: PCL, images: torch.Tensor) -> None:
        self.method, self.images, self.epochs_seen = method, images, 0

    def __call__(self) -> None:
        if self.epochs_seen > 0:
            self.method.update_prototypes(self.images)
        self.epochs_seen += 1


@torch.no_grad()
def features(encoder: nn.Module, images: torch.Tensor) -> torch.Tensor:
    encoder.eval()
    return torch.cat([encoder(chunk) for chunk in images.split(512)])


def probe(encoder: nn.Module, data, train: torch.Tensor, test: torch.Tensor) -> float:
    h = features(encoder, data.images)
    return linear_probe(h[train], data.labels[train], h[test], data.labels[test])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["simclr"], choices=(*METHODS, "all"))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if "all" in args.methods:
        args.methods = list(METHODS)

    data = load_digits()
    train, test = split_indices(data.labels, test_size=0.3, random_state=args.seed)
    torch.manual_seed(args.seed)
    initial = SmallResNet(in_channels=1, hidden_channels=args.hidden)
    baseline = probe(copy.deepcopy(initial), data, train, test)
    print(f"random-init encoder: probe accuracy {baseline:.4f}")
    rows = []
    for name in args.methods:
        generator = torch.Generator().manual_seed(args.seed)
        encoder = copy.deepcopy(initial)
        method = build(name, encoder, len(train), generator)
        images, labels = data.images[train], data.labels[train]
        on_epoch_start = EStep(method, images) if isinstance(method, PCL) else None

        targets = labels if name == "supcon" else torch.arange(len(train)) if name == "pcl" else None
        batches = TensorBatches(
            images, targets, batch_size=args.batch_size, generator=generator, on_epoch_start=on_epoch_start
        )
        started = time.perf_counter()
        result = fit(method, batches, epochs=args.epochs, lr=args.lr, seed=args.seed, device="cpu", progress=False)
        seconds = time.perf_counter() - started
        accuracy = probe(encoder, data, train, test)
        first, last = result.history[0]["loss"], result.history[-1]["loss"]
        row = {
            "method": name,
            "probe_accuracy": round(accuracy, 4),
            "random_init_accuracy": round(baseline, 4),
            "loss_first_epoch": round(first, 4),
            "loss_last_epoch": round(last, 4),
            "train_seconds": round(seconds, 1),
        }
        rows.append(row)
        print(json.dumps(row))
    print()
    print(f"seed {args.seed}, epochs {args.epochs}, batch {args.batch_size}, lr {args.lr}, "
          f"torch {torch.__version__}, python {platform.python_version()}, threads {torch.get_num_threads()}")
    print("| method | probe acc. (pre-trained) | probe acc. (random init) | loss epoch 1 -> last | train s |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['method']} | {row['probe_accuracy']:.4f} | {row['random_init_accuracy']:.4f} | "
              f"{row['loss_first_epoch']:.3f} -> {row['loss_last_epoch']:.3f} | {row['train_seconds']} |")


if __name__ == "__main__":
    main()
