r"""Where the time of a GraphCL pre-training epoch goes (PROTEINS, GIN 3 × 32, batch 128).

The epoch runs through the library's loop (:func:`gcl.train.fit`); each stage is
timed in CPU time (single thread) by light wrappers that do not change what runs:

* ``load``: :meth:`gcl.data.CollatedLoader.collate` (slicing the collated storage);
* ``augment``: both views (``method.augment1`` / ``augment2``);
* ``encoder forward``: the GIN on both views (forward hooks);
* ``head + loss forward``: projection head and InfoNCE;
* ``backward``: ``loss.backward()`` (encoder, head and loss together);
* ``optimiser``: ``optimizer.step()`` (global optimiser hooks);
* ``loop``: the rest of the epoch (moving the batch, ``zero_grad``, the loss
  value for logging, set-up of :func:`~gcl.train.fit`).

Next to it, the limit (the GIN's forward and backward on the same views, see
``epoch_bench.py``), split into forward and backward.

Then :mod:`torch.profiler` lists the operators that take the most self CPU time
over a few epochs. Medians over ``--rounds`` epochs (after one warm-up) are reported.

Usage::

    python benchmarks/perf/profile_epoch.py --json /tmp/gcl-perf/profile.json
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, median, use_shared_data, write_json
from epoch_bench import build_variants, capture_epoch, epoch_config, limit_epoch, timed_epoch

STAGES = ("load", "augment", "encoder forward", "head + loss forward", "backward", "optimiser")


class StageTimer:
    r"""Accumulates CPU time per stage; nested stages are not double counted."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._active: str | None = None

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self._active is not None:  # already inside a timed stage
            yield
            return
        self._active, started = name, time.process_time()
        try:
            yield
        finally:
            self.totals[name] += time.process_time() - started
            self._active = None


def instrument(method: nn.Module, timer: StageTimer) -> list[Any]:
    r"""Wrap the stages of ``method`` and of the loop; returns the undo handles."""
    from gcl.data import CollatedLoader

    undo: list[Any] = []
    collate = CollatedLoader.collate

    def timed_collate(self: Any, graphs: Any) -> Any:
        with timer.stage("load"):
            return collate(self, graphs)

    CollatedLoader.collate = timed_collate  # type: ignore[method-assign]
    undo.append(lambda: setattr(CollatedLoader, "collate", collate))

    for attribute in ("augment1", "augment2"):
        original = getattr(method, attribute)

        def timed_augment(batch: Any, original: Any = original) -> Any:
            with timer.stage("augment"):
                return original(batch)

        setattr(method, attribute, timed_augment)
        undo.append(lambda attribute=attribute, original=original: setattr(method, attribute, original))

    for name in ("encoder", "head", "loss"):
        module: nn.Module = getattr(method, name)
        label = "encoder forward" if name == "encoder" else "head + loss forward"
        state: dict[str, float] = {}

        def pre(mod: nn.Module, args: Any, label: str = label, state: dict[str, float] = state) -> None:
            state["start"] = time.process_time()

        def post(mod: nn.Module, args: Any, out: Any, label: str = label,
                 state: dict[str, float] = state) -> None:
            timer.totals[label] += time.process_time() - state.pop("start")

        undo.append(module.register_forward_pre_hook(pre).remove)
        undo.append(module.register_forward_hook(post).remove)

    backward = torch.Tensor.backward

    def timed_backward(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        with timer.stage("backward"):
            return backward(self, *args, **kwargs)

    torch.Tensor.backward = timed_backward  # type: ignore[method-assign]
    undo.append(lambda: setattr(torch.Tensor, "backward", backward))

    step_state: dict[str, float] = {}
    from torch.optim.optimizer import (
        register_optimizer_step_post_hook,
        register_optimizer_step_pre_hook,
    )

    def step_pre(*args: Any) -> None:
        step_state["start"] = time.process_time()

    def step_post(*args: Any) -> None:
        timer.totals["optimiser"] += time.process_time() - step_state.pop("start")

    undo.append(register_optimizer_step_pre_hook(step_pre).remove)
    undo.append(register_optimizer_step_post_hook(step_post).remove)
    return undo


def breakdown(method: nn.Module, dataset: Any, rounds: int, device: str = "cpu") -> dict[str, Any]:
    per_round: dict[str, list[float]] = defaultdict(list)
    for round_index in range(rounds + 1):
        timer = StageTimer()
        config = epoch_config(round_index, device)
        undo = instrument(method, timer)
        try:
            clock = timed_epoch(method, dataset, config)
        finally:
            for handle in reversed(undo):
                handle()
        captured = capture_epoch(method, dataset, config)  # untimed: the same epoch's views again
        # the encoder's own forward and backward: the limit run on the same views
        limit = limit_epoch(method, captured, device)
        if round_index == 0:
            continue  # warm-up
        per_round["epoch"].append(clock.cpu)
        per_round["limit"].append(limit.cpu)
        per_round["limit forward"].append(limit.forward_cpu)
        per_round["limit backward"].append(limit.cpu - limit.forward_cpu)
        for stage in STAGES:
            per_round[stage].append(timer.totals.get(stage, 0.0))
        per_round["loop"].append(clock.cpu - sum(timer.totals.get(s, 0.0) for s in STAGES))
    return {"cpu_seconds": dict(per_round), "median_cpu": {k: median(v) for k, v in per_round.items()},
            "steps": len(dataset) // 128}


def top_operators(method: nn.Module, dataset: Any, epochs: int, rows: int,
                  device: str = "cpu") -> list[dict[str, Any]]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for seed in range(epochs):
            timed_epoch(method, dataset, epoch_config(seed, device))
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [{"name": e.key, "self_ms_per_epoch": e.self_cpu_time_total / 1e3 / epochs,
             "share": e.self_cpu_time_total / total, "calls_per_epoch": e.count / epochs}
            for e in events[:rows]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dataset", default="PROTEINS")
    parser.add_argument("--variants", nargs="+", default=["graphcl", "graphcl-pool3"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    parser.add_argument("--device", default="cpu",
                        help="cpu or cuda[:N]; on CUDA the stage times are the host's (dispatch) CPU time")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    use_shared_data()
    from gcl.data import load_dataset

    dataset = load_dataset(args.dataset)
    methods = build_variants(dataset, seed=0)
    results: dict[str, Any] = {"environment": environment(args.threads, args.device), "dataset": args.dataset,
                               "variants": {}}
    for name in args.variants:
        results["variants"][name] = breakdown(methods[name], dataset, args.rounds, args.device)
        results["variants"][name]["top_operators"] = top_operators(methods[name], dataset, epochs=3, rows=15,
                                                                   device=args.device)
        print(f"{name} done", file=sys.stderr)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
