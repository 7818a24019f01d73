r"""Batches and their augmented views drawn ahead of the training step, in background processes.

Collating a mini-batch and augmenting it twice costs a GraphCL step on a small
GIN as much as a fifth of its time on one CPU core, and on a GPU it is host
work that the device waits for. :class:`ViewPrefetcher` moves that work into
worker processes, so that it overlaps with the model's forward and backward:

* each worker owns a few **slots** of anonymous shared memory, mapped before
  it is forked; it collates the batch of a step, applies the augmentations and
  writes every tensor of the batch and of the views into one slot;
* only the layout (offsets, dtypes, shapes and the non-tensor attributes)
  travels through a pipe; the training process copies the used bytes of the
  slot once (to the training device, a single host-to-device copy on a GPU)
  and rebuilds the batches as views of that copy, which frees the slot for the
  next step at once.

The random draws of a step's views depend only on the seed handed to it, never
on the number of workers or on which worker drew them, so a run gives the same
numbers with one worker or eight, and resumes mid-epoch exactly.
"""

from __future__ import annotations

import functools
import mmap
import multiprocessing
import multiprocessing.connection
import os
import pickle
import random
import signal
import time
import traceback
import types
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from gcl._process import exit_with_parent, started_by_main_thread
from gcl.data.loader import data_class_of, filled, moved_to, new_batch

Collate = Callable[[Tensor], Any]
Augmentation = Callable[[Any], Any]

_ALIGN = 64  # bytes: every tensor starts at a multiple, so a view of any dtype lines up
_DEFAULT_SLOT_BYTES = 64 << 20  # virtual: only the pages a step writes become resident


class _Upcoming:
    r"""The next epoch's steps and seeds, and how many of them were sent ahead."""

    def __init__(self, steps: list[Tensor], seeds: list[int], sent: int) -> None:
        self.steps, self.seeds, self.sent = steps, seeds, sent

    def same(self, steps: list[Tensor], seeds: list[int]) -> bool:
        r"""Whether ``steps`` and ``seeds`` are the ones sent ahead."""
        return (seeds == self.seeds and len(steps) == len(self.steps)
                and all(a is b or torch.equal(a, b) for a, b in zip(steps, self.steps)))


class _Packed(NamedTuple):
    offset: int
    nbytes: int
    dtype: torch.dtype
    shape: tuple[int, ...]


#: The longest timeout, in seconds, that :meth:`multiprocessing.connection.Connection.poll` takes:
#: on Linux it waits in ``poll(2)``, whose timeout is a C ``int`` of milliseconds (about 24.8 days).
MAX_TIMEOUT = (2**31 - 1) // 1000


