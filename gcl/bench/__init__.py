r"""The benchmark harness: paper-table configurations → runs → results store → reports.

>>> from gcl.bench import ResultsStore, load_config, run_table, write_report
>>> config = load_config("benchmarks/configs/graphcl-tu.yaml").restricted(["MUTAG"], seeds=1)
>>> with ResultsStore("my-results/results.sqlite") as store:  # doctest: +SKIP
...     summary = run_table(config, store)
...     written = write_report(config, store, "my-results", papers_dir="benchmarks/papers")

This reports the restricted configuration only (MUTAG, one seed). The command line
``gcl reproduce graphcl-tu --datasets MUTAG --seeds 1 --out my-results`` runs the same
tasks and reports every row of the table (the rows it did not run say so) in
``my-results/``. Without ``--out`` the report goes to ``benchmarks/results/``, beside the
committed tables: that needs the store they were run with
(``GCL_RESULTS=benchmarks/results/results.sqlite`` or ``--store``), since a report that
would lose the results it shows is refused.
"""

from gcl.bench.config import (
    DatasetEntry,
    MethodSpec,
    TableConfig,
    benchmarks_dir,
    find_config,
    load_config,
    parse_config,
)
from gcl.bench.papers import PaperResult, load_paper_results
from gcl.bench.protocols import Context, Task, make_tasks, run_task
from gcl.bench.report import (
    ReportRow,
    build_rows,
    write_chart,
    write_csv,
    write_markdown,
    write_report,
)
from gcl.bench.runner import RunSummary, dataset_available, default_store_path, run_table, versions
from gcl.bench.store import Record, ResultsStore

__all__ = [
    "Context",
    "DatasetEntry",
    "MethodSpec",
    "PaperResult",
    "Record",
    "ReportRow",
    "ResultsStore",
    "RunSummary",
    "TableConfig",
    "Task",
    "benchmarks_dir",
    "build_rows",
    "dataset_available",
    "default_store_path",
    "find_config",
    "load_config",
    "load_paper_results",
    "make_tasks",
    "parse_config",
    "run_table",
    "run_task",
    "versions",
    "write_chart",
    "write_csv",
    "write_markdown",
    "write_report",
]
