"""The reference reading of a delimited file: every record in order, each one accounted for.

DuckDB's parallel CSV reader is fast but, on malformed input, not faithful: an
unterminated quote early in a large file makes one thread swallow the rest of its part
while the others restart mid-file, so hundreds of thousands of rows vanish behind one
misplaced row error. ``ingest`` therefore checks DuckDB's result against this module and
lets it decide whenever the cheap checks (``checks.py``) leave any doubt.

The census reads the file once, sequentially, with Python's C ``csv`` reader in strict
mode, which frames records exactly as DuckDB's strict mode does on well-formed input:
quotes open a field only at its start, a doubled quote is a quote, a newline inside
quotes belongs to the cell, text after a closing quote makes the row malformed up to the
end of its line. Every data record is one of:

* blank (an empty line, skipped as DuckDB skips it, but it keeps its ordinal; with
  ``trim_whitespace``, a line of blanks alone too, in a file of several columns:
  ``is_blank_record``);
* good: exactly ``width`` cells;
* a row error, written to ``errors_out`` with its ordinal, the physical line it starts
  on, its raw text (the first ``RAW_KEEP`` characters) and a message saying what is
  wrong, where, and how to fix it. An unterminated quote makes one row error of the rest
  of the file and says how many lines that is.

Memory stays bounded: a record longer than ``MAX_ROW_CHARS`` is never held whole; the
reader stops feeding it to ``csv`` and skips to its end with a small quote-state scanner.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import chain
from pathlib import Path
from typing import IO, Any, Protocol

__all__ = [
    "MAX_ROW_CHARS",
    "Census",
    "InvalidEncoding",
    "RowWriter",
    "is_blank_record",
    "take_census",
]

# One row (all its cells, separators and quoted newlines) may not be longer than this;
# it equals DuckDB's default ``max_line_size`` (in bytes), so DuckDB rejects no row the
# census keeps unless the row has multi-byte characters (the census then decides).
MAX_ROW_CHARS = 2_000_000
# Characters of a bad row's text kept for its row error.
RAW_KEEP = 16_384
# Characters read at a time when a physical line is very long.
_PIECE = 1 << 20

# The csv module's own limit (131,072 characters per cell) would cut legitimate cells
# shorter than a row may be; records are bounded by MAX_ROW_CHARS below instead.
if csv.field_size_limit() <= MAX_ROW_CHARS:
    csv.field_size_limit(MAX_ROW_CHARS + 1)

_SURROGATE = re.compile("[\udc80-\udcff]")


class RowWriter(Protocol):
    """Where rows go: a ``csv.writer``, or anything with its ``writerow``."""

    def writerow(self, row: Iterable[Any], /) -> Any: ...


class InvalidEncoding(Exception):
    """The file has bytes its encoding cannot decode (raised only when not ``checking``)."""


class _Oversized(Exception):
    """The record being read grew past ``MAX_ROW_CHARS``."""


@dataclass(frozen=True)
class Census:
    records: int  # data records, blank ones included: ordinals run 0 .. records - 1
    blank: int
    good: int
    errors: int
    lines: int  # physical lines of the whole file, header included


def is_blank_record(row: list[str], trim_whitespace: bool) -> bool:
    """Whether a record is a blank line: no cell at all, or (when blanks are trimmed) one
    cell of blanks alone. A record of several cells is never blank (``" , "`` is a row
    of empty cells, which ``remove_empty_rows`` decides about)."""
    return not row or (trim_whitespace and len(row) == 1 and not row[0].strip())


def take_census(
    path: Path,
    *,
    py_codec: str,
    separator: str,
    quote: str,
    header_count: int,
    width: int,
    trim_whitespace: bool = True,
    errors_out: RowWriter,
    good_out: RowWriter | None = None,
    checking: bool = False,
) -> Census:
    """Read every record of ``path``; write row errors to ``errors_out`` (a csv writer).

    ``good_out`` (a csv writer), if given, receives the good rows in order: a clean file
    DuckDB can load without any doubt. Without ``checking``, a byte the codec cannot
    decode raises ``InvalidEncoding``; with it, the rows holding such bytes are row
    errors of their own.
    """
    errors = "surrogateescape" if checking else "strict"
    with path.open(encoding=py_codec, errors=errors, newline="") as fh:
        try:
            scan = _Scan(fh, separator, quote, width, errors_out, good_out, checking)
            return scan.run(header_count, trim_whitespace)
        except UnicodeDecodeError as exc:
            raise InvalidEncoding(str(exc)) from exc


class _Scan:
    """One pass over an open file; see ``take_census``."""

    def __init__(
        self,
        fh: IO[str],
        separator: str,
        quote: str,
        width: int,
        errors_out: RowWriter,
        good_out: RowWriter | None,
        checking: bool,
    ) -> None:
        self.fh = fh
        self.separator, self.quote, self.width = separator, quote, width
        self.errors_out, self.good_out, self.checking = errors_out, good_out, checking
        self.line = 0  # physical lines handed to the reader so far
        self.kept: list[str] = []  # the pieces of the record being read
        self.chars = 0

    def run(self, header_count: int, trim_whitespace: bool) -> Census:
        """Every record in order; blank lines before and between the header rows are not
        header rows (as ``ingest`` reads the header). A line of blanks alone is a blank
        line in the data only when the file has several columns: with one column it is
        a row with an empty cell, as DuckDB reads it."""
        blank_data = trim_whitespace and self.width > 1
        ordinal = blank = good = errors = 0
        headers_left = header_count
        reader = self._reader()
        width, kept = self.width, self.kept
        good_out = self.good_out
        while True:
            kept.clear()
            start = self.line + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if headers_left:  # the header rows were read (and checked) before
                    headers_left -= 1
                    continue
                self._error(ordinal, start, self._malformed(start, str(exc)))
                ordinal, errors = ordinal + 1, errors + 1
                continue
            except _Oversized:
                problem = self._skip_oversized(start)
                reader = self._reader()
                if not headers_left:
                    self._error(ordinal, start, problem)
                    ordinal, errors = ordinal + 1, errors + 1
                else:
                    headers_left -= 1
                continue
            if headers_left:
                if not is_blank_record(row, trim_whitespace):
                    headers_left -= 1
                continue
            if is_blank_record(row, blank_data):
                blank += 1
            elif self.checking and any(_SURROGATE.search(piece) for piece in kept):
                self._error(ordinal, start, ("invalid_encoding", len(row), _ENCODING_HINT))
                errors += 1
            elif len(row) == width:
                good += 1
                if good_out is not None:
                    good_out.writerow(row)
            else:
                kind = "too_short" if len(row) < width else "too_long"
                self._error(ordinal, start, (kind, len(row), self._count_hint(len(row))))
                errors += 1
            ordinal += 1
        return Census(ordinal, blank, good, errors, self.line)

    # -- reading ------------------------------------------------------------------------

    def _reader(self) -> Iterator[list[str]]:
        return csv.reader(
            self._lines(), delimiter=self.separator, quotechar=self.quote, strict=True
        )

    def _lines(self) -> Iterator[str]:
        """Physical lines for ``csv``, kept for the record's raw text, size-bounded."""
        readline, kept = self.fh.readline, self.kept
        while True:
            line = readline(_PIECE)
            if not line:
                return
            if len(line) == _PIECE and line[-1] not in "\r\n":
                line = self._long_line(line)
            if kept:
                self.chars += len(line)
            else:
                self.chars = len(line)
            kept.append(line)
            self.line += 1
            if self.chars > MAX_ROW_CHARS:
                raise _Oversized
            yield line

    def _long_line(self, line: str) -> str:
        """The rest of a physical line longer than ``_PIECE`` (up to the row limit)."""
        parts = [line]
        size = len(line)
        while size <= MAX_ROW_CHARS:
            piece = self.fh.readline(_PIECE)
            parts.append(piece)
            size += len(piece)
            if not piece or piece[-1] in "\r\n":
                break
        return "".join(parts)

    def _skip_oversized(self, start: int) -> tuple[str, int, str]:
        """Read past the rest of an over-long record; the row error it makes.

        The pieces ``csv`` already saw are scanned again from the record's start, then
        the file goes on piece by piece until the record ends; only the first
        ``RAW_KEEP`` characters stay in memory.
        """
        seen = list(self.kept)
        rest = iter(partial(self.fh.readline, _PIECE), "")
        state, outcome, size, last = _START, _CONTINUES, 0, ""
        self.line = start - 1
        for piece in chain(seen, rest):
            size += len(piece)
            last = piece
            ends_line = piece[-1] in "\r\n"
            self.line += ends_line
            if outcome == _CONTINUES:
                state, outcome = _advance(piece, state, self.separator, self.quote)
            if outcome == _ENDED or (outcome == _MALFORMED and ends_line):
                break
        else:
            self.line += last[-1:] not in ("\r", "\n", "")  # a last line without newline
            if state == _QUOTED:
                return ("unquoted_value", 0, _unterminated(start, self.line))
        fix = (
            "look for a quote that is never closed"
            if outcome == _MALFORMED
            else "shorten its longest cell, or upload the file with parse_source false to "
            "store it unparsed"
        )
        return (
            "line_too_long",
            0,
            f"the row is {size:,} characters long, over the limit of {MAX_ROW_CHARS:,} "
            f"characters per row: {fix}",
        )

    # -- row errors ---------------------------------------------------------------------

    def _malformed(self, start: int, reason: str) -> tuple[str, int, str]:
        if "unexpected end of data" in reason:
            return ("unquoted_value", 0, _unterminated(start, self.line))
        where = "" if self.line <= start else f" on line {self.line}"
        return (
            "unquoted_value",
            0,
            f"text follows the closing quote of a quoted cell{where}: quote the whole "
            f"cell and double each {self.quote} inside it",
        )

    def _count_hint(self, got: int) -> str:
        fix = (
            "add the missing cells (empty ones are fine)"
            if got < self.width
            else f"quote the cells that contain the separator {self.separator!r}"
        )
        cells = "cell" if got == 1 else "cells"
        return f"the row has {got} {cells} but the file has {self.width} columns: {fix}"

    def _error(self, ordinal: int, start: int, problem: tuple[str, int, str]) -> None:
        kind, got, message = problem
        raw = "".join(self.kept)
        if len(raw) > RAW_KEEP:
            raw = raw[:RAW_KEEP]
            message += f" (the first {RAW_KEEP:,} characters of the row are shown)"
        raw = raw.rstrip("\r\n")
        where = f"Line {start}" if self.line <= start else f"Lines {start}-{self.line}"
        self.errors_out.writerow(
            [ordinal, start, kind, self.width, got, raw, f"{where}: {message}"]
        )


