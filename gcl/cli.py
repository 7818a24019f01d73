r"""The ``gcl`` command line.

``gcl datasets`` lists every known dataset and where its files were found;
``gcl train``, ``gcl bench`` and ``gcl reproduce`` run methods and paper tables.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

# Sub-commands register themselves through a ``add_parser(subparsers)`` function
# in their module; they are imported only when the CLI starts, so that the
# library itself never imports the command line.
_COMMAND_MODULES: tuple[str, ...] = ("gcl.train.cli", "gcl.bench.cli")


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def cmd_datasets(args: argparse.Namespace) -> int:
    from gcl.data import SPECS, locate, search_roots

    roots = search_roots(args.root)
    print("Search roots (first match wins):")
    for root in roots:
        print(f"  {root}{'' if root.exists() else '  (missing)'}")
    print()
    header = f"{'dataset':<16} {'family':<10} {'level':<6} {'graphs':>7}  {'size':>9}  location"
    print(header)
    print("-" * len(header))
    found = 0
    for spec in SPECS:
        loc = locate(spec, roots)
        if loc is None and not args.all:
            continue
        where = "not found" if loc is None else str(loc.archive or loc.folder)
        size = "" if loc is None else _human(loc.size_bytes())
        print(f"{spec.name:<16} {spec.family:<10} {spec.level:<6} {spec.num_graphs:>7}  {size:>9}  {where}")
        found += loc is not None
    print(f"\n{found} of {len(SPECS)} known datasets found."
          + ("" if args.all else " Use --all to list the missing ones."))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from gcl import __version__

    parser = argparse.ArgumentParser(
        prog="gcl", description="Graph contrastive learning: train methods, run and reproduce benchmarks."
    )
    parser.add_argument("--version", action="version", version=f"gcl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    ds = sub.add_parser("datasets", help="list known datasets and where their files are found")
    ds.add_argument("--root", default=None, help="extra data root searched first")
    ds.add_argument("--all", action="store_true", help="also list datasets that are not found")
    ds.set_defaults(func=cmd_datasets)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # that part of the package is not installed in this build
            raise
        module.add_parser(sub)
    return parser


def _store_in_memory(args: argparse.Namespace) -> bool:
    r"""Whether a ``gcl bench`` / ``gcl reproduce`` command's results store keeps nothing."""
    from gcl.bench.runner import store_path_of

    return store_path_of(getattr(args, "store", None)) == ":memory:"


def _resume_hint(args: argparse.Namespace) -> str:
    r"""What an interrupted command kept: checkpoints in ``--out`` (``gcl train``), records in a
    results store on disk (``gcl bench`` / ``gcl reproduce``)."""
    if args.command == "train" and getattr(args, "out", None) is None:
        return "nothing was kept (without --out there are no checkpoints to resume from)"
    if args.command in ("bench", "reproduce") and _store_in_memory(args):
        return "nothing was kept (the results store was in memory)"
    if args.command == "train" and getattr(args, "restart", False):
        # the same command would start over again and drop what this run kept
        return "run the same command without --restart to resume"
    if args.command in ("train", "bench", "reproduce"):
        return "run the same command again to resume"
    return "nothing to resume"


def main(argv: Sequence[str] | None = None) -> int:
    r"""Run the ``gcl`` command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    from torch.multiprocessing import ProcessExitedException

    from gcl.bench.runner import TaskFailed, WorkerDied

    try:
        code = func(args)
        sys.stdout.flush()  # what is still buffered: a reader that went away shows here, not at exit
        return code
    except BrokenPipeError as exc:
        if not _stdout_reader_gone():
            print(f"gcl {args.command}: error: {exc}", file=sys.stderr)
            return 2
        # the output's reader stopped reading (`gcl datasets | head`): end quietly, as a process
        # ended by SIGPIPE (exit status 141); what is left to flush goes nowhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13
    except KeyboardInterrupt:  # Ctrl-C: what was done is kept where there is somewhere to keep it
        print(f"gcl {args.command}: interrupted; {_resume_hint(args)}", file=sys.stderr)
        return 130
    except ProcessExitedException as exc:
        # a training process of --nproc that ended without an exception of its own: interrupted
        # (exit code 130) or killed (the out-of-memory killer); the others were ended with it
        if exc.exit_code == 130:
            print(f"gcl {args.command}: interrupted (process {exc.error_index}); {_resume_hint(args)}",
                  file=sys.stderr)
            return 130
        how = f"by {exc.signal_name}" if exc.signal_name else f"with exit code {exc.exit_code}"
        print(f"gcl {args.command}: error: training process {exc.error_index} ended {how} (killed, e.g. by "
              f"the out-of-memory killer?); the others were ended too; {_resume_hint(args)}", file=sys.stderr)
        return 1
    except (TaskFailed, WorkerDied) as exc:
        # a task's failure (already reported with its traceback), or a worker process that died
        # (the message names the unfinished tasks; the main process's traceback says nothing more)
        print(f"gcl {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        # bad input (unknown dataset, missing files, bad hyper-parameter) or a path that cannot be
        # written (a full disk, no permission): the message says what was received and what to
        # do; a traceback would only hide it
        print(f"gcl {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _stdout_reader_gone() -> bool:
    r"""Whether standard output is a pipe whose reading end is closed (``poll`` reports an error
    on the writing end): the broken pipe is the output's, not one of the program's own."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll, or a stdout without a descriptor
        return False


if __name__ == "__main__":
    sys.exit(main())
