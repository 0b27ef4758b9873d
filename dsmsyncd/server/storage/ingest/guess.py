"""Guessing each parsed column's SoQL type from the first rows of its input table.

Type guesses only shape the first output schema, so they look at the first
``GUESS_SAMPLE_ROWS`` rows. A type fits a column when every non-empty cell of those
rows fits it; the first fitting type of checkbox, number, calendar date and point wins,
else the column is text. A column whose later rows do not fit the guess shows those
cells as errors in the output, which is how the hosted service behaves too.

Counting every test over every cell of the sample cost about 0.2 s of CPU on a
flights-sized file (issue 9), mostly on tests that cannot win: a column of numbers
never needs its date and point tests, and a column of codes needs none. So a first scan
runs every test over the first ``GUESS_PROBE_ROWS`` rows of the sample only, and drops
for each column every type that a cell there already refuses. That cell is in the
whole sample too, so the type could not have won: the second scan counts over the whole
sample only the tests still standing, and the guesses are the ones counting everything
would give.

A table no longer than the probe (a small file) is read once into Python instead, and
each test is answered there where Python is sure to answer as the SQL does (see
``_VERDICTS``); only what stays unsure is counted in SQL, the same way.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence

import duckdb

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.storage.sql import literal
from dsmsyncd.server.storage.sql import table as qtable
from dsmsyncd.server.transforms import numbers

__all__ = ["GUESS_SAMPLE_ROWS", "guess_types"]

# Rows that type guessing looks at; see the module docstring.
GUESS_SAMPLE_ROWS = 50_000
# Rows of the first scan, which rules types out before the sample is counted.
GUESS_PROBE_ROWS = 1_000
# Columns counted per statement: DuckDB's planning time grows faster than linearly
# with the aggregates of one statement (1,000 columns took minutes in one).
GUESS_BATCH = 32

_DATE_RE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"
_NUMBER_START = r"^\s*[-+]?\.?[0-9]"
_POINT_RE = r"(?i)^\s*point\s*\(\s*[-+]?[0-9.]+\s+[-+]?[0-9.]+\s*\)\s*$"

# The candidate types in the order they win, each with the SQL test of one cell.
# A failing TRY_CAST is slow (several times a regexp test), and AND does not
# short-circuit in a vectorised filter; CASE only casts the likely cells.
_TESTS: dict[SoqlType, Callable[[str], str]] = {
    SoqlType.CHECKBOX: lambda c: f"lower({c}) IN ('true', 'false')",
    SoqlType.NUMBER: lambda c: (
        f"CASE WHEN regexp_matches({c}, {literal(_NUMBER_START)}) "
        f"THEN {numbers.text_fits_sql(c)} ELSE false END"
    ),
    SoqlType.CALENDAR_DATE: lambda c: (
        f"CASE WHEN regexp_matches({c}, {literal(_DATE_RE)}) "
        f"THEN TRY_CAST({c} AS TIMESTAMP) IS NOT NULL ELSE false END"
    ),
    SoqlType.POINT: lambda c: f"regexp_matches({c}, {literal(_POINT_RE)})",
}

Candidates = Sequence[SoqlType]


class _Verdict(enum.Enum):
    FITS = "fits"
    REFUSED = "refused"
    UNSURE = "unsure"


# The same tests in Python, for a cell where they are sure to answer as the SQL does.
# On ASCII text without line breaks, Python's ``\s`` and ``$`` match everything RE2's
# do and more (``\v``; before a final newline), so a pattern Python does not match
# RE2 does not either: a refusal is sure, a match is not. A cell with a line break
# or beyond ASCII (case folding, Unicode classes, multi-line anchors) is left unsure.
_NUMBER_START_PY = re.compile(_NUMBER_START)
_DATE_PY = re.compile(_DATE_RE)
_POINT_PY = re.compile(_POINT_RE)


def _refused_unless(pattern: re.Pattern[str]) -> Callable[[str], _Verdict]:
    return lambda cell: _Verdict.UNSURE if pattern.search(cell) else _Verdict.REFUSED


def _number_verdict(cell: str) -> _Verdict:
    if not _NUMBER_START_PY.search(cell):
        return _Verdict.REFUSED
    return _Verdict.FITS if numbers.text_surely_fits(cell) else _Verdict.UNSURE


_VERDICTS: dict[SoqlType, Callable[[str], _Verdict]] = {
    SoqlType.CHECKBOX: lambda c: (
        _Verdict.FITS if c.lower() in ("true", "false") else _Verdict.REFUSED
    ),
    SoqlType.NUMBER: _number_verdict,
    SoqlType.CALENDAR_DATE: _refused_unless(_DATE_PY),
    SoqlType.POINT: _refused_unless(_POINT_PY),
}


def guess_types(
    cur: duckdb.DuckDBPyConnection, table: str, width: int, *, rows: int | None = None
) -> list[SoqlType]:
    """The guessed type of each of the ``width`` columns ``c0 ..`` of ``table``.

    ``rows``, the table's row count if known: a table no longer than the probe (and the
    sample) is its own probe and sample, so one scan counts everything (a small file's
    second scan would repeat the first).
    """
    every: list[Candidates] = [list(_TESTS)] * width
    sample = f"(SELECT * FROM {qtable(table)} LIMIT {GUESS_SAMPLE_ROWS})"
    if (
        rows is not None
        and rows <= min(GUESS_PROBE_ROWS, GUESS_SAMPLE_ROWS)
        and width <= GUESS_BATCH
    ):
        return _guess_small(cur, qtable(table), width)
    if width <= GUESS_BATCH:
        return _guess(cur, sample, every)
    # A wide file's sample is read once into a temporary table for its batches.
    copy = qtable(f"{table}_guess_sample")
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {copy} AS SELECT * FROM {sample}")
    try:
        return _guess(cur, copy, every)
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {copy}")


def _guess_small(cur: duckdb.DuckDBPyConnection, table: str, width: int) -> list[SoqlType]:
    """A table no longer than the probe: its cells read once, judged in Python where
    the answer is sure, and only the columns left unsure counted in SQL.

    A small file's guess was one DuckDB scan of every test's regexes and casts (2.2 ms
    for 70 rows of two columns, issue 9); its columns of names or plain numbers are
    decided here without one. A type a cell refuses is dropped before the count, as
    the probe drops it; the first type still standing wins when every cell fits it.
    """
    names = ", ".join(f"c{i}" for i in range(width))
    rows = cur.execute(f"SELECT {names} FROM {table}").fetchall()
    decided: list[SoqlType | None] = []
    standing: list[Candidates] = []
    for column in zip(*rows, strict=True) if rows else [()] * width:
        kinds = _judged(column)
        decided.append(kinds if isinstance(kinds, SoqlType) else None)
        standing.append(kinds if not isinstance(kinds, SoqlType) else [])
    if not any(standing):
        return [kind or SoqlType.TEXT for kind in decided]
    counted = _chosen(_fitting(cur, table, standing))
    return [kind or counted[i] for i, kind in enumerate(decided)]


def _judged(column: Sequence[object]) -> SoqlType | list[SoqlType]:
    """A column's type if Python is sure of it, else the types still standing."""
    filled = [cell for cell in column if cell != "" and cell is not None]
    if not filled:
        return SoqlType.TEXT
    if not all(
        isinstance(c, str) and c.isascii() and "\n" not in c and "\r" not in c for c in filled
    ):
        return list(_TESTS)
    cells = [str(c) for c in filled]
    standing: list[SoqlType] = []
    for kind, verdict in _VERDICTS.items():
        verdicts = {verdict(cell) for cell in cells}
        if _Verdict.REFUSED in verdicts:
            continue
        if verdicts == {_Verdict.FITS}:
            if not standing:
                return kind  # every type before it refused
            standing.append(kind)  # it wins unless one before it fits: no later one can
            break
        standing.append(kind)
    return standing or SoqlType.TEXT


