"""Parsing an uploaded CSV or TSV file into a DuckDB input table.

DuckDB's ``read_csv`` does the heavy lifting, so a 100 MB file is parsed in native code
and never held in Python memory. Python only looks at a bounded head of the file: to
choose the encoding, to read the header rows, and to pick the separator when the
caller left it open.

A parsed file becomes two tables:

* ``{table}``: columns ``c0 .. cN-1`` (VARCHAR, the raw cells after trimming) and
  ``__offset`` (the row's 0-based data-row ordinal in the file, stable across schemas);
* ``{table}__row_errors``: rows with the wrong number of cells (digest §1.9, §3(f)),
  with their raw text, parsed back into cells only when a page of them is served.

Speed: the file is read and written exactly once. One ``CREATE TABLE … AS SELECT`` over
``read_csv`` trims the cells on the way in (the ``trim`` call only runs on cells that
start or end with a blank, since trimming every cell costs more than the parse) and
keeps file order (``preserve_insertion_order`` is switched on for this cursor only), so
the new table's ``rowid`` is each good row's position among the good rows. ``__offset``
is then filled by an ``UPDATE`` that touches that one column, and empty rows are deleted
afterwards, so they keep their ordinals free as before.

Offsets: DuckDB reports a rejected row by its line number (quoted newlines count as
one row) and keeps good rows in file order. Good rows take the ordinals the rejected
rows leave free, in order: without rejects that is the ``rowid``; with them, an ASOF join
of the row ids alone (not the cells) against the rejects adds the shift. Blank lines
that DuckDB skips can therefore shift later good rows down by one; offsets stay unique,
ordered and stable for a given file and options.

Type guesses only shape the first output schema, so they look at the first
``GUESS_SAMPLE_ROWS`` rows, in one aggregate scan. A column whose later rows do not fit
the guess shows those cells as errors in the output, which is how the hosted service
behaves too. Callers that already know the columns (an import config) pass
``guess_types=False`` and every column is reported as ``text``.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from dsmsyncd.server.ingest_options import ENCODINGS, ParseOptions, field_names
from dsmsyncd.server.rowstore_sql import check_table, literal
from dsmsyncd.server.rowstore_sql import table as qtable
from dsmsyncd.server.soql_types import SoqlType

__all__ = [
    "InputColumnInfo",
    "ParseOptions",
    "ParsedInput",
    "UnparsableFile",
    "field_names",
    "ingest_file",
    "read_row_errors",
]

SNIFF_BYTES = 64 * 1024
# Rows that type guessing looks at; see the module docstring.
GUESS_SAMPLE_ROWS = 50_000
# Cells equal to this are read as NULL; nothing real contains it, so an empty cell
# stays "" and every cell of a parsed row is non-NULL.
_NULL_SENTINEL = "\x00\x01dsmsyncd-null\x01\x00"
_TRIM_CHARS = " \t\r\n\x0b\x0c"

_REJECT_TYPES = {
    "MISSING COLUMNS": "too_short",
    "TOO MANY COLUMNS": "too_long",
    "UNQUOTED VALUE": "unquoted_value",
    "LINE SIZE OVER MAXIMUM": "line_too_long",
    "INVALID ENCODING": "invalid_encoding",
}


class UnparsableFile(Exception):
    """The file cannot be read as delimited text; ``message`` says what to change."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class InputColumnInfo:
    field_name: str
    display_name: str
    position: int
    guessed_type: SoqlType
    sql_name: str  # the physical column in the input table, e.g. "c0"


