r"""An append-only results store on SQLite that survives interruption.

One row per ``(table, variant, dataset, method, seed, fold)`` is written as soon
as the fold (or the task holding it) completes. A later run asks
:meth:`ResultsStore.done` before starting a task and skips what is stored, so a
killed run resumes where it stopped. The database runs in write-ahead-log mode
and every write is one ``BEGIN IMMEDIATE`` transaction with a busy timeout, so
two processes may write to the same file at once; a record written twice keeps
its first value.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    table_name   TEXT    NOT NULL,
    variant      TEXT    NOT NULL,
    dataset      TEXT    NOT NULL,
    method       TEXT    NOT NULL,
    seed         INTEGER NOT NULL,
    fold         INTEGER NOT NULL,
    metric       TEXT    NOT NULL,
    score        REAL    NOT NULL,
    val_score    REAL,
    task         TEXT    NOT NULL,
    task_seconds REAL    NOT NULL,
    params       TEXT    NOT NULL,
    extra        TEXT    NOT NULL,
    created      REAL    NOT NULL,
    PRIMARY KEY (table_name, variant, dataset, method, seed, fold)
);
CREATE TABLE IF NOT EXISTS failures (
    table_name TEXT    NOT NULL,
    variant    TEXT    NOT NULL,
    task       TEXT    NOT NULL,
    dataset    TEXT    NOT NULL,
    method     TEXT    NOT NULL,
    seed       INTEGER NOT NULL,
    message    TEXT    NOT NULL,
    created    REAL    NOT NULL,
    PRIMARY KEY (table_name, variant, task)
);
CREATE TABLE IF NOT EXISTS runs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name TEXT NOT NULL,
    variant    TEXT NOT NULL,
    command    TEXT NOT NULL,
    versions   TEXT NOT NULL,
    started    REAL NOT NULL,
    finished   REAL
);
"""


def _selection(select: str, table: str, variant: str | None, dataset: str | None,
               method: str | None) -> tuple[str, list[Any]]:
    r"""``select`` restricted to a table and, where given, a variant, dataset and method."""
    query, args = f"{select} WHERE table_name = ?", [table]
    for column, value in (("variant", variant), ("dataset", dataset), ("method", method)):
        if value is not None:
            query += f" AND {column} = ?"
            args.append(value)
    return query, args


@dataclass(frozen=True)
class Record:
    r"""The score of one fold (or split, or run) of one seed.

    Args:
        table (str): Table name, e.g. ``"graphcl-tu"``.
        variant (str): Fingerprint of the settings that produced the score;
            results of different settings never mix.
        dataset (str): Dataset name.
        method (str): Method label as in the table (``"graphcl"``, ``"lcgnn-gin"`` ...).
        seed (int): Training seed.
        fold (int): Fold, split or run index within the seed.
        score (float): Test score in :math:`[0, 1]`.
        metric (str): Name of the score. (default: :obj:`"accuracy"`)
        val_score (float, optional): Selection score (validation or inner CV).
        task (str): Identifier of the unit of work that produced the record;
            several folds may share one task. (default: :obj:`""`)
        task_seconds (float): Wall time of that task. (default: :obj:`0.0`)
        params (dict): Selected hyper-parameters (e.g. ``{"C": 10}``).
        extra (dict): Anything else worth keeping (epochs trained ...).
    """

    table: str
    variant: str
    dataset: str
    method: str
    seed: int
    fold: int
    score: float
    metric: str = "accuracy"
    val_score: float | None = None
    task: str = ""
    task_seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def key(self) -> tuple[str, str, str, str, int, int]:
        r"""The primary key ``(table, variant, dataset, method, seed, fold)``."""
        return (self.table, self.variant, self.dataset, self.method, self.seed, self.fold)

    def to_dict(self) -> dict[str, Any]:
        r"""A JSON-serialisable dictionary of all fields."""
        return asdict(self)


