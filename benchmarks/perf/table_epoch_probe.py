r"""Seconds per training epoch of a benchmark table's first method on one dataset,
on a device: the measurement behind the ``--jobs`` numbers in ``docs/benchmarks.md``
(run once alone, then N copies at once to see how processes share a GPU).

The run trains the table's settings (patience off) on the first 80 % of the
dataset for ``EPOCHS`` epochs, seeded with 0, one torch thread, and prints one
JSON line: table, dataset, epochs, seconds per epoch, process id.

Usage::

    python benchmarks/perf/table_epoch_probe.py hgpsl-tu NCI1 3 cuda
    for i in $(seq 12); do python benchmarks/perf/table_epoch_probe.py hgpsl-tu NCI1 3 cuda & done; wait
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> dict[str, object]:
    from gcl.bench.config import find_config, load_config
    from gcl.bench.protocols import Context
    from gcl.methods import build_method
    from gcl.train import TrainConfig, fit, seed_everything

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 4:
        raise SystemExit("usage: table_epoch_probe.py TABLE DATASET EPOCHS DEVICE")
    table, name, epochs, device = args[0], args[1], int(args[2]), args[3]
    torch.set_num_threads(1)
    config = load_config(find_config(table))
    settings = config.settings(config.dataset_entry(name), config.methods[0])
    data = Context(Path("/tmp/probe"), device=device).load(settings["dataset"])
    part = data[: int(0.8 * len(data))]
    seed_everything(0)
    method = build_method(settings["method"], data, **settings["options"])
    train = {**settings["train"], "epochs": epochs, "seed": 0, "progress": False, "device": device, "patience": None}
    started = time.perf_counter()
    fit(method, part, TrainConfig.from_dict(train))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    result = {"table": table, "dataset": name, "epochs": epochs,
              "s_per_epoch": (time.perf_counter() - started) / epochs, "pid": os.getpid()}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
