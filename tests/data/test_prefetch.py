from __future__ import annotations

import mmap
import os
import signal
import time
from typing import Any

import pytest
import torch
from torch_geometric.data import Batch, Data

import gcl.augment as A
from gcl.data import CollatedLoader, DatasetBatches, ViewPrefetcher
from gcl.data.prefetch import _generators, _seed_everything, pack, unpack


def _same(first: Any, second: Any) -> None:
    assert type(first) is type(second) or (isinstance(first, Batch) and isinstance(second, Batch))
    assert sorted(first.keys()) == sorted(second.keys())
    for key in first.keys():
        a, b = first[key], second[key]
        if isinstance(a, torch.Tensor):
            assert a.dtype == b.dtype and a.shape == b.shape, key
            assert torch.equal(a, b), key
        else:
            assert a == b, key
    if isinstance(first, Batch):
        assert first.num_graphs == second.num_graphs
        # the per-graph bookkeeping too, as host tensors (what to_data_list reads)
        for name in ("_slice_dict", "_inc_dict"):
            want, got = getattr(first, name, None), getattr(second, name, None)
            assert (want is None) == (got is None), name
            if want is not None:
                assert want.keys() == got.keys(), name
                assert all(torch.equal(want[k], got[k]) and got[k].device.type == "cpu" for k in want), name
        assert getattr(first._store, "_num_nodes", None) == getattr(second._store, "_num_nodes", None)


def _augmentations() -> list[Any]:
    return [A.RandomChoice([A.DropNodes(0.2), A.PerturbEdges(0.2), A.RandomWalkSubgraph(0.8)]),
            A.MaskFeatures(0.3)]


def _expected(collate: Any, augmentations: list[Any], indices: torch.Tensor, seed: int) -> list[Any]:
    """What a worker computes for one step, computed here."""
    state = torch.get_rng_state()
    try:
        _seed_everything(seed)
        batch = collate(indices)
        return [batch, *(augment(batch) for augment in augmentations)]
    finally:
        torch.set_rng_state(state)


def test_pack_round_trip_keeps_every_attribute(mutag: Any) -> None:
    batch = CollatedLoader(mutag, 16).collate(torch.arange(16))
    batch.flags = torch.rand(batch.num_nodes) < 0.5                  # bool
    batch.wide = torch.arange(6, dtype=torch.float64).view(2, 3)      # 8-byte values
    batch.odd = torch.arange(5, dtype=torch.int16)                     # a length that needs padding
    batch.empty = torch.empty(0, 4)
    batch.scalar = torch.tensor(2.5)
    batch.strided = torch.arange(12.0).view(3, 4).t()                # not contiguous
    batch.name = "mutag"
    graph = Data(x=torch.randn(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]))
    region = mmap.mmap(-1, 1 << 20)
    layout, used = pack([batch, graph], region)
    assert 0 < used <= len(region)
    flat = torch.frombuffer(region, dtype=torch.uint8, count=used).clone()
    region.close()
    got_batch, got_graph = unpack(layout, flat)
    _same(batch, got_batch)
    _same(graph, got_graph)
    assert got_batch.strided.is_contiguous()


def test_pack_writes_a_shared_tensor_once(mutag: Any) -> None:
    batch = CollatedLoader(mutag, 16).collate(torch.arange(16))
    view = A.DropEdges(0.5)(batch)  # keeps the batch's x
    assert view.x is batch.x
    region = mmap.mmap(-1, 1 << 20)
    _, alone = pack([batch], region)
    layout, used = pack([batch, view], region)
    assert used < 2 * alone
    flat = torch.frombuffer(region, dtype=torch.uint8, count=used).clone()
    got_batch, got_view = unpack(layout, flat)
    assert got_view.x.data_ptr() == got_batch.x.data_ptr()
    _same(batch, got_batch)
    _same(view, got_view)