@dataclass(frozen=True)
class ParsedInput:
    columns: list[InputColumnInfo]
    total_rows: int
    row_error_count: int


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
    """Parse ``source_path`` into ``table`` and ``{table}__row_errors`` (blocking).

    ``guess_types=False`` skips the type-guessing scan and reports every column as
    ``text``; the server passes it when an import config already names the columns.
    """
    check_table(table)
    options = options.resolved(content_type=content_type, filename=filename)
    # Offsets come from rowid, so this cursor's writes must keep file order even when
    # the database default (see RowStore) lets other statements reorder rows.
    cur.execute("SET SESSION preserve_insertion_order = true")
    head = _sniff(source_path)
    duck_encoding, py_codec, guessed = _choose_encoding(options.encoding, head)
    separator = options.column_separator or _sniff_separator(head.decode(py_codec, "replace"))
    headers = _header_cells(source_path, py_codec, separator, options)
    width = len(headers)
    rejects = _load(cur, source_path, table, width, separator, options, duck_encoding)
    if guessed and duck_encoding == "utf-8" and _has_invalid_encoding(cur, rejects):
        # The bounded sniff saw valid UTF-8 but a later part of the file is not.
        _drop_rejects(cur, rejects)
        rejects = _load(cur, source_path, table, width, separator, options, "latin-1")
    _finish_tables(cur, table, rejects, width, separator, options)
    guessed_types = _guess_types(cur, table, width) if guess_types else [SoqlType.TEXT] * width
    names = field_names(headers) if options.header_count else _numbered(width)
    displays = headers if options.header_count else names
    columns = [
        InputColumnInfo(names[i], displays[i], i, guessed_types[i], f"c{i}") for i in range(width)
    ]
    total = _scalar(cur, f"SELECT count(*) FROM {qtable(table)}")
    errors = _scalar(cur, f"SELECT count(*) FROM {qtable(table + '__row_errors')}")
    return ParsedInput(columns=columns, total_rows=total, row_error_count=errors)


def read_row_errors(
    cur: duckdb.DuckDBPyConnection, table: str, offset: int, limit: int
) -> list[dict[str, Any]]:
    """A page of parse errors in the §3(f) shape, ordered by offset (blocking)."""
    name = qtable(table + "__row_errors")
    try:
        rows = cur.execute(
            f"SELECT __offset, type, wanted, got, raw, delim, quote, message FROM {name} "
            "ORDER BY __offset LIMIT ? OFFSET ?",
            [limit, offset],
        ).fetchall()
    except duckdb.CatalogException:
        return []
    page = []
    for row_offset, kind, wanted, got, raw, delim, quote, message in rows:
        contents = _split_raw(raw or "", delim, quote)
        error: dict[str, Any] = {
            "type": kind,
            "wanted": wanted,
            "got": got if got is not None else len(contents),
            "contents": contents,
        }
        if kind not in ("too_short", "too_long"):
            error["message"] = message
        page.append({"offset": row_offset, "error": error})
    return page


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


def _header_cells(path: Path, py_codec: str, separator: str, options: ParseOptions) -> list[str]:
    """The cells of the row naming the columns (or of the first row, without headers)."""
    wanted = max(options.header_count, 1)
    rows: list[list[str]] = []
    try:
        with path.open(encoding=py_codec, errors="replace", newline="") as fh:
            reader = csv.reader(fh, delimiter=separator, quotechar=options.quote_char)
            for row in reader:
                if row:
                    rows.append(row)
                if len(rows) == wanted:
                    break
    except csv.Error as exc:
        raise UnparsableFile(f"The header rows cannot be read as CSV: {exc}") from exc
    if len(rows) < wanted:
        raise UnparsableFile(
            f"The file has {len(rows)} row(s) but header_count is {options.header_count}: "
            "lower header_count or upload a file with its header rows."
        )
    if options.header_count == 0:
        return [""] * len(rows[0])
    return rows[options.column_header - 1]


def _numbered(width: int) -> list[str]:
    return [f"column_{i + 1}" for i in range(width)]


