r"""``gcl bench CONFIG`` and ``gcl reproduce TABLE``: run a paper table, resume, report."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from gcl.train.cli import non_empty_path


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--datasets", default=None,
                        help="comma-separated subset of the table's datasets (e.g. MUTAG,PROTEINS)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated subset of the table's methods (e.g. grace,gca; the rows' labels)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the table's)")
    parser.add_argument("--quick", action="store_true",
                        help="reduced smoke-test run (the configuration's quick: section; --datasets and "
                             "--methods pick among its rows); its report goes to the cache, not to "
                             "benchmarks/results")
    parser.add_argument("--store", type=Path, default=None,
                        help="results database (default: $GCL_RESULTS or <cache>/bench/results.sqlite)")
    parser.add_argument("--out", type=non_empty_path, default=None,
                        help="folder for <table>.md/.csv/.png (default: benchmarks/results)")
    parser.add_argument("--device", default="cpu",
                        help="auto (a GPU where there is one), cpu, cuda, cuda:N, or a comma-separated list "
                             "that the --jobs workers take in turn (default: cpu)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="worker processes running tasks at once, each with --threads threads "
                             "(default: 1)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default: 1; more threads rarely help small graphs)")
    parser.add_argument("--report-only", action="store_true", help="only rebuild the report from the store")
    parser.add_argument("--stop-on-error", action="store_true",
                        help="stop at the first failing task (named, with its traceback; exit code 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_parser(sub: Any) -> None:
    bench = sub.add_parser("bench", help="run a benchmark configuration file",
                           description="Run every task of a table configuration (YAML) that the results "
                                       "store does not hold yet, then write the report.")
    bench.add_argument("config", type=Path, help="YAML configuration file")
    _common(bench)
    bench.set_defaults(func=cmd_bench)
    reproduce = sub.add_parser("reproduce", help="reproduce a paper table (benchmarks/configs/TABLE.yaml)",
                               description="Reproduce a paper table: runs what is missing from the results "
                                           "store (an interrupted run resumes), then writes "
                                           "benchmarks/results/TABLE.md, .csv and .png beside the paper's numbers.")
    reproduce.add_argument("table", help="table name, e.g. graphcl-tu (see benchmarks/configs)")
    _common(reproduce)
    reproduce.set_defaults(func=cmd_reproduce)


def cmd_bench(args: argparse.Namespace) -> int:
    from gcl.bench.config import load_config

    return _execute(load_config(args.config), args)


def cmd_reproduce(args: argparse.Namespace) -> int:
    from gcl.bench.config import find_config, load_config

    try:
        path = find_config(args.table)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    return _execute(load_config(path), args)


def _execute(config: Any, args: argparse.Namespace) -> int:
    from gcl.bench.config import benchmarks_dir
    from gcl.bench.report import NO_CHART, has_matplotlib, lost_rows, write_report
    from gcl.bench.runner import check_run_options, dataset_available, run_table, store_path_of
    from gcl.bench.store import ResultsStore
    from gcl.data import cache_dir

    datasets = None if args.datasets is None else [d.strip() for d in args.datasets.split(",") if d.strip()]
    methods = None if args.methods is None else [m.strip() for m in args.methods.split(",") if m.strip()]
    for flag, names in (("--datasets", datasets), ("--methods", methods)):
        if names == []:  # (an empty shell variable) would otherwise run the whole table
            print(f"{flag} names no {flag[2:-1]} (got {getattr(args, flag[2:])!r}); leave it out to run "
                  f"every {flag[2:-1]} of the table", file=sys.stderr)
            return 2
    try:  # the names are the full table's, with or without --quick
        datasets = None if datasets is None else [config.dataset_entry(name).label for name in datasets]
        methods = None if methods is None else [config.method(name).label for name in methods]
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    if args.quick:
        config = config.reduced()
        for flag, names, rows in (("--datasets", datasets, [e.label for e in config.datasets]),
                                  ("--methods", methods, [m.label for m in config.methods])):
            outside = [name for name in names or [] if name not in rows]
            if outside:
                print(f"--quick runs only {', '.join(rows)} (the quick: section of {config.table}); {flag} "
                      f"{', '.join(outside)} is not part of it: leave out --quick to run "
                      f"{'it' if len(outside) == 1 else 'them'} with the table's settings, or leave out {flag}",
                      file=sys.stderr)
                return 2
    # --datasets / --methods / fewer --seeds narrow what runs; the report always covers the whole
    # table (and every seed it names), so rows and seeds not run yet stay visible.
    full = config.restricted(None, None if args.seeds is None else max(args.seeds, config.seeds))
    try:
        _check_paper_rows(full)
    except ValueError as error:  # before anything runs: the report would refuse them at the end
        print(error, file=sys.stderr)
        return 2
    try:
        config = config.restricted(datasets, args.seeds, methods)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    if not args.report_only:
        try:
            check_run_options(args.device, args.threads, args.jobs)
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        if datasets:  # asked for by name: not found is an error, not a row to leave for later
            missing = [entry for entry in config.datasets if not dataset_available(entry)]
            if missing:
                print(f"--datasets: {', '.join(e.label for e in missing)} not found under the data roots ("
                      + _roots_text(missing) + "); set GCL_DATA to the folder that holds them, or the row's dataset: {root: ...}, "
                      "or let the row download them (dataset: {download: true}; see `gcl datasets --all`)",
                      file=sys.stderr)
                return 2
    store_path = store_path_of(args.store)
    if isinstance(store_path, Path) and store_path.is_dir():
        print(f"--store {store_path} is a folder: give the path of a results database file (created if missing)",
              file=sys.stderr)
        return 2
    out = None if args.out is None else Path(args.out).expanduser()
    if out is not None and out.is_file():
        # refused now, not after the whole table has run
        print(f"--out {args.out} is a file: give a folder for {config.table}.md / .csv / .png", file=sys.stderr)
        return 2
    if out is not None:
        out_dir = out
    elif args.quick:
        out_dir = cache_dir() / "bench" / "quick"
    else:
        out_dir = benchmarks_dir() / "results"
    command = _command(args)
    report = out_dir / f"{config.table}.md"
    exists = not isinstance(store_path, Path) or store_path.is_file()
    # read without creating it (nothing to read, and nothing to create where the run is refused)
    with ResultsStore(store_path if exists else ":memory:") as store:
        refusal = _report_refusal(full, config, store, store_path, exists, report, args.report_only)
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2
    with ResultsStore(store_path if exists or not args.report_only else ":memory:") as store:
        kept: list[tuple[str, str, int, int]] = []
        if not args.report_only:
            print(f"{config.title}: {len(config.datasets)} dataset(s), {len(config.methods)} method(s), "
                  f"{config.seeds} seed(s); store {store_path}")
            summary = run_table(config, store, device=args.device, threads=args.threads,
                                progress=not args.no_progress, command=command,
                                stop_on_error=args.stop_on_error, jobs=args.jobs)
            print(f"ran {len(summary.ran)} task(s), skipped {len(summary.skipped)} already stored, "
                  f"{len(summary.failed)} failed, in {summary.seconds:.0f} s")
            for name in summary.unavailable:
                print(f"  data not available: {name}")
            if summary.busy:
                print(f"  left to another run working on them: {', '.join(summary.busy)} "
                      "(run again once it ends to pick up any it did not finish)")
            for task, message in summary.failed.items():
                print(f"  failed: {task}: {message}")
            # the rows this run ran again may still lack seeds the report shows (failed or left tasks)
            kept = lost_rows(full, store, report) if report.exists() else []
            if kept:
                out_dir = cache_dir() / "bench" / "kept-reports"
        chart = has_matplotlib()
        if not chart:  # the optional plot extra: the report is written without its chart
            print(f"warning: {NO_CHART}", file=sys.stderr)
        written = write_report(full, store, out_dir, papers_dir=benchmarks_dir() / "papers",
                               available=dataset_available, chart=chart)
    for _kind, path in sorted(written.items()):
        print(f"wrote {path}")
    if kept:
        print(f"{report} is kept: it shows results that the store {store_path} still lacks after this run "
              f"({_rows(kept)}), so this run's report went to {out_dir} instead", file=sys.stderr)
    if not args.report_only and summary.unavailable and \
            set(summary.unavailable) >= {entry.label for entry in config.datasets}:
        which = f"--quick ran nothing: the data of its rows (the quick: section of {config.table})" if args.quick \
            else f"ran nothing: the data of its rows ({', '.join(e.label for e in config.datasets)})"
        print(f"{which} is not found under the data roots (" + _roots_text(config.datasets) + "); set GCL_DATA to "
              "the folder that holds them (see `gcl datasets --all`)", file=sys.stderr)
        return 1
    if kept or (not args.report_only and summary.failed):
        return 1
    return 0


def _report_refusal(full: Any, config: Any, store: Any, store_path: str | Path, exists: bool, report: Path,
                    report_only: bool) -> str | None:
    r"""Why writing ``report`` of ``full`` (the table the report covers) from ``store`` is refused
    before anything runs, or ``None``: a ``--quick`` report never replaces the full table's; a
    report never loses the seeds done that it shows to a store without their records (under the
    settings' fingerprints the report covers; ``--quick`` records are others), unless this run
    (``config``) runs every seed of those rows again; ``--report-only`` never writes a report
    from a store that holds none of those records (every row would say 'not run yet')."""
    from gcl.bench.report import is_quick_report, lost_rows, reported_seeds
    from gcl.data import cache_dir

    flag = "--report-only" if report_only else "nothing run"
    which = f"the store {store_path}" + ("" if exists else " (there is none at that path)")
    hint = _store_hint(store_path, report.parent)
    if report.exists() and full.is_quick and reported_seeds(report) and not is_quick_report(report):
        return (f"--quick: {report} is the report of the full table {full.table}, not of a --quick run: this "
                "run's report would replace it. Write the --quick report elsewhere (--out DIR; without --out it "
                f"goes to {cache_dir() / 'bench' / 'quick'}), or remove the report to replace it on purpose.")
    lost = lost_rows(full, store, report) if report.exists() else []
    if not report_only and config.seeds >= full.seeds:  # rows run again, every seed: measured anew
        again = {(entry.label, spec.label) for entry in config.datasets for spec in config.methods}
        lost = [row for row in lost if (row[0], row[1]) not in again]
    if lost:
        return (f"{flag}: {report} shows results missing from {which} ({_rows(lost)}): writing it now would "
                f"lose them. Pass the store the table was run with ({hint}), "
                + ("" if report_only else "run those rows too, ")
                + "or write the report elsewhere (--out DIR); remove the report to replace it on purpose.")
    variants = {full.variant(entry, spec) for entry in full.datasets for spec in full.methods}
    if report_only and not any(store.holds(full.table, variant) for variant in variants):
        found = (f"the store {store_path} holds no records of {full.table} under the settings the report covers"
                 if exists else f"there is no results store at {store_path}")
        if report.exists():
            return (f"--report-only: {found}: the report would replace {report} with 'not run yet' on every row. "
                    f"Pass the store the table was run with ({hint}), or another --out.")
        return (f"--report-only: {found}: the report would say 'not run yet' on every row. Pass the store the "
                f"table was run with ({hint}), or leave out --report-only to run the table.")
    return None


def _store_hint(store_path: str | Path, folder: Path) -> str:
    r"""Where the store of the reports in ``folder`` may be: the one beside them (the committed
    tables keep theirs there), else the places a store is named."""
    beside = folder / "results.sqlite"
    if beside.is_file() and (str(store_path) == ":memory:"
                             or Path(store_path).resolve() != beside.resolve()):
        return f"--store {beside}, the store beside the report, or $GCL_RESULTS"
    return "--store PATH or $GCL_RESULTS; the committed tables' is benchmarks/results/results.sqlite"


def _roots_text(entries: Any) -> str:
    r"""Every row's label and the data roots searched for it, for the not-found messages."""
    from gcl.bench.runner import dataset_roots

    return "; ".join(f"{e.label}: {', '.join(str(r) for r in dataset_roots(e))}" for e in entries)


def _rows(rows: list[tuple[str, str, int, int]]) -> str:
    return ", ".join(f"{dataset} / {method}: {shown} seed(s) done, {stored} in the store"
                     for dataset, method, shown, stored in rows)


def _check_paper_rows(config: Any) -> None:
    r"""Refuses a published-numbers CSV the report would refuse (malformed, another metric), and
    warns about rows that match no dataset and method label of the full table."""
    from gcl.bench.config import benchmarks_dir
    from gcl.bench.papers import check_paper_metric, load_paper_results, unmatched_paper_rows

    if not config.paper:
        return
    path = benchmarks_dir() / "papers" / config.paper
    if not path.is_file():
        print(f"warning: paper: {config.paper} is not in {path.parent} (where published numbers are read "
              "from; $GCL_BENCHMARKS/papers for tables of your own): the report's paper column stays empty",
              file=sys.stderr)
        return
    paper = load_paper_results(path)
    check_paper_metric(config, paper)
    if config.is_quick:
        return
    for row in unmatched_paper_rows(paper, [d.label for d in config.datasets], [m.label for m in config.methods]):
        print(f"warning: {path.name}: published row {row.dataset} / {row.method} matches no dataset and "
              f"method label of table {config.table!r}; it is left out of the report", file=sys.stderr)


def _command(args: argparse.Namespace) -> str:
    target = args.table if args.command == "reproduce" else str(args.config)
    parts = ["gcl", args.command, target]
    device = None if args.device == "cpu" else args.device
    for flag, value in (("--datasets", args.datasets), ("--methods", args.methods), ("--seeds", args.seeds),
                        ("--device", device)):
        if value is not None:
            parts += [flag, str(value)]
    if args.jobs != 1:
        parts += ["--jobs", str(args.jobs)]
    if args.quick:
        parts.append("--quick")
    if args.store is not None:
        parts += ["--store", str(args.store)]
    if args.out is not None:
        parts += ["--out", str(args.out)]
    return " ".join(shlex.quote(p) for p in parts)
