r"""The one training loop used by every method, benchmark and example."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
import os
import pickle
import re
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler
from torch_geometric.data import Data, Dataset, InMemoryDataset
from torch_geometric.loader import DataLoader

from gcl.data.loader import CollatedLoader, DatasetBatches, moved_to
from gcl.data.prefetch import ViewPrefetcher, _generators
from gcl.losses import NonFiniteError
from gcl.train.config import TrainConfig, trainable_parameters
from gcl.train.seed import seed_everything

CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"


class TrainingDiverged(RuntimeError):
    r"""The loss, or the embeddings reaching it, became NaN or infinite; the last good checkpoint
    is kept."""


_DIVERGED_ADVICE = "Lower the learning rate or check the inputs for NaN/inf."


class TrainResult(NamedTuple):
    r"""What :func:`fit` returns.

    Attributes:
        method (nn.Module): The trained method (best validation state restored
            when a validation function was given).
        history (list[dict]): One record per epoch: ``epoch``, ``loss`` (mean
            over steps), ``seconds``, ``graphs_per_second`` and ``val`` when validated.
        best_val (float | None): Best validation score.
        stopped_early (bool): Whether early stopping ended the run.
        checkpoint (Path | None): The last checkpoint written.
    """

    method: nn.Module
    history: list[dict[str, float]]
    best_val: float | None
    stopped_early: bool
    checkpoint: Path | None


#: What every checkpoint holds (what resuming reads without a default).
_CHECKPOINT_KEYS = frozenset({"method", "optimizer", "scheduler", "epoch", "step_in_epoch", "global_step",
                              "epoch_generator_state", "rng", "history", "best_val", "bad_epochs"})


class _UpcomingEpoch(NamedTuple):
    r"""An epoch's batches (graph indices) and view seeds, drawn during the epoch before it, and
    the shuffle generator's state before that draw."""

    epoch: int
    steps: list[Tensor]
    seeds: list[int]
    state: Tensor


def loss_of(output: Tensor | Any) -> Tensor:
    r"""The scalar loss of a method's ``forward`` output (a tensor or a NamedTuple with ``loss``)."""
    if isinstance(output, Tensor):
        return output
    loss = getattr(output, "loss", None)
    if not isinstance(loss, Tensor):
        raise TypeError(f"forward must return a Tensor or an object with a .loss Tensor (got {type(output)!r})")
    return loss


# Settings a resumed run may change: they do not change the numbers of the steps already taken
# (epochs is checked on its own: it may grow unless a cosine schedule spans it).
_RESUME_FREE = frozenset({"epochs", "progress", "device", "view_timeout", "checkpoint_every",
                          "find_unused_parameters", "view_workers"})


def _plain(value: Any) -> Any:
    r"""``value`` as JSON would hold it (tuples as lists, keys sorted, other objects by
    :func:`_described`), so that a run key compares equal however its options were written
    (YAML lists, Python tuples) and in whichever process."""
    return json.loads(json.dumps(value, sort_keys=True, default=_described))


def _described(value: Any) -> str:
    r"""``repr(value)``, or where that names a memory address (functions, objects without a
    ``__repr__`` of their own) the qualified name of the function, class or type, which stays
    the same from one process to the next. A :func:`functools.partial` is its function and
    arguments, each described so; in other reprs only the addresses are left out."""
    if isinstance(value, functools.partial):
        parts = [_described(value.func), *(_described(a) for a in value.args),
                 *(f"{k}={_described(v)}" for k, v in sorted(value.keywords.items()))]
        return f"functools.partial({', '.join(parts)})"
    text = repr(value)
    if " at 0x" not in text:
        return text
    if hasattr(value, "__qualname__") or text == object.__repr__(value):  # a name and an address
        named = value if hasattr(value, "__qualname__") else type(value)
        return f"{getattr(named, '__module__', '')}.{named.__qualname__}"
    return _ADDRESS.sub("", text)


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _merged_progress(progress: list[Any], rank: int) -> dict[str, Any] | None:
    r"""This rank's share of the steps before a mid-epoch checkpoint written with another
    world size: every rank takes the global losses of those steps (the mean over the saved
    ranks), so that the epoch's loss, the mean over ranks of the rank means, covers them; rank
    0 counts their graphs, which are summed over ranks. ``None`` when the checkpoint lacks them."""
    if not progress or any(p is None for p in progress) or len({len(p["losses"]) for p in progress}) != 1:
        return None
    losses = [sum(values) / len(values) for values in zip(*(p["losses"] for p in progress))]
    return {"losses": losses, "seen": sum(int(p["seen"]) for p in progress) if rank == 0 else 0,
            "seconds": max(float(p["seconds"]) for p in progress)}


def _num_examples(data: Any) -> int | None:
    r"""Graphs in a dataset, nodes of one graph, batches of a sized iterable (``None``: unsized)."""
    if isinstance(data, Data):
        return int(data.num_nodes or 0)
    try:
        return len(data)
    except TypeError:
        return None


def _batch_size(batch: Any) -> int:
    num_graphs = getattr(batch, "num_graphs", None)
    return int(num_graphs) if num_graphs is not None else 1


