"""Parsing an uploaded CSV or TSV file into a DuckDB input table, losing no row.

DuckDB's ``read_csv`` does the heavy lifting, so a 100 MB file is parsed in native code
and never held in Python memory. Python looks at a bounded head of the file to choose
the encoding, read the header rows and pick the separator when the caller left it open.

A parsed file becomes two tables:

* ``{table}``: columns ``c0 .. cN-1`` (VARCHAR, the raw cells after trimming) and
  ``__offset`` (the row's 0-based data-row ordinal in the file, stable across schemas);
* ``{table}__row_errors``: every record that is not a row (``errors.py``), made only
  when the census runs (below): its readers take a missing table as an empty one.

Nothing is lost silently. DuckDB's parallel reader is fast and right on well-formed
files, but on malformed ones (an unterminated quote, a cell over its line limit) it can
drop hundreds of thousands of rows behind one misplaced reject. So its result is
accounted for before it is used:

1. Cheap checks (``checks.py``), when DuckDB rejected nothing: as many rows as the
   file has lines after the header (a byte count of newlines, about 40 ms per 100 MB,
   made in a thread while DuckDB loads a file over 64 KiB: the path of a clean file),
   or, when there are fewer rows, as many as a count of records framed by quote parity
   (quoted newlines, blank lines). Then the result stands.
2. Otherwise (rejects, stray quotes, or lost rows) the census (``census.py``) reads
   the file once more, sequentially, and decides which records are rows and which are
   row errors, with their line numbers, raw text and messages. If DuckDB kept exactly
   the census's good rows and rejected exactly its bad ones, its table stands with the
   census's row errors.
3. If not, DuckDB's table is rebuilt from a clean file of the census's good rows, and
   the row count is checked once more; a mismatch is an internal error, never a quiet
   success.

A file up to ``NUMBERED_LOAD_BYTES`` (drop folders send thousands of ~1 KB files; issue
9) is parsed as ONE DuckDB transaction, and its load numbers the rows itself
(``row_number()`` in the ``CREATE TABLE … AS``) instead of adding and filling
``__offset`` afterwards: a third fewer statements and one commit instead of several. A
larger file keeps the earlier statements (numbered by ``rowid`` after the load, each
its own commit): what a window costs DuckDB's parallel reader over millions of rows
was not measured, and inside a transaction a new table's ``rowid`` is not yet its
row's position. Both paths give the same table (tests/server/unit/
test_ingest_small_files.py).

Type guesses (``guess.py``) look at the first rows only. Callers that already know the
columns (an import config) pass ``guess_types=False`` and every column is reported as
``text``.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.storage.ingest import load as duck
from dsmsyncd.server.storage.ingest.census import (
    Census,
    InvalidEncoding,
    RowWriter,
    is_blank_record,
    take_census,
)
from dsmsyncd.server.storage.ingest.checks import LinesAlongside, line_shapes, quoted_records
from dsmsyncd.server.storage.ingest.errors import (
    ERRORS_DIALECT,
    create_errors_table,
    errors_table,
    load_errors,
    read_row_errors,
)
from dsmsyncd.server.storage.ingest.guess import guess_types as _guess_types
from dsmsyncd.server.storage.ingest.load import CsvReading, UnparsableFile
from dsmsyncd.server.storage.parse_options import ENCODINGS, ParseOptions, field_names
from dsmsyncd.server.storage.sql import check_table, drop_relation_sql
from dsmsyncd.server.storage.sql import table as qtable

__all__ = [
    "InputColumnInfo",
    "ParseOptions",
    "ParsedInput",
    "UnparsableFile",
    "errors_table",
    "field_names",
    "ingest_file",
    "read_row_errors",
    "scratch_file",
]

SNIFF_BYTES = 64 * 1024
# Files up to this size are parsed as one DuckDB transaction, their rows numbered by the
# load itself (see the module docstring).
NUMBERED_LOAD_BYTES = 1 << 20


@dataclass(frozen=True)
class InputColumnInfo:
    field_name: str
    display_name: str
    position: int
    guessed_type: SoqlType
    sql_name: str  # the physical column in the input table, e.g. "c0"
    # The input column's own type: text, but a geometry for a geo file's geometry.
    soql_type: SoqlType = SoqlType.TEXT


@dataclass(frozen=True)
class ParsedInput:
    columns: list[InputColumnInfo]
    total_rows: int
    row_error_count: int
    table: str = ""
    name: str | None = None  # the sheet or layer it came from (an input schema's name)


def ingest_file(
    cur: duckdb.DuckDBPyConnection,
    source_path: Path,
    table: str,
    options: ParseOptions,
    *,
    content_type: str | None,
    filename: str | None,
    guess_types: bool = True,
) -> ParsedInput:
    """Parse ``source_path`` into ``table`` and, if it has any, ``{table}__row_errors``
    (blocking), replacing both.

    ``guess_types=False`` skips the type-guessing scan and reports every column as
    ``text``; the server passes it when an import config already names the columns.

    A small file's parse drops a stale row errors table inside its transaction, where
    a ``DROP`` costs no commit of its own, and its load replaces ``table`` (``CREATE
    OR REPLACE``; an input table is never a view); a larger file's parse drops both
    first (issue 9: two statements and a commit less per small file).
    """
    check_table(table)
    options = options.resolved(content_type=content_type, filename=filename)
    # Offsets come from file order, so this cursor's writes must keep it even when
    # the database default (see RowStore) lets other statements reorder rows.
    cur.execute("SET SESSION preserve_insertion_order = true")
    head = _sniff(source_path)
    duck_encoding, py_codec, guessed = _choose_encoding(options.encoding, head)
    separator = options.column_separator or _sniff_separator(head.decode(py_codec, "replace"))
    header = _header_cells(source_path, py_codec, separator, options)
    headers, width = header.cells, len(header.cells)
    duck.check_width(width)
    r = CsvReading(
        source_path,
        table,
        width,
        separator,
        options,
        duck_encoding,
        py_codec,
        header.lines,
        header.records,
        numbered=source_path.stat().st_size <= NUMBERED_LOAD_BYTES,
    )
    if r.numbered:
        cur.execute("BEGIN TRANSACTION")
    else:
        drop_relation_sql(cur, table)
        drop_relation_sql(cur, errors_table(table))
    try:
        if r.numbered:
            cur.execute(f"DROP TABLE IF EXISTS {qtable(errors_table(table))}")
        total, errors = _load_accounted(cur, r, guessed)
        # guess_types (the flag) shadows the function's own name, hence _guess_types.
        guessed_types = (
            _guess_types(cur, table, width, rows=total) if guess_types else [SoqlType.TEXT] * width
        )
        if r.numbered:
            cur.execute("COMMIT")
    except BaseException:
        if r.numbered:
            with contextlib.suppress(duckdb.Error):  # an interrupted cursor may refuse
                cur.execute("ROLLBACK")
        raise
    names = field_names(headers) if options.header_count else _numbered(width)
    displays = headers if options.header_count else names
    columns = [
        InputColumnInfo(names[i], displays[i], i, guessed_types[i], f"c{i}") for i in range(width)
    ]
    return ParsedInput(columns=columns, total_rows=total, row_error_count=errors, table=table)


def _load_accounted(
    cur: duckdb.DuckDBPyConnection, r: CsvReading, guessed: bool
) -> tuple[int, int]:
    """Load the file and account for every record; (rows kept, row errors)."""
    with LinesAlongside(r.path, r.encoding, r.py_codec) as lines:
        got = _load(cur, r, first=True, lines_of=lines)
        if guessed and r.encoding == "utf-8" and got.invalid_encoding:
            # The bounded sniff saw valid UTF-8 but a later part of the file is not.
            r = r.in_latin1()
            got = _load(cur, r)
        try:
            rows, errors, empty = _account(cur, r, got, lines, checking=False)
        except InvalidEncoding:
            if guessed and r.encoding == "utf-8":
                r = r.in_latin1()
                rows, errors, empty = _account(cur, r, _load(cur, r), lines, checking=False)
            else:  # the encoding was asked for: its undecodable rows become row errors
                rows, errors, empty = _account(cur, r, got, lines, checking=True)
    return duck.finish_tables(cur, r, rows, errors, empty), errors


def _load(
    cur: duckdb.DuckDBPyConnection,
    r: CsvReading,
    *,
    first: bool = False,
    lines_of: LinesAlongside | None = None,
) -> duck.Loaded:
    """Load ``r`` and count what the load left.

    A small file whose every line became a row needs no look at DuckDB's rejects: each
    row, each rejected record and each skipped blank line takes at least one line of
    its own, so with as many rows as data lines DuckDB rejected nothing. That holds
    where records end only at line feeds (no lone carriage return); its empty rows are
    then known from the bytes too, or left to the ``DELETE``. Issue 9: the counts were
    a statement per small file, the rejects' ``count(DISTINCT line)`` most of it.
    """
    rows = duck.load(cur, r, first=first)
    if r.numbered and lines_of is not None:
        shapes = line_shapes(r.path, r.encoding, r.separator, r.options.quote_char, r.header_lines)
        data_lines = lines_of.lines(r.path, r.encoding, r.py_codec) - r.header_lines
        if shapes is not None and not shapes.lone_cr and rows == data_lines:
            return duck.Loaded(rows, 0, False, None if shapes.maybe_empty else 0)
    return duck.loaded(cur, r)


def _account(
    cur: duckdb.DuckDBPyConnection,
    r: CsvReading,
    got: duck.Loaded,
    lines_of: LinesAlongside,
    *,
    checking: bool,
) -> tuple[int, int, int | None]:
    """Make every record of the file a row of ``r.table`` or a row error (see above);
    (rows in ``r.table``, row errors, its empty rows if counted). ``got`` is what
    loading ``r`` left.

    The row errors table is made only when the census runs: a file whose cheap checks
    hold has no row errors, and its readers take a missing table as an empty one.
    """
    rows = got.rows
    if got.rejected == 0:
        lines = lines_of.lines(r.path, r.encoding, r.py_codec) - r.header_lines
        if rows == lines:
            return rows, 0, got.empty
        quote = r.options.quote_char
        if rows < lines and rows == quoted_records(
            r.path, r.encoding, r.py_codec, quote, r.header_lines
        ):
            return rows, 0, got.empty
    create_errors_table(cur, r.table, r.separator, r.options.quote_char)
    with scratch_file(r.path, "census-errors") as errors_path:
        with errors_path.open("w", encoding="utf-8", errors="replace", newline="") as fh:
            census = _census(r, csv.writer(fh, **ERRORS_DIALECT), None, checking)
        if census.errors:
            load_errors(cur, r.table, errors_path)
    if census.good == rows and duck.same_rejects(cur, r):
        return rows, census.errors, got.empty
    with scratch_file(r.path, "census-rows") as clean:
        with clean.open("w", encoding="utf-8", errors="replace", newline="") as fh:
            _census(r, _Discard(), csv.writer(fh, lineterminator="\n"), checking)
        duck.load(cur, r, clean=clean)
    reloaded = duck.loaded(cur, r)
    if reloaded.rows != census.good or reloaded.rejected:
        raise RuntimeError(
            f"ingest kept {reloaded.rows} of the {census.good} good rows read from the file; "
            "refusing to go on with rows missing"
        )
    return reloaded.rows, census.errors, reloaded.empty


def _census(
    r: CsvReading, errors_out: RowWriter, good_out: RowWriter | None, checking: bool
) -> Census:
    return take_census(
        r.path,
        py_codec=r.py_codec,
        separator=r.separator,
        quote=r.options.quote_char,
        header_count=r.options.header_count,
        width=r.width,
        trim_whitespace=r.options.trim_whitespace,
        errors_out=errors_out,
        good_out=good_out,
        checking=checking,
    )


class _Discard:
    """A row writer that keeps nothing (the second census pass only wants good rows)."""

    def writerow(self, row: Iterable[Any], /) -> None:
        return None


@contextlib.contextmanager
def scratch_file(source: Path, kind: str) -> Iterator[Path]:
    """A work file next to the source (removed with it, and here once used)."""
    path = source.with_name(f"{source.name}.{kind}.csv")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _sniff(path: Path) -> bytes:
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if not head.strip():
        raise UnparsableFile(
            "The file is empty: upload a CSV or TSV file with a header row and data rows."
        )
    return head


def _choose_encoding(requested: str | None, head: bytes) -> tuple[str, str, bool]:
    """(DuckDB encoding, Python codec, whether it was guessed)."""
    utf16_bom = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if requested is not None:
        duck, py = ENCODINGS[requested.lower()]
        if duck != "utf-16":
            _refuse_binary(head)
        return duck, py, False
    if utf16_bom:
        return "utf-16", "utf-16", True
    _refuse_binary(head)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "latin-1", "latin-1", True
    return "utf-8", "utf-8-sig", True


def _refuse_binary(head: bytes) -> None:
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    if b"\x00" in head or controls > len(head) // 20:
        raise UnparsableFile(
            "The file looks binary, not delimited text: upload it as CSV or TSV "
            "(UTF-8, UTF-16 or Latin-1), or set parse_source to false to store it unparsed."
        )


def _sniff_separator(head_text: str) -> str:
    first_line = head_text.split("\n", 1)[0]
    return "\t" if "\t" in first_line and "," not in first_line else ","


@dataclass(frozen=True)
class _Header:
    cells: list[str]  # the row naming the columns (the first row, without headers)
    lines: int  # physical lines up to the end of the header rows (0 without headers)
    records: int  # records up to there, blank ones included: what DuckDB must skip


def _header_cells(path: Path, py_codec: str, separator: str, options: ParseOptions) -> _Header:
    """Read up to the end of the header rows; blank lines before or between them are not
    header rows (nor are lines of blanks alone, when ``trim_whitespace`` is on)."""
    wanted = max(options.header_count, 1)
    rows: list[list[str]] = []
    records = 0
    try:
        with path.open(encoding=py_codec, errors="replace", newline="") as fh:
            reader = csv.reader(fh, delimiter=separator, quotechar=options.quote_char)
            for row in reader:
                records += 1
                if not is_blank_record(row, options.trim_whitespace):
                    rows.append(row)
                if len(rows) == wanted:
                    break
            lines = reader.line_num
    except csv.Error as exc:
        raise UnparsableFile(f"The header rows cannot be read as CSV: {exc}") from exc
    if len(rows) < wanted:
        raise UnparsableFile(
            f"The file has {len(rows)} row(s) but header_count is {options.header_count}: "
            "lower header_count or upload a file with its header rows."
        )
    if options.header_count == 0:
        return _Header([""] * len(rows[0]), 0, 0)
    cells = rows[options.column_header - 1]
    if options.trim_whitespace:
        cells = [cell.strip() for cell in cells]
    return _Header(cells, lines, records)


def _numbered(width: int) -> list[str]:
    return [f"column_{i + 1}" for i in range(width)]