def _load(
    cur: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    width: int,
    separator: str,
    options: ParseOptions,
    encoding: str,
) -> str:
    """Read the data rows, trimmed, into ``table`` in file order; returns the rejects table.

    ``table`` has no ``__offset`` yet: ``_finish_tables`` adds it once the rejects are
    known. An existing ``table`` is replaced (the latin-1 retry reuses the name).
    """
    rejects = f"{table}__rejects"
    cols = ", ".join(f"{literal(f'c{i}')}: 'VARCHAR'" for i in range(width))
    cells = ", ".join(
        f"{_trimmed(f'c{i}')} AS c{i}" if options.trim_whitespace else f"c{i}" for i in range(width)
    )
    try:
        cur.execute(
            f"CREATE OR REPLACE TABLE {qtable(table)} AS SELECT {cells} FROM read_csv("
            f"{literal(str(path))}, columns={{{cols}}}, header=false, "
            f"skip={options.header_count}, delim={literal(separator)}, "
            f"quote={literal(options.quote_char)}, escape={literal(options.quote_char)}, "
            f"auto_detect=false, strict_mode=true, ignore_errors=true, store_rejects=true, "
            f"rejects_table={literal(rejects)}, rejects_scan={literal(rejects + '_scan')}, "
            f"nullstr={literal(_NULL_SENTINEL)}, encoding={literal(encoding)})"
        )
    except duckdb.Error as exc:
        cur.execute(f"DROP TABLE IF EXISTS {qtable(table)}")
        _drop_rejects(cur, rejects)
        first_line = str(exc).strip().splitlines()[0]
        raise UnparsableFile(
            f"The file cannot be parsed as delimited text ({first_line}). Check "
            "column_separator, quote_char and encoding in the parse options."
        ) from exc
    return rejects


def _trimmed(column: str) -> str:
    """``column`` trimmed of blanks, calling ``trim`` only when an end is a blank.

    ``trim`` with a character list costs about as much as parsing the cell; the guard is
    two cheap byte tests: ``c < '!'`` holds exactly when the first byte is at most a space
    (or the cell is empty), and ``suffix`` checks the last byte for each blank.
    """
    ends = " OR ".join(f"suffix({column}, chr({ord(ch)}))" for ch in _TRIM_CHARS)
    return (
        f"CASE WHEN {column} < '!' OR {ends} "
        f"THEN trim({column}, {literal(_TRIM_CHARS)}) ELSE {column} END"
    )


def _has_invalid_encoding(cur: duckdb.DuckDBPyConnection, rejects: str) -> bool:
    found = cur.execute(
        f"SELECT count(*) FROM {qtable(rejects)} WHERE error_type = 'INVALID ENCODING'"
    ).fetchone()
    return bool(found and found[0])


def _drop_rejects(cur: duckdb.DuckDBPyConnection, rejects: str) -> None:
    cur.execute(f"DROP TABLE IF EXISTS {qtable(rejects)}")
    cur.execute(f"DROP TABLE IF EXISTS {qtable(rejects + '_scan')}")


