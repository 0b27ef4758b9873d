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

Offsets: DuckDB reports a rejected row by its line number (quoted newlines count as
one row) and keeps good rows in file order. Good rows take the ordinals the rejected
rows leave free, in order, which an ASOF join computes in one pass. Blank lines that
DuckDB skips can therefore shift later good rows down by one; offsets stay unique,
ordered and stable for a given file and options.
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
) -> ParsedInput:
    """Parse ``source_path`` into ``table`` and ``{table}__row_errors`` (blocking)."""
    check_table(table)
    options = options.resolved(content_type=content_type, filename=filename)
    head = _sniff(source_path)
    duck_encoding, py_codec, guessed = _choose_encoding(options.encoding, head)
    separator = options.column_separator or _sniff_separator(head.decode(py_codec, "replace"))
    headers = _header_cells(source_path, py_codec, separator, options)
    width = len(headers)
    rejects = _load_stage(cur, source_path, table, width, separator, options, duck_encoding)
    if guessed and duck_encoding == "utf-8" and _has_invalid_encoding(cur, rejects):
        # The bounded sniff saw valid UTF-8 but a later part of the file is not.
        cur.execute(f"DROP TABLE IF EXISTS {rejects}")
        rejects = _load_stage(cur, source_path, table, width, separator, options, "latin-1")
    _build_tables(cur, table, rejects, width, separator, options)
    guessed_types = _guess_types(cur, table, width)
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


def _load_stage(
    cur: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    width: int,
    separator: str,
    options: ParseOptions,
    encoding: str,
) -> str:
    """Read the data rows into ``{table}__stage`` in file order; returns the rejects table."""
    stage = qtable(table + "__stage")
    rejects = f"{table}__rejects"
    cols = ", ".join(f"{literal(f'c{i}')}: 'VARCHAR'" for i in range(width))
    cur.execute(f"DROP TABLE IF EXISTS {stage}")
    try:
        cur.execute(
            f"CREATE TABLE {stage} AS SELECT * FROM read_csv("
            f"{literal(str(path))}, columns={{{cols}}}, header=false, "
            f"skip={options.header_count}, delim={literal(separator)}, "
            f"quote={literal(options.quote_char)}, escape={literal(options.quote_char)}, "
            f"auto_detect=false, strict_mode=true, ignore_errors=true, store_rejects=true, "
            f"rejects_table={literal(rejects)}, rejects_scan={literal(rejects + '_scan')}, "
            f"nullstr={literal(_NULL_SENTINEL)}, encoding={literal(encoding)})"
        )
    except duckdb.Error as exc:
        cur.execute(f"DROP TABLE IF EXISTS {stage}")
        first_line = str(exc).strip().splitlines()[0]
        raise UnparsableFile(
            f"The file cannot be parsed as delimited text ({first_line}). Check "
            "column_separator, quote_char and encoding in the parse options."
        ) from exc
    return rejects


def _has_invalid_encoding(cur: duckdb.DuckDBPyConnection, rejects: str) -> bool:
    found = cur.execute(
        f"SELECT count(*) FROM {qtable(rejects)} WHERE error_type = 'INVALID ENCODING'"
    ).fetchone()
    return bool(found and found[0])


def _build_tables(
    cur: duckdb.DuckDBPyConnection,
    table: str,
    rejects: str,
    width: int,
    separator: str,
    options: ParseOptions,
) -> None:
    errors = qtable(table + "__row_errors")
    stage = qtable(table + "__stage")
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
    cells = [f"c{i}" for i in range(width)]
    trimmed = [
        f"trim(s.{c}, {literal(_TRIM_CHARS)})" if options.trim_whitespace else f"s.{c}"
        for c in cells
    ]
    where = ""
    if options.remove_empty_rows:
        where = "WHERE NOT (" + " AND ".join(f"{t} = ''" for t in trimmed) + ")"
    select_cells = ", ".join(f"{t} AS {c}" for t, c in zip(trimmed, cells, strict=True))
    # Good row k (0-based, file order) takes the k-th ordinal not used by a rejected row.
    cur.execute(
        f"CREATE TABLE {qtable(table)} AS "
        "WITH numbered AS (SELECT ordinal, __offset - (ordinal - 1) AS threshold "
        f"  FROM (SELECT __offset, row_number() OVER (ORDER BY __offset) AS ordinal "
        f"        FROM {errors})), "
        "thresholds AS (SELECT threshold, max(ordinal) AS shift FROM numbered "
        "  GROUP BY threshold), "
        f"staged AS (SELECT rowid AS k, * FROM {stage}) "
        f"SELECT CAST(s.k + coalesce(t.shift, 0) AS BIGINT) AS __offset, {select_cells} "
        f"FROM staged s ASOF LEFT JOIN thresholds t ON s.k >= t.threshold {where}"
    )
    cur.execute(f"DROP TABLE {stage}")
    cur.execute(f"DROP TABLE IF EXISTS {qtable(rejects)}")
    cur.execute(f"DROP TABLE IF EXISTS {qtable(rejects + '_scan')}")


def _guess_types(cur: duckdb.DuckDBPyConnection, table: str, width: int) -> list[SoqlType]:
    """One scan over all rows: a type fits a column when every non-empty cell fits it."""
    date_re = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"
    point_re = r"(?i)^\s*point\s*\(\s*[-+]?[0-9.]+\s+[-+]?[0-9.]+\s*\)\s*$"
    aggregates = []
    for i in range(width):
        c = f"c{i}"
        aggregates += [
            f"count(*) FILTER (WHERE {c} <> '')",
            f"count(*) FILTER (WHERE lower({c}) IN ('true', 'false'))",
            f"count(*) FILTER (WHERE isfinite(TRY_CAST({c} AS DOUBLE)))",
            f"count(*) FILTER (WHERE regexp_matches({c}, {literal(date_re)}) "
            f"AND TRY_CAST({c} AS TIMESTAMP) IS NOT NULL)",
            f"count(*) FILTER (WHERE regexp_matches({c}, {literal(point_re)}))",
        ]
    counts = cur.execute(f"SELECT {', '.join(aggregates)} FROM {qtable(table)}").fetchone()
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
