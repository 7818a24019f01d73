r"""Starting and joining :mod:`torch.distributed` process groups for training.

Two ways to run the training loop data-parallel, with one code path inside:

* ``torchrun --nproc-per-node=N -m gcl.cli train ...`` (or any launcher that sets
  ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``):
  :func:`init_distributed` joins the group with ``init_method="env://"``.
  Several nodes work the same way (``torchrun --nnodes ... --rdzv-endpoint ...``).
* ``gcl train ... --nproc N`` or :func:`launch` in Python: ``N`` local processes
  are spawned, given the same environment variables as ``torchrun`` would, and
  join through the same :func:`init_distributed`.

The backend is ``"nccl"`` when training on CUDA and ``"gloo"`` on CPU. Each CUDA
process trains on ``cuda:LOCAL_RANK`` (see :func:`local_device`).

Example:
    >>> # the function is pickled by name: it must be importable (module-level)
    >>> from gcl.losses.distributed import all_reduce_sum
    >>> # two CPU processes each add their 21; rank 0's return value comes back
    >>> launch(all_reduce_sum, 2, args=(torch.tensor(21.0),), device="cpu")
    tensor(42.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from gcl._process import exit_with_parent, started_by_main_thread

__all__ = [
    "checked_device",
    "default_backend",
    "init_distributed",
    "is_main_process",
    "launch",
    "local_device",
    "main_process_first",
    "shutdown_distributed",
]

_ENV_KEYS = ("RANK", "WORLD_SIZE")


def _wants_cuda(device: str | torch.device | None) -> bool:
    if device is None or str(device) == "auto":
        return torch.cuda.is_available()
    return torch.device(device).type == "cuda"


def default_backend(device: str | torch.device | None = "auto") -> str:
    r"""``"nccl"`` for CUDA training (when NCCL is built in), ``"gloo"`` otherwise.

    Args:
        device (str or torch.device, optional): The training device setting
            (``"auto"``, ``"cpu"``, ``"cuda"`` ...). (default: :obj:`"auto"`)
    """
    if _wants_cuda(device) and dist.is_nccl_available():
        return "nccl"
    return "gloo"


def checked_device(device: str | torch.device) -> torch.device:
    r"""``torch.device(device)``, with a :class:`ValueError` that names the
    setting for a name torch does not know and for a device this machine or
    torch build does not have (a CUDA device, an ``mps`` or ``xpu`` device
    where there is none; ``meta``, which holds no data, always).

    Args:
        device (str or torch.device): A device name (``"cpu"``, ``"cuda:1"`` ...).
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"unknown device {str(device)!r}: expected auto, cpu, cuda or cuda:N ({error})") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r}: CUDA is not available to this torch build or machine; "
                             "use cpu (or auto, which takes a GPU when there is one)")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif resolved.type != "cpu" and not _available(resolved.type):
        raise ValueError(f"device {str(device)!r}: this torch build or machine has no {resolved.type} device "
                         "to train on; use cpu (or auto, which takes a GPU when there is one)")
    return resolved


def _available(kind: str) -> bool:
    r"""Whether torch can run on devices of type ``kind`` here: never on ``meta`` (no data); on
    this machine's accelerator (:mod:`torch.accelerator`); elsewhere as the type's own check says
    (``torch.<kind>.is_available()``, ``torch.backends.mps`` for ``mps``); a type without one
    (an out-of-tree backend) is taken at its word, and its own errors speak for it."""
    if kind == "meta":
        return False
    try:
        accelerator = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else None
    except (AttributeError, RuntimeError):  # an older torch, or an accelerator that fails to start
        accelerator = None
    if accelerator is not None and accelerator.type == kind:
        return True
    module = torch.backends.mps if kind == "mps" else getattr(torch, kind, None)
    is_available = getattr(module, "is_available", None)
    if not callable(is_available):
        return True
    try:
        return bool(is_available())
    except Exception:  # a backend that fails to initialise is not one to train on
        return False