def check_timeout(name: str, value: Any) -> None:
    r"""Raises :class:`ValueError` unless ``value`` is ``None`` (no limit) or a
    positive number of seconds up to :data:`MAX_TIMEOUT`."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds or None (got {value!r})")
    if not value <= MAX_TIMEOUT:  # infinity too: the wait would raise OverflowError mid-training
        raise ValueError(f"{name} must be at most {MAX_TIMEOUT} seconds, about 24 days (got {value!r}); "
                         "None sets no limit")


def _round_up(value: int) -> int:
    return -(-value // _ALIGN) * _ALIGN


def pack(items: Sequence[Any], region: Any) -> tuple[list[Any], int] | None:
    r"""Write the tensors of ``items`` (:class:`~torch_geometric.data.Data` or
    :class:`~torch_geometric.data.Batch` objects) into ``region`` (a writable
    buffer) and return their layout and the number of bytes used.

    A tensor that several items share (a view that kept the batch's ``x``) is
    written once, and unpacks to one tensor shared by the same items. Items of
    a ``Data`` subclass defined at module level unpack to that class (or its
    batch class); other subclasses to plain ``Data`` / ``Batch``.

    Returns ``None``, writing nothing, when an item is not a ``Data`` /
    ``Batch`` of dense CPU tensors or when they do not fit in ``region``: the
    caller then sends the items some other way.
    """
    layout: list[Any] = []
    copies: list[tuple[int, Tensor]] = []
    written: dict[tuple[Any, ...], _Packed] = {}  # a tensor several items share is written once
    offset = 0
    for item in items:
        if not isinstance(item, Data):  # Batch objects are Data too
            return None
        fields: dict[str, Any] = {}
        for key, value in item.to_dict().items():
            if isinstance(value, Tensor):
                if value.layout != torch.strided or value.device.type != "cpu" or value.is_quantized:
                    return None
                identity = (value.data_ptr(), value.dtype, tuple(value.shape), value.stride(),
                            value.is_conj(), value.is_neg())
                if identity in written:
                    fields[key] = written[identity]
                    continue
                value = value.detach().resolve_conj().resolve_neg().contiguous()
                nbytes = value.numel() * value.element_size()
                fields[key] = written[identity] = _Packed(offset, nbytes, value.dtype, tuple(value.shape))
                if nbytes:
                    copies.append((offset, value))
                offset += _round_up(nbytes)
            else:
                fields[key] = value
        num_graphs = int(item.num_graphs) if isinstance(item, Batch) else None
        data_class = data_class_of(item)
        layout.append((num_graphs, fields, data_class if data_class is not Data and _picklable(data_class) else None,
                       _bookkeeping(item)))
    if offset > len(region):
        return None
    if copies:
        target = torch.frombuffer(region, dtype=torch.uint8, count=offset)
        for start, value in copies:
            flat = value.reshape(-1).view(torch.uint8)
            target[start:start + flat.numel()].copy_(flat)
        del target  # releases the buffer export
    return layout, offset


def unpack(layout: list[Any], flat: Tensor) -> list[Any]:
    r"""The objects :func:`pack` described by ``layout``, their tensors views of
    ``flat`` (the packed bytes, on any device: no copy is made)."""
    items: list[Any] = []

    def tensor(packed: _Packed) -> Tensor:
        return flat[packed.offset:packed.offset + packed.nbytes].view(packed.dtype).view(packed.shape)

    for num_graphs, fields, data_class, bookkeeping in layout:
        attrs = {key: tensor(value) if isinstance(value, _Packed) else value for key, value in fields.items()}
        if num_graphs is None:
            items.append(Data(**attrs) if data_class is None else filled(data_class(), attrs))
        else:
            batch = new_batch(data_class, **attrs)
            batch._num_graphs = num_graphs
            if bookkeeping is not None:
                slices, incs, node_counts = bookkeeping
                batch._slice_dict = {key: torch.from_numpy(value) for key, value in slices.items()}
                batch._inc_dict = {key: torch.from_numpy(value) for key, value in incs.items()}
                if node_counts is not None:
                    batch._store._num_nodes = node_counts
            items.append(batch)
    return items


def _bookkeeping(item: Data) -> Any:
    r"""A batch's per-graph bookkeeping (what
    :meth:`~torch_geometric.data.Batch.to_data_list` reads: collation slices,
    increments, and the node counts of a batch without ``x``) as NumPy arrays
    and lists, which travel with the layout (a few hundred integers) and stay
    on the host as PyG keeps them; ``None`` when ``item`` has none."""
    slices = getattr(item, "_slice_dict", None)
    if not isinstance(item, Batch) or not isinstance(slices, dict):
        return None
    incs = getattr(item, "_inc_dict", None) or {}
    if not all(isinstance(v, Tensor) and v.device.type == "cpu" for v in (*slices.values(), *incs.values())):
        return None
    node_counts = getattr(item._store, "_num_nodes", None)
    return ({key: value.numpy() for key, value in slices.items()},
            {key: value.numpy() for key, value in incs.items()},
            list(node_counts) if isinstance(node_counts, list) else None)


@functools.cache
def _picklable(data_class: type) -> bool:
    r"""Whether the layout can name ``data_class`` (a class defined at module level);
    otherwise the items arrive as plain ``Data`` / ``Batch`` objects."""
    try:
        pickle.dumps(data_class)
    except Exception:
        return False
    return True


def _seed_everything(seed: int, generators: Sequence[torch.Generator] = ()) -> None:
    r"""Seed the global streams and every generator an augmentation holds (each
    its own stream: a function of ``seed`` and its position)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the global stream an augmentation may use
    torch.manual_seed(seed)
    for index, generator in enumerate(generators, start=1):
        generator.manual_seed((seed + index * 0x9E3779B97F4A7C15) % 2**63)


#: What :func:`_generators` does not search: tensors (parameters, buffers), arrays, datasets,
#: classes, modules and plain values hold no generator, and some of them hold a great many objects.
_UNSEARCHED = (Tensor, np.ndarray, torch.utils.data.Dataset, type, types.ModuleType, str, bytes, bytearray,
               memoryview, int, float, complex, range, torch.device, torch.dtype)