@functools.cache
def _no_buffer_sync() -> dict[str, Any]:
    r"""DDP's option that skips the buffer broadcast before every forward:
    ``forward_sync_buffers`` where torch has it (``broadcast_buffers`` is
    deprecated there), ``broadcast_buffers`` before."""
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _world() -> tuple[int, int]:
    r"""``(rank, world_size)``; ``(0, 1)`` without a process group."""
    if _distributed():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _rank_seed(seed: int, rank: int, step: int = 0) -> int:
    r"""A seed for rank ``rank`` > 0 that differs from every other rank's, so that
    ranks draw different augmentations (rank 0 keeps ``seed`` itself)."""
    return (seed * 1_000_003 + rank * 7_919 + step * 104_729) % (2**63)


def _rank_streams(generators: Sequence[torch.Generator], rank: int) -> None:
    r"""Gives each of ``generators`` (those a method holds) on rank ``rank`` > 0 a stream of
    its own: the generator draws a 62-bit integer from its current state, which
    :func:`_rank_seed` turns into its new seed for this rank. The new streams are a function of
    the old states and the rank, so a run stays deterministic for a given seed, another ``fit``
    goes on from where the last one left the generators, and a generator built alike on every
    rank does not make the same decisions on every rank's graphs. Rank 0 (and a single
    process) keeps its generators as they are."""
    if not rank:
        return
    for generator in generators:
        drawn = torch.randint(2**62, (1,), generator=generator, device=generator.device)
        generator.manual_seed(_rank_seed(int(drawn), rank))


def _view_seed(seed: int, rank: int, step: int) -> int:
    r"""The seed of the views of global step ``step`` on ``rank`` when background
    workers draw them: a function of the three alone, so the views do not depend
    on the number of workers, and a resumed run draws what it would have drawn."""
    words = np.random.SeedSequence([seed % 2**64, rank, step]).generate_state(2, np.uint32)
    return (int(words[0]) << 31) | (int(words[1]) >> 1)  # 63 bits: any torch seed


def _view_seeds(seed: int, rank: int, first_step: int, count: int) -> list[int]:
    r"""The view seeds of ``count`` global steps from ``first_step`` (:func:`_view_seed`)."""
    return [_view_seed(seed, rank, first_step + i) for i in range(count)]


