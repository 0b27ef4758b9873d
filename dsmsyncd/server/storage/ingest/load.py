"""DuckDB's side of ingest: ``read_csv`` into the input table, then offsets and empty rows.

One ``CREATE TABLE … AS SELECT`` over ``read_csv`` trims the cells on the way in (the
``trim`` call only runs on cells that start or end with a blank, since trimming every
cell costs more than the parse) and keeps file order (``preserve_insertion_order`` is
switched on for the ingest cursor), so the new table's ``rowid`` is each good row's
position among the good rows. DuckDB's rejects only say whether it had trouble; which
rows are errors is settled by ``ingest`` (see there), and the row errors table it leaves
is what ``finish_tables`` numbers the good rows around.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from dsmsyncd.server.storage.ingest.errors import errors_table
from dsmsyncd.server.storage.parse_options import ParseOptions
from dsmsyncd.server.storage.sql import literal
from dsmsyncd.server.storage.sql import table as qtable

__all__ = [
    "CsvReading",
    "Loaded",
    "UnparsableFile",
    "count_rows",
    "drop_rejects",
    "finish_tables",
    "load",
    "loaded",
    "same_rejects",
]

# Cells equal to this are read as NULL; nothing real contains it, so an empty cell
# stays "" and every cell of a parsed row is non-NULL.
_NULL_SENTINEL = "\x00\x01dsmsyncd-null\x01\x00"
_TRIM_CHARS = " \t\r\n\x0b\x0c"
# A clean file's rows hold at most MAX_ROW_CHARS characters, which UTF-8 and doubled
# quotes may turn into several times as many bytes.
_CLEAN_MAX_LINE_BYTES = 24_000_000


# The most columns a file may have. Every column is a DuckDB column of the input table
# and an output column with its own transform; a header of 100,000 columns ran DuckDB
# out of memory after minutes, reported as a file that "cannot be parsed".
MAX_COLUMNS = 1000


class UnparsableFile(Exception):
    """The file cannot be read as delimited text; ``message`` says what to change, ``key``
    is the source's ``failure_details.key``."""

    def __init__(self, message: str, key: str = "unparsable_file") -> None:
        super().__init__(message)
        self.message = message
        self.key = key


def check_width(width: int) -> None:
    """Refuse a file with more columns than ``MAX_COLUMNS``, before any of it is loaded."""
    if width > MAX_COLUMNS:
        raise UnparsableFile(
            f"The file has {width:,} columns; the local server takes at most "
            f"{MAX_COLUMNS:,}: split it into datasets of fewer columns, or check "
            "column_separator if the header is not meant to have that many.",
            key="too_many_columns",
        )


@dataclass(frozen=True)
class CsvReading:
    """How one file is read: what the DuckDB load and the census must agree on."""

    path: Path
    table: str
    width: int
    separator: str
    options: ParseOptions
    encoding: str  # DuckDB's name for it
    py_codec: str  # Python's, for the header and the census
    header_lines: int  # physical lines up to the end of the header rows
    header_records: int  # records up to there, blank lines included (DuckDB's ``skip``)
    # A small file: the load numbers the rows itself, and the whole parse is one
    # transaction (see ``ingest``'s docstring).
    numbered: bool = False

    def in_latin1(self) -> CsvReading:
        return replace(self, encoding="latin-1", py_codec="latin-1")

    @property
    def rejects(self) -> str:
        return f"{self.table}__rejects"