#: What every :class:`torch.nn.Module` keeps in its ``__dict__`` besides its submodules (``_modules``):
#: parameters, buffers and hooks, which hold no generator of the module's.
_MODULE_INTERNALS = frozenset(vars(nn.Module())) - {"_modules"}


def _generators(root: Any) -> list[torch.Generator]:
    r"""The :class:`torch.Generator` objects held by ``root`` (an augmentation,
    a list of them, or a method), however deeply: through attributes, the
    lists, tuples, sets and dicts among them and the functions and arguments of
    :func:`functools.partial` objects, each object once, in the order they are
    reached (depth first). Tensors, NumPy arrays, datasets, classes, Python
    modules and a :class:`torch.nn.Module`'s parameters, buffers and hooks are
    not searched (its submodules and other attributes are)."""
    found: list[torch.Generator] = []
    seen: set[int] = set()
    pending: list[Any] = [root]  # a stack, not recursion: nesting has no limit
    while pending:
        obj = pending.pop()
        if obj is None or isinstance(obj, _UNSEARCHED) or id(obj) in seen:
            continue
        seen.add(id(obj))
        children: list[Any]
        if isinstance(obj, torch.Generator):
            found.append(obj)
            continue
        if isinstance(obj, (list, tuple, set, frozenset)):
            children = list(obj)
        elif isinstance(obj, dict):
            children = list(obj.values())
        elif isinstance(obj, functools.partial):
            children = [obj.func, *obj.args, *obj.keywords.values()]
        else:
            try:
                attributes = vars(obj)
            except TypeError:  # no __dict__ (slots, built-in objects)
                continue
            if isinstance(obj, nn.Module):  # its submodules and own attributes, not torch's bookkeeping
                children = [value for key, value in attributes.items() if key not in _MODULE_INTERNALS]
            else:
                children = list(attributes.values())
        pending.extend(reversed(children))  # the first child is searched first
    return found


def _only(batch: Any, keys: Sequence[str] | None) -> Any:
    r"""``batch`` with only the attributes ``keys`` (all for ``None``), keeping ``num_graphs``."""
    if keys is None or not isinstance(batch, Batch):
        return batch
    light = new_batch(data_class_of(batch), **{key: batch[key] for key in keys if key in batch})
    light._num_graphs = batch.num_graphs
    return light


def _work(conn: Connection, regions: list[mmap.mmap], collate: Collate,
          augmentations: Sequence[Augmentation], batch_keys: Sequence[str] | None,
          generators: Sequence[torch.Generator], inherited: Sequence[Connection], started_by_main: bool) -> None:
    r"""A worker's loop: one task (slot, seed, graph indices) in, one answer out.
    It ends when told to, when its pipe closes, or when the training process
    is gone (even killed)."""
    parent = multiprocessing.parent_process()
    # the kernel ends us when the training process dies, even inside an augmentation that sleeps or
    # spins, when the sentinel below is not watched (and we exit at once if it died already)
    exit_with_parent(getattr(parent, "pid", None) or os.getppid(), started_by_main=started_by_main)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the training process handles Ctrl-C and stops us
    for other in inherited:  # the training process's ends, copied by the fork: a pipe must close when it dies
        other.close()
    watched: list[Any] = [conn] if parent is None else [conn, parent.sentinel]
    torch.set_num_threads(1)
    while True:
        try:
            if conn not in multiprocessing.connection.wait(watched):
                return  # the training process ended
            task = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if task is None:
            return
        slot, seed, indices = task
        try:
            _seed_everything(seed, generators)
            batch = collate(torch.from_numpy(indices))
            views = [augment(batch) for augment in augmentations]
            items = [_only(batch, batch_keys), *views]
            packed = pack(items, regions[slot])
            answer: tuple[str, Any] = ("shared", packed) if packed is not None else ("pickled", items)
            message = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # handed to the training process, which raises it
            message = pickle.dumps(("error", f"{type(error).__name__}: {error}\n{traceback.format_exc()}"))
        try:
            conn.send_bytes(message)
        except (BrokenPipeError, OSError):
            return