def _rng_state(generators: Sequence[torch.Generator] = ()) -> dict[str, Any]:
    r"""The random state of torch (and of CUDA where this process used it) and of
    ``generators`` (the :class:`torch.Generator` objects a method holds, in order)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "generators": [g.get_state() for g in generators]}
    # Only a process that has used CUDA has CUDA random state to keep: reading it would otherwise
    # initialise CUDA (a context on every GPU) in a run on the CPU.
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], generators: Sequence[torch.Generator] = ()) -> None:
    r"""Restores what :func:`_rng_state` kept; ``generators`` take the saved generator states
    (checked by :func:`_check_generator_states`), which a checkpoint written before they were
    kept lacks: they then keep their own, as does a generator whose state is of another kind
    (another device's)."""
    torch.set_rng_state(state["torch"])
    for generator, saved in zip(generators, state.get("generators") or (), strict=False):
        if _same_kind(saved, generator):
            generator.set_state(saved)
    if "cuda" in state and torch.cuda.is_available():
        # a checkpoint from a machine with more GPUs restores the devices this one has
        for index, device_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(device_state, index)


def _check_generator_states(state: dict[str, Any], generators: Sequence[torch.Generator], path: Path,
                            method: str) -> None:
    r"""Raises :class:`ValueError` unless ``state`` (one rank's random state in the checkpoint
    ``path``) holds one generator state per generator of ``generators`` (a checkpoint written
    before generator states were kept holds none, and passes); warns of states of another kind
    (device), which :func:`_set_rng_state` leaves out."""
    saved = state.get("generators")
    if saved is None:
        return
    hint = ("; resume it with the method it was written with, start over (resume=False; gcl train "
            "--restart), or train in another folder")
    if len(saved) != len(generators):
        raise ValueError(f"{path} holds the states of {len(saved)} torch.Generator object(s) of the method "
                         f"(its augmentations' own generators ...), but this {method} holds {len(generators)}: "
                         f"it was built otherwise{hint}")
    other = [index + 1 for index, (kept, generator) in enumerate(zip(saved, generators, strict=True))
             if not _same_kind(kept, generator)]
    if other:  # e.g. a CUDA generator then, a CPU one now: the run goes on, as runs across devices do
        warnings.warn(f"{path} holds states of another kind (another device's) for torch.Generator "
                      f"{', '.join(map(str, other))} of the method's {len(generators)}: they keep their own state, "
                      "so the resumed run draws other views than the interrupted one would have", stacklevel=3)


def _same_kind(state: Any, generator: torch.Generator) -> bool:
    r"""Whether ``state`` is a state ``generator`` can take (one of a generator of its device type)."""
    current = generator.get_state()
    return isinstance(state, Tensor) and state.dtype == current.dtype and state.shape == current.shape


def _atomic_save(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
        raise


class Trainer:
    r"""Runs a method over data for a number of epochs, with exact resume.

    A *method* is an :class:`torch.nn.Module` whose ``forward(batch)`` returns the
    loss (or a NamedTuple with a ``loss`` field). If it defines
    ``after_step()``, that is called after every optimiser step (momentum
    encoders and memories update there).

    Checkpoints (every ``config.checkpoint_every`` steps and at every epoch end)
    hold the method's ``state_dict`` (parameters, momentum copies, memories),
    the optimiser and scheduler, the step counters, the loss history and the
    random state of torch, of the shuffling generator and of every
    :class:`torch.Generator` the method holds (an augmentation's own, found
    through its attributes, lists and dicts). A run started again
    with the same ``out_dir`` continues from the last checkpoint and produces the
    same weights as an uninterrupted run (on CPU, bit for bit).

    Under :mod:`torch.distributed` (see :mod:`gcl.train.distributed`) the method
    is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`;
    ``config.batch_size`` is the global batch, split evenly over the ranks by a
    :class:`~torch.utils.data.distributed.DistributedSampler` that reshuffles
    every epoch. Ranks draw different augmentations (rank 0 keeps the
    single-process random stream): torch's stream is seeded per rank, and with
    in-process views (``config.view_workers == 0``) every rank but 0 gives each
    :class:`torch.Generator` the method holds a stream of its own, seeded from a
    number the generator draws and the rank (on resume the states a checkpoint
    holds for the rank replace them); with view workers, the workers reseed
    those generators every step from the seed, the rank and the step instead.
    Rank 0 writes the checkpoints, which hold every rank's random state; they
    resume with any world size at an epoch boundary, and mid-epoch when the
    world size is unchanged or both runs are distributed (their global batches
    are the same). An iterable of batches is taken to be this rank's shard,
    already split by the caller.

    With ``config.view_workers > 0`` the batches of a dataset and their views
    are prepared by background processes (:class:`gcl.data.ViewPrefetcher`)
    and handed to the method as ``method(batch, views=views)``.

    Args:
        method (nn.Module): The method to train.
        config (TrainConfig): Optimiser, epochs, batch size, seed, device ...
        out_dir (str or Path, optional): Where checkpoints go; ``None`` keeps
            nothing on disk.
        validate (callable, optional): ``validate(method) -> float`` (higher is
            better), called after each epoch; enables early stopping with
            ``config.patience`` and restores the best state at the end. Select
            on validation data only, never on the test split. A ``patience``
            without ``validate`` is refused (nothing would ever stop the run).
        run_key (dict, optional): What the run is beyond the method's class and
            ``config`` (e.g. the method's name and options, the dataset's name
            and loading options; :func:`gcl.train.run` and ``gcl train`` pass
            them): kept in the checkpoints, and a checkpoint of another key is
            refused instead of resumed (two methods may share a class, and
            options such as a temperature leave the parameters' shapes alone).
    """

    def __init__(
        self,
        method: nn.Module,
        config: TrainConfig,
        *,
        out_dir: str | os.PathLike[str] | None = None,
        validate: Callable[[nn.Module], float] | None = None,
        run_key: dict[str, Any] | None = None,
    ) -> None:
        if config.patience is not None and validate is None:
            raise ValueError(f"patience={config.patience} needs a validate function: early stopping compares "
                             "validation scores, and without them the run would train all its epochs; pass "
                             "validate=..., or leave patience out")
        self.method = method
        self.config = config
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.validate = validate
        self.run_key = _plain(run_key) if run_key is not None else None
        self.device = config.resolve_device()
        self._sampler: DistributedSampler[Any] | None = None
        self._generators: list[torch.Generator] = []  # those the method holds (set by fit)

    # -- data -----------------------------------------------------------------
    def _loader(self, data: Dataset | Data | Iterable[Any], generator: torch.Generator) -> Iterable[Any]:
        if isinstance(data, Data):
            return [moved_to(data, self.device)]  # node-level, full graph: one step per epoch, moved once
        if isinstance(data, Dataset):
            if len(data) == 0:
                raise ValueError("cannot train on an empty dataset")
            from gcl.augment import MultiView

            if isinstance(getattr(data, "transform", None), MultiView):
                raise ValueError("the dataset's transform is a MultiView, which turns every graph into a list of "
                                 "views; a method draws its own views from plain graphs: train on the dataset "
                                 "without that transform (keep MultiView for pipelines of your own)")
            drop_last = self.config.drop_last and len(data) > self.config.batch_size
            batch_size = self.config.batch_size
            sampler: DistributedSampler[Any] | list[int] | None = None
            if self.config.shuffle == "once":
                if _distributed():
                    raise ValueError("shuffle='once' runs in one process; under torch.distributed the "
                                     "DistributedSampler reshuffles every epoch")
                # one order for every epoch, drawn before any epoch's random state is saved, so that a
                # resumed run draws it again
                sampler = torch.randperm(len(data), generator=generator).tolist()
            elif _distributed():
                # batch_size is the global batch: each of the W ranks takes batch_size / W graphs
                world = dist.get_world_size()
                if batch_size % world:
                    raise ValueError(f"batch_size {batch_size} is not divisible by the world size {world}")
                batch_size //= world
                self._sampler = DistributedSampler(data, shuffle=True, seed=self.config.seed, drop_last=drop_last)
                sampler = self._sampler
            if isinstance(data, InMemoryDataset) and data.transform is None:
                # slices the collated storage instead of re-collating Data objects every step
                return CollatedLoader(data, batch_size, shuffle=sampler is None, drop_last=drop_last,
                                      generator=generator, sampler=sampler)
            if self.config.view_workers:  # the workers collate by index
                return DatasetBatches(data, batch_size, shuffle=sampler is None, drop_last=drop_last,
                                      generator=generator, sampler=sampler)
            if sampler is not None:
                return DataLoader(data, batch_size=batch_size, sampler=sampler, drop_last=drop_last)
            return DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=drop_last, generator=generator)
        return data

    def _prefetcher(self, data: Any, loader: Iterable[Any]) -> ViewPrefetcher | None:
        workers = self.config.view_workers
        if not workers:
            return None
        if not isinstance(loader, (CollatedLoader, DatasetBatches)):
            raise ValueError(f"view_workers needs a PyG dataset of graphs (got {type(data).__name__}); "
                             "train with view_workers=0")
        views = getattr(self.method, "view_augmentations", None)
        if not callable(views):
            raise ValueError(f"{type(self.method).__name__} draws its views inside forward (it has no "
                             "view_augmentations() method); train it with view_workers=0")
        return ViewPrefetcher(loader.collate, list(views()), workers=workers, device=self.device,
                              batch_keys=getattr(self.method, "batch_keys_with_views", None),
                              timeout=self.config.view_timeout)

    # -- checkpoints ----------------------------------------------------------
    def _save(self, path: Path, state: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_save(state, path)

    def _state(self, optimizer: torch.optim.Optimizer, scheduler: Any, epoch: int, step_in_epoch: int,
               global_step: int, epoch_generator_state: Tensor, history: list[dict[str, float]],
               best_val: float | None, bad_epochs: int, stopped_early: bool = False) -> dict[str, Any]:
        return {
            "method": self.method.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "epoch": epoch,
            "step_in_epoch": step_in_epoch,
            "global_step": global_step,
            "epoch_generator_state": epoch_generator_state,
            "rng": _rng_state(self._generators),
            "world_size": _world()[1],
            "history": history,
            "best_val": best_val,
            "bad_epochs": bad_epochs,
            "stopped_early": stopped_early,
            "run_key": self.run_key,
            "config": {k: v for k, v in vars(self.config).items() if k != "extra"},
            "method_class": type(self.method).__name__,
            "num_examples": self._num_examples,
        }

    def _checkpoint(self, path: Path, state: Callable[[], dict[str, Any]],
                    progress: dict[str, Any] | None = None) -> None:
        r"""Write ``state()`` from rank 0, with the random state of every rank and, mid-epoch, what
        every rank has done of the epoch (``progress``: its step losses, graphs and seconds) (all
        ranks call this)."""
        rank, world = _world()
        states: list[Any] = [None] * world
        if world > 1:
            dist.all_gather_object(states, (_rng_state(self._generators), progress))
        if rank == 0:
            content = state()
            content["progress"] = progress
            if world > 1:
                content["rng_per_rank"] = [s[0] for s in states]
                content["progress_per_rank"] = [s[1] for s in states]
            self._save(path, content)

    def _check_resumable(self, state: dict[str, Any], path: Path) -> None:
        r"""Refuses a checkpoint written by another method, for other data or with other settings."""
        hint = (f"; train in another folder than {path.parent}, or start over in it (resume=False; "
                "gcl train --restart)")
        saved_class = state.get("method_class")
        if saved_class is not None and saved_class != type(self.method).__name__:
            raise ValueError(f"{path} was written by {saved_class}, not {type(self.method).__name__}{hint}")
        saved_key = state.get("run_key")
        if isinstance(saved_key, dict) and isinstance(saved_key.get("dataset_options"), dict):
            from gcl.data.loaders import identifying_options

            # written before options at their defaults were left out of run keys: the same run
            saved_key = {**saved_key, "dataset_options": identifying_options(saved_key["dataset_options"])}
        if saved_key is not None and self.run_key is not None and saved_key != self.run_key:
            entries = sorted(set(saved_key) | set(self.run_key))
            listing = ", ".join(f"{k} {saved_key.get(k)!r} -> {self.run_key.get(k)!r}" for k in entries
                                if saved_key.get(k) != self.run_key.get(k))
            raise ValueError(f"{path} was written by another run ({listing}): resuming would mix them{hint}")
        saved_examples = state.get("num_examples")
        if saved_examples is not None and self._num_examples is not None and saved_examples != self._num_examples:
            raise ValueError(f"{path} was written for data of {saved_examples} examples; this data has "
                             f"{self._num_examples}{hint}")
        saved = dict(state.get("config") or {})
        current = {k: v for k, v in vars(self.config).items() if k != "extra"}
        if saved:  # settings added to TrainConfig after the checkpoint was written had their defaults
            saved.update({f.name: f.default for f in dataclasses.fields(TrainConfig)
                          if f.name in current and f.name not in saved and f.default is not dataclasses.MISSING})
        changed = sorted(k for k in saved if k in current and k not in _RESUME_FREE and saved[k] != current[k])
        if bool(saved.get("view_workers")) != bool(current["view_workers"]):
            changed.append("view_workers")  # any number of workers draws the same views, none draws others
        if changed:
            listing = ", ".join(f"{k} {saved[k]!r} -> {current[k]!r}" for k in changed)
            raise ValueError(f"{path} was written with other settings ({listing}): resuming would mix "
                             f"them{hint}")
        if "epochs" in saved and saved["epochs"] != current["epochs"] and current["scheduler"] == "cosine":
            raise ValueError(f"{path} was written for {saved['epochs']} epochs and the cosine schedule spans "
                             f"them; {current['epochs']} epochs would change the schedule of the epochs "
                             f"already trained{hint}")
        if state["epoch"] > self.config.epochs:
            raise ValueError(f"{path} has {state['epoch']} epochs done, more than epochs={self.config.epochs}{hint}")
        if state["epoch"] == self.config.epochs and state.get("step_in_epoch"):
            # its weights hold steps of epoch epochs + 1, which this run would return as its result
            raise ValueError(f"{path} was written {state['step_in_epoch']} steps into epoch {state['epoch'] + 1}, "
                             f"past epochs={self.config.epochs}: train at least {state['epoch'] + 1} epochs to "
                             f"resume it{hint}")

    def _collective_device(self) -> torch.device:
        r"""Where tensors of a collective live: the training device for NCCL, the CPU for gloo."""
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    def _sum_over_ranks(self, *values: float) -> list[float]:
        device = self._collective_device()
        totals = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(totals)
        return [float(v) for v in totals.tolist()]

    def _range_over_ranks(self, *values: int) -> tuple[list[int], list[int]]:
        r"""The largest and the smallest of each of ``values`` over the ranks (one all-reduce)."""
        point = torch.tensor(values, dtype=torch.long, device=self._collective_device())
        bounds = torch.cat([point, -point])
        dist.all_reduce(bounds, op=dist.ReduceOp.MAX)
        return bounds[:len(values)].tolist(), (-bounds[len(values):]).tolist()

    def _check_same_steps(self, steps: int) -> None:
        r"""Raises on every rank when ranks hold different numbers of batches: the rank with
        fewer would leave the epoch while the others wait in DDP's gradient reduction."""
        (most,), (fewest,) = self._range_over_ranks(steps)
        if most != fewest:
            raise ValueError(
                f"ranks hold different numbers of batches per epoch ({fewest} to {most}; this rank {steps}): "
                "each rank's iterable must give the same number of batches (its part of every global batch)")

    def _check_same_start(self, epoch: int, step_in_epoch: int, global_step: int) -> None:
        r"""Raises on every rank when ranks would start from different points: each reads the
        checkpoint in its own ``out_dir``, which is rank 0's only where the ranks share the folder
        (a rank that found none would train from scratch beside ranks that resumed)."""
        latest, earliest = self._range_over_ranks(epoch, step_in_epoch, global_step)
        if latest != earliest:
            raise ValueError(
                f"ranks would start from different points (global steps {earliest[2]} to {latest[2]}; this rank "
                f"epoch {epoch}, step {step_in_epoch} of it): every rank resumes from the checkpoint rank 0 writes "
                "in out_dir, so out_dir must be one folder all ranks share (a shared file system across "
                "machines); or start over on every rank (resume=False; gcl train --restart)")

    def _from_main(self, value: float) -> float:
        r"""Rank 0's ``value`` on every rank."""
        device = self._collective_device()
        tensor = torch.tensor([value], dtype=torch.float64, device=device)
        dist.broadcast(tensor, src=0)
        return float(tensor.item())

    def _broadcast_tensor(self, tensor: Tensor) -> None:
        r"""Rank 0's values of ``tensor``, in place, on every rank (moved for gloo / NCCL as needed)."""
        wanted = self._collective_device()
        if tensor.device == wanted:
            dist.broadcast(tensor, src=0)
            return
        moved = tensor.to(wanted)
        dist.broadcast(moved, src=0)
        tensor.copy_(moved)

    # -- main loop ------------------------------------------------------------
    def fit(self, data: Dataset | Data | Iterable[Any], *, resume: bool = True) -> TrainResult:
        r"""Train on ``data``: a PyG dataset (mini-batches of graphs), a single
        :class:`~torch_geometric.data.Data` (full-graph steps) or any iterable of
        batches (re-iterated every epoch)."""
        config = self.config
        if config.sync_batchnorm and self.device.type != "cuda":
            # in one process too: a setting that would silently do nothing is refused
            raise ValueError(f"sync_batchnorm needs CUDA devices (got {self.device}); "
                             "on CPU batch-norm statistics stay per rank")
        generator = seed_everything(config.seed)
        rank, world = _world()
        if rank:
            torch.manual_seed(_rank_seed(config.seed, rank))
        if isinstance(data, Data) and world > 1:
            raise ValueError(
                f"full-graph training on one Data object runs in one process (got world size {world}): "
                "every rank would train on the same graph and contrast duplicated nodes; "
                "pass each rank its own iterable of subgraph batches instead")
        self.method.to(self.device)
        self._sampler = None
        self._best_state: dict[str, Tensor] | None = None  # an earlier fit's best weights are not this run's
        self._forward: nn.Module = self.method
        is_main = rank == 0
        if _distributed():
            if config.sync_batchnorm:  # a CPU device was refused above
                self.method = nn.SyncBatchNorm.convert_sync_batchnorm(self.method)
            device_ids = [self.device.index or 0] if self.device.type == "cuda" else None
            # Memories (queues, banks) stay identical on every rank because their writes are
            # gathered, and rank 0's batch-norm statistics are the ones checkpointed: broadcasting
            # every buffer before each forward would only cost time.
            self._forward = DistributedDataParallel(self.method, device_ids=device_ids,
                                                    find_unused_parameters=config.find_unused_parameters,
                                                    **_no_buffer_sync())
        # the augmentations' own generators: checkpointed and restored with torch's random state
        self._generators = _generators(self.method)
        # as torch's stream above; a checkpoint's states, restored below, override these. View
        # workers reseed the generators of the views from the rank and the step instead; one the
        # method uses outside its views (in forward) gets a stream of its own here too.
        views = getattr(self.method, "view_augmentations", None)
        reseeded = {id(g) for g in _generators(views())} if config.view_workers and callable(views) else set()
        _rank_streams([g for g in self._generators if id(g) not in reseeded], rank)
        parameters = trainable_parameters(self.method)
        if not parameters:
            raise ValueError("the method has no trainable parameters")
        optimizer = config.make_optimizer(parameters)
        scheduler = config.make_scheduler(optimizer)
        loader = self._loader(data, generator)
        prefetcher = self._prefetcher(data, loader)

        history: list[dict[str, float]] = []
        start_epoch, skip_steps, global_step = 0, 0, 0
        best_val: float | None = None
        bad_epochs = 0
        restored_rng: dict[str, Any] | None = None
        restored_progress: dict[str, Any] | None = None  # the resumed epoch's steps before the checkpoint
        finished = False
        self._num_examples = _num_examples(data)
        checkpoint_path = self.out_dir / CHECKPOINT_NAME if self.out_dir is not None else None
        if resume and checkpoint_path is not None and checkpoint_path.exists():
            # Loaded on the CPU: the random-number states must stay CPU byte tensors, and
            # load_state_dict copies parameters and optimiser state to the training device (the
            # checkpoint may come from another device).
            try:
                state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
            except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
                raise ValueError(f"{checkpoint_path} cannot be read ({type(exc).__name__}: {exc}); it is not a "
                                 "complete checkpoint: start over with resume=False (gcl train --restart), or "
                                 "train in another folder") from None
            missing = sorted(_CHECKPOINT_KEYS - set(state)) if isinstance(state, dict) else ["(not a mapping)"]
            if missing:
                raise ValueError(f"{checkpoint_path} is not a gcl checkpoint (it lacks {', '.join(missing)}): "
                                 "start over with resume=False (gcl train --restart), or train in another folder")
            self._check_resumable(state, checkpoint_path)
            try:
                self.method.load_state_dict(state["method"])
            except RuntimeError as exc:
                raise ValueError(f"{checkpoint_path} does not fit this {type(self.method).__name__} (another "
                                 f"dataset or other hyper-parameters?); train in another folder, or start over "
                                 f"in it (resume=False; gcl train --restart). {exc}") from exc
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None and state["scheduler"] is not None:
                scheduler.load_state_dict(state["scheduler"])
            start_epoch, skip_steps = state["epoch"], state["step_in_epoch"]
            global_step = state["global_step"]
            history, best_val, bad_epochs = state["history"], state["best_val"], state["bad_epochs"]
            # a run that stopped early is finished: fit again returns it instead of training on
            finished = bool(state.get("stopped_early")) or self._out_of_patience(bad_epochs)
            generator.set_state(state["epoch_generator_state"])
            saved_world = int(state.get("world_size", 1))
            per_rank = state.get("rng_per_rank") or [state["rng"]]
            if rank < len(per_rank):
                restored_rng = per_rank[rank]
                _check_generator_states(restored_rng, self._generators, checkpoint_path,
                                        type(self.method).__name__)
            progress_per_rank = state.get("progress_per_rank") or [state.get("progress")]
            if skip_steps and saved_world == world and rank < len(progress_per_rank):
                restored_progress = progress_per_rank[rank]
            else:  # a rank the saved run did not have: a fresh stream of its own
                torch.manual_seed(_rank_seed(config.seed, rank, global_step))
                if skip_steps:
                    restored_progress = _merged_progress(progress_per_rank, rank)
            if skip_steps and saved_world != world and min(saved_world, world) == 1:
                warnings.warn(
                    f"resuming mid-epoch with world size {world} from a checkpoint written with world size "
                    f"{saved_world}: single-process and distributed runs shuffle differently, so the rest "
                    f"of epoch {start_epoch + 1} may repeat or skip graphs; checkpoints at epoch ends "
                    "(checkpoint_every=0) resume exactly", stacklevel=2)
            if skip_steps == 0 and restored_rng is not None:
                _set_rng_state(restored_rng, self._generators)
                restored_rng = None
        elif not resume and self.out_dir is not None and is_main:
            # starting over: the earlier run's checkpoint and best state go now, so that a run
            # interrupted before its first checkpoint leaves nothing that a resume would take
            (self.out_dir / CHECKPOINT_NAME).unlink(missing_ok=True)
            (self.out_dir / BEST_NAME).unlink(missing_ok=True)

        if world > 1:
            self._check_same_start(start_epoch, skip_steps, global_step)
        stopped_early = finished
        if finished:
            start_epoch = config.epochs  # the loop below has nothing left to do
        total_steps = self._steps_per_epoch(loader)
        bar = self._progress(total_steps, start_epoch, skip_steps) if is_main and not finished else None
        upcoming: _UpcomingEpoch | None = None
        try:
            for epoch in range(start_epoch, config.epochs):
                epoch_generator_state = generator.get_state()
                if self._sampler is not None:
                    self._sampler.set_epoch(epoch)
                if world > 1 and isinstance(loader, Sized):
                    self._check_same_steps(len(loader))
                self.method.train()
                losses: list[float] = []
                seen, started = 0, time.perf_counter()
                if restored_progress is not None:  # the steps of this epoch done before the checkpoint
                    losses = [float(v) for v in restored_progress["losses"]]
                    seen, started = int(restored_progress["seen"]), started - float(restored_progress["seconds"])
                    restored_progress = None
                iterator: Iterator[tuple[Any, tuple[Any, ...] | None]]
                if prefetcher is not None:  # (batch, views), on the device already
                    assert isinstance(loader, (CollatedLoader, DatasetBatches))
                    if upcoming is not None and upcoming.epoch == epoch:  # drawn during the last epoch
                        steps, seeds, epoch_generator_state = upcoming.steps, upcoming.seeds, upcoming.state
                    else:
                        steps = loader.batch_indices()[skip_steps:]
                        seeds = _view_seeds(config.seed, rank, global_step, len(steps))
                    # the next epoch's batches are drawn now (the same draws, in the same order), so that
                    # the workers start on them while this epoch's last steps train
                    upcoming = self._upcoming(loader, generator, epoch + 1, global_step + len(steps), rank)
                    iterator = prefetcher.epoch(steps, seeds, upcoming=None if upcoming is None else
                                                (upcoming.steps, upcoming.seeds))
                else:
                    batches = iter(loader)
                    for _ in range(skip_steps):
                        next(batches)
                    # the caller's batches stay where they are
                    iterator = ((moved_to(batch, self.device), None) for batch in batches)
                if skip_steps and restored_rng is not None:
                    _set_rng_state(restored_rng, self._generators)
                    restored_rng = None
                step_in_epoch = skip_steps
                skip_steps = 0
                for batch, views in iterator:
                    loss = self._step(optimizer, batch, epoch, global_step, views)
                    losses.append(loss)
                    seen += _batch_size(batch)
                    step_in_epoch += 1
                    global_step += 1
                    if bar is not None:
                        elapsed = max(time.perf_counter() - started, 1e-9)
                        # (refreshed by update() at tqdm's interval, not redrawn every step)
                        bar.set_postfix(_bar_postfix(epoch, loss, seen / elapsed, world), refresh=False)
                        bar.update(1)
                    if (checkpoint_path is not None and config.checkpoint_every
                            and global_step % config.checkpoint_every == 0):
                        self._checkpoint(checkpoint_path, partial(self._state,
                            optimizer, scheduler, epoch, step_in_epoch, global_step,
                            epoch_generator_state, history, best_val, bad_epochs),
                            {"losses": list(losses), "seen": seen, "seconds": time.perf_counter() - started})
                if step_in_epoch == 0:
                    raise ValueError(f"epoch {epoch + 1} has no batches: the data is empty, or an iterator that "
                                     "an earlier epoch used up (pass a list, a dataset or a loader, which every "
                                     "epoch iterates again)")
                if scheduler is not None:
                    scheduler.step()
                seconds = time.perf_counter() - started
                epoch_loss, graphs = sum(losses) / max(len(losses), 1), float(seen)
                if world > 1:
                    # the mean over ranks of the rank losses is the loss of the global batch
                    epoch_loss, graphs = self._sum_over_ranks(epoch_loss / world, graphs)
                record: dict[str, float] = {
                    "epoch": float(epoch + 1),
                    "loss": epoch_loss,
                    "seconds": seconds,
                    "graphs_per_second": graphs / max(seconds, 1e-9),
                }
                if self.validate is not None:
                    # under DDP rank 0 validates and every rank takes its score: ranks' eval-mode
                    # outputs differ (their own batch-norm statistics), and early stopping must agree
                    score = float(self.validate(self.method)) if is_main else 0.0
                    if world > 1:
                        score = self._from_main(score)
                    record["val"] = score
                    # a NaN score (e.g. a diverged validation loss) is never the best
                    if not math.isnan(score) and (best_val is None or score > best_val):
                        best_val, bad_epochs = score, 0
                        if self.out_dir is not None and is_main:
                            self._save(self.out_dir / BEST_NAME, {"method": self.method.state_dict(),
                                                                   "epoch": epoch + 1, "val": score})
                        self._best_state = {k: v.detach().clone() for k, v in self.method.state_dict().items()}
                    else:
                        bad_epochs += 1
                history.append(record)
                stopped_early = self._out_of_patience(bad_epochs)
                if checkpoint_path is not None:
                    # the shuffle's state before the next epoch's draw (made early for the view workers)
                    next_state = upcoming.state if upcoming is not None else generator.get_state()
                    self._checkpoint(checkpoint_path, partial(self._state,
                        optimizer, scheduler, epoch + 1, 0, global_step, next_state,
                        history, best_val, bad_epochs, stopped_early))
                if stopped_early:
                    break
        finally:
            if bar is not None:
                bar.close()
            if prefetcher is not None:
                prefetcher.close()
        if self.validate is not None and self._best_state is not None:
            if world > 1:  # rank 0's best state (its batch-norm statistics) on every rank
                for tensor in self._best_state.values():
                    self._broadcast_tensor(tensor)
            self.method.load_state_dict(self._best_state)
        elif self.validate is not None and self.out_dir is not None and (self.out_dir / BEST_NAME).exists():
            best = torch.load(self.out_dir / BEST_NAME, map_location="cpu", weights_only=False)
            self.method.load_state_dict(best["method"])
        self.method.eval()
        return TrainResult(self.method, history, best_val, stopped_early, checkpoint_path)

    def _upcoming(self, loader: CollatedLoader | DatasetBatches, generator: torch.Generator, epoch: int,
                  first_step: int, rank: int) -> _UpcomingEpoch | None:
        r"""The batches and view seeds of ``epoch`` (``None`` past the last epoch), drawn ahead
        of it, with the shuffle's state before the draw (what that epoch's checkpoints keep)."""
        if epoch >= self.config.epochs:
            return None
        state = generator.get_state()
        if self._sampler is not None:
            self._sampler.set_epoch(epoch)
        steps = loader.batch_indices()
        return _UpcomingEpoch(epoch, steps, _view_seeds(self.config.seed, rank, first_step, len(steps)), state)

    def _out_of_patience(self, bad_epochs: int) -> bool:
        r"""Whether early stopping ends the run after ``bad_epochs`` epochs without a better
        validation score (``patience`` comes with ``validate``: checked in ``__init__``)."""
        return self.config.patience is not None and bad_epochs >= self.config.patience

    def _step(self, optimizer: torch.optim.Optimizer, batch: Any, epoch: int, global_step: int,
              views: tuple[Any, ...] | None = None) -> float:
        optimizer.zero_grad(set_to_none=True)
        try:
            loss = loss_of(self._forward(batch) if views is None else self._forward(batch, views=views))
        except NonFiniteError as error:  # the embeddings reaching the loss already hold NaN/inf
            raise TrainingDiverged(f"{error} at epoch {epoch + 1}, step {global_step + 1}; "
                                   f"stopping{self._last_checkpoint()}. {_DIVERGED_ADVICE}") from error
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingDiverged(f"loss became {value} at epoch {epoch + 1}, step {global_step + 1}; "
                                   f"stopping{self._last_checkpoint()}. {_DIVERGED_ADVICE}")
        loss.backward()
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(trainable_parameters(self.method), self.config.grad_clip)
        optimizer.step()
        after_step = getattr(self.method, "after_step", None)
        if callable(after_step):
            after_step()
        return value

    def _last_checkpoint(self) -> str:
        r"""Where a diverged run can resume from, for its error message."""
        if self.out_dir is None:
            return ""
        path = self.out_dir / CHECKPOINT_NAME
        return f" (last good checkpoint: {path})" if path.exists() else " (no checkpoint was written yet)"

    def _steps_per_epoch(self, loader: Iterable[Any]) -> int | None:
        try:
            return len(loader)  # type: ignore[arg-type]
        except TypeError:
            return None

    def _progress(self, steps: int | None, start_epoch: int, skip: int) -> Any:
        if not self.config.progress:
            return None
        from tqdm.auto import tqdm

        total = steps * self.config.epochs if steps is not None else None
        done = steps * start_epoch + skip if steps is not None else 0
        return tqdm(total=total, initial=done, desc=type(self.method).__name__, unit="step",
                    dynamic_ncols=True, leave=False)


def _bar_postfix(epoch: int, loss: float, graphs_per_second: float, world: int) -> dict[str, str | int]:
    r"""What the progress bar shows after a step of ``epoch`` (counted from 0): the step's loss and
    the graphs per second so far. Only rank 0 draws the bar, so under DDP (``world > 1``) both are
    rank 0's and named so (the ranks may hold different numbers of graphs); the history and
    ``result.json`` hold the global ones."""
    prefix = "" if world == 1 else "rank0_"
    return {"epoch": epoch + 1, f"{prefix}loss": f"{loss:.4f}", f"{prefix}graphs_s": f"{graphs_per_second:.0f}"}


def fit(method: nn.Module, data: Dataset | Data | Iterable[Any], config: TrainConfig | None = None, *,
        out_dir: str | os.PathLike[str] | None = None, validate: Callable[[nn.Module], float] | None = None,
        resume: bool = True, run_key: dict[str, Any] | None = None, **overrides: Any) -> TrainResult:
    r"""Train ``method`` on ``data``: the functional form of :class:`Trainer`.

    Keyword overrides update ``config`` (e.g. ``fit(method, ds, epochs=5)``).

    Example:
        >>> from gcl.augment import DropNodes, MaskFeatures
        >>> from gcl.data import load_dataset
        >>> from gcl.methods import GraphCL
        >>> from gcl.nn import GIN, ProjectionHead
        >>> method = GraphCL(GIN(7, 32, 3), DropNodes(0.2), MaskFeatures(0.2), ProjectionHead(96, 96, 96))
        >>> result = fit(method, load_dataset("MUTAG"), epochs=3, lr=0.01, progress=False)
        >>> [record["epoch"] for record in result.history], sorted(result.history[-1])
        ([1.0, 2.0, 3.0], ['epoch', 'graphs_per_second', 'loss', 'seconds'])
    """
    base = config if config is not None else TrainConfig()
    if overrides:
        values = {k: v for k, v in vars(base).items() if k != "extra"}
        values.update(overrides)
        base = TrainConfig(**values, extra=dict(base.extra))
    return Trainer(method, base, out_dir=out_dir, validate=validate, run_key=run_key).fit(data, resume=resume)