def test_pack_declines_what_it_cannot_carry(mutag: Any) -> None:
    batch = CollatedLoader(mutag, 16).collate(torch.arange(16))
    assert pack([batch], mmap.mmap(-1, 256)) is None                        # does not fit
    assert pack([(batch, batch)], mmap.mmap(-1, 1 << 20)) is None            # not a Data object
    sparse = Data(x=torch.eye(3).to_sparse())
    assert pack([sparse], mmap.mmap(-1, 1 << 20)) is None                    # not a dense tensor


@pytest.mark.parametrize("workers", [1, 3])
def test_views_depend_on_seeds_not_on_workers(mutag: Any, workers: int) -> None:
    loader = CollatedLoader(mutag, 32, shuffle=True, generator=torch.Generator().manual_seed(1))
    steps = loader.batch_indices()
    seeds = [1000 + 7 * i for i in range(len(steps))]
    augmentations = _augmentations()
    with ViewPrefetcher(loader.collate, augmentations, workers=workers) as prefetcher:
        delivered = list(prefetcher.epoch(steps, seeds))
    assert len(delivered) == len(steps)
    for (batch, views), indices, seed in zip(delivered, steps, seeds, strict=True):
        expected = _expected(loader.collate, augmentations, indices, seed)
        assert len(views) == 2
        for got, want in zip([batch, *views], expected, strict=True):
            _same(got, want)
    # the views of different seeds differ
    assert not torch.equal(delivered[0][1][1].x, delivered[1][1][1].x)
    # and split into graphs as the in-process batches do
    batch, views = delivered[0]
    for got, want in zip([batch, *views], _expected(loader.collate, augmentations, steps[0], seeds[0]), strict=True):
        assert [g.num_nodes for g in got.to_data_list()] == [g.num_nodes for g in want.to_data_list()]


def test_what_does_not_fit_a_slot_goes_through_the_pipe(mutag: Any) -> None:
    loader = CollatedLoader(mutag, 32)
    steps = loader.batch_indices()[:3]
    augmentations = _augmentations()
    with ViewPrefetcher(loader.collate, augmentations, slot_bytes=64) as prefetcher:
        delivered = list(prefetcher.epoch(steps, [1, 2, 3]))
    for (batch, views), indices, seed in zip(delivered, steps, [1, 2, 3], strict=True):
        expected = _expected(loader.collate, augmentations, indices, seed)
        for got, want in zip([batch, *views], expected, strict=True):
            _same(got, want)


def test_batch_keys_deliver_part_of_the_batch_and_views_from_all_of_it(mutag: Any) -> None:
    loader = CollatedLoader(mutag, 32)
    steps = loader.batch_indices()[:2]
    augmentations = _augmentations()
    with ViewPrefetcher(loader.collate, augmentations, batch_keys=("y",)) as prefetcher:
        delivered = list(prefetcher.epoch(steps, [4, 5]))
    for (batch, views), indices, seed in zip(delivered, steps, [4, 5], strict=True):
        expected = _expected(loader.collate, augmentations, indices, seed)
        assert list(batch.keys()) == ["y"] and batch.num_graphs == expected[0].num_graphs
        assert torch.equal(batch.y, expected[0].y)
        for got, want in zip(views, expected[1:], strict=True):
            _same(got, want)


def test_dataset_batches_collate_like_the_collated_loader(mutag: Any) -> None:
    indices = torch.tensor([5, 0, 17, 3])
    by_index = DatasetBatches(mutag, 4).collate(indices)
    collated = CollatedLoader(mutag, 4).collate(indices)
    for key in ("x", "edge_index", "edge_attr", "y", "batch", "ptr"):
        assert torch.equal(by_index[key], collated[key]), key
    shuffled = DatasetBatches(mutag, 50, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(0))
    steps = shuffled.batch_indices()
    assert len(steps) == len(shuffled) == 3
    assert len(torch.cat(steps).unique()) == 150


