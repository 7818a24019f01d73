"""Two gloo processes must train exactly like one process on the same global batches.

Rank ``r`` trains on half ``r`` of every global batch, in rank order, so that gathered
negatives, all-reduced Barlow Twins statistics and the LCGNN memories see the global
batch in the same order as the single process. Augmentations are identities and the
encoders have no batch norm or dropout: those are the only rank-local randomness and
statistics, and they are not what this test is about. Where the views are random (an
augmentation drawing from a generator of its own), the ranks must draw different ones, and
resume them exactly.

Starting processes dominates the cost, so all multi-process work, including what
``gcl train --nproc 2`` launches, runs in one spawn (:func:`_worker`); the tests then
compare its results with single-process runs in the test process.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch_geometric.data import Batch

from gcl.augment import DropNodes, Identity, MaskFeatures
from gcl.data import attach_index, load_dataset
from gcl.methods import GraphCL, GraphLevelBarlowTwins, build_method
from gcl.nn import GIN, ProjectionHead
from gcl.train import TrainConfig, Trainer, fit, seed_everything
from gcl.train.distributed import (
    default_backend,
    init_distributed,
    is_main_process,
    launch,
    local_device,
    main_process_first,
)

from .recorders import Recorder

WORLD = 2
GLOBAL_BATCH = 16
STEPS = 3  # global batches per epoch
EPOCHS = 2
TOLERANCE = 1e-5


def _config(**overrides: Any) -> TrainConfig:
    values: dict[str, Any] = {"epochs": EPOCHS, "lr": 0.01, "seed": 5, "progress": False, "device": "cpu"}
    values.update(overrides)
    return TrainConfig(**values)


def _dataset() -> Any:
    return attach_index(load_dataset("MUTAG"))


def _methods(dataset: Any) -> dict[str, nn.Module]:
    seed_everything(11)
    small = {"hidden_channels": 16, "num_layers": 2, "batch_norm": False}
    graphcl = build_method("graphcl", dataset, augmentations=("identity", "identity"), **small)
    seed_everything(11)
    recomputed = build_method("graphcl", dataset, augmentations=("identity", "identity"),
                              activation_checkpointing=True, **small)
    seed_everything(11)
    micro = build_method("graphcl", dataset, augmentations=("identity", "identity"), micro_batch_size=3, **small)
    lcgnn_options = {**small, "dropout": 0.0, "momentum": 0.9, "projection_channels": 8}
    lcgnn_queue = build_method("lcgnn", dataset, memory="queue", memory_size=40, **lcgnn_options)
    lcgnn_bank = build_method("lcgnn", dataset, memory="bank", **lcgnn_options)
    encoder = GIN(dataset.num_features, 16, 2, batch_norm=False)
    # The loss standardises each dimension over the batch, so a bias in the last layer gets an
    # exactly-zero gradient that Adam turns float32 rounding noise into ±lr steps; and fewer
    # dimensions (8) than graphs per batch (16) keep the standardised batch well conditioned.
    barlow = GraphLevelBarlowTwins(encoder, Identity(), Identity(), nn.Linear(32, 8, bias=False))
    supervised = build_method("supervised", dataset, dropout=0.0, **small)
    return {"graphcl": graphcl, "graphcl-checkpoint": recomputed, "graphcl-micro": micro,
            "lcgnn-queue": lcgnn_queue, "lcgnn-bank": lcgnn_bank, "barlow": barlow,
            "supervised": supervised}


def _global_batches(dataset: Any) -> list[Batch]:
    return [Batch.from_data_list([dataset[i] for i in range(s * GLOBAL_BATCH, (s + 1) * GLOBAL_BATCH)])
            for s in range(STEPS)]


def _rank_batches(dataset: Any, rank: int) -> list[Batch]:
    half = GLOBAL_BATCH // WORLD
    return [Batch.from_data_list([dataset[s * GLOBAL_BATCH + rank * half + i] for i in range(half)])
            for s in range(STEPS)]


#: Graphs of every global batch on rank 0 when the ranks hold different numbers (rank 1: the rest).
UNEVEN_FIRST = 1
#: The methods trained on those uneven splits too.
UNEVEN = ("graphcl", "lcgnn-queue", "lcgnn-bank", "supervised")


def _uneven_rank_batches(dataset: Any, rank: int) -> list[Batch]:
    start, stop = (0, UNEVEN_FIRST) if rank == 0 else (UNEVEN_FIRST, GLOBAL_BATCH)
    return [Batch.from_data_list([dataset[s * GLOBAL_BATCH + i] for i in range(start, stop)])
            for s in range(STEPS)]


def _state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class Crash(Exception):
    pass


class StepRecorder(Recorder):
    """A :class:`Recorder` that keeps its step losses and raises at step ``crash_at`` (a kill)."""

    def __init__(self, crash_at: int | None = None) -> None:
        super().__init__()
        self.crash_at = crash_at
        self.losses: list[float] = []

    def forward(self, batch: Any) -> Tensor:
        if self.crash_at is not None and len(self.losses) + 1 == self.crash_at:
            raise Crash
        loss = super().forward(batch)
        self.losses.append(float(loss))
        return loss


class ViewRecorder(Recorder):
    """A :class:`Recorder` that takes its (empty) views from background workers."""

    def view_augmentations(self) -> tuple[()]:
        return ()

    def forward(self, batch: Any, views: Any = None) -> Tensor:
        assert views == ()
        return super().forward(batch)


def _kept_nodes(drop: DropNodes, batch: Batch) -> list[int]:
    """The positions in ``batch`` of the nodes that ``drop`` keeps."""
    numbered = copy.copy(batch)
    numbered.node = torch.arange(batch.num_nodes)
    return drop(numbered).node.tolist()


class DropRecorder(nn.Module):
    """Records which nodes of every step's batch its :class:`DropNodes`, drawing from a
    generator of its own, keeps; the loss is a simple function of the view."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))
        self.drop = DropNodes(0.5, generator=torch.Generator().manual_seed(1))
        self.kept: list[list[int]] = []

    def forward(self, batch: Any) -> Tensor:
        self.kept.append(_kept_nodes(self.drop, batch))
        x = batch.x[self.kept[-1]]
        return self.weight * x.sum() / x.size(0)


