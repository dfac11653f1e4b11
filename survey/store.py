"""The project store: one embedded DuckDB file, ``survey.duckdb``.

The store holds everything a project produces: the frame, selected EAs, listing,
household sample, the import ledger, typed tables (schema ``data``), problems,
weights, replicate weights and published estimates, plus a record of when each stage
last ran and with what counts.

Two rules make it safe to re-run anything:

* Every write is one transaction. A stage's outputs land whole or not at all; if the
  stage fails midway the store is exactly as it was.
* A stage's outputs are *replaced*: :meth:`Store.replace_stage` drops every table the
  stage wrote last time before writing the new ones. Imports are the exception: they
  accumulate batch by batch, and a batch whose file hash is already recorded changes
  nothing.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from survey.errors import StoreError

__all__ = ["STORE_FILE", "ImportBatch", "StageRecord", "Store"]

#: Name of the store file in a project folder.
STORE_FILE = "survey.duckdb"
#: Version of the store layout; a store written by a newer version is refused.
SCHEMA_VERSION = 1

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CORRUPT_HINT = (
    "the file is damaged or is not a survey store: restore it from a backup, or move it "
    "aside and re-run the stages (inputs under data/ are untouched)"
)

_META_DDL = (
    "CREATE SCHEMA IF NOT EXISTS data",
    "CREATE TABLE IF NOT EXISTS _meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    """CREATE TABLE IF NOT EXISTS stages (
        stage VARCHAR PRIMARY KEY, done_at TIMESTAMP, seconds DOUBLE,
        counts VARCHAR, tables VARCHAR, detail VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS import_batches (
        batch_id INTEGER PRIMARY KEY, source VARCHAR, sha256 VARCHAR UNIQUE,
        imported_at TIMESTAMP, "read" BIGINT, kept BIGINT, quarantined BIGINT,
        duplicates BIGINT)""",
    """CREATE TABLE IF NOT EXISTS import_ledger (
        batch_id INTEGER, "table" VARCHAR, "read" BIGINT, kept BIGINT,
        quarantined BIGINT, duplicates BIGINT)""",
    """CREATE TABLE IF NOT EXISTS problems (
        batch_id INTEGER, code VARCHAR, "table" VARCHAR, "key" VARCHAR,
        field VARCHAR, value VARCHAR, message VARCHAR)""",
)
_PROBLEM_COLUMNS = ("code", "table", "key", "field", "value", "message")
_LEDGER_COLUMNS = ("read", "kept", "quarantined", "duplicates")


@dataclass(frozen=True)
class StageRecord:
    """When a stage last completed, how long it took, and what it produced."""

    stage: str
    done_at: datetime
    seconds: float
    counts: Mapping[str, int] = field(default_factory=dict)
    tables: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class ImportBatch:
    """One imported file. ``new`` is False when the file had been imported before."""

    batch_id: int
    source: str
    sha256: str
    imported_at: datetime
    read: int
    kept: int
    quarantined: int
    duplicates: int
    new: bool


def _ident(name: str) -> str:
    """Quote a (possibly schema-qualified) table name after checking it."""
    parts = name.split(".")
    if len(parts) > 2 or not all(_NAME.match(p) for p in parts):
        raise StoreError(f"invalid table name {name!r}",
                         hint="use letters, digits and underscores (optionally schema.table)")
    return ".".join(f'"{p}"' for p in parts)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _to_arrow(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)


class Store:
    """A project's DuckDB store.

    Parameters
    ----------
    path
        The ``survey.duckdb`` file, or the project folder holding it.
    create
        Create the file if it does not exist (otherwise a missing store is an error).
    read_only
        Open without write access (several readers may share the file).

    Raises
    ------
    StoreError
        If the store is missing, corrupt, from a newer version, or locked by
        another process.

    Examples
    --------
    >>> with Store(tmp / "survey.duckdb", create=True) as st:       # doctest: +SKIP
    ...     st.replace_stage("frame", {"frame": frame_df}, counts={"eas": len(frame_df)})
    """

    def __init__(self, path: str | Path, *, create: bool = False, read_only: bool = False) -> None:
        p = Path(path)
        if p.is_dir():
            p = p / STORE_FILE
        self.path = p
        if not p.exists() and not create:
            raise StoreError("project store not found", file=str(p),
                             hint="run `survey init DIR` first, or run the command inside a project folder")
        try:
            self._con = duckdb.connect(str(p), read_only=read_only)
        except duckdb.IOException as err:
            if "lock" in str(err).lower():
                raise StoreError("the project store is in use by another program", file=str(p),
                                 hint="wait for the other `survey` command to finish, then retry") from None
            raise StoreError("cannot open the project store", file=str(p), hint=_CORRUPT_HINT) from None
        except duckdb.Error as err:
            raise StoreError(f"cannot open the project store ({err})", file=str(p),
                             hint=_CORRUPT_HINT) from None
        self._depth = 0
        try:
            self._initialise(create and not read_only)
        except BaseException:
            self._con.close()
            raise

    # -- life cycle -------------------------------------------------------------------
    def _initialise(self, create: bool) -> None:
        try:
            found = self._one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' "
                "AND table_name = '_meta'")[0]
        except duckdb.Error as err:
            raise StoreError(f"the project store cannot be read ({err})", file=str(self.path),
                             hint=_CORRUPT_HINT) from None
        if not found:
            n_tables = self._one("SELECT count(*) FROM information_schema.tables")[0]
            if not create or n_tables:
                raise StoreError("this DuckDB file is not a survey project store", file=str(self.path),
                                 hint=_CORRUPT_HINT)
            with self.transaction():
                for ddl in _META_DDL:
                    self._con.execute(ddl)
                self._con.execute("INSERT INTO _meta VALUES ('schema_version', ?), ('created_at', ?)",
                                  [str(SCHEMA_VERSION), _now().isoformat()])
            return
        row = self._one("SELECT value FROM _meta WHERE key = 'schema_version'")
        version = int(row[0]) if row else -1
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"the project store has layout version {version}; this program reads {SCHEMA_VERSION}",
                file=str(self.path),
                hint="upgrade the `survey` program, or re-run the stages into a new project")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection, for read-only SQL by advanced users."""
        if self._con is None:
            raise StoreError("the project store is closed")
        return self._con

    def _one(self, sql: str, params: list[Any] | None = None) -> tuple | None:
        """First row of a query, consuming the whole result (DuckDB 2 requires it)."""
        rows = self.connection.execute(sql, params or []).fetchall()
        return rows[0] if rows else None

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Run a block in one transaction: everything or nothing (nesting is flattened)."""
        con = self.connection
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        con.execute("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._depth = 0
            con.execute("ROLLBACK")
            raise
        self._depth = 0
        con.execute("COMMIT")

    # -- reading ----------------------------------------------------------------------
    def tables(self, schema: str = "main") -> list[str]:
        """Names of the tables in a schema (``main`` or ``data``), sorted."""
        rows = self.connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "ORDER BY table_name", [schema]).fetchall()
        return [r[0] for r in rows if not r[0].startswith("_")]

    def has(self, table: str) -> bool:
        """Whether a table exists (``name`` or ``schema.name``)."""
        schema, _, name = table.rpartition(".")
        return name in self.tables(schema or "main")

    def read(self, table: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Read a whole table into a DataFrame.

        Raises
        ------
        StoreError
            If the table does not exist (the stage that writes it has not run).
        """
        if not self.has(table):
            raise StoreError(f"table {table!r} is not in the project store",
                             hint="run the stage that produces it first (see `survey status`)")
        cols = "*" if columns is None else ", ".join(_ident(c) for c in columns)
        return self.connection.execute(f"SELECT {cols} FROM {_ident(table)}").df()

    def count(self, table: str) -> int:
        """Number of rows of a table (0 if it does not exist)."""
        if not self.has(table):
            return 0
        return int(self._one(f"SELECT count(*) FROM {_ident(table)}")[0])

    # -- stages -----------------------------------------------------------------------
    def _write_table(self, name: str, df: pd.DataFrame) -> None:
        con = self.connection
        view = "_incoming"
        con.register(view, _to_arrow(df))
        try:
            con.execute(f"CREATE OR REPLACE TABLE {_ident(name)} AS SELECT * FROM {view}")
        finally:
            con.unregister(view)

    def replace_stage(self, stage: str, tables: Mapping[str, pd.DataFrame], *,
                      counts: Mapping[str, int] | None = None, seconds: float | None = None,
                      detail: str = "") -> StageRecord:
        """Replace a stage's outputs and record it as done, in one transaction.

        Every table the stage wrote the last time it ran is dropped, then ``tables``
        are written. If anything fails the store is left as it was.

        Parameters
        ----------
        stage
            Stage name, e.g. ``"select_eas"``.
        tables
            Output tables by name (``name`` or ``schema.name``); DataFrames are not
            modified.
        counts
            Numbers to show in ``survey status`` (defaults to the row counts).
        seconds
            Time the stage took; measured from the call if not given.
        detail
            A short free-text note (e.g. the allocation method).
        """
        _ident(stage)
        start = time.perf_counter()
        names = [n for n in tables]
        for n in names:
            _ident(n)
        with self.transaction():
            old = self.stage_done(stage)
            for n in old.tables if old else ():
                if n not in tables:
                    self.connection.execute(f"DROP TABLE IF EXISTS {_ident(n)}")
            for n, df in tables.items():
                self._write_table(n, df)
            record = StageRecord(
                stage=stage, done_at=_now(),
                seconds=float(seconds if seconds is not None else time.perf_counter() - start),
                counts=dict(counts) if counts is not None else {n: len(df) for n, df in tables.items()},
                tables=tuple(names), detail=detail)
            self._record(record)
        return record

    def _record(self, r: StageRecord) -> None:
        self.connection.execute(
            "INSERT OR REPLACE INTO stages VALUES (?, ?, ?, ?, ?, ?)",
            [r.stage, r.done_at, r.seconds, json.dumps({k: int(v) for k, v in r.counts.items()}),
             json.dumps(list(r.tables)), r.detail])

    def stage_done(self, stage: str) -> StageRecord | None:
        """The record of a stage's last successful run, or None if it never ran."""
        row = self._one(
            "SELECT stage, done_at, seconds, counts, tables, detail FROM stages WHERE stage = ?",
            [stage])
        if row is None:
            return None
        return StageRecord(stage=row[0], done_at=row[1], seconds=row[2], counts=json.loads(row[3]),
                           tables=tuple(json.loads(row[4])), detail=row[5] or "")

    def stages(self) -> list[StageRecord]:
        """Records of every stage that has run, oldest first."""
        names = [r[0] for r in self.connection.execute(
            "SELECT stage FROM stages ORDER BY done_at, stage").fetchall()]
        return [self.stage_done(n) for n in names]

    def require(self, stage: str, *, by: str, command: str | None = None) -> StageRecord:
        """Return a stage's record, or raise if it has not run.

        Raises
        ------
        StoreError
            Naming the stage that is missing and the command that runs it.
        """
        record = self.stage_done(stage)
        if record is None:
            cmd = command or f"survey {stage.replace('_', ' ')}"
            raise StoreError(f"`{by}` needs stage {stage!r}, which has not been run",
                             hint=f"run `{cmd}` first (`survey status` shows what is done)")
        return record

    # -- imports ----------------------------------------------------------------------
    def batch_for(self, sha256: str) -> ImportBatch | None:
        """The batch that imported a file with this hash, if any."""
        row = self._one(
            'SELECT batch_id, source, sha256, imported_at, "read", kept, quarantined, duplicates '
            "FROM import_batches WHERE sha256 = ?", [sha256])
        return None if row is None else ImportBatch(*row, new=False)

    def batches(self) -> pd.DataFrame:
        """The import ledger: one row per imported file."""
        return self.read("import_batches")

    def import_batch(self, source: str, sha256: str, tables: Mapping[str, pd.DataFrame], *,
                     problems: pd.DataFrame | None = None, ledger: pd.DataFrame | None = None,
                     keys: Mapping[str, str] | None = None) -> ImportBatch:
        """Append one imported file's typed tables and problems, in one transaction.

        Parameters
        ----------
        source
            The file name (for the ledger).
        sha256
            Hash of the file's bytes. If a batch with this hash exists, nothing is
            written and that batch is returned with ``new=False``.
        tables
            Typed tables by name; stored as ``data.<name>`` with a ``batch_id`` column.
        problems
            Quarantined rows and other problems: columns ``code``, ``table``, ``key``,
            ``field``, ``value``, ``message`` (missing ones are left empty).
        ledger
            Per-table counts from the reader: ``table``, ``read``, ``kept``,
            ``quarantined``, ``duplicates``. Defaults to every row kept.
        keys
            Key column per table: rows whose key is already stored (from an earlier,
            overlapping export) are not written again and are counted as duplicates.

        Notes
        -----
        For every table, read = kept + quarantined + duplicates holds in the ledger
        whenever it holds in the reader's ledger.
        """
        old = self.batch_for(sha256)
        if old is not None:
            return old
        keys = dict(keys or {})
        given = ({r["table"]: r for r in ledger.to_dict("records")} if ledger is not None else {})
        with self.transaction():
            con = self.connection
            batch_id = int(self._one("SELECT coalesce(max(batch_id), 0) + 1 FROM import_batches")[0])
            rows = []
            for name, df in tables.items():
                target = f"data.{name}"
                _ident(target)
                new = df.assign(batch_id=batch_id)
                key = keys.get(name)
                if key is not None:
                    new = new.drop_duplicates(subset=[key])
                    if self.has(target):
                        stored = con.execute(f"SELECT DISTINCT {_ident(key)} FROM {_ident(target)}").df()
                        new = new[~new[key].isin(stored[key])]
                self._append(target, new)
                led = given.get(name, {"read": len(df), "kept": len(df), "quarantined": 0,
                                       "duplicates": 0})
                skipped = len(df) - len(new)
                rows.append({"batch_id": batch_id, "table": name, "read": int(led["read"]),
                             "kept": int(led["kept"]) - skipped, "quarantined": int(led["quarantined"]),
                             "duplicates": int(led["duplicates"]) + skipped})
            for name, led in given.items():  # tables with nothing kept still count
                if name not in tables:
                    rows.append({"batch_id": batch_id, "table": name,
                                 **{c: int(led[c]) for c in _LEDGER_COLUMNS}})
            ledger_df = pd.DataFrame(rows, columns=["batch_id", "table", *_LEDGER_COLUMNS])
            if len(ledger_df):
                self._insert("import_ledger", ledger_df)
            if problems is not None and len(problems):
                p = pd.DataFrame({c: (problems[c].astype("string") if c in problems else
                                      pd.Series(pd.NA, index=problems.index, dtype="string"))
                                  for c in _PROBLEM_COLUMNS})
                self._insert("problems", p.assign(batch_id=batch_id))
            sums = {c: int(ledger_df[c].sum()) for c in _LEDGER_COLUMNS}
            when = _now()
            con.execute("INSERT INTO import_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [batch_id, source, sha256, when, *sums.values()])
            record = StageRecord(stage="import", done_at=when, seconds=0.0,
                                 counts={"batches": self.count("import_batches"),
                                         "problems": self.count("problems")},
                                 tables=tuple(f"data.{n}" for n in self.tables("data")))
            self._record(record)
        return ImportBatch(batch_id, source, sha256, when, new=True, **sums)

    def _insert(self, table: str, df: pd.DataFrame) -> None:
        con = self.connection
        con.register("_incoming", _to_arrow(df))
        try:
            con.execute(f"INSERT INTO {_ident(table)} BY NAME SELECT * FROM _incoming")
        finally:
            con.unregister("_incoming")

    def _append(self, table: str, df: pd.DataFrame) -> None:
        """Append rows, creating the table or adding new columns as needed."""
        if not self.has(table):
            self._write_table(table, df)
            return
        con = self.connection
        have = set(con.execute(f"SELECT * FROM {_ident(table)} LIMIT 0").df().columns)
        extra = [c for c in df.columns if c not in have]
        if extra:
            con.register("_cols", _to_arrow(df[extra].iloc[:0]))
            try:
                described = con.execute("DESCRIBE SELECT * FROM _cols").fetchall()
            finally:
                con.unregister("_cols")
            types_ = {r[0]: r[1] for r in described}
            for c in extra:
                _ident(c)
                con.execute(f'ALTER TABLE {_ident(table)} ADD COLUMN "{c}" {types_[c]}')
        if len(df):
            self._insert(table, df)

    def clear_imports(self) -> None:
        """Remove every imported batch, typed table and problem (one transaction)."""
        with self.transaction():
            for t in self.tables("data"):
                self.connection.execute(f"DROP TABLE {_ident('data.' + t)}")
            for t in ("import_batches", "import_ledger", "problems"):
                self.connection.execute(f"DELETE FROM {_ident(t)}")
            self.connection.execute("DELETE FROM stages WHERE stage = 'import'")

    def summary(self) -> dict[str, Any]:
        """Counts for ``survey status``: stages, tables and problems outstanding."""
        return {
            "store": str(self.path),
            "stages": {r.stage: {"done_at": r.done_at.isoformat(timespec="seconds"),
                                 "seconds": round(r.seconds, 3), "counts": dict(r.counts),
                                 "detail": r.detail} for r in self.stages()},
            "tables": {t: self.count(t) for t in self.tables("main")}
            | {f"data.{t}": self.count(f"data.{t}") for t in self.tables("data")},
            "problems": self.count("problems"),
            "batches": self.count("import_batches"),
        }