def test_a_worker_error_is_raised_with_its_message_and_the_next_epoch_runs(mutag: Any) -> None:
    def failing(batch: Any) -> Any:
        if batch.num_graphs == 7:
            raise ValueError("seven graphs are unlucky")
        return batch

    loader = CollatedLoader(mutag, 8)
    steps = [torch.arange(8), torch.arange(7), torch.arange(8), torch.arange(8)]
    with ViewPrefetcher(loader.collate, [failing], workers=2) as prefetcher:
        with pytest.raises(RuntimeError, match=r"(?s)step 1:.*ValueError: seven graphs are unlucky"):
            list(prefetcher.epoch(steps, [0, 1, 2, 3]))
        again = list(prefetcher.epoch([torch.arange(8), torch.arange(4)], [0, 1]))
    assert [batch.num_graphs for batch, _ in again] == [8, 4]


def test_leaving_an_epoch_early_does_not_leak_into_the_next(mutag: Any) -> None:
    loader = CollatedLoader(mutag, 16)
    steps = loader.batch_indices()
    with ViewPrefetcher(loader.collate, [A.DropNodes(0.3)], workers=2, slots=3) as prefetcher:
        for _ in prefetcher.epoch(steps, list(range(len(steps)))):
            break  # several steps are still in flight
        first = next(iter(prefetcher.epoch(steps[5:], [99] * (len(steps) - 5))))
    expected = _expected(loader.collate, [A.DropNodes(0.3)], steps[5], 99)
    _same(first[0], expected[0])
    _same(first[1][0], expected[1])


def test_a_worker_that_dies_is_reported(mutag: Any) -> None:
    def die(batch: Any) -> Any:
        os.kill(os.getpid(), signal.SIGKILL)
        return batch

    loader = CollatedLoader(mutag, 8)
    prefetcher = ViewPrefetcher(loader.collate, [die])
    # with the signal that ended it (the out-of-memory killer's SIGKILL reads -9)
    with pytest.raises(RuntimeError, match=r"view worker 0 stopped unexpectedly \(exit code -9\)"):
        list(prefetcher.epoch([torch.arange(8)], [0]))
    assert not prefetcher.started
    prefetcher.close()  # closing twice is harmless


def test_a_worker_that_hangs_is_stopped_after_the_timeout(mutag: Any) -> None:
    def hang(batch: Any) -> Any:
        time.sleep(60)
        return batch

    loader = CollatedLoader(mutag, 8)
    prefetcher = ViewPrefetcher(loader.collate, [hang], timeout=0.5)
    process = prefetcher.start()._processes[0]
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"view worker 0 sent nothing for 0.5 s"):
        list(prefetcher.epoch([torch.arange(8)], [0]))
    assert time.monotonic() - started < 4  # the timeout, then the workers are terminated at once
    assert not prefetcher.started and not process.is_alive()


def test_a_worker_that_ignores_sigterm_is_killed(mutag: Any) -> None:
    def deaf(batch: Any) -> Any:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(60)
        return batch

    loader = CollatedLoader(mutag, 8)
    prefetcher = ViewPrefetcher(loader.collate, [deaf], timeout=0.5)
    process = prefetcher.start()._processes[0]
    with pytest.raises(RuntimeError, match=r"view worker 0 sent nothing for 0.5 s"):
        list(prefetcher.epoch([torch.arange(8)], [0]))
    assert not process.is_alive() and process.exitcode == -signal.SIGKILL


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a device that cannot be reached")
def test_a_failed_copy_to_the_device_is_the_error_raised(mutag: Any) -> None:
    loader = CollatedLoader(mutag, 8)
    prefetcher = ViewPrefetcher(loader.collate, [A.DropEdges(0.2)], device="cuda")  # no CUDA here
    with pytest.raises((RuntimeError, AssertionError)) as info:
        list(prefetcher.epoch([torch.arange(8)], [0]))
    assert not isinstance(info.value, BufferError)
    prefetcher.close()  # and the slots close