class ForwardDrawRecorder(ViewRecorder):
    """A :class:`ViewRecorder` (views from background workers) that also draws from a
    generator of its own in forward, outside its views, and records the draws."""

    def __init__(self) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(1)
        self.draws: list[float] = []

    def forward(self, batch: Any, views: Any = None) -> Tensor:
        self.draws.append(float(torch.rand((), generator=self.generator)))
        return super().forward(batch, views)


class CrashAt(nn.Module):
    """Wraps a method and raises :class:`Crash` once its forward has run ``at`` times (a kill)."""

    def __init__(self, method: nn.Module, at: int | None = None) -> None:
        super().__init__()
        self.method = method
        self.at = at
        self.calls = 0

    def forward(self, batch: Any) -> Tensor:
        self.calls += 1
        if self.calls == self.at:
            raise Crash
        return self.method(batch)


def _graphcl_with_own_generators(dataset: Any) -> nn.Module:
    """GraphCL whose two augmentations draw from generators of their own (built alike on every rank)."""
    seed_everything(11)
    own = [torch.Generator().manual_seed(seed) for seed in (1, 2)]
    return GraphCL(GIN(dataset.num_features, 16, 2, batch_norm=False), DropNodes(0.2, generator=own[0]),
                   MaskFeatures(0.3, generator=own[1]), ProjectionHead(32, 16, 16))