def local_device(device: str | torch.device = "auto") -> torch.device:
    r"""The device this process trains on.

    Under :mod:`torch.distributed` with CUDA, ``"auto"`` and ``"cuda"`` mean
    ``cuda:LOCAL_RANK`` (one GPU per process); an explicit ``"cuda:k"`` is kept.
    Without a process group this is ``"cuda"`` when available, else ``"cpu"``.

    Args:
        device (str or torch.device): The device setting. (default: :obj:`"auto"`)

    Raises:
        ValueError: For a name torch does not know, or a CUDA device this
            machine or torch build does not have.
    """
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    resolved = checked_device(device)
    if resolved.type == "cuda" and resolved.index is None and dist.is_available() and dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", dist.get_rank() % max(torch.cuda.device_count(), 1)))
        return torch.device("cuda", local_rank)
    return resolved


def init_distributed(backend: str | None = None, *, device: str | torch.device = "auto",
                     timeout: timedelta | None = None) -> bool:
    r"""Join the process group described by the ``torchrun`` environment variables.

    Does nothing (and returns ``False``) when ``RANK`` / ``WORLD_SIZE`` are not
    set; returns ``True`` when a process group is initialised afterwards (also
    when one already was).

    Args:
        backend (str, optional): ``"gloo"`` or ``"nccl"``; ``None`` picks
            :func:`default_backend` for ``device``.
        device (str or torch.device): The training device setting; with CUDA the
            process is bound to ``cuda:LOCAL_RANK``. (default: :obj:`"auto"`)
        timeout (timedelta, optional): Collective timeout (torch's default when ``None``).
    """
    if not dist.is_available():
        return False
    if dist.is_initialized():
        return True
    if not all(key in os.environ for key in _ENV_KEYS):
        return False
    backend = backend or default_backend(device)
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl' (got {backend!r})")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    dist.init_process_group(backend, init_method="env://", **kwargs)
    return True


def shutdown_distributed() -> None:
    r"""Leave the process group, if one is initialised."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    r"""``True`` on rank 0 and without a process group: the process that prints and writes files."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


@contextmanager
def main_process_first(local: bool = True) -> Iterator[None]:
    r"""Let one process per machine run the block first, the others after it.

    For work that writes a cache (processing a dataset into its ``processed/``
    folder): the first process creates it, the others then only read it.
    Without a process group the block simply runs.

    Args:
        local (bool): ``True``: the process with ``LOCAL_RANK`` 0 on every
            machine goes first (one cache per machine, the usual case);
            ``False``: only global rank 0 does (a cache on a file system shared
            by all machines). (default: :obj:`True`)
    """
    distributed = dist.is_available() and dist.is_initialized()
    first = True
    if distributed:
        first = int(os.environ.get("LOCAL_RANK", dist.get_rank())) == 0 if local else dist.get_rank() == 0
    if distributed and not first:
        dist.barrier()
    try:
        yield
    finally:
        if distributed and first:
            dist.barrier()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: Signals that stop a launch: held back while the workers start (see :func:`launch`).
_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def _block_stop_signals() -> set[int] | None:
    r"""Holds back Ctrl-C and SIGTERM (delivered later, when unblocked) and returns the signal mask
    before; :obj:`None` where the platform has no signal masks."""
    if not hasattr(signal, "pthread_sigmask"):
        return None
    return {int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)}


def _restore_signal_mask(mask: set[int] | None) -> None:
    if mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


@contextmanager
def _stop_signals_held() -> Iterator[None]:
    r"""Ctrl-C and SIGTERM held back for the block (delivered after it)."""
    mask = _block_stop_signals()
    try:
        yield
    finally:
        _restore_signal_mask(mask)