def test_a_slow_step_within_the_timeout_is_delivered(mutag: Any) -> None:
    def slow(batch: Any) -> Any:
        time.sleep(0.2)
        return batch

    loader = CollatedLoader(mutag, 8)
    with ViewPrefetcher(loader.collate, [slow], timeout=5) as prefetcher:
        (batch, views), = list(prefetcher.epoch([torch.arange(8)], [0]))
    assert batch.num_graphs == 8 and len(views) == 1


@pytest.mark.parametrize("loader_kind", ["collated", "dataset"])
def test_view_workers_keep_the_graph_class_of_the_dataset(loader_kind: str) -> None:
    from .graphs_custom import LabelledGraph, LabelledGraphs

    dataset = LabelledGraphs()
    loader = CollatedLoader(dataset, 5) if loader_kind == "collated" else DatasetBatches(dataset, 5)
    steps = loader.batch_indices()
    # (edges only: a node-dropping view would remove anchors, which it refuses)
    with ViewPrefetcher(loader.collate, [A.DropEdges(0.2)]) as prefetcher:
        delivered = list(prefetcher.epoch(steps, list(range(len(steps)))))
    for (batch, (view,)), indices in zip(delivered, steps, strict=True):
        expected = loader.collate(indices)
        assert type(batch) is type(expected) and isinstance(batch, LabelledGraph)
        assert isinstance(view, LabelledGraph) and batch.doubled_nodes == 2 * batch.num_nodes
        assert torch.equal(batch.anchor, expected.anchor) and torch.equal(batch.x, expected.x)


def test_bad_arguments_are_refused(mutag: Any) -> None:
    collate = CollatedLoader(mutag, 8).collate
    for kwargs, message in [({"workers": 0}, "workers must be a positive integer"),
                            ({"slots": True}, "slots must be a positive integer"),
                            ({"slot_bytes": 8}, "slot_bytes must be at least"),
                            ({"timeout": 0}, "timeout must be a positive number"),
                            ({"timeout": True}, "timeout must be a positive number"),
                            ({"timeout": float("nan")}, "timeout must be a positive number"),
                            # poll() takes no longer wait: it would raise OverflowError at the first step
                            ({"timeout": float("inf")}, r"timeout must be at most 2147483 seconds.*None sets no"),
                            ({"timeout": 1e7}, r"timeout must be at most 2147483 seconds")]:
        with pytest.raises(ValueError, match=message):
            ViewPrefetcher(collate, [], **kwargs)
    with ViewPrefetcher(collate, []) as prefetcher, pytest.raises(ValueError, match="differ in length"):
        list(prefetcher.epoch([torch.arange(8)], []))


@pytest.mark.parametrize("workers", [1, 2])
def test_generators_held_by_augmentations_are_seeded_per_step(mutag: Any, workers: int) -> None:
    own = torch.Generator().manual_seed(0)
    augmentations = [A.Compose([A.DropNodes(0.3, generator=own), A.MaskFeatures(0.3, generator=own)])]
    loader = CollatedLoader(mutag, 16)
    steps = [torch.arange(16)] * 4
    with ViewPrefetcher(loader.collate, augmentations, workers=workers) as prefetcher:
        views = [view.x for _, (view,) in prefetcher.epoch(steps, [1, 2, 3, 4])]
    with ViewPrefetcher(loader.collate, augmentations, workers=3) as prefetcher:
        reference = [view.x for _, (view,) in prefetcher.epoch(steps, [1, 2, 3, 4])]
    assert all(torch.equal(a, b) for a, b in zip(views, reference, strict=True))
    assert not any(torch.equal(views[0], other) for other in views[1:])  # the same graphs, other seeds