def _parameters(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _bar_postfix(train: Callable[[], Any]) -> dict[str, Any] | None:
    """What the progress bar shows after the last step of ``train()`` (None: no bar)."""
    import tqdm.auto

    shown: list[dict[str, Any]] = []
    drawn = tqdm.auto.tqdm

    class RecordingBar(drawn):  # type: ignore[misc, valid-type]
        def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
            shown.append({**(ordered_dict or {}), **kwargs})
            super().set_postfix(ordered_dict, refresh, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tqdm.auto, "tqdm", RecordingBar)
        train()
    return shown[-1] if shown else None


def _worker(methods: dict[str, nn.Module], out: str, resume_from_single: str,
            cli: tuple[Callable[..., int], tuple[Any, ...]]) -> dict[str, Any]:
    rank, world = dist.get_rank(), dist.get_world_size()
    with main_process_first():
        dataset = _dataset()
    batches = _rank_batches(dataset, rank)
    results: dict[str, Any] = {"rank": rank, "world": world, "backend": dist.get_backend(),
                               "main": is_main_process()}
    for name, method in methods.items():
        trained = fit(copy.deepcopy(method), batches, _config())
        results[f"{name}/state"] = _state(trained.method)
        results[f"{name}/history"] = trained.history
    # ranks holding different numbers of graphs: one graph on rank 0, the rest on rank 1
    uneven = _uneven_rank_batches(dataset, rank)
    for name in UNEVEN:
        results[f"{name}/uneven-state"] = _state(fit(copy.deepcopy(methods[name]), uneven, _config()).method)
    # the progress bar, which rank 0 alone draws: what it shows after the last step
    results["progress/postfix"] = _bar_postfix(lambda: fit(copy.deepcopy(methods["graphcl"]), batches,
                                                           _config(epochs=1, progress=True)))
    # checkpoints written by two ranks, resumed by one process in the test (and the reverse)
    fit(copy.deepcopy(methods["lcgnn-bank"]), batches, _config(epochs=1), out_dir=Path(out) / "from-two")
    fit(copy.deepcopy(methods["graphcl"]), batches, _config(epochs=1), out_dir=Path(out) / f"rank{rank}")
    resumed = Trainer(copy.deepcopy(methods["graphcl"]), _config(), out_dir=resume_from_single).fit(batches)
    try:  # a checkpoint inside an epoch, written by two ranks, resumed by one process in the test
        fit(StepRecorder(crash_at=STEPS), batches, _config(epochs=1, checkpoint_every=1), out_dir=Path(out) / "mid-two")
    except Crash:
        pass
    results["resumed-from-single/state"] = _state(resumed.method)
    # an augmentation's own generator, views drawn in the training process; both ranks hold the
    # same graphs, so that only their random streams could tell their views apart
    same = _rank_batches(dataset, 0)
    dropping = fit(DropRecorder(), same, _config()).method
    first = results["own-generator/kept"] = list(dropping.kept)
    results["own-generator/kept-repeated"] = fit(DropRecorder(), same, _config()).method.kept
    results["own-generator/kept-next-fit"] = fit(dropping, same, _config()).method.kept[len(first):]
    # two ranks resume mid-epoch (from global step 4 of 6) with those generators' states
    uninterrupted = fit(_graphcl_with_own_generators(dataset), batches, _config())
    try:
        fit(CrashAt(_graphcl_with_own_generators(dataset), at=5), batches, _config(checkpoint_every=2),
            out_dir=Path(out) / "mid-generators")
    except Crash:
        pass
    dist.barrier()  # rank 0 has written the checkpoint
    written = torch.load(Path(out) / "mid-generators" / "checkpoint.pt", weights_only=False)
    results["own-generator/checkpoint"] = {"epoch": written["epoch"], "step_in_epoch": written["step_in_epoch"],
                                           "generators": [len(rng["generators"]) for rng in written["rng_per_rank"]]}
    resumed = fit(CrashAt(_graphcl_with_own_generators(dataset)), batches, _config(checkpoint_every=2),
                  out_dir=Path(out) / "mid-generators")
    results["own-generator/uninterrupted"] = _parameters(uninterrupted.method)
    results["own-generator/resumed"] = _parameters(resumed.method.method)
    # a real dataset: the DistributedSampler splits each global batch and reshuffles per epoch
    recorder = Recorder()
    fit(recorder, dataset, _config(epochs=2, batch_size=32))
    results["sampler/seen"] = recorder.seen
    # view workers under DDP: the same split of the global batches; augmented views drawn per rank
    recorder = ViewRecorder()
    fit(recorder, dataset, _config(epochs=2, batch_size=32, view_workers=1))
    results["sampler/seen-view-workers"] = recorder.seen
    drawing = ForwardDrawRecorder()
    fit(drawing, dataset, _config(epochs=1, batch_size=32, view_workers=1))
    results["view-workers/forward-draws"] = drawing.draws
    seed_everything(11)
    augmented = build_method("graphcl", dataset, hidden_channels=16, num_layers=2)
    trained = fit(augmented, dataset, _config(epochs=1, batch_size=32, view_workers=1))
    results["view-workers/state"] = {k: v.detach().clone() for k, v in trained.method.named_parameters()}
    results["view-workers/history"] = trained.history
    # validation: rank 0 scores, every rank follows (scores made rank-dependent on purpose)
    scores = iter([3.0, 1.0, 2.0] if rank == 0 else [1.0, 2.0, 3.0])
    seed_everything(11)
    with_batch_norm = build_method("graphcl", dataset, augmentations=("identity", "identity"),
                                   hidden_channels=16, num_layers=2)
    validated = Trainer(with_batch_norm, _config(epochs=3), validate=lambda m: next(scores)).fit(batches)
    results["validated/history"] = validated.history
    results["validated/state"] = _state(validated.method)
    # a folder of each rank's own (as on machines without a shared file system): rank 0 alone finds
    # the checkpoint it wrote
    fit(copy.deepcopy(methods["graphcl"]), batches, _config(epochs=1), out_dir=Path(out) / f"own{rank}")
    errors: dict[str, str] = {}
    for key, call in {
        "unshared-out": lambda: fit(copy.deepcopy(methods["graphcl"]), batches, _config(epochs=2),
                                    out_dir=Path(out) / f"own{rank}"),
        "uneven-iterables": lambda: fit(copy.deepcopy(methods["graphcl"]), batches[: STEPS - rank],
                                        _config(epochs=1)),
        "full-graph": lambda: fit(copy.deepcopy(methods["graphcl"]), dataset[0], _config(epochs=1)),
        "sync-batchnorm": lambda: fit(copy.deepcopy(methods["graphcl"]), batches,
                                      _config(epochs=1, sync_batchnorm=True)),
        "batch-size": lambda: fit(Recorder(), dataset, _config(epochs=1, batch_size=33)),
    }.items():
        try:
            call()
        except ValueError as exc:
            errors[key] = str(exc)
    results["errors"] = errors
    function, args = cli  # what `gcl train --nproc 2` starts in every process
    results["cli"] = function(*args)
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, results)
    return {"ranks": gathered}


