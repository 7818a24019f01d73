r"""Tables beside the paper: Markdown, CSV and a bar chart from the results store."""

from __future__ import annotations

import csv
import datetime as _dt
import math
import os
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gcl.bench.config import DatasetEntry, TableConfig, benchmarks_dir
from gcl.bench.papers import PaperResult, check_paper_metric, load_paper_results, paper_lookup
from gcl.bench.protocols import folds_of
from gcl.bench.store import Record, ResultsStore

_PROTOCOL_TEXT = {
    "svc": "Self-supervised pre-training for a fixed number of epochs (no epoch selection), frozen graph "
           "embeddings of the un-augmented graphs, then the GraphCL/InfoGraph SVC protocol: {folds}-fold "
           "stratified cross-validation, C chosen per fold by an inner grid search on the training folds only.",
    "supervised-kfold": "Supervised training on {folds} stratified folds; in each fold a stratified validation "
                        "part (val_size of the training part) is carved out of the training folds and used for "
                        "early stopping and best-epoch restore; the test fold is scored once.",
    "supervised-random": "{folds} random train/validation/test splits (ratios in the configuration); early "
                         "stopping and best-epoch restore on the validation part; the test part is scored once.",
    "node-linear": "Node-level self-supervised pre-training for a fixed number of epochs, frozen node "
                   "embeddings, logistic-regression probe with C chosen on the validation nodes of each of "
                   "{folds} random 10/10/80 splits.",
    "ogb": "OGB official scaffold split and ogb.graphproppred.Evaluator; supervised (fine-)tuning with early "
           "stopping and best-epoch restore on the 'valid' split; the test split is scored once.",
}


@dataclass
class ReportRow:
    r"""One line of a table: a method on a dataset, ours beside the paper (percent)."""

    dataset: str
    method: str
    status: str
    seeds_done: int
    seeds_total: int
    folds: int
    mean: float | None
    std: float | None
    paper_mean: float | None
    paper_std: float | None
    difference: float | None
    within_paper_std: bool | None
    wall_seconds: float
    note: str = ""


def _aggregate(records: list[Record], num_folds: int, how: str) -> tuple[int, float | None, float | None]:
    by_seed: dict[int, list[float]] = defaultdict(list)
    for r in records:
        by_seed[r.seed].append(r.score)
    complete = {seed: scores for seed, scores in by_seed.items() if len(scores) >= num_folds}
    if not complete:
        return 0, None, None
    if how == "seeds":
        values = np.array([100.0 * float(np.mean(s)) for s in complete.values()])
    else:
        values = np.array([100.0 * v for s in complete.values() for v in s])
    # a single value has no spread to show: its std would print as a misleading "± 0.00"
    return len(complete), float(values.mean()), float(values.std()) if len(values) > 1 else None


def build_rows(config: TableConfig, store: ResultsStore, paper: Sequence[PaperResult] = (),
               available: Callable[[DatasetEntry], bool] | None = None) -> list[ReportRow]:
    r"""Summarises the stored records of ``config`` (its current settings only) beside the paper.

    Means and standard deviations are in percent: with ``aggregate: seeds`` over the per-seed
    means of the folds (the spread the GraphCL paper reports), with ``aggregate: folds`` over all
    folds or runs. Only seeds with every fold stored count. The std of a single value (one seed
    over seeds, one fold of one seed over folds) is ``None``: the report prints the mean alone.
    """
    check_paper_metric(config, paper)
    lookup = paper_lookup(list(paper))
    num_folds = folds_of(config)[0]
    rows = []
    for entry in config.datasets:
        is_available = available(entry) if available is not None else True
        for spec in config.methods:
            records = [r for r in store.records(config.table, config.variant(entry, spec), dataset=entry.label,
                                                method=spec.label)
                       if 0 <= r.seed < config.seeds]  # the seeds the report names, not others stored
            done, mean, std = _aggregate(records, num_folds, config.aggregate)
            wall = sum({r.task: r.task_seconds for r in records}.values())
            published = lookup.get((entry.label.lower(), spec.label))
            paper_mean = published.mean if published else None
            paper_std = published.std if published else None
            failures = [f for f in store.failures(config.table, config.variant(entry, spec), dataset=entry.label,
                                                  method=spec.label) if 0 <= f["seed"] < config.seeds]
            if done == config.seeds:
                status = "done"
            elif done or records:
                status = f"partial ({done}/{config.seeds} seeds)"
            elif not is_available:
                status = "data not available"
            else:
                status = "not run yet"
            if failures and done < config.seeds:  # said until the tasks succeed, with the reasons below
                status = f"{status}; {len(failures)} task(s) failed" if status != "not run yet" else \
                    f"failed ({len(failures)} task(s))"
            difference = None if mean is None or paper_mean is None else mean - paper_mean
            within = None
            # a verdict for complete rows only: the seeds done so far are a sample of the row's
            if difference is not None and paper_std is not None and not config.is_quick and status == "done":
                within = abs(difference) <= paper_std
            rows.append(ReportRow(entry.label, spec.label, status, done, config.seeds, num_folds, mean, std,
                                  paper_mean, paper_std, difference, within, wall, entry.note))
    return rows