class ResultsStore:
    r"""SQLite-backed store of benchmark :class:`Record` rows.

    Args:
        path (str or PathLike): Database file (``~`` is expanded); its folder is created. ``":memory:"``
            keeps everything in memory (one process only).
        timeout (float): Seconds a writer waits for another writer's lock.
            (default: :obj:`60.0`)

    Example:
        >>> store = ResultsStore(":memory:")
        >>> store.add([Record("t", "v", "MUTAG", "graphcl", 0, 0, 0.9)])
        1
        >>> store.done("t", "v", "MUTAG", "graphcl", 0, [0])
        True
    """

    def __init__(self, path: str | os.PathLike[str], timeout: float = 60.0) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive (got {timeout})")
        # "~" is expanded here, as a shell would: SQLite would open a file under a folder named "~"
        self.path = ":memory:" if str(path) == ":memory:" else str(Path(path).expanduser())
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are opened explicitly, so a write
        # takes the lock up front (BEGIN IMMEDIATE) instead of upgrading later,
        # which is what makes two concurrent writers wait rather than fail.
        try:
            self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except sqlite3.Error as exc:  # a folder, a path without permission
            raise ValueError(f"results store {self.path}: cannot be opened as a SQLite database ({exc}); "
                             "give the path of a database file (created if missing)") from None
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            with self._write() as conn:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
        except sqlite3.DatabaseError as exc:  # another kind of file (sqlite3.OperationalError is one too)
            self._conn.close()
            raise ValueError(f"results store {self.path}: not a results database ({exc}); give the path of "
                             "a database file that gcl created, or of a new one") from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        r"""Closes the connection."""
        self._conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    # -- writing ------------------------------------------------------------
    def add(self, records: Iterable[Record]) -> int:
        r"""Appends records in one transaction; returns how many were new.

        A record whose key is already stored is ignored (the first value wins),
        so a task repeated by two concurrent runs leaves one row per fold.

        Raises:
            ValueError: A score is NaN or infinite (nothing of the batch is written).
        """
        records = list(records)
        for r in records:
            if not math.isfinite(float(r.score)):
                raise ValueError(f"score of {r.key()} must be finite (got {r.score})")
        rows = [
            (r.table, r.variant, r.dataset, r.method, int(r.seed), int(r.fold), r.metric, float(r.score),
             None if r.val_score is None else float(r.val_score), r.task, float(r.task_seconds),
             json.dumps(r.params, sort_keys=True, default=str), json.dumps(r.extra, sort_keys=True, default=str),
             time.time())
            for r in records
        ]
        if not rows:
            return 0
        with self._write() as conn:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            added = conn.total_changes - before
            # a task that succeeds after failing is no longer a failure
            conn.executemany("DELETE FROM failures WHERE table_name = ? AND variant = ? AND task = ?",
                             sorted({(r.table, r.variant, r.task) for r in records}))
            return added

    def add_failure(self, table: str, variant: str, task: str, dataset: str, method: str, seed: int,
                    message: str) -> None:
        r"""Records that a task failed (the latest message per task), so that reports can say so
        until the task succeeds (:meth:`add` removes it then)."""
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO failures VALUES (?,?,?,?,?,?,?,?)",
                         (table, variant, task, dataset, method, int(seed), message, time.time()))

    def failures(self, table: str, variant: str | None = None, *, dataset: str | None = None,
                 method: str | None = None) -> list[dict[str, Any]]:
        r"""Failed tasks of a table not stored since (task, dataset, method, seed, message)."""
        query, args = _selection("SELECT task, dataset, method, seed, message FROM failures", table, variant,
                                 dataset, method)
        return [{"task": row[0], "dataset": row[1], "method": row[2], "seed": int(row[3]), "message": row[4]}
                for row in self._conn.execute(query + " ORDER BY task", args)]

    def start_run(self, table: str, variant: str, command: str, versions: dict[str, str]) -> int:
        r"""Registers a run (command line and library versions); returns its id."""
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO runs (table_name, variant, command, versions, started) VALUES (?,?,?,?,?)",
                (table, variant, command, json.dumps(versions, sort_keys=True), time.time()))
            return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int) -> None:
        r"""Marks a run as finished."""
        with self._write() as conn:
            conn.execute("UPDATE runs SET finished = ? WHERE id = ?", (time.time(), run_id))

    # -- reading ------------------------------------------------------------
    def done(self, table: str, variant: str, dataset: str, method: str, seed: int,
             folds: Sequence[int]) -> bool:
        r"""Whether every fold in ``folds`` of this seed is stored (``False`` for no folds: a
        task without folds has stored nothing)."""
        if not folds:
            return False
        stored = {
            int(row[0]) for row in self._conn.execute(
                "SELECT fold FROM records WHERE table_name=? AND variant=? AND dataset=? AND method=? AND seed=?",
                (table, variant, dataset, method, int(seed)))
        }
        return all(int(f) in stored for f in folds)

    def records(self, table: str, variant: str | None = None, *, dataset: str | None = None,
                method: str | None = None) -> list[Record]:
        r"""Stored records of a table, optionally of one variant, dataset or method,
        ordered by dataset, method, seed and fold."""
        query, args = _selection("SELECT * FROM records", table, variant, dataset, method)
        query += " ORDER BY dataset, method, seed, fold"
        out = []
        for row in self._conn.execute(query, args):
            out.append(Record(
                table=row[0], variant=row[1], dataset=row[2], method=row[3], seed=int(row[4]), fold=int(row[5]),
                metric=row[6], score=float(row[7]), val_score=None if row[8] is None else float(row[8]),
                task=row[9], task_seconds=float(row[10]), params=json.loads(row[11]), extra=json.loads(row[12])))
        return out

    def holds(self, table: str, variant: str | None = None) -> bool:
        r"""Whether any record of a table (of one variant, where given) is stored."""
        query, args = _selection("SELECT 1 FROM records", table, variant, None, None)
        return self._conn.execute(query + " LIMIT 1", args).fetchone() is not None

    def runs(self, table: str, variant: str | None = None) -> list[dict[str, Any]]:
        r"""Registered runs of a table (oldest first)."""
        query = "SELECT id, variant, command, versions, started, finished FROM runs WHERE table_name = ?"
        args: list[Any] = [table]
        if variant is not None:
            query += " AND variant = ?"
            args.append(variant)
        return [
            {"id": row[0], "variant": row[1], "command": row[2], "versions": json.loads(row[3]),
             "started": row[4], "finished": row[5]}
            for row in self._conn.execute(query + " ORDER BY id", args)
        ]
