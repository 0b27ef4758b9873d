"""The row store: every row the local server holds, in one DuckDB database file.

It holds input tables (parsed uploads), output tables (an output schema evaluated over
an input table) and dataset tables (published rows). The SQL lives in ``ingest``,
``output``, ``apply`` and ``datasets``; this class gives it an async face.

Every public method runs its DuckDB work in a worker thread on a cursor of its own
(``budget``), so the event loop never blocks and work on different tables runs
in parallel. Reads get a time budget (``query_timeout``) and are interrupted when it
passes; anything still running at shutdown is interrupted too. DuckDB serialises
conflicting writes to the same table; callers keep one writer per dataset (the server's
apply job does).

Memory stays bounded for large files: DuckDB gets ``memory_limit`` and spills to
``<db>.tmp/`` beside the database file, and rows only ever reach Python one page or one
``fetchmany`` batch at a time. A read that needs more than ``memory_limit`` fails
(``QueryOutOfMemory``) rather than growing the process.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import duckdb

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.storage import apply as _apply
from dsmsyncd.server.storage import datasets as _datasets
from dsmsyncd.server.storage import ingest as _ingest
from dsmsyncd.server.storage import output as _output
from dsmsyncd.server.storage import soda_format, system_columns
from dsmsyncd.server.storage import upgrade as _upgrade
from dsmsyncd.server.storage.apply import (
    AppliedColumn,
    ApplyAction,
    ApplyRefused,
    ApplyStats,
    ApplyTarget,
)
from dsmsyncd.server.storage.budget import (
    QueryOutOfMemory,
    QueryOutOfRange,
    QueryTimeout,
    Statements,
)
from dsmsyncd.server.storage.datasets import DatasetRef
from dsmsyncd.server.storage.ingest import ParsedInput, ParseOptions
from dsmsyncd.server.storage.ingest import formats as _formats
from dsmsyncd.server.storage.output import InputRef, OutputColumnPlan, OutputStats
from dsmsyncd.server.storage.soql import TranslatedQuery
from dsmsyncd.server.storage.sql import drop_relation_sql
from dsmsyncd.server.transforms import register_udfs

__all__ = [
    "AppliedColumn",
    "ApplyRefused",
    "ApplyStats",
    "ApplyTarget",
    "DatasetRef",
    "InputRef",
    "OutputColumnPlan",
    "OutputStats",
    "QueryOutOfMemory",
    "QueryOutOfRange",
    "QueryTimeout",
    "RowStore",
]

P = ParamSpec("P")
T = TypeVar("T")

EXPORT_BATCH_ROWS = 2000
DEFAULT_MEMORY_LIMIT = "256MB"
DEFAULT_QUERY_TIMEOUT = 30.0


class RowStore:
    """One DuckDB database file holding input, output and dataset tables."""

    def __init__(
        self,
        path: Path,
        *,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        threads: int | None = None,
        query_timeout: float | None = DEFAULT_QUERY_TIMEOUT,
    ) -> None:
        temp_dir = path.parent / (path.name + ".tmp")
        temp_dir.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "memory_limit": memory_limit,
            "temp_directory": str(temp_dir),
            # Bulk writes that keep insertion order go through DuckDB's ordered (batch)
            # insert, which for a file database takes about twice as long. Nothing here
            # reads rows in physical order except ingest, which turns it back on for its
            # own cursor (SET SESSION); every read orders by __offset or __sid.
            "preserve_insertion_order": False,
        }
        if threads is not None:
            config["threads"] = threads
        self.path = path
        self._con: duckdb.DuckDBPyConnection | None = duckdb.connect(str(path), config=config)
        # FSST string compression roughly doubles the cost of writing a 1M-row table of
        # text; tables grow about 3x on disk instead, which a local server affords.
        # (Set here: duckdb 2.0.1 ignores this key in the connect config.)
        self._con.execute("SET GLOBAL disabled_compression_methods = 'fsst,dict_fsst'")
        _apply.ensure_apply_log(self._con)
        _upgrade.upgrade_numbers(self._con)
        system_columns.migrate(self._con)
        register_udfs(self._con)  # compiled transforms may call Python functions
        # DuckDBPyConnection.cursor() is not documented as thread-safe; cursors are.
        self._lock = threading.Lock()
        self._statements = Statements(query_timeout=query_timeout, memory_limit=memory_limit)

    async def interrupt(self, grace: float) -> bool:
        """Interrupt every running statement; whether all returned within ``grace`` s."""
        self._statements.interrupt_all()
        return await self._statements.wait_idle(grace)

    async def wait_statements(self, count: int, grace: float) -> bool:
        """Whether exactly ``count`` calls are running within ``grace`` seconds.

        A state to wait on (tests; shutdown waits for zero through ``interrupt``).
        """
        return await self._statements.wait_running(count, grace)

    def close(self) -> None:
        """Close the database; call once no method is running any more."""
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
        self._statements.close()

    async def ingest_upload(
        self,
        source_path: Path,
        table: str,
        options: ParseOptions,
        *,
        content_type: str | None,
        filename: str | None,
        guess_types: bool = True,
    ) -> list[ParsedInput]:
        """Parse an upload of any format (``ingest/formats.py``): one input table per
        sheet read or geo layer, the first named ``table``; raises ``UnparsableFile``.

        Pass ``guess_types=False`` when the columns' types come from elsewhere (an import
        config): it skips the guessing scan and reports every column as ``text``.
        ``table`` and its row errors are replaced (a parse resumed after a restart starts
        clean).
        """
        return await self._run(
            _formats.ingest_upload,
            source_path,
            table,
            options,
            content_type=content_type,
            filename=filename,
            guess_types=guess_types,
        )

    async def row_errors(self, table: str, offset: int, limit: int) -> list[dict[str, Any]]:
        """A page of the parse errors of input table ``table`` (digest §3(f))."""
        return await self._read(_ingest.read_row_errors, table, offset, limit)

    async def materialize(
        self, input_table: str, output_table: str, columns: Sequence[OutputColumnPlan]
    ) -> OutputStats:
        """Evaluate an output schema over an input table into ``output_table``."""
        return await self._run(_output.materialize, input_table, output_table, columns)

    async def drop_tables(self, *names: str) -> None:
        """Drop tables or views if they exist (an input table takes its row errors with it)."""

        def drop(cur: duckdb.DuckDBPyConnection) -> None:
            for name in names:
                drop_relation_sql(cur, name)
                drop_relation_sql(cur, _ingest.errors_table(name))

        await self._run(drop)

    async def rows_page(
        self,
        output_table: str,
        columns: Sequence[OutputColumnPlan],
        offset: int,
        limit: int,
        *,
        inputs: InputRef,
        errors_only: bool,
        column_index: int | None = None,
    ) -> list[dict[str, Any]]:
        """``[{"offset", "row": [cell…]}]`` for rows (or error rows) of an output table."""
        sql, refs = _output.page_query(
            output_table,
            columns,
            inputs,
            errors_only=errors_only,
            column_index=column_index,
            paged=True,
        )

        def page(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
            rows = cur.execute(sql, [limit, offset]).fetchall()
            return _output.to_items(rows, columns, refs)

        return await self._read(page)

    async def export_csv(
        self,
        output_table: str,
        columns: Sequence[OutputColumnPlan],
        *,
        inputs: InputRef,
        errors_only: bool,
        column_index: int | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """Stream an output table as CSV; error rows get a last ``errors`` column."""
        sql, refs = _output.page_query(
            output_table,
            columns,
            inputs,
            errors_only=errors_only,
            column_index=column_index,
            paged=False,
        )
        with_errors = errors_only or column_index is not None
        yield _output.csv_header(columns, with_errors=with_errors)
        async for rows in self._stream(sql, []):
            yield _output.to_csv(rows, columns, refs, with_errors=with_errors)

    async def validate_row_identifier(self, output_table: str, column_index: int) -> dict[str, Any]:
        """``{"valid": True}`` or why column ``column_index`` cannot identify rows."""
        return await self._read(_output.validate_row_identifier, output_table, column_index)

    async def apply(
        self,
        target: ApplyTarget,
        columns: Sequence[AppliedColumn],
        action: ApplyAction,
        row_identifier: str | None,
    ) -> ApplyStats:
        """Publish an output table's error-free rows into a dataset, atomically.

        At most once per revision: applying a revision whose rows are already in
        returns what that write recorded (``apply.apply``).
        """
        return await self._run(_apply.apply, target, columns, action, row_identifier)

    async def applied(self, revision_id: int) -> ApplyStats | None:
        """What applying ``revision_id`` wrote, if its rows were committed."""
        return await self._run(_apply.applied_stats, revision_id)

    async def dataset_rows(
        self,
        ref: DatasetRef,
        query: TranslatedQuery,
        shape: Callable[[list[tuple[Any, ...]]], T],
    ) -> T:
        """One page of a SODA read, shaped by ``shape`` in the worker thread."""
        return await self._read(_datasets.dataset_rows, ref, query, shape)

    async def dataset_csv(
        self, ref: DatasetRef, query: TranslatedQuery, header: list[str], *, export: bool
    ) -> AsyncGenerator[bytes, None]:
        """Stream a read as SODA CSV under ``header``; ``export`` (the whole dataset as
        the CSV export writes it) ignores ``$limit``/``$offset``, a read pages."""
        yield soda_format.csv_line(header).encode()
        if not query.select:
            return
        source = await self._read(_datasets.source_sql, ref)
        sql = _datasets.dataset_query(source, query, paged=not export)
        fields = [(c.name, c.soql_type) for c in query.select]
        params = [] if export else [query.limit, query.offset]
        async for rows in self._stream(sql, params):
            yield soda_format.csv_rows(rows, fields, export=export)

    async def dataset_version(self, ref: DatasetRef) -> str:
        """Changes whenever an apply changes the dataset's rows (for ETags)."""
        return await self._read(_datasets.dataset_version, ref)

    async def dataset_count(self, table: str) -> int:
        return await self._read(_datasets.dataset_count, table)

    async def snapshot(
        self, dataset_table: str, input_table: str, columns: Sequence[tuple[str, SoqlType]]
    ) -> int:
        """Copy a dataset's rows into an input table (a view source's draft); the count."""
        return await self._run(_datasets.snapshot, dataset_table, input_table, columns)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._con is None:
                raise RuntimeError(f"row store {self.path} is closed")
            return self._con.cursor()

    async def _run(
        self,
        fn: Callable[Concatenate[duckdb.DuckDBPyConnection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Work (parse, transform, apply, drop): no time budget, stopped at shutdown."""
        return await self._statements.run(
            self._cursor(), lambda cur: fn(cur, *args, **kwargs), read=False
        )

    async def _read(
        self,
        fn: Callable[Concatenate[duckdb.DuckDBPyConnection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """A read that a client waits for: within the time and memory budgets."""
        return await self._statements.run(
            self._cursor(), lambda cur: fn(cur, *args, **kwargs), read=True
        )

    def _stream(self, sql: str, params: list[Any]) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        """Batches of a read's rows, fetched in a worker thread within the read budget."""
        return self._statements.stream(self._cursor(), sql, params, EXPORT_BATCH_ROWS)