def _finish_tables(
    cur: duckdb.DuckDBPyConnection,
    table: str,
    rejects: str,
    width: int,
    separator: str,
    options: ParseOptions,
) -> None:
    """Build the row errors, number the good rows, then drop empty rows."""
    errors = qtable(table + "__row_errors")
    data = qtable(table)
    kinds = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in _REJECT_TYPES.items())
    cur.execute(f"DROP TABLE IF EXISTS {errors}")
    cur.execute(
        f"CREATE TABLE {errors} AS SELECT "
        f"CAST(line AS BIGINT) - 1 - {options.header_count} AS __offset, "
        f"CASE CAST(etype AS VARCHAR) {kinds} ELSE 'invalid_row' END AS type, "
        f"{width} AS wanted, "
        "TRY_CAST(regexp_extract(message, 'Found: (\\d+)', 1) AS INTEGER) AS got, "
        f"raw, {literal(separator)} AS delim, {literal(options.quote_char)} AS quote, message "
        "FROM (SELECT line, min(error_type) AS etype, any_value(csv_line) AS raw, "
        f"any_value(error_message) AS message FROM {qtable(rejects)} GROUP BY line)"
    )
    _drop_rejects(cur, rejects)
    cur.execute(f"ALTER TABLE {data} ADD COLUMN __offset BIGINT")
    if _scalar(cur, f"SELECT count(*) FROM {errors}") == 0:
        cur.execute(f"UPDATE {data} SET __offset = rowid")
    else:
        # Good row k (0-based, file order) takes the k-th ordinal not used by a rejected
        # row. Only the row ids go through the ASOF join (it sorts), never the cells.
        cur.execute(
            f"UPDATE {data} SET __offset = m.__offset FROM ("
            "WITH numbered AS (SELECT ordinal, __offset - (ordinal - 1) AS threshold "
            "  FROM (SELECT __offset, row_number() OVER (ORDER BY __offset) AS ordinal "
            f"        FROM {errors})), "
            "thresholds AS (SELECT threshold, max(ordinal) AS shift FROM numbered "
            "  GROUP BY threshold) "
            "SELECT s.k, CAST(s.k + coalesce(t.shift, 0) AS BIGINT) AS __offset "
            f"FROM (SELECT rowid AS k FROM {data}) s "
            f"ASOF LEFT JOIN thresholds t ON s.k >= t.threshold) m WHERE {data}.rowid = m.k"
        )
    if options.remove_empty_rows and width:
        empty = " AND ".join(f"c{i} = ''" for i in range(width))
        cur.execute(f"DELETE FROM {data} WHERE {empty}")


def _guess_types(cur: duckdb.DuckDBPyConnection, table: str, width: int) -> list[SoqlType]:
    """One scan over the first rows: a type fits when every non-empty cell there fits it.

    Bounded by ``GUESS_SAMPLE_ROWS`` (see the module docstring): the regular expressions
    and casts cost more than the parse itself when run over every row of a large file.
    """
    date_re = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"
    number_start = r"^\s*[-+]?\.?[0-9]"
    point_re = r"(?i)^\s*point\s*\(\s*[-+]?[0-9.]+\s+[-+]?[0-9.]+\s*\)\s*$"
    aggregates = []
    for i in range(width):
        c = f"c{i}"
        aggregates += [
            f"count(*) FILTER (WHERE {c} <> '')",
            f"count(*) FILTER (WHERE lower({c}) IN ('true', 'false'))",
            # A failing TRY_CAST is slow (several times a regexp test), and AND does not
            # short-circuit in a vectorised filter; CASE only casts the likely cells.
            f"count(*) FILTER (WHERE CASE WHEN regexp_matches({c}, {literal(number_start)}) "
            f"THEN isfinite(TRY_CAST({c} AS DOUBLE)) ELSE false END)",
            f"count(*) FILTER (WHERE CASE WHEN regexp_matches({c}, {literal(date_re)}) "
            f"THEN TRY_CAST({c} AS TIMESTAMP) IS NOT NULL ELSE false END)",
            f"count(*) FILTER (WHERE regexp_matches({c}, {literal(point_re)}))",
        ]
    sample = f"(SELECT * FROM {qtable(table)} LIMIT {GUESS_SAMPLE_ROWS})"
    counts = cur.execute(f"SELECT {', '.join(aggregates)} FROM {sample}").fetchone()
    assert counts is not None
    order = (SoqlType.CHECKBOX, SoqlType.NUMBER, SoqlType.CALENDAR_DATE, SoqlType.POINT)
    guessed = []
    for i in range(width):
        filled, *fits = counts[i * 5 : i * 5 + 5]
        kind = SoqlType.TEXT
        if filled:
            kind = next((t for t, n in zip(order, fits, strict=True) if n == filled), kind)
        guessed.append(kind)
    return guessed


def _split_raw(raw: str, delim: str, quote: str) -> list[str]:
    text = raw.lstrip("\r\n").rstrip("\r\n")
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delim, quotechar=quote))
    except csv.Error:
        return [text]
    cells: list[str] = []
    for row in rows:
        cells.extend(row)
    return cells


def _scalar(cur: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = cur.execute(sql).fetchone()
    return int(row[0]) if row else 0