@pytest.fixture(scope="module")
def spawned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    tmp = tmp_path_factory.mktemp("ddp")
    dataset = _dataset()  # writes the processed cache before the workers read it
    methods = _methods(dataset)
    # one process, one epoch: the checkpoint the two ranks resume from
    fit(copy.deepcopy(methods["graphcl"]), _global_batches(dataset), _config(epochs=1),
        out_dir=tmp / "from-one")
    cli = _record_cli_launch(tmp / "cli")
    result = launch(_worker, WORLD, args=(methods, str(tmp), str(tmp / "from-one"), cli["call"]),
                    backend="gloo", device="cpu",
                    # fork starts in a fraction of spawn's time, but not once this process used CUDA
                    start_method="spawn" if torch.cuda.is_initialized() else "fork")
    return {"ranks": result["ranks"], "methods": methods, "dataset": dataset, "tmp": tmp, "cli": cli}


def _record_cli_launch(out: Path) -> dict[str, Any]:
    """Run ``gcl train --nproc 2`` up to the point where it starts the processes."""
    from gcl.cli import main

    calls: list[dict[str, Any]] = []

    def record(function: Callable[..., int], nproc: int, args: tuple[Any, ...] = (), **kwargs: Any) -> int:
        calls.append({"call": (function, tuple(args)), "nproc": nproc, **kwargs})
        return 0

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("gcl.train.distributed.launch", record)
        # --mmap: the launching process writes the mapped file, and both ranks map it
        code = main(["train", "graphcl", "--dataset", "MUTAG", "--nproc", "2", "--epochs", "1", "--mmap",
                     "--batch-size", "64", "--eval", "none", "--quiet", "--device", "cpu", "--out", str(out)])
    assert code == 0 and len(calls) == 1
    return {**calls[0], "out": out}


@pytest.fixture(scope="module")
def single(spawned: dict[str, Any]) -> dict[str, Any]:
    batches = _global_batches(spawned["dataset"])
    return {name: fit(copy.deepcopy(method), batches, _config())
            for name, method in spawned["methods"].items()}


def _assert_close(got: dict[str, Tensor], expected: dict[str, Tensor]) -> None:
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=TOLERANCE, msg=key)