#: The columns of a report's results table (written by :func:`write_markdown`, read by :func:`reported_seeds`).
_COLUMNS = ("Dataset", "Method", "Ours", "Paper", "Δ", "Within 1 paper std", "Seeds", "Wall time", "Status")


def reported_seeds(path: str | os.PathLike[str]) -> dict[tuple[str, str], int]:
    r"""The seeds done of each ``(dataset, method)`` row of a Markdown report that
    :func:`write_markdown` wrote (empty for a file without its results table)."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    seeds: dict[tuple[str, str], int] = {}
    inside = False
    for line in lines:
        if line.startswith("| " + " | ".join(_COLUMNS[:2]) + " |"):
            inside = True
        elif inside and not line.startswith("|"):
            break
        elif inside:
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            done = cells[_COLUMNS.index("Seeds")].partition("/")[0] if len(cells) == len(_COLUMNS) else ""
            if done.isdigit():  # (not the |---| line under the header)
                seeds[(cells[0], cells[1])] = int(done)
    return seeds


def is_quick_report(path: str | os.PathLike[str]) -> bool:
    r"""Whether the Markdown report at ``path`` is of a ``--quick`` run, as :func:`write_markdown`
    marks it: its title ends in "(quick)" and its "Generated" line names a ``--quick`` command
    (:obj:`False` for a report of the full table, or a file that is no report)."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    # both marks: a full table whose title ends in "(quick)" is no quick report
    titled = bool(lines) and lines[0].startswith("# ") and lines[0].endswith(" (quick)")
    return titled and any(line.startswith("Generated ") and " --quick` (configuration " in line for line in lines)


def lost_rows(config: TableConfig, store: ResultsStore, path: str | os.PathLike[str]
              ) -> list[tuple[str, str, int, int]]:
    r"""The rows of ``config`` that the report at ``path`` shows with more seeds done than a report
    written now from ``store`` would: ``(dataset, method, seeds done in the file, seeds done in the
    store)`` each. A report must not lose results because it is written from another store than
    the one its rows were run with (the default store, a mistyped ``--store``, one of ``--quick``
    records only: they hold none of the settings' fingerprints the report covers). Only a report
    of the same kind is compared (:func:`is_quick_report`): the seeds of a ``--quick`` report are
    not the full table's, nor the other way round."""
    before = reported_seeds(path)
    if not before or is_quick_report(path) != config.is_quick:
        return []
    return [(row.dataset, row.method, before[(row.dataset, row.method)], row.seeds_done)
            for row in build_rows(config, store) if before.get((row.dataset, row.method), 0) > row.seeds_done]