def test_generators_are_found_however_deep() -> None:
    import functools

    import numpy as np
    from torch import nn

    own = [torch.Generator().manual_seed(i) for i in range(4)]
    nested = A.Compose([A.RandomChoice([A.DropNodes(0.2, generator=own[0]), A.MaskFeatures(0.2)])])
    chain: list[Any] = [own[1]]
    for _ in range(5000):  # deeper than Python's recursion limit
        chain = [chain]

    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(4, 4)  # parameters and buffers are not searched
            self.register_buffer("table", torch.zeros(8))
            self.array = np.zeros(10)
            self.partial = functools.partial(A.DropNodes, generator=own[2])
            self.loop: list[Any] = []
            self.loop.append(self.loop)  # cycles end

    holder = Holder()
    found = _generators([nested, chain, holder, {"again": own[0], "last": own[3]}])
    assert [id(g) for g in found] == [id(g) for g in own]  # each once, in the order reached

    class Drawing(nn.Module):  # a module of its own that draws with a generator of its own
        def __init__(self, generator: torch.Generator) -> None:
            super().__init__()
            self.generator = generator

    inner = torch.Generator().manual_seed(9)
    assert _generators(nn.Sequential(nn.Linear(2, 2), nn.Sequential(Drawing(inner)))) == [inner]


def test_generators_nested_deep_in_a_pool_are_seeded_per_step(mutag: Any) -> None:
    # six attributes down: the list, Compose, its list, RandomChoice, its list, DropNodes
    augmentations = [A.Compose([A.RandomChoice([A.DropNodes(0.3, generator=torch.Generator().manual_seed(0))])])]
    loader = CollatedLoader(mutag, 16)
    steps = [torch.arange(16)] * 4
    runs = []
    for workers in (1, 2):
        with ViewPrefetcher(loader.collate, augmentations, workers=workers) as prefetcher:
            runs.append([view.x for _, (view,) in prefetcher.epoch(steps, [1, 2, 3, 4])])
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))


def _alive(pid: int) -> bool:
    r"""Whether process ``pid`` runs (a zombie, ended and not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_end_when_the_training_process_is_killed(tmp_path: Any) -> None:
    import subprocess
    import sys
    import textwrap
    import time

    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent("""
        import os, signal, sys, torch
        from gcl.data import ViewPrefetcher
        prefetcher = ViewPrefetcher(lambda idx: None, [], workers=2).start()
        print(" ".join(str(p.pid) for p in prefetcher._processes), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    pids = [int(pid) for pid in out.stdout.split()]
    assert len(pids) == 2, out.stderr

    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)


def test_workers_started_by_a_thread_outlive_it(mutag: Any) -> None:
    # the kernel's parent-death signal follows the thread that started a worker: workers started by
    # a thread that then ends must go on serving the process, and still end with it (test above)
    import threading

    loader = CollatedLoader(mutag, 32)
    steps = loader.batch_indices()[:2]
    with ViewPrefetcher(loader.collate, [A.MaskFeatures(0.3)]) as prefetcher:
        # (the thread lives on for a moment: the workers have set up their watch before it ends)
        starter = threading.Thread(target=lambda: (prefetcher.start(), time.sleep(1.0)))
        starter.start()
        starter.join()
        time.sleep(0.5)  # (a signal sent when the thread ended has arrived by now)
        assert all(process.is_alive() for process in prefetcher._processes)
        delivered = list(prefetcher.epoch(steps, [3, 4]))
    for (batch, views), indices, seed in zip(delivered, steps, [3, 4], strict=True):
        for got, want in zip([batch, *views], _expected(loader.collate, [A.MaskFeatures(0.3)], indices, seed),
                             strict=True):
            _same(got, want)