def test_workers_join_through_env(spawned: dict[str, Any]) -> None:
    ranks = spawned["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["world"] == WORLD and r["backend"] == "gloo" for r in ranks)
    assert [r["main"] for r in ranks] == [True, False]


@pytest.mark.parametrize("name", [
    "graphcl",
    "graphcl-checkpoint",  # activation checkpointing under DDP: layers recomputed in the backward pass
    "graphcl-micro",  # micro-batches of 3 graphs (8 per rank, 16 in one process), recomputed one at a time
    "lcgnn-queue",
    "lcgnn-bank",
    "barlow",
    "supervised",
])
def test_two_processes_match_one_process(spawned: dict[str, Any], single: dict[str, Any], name: str) -> None:
    expected = _state(single[name].method)
    for rank_result in spawned["ranks"]:
        _assert_close(rank_result[f"{name}/state"], expected)
    # sanity: training moved the parameters, so equality is not trivial
    initial = _state(spawned["methods"][name])
    assert any(not torch.allclose(initial[k], expected[k]) for k in expected)


@pytest.mark.parametrize("name", UNEVEN)
def test_ranks_holding_different_numbers_of_graphs_match_one_process(
        spawned: dict[str, Any], single: dict[str, Any], name: str) -> None:
    # the classification terms average over the global batch, and a contrastive method takes
    # a rank with a single graph (the global batch has 16)
    expected = _state(single[name].method)
    for rank_result in spawned["ranks"]:
        _assert_close(rank_result[f"{name}/uneven-state"], expected)


@pytest.mark.parametrize("name", ["graphcl", "lcgnn-bank", "barlow"])
def test_logged_loss_is_the_global_loss(spawned: dict[str, Any], single: dict[str, Any], name: str) -> None:
    expected = [record["loss"] for record in single[name].history]
    for rank_result in spawned["ranks"]:
        got = [record["loss"] for record in rank_result[f"{name}/history"]]
        assert got == pytest.approx(expected, abs=1e-5)


def test_progress_bar_names_its_numbers_rank_zeros(spawned: dict[str, Any]) -> None:
    shown, not_shown = (rank["progress/postfix"] for rank in spawned["ranks"])
    assert not_shown is None  # only rank 0 draws a bar
    assert sorted(shown) == ["epoch", "rank0_graphs_s", "rank0_loss"]
    rank0_loss = float(shown["rank0_loss"])
    assert rank0_loss > 0 and float(shown["rank0_graphs_s"]) > 0
    # one process: the same bar without the rank's name
    dataset = spawned["dataset"]
    single = _bar_postfix(lambda: fit(copy.deepcopy(spawned["methods"]["graphcl"]), _rank_batches(dataset, 0),
                                      _config(epochs=1, progress=True)))
    assert single is not None and sorted(single) == ["epoch", "graphs_s", "loss"]


def test_resume_two_processes_checkpoint_in_one(spawned: dict[str, Any], single: dict[str, Any]) -> None:
    checkpoint = torch.load(spawned["tmp"] / "from-two" / "checkpoint.pt", weights_only=False)
    assert checkpoint["world_size"] == WORLD and len(checkpoint["rng_per_rank"]) == WORLD
    assert checkpoint["epoch"] == 1 and checkpoint["step_in_epoch"] == 0
    fresh = copy.deepcopy(spawned["methods"]["lcgnn-bank"])
    with torch.no_grad():  # the checkpoint, not this initialisation, must decide the result
        for parameter in fresh.parameters():
            parameter.add_(1.0)
    resumed = Trainer(fresh, _config(), out_dir=spawned["tmp"] / "from-two").fit(
        _global_batches(spawned["dataset"]))
    assert len(resumed.history) == EPOCHS
    _assert_close(_state(resumed.method), _state(single["lcgnn-bank"].method))


def test_resume_inside_an_epoch_with_another_world_size_logs_the_whole_epoch(spawned: dict[str, Any]) -> None:
    folder = spawned["tmp"] / "mid-two"
    checkpoint = torch.load(folder / "checkpoint.pt", weights_only=False)
    assert checkpoint["world_size"] == WORLD and checkpoint["step_in_epoch"] == STEPS - 1
    saved = [rank["losses"] for rank in checkpoint["progress_per_rank"]]
    before = [sum(values) / WORLD for values in zip(*saved)]  # the global losses of the saved steps
    recorder = StepRecorder()
    with pytest.warns(UserWarning, match="resuming mid-epoch with world size 1"):
        resumed = Trainer(recorder, _config(epochs=1, checkpoint_every=1), out_dir=folder).fit(
            _global_batches(spawned["dataset"]))
    assert len(recorder.losses) == 1
    record = resumed.history[0]
    assert record["loss"] == pytest.approx(sum(before + recorder.losses) / STEPS)
    assert record["graphs_per_second"] * record["seconds"] == pytest.approx(STEPS * GLOBAL_BATCH)


def test_ranks_draw_their_own_views_from_an_augmentations_generator(spawned: dict[str, Any]) -> None:
    ranks = spawned["ranks"]
    kept = [r["own-generator/kept"] for r in ranks]
    assert len(kept[0]) == len(kept[1]) == STEPS * EPOCHS
    # the ranks hold the same graphs: drawn from one stream, their views would keep the same nodes
    for step, (first, second) in enumerate(zip(*kept, strict=True)):
        assert first != second, step
    # deterministic, and another fit goes on drawing rather than starting the stream again
    assert [r["own-generator/kept-repeated"] for r in ranks] == kept
    for ranked in ranks:
        assert ranked["own-generator/kept-next-fit"] != ranked["own-generator/kept"]
    # one process and rank 0 draw from the generator as built, step after step
    batches = _rank_batches(spawned["dataset"], 0)
    one = fit(DropRecorder(), batches, _config()).method.kept
    drop = DropNodes(0.5, generator=torch.Generator().manual_seed(1))
    assert one == [_kept_nodes(drop, batch) for _ in range(EPOCHS) for batch in batches]
    assert kept[0] == one


def test_ranks_draw_their_own_numbers_in_forward_with_view_workers(spawned: dict[str, Any]) -> None:
    # a generator the method uses outside its views: the workers do not reseed it, the loop gives
    # every rank but 0 a stream of its own, as without workers
    first, second = (r["view-workers/forward-draws"] for r in spawned["ranks"])
    assert len(first) == len(second) > 1
    assert all(a != b for a, b in zip(first, second, strict=True))
    generator = torch.Generator().manual_seed(1)  # rank 0 draws from the generator as built
    assert first == [float(torch.rand((), generator=generator)) for _ in first]


def test_resume_two_processes_inside_an_epoch_with_generators(spawned: dict[str, Any]) -> None:
    # written at global step 4 of 6 (one step into the second epoch), with both ranks' generator states
    assert spawned["ranks"][0]["own-generator/checkpoint"] == {"epoch": 1, "step_in_epoch": 1,
                                                               "generators": [2] * WORLD}
    for ranked in spawned["ranks"]:  # bit for bit: every rank's generators continue their own streams
        expected = ranked["own-generator/uninterrupted"]
        got = ranked["own-generator/resumed"]
        assert got.keys() == expected.keys()
        assert all(torch.equal(got[key], expected[key]) for key in expected)


def test_only_rank_zero_writes_checkpoints(spawned: dict[str, Any]) -> None:
    assert (spawned["tmp"] / "rank0" / "checkpoint.pt").exists()
    assert not (spawned["tmp"] / "rank1").exists()


def test_resume_one_process_checkpoint_in_two(spawned: dict[str, Any], single: dict[str, Any]) -> None:
    expected = _state(single["graphcl"].method)
    for rank_result in spawned["ranks"]:
        _assert_close(rank_result["resumed-from-single/state"], expected)


def test_sampler_splits_global_batches_and_reshuffles(spawned: dict[str, Any]) -> None:
    seen = [r["sampler/seen"] for r in spawned["ranks"]]
    size = len(spawned["dataset"])
    steps = (size // WORLD) // (32 // WORLD)
    assert len(seen[0]) == len(seen[1]) == 2 * steps
    epochs = []
    for epoch in range(2):
        graphs: list[int] = []
        for step in range(epoch * steps, (epoch + 1) * steps):
            assert len(seen[0][step]) == len(seen[1][step]) == 32 // WORLD
            graphs += seen[0][step] + seen[1][step]
        assert len(set(graphs)) == len(graphs)  # ranks and steps never share a graph within an epoch
        epochs.append(graphs)
    assert epochs[0] != epochs[1] and epochs[0] != sorted(epochs[0])  # shuffled, and anew each epoch


def test_view_workers_under_ddp(spawned: dict[str, Any]) -> None:
    ranks = spawned["ranks"]
    # the workers collate the batches of the same DistributedSampler split as the training process would
    assert [r["sampler/seen-view-workers"] for r in ranks] == [r["sampler/seen"] for r in ranks]
    # with views drawn by each rank's workers, the parameters stay in sync through DDP (batch-norm
    # statistics are per rank)
    _assert_close(ranks[1]["view-workers/state"], ranks[0]["view-workers/state"])
    assert ranks[0]["view-workers/history"][0]["loss"] > 0


def test_misuse_is_rejected(spawned: dict[str, Any]) -> None:
    errors = spawned["ranks"][0]["errors"]
    assert "one process" in errors["full-graph"]
    assert "CUDA" in errors["sync-batchnorm"]
    assert "divisible" in errors["batch-size"]
    for ranked in spawned["ranks"]:  # every rank refuses, none waits in a collective for the others
        assert "ranks would start from different points (global steps 0 to 3" in ranked["errors"]["unshared-out"]
    for ranked in spawned["ranks"]:  # raised on every rank (rank 1's iterable is one batch short)
        assert "different numbers of batches per epoch (2 to 3" in ranked["errors"]["uneven-iterables"]


def test_validation_is_rank_zeros_on_every_rank(spawned: dict[str, Any]) -> None:
    ranks = spawned["ranks"]
    # rank 0's scores (best at epoch 1) decide on both ranks; rank 1's own scores were never asked for
    assert [h["val"] for h in ranks[1]["validated/history"]] == [3.0, 1.0, 2.0]
    assert [h["val"] for h in ranks[0]["validated/history"]] == [3.0, 1.0, 2.0]
    # the best state, batch-norm statistics included, is rank 0's on both ranks
    assert any("running_mean" in key for key in ranks[0]["validated/state"])
    for key, value in ranks[0]["validated/state"].items():
        assert torch.equal(ranks[1]["validated/state"][key], value), key


def test_launch_functions_without_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    assert init_distributed() is False and is_main_process()
    assert local_device("cpu") == torch.device("cpu")
    assert default_backend("cpu") == "gloo"
    assert launch(sorted, 1, args=([3, 1, 2],)) == [1, 2, 3]
    with pytest.raises(ValueError, match=r"nproc must be at least 1 \(got 0\)"):
        launch(sorted, 0)


def _rank_and_world() -> tuple[int, int]:
    return dist.get_rank(), dist.get_world_size()


def test_launch_with_a_forkserver() -> None:
    # the workers are the forkserver's children, not the launcher's: they must not take that for its death
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    assert launch(_rank_and_world, WORLD, backend="gloo", device="cpu", start_method="forkserver") == (0, WORLD)


def _refuse_on_rank_one(message: str) -> int:
    if dist.get_rank() == 1:
        raise ValueError(message)
    return 0


def _fail_while_the_other_waits() -> int:
    if dist.get_rank() == 1:
        time.sleep(0.2)
        raise KeyError("the root cause")
    dist.barrier()  # fails once rank 1 is gone: a consequence, not the cause
    return 0


def _unpicklable_error() -> int:
    class Local(Exception):
        pass

    raise Local("a class defined in the worker")


def _write_pid_and_wait(folder: str) -> int:
    Path(folder, str(os.getpid())).write_text("")
    # both ranks wait inside gloo for a message that never comes (as a rank whose peer failed
    # waits in a collective): no Python code runs there to take a KeyboardInterrupt
    dist.recv(torch.zeros(1), src=1 - dist.get_rank())
    return 0


def _interruptible() -> None:
    # as `gcl train` in a terminal: a shell that starts a job in the background (`cmd &`, as CI scripts may)
    # hands it SIGINT ignored, and the fork would keep that
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _launch_and_wait(folder: str, temporary: str | None = None, grace: float = 1.0) -> None:
    import tempfile

    from gcl.train import distributed

    _interruptible()
    distributed.WORKER_GRACE_SECONDS = grace  # (this forked launcher's own copy)
    tempfile.tempdir = temporary  # where the launch keeps its temporary folder
    launch(_write_pid_and_wait, WORLD, args=(folder,), backend="gloo", device="cpu", start_method="fork")


def _all_end(pids: list[int], alive: Callable[[int], bool], seconds: float = 10.0) -> bool:
    """Whether every process of ``pids`` has ended within ``seconds``."""
    deadline = time.monotonic() + seconds
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(alive(pid) for pid in pids)


# SIGINT to the launcher alone (`timeout -s INT`, `kill -INT`): it used to print its message and
# then wait at exit for workers that never end (blocked in a collective, or still training)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT])
def test_launched_workers_end_with_the_launching_process(tmp_path: Path, signum: int,
                                                         alive: Callable[[int], bool], fork_context: Any) -> None:
    if not dist.is_available() or torch.cuda.is_initialized():
        pytest.skip("needs torch.distributed and a process that may fork")

    pids, temporary = tmp_path / "pids", tmp_path / "tmp"
    pids.mkdir()
    temporary.mkdir()
    # after SIGTERM (`kill`: the launcher alone) the workers get SIGTERM at once, which ends them inside
    # the collective: the grace before SIGKILL, long here, is never waited for
    grace = 60.0 if signum == signal.SIGTERM else 1.0
    launcher = fork_context.Process(target=_launch_and_wait, args=(str(pids), str(temporary), grace))
    launcher.start()
    deadline = time.monotonic() + 60
    while len(list(pids.iterdir())) < WORLD and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [int(p.name) for p in pids.iterdir()]
    assert len(workers) == WORLD and all(alive(pid) for pid in workers)
    assert [p.name[:11] for p in temporary.iterdir()] == ["gcl-launch-"]
    killed = time.monotonic()
    os.kill(launcher.pid, signum)  # as `kill` or the out-of-memory killer would end `gcl train --nproc 2`
    launcher.join(30)
    assert launcher.exitcode is not None  # the launcher itself has ended
    assert time.monotonic() - killed < 15
    assert _all_end(workers, alive)  # none left waiting in a collective for nobody
    if signum != signal.SIGKILL:  # (which no process can act on)
        assert not list(temporary.iterdir())  # the launch's temporary folder is removed
    if signum == signal.SIGTERM:
        assert launcher.exitcode == -signal.SIGTERM  # and it ends as SIGTERM ends a process


def _launch_interrupted_while_starting(folder: str) -> None:
    import torch.multiprocessing as mp

    from gcl.train import distributed

    _interruptible()
    distributed.WORKER_GRACE_SECONDS = 1.0
    start_processes = mp.start_processes

    def started_then_interrupted(*args: Any, **kwargs: Any) -> Any:
        # Ctrl-C in the moment between the workers' start and the launcher's watch over them
        context = start_processes(*args, **kwargs)
        Path(folder, "pids").write_text(" ".join(map(str, context.pids())))
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)  # (an unblocked signal is handled here, inside this call)
        return context

    mp.start_processes = started_then_interrupted
    launch(_write_pid_and_wait, WORLD, args=(folder,), backend="gloo", device="cpu", start_method="fork")


def test_an_interrupt_while_the_workers_start_ends_them(tmp_path: Path, alive: Callable[[int], bool],
                                                        fork_context: Any) -> None:
    if not dist.is_available() or torch.cuda.is_initialized():
        pytest.skip("needs torch.distributed and a process that may fork")
    launcher = fork_context.Process(target=_launch_interrupted_while_starting, args=(str(tmp_path),))
    launcher.start()
    launcher.join(30)
    assert launcher.exitcode is not None  # it did not wait at exit for workers nobody ended
    workers = [int(pid) for pid in (tmp_path / "pids").read_text().split()]
    assert len(workers) == WORLD
    assert _all_end(workers, alive)


def _rank_one_interruptible(folder: str) -> int:
    Path(folder, f"rank{dist.get_rank()}").write_text(str(os.getpid()))
    if dist.get_rank() == 0:  # waits in gloo for a message rank 1 never sends
        dist.recv(torch.zeros(1), src=1)
    else:  # in Python, where Ctrl-C arrives
        _interruptible()
        time.sleep(120)
    return 0


def _launch_and_record(folder: str) -> None:
    from gcl.train import distributed

    distributed.WORKER_GRACE_SECONDS = 1.0
    try:
        launch(_rank_one_interruptible, WORLD, args=(folder,), backend="gloo", device="cpu", start_method="fork")
    except BaseException as exc:  # what the launcher saw, for the test
        Path(folder, "raised").write_text(f"{type(exc).__name__} {getattr(exc, 'exit_code', '')}")


def test_ctrl_c_to_one_rank_ends_the_launch(tmp_path: Path, alive: Callable[[int], bool],
                                            fork_context: Any) -> None:
    # SIGINT to one rank only: torch's worker wrapper turned it into exit code 0 after the rank
    # had destroyed its process group (which can deadlock), and the launcher waited for the
    # other rank, blocked in a collective, for gloo's 30-minute timeout
    if not dist.is_available() or torch.cuda.is_initialized():
        pytest.skip("needs torch.distributed and a process that may fork")
    launcher = fork_context.Process(target=_launch_and_record, args=(str(tmp_path),))
    launcher.start()
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("rank*"))) < WORLD and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [int((tmp_path / f"rank{rank}").read_text()) for rank in range(WORLD)]
    time.sleep(0.5)  # rank 1 is asleep, rank 0 waits in recv
    os.kill(workers[1], signal.SIGINT)
    launcher.join(30)
    try:
        assert launcher.exitcode is not None  # the launch ended instead of waiting for rank 0
        assert (tmp_path / "raised").read_text() == "ProcessExitedException 130"
        assert _all_end(workers, alive)
    finally:
        for pid in [launcher.pid, *workers]:
            with contextlib.suppress(OSError, TypeError):
                os.kill(pid, signal.SIGKILL)