def load(
    cur: duckdb.DuckDBPyConnection, r: CsvReading, *, clean: Path | None = None, first: bool = False
) -> int:
    """Read the data rows, trimmed, into ``r.table`` in file order; rejects to ``r.rejects``.

    With ``clean``, the rows come from that file instead: the census's good rows, written
    with ``,`` and ``"`` in UTF-8, no header. ``r.table`` is replaced if it exists; it
    has no ``__offset`` yet, unless ``r.numbered``: then each row's ``__offset`` is its
    position among the good rows (``row_number() OVER ()``, which keeps file order: a
    window without a partition or an order streams in one thread, which a small file
    is read in anyway). ``first``: the first load of ``r.table`` on this cursor, so no
    rejects tables (temporary, the cursor's) are there to drop, and none is looked for.
    Returns the rows the load kept (DuckDB's count of the ``CREATE TABLE … AS``).
    """
    cols = ", ".join(f"{literal(f'c{i}')}: 'VARCHAR'" for i in range(r.width))
    cells = ", ".join(
        f"{_trimmed(f'c{i}')} AS c{i}" if r.options.trim_whitespace else f"c{i}"
        for i in range(r.width)
    )
    if r.numbered:
        cells += ", CAST(row_number() OVER () - 1 AS BIGINT) AS __offset"
    if clean is None:
        path, skip, delim, quote = r.path, r.header_records, r.separator, r.options.quote_char
        encoding, limit = r.encoding, ""
    else:
        path, skip, delim, quote = clean, 0, ",", '"'
        encoding, limit = "utf-8", f"max_line_size={_CLEAN_MAX_LINE_BYTES}, "
    if not first:
        # A reload finds the rejects tables of the cursor's first load. Dropped whether
        # or not they exist: asking first costs a scan of the whole catalog when they do
        # not (``sql.relation_kind``), and that grows with every file synced (issue 9).
        drop_rejects(cur, r)
    try:
        created = cur.execute(
            f"CREATE OR REPLACE TABLE {qtable(r.table)} AS SELECT {cells} FROM read_csv("
            f"{literal(str(path))}, columns={{{cols}}}, header=false, skip={skip}, "
            f"delim={literal(delim)}, quote={literal(quote)}, escape={literal(quote)}, "
            f"auto_detect=false, strict_mode=true, ignore_errors=true, store_rejects=true, "
            f"rejects_table={literal(r.rejects)}, rejects_scan={literal(r.rejects + '_scan')}, "
            f"{limit}nullstr={literal(_NULL_SENTINEL)}, encoding={literal(encoding)})"
        ).fetchone()
    except duckdb.Error as exc:
        if not r.numbered:  # else the failed statement aborted the parse's transaction
            cur.execute(f"DROP TABLE IF EXISTS {qtable(r.table)}")
            drop_rejects(cur, r)
        first_line = str(exc).strip().splitlines()[0]
        raise UnparsableFile(
            f"The file cannot be parsed as delimited text ({first_line}). Check "
            "column_separator, quote_char and encoding in the parse options."
        ) from exc
    return int(created[0]) if created else 0


def _trimmed(column: str) -> str:
    """``column`` trimmed of blanks, calling ``trim`` only when an end may be a blank.

    ``trim`` with a character list costs about as much as parsing the cell; the guard is
    two cheap tests. Every blank of ``_TRIM_CHARS`` is at most a space, so ``c < '!'``
    holds when the first byte may be one (or the cell is empty) and ``right(c, 1) <
    '!'`` when the last character may be (issue 9: one test of the last character
    instead of one ``suffix`` per blank; bench/RESULTS.md has the load times). A
    control character that is not a blank passes the guard and ``trim`` leaves it.
    """
    assert max(_TRIM_CHARS) < "!"
    return (
        f"CASE WHEN {column} < '!' OR right({column}, 1) < '!' "
        f"THEN trim({column}, {literal(_TRIM_CHARS)}) ELSE {column} END"
    )


@dataclass(frozen=True)
class Loaded:
    """What a load left: its rows, the records DuckDB rejected (it may report one record
    several times; these are distinct), whether any was for an invalid encoding, and,
    after a numbered load that removes empty rows, how many of its rows are empty (None:
    not counted)."""

    rows: int
    rejected: int
    invalid_encoding: bool
    empty: int | None = None


def loaded(cur: duckdb.DuckDBPyConnection, r: CsvReading) -> Loaded:
    """Count what the last ``load`` left, in one statement.

    A numbered load's empty rows are counted in it too: most small files have none,
    and then ``finish_tables`` needs no ``DELETE`` (issue 9: a statement per file). A
    larger file is not scanned for them twice (the count, then the ``DELETE``).
    """
    empty = _empty_row(r) if r.numbered else None
    row = cur.execute(
        f"SELECT t.n, j.n, j.i, t.e FROM (SELECT count(*) AS n, "
        f"{'NULL' if empty is None else f'count(*) FILTER (WHERE {empty})'} AS e "
        f"FROM {qtable(r.table)}) t, (SELECT count(DISTINCT line) AS n, "
        f"count(*) FILTER (WHERE error_type = 'INVALID ENCODING') AS i FROM {qtable(r.rejects)}) j"
    ).fetchone()
    assert row is not None
    return Loaded(int(row[0]), int(row[1]), bool(row[2]), None if row[3] is None else int(row[3]))


