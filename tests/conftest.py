"""Shared fixtures: real datasets shipped in ``datasets/``, loaded offline into a per-run cache."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "datasets"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "network" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="needs network; run with -m network")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed() -> Iterator[None]:
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def mutag():  # type: ignore[no-untyped-def]
    """The real MUTAG dataset (188 molecules, 7 node features) from ``datasets/``."""
    from gcl.data import load_dataset

    return load_dataset("MUTAG")


@pytest.fixture(scope="session")
def proteins():  # type: ignore[no-untyped-def]
    """The real PROTEINS dataset (1,113 graphs, 3 node features) from ``datasets/``."""
    from gcl.data import load_dataset

    return load_dataset("PROTEINS")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The larger benchmark root (``$GCL_DATA`` or ``../shared/datasets``); tests needing it skip when absent."""
    for root in [*os.environ.get("GCL_DATA", "").split(os.pathsep), str(SHARED_DATA)]:
        if root and (Path(root) / "TU").is_dir():
            return Path(root)
    pytest.skip(f"benchmark data root not present ($GCL_DATA or {SHARED_DATA})")


# The tests run many small tensor ops; on a 2-core machine intra-op threads only add
# synchronisation overhead (and contention when pytest-xdist runs workers in parallel).
torch.set_num_threads(int(os.environ.get("GCL_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def load_shared(shared_data: Path):  # type: ignore[no-untyped-def]
    """``load_shared(name, **kwargs)`` loads a dataset from the benchmark root, and skips the test
    when that root lacks it (a root may hold only some of the benchmark sets)."""
    from gcl.data import load_dataset
    from gcl.data.roots import DatasetNotFoundError

    def load(name: str, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return load_dataset(name, root=shared_data, **kwargs)
        except DatasetNotFoundError:
            pytest.skip(f"{name} is not under the benchmark data root {shared_data}")

    return load



def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has ended: only its exit status is left


def _fresh_resource_tracker_lock() -> None:
    r"""In a forked child: a new lock for multiprocessing's resource tracker. The child
    inherits the lock as it was at the fork; when another thread of the test process held
    it then (a process pool's manager thread shutting down after an earlier test), the
    child's first semaphore or pool waits for it forever."""
    import threading
    from multiprocessing import resource_tracker

    tracker = resource_tracker._resource_tracker
    lock = getattr(tracker, "_lock", None)
    if lock is not None:
        tracker._lock = threading.RLock() if "RLock" in type(lock).__name__ else threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_resource_tracker_lock)


class _TrackedFork:
    r"""The ``fork`` multiprocessing context, remembering the processes it starts."""

    def __init__(self) -> None:
        import multiprocessing

        self._context = multiprocessing.get_context("fork")
        self.started: list[Any] = []

    def Process(self, *args: Any, **kwargs: Any) -> Any:
        process = self._context.Process(*args, **kwargs)
        self.started.append(process)
        return process

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


@pytest.fixture
def fork_context() -> Iterator[_TrackedFork]:
    """multiprocessing's ``fork`` context whose processes are killed if they outlive the test:
    a child that hangs fails its test instead of keeping pytest from exiting (which joins
    every child it has)."""
    tracked = _TrackedFork()
    yield tracked
    for process in tracked.started:
        if process.pid is not None and process.is_alive():
            process.kill()
            process.join(10)


@pytest.fixture
def alive() -> Callable[[int], bool]:
    """Whether a process runs (Linux ``/proc``): for tests of processes left behind."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc")
    return _alive