class ViewPrefetcher:
    r"""Collates the batches of an epoch and draws their augmented views in
    background processes, ahead of the training step that needs them.

    Step :math:`i` of an epoch goes to worker :math:`i \bmod W`; each worker
    keeps ``slots`` steps in flight, so while the model trains on one step the
    workers prepare the next ``W · slots``. Before a step's augmentations run,
    the worker seeds Python's, NumPy's and torch's global generators with the
    step's seed, and every :class:`torch.Generator` the augmentations hold
    (found through their attributes, lists and dicts, however deeply) with a
    stream of its own derived from it: the views depend on the seeds and the
    indices only, not on ``W``.

    The batches are rebuilt in the training process as
    :class:`~torch_geometric.data.Batch` objects of the dataset's graph class
    (a ``Data`` subclass defined at module level) with every attribute of the
    worker's batches (``x``, ``edge_index``, ``batch``, ``ptr``, ``y``,
    ``edge_attr``, stored centralities ...), ``num_graphs`` and the
    per-graph bookkeeping that :meth:`~torch_geometric.data.Batch.to_data_list`
    reads (kept on the host, as PyG keeps it). Their tensors are on
    ``device`` and owned by the training process (the shared slot is reused
    at once). Objects that are not ``Data`` /
    ``Batch`` of dense CPU tensors, or that do not fit in a slot, are pickled
    through the pipe instead (slower; they keep their class and bookkeeping).

    An epoch can name the one after it (``upcoming``): its first steps are
    then sent while the current epoch's last steps train, so that the next
    epoch does not start by waiting for its first batch (nor does validation
    between the two hold the workers idle).

    A worker stops when :meth:`close` is called, and also when the training
    process dies, however it dies. Only the iterator of the latest
    :meth:`epoch` call may be used.

    The workers are forked (Linux): they inherit ``collate``, the
    augmentations and the dataset behind them as they are when :meth:`start`
    is called, and run on the CPU (a CUDA generator in an augmentation fails
    there). Use it as a context manager, or call :meth:`close`.

    Args:
        collate (callable): ``collate(indices) -> Batch`` for a
            :obj:`torch.long` tensor of graph indices, e.g.
            :meth:`gcl.data.CollatedLoader.collate`.
        augmentations (sequence of callables): The views, each
            ``augmentation(batch) -> batch`` (may be empty: then only the
            collation moves to the workers).
        workers (int): Background processes. (default: :obj:`1`)
        slots (int): Steps in flight per worker. (default: :obj:`2`)
        slot_bytes (int, optional): Size of each shared slot; only the pages
            a step writes become resident. (default: 64 MiB)
        device (torch.device or str): Where the delivered tensors live.
            (default: :obj:`"cpu"`)
        batch_keys (sequence of str, optional): Deliver only these attributes
            of the batch itself (``num_graphs`` always), for a method that reads
            little of it once it has the views; ``None`` delivers all. The views
            are always drawn from the whole batch. (default: :obj:`None`)
        timeout (float, optional): Seconds to wait for a step's answer before
            stopping the workers and raising :class:`RuntimeError` (a worker
            stuck in a deadlock, or a step far slower than expected), at most
            :data:`MAX_TIMEOUT` (about 24 days); ``None`` waits as long as it
            takes. (default: :obj:`None`)

    Example:
        >>> from gcl.augment import DropNodes, MaskFeatures
        >>> from gcl.data import CollatedLoader, load_dataset
        >>> from gcl.methods import GraphCL
        >>> from gcl.nn import GIN, ProjectionHead
        >>> method = GraphCL(GIN(7, 32, 3), DropNodes(0.2), MaskFeatures(0.2), ProjectionHead(96, 96, 96))
        >>> loader = CollatedLoader(load_dataset("MUTAG"), batch_size=64, shuffle=True)
        >>> steps = loader.batch_indices()  # one epoch: the graphs of each step
        >>> with ViewPrefetcher(loader.collate, method.view_augmentations()) as views:
        ...     for batch, (view1, view2) in views.epoch(steps, seeds=range(len(steps))):
        ...         loss = method(batch, views=(view1, view2))
        ...         print(batch.num_graphs, view1.num_graphs, view2.num_graphs)
        64 64 64
        64 64 64
        60 60 60
    """

    def __init__(self, collate: Collate, augmentations: Sequence[Augmentation], *, workers: int = 1,
                 slots: int = 2, slot_bytes: int | None = None,
                 device: torch.device | str = "cpu", batch_keys: Sequence[str] | None = None,
                 timeout: float | None = None) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer (got {workers!r})")
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise ValueError(f"slots must be a positive integer (got {slots!r})")
        check_timeout("timeout", timeout)
        slot_bytes = _DEFAULT_SLOT_BYTES if slot_bytes is None else int(slot_bytes)
        if slot_bytes < _ALIGN:
            raise ValueError(f"slot_bytes must be at least {_ALIGN} (got {slot_bytes})")
        if "fork" not in multiprocessing.get_all_start_methods():
            raise ValueError("background view workers need the 'fork' start method (Linux); "
                             "train with view_workers=0 on this platform")
        self.collate = collate
        self.augmentations = list(augmentations)
        self.workers = workers
        self.slots = slots
        self.slot_bytes = slot_bytes
        self.device = torch.device(device)
        self.batch_keys = None if batch_keys is None else tuple(batch_keys)
        self.timeout = None if timeout is None else float(timeout)
        self._regions: list[list[mmap.mmap]] = []
        self._conns: list[Connection] = []
        self._processes: list[Any] = []
        self._sent = 0  # tasks sent since the workers started: task t goes to worker t % W
        self._received = 0  # answers read (in the order the tasks were sent)
        self._early: _Upcoming | None = None  # an upcoming epoch whose first steps were sent
        self._generation = 0  # counts epoch() calls: only the latest one reads answers

    @property
    def started(self) -> bool:
        return bool(self._processes)

    def start(self) -> ViewPrefetcher:
        r"""Fork the workers (once; later calls do nothing)."""
        if self.started:
            return self
        context = multiprocessing.get_context("fork")
        generators = _generators(self.augmentations)
        self._sent = self._received = 0
        self._early = None
        try:
            for _ in range(self.workers):
                self._regions.append([mmap.mmap(-1, self.slot_bytes) for _ in range(self.slots)])
                ours, theirs = context.Pipe()
                self._conns.append(ours)
                process = context.Process(
                    target=_work, daemon=True, name="gcl-view-worker",
                    args=(theirs, self._regions[-1], self.collate, self.augmentations, self.batch_keys, generators,
                          list(self._conns), started_by_main_thread()))
                try:
                    process.start()
                finally:
                    theirs.close()
                self._processes.append(process)
        except BaseException:
            self.close()
            raise
        return self

    def _slot(self, task: int) -> tuple[int, int]:
        r"""The worker and the slot of task ``task`` (counted since the workers started)."""
        return task % self.workers, (task // self.workers) % self.slots

    def _send(self, seed: int, indices: Tensor) -> None:
        worker, slot = self._slot(self._sent)
        task = (slot, int(seed), indices.to(torch.long).numpy())
        self._conns[worker].send_bytes(pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL))
        self._sent += 1

    def _next(self) -> tuple[int, int, str, Any]:
        r"""The answer to the oldest task: its worker, slot, kind and payload."""
        worker, slot = self._slot(self._received)
        kind, payload = self._receive(worker)
        self._received += 1
        return worker, slot, kind, payload

    def _receive(self, worker: int) -> tuple[str, Any]:
        if self.timeout is not None and not self._conns[worker].poll(self.timeout):
            self._shutdown(grace=0.0)  # a stuck worker would not listen
            raise RuntimeError(f"view worker {worker} sent nothing for {self.timeout:g} s (stuck, or a step "
                               "takes longer than that); the workers were stopped. Raise the timeout "
                               "(view_timeout) or train with view_workers=0")
        try:
            message = self._conns[worker].recv_bytes()
        except (EOFError, OSError):
            process = self._processes[worker]
            process.join(timeout=5.0)  # its end closed the pipe: reap it, so that its exit code is known
            code = process.exitcode
            self.close()
            raise RuntimeError(f"view worker {worker} stopped unexpectedly (exit code {code})") from None
        kind, payload = pickle.loads(message)
        return kind, payload

    def _drain(self) -> None:
        r"""Read and drop the answers of tasks sent and not used: an epoch left
        early, or an upcoming epoch that is not the one asked for."""
        self._early = None
        while self._received < self._sent:
            self._next()

    def epoch(self, steps: Sequence[Tensor], seeds: Sequence[int], *,
              upcoming: tuple[Sequence[Tensor], Sequence[int]] | None = None,
              ) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        r"""The ``(batch, views)`` of each step, in order.

        Args:
            steps (sequence of Tensor): The graph indices of each step's batch.
            seeds (sequence of int): One seed per step for its views.
            upcoming (tuple, optional): ``(steps, seeds)`` of the next epoch:
                its first steps are sent to the workers once every step of
                this one is, and the next :meth:`epoch` call with the same
                steps and seeds starts with them in flight (a call with others
                drops them). (default: :obj:`None`)

        Raises:
            RuntimeError: A worker raised (the message carries its traceback)
                or stopped.
        """
        if len(steps) != len(seeds):
            raise ValueError(f"steps and seeds differ in length ({len(steps)} and {len(seeds)})")
        following = _Upcoming([], [], 0)
        if upcoming is not None:
            following = _Upcoming(list(upcoming[0]), [int(seed) for seed in upcoming[1]], 0)
            if len(following.steps) != len(following.seeds):
                raise ValueError(f"the upcoming steps and seeds differ in length ({len(following.steps)} "
                                 f"and {len(following.seeds)})")
        return self._epoch(list(steps), [int(seed) for seed in seeds], following)

    def _epoch(self, steps: list[Tensor], seeds: list[int],
               following: _Upcoming) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        self.start()
        early, self._early = self._early, None
        in_flight = early.sent if early is not None and early.same(steps, seeds) else 0
        if not in_flight:
            self._drain()  # answers of an epoch left early, or of an upcoming epoch not taken
        self._generation += 1
        generation = self._generation
        count, ahead = len(steps), self.workers * self.slots

        def send(position: int) -> None:
            # position counts this epoch's steps, then the upcoming epoch's
            if position < count:
                self._send(seeds[position], steps[position])
            elif position - count < len(following.steps):
                self._send(following.seeds[position - count], following.steps[position - count])
                following.sent += 1

        for position in range(in_flight, ahead):
            send(position)
        completed = False
        try:
            for step in range(count):
                if generation != self._generation:
                    raise RuntimeError("a later epoch() of this ViewPrefetcher started; an epoch's iterator "
                                       "must not be used after the next one starts")
                worker, slot, kind, payload = self._next()
                if kind == "error":
                    raise RuntimeError(f"view worker {worker} failed on step {step}:\n{payload}")
                if kind == "shared":
                    layout, used = payload
                    items = unpack(layout, self._copy_out(self._regions[worker][slot], used))
                else:
                    items = [moved_to(item, self.device) if hasattr(item, "to") else item for item in payload]
                send(step + ahead)  # the slot is free again
                yield items[0], tuple(items[1:])
            completed = True
        finally:
            if self.started and generation == self._generation:
                if completed and following.sent:
                    self._early = following  # its first steps are in flight: the next epoch() takes them
                else:
                    self._drain()

    def _copy_out(self, region: mmap.mmap, used: int) -> Tensor:
        if used == 0:
            return torch.empty(0, dtype=torch.uint8, device=self.device)
        shared = torch.frombuffer(region, dtype=torch.uint8, count=used)
        try:
            return shared.clone() if self.device.type == "cpu" else shared.to(self.device)
        finally:
            # a failed copy's traceback keeps this frame: without the view, the slot can close
            del shared

    def close(self) -> None:
        r"""Stop the workers and release the shared slots."""
        self._shutdown(grace=5.0)

    def _shutdown(self, grace: float) -> None:
        r"""Ask the workers to stop, wait up to ``grace`` seconds in all, then
        terminate the rest."""
        for conn in self._conns:
            try:
                conn.send_bytes(pickle.dumps(None))
            except (BrokenPipeError, OSError):
                pass
        # A worker may be writing an answer larger than the pipe holds: read and drop
        # answers until every worker has exited (``grace`` in all), then stop the rest.
        deadline = time.monotonic() + grace
        alive = {process.sentinel: (process, conn) for process, conn in zip(self._processes, self._conns)}
        while alive and time.monotonic() < deadline:
            for ready in multiprocessing.connection.wait([*alive, *(conn for _, conn in alive.values())],
                                                         timeout=max(deadline - time.monotonic(), 0)):
                if ready in alive:
                    alive.pop(ready)[0].join()
                    continue
                try:
                    ready.recv_bytes()  # type: ignore[union-attr]
                except (EOFError, OSError):
                    pass
        for process, _ in alive.values():
            process.terminate()
            process.join(timeout=1)
            if process.is_alive():  # SIGTERM ignored or blocked
                process.kill()
                process.join()
        for conn in self._conns:
            conn.close()
        for regions in self._regions:
            for region in regions:
                try:
                    region.close()
                except BufferError:  # a view still exported: the mapping goes with its last view
                    pass
        self._regions, self._conns, self._processes = [], [], []

    def __enter__(self) -> ViewPrefetcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(augmentations={self.augmentations}, workers={self.workers}, "
                f"slots={self.slots}, device={self.device})")