def _empty_row(r: CsvReading) -> str | None:
    """SQL true on a row whose every cell is empty, if such rows are to go; else None."""
    if not (r.options.remove_empty_rows and r.width):
        return None
    return " AND ".join(f"c{i} = ''" for i in range(r.width))


def same_rejects(cur: duckdb.DuckDBPyConnection, r: CsvReading) -> bool:
    """Whether DuckDB rejected exactly the records the row errors table lists.

    DuckDB numbers a rejected record by its line counting records (quoted newlines and
    blank lines included) from 1 at the top of the file, header included.
    """
    first = 1 + r.header_records
    return (
        count_rows(
            cur,
            f"SELECT count(*) FROM (SELECT DISTINCT CAST(line AS BIGINT) - {first} AS o "
            f"FROM {qtable(r.rejects)}) d FULL OUTER JOIN (SELECT __offset AS o FROM "
            f"{qtable(errors_table(r.table))}) e ON d.o = e.o WHERE d.o IS NULL OR e.o IS NULL",
        )
        == 0
    )


def drop_rejects(cur: duckdb.DuckDBPyConnection, r: CsvReading) -> None:
    cur.execute(f"DROP TABLE IF EXISTS {qtable(r.rejects)}")
    cur.execute(f"DROP TABLE IF EXISTS {qtable(r.rejects + '_scan')}")


def finish_tables(
    cur: duckdb.DuckDBPyConnection,
    r: CsvReading,
    rows: int,
    row_errors: int,
    empty: int | None = None,
) -> int:
    """Number the ``rows`` good rows around the ``row_errors`` row errors, then drop
    empty rows (none to drop when ``empty``, the count ``loaded`` made, is 0); returns
    the rows left.

    Good row k (0-based, file order) takes the k-th ordinal not used by a row error:
    without errors that is k itself (the ``rowid``, or the ``__offset`` a numbered
    load gave); with them, an ASOF join of the k alone (not the cells) against the
    errors adds the shift. Blank lines keep no row, so the good rows after one move
    down by one; offsets stay unique, ordered and stable for a given file and options.
    Empty rows are deleted last, so they keep their ordinals free.

    A numbered load's table is numbered inside the parse's transaction, where a new
    table's ``rowid`` is not yet its row's position: k is its ``__offset`` there. Its
    rejects tables (temporary) go with the cursor.
    """
    data = qtable(r.table)
    key = "__offset" if r.numbered else "rowid"
    if not r.numbered:
        drop_rejects(cur, r)
        cur.execute(f"ALTER TABLE {data} ADD COLUMN __offset BIGINT")
        if row_errors == 0:
            cur.execute(f"UPDATE {data} SET __offset = rowid")
    if row_errors:
        errors = qtable(errors_table(r.table))
        cur.execute(
            f"UPDATE {data} SET __offset = m.__offset FROM ("
            "WITH numbered AS (SELECT ordinal, __offset - (ordinal - 1) AS threshold "
            "  FROM (SELECT __offset, row_number() OVER (ORDER BY __offset) AS ordinal "
            f"        FROM {errors})), "
            "thresholds AS (SELECT threshold, max(ordinal) AS shift FROM numbered "
            "  GROUP BY threshold) "
            "SELECT s.k, CAST(s.k + coalesce(t.shift, 0) AS BIGINT) AS __offset "
            f"FROM (SELECT {key} AS k FROM {data}) s "
            f"ASOF LEFT JOIN thresholds t ON s.k >= t.threshold) m WHERE {data}.{key} = m.k"
        )
    where = _empty_row(r)
    if where is not None and empty != 0:
        rows -= count_rows(cur, f"DELETE FROM {data} WHERE {where}")
    return rows


def count_rows(cur: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = cur.execute(sql).fetchone()
    return int(row[0]) if row else 0