def _blocked_signals() -> list[int]:
    return sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))


def test_workers_and_the_launcher_keep_their_signal_mask() -> None:
    # Ctrl-C is held back only while the workers start: neither they nor the caller keep it blocked
    before = _blocked_signals()
    assert launch(_blocked_signals, WORLD, backend="gloo", device="cpu", start_method="fork") == before
    assert _blocked_signals() == before


def test_launch_raises_the_workers_own_exception() -> None:
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    import torch.multiprocessing as mp

    start = "spawn" if torch.cuda.is_initialized() else "fork"
    with pytest.raises(ValueError, match="batch_size 3 is not divisible") as info:
        launch(_refuse_on_rank_one, WORLD, args=("batch_size 3 is not divisible",), backend="gloo", device="cpu",
               start_method=start)
    assert isinstance(info.value.__cause__, mp.ProcessRaisedException)  # with the worker's traceback
    with pytest.raises(mp.ProcessRaisedException, match="a class defined in the worker"):
        launch(_unpicklable_error, WORLD, backend="gloo", device="cpu", start_method=start)
    for _ in range(3):  # whichever process torch notices first
        with pytest.raises(KeyError, match="the root cause"):
            launch(_fail_while_the_other_waits, WORLD, backend="gloo", device="cpu", start_method=start)