def test_a_worker_stuck_in_an_augmentation_ends_when_the_training_process_is_killed(tmp_path: Any) -> None:
    import subprocess
    import sys
    import textwrap

    # the worker sleeps inside its second augmentation, where it watches nothing; the training
    # process waits for that step's views and is killed outright
    marker = tmp_path / "stuck"
    script = tmp_path / "stuck.py"
    script.write_text(textwrap.dedent(f"""
        import time, torch
        from gcl.data import ViewPrefetcher

        calls = 0

        def sleep_on_second_call(batch):
            global calls
            calls += 1
            if calls == 2:
                open({str(marker)!r}, "w").close()
                time.sleep(3600)
            return batch

        prefetcher = ViewPrefetcher(lambda indices: indices, [sleep_on_second_call]).start()
        print(prefetcher._processes[0].pid, flush=True)
        for _ in prefetcher.epoch([torch.arange(2), torch.arange(2)], [0, 1]):
            pass
    """))
    training = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    worker = None
    try:
        assert training.stdout is not None
        worker = int(training.stdout.readline())
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists() and training.poll() is None  # the worker sleeps, training waits for it
        training.kill()  # SIGKILL: no cleanup runs in the training process
        training.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker)
    finally:
        training.kill()
        if worker is not None and _alive(worker):
            os.kill(worker, signal.SIGKILL)  # the failure above must not leave a sleeper behind


def test_only_the_latest_epoch_reads_answers(mutag: Any) -> None:
    loader = CollatedLoader(mutag, 16)
    steps = loader.batch_indices()
    with ViewPrefetcher(loader.collate, [A.DropNodes(0.3)], workers=2) as prefetcher:
        old = prefetcher.epoch(steps, list(range(len(steps))))
        next(old)
        new = prefetcher.epoch(steps[:4], [7, 8, 9, 10])
        first = next(new)
        del old  # closing the stale iterator must not consume the new epoch's answers
        rest = list(new)
        stale = prefetcher.epoch(steps, list(range(len(steps))))
        next(stale)
        prefetcher.epoch(steps[:1], [0])  # a later epoch, not started yet
        next(prefetcher.epoch(steps[:1], [0]))
        with pytest.raises(RuntimeError, match="a later epoch"):
            next(stale)
    assert len(rest) == 3
    _same(first[0], _expected(loader.collate, [A.DropNodes(0.3)], steps[0], 7)[0])


def test_close_does_not_wait_on_workers_writing_large_answers(mutag: Any) -> None:
    import time

    loader = CollatedLoader(mutag, 188)
    prefetcher = ViewPrefetcher(loader.collate, [A.DropNodes(0.2)], workers=2, slot_bytes=64)
    iterator = prefetcher.epoch([torch.arange(188)] * 6, list(range(6)))
    next(iterator)  # the other answers, pickled (they do not fit a slot), are on their way
    started = time.monotonic()
    prefetcher.close()
    assert time.monotonic() - started < 3.0
    assert not prefetcher.started


def test_pack_resolves_conjugate_and_negative_views() -> None:
    value = torch.randn(4, dtype=torch.complex64)
    real = torch.randn(3)
    graph = Data(a=value, b=value.conj(), c=real, d=torch._neg_view(real))
    region = mmap.mmap(-1, 1 << 16)
    layout, used = pack([graph], region)
    (got,) = unpack(layout, torch.frombuffer(region, dtype=torch.uint8, count=used).clone())
    assert torch.equal(got.a, value) and torch.equal(got.b, value.conj().resolve_conj())
    assert torch.equal(got.c, real) and torch.equal(got.d, -real)


def test_featureless_batches_from_workers_split_into_graphs() -> None:
    from gcl.data import load_dataset

    imdb = load_dataset("IMDB-BINARY")
    imdb._data.x = None  # structure only
    loader = CollatedLoader(imdb, 8)
    steps = loader.batch_indices()[:2]
    with ViewPrefetcher(loader.collate, [A.DropNodes(0.3)]) as prefetcher:
        delivered = list(prefetcher.epoch(steps, [5, 6]))
    for (batch, (view,)), indices, seed in zip(delivered, steps, [5, 6], strict=True):
        want_batch, want_view = _expected(loader.collate, [A.DropNodes(0.3)], indices, seed)
        _same(batch, want_batch)
        _same(view, want_view)
        sizes = [g.num_nodes for g in view.to_data_list()]
        assert sizes == (view.ptr[1:] - view.ptr[:-1]).tolist() and sum(sizes) < sum(batch._store._num_nodes)