def _entry(local_rank: int, function: Callable[..., Any], args: Sequence[Any], nproc: int, port: int,
           backend: str | None, device: str, result_file: str, parent: int | None,
           signal_mask: set[int] | None = None) -> None:
    if signal.getsignal(signal.SIGTERM) is _raise_terminated:  # forked while the launcher had it
        # SIGTERM must end a worker at once, also inside a collective where no Python code runs
        # (reset before the mask below lets a SIGTERM that came meanwhile through)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _restore_signal_mask(signal_mask)  # the launcher's mask from before it held back Ctrl-C
    # (a forkserver's workers are its children, and it ends with the launcher: watch it)
    exit_with_parent(os.getppid() if parent is None else parent)
    # the variables torchrun would set, so that the worker joins through env:// like under torchrun
    os.environ.update({
        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(local_rank),
        "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(nproc), "LOCAL_WORLD_SIZE": str(nproc),
        "GROUP_RANK": "0",
    })
    if "OMP_NUM_THREADS" not in os.environ:
        # N processes share the cores; oversubscribed intra-op threads only add contention
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    try:
        init_distributed(backend, device=device)
        result = function(*args)
        if local_rank == 0:
            torch.save({"result": result}, result_file)
    except KeyboardInterrupt:
        # Ctrl-C that reached this rank: end it at once. Destroying the process group while
        # another rank waits in a collective can deadlock (gloo's destructor holds the GIL while
        # its run loop waits for it), and torch's worker wrapper would report exit code 0 for an
        # interrupted rank; exit code 130 tells launch() to end the other ranks.
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(130)
    except Exception as exc:
        # the exception itself for launch() to raise (torch.multiprocessing passes on only its text)
        with contextlib.suppress(Exception):
            # when it was raised (system-wide clock): file times are too coarse to order the ranks
            torch.save({"error": exc, "raised": time.time_ns()}, f"{result_file}.error{local_rank}")
        raise
    finally:
        shutdown_distributed()


def launch(function: Callable[..., Any], nproc: int, args: Sequence[Any] = (), *, backend: str | None = None,
           device: str = "auto", port: int | None = None, start_method: str = "spawn") -> Any:
    r"""Run ``function(*args)`` in ``nproc`` local processes that form one
    :mod:`torch.distributed` process group, and return rank 0's return value.

    The processes are started by :func:`torch.multiprocessing.start_processes`; each gets
    the ``torchrun`` environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT``) and joins with :func:`init_distributed`
    before ``function`` runs, so the function sees an initialised group. With
    ``nproc=1`` the function runs in this process without a process group. When
    ``OMP_NUM_THREADS`` is unset, each process uses ``cpu_count // nproc`` threads.
    An exception in any process is raised here: the first exception a worker
    raised (its traceback as the cause; the others' collectives fail after it)
    where it can be pickled, otherwise
    :class:`torch.multiprocessing.ProcessRaisedException`.

    Args:
        function (callable): Importable (module-level) function; it and ``args``
            are pickled to the workers.
        nproc (int): Number of processes.
        args (sequence): Positional arguments of ``function``. (default: :obj:`()`)
        backend (str, optional): ``"gloo"`` / ``"nccl"``; ``None`` picks by ``device``.
        device (str): The training device setting, used to pick the backend.
            (default: :obj:`"auto"`)
        port (int, optional): Rendezvous port on ``127.0.0.1`` (a free one when ``None``).
        start_method (str): ``"spawn"`` (fresh interpreters; safe with CUDA) or
            ``"fork"`` (CPU only: the workers inherit this process's imports and
            start in a fraction of the time). (default: :obj:`"spawn"`)
    """
    if nproc < 1:
        raise ValueError(f"nproc must be at least 1 (got {nproc})")
    if start_method not in ("spawn", "fork", "forkserver"):
        raise ValueError(f"start_method must be 'spawn', 'fork' or 'forkserver' (got {start_method!r})")
    if start_method == "fork" and torch.cuda.is_initialized():
        raise ValueError("start_method='fork' cannot be used once CUDA is initialised; use 'spawn'")
    if nproc == 1:
        return function(*args)
    if dist.is_available() and dist.is_initialized():
        raise RuntimeError("launch() starts its own process group; call it from a process outside one")
    if _wants_cuda(device) and (backend or default_backend(device)) == "nccl" \
            and torch.cuda.device_count() < nproc:
        raise ValueError(f"nproc {nproc} needs {nproc} CUDA devices (found {torch.cuda.device_count()}); "
                         "use --device cpu for CPU processes")
    previous = None
    try:
        previous = _terminate_as_exception()
        return _launch(function, nproc, args, backend, device, port, start_method)
    except _Terminated:
        # the workers have ended and the temporary folder is gone: end as SIGTERM ends a process
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)
        raise  # (not reached)
    finally:
        if previous is not None:
            with _stop_signals_held():  # one that comes now acts once the default is back
                signal.signal(signal.SIGTERM, previous)