def _pm(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"


def _duration(seconds: float) -> str:
    if seconds <= 0:
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def protocol_text(config: TableConfig) -> str:
    r"""The protocol paragraph of a report."""
    text = _PROTOCOL_TEXT[config.protocol].format(folds=folds_of(config)[0])
    spread = ("mean ± std over seeds of the per-seed mean test score" if config.aggregate == "seeds"
              else "mean ± std over all test folds/runs of all seeds")
    parts = [text, f"Reported: {spread} (population std, percent); seeds 0..{config.seeds - 1}."]
    if config.description:
        parts.append(config.description)
    if config.is_quick:
        parts.append(f"This reduced run (`--quick`) overrides the above with the training settings {config.train} "
                     f"and the evaluation settings {config.evaluation}.")
    return " ".join(parts)


def write_markdown(config: TableConfig, rows: list[ReportRow], path: str | os.PathLike[str], *,
                   paper: Sequence[PaperResult] = (), runs: Sequence[dict[str, object]] = (),
                   chart: str | None = None, failures: Sequence[dict[str, object]] = ()) -> Path:
    r"""Writes the Markdown report (``failures``: the failed tasks not stored since, from
    :meth:`~gcl.bench.ResultsStore.failures`)."""
    out = Path(path)
    lines = [f"# {config.title}", ""]
    quick = " --quick" if config.is_quick else ""
    source = config.source
    shipped = benchmarks_dir() / "configs" / f"{config.table}.yaml"
    if source is None or source.resolve() == shipped.resolve():  # a table of benchmarks/configs
        command, configuration = f"gcl reproduce {config.table}{quick}", f"benchmarks/configs/{config.table}.yaml"
    else:  # a configuration file of the user's own
        command, configuration = f"gcl bench {source}{quick}", str(source)
    lines.append(f"Generated {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} from the results store by "
                 f"`{command}` (configuration `{configuration}`).")
    lines += ["", "## Protocol", "", protocol_text(config), ""]
    lines += ["## Results", "",
              f"Metric: {config.metric}, percent. Δ = ours − paper; \"within\" compares |Δ| with the paper's std.",
              "",
              "| " + " | ".join(_COLUMNS) + " |",
              "|" + "---|" * len(_COLUMNS)]
    for r in rows:
        within = "–" if r.within_paper_std is None else ("yes" if r.within_paper_std else "no")
        diff = "–" if r.difference is None else f"{r.difference:+.2f}"
        lines.append(f"| {r.dataset} | {r.method} | {_pm(r.mean, r.std)} | {_pm(r.paper_mean, r.paper_std)} | "
                     f"{diff} | {within} | {r.seeds_done}/{r.seeds_total} | {_duration(r.wall_seconds)} | "
                     f"{r.status} |")
    lines.append("")
    if chart:
        lines += [f"![{config.table}]({chart})", ""]
    notes = [(r.dataset, r.note) for r in rows if r.note]
    if notes:
        lines += ["## Dataset notes", ""]
        seen = set()
        for dataset, note in notes:
            if dataset not in seen:
                lines.append(f"- **{dataset}**: {note}")
                seen.add(dataset)
        lines.append("")
    if failures:
        lines += ["## Failed tasks", "",
                  "Tasks whose last attempt failed (run the command again to retry them; the reasons as "
                  "the run reported them):", ""]
        lines += [f"- `{f['task']}`: {str(f['message']).splitlines()[0] if f['message'] else ''}" for f in failures]
        lines.append("")
    if config.notes:
        lines += ["## Notes and investigation", "", config.notes, ""]
    if paper:
        lines += ["## Published numbers", ""]
        for citation, where in sorted({(p.citation, p.source) for p in paper}):
            lines.append(f"- {citation}, {where}")
        extra = sorted({p.notes for p in paper if p.notes})
        for note in extra:
            lines.append(f"  - {note}")
        lines.append("")
    if runs:
        lines += ["## Runs", "", "Commands that wrote these records (a run that was interrupted and resumed "
                  "appears more than once):", ""]
        # one versions line per distinct set (runs on another machine or device add one)
        groups: dict[str, list[str]] = {}
        for run in runs:
            started = _dt.datetime.fromtimestamp(float(run["started"])).strftime("%Y-%m-%d %H:%M")  # type: ignore[arg-type]
            lines.append(f"- {started}: `{run['command']}`")
            if isinstance(run["versions"], dict):
                # runs recorded before the device was named ran on the CPU
                named = {"device": "cpu", **run["versions"]}
                groups.setdefault(", ".join(f"{k} {v}" for k, v in sorted(named.items())), []).append(started)
        if len(groups) == 1:
            lines += ["", "Versions: " + next(iter(groups)), ""]
        elif groups:
            lines += ["", "Versions:", ""]
            lines += [f"- runs of {', '.join(days)}: {text}" for text, days in groups.items()]
            lines.append("")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines).rstrip() + "\n")
    return out