class _LogSeeds:
    """An augmentation (identity) that appends the seed of each step it draws to a file."""

    def __init__(self, path: Any) -> None:
        self.path = path

    def __call__(self, batch: Any) -> Any:
        with open(self.path, "a") as log:
            log.write(f"{torch.initial_seed()}\n")  # the worker seeds torch with the step's seed
        return batch


def _logged(path: Any, count: int) -> list[int]:
    """The seeds logged once ``count`` steps were drawn (waits for the workers)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seeds = [int(line) for line in path.read_text().split()] if path.exists() else []
        if len(seeds) >= count:
            return seeds
        time.sleep(0.02)
    raise AssertionError(f"the workers drew {len(seeds)} steps, not {count}")


def test_an_upcoming_epoch_is_drawn_ahead_and_delivers_its_own_steps(mutag: Any, tmp_path: Any) -> None:
    loader = CollatedLoader(mutag, 32, shuffle=True, generator=torch.Generator().manual_seed(2))
    first, second = loader.batch_indices(), loader.batch_indices()
    seeds1, seeds2 = [10 + i for i in range(len(first))], [100 + i for i in range(len(second))]
    log = tmp_path / "drawn"
    augmentations = [_LogSeeds(log), A.DropNodes(0.3)]
    with ViewPrefetcher(loader.collate, augmentations, workers=2, slots=2) as prefetcher:
        got1 = list(prefetcher.epoch(first, seeds1, upcoming=(second, seeds2)))
        # before the second epoch is asked for, the workers drew its first W * slots steps
        assert sorted(_logged(log, len(first) + 4)) == sorted(seeds1 + seeds2[:4])
        got2 = list(prefetcher.epoch(second, seeds2))
    assert sorted(_logged(log, len(first) + len(second))) == sorted(seeds1 + seeds2)  # each step drawn once
    for delivered, steps, seeds in ((got1, first, seeds1), (got2, second, seeds2)):
        assert len(delivered) == len(steps)
        for (batch, views), indices, seed in zip(delivered, steps, seeds, strict=True):
            expected = _expected(loader.collate, [lambda batch: batch, A.DropNodes(0.3)], indices, seed)
            for got, want in zip([batch, *views], expected, strict=True):
                _same(got, want)


def test_steps_sent_ahead_are_dropped_when_another_epoch_is_asked_for(mutag: Any) -> None:
    loader = CollatedLoader(mutag, 16)
    steps = loader.batch_indices()
    augment = [A.DropNodes(0.3)]
    with ViewPrefetcher(loader.collate, augment, workers=2, slots=3) as prefetcher:
        list(prefetcher.epoch(steps[:2], [1, 2], upcoming=(steps[2:], [3] * (len(steps) - 2))))
        other = list(prefetcher.epoch(steps[4:7], [7, 8, 9]))  # not the upcoming epoch
        # left early: what it sent ahead is dropped too
        for _ in prefetcher.epoch(steps[:3], [1, 2, 3], upcoming=(steps[3:], [4] * (len(steps) - 3))):
            break
        again = list(prefetcher.epoch(steps[3:], [4] * (len(steps) - 3)))
    for (batch, views), indices, seed in zip(other, steps[4:7], [7, 8, 9], strict=True):
        expected = _expected(loader.collate, augment, indices, seed)
        _same(batch, expected[0])
        _same(views[0], expected[1])
    assert len(again) == len(steps) - 3
    _same(again[0][1][0], _expected(loader.collate, augment, steps[3], 4)[1])
    with pytest.raises(ValueError, match="upcoming steps and seeds differ in length"):
        prefetcher.epoch(steps[:1], [0], upcoming=(steps[:2], [0]))
