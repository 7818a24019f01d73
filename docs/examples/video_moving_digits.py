"""VideoMoCo on moving-digit clips, then linear probes for digit identity and motion.

The digit images are split first (stratified 70/30); training clips are generated from
the training digits only and test clips from the held-out digits, so the probe is scored
on digits the encoder never saw. VideoMoCo (gcl.adapters.video, loss from gcl.losses) is
trained by gcl.train.fit; the same probes on the randomly initialised encoder are the
baseline.

    python docs/examples/video_moving_digits.py                      # adversarial frame dropping
    python docs/examples/video_moving_digits.py --drop random --epochs 5
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
from gcl.adapters.image import load_digits
from gcl.adapters.video import FrameImportance, VideoEncoder3D, VideoMoCo, moving_digits
from gcl.train import fit


@torch.no_grad()
def features(encoder: nn.Module, clips: torch.Tensor) -> torch.Tensor:
    encoder.eval()
    return torch.cat([encoder(chunk) for chunk in clips.split(256)])


def probes(encoder: nn.Module, train, test) -> dict[str, float]:
    h_train, h_test = features(encoder, train.clips), features(encoder, test.clips)
    return {
        "digit": linear_probe(h_train, train.digits, h_test, test.digits),
        "direction": linear_probe(h_train, train.directions, h_test, test.directions),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drop", choices=("adversarial", "random"), default="adversarial")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train-clips", type=int, default=1024)
    parser.add_argument("--test-clips", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-shift", type=int, default=2, help="random clip translation, pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    digits = load_digits()
    train_index, test_index = split_indices(digits.labels, test_size=0.3, random_state=args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    train = moving_digits(args.train_clips, generator=generator,
                          images=digits.images[train_index], labels=digits.labels[train_index])
    test = moving_digits(args.test_clips, generator=generator,
                         images=digits.images[test_index], labels=digits.labels[test_index])

    torch.manual_seed(args.seed)
    encoder = VideoEncoder3D(in_channels=1, hidden_channels=16, num_stages=3)
    baseline = probes(copy.deepcopy(encoder), train, test)
    frame_generator = FrameImportance(1, 16) if args.drop == "adversarial" else None
    method = VideoMoCo(encoder, num_keep=6, frame_generator=frame_generator, queue_size=1024,
                       momentum=0.99, temperature=0.2, decay=0.99, generator=generator,
                       max_shift=args.max_shift)
    batches = TensorBatches(train.clips, batch_size=args.batch_size, generator=generator)
    started = time.perf_counter()
    result = fit(method, batches, epochs=args.epochs, lr=args.lr, seed=args.seed, device="cpu", progress=False)
    seconds = time.perf_counter() - started
    trained = probes(encoder, train, test)
    row = {
        "drop": args.drop,
        "max_shift": args.max_shift,
        "digit_probe": round(trained["digit"], 4),
        "digit_probe_random_init": round(baseline["digit"], 4),
        "direction_probe": round(trained["direction"], 4),
        "direction_probe_random_init": round(baseline["direction"], 4),
        "loss_first_epoch": round(result.history[0]["loss"], 4),
        "loss_last_epoch": round(result.history[-1]["loss"], 4),
        "train_seconds": round(seconds, 1),
    }
    print(json.dumps(row))
    print(f"seed {args.seed}, epochs {args.epochs}, clips {args.train_clips}/{args.test_clips}, "
          f"batch {args.batch_size}, lr {args.lr}, torch {torch.__version__}, "
          f"python {platform.python_version()}, threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