def write_csv(rows: list[ReportRow], path: str | os.PathLike[str]) -> Path:
    r"""Writes the rows as CSV (numbers in percent, empty where missing)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as handle:
        fields = list(asdict(rows[0]).keys()) if rows else list(ReportRow.__dataclass_fields__)
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            values = asdict(row)
            for key, value in values.items():
                if isinstance(value, float):
                    values[key] = "" if math.isnan(value) else round(value, 4)
                elif value is None:
                    values[key] = ""
            writer.writerow(values)
    return out


def write_chart(config: TableConfig, rows: list[ReportRow], path: str | os.PathLike[str]) -> Path | None:
    r"""Bar chart of ours vs. the paper per dataset, with std error bars; ``None`` without rows to plot.

    Needs ``matplotlib`` (``pip install -e ".[plot]"``); :func:`write_report` leaves the chart out
    without it.
    """
    plotted = [r for r in rows if r.mean is not None or r.paper_mean is not None]
    if not plotted:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - optional dependency
        raise ImportError("the bar chart needs matplotlib: pip install matplotlib (or pip install -e '.[plot]' in the repository)") from error
    datasets = list(dict.fromkeys(r.dataset for r in plotted))
    methods = list(dict.fromkeys(r.method for r in plotted))
    series = [(m, "ours") for m in methods] + [(m, "paper") for m in methods
                                                 if any(r.paper_mean is not None for r in plotted if r.method == m)]
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(datasets) * max(len(series), 1) / 2 + 2), 4))
    xs = np.arange(len(datasets))
    lookup = {(r.dataset, r.method): r for r in plotted}
    for i, (method, kind) in enumerate(series):
        heights, errors = [], []
        for d in datasets:
            row = lookup.get((d, method))
            mean = None if row is None else (row.mean if kind == "ours" else row.paper_mean)
            std = None if row is None else (row.std if kind == "ours" else row.paper_std)
            heights.append(np.nan if mean is None else mean)
            errors.append(0.0 if std is None else std)
        label = f"{method} (ours)" if kind == "ours" else f"{method} (paper)"
        ax.bar(xs + (i - (len(series) - 1) / 2) * width, heights, width, yerr=errors, capsize=3, label=label,
               hatch=None if kind == "ours" else "//", alpha=1.0 if kind == "ours" else 0.6)
    finite = [v for r in plotted for v in (r.mean, r.paper_mean) if v is not None]
    low = max(0.0, min(finite) - 15.0) if finite else 0.0
    ax.set_ylim(low, min(100.0, max(finite) + 5.0) if finite else 100.0)
    ax.set_xticks(xs, datasets)
    ax.set_ylabel(f"{config.metric} (%)")
    ax.set_title(config.title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


#: Why a report has no chart: :func:`write_report` warns with it, ``gcl bench`` prints it.
NO_CHART = ("matplotlib is not installed: the report is written without the chart; "
            "pip install matplotlib (the optional [plot] extra) to draw it")


def has_matplotlib() -> bool:
    r"""Whether ``matplotlib`` (the optional ``plot`` extra), which draws the chart, can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_report(config: TableConfig, store: ResultsStore, out_dir: str | os.PathLike[str], *,
                 papers_dir: str | os.PathLike[str] | None = None,
                 available: Callable[[DatasetEntry], bool] | None = None, chart: bool = True
                 ) -> dict[str, Path]:
    r"""Writes ``<table>.md``, ``<table>.csv`` and ``<table>.png`` into :obj:`out_dir`.

    Args:
        config (TableConfig): The table.
        store (ResultsStore): Where the records are.
        out_dir (path): Output folder.
        papers_dir (path, optional): Folder of the published-numbers CSVs.
        available (callable, optional): Dataset availability check for the status column.
        chart (bool): Also draw the PNG bar chart; without ``matplotlib`` (the optional
            ``plot`` extra) the report is written without it, with a warning.
            (default: :obj:`True`)
    """
    paper: list[PaperResult] = []
    if config.paper and papers_dir is not None and (Path(papers_dir) / config.paper).is_file():
        paper = load_paper_results(Path(papers_dir) / config.paper)
    rows = build_rows(config, store, paper, available)
    folder = Path(out_dir)
    written = {"csv": write_csv(rows, folder / f"{config.table}.csv")}
    png = None
    if chart and has_matplotlib():
        png = write_chart(config, rows, folder / f"{config.table}.png")
    elif chart:
        warnings.warn(NO_CHART, UserWarning, stacklevel=2)
    if png is not None:
        written["png"] = png
    variants = {config.variant(e, m) for e in config.datasets for m in config.methods}
    runs = [r for r in store.runs(config.table) if variants & set(str(r["variant"]).split(","))]
    failures = [f for v in sorted(variants) for f in store.failures(config.table, v) if 0 <= f["seed"] < config.seeds]
    written["md"] = write_markdown(config, rows, folder / f"{config.table}.md", paper=paper, runs=runs,
                                   chart=png.name if png is not None else None, failures=failures)
    return written