_ENCODING_HINT = (
    "the row has bytes that are not valid in the file's encoding: set encoding in the "
    "parse options (for example latin1 or windows-1252)"
)


def _unterminated(start: int, end: int) -> str:
    return (
        f"a quoted cell is never closed, so the rest of the file ({end - start + 1:,} "
        "lines) reads as one broken row: close the quote, or double each quote inside a "
        "quoted cell"
    )


# The quote-state scanner for over-long records (strict RFC 4180, like the csv reader).
_START, _UNQUOTED, _QUOTED, _AFTER_QUOTE = range(4)
_CONTINUES, _ENDED, _MALFORMED = range(3)


def _advance(piece: str, state: int, separator: str, quote: str) -> tuple[int, int]:
    """Scan one piece from ``readline`` (a newline, if any, only at its end).

    Returns the state at the end and whether the record goes on, ended with this piece's
    newline, or became malformed (text after a closing quote: the line is its end).
    """
    body = len(piece.rstrip("\r\n")) if piece[-1:] in ("\r", "\n") else len(piece)
    has_newline = body < len(piece)
    i = 0
    while i < body:
        if state == _QUOTED:
            j = piece.find(quote, i, body)
            if j < 0:
                return _QUOTED, _CONTINUES  # a newline inside quotes belongs to the cell
            state, i = _AFTER_QUOTE, j + 1
        elif state == _AFTER_QUOTE:
            ch = piece[i]
            if ch == quote:
                state = _QUOTED
            elif ch == separator:
                state = _START
            else:
                return state, _MALFORMED
            i += 1
        elif state == _START:
            ch = piece[i]
            state = _QUOTED if ch == quote else _START if ch == separator else _UNQUOTED
            i += 1 if state != _UNQUOTED else 0
        else:
            j = piece.find(separator, i, body)
            if j < 0:
                i = body
            else:
                state, i = _START, j + 1
    if state == _QUOTED or not has_newline:
        return state, _CONTINUES
    return _START, _ENDED