def _guess(cur: duckdb.DuckDBPyConnection, sample: str, every: list[Candidates]) -> list[SoqlType]:
    """Rule types out on the probe rows, then count what is left over the sample.

    The probe is the sample's own first rows (a LIMIT of the same relation), so a cell
    that refuses a type there is a cell of the sample.
    """
    probe = f"(SELECT * FROM {sample} LIMIT {GUESS_PROBE_ROWS})"
    standing = [kinds for _, kinds in _fitting(cur, probe, every)]
    return _chosen(_fitting(cur, sample, standing))


def _chosen(fitting: list[tuple[int, Candidates]]) -> list[SoqlType]:
    """The first type still fitting each column; text for an empty column or none."""
    return [kinds[0] if filled and kinds else SoqlType.TEXT for filled, kinds in fitting]


def _fitting(
    cur: duckdb.DuckDBPyConnection, rows: str, candidates: list[Candidates]
) -> list[tuple[int, Candidates]]:
    """Per column, its non-empty cells in ``rows`` and the candidates they all fit.

    A column without a non-empty cell keeps its candidates (nothing refused them).
    Columns without a candidate are not counted (0, no candidates).
    """
    fitting: list[tuple[int, Candidates]] = [(0, []) for _ in candidates]
    counted = [i for i, kinds in enumerate(candidates) if kinds]
    for start in range(0, len(counted), GUESS_BATCH):
        batch = counted[start : start + GUESS_BATCH]
        aggregates = [
            aggregate
            for i in batch
            for aggregate in [
                f"count(*) FILTER (WHERE c{i} <> '')",
                *(f"count(*) FILTER (WHERE {_TESTS[kind](f'c{i}')})" for kind in candidates[i]),
            ]
        ]
        counts = list(cur.execute(f"SELECT {', '.join(aggregates)} FROM {rows}").fetchone() or ())
        for i in batch:
            filled, fits = counts[0], counts[1 : 1 + len(candidates[i])]
            counts = counts[1 + len(candidates[i]) :]
            kinds = [kind for kind, n in zip(candidates[i], fits, strict=True) if n == filled]
            fitting[i] = (filled, kinds)
    return fitting