def test_cli_nproc_trains_in_two_processes(spawned: dict[str, Any]) -> None:
    cli = spawned["cli"]
    assert cli["nproc"] == WORLD and cli["device"] == "cpu" and cli["backend"] is None
    assert [r["cli"] for r in spawned["ranks"]] == [0, 0]
    checkpoint = torch.load(cli["out"] / "checkpoint.pt", weights_only=False)
    assert checkpoint["world_size"] == WORLD and checkpoint["epoch"] == 1
    report = json.loads((cli["out"] / "result.json").read_text())
    steps = (len(spawned["dataset"]) // WORLD) // (64 // WORLD)
    assert len(report["history"]) == 1
    assert report["history"][0]["graphs_per_second"] * report["history"][0]["seconds"] == \
        pytest.approx(steps * 64)  # graphs of both ranks are counted


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["torchrun", "nproc"])
def test_command_line_launchers(launcher: str, tmp_path: Path) -> None:
    """The documented commands, in fresh interpreters (slow: every process imports torch)."""
    import subprocess
    import sys

    out = tmp_path / "run"
    train = ["train", "graphcl", "--dataset", "MUTAG", "--epochs", "1", "--batch-size", "64", "--eval", "none",
             "--quiet", "--device", "cpu", "--out", str(out)]
    if launcher == "torchrun":
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "-m", "gcl.cli", *train]
    else:
        command = [sys.executable, "-m", "gcl.cli", *train, "--nproc", "2"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "over 2 processes" in completed.stdout
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=False)
    assert checkpoint["world_size"] == 2 and len(checkpoint["rng_per_rank"]) == 2
