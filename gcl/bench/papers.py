r"""Published numbers of the paper tables (``benchmarks/papers/*.csv``).

Each CSV has the columns ``dataset, method, mean, std, metric, citation,
source, notes``: ``mean`` and ``std`` in percent as printed in the paper
(empty where the paper gives none or the number could not be checked),
``source`` the table or page it comes from.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gcl.bench.config import TableConfig

COLUMNS = ("dataset", "method", "mean", "std", "metric", "citation", "source", "notes")


@dataclass(frozen=True)
class PaperResult:
    r"""One published number.

    Args:
        dataset (str): Dataset label as in the table configuration.
        method (str): Method label as in the table configuration.
        mean (float, optional): Published mean, percent.
        std (float, optional): Published standard deviation, percent.
        metric (str): Name of the score.
        citation (str): Paper reference.
        source (str): Table (or page) the number comes from.
        notes (str): Remarks (protocol differences, numbers not found ...).
    """

    dataset: str
    method: str
    mean: float | None
    std: float | None
    metric: str = "accuracy"
    citation: str = ""
    source: str = ""
    notes: str = ""


def _number(text: str, where: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError as error:
        raise ValueError(f"{where}: expected a number or nothing (got {text!r})") from error
    if not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number (got {text!r})")
    return value


def load_paper_results(path: str | os.PathLike[str]) -> list[PaperResult]:
    r"""Reads a published-numbers CSV.

    Raises:
        ValueError: A column is missing, a row has more or fewer fields than the header, or a
            number is malformed (the message names the line).
    """
    file = Path(path)
    with file.open(newline="") as handle:
        numbered = [(number, line) for number, line in enumerate(handle, start=1) if not line.startswith("#")]
        reader = csv.DictReader(line for _, line in numbered)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{file}: missing column(s) {missing}; expected {list(COLUMNS)}")
        out = []
        for row in reader:
            where = f"{file}:{numbered[reader.line_num - 1][0]}"
            if None in row or any(value is None for value in row.values()):
                raise ValueError(f"{where}: a row needs the {len(reader.fieldnames or [])} fields of the header "
                                 f"{list(reader.fieldnames or [])} (quote values that hold commas)")
            out.append(PaperResult(
                dataset=row["dataset"].strip(), method=row["method"].strip(),
                mean=_number(row["mean"], where), std=_number(row["std"], where),
                metric=row["metric"].strip() or "accuracy", citation=row["citation"].strip(),
                source=row["source"].strip(), notes=row["notes"].strip()))
    return out


def paper_lookup(results: list[PaperResult]) -> dict[tuple[str, str], PaperResult]:
    r"""Index published numbers by ``(dataset, method)``, dataset names compared case-insensitively."""
    return {(r.dataset.lower(), r.method): r for r in results}


def unmatched_paper_rows(results: Sequence[PaperResult], datasets: Sequence[str],
                         methods: Sequence[str]) -> list[PaperResult]:
    r"""The published rows that no ``(dataset, method)`` pair of a table's labels matches (a
    misspelt name), compared as :func:`paper_lookup` does; their numbers would be left out of the
    report."""
    pairs = {(d.lower(), m) for d in datasets for m in methods}
    return [r for r in results if (r.dataset.lower(), r.method) not in pairs]


def check_paper_metric(config: TableConfig, results: Sequence[PaperResult]) -> None:
    r"""Raises :class:`ValueError` unless every published row is in the table's metric (a report
    compares like with like)."""
    wrong = [r for r in results if r.metric != config.metric]
    if wrong:
        raise ValueError(
            f"table {config.table!r} reports {config.metric}, but its published numbers for "
            f"{', '.join(f'{r.dataset} / {r.method}' for r in wrong)} are {wrong[0].metric} "
            f"(metric column of {config.paper}); a comparison needs the same metric")