class _Terminated(BaseException):
    r"""SIGTERM reached a launching process (see :func:`_terminate_as_exception`)."""


def _terminate_as_exception() -> Any:
    r"""Makes SIGTERM raise :class:`_Terminated` while a launch runs, where it would end the
    process at once (its default action, in the main thread): the launch then ends its workers
    and removes its temporary folder before the process ends by the signal. Returns the handler
    to restore, or :obj:`None` where nothing changed (a handler of the program's own stays)."""
    if not started_by_main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None

    signal.signal(signal.SIGTERM, _raise_terminated)
    return signal.SIG_DFL


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated


def _launch(function: Callable[..., Any], nproc: int, args: Sequence[Any], backend: str | None, device: str,
            port: int | None, start_method: str) -> Any:
    import torch.multiprocessing as mp

    with _temporary_folder() as tmp:
        result_file = str(Path(tmp) / "result.pt")
        try:
            # Ctrl-C or SIGTERM while the workers start would leave them running with nobody to end
            # them (the interpreter's exit then waits for them): held back until they can be ended
            mask = _block_stop_signals()
            try:
                context = mp.start_processes(_entry, args=(function, tuple(args), nproc, port or _free_port(),
                                                           backend, device, result_file,
                                                           None if start_method == "forkserver" else os.getpid(),
                                                           mask),
                                             nprocs=nproc, join=False, start_method=start_method)
            except BaseException:
                _restore_signal_mask(mask)
                raise
            try:
                _restore_signal_mask(mask)  # one that came meanwhile is raised here
                while not context.join():
                    pass
            except BaseException as exc:
                # Ctrl-C, SIGTERM turned into an exception, or a failed rank: no worker may outlive
                # this call (the interpreter's exit would wait for it, and one blocked in a
                # collective, or still training, never ends). SIGTERM reached this process alone
                # (`kill`): its workers are not given time to end on their own
                _end_workers(context.processes, on_their_own=not isinstance(exc, _Terminated))
                raise
        except mp.ProcessRaisedException as exc:
            # the first exception a worker saved: a rank that fails makes the others fail in their
            # next collective, and the process torch reports may be one of those
            saved = [e for e in map(_saved_error, map(str, Path(tmp).glob("result.pt.error*"))) if e is not None]
            if not saved:
                raise
            first = min(saved, key=lambda item: item[0])[1]
            raise first from exc  # the worker's own exception, its traceback in the cause
        return torch.load(result_file, weights_only=False)["result"]


#: Seconds an interrupted launch gives its workers to end on their own (they received the same
#: Ctrl-C when it came from a terminal), then to end after SIGTERM, before SIGKILL.
WORKER_GRACE_SECONDS = 10.0


@contextmanager
def _temporary_folder() -> Iterator[str]:
    r"""A launch's temporary folder, removed at the end with Ctrl-C and SIGTERM held back (a
    signal raised inside the removal would leave it half removed)."""
    folder = tempfile.mkdtemp(prefix="gcl-launch-")
    try:
        yield folder
    finally:
        with _stop_signals_held():
            shutil.rmtree(folder, ignore_errors=True)


def _end_workers(processes: Sequence[Any], grace: float | None = None, *, on_their_own: bool = True) -> None:
    r"""Ends every worker still running: time to finish on its own (unless not ``on_their_own``),
    then SIGTERM, then SIGKILL. Rank 0 writes checkpoints atomically, so no kill leaves a partial
    one."""
    grace = WORKER_GRACE_SECONDS if grace is None else grace
    for signal_step in (None, "terminate", "kill") if on_their_own else ("terminate", "kill"):
        running = [process for process in processes if process.is_alive()]
        if not running:
            return
        for process in running:
            if signal_step is not None:
                getattr(process, signal_step)()
        deadline = time.monotonic() + grace
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))


def _saved_error(path: str) -> tuple[int, BaseException] | None:
    r"""When the exception a worker saved at ``path`` was raised, and the exception, if it could
    be saved and read back."""
    try:
        saved = torch.load(path, weights_only=False)
    except Exception:
        return None
    error = saved.get("error") if isinstance(saved, dict) else None
    return (int(saved.get("raised", 0)), error) if isinstance(error, BaseException) else None
