"""Cheap checks of DuckDB's row count: when they hold, no record of the file was lost.

``ingest`` compares the rows DuckDB kept (when it rejected none) with what a plain
reading of the file says there must be. Both checks read the file once, at a fraction
of the cost of parsing it, and never hold more than a chunk or a line in memory:

* ``physical_lines``: without quoted newlines or blank lines, every line after the
  header is one row. A byte count of newlines, about 40 ms per 100 MB.
* ``quoted_records``: with quoted newlines, records end at newlines outside quotes.
  Counting quotes line by line frames records as RFC 4180 does as long as every quote
  opens, closes or doubles inside a quoted cell; a stray quote in an unquoted cell
  (``5'11"``) makes the count differ, and the census settles it. About 0.3 s per
  million lines, run only when the first check fails without rejects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import islice
from pathlib import Path
from typing import AnyStr

__all__ = [
    "INLINE_BYTES",
    "LineShapes",
    "LinesAlongside",
    "line_shapes",
    "physical_lines",
    "quoted_records",
]

_COUNT_CHUNK = 1 << 20
# A file up to this size is counted in the parse's own thread (see ``LinesAlongside``).
INLINE_BYTES = 64 * 1024
_LINE_PIECE = 1 << 20
# DuckDB encodings in which a byte 0x0A or a quote byte only ever stands for itself.
_ASCII_COMPATIBLE = ("utf-8", "latin-1")


def physical_lines(path: Path, encoding: str, py_codec: str) -> int:
    """Lines in the file, not counting blank lines at its very end (the cheap check).

    For encodings where a newline is the byte 0x0A and nothing else contains it (UTF-8,
    Latin-1), this counts bytes without decoding: about 40 ms per 100 MB.
    """
    count, last = 0, ""
    if encoding in _ASCII_COMPATIBLE:
        buffer, tail = bytearray(_COUNT_CHUNK), b""
        with path.open("rb", buffering=0) as fh:
            while size := fh.readinto(buffer):
                count += buffer.count(b"\n", 0, size)
                tail = (tail + buffer[max(0, size - 64) : size])[-64:]
        last = tail.decode("latin-1")
    else:
        with path.open(encoding=py_codec, errors="replace", newline="") as fh:
            while text := fh.read(_COUNT_CHUNK):
                count += text.count("\n")
                last = (last + text[-64:])[-64:]
    if last and not last.endswith("\n"):
        count += 1  # a last line without a newline
    trailing = re.search(r"(?:\r?\n)+\Z", last)
    if trailing:  # "x\n\n\n": the first newline ends a line, the others are blank lines
        count -= trailing.group(0).count("\n") - 1
    return count


class LinesAlongside:
    """``physical_lines`` of a file, counted in a thread of its own while DuckDB loads it.

    The count is needed only once the load is done, and DuckDB's CSV reader leaves part
    of the machine idle; counting alongside takes the count's read of the file off the
    parse's wall time (issue 9). Used as a context manager: leaving it waits for the
    count (tens of milliseconds) so no thread outlives the parse.

    A file up to ``INLINE_BYTES`` is counted when the count is asked for, in the
    parse's thread: its count takes microseconds, and a thread started and joined per
    file cost more than that (drop folders send thousands of ~1 KB files; issue 9).
    """

    def __init__(self, path: Path, encoding: str, py_codec: str) -> None:
        self._reading = (path, encoding, py_codec)
        self._pool: ThreadPoolExecutor | None = None
        self._count: Future[int] | None = None
        if path.stat().st_size > INLINE_BYTES:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="dsmsyncd-lines")
            self._count = self._pool.submit(physical_lines, *self._reading)

    def lines(self, path: Path, encoding: str, py_codec: str) -> int:
        """The count for this reading: the one running alongside, if it is the same."""
        if self._count is not None and (path, encoding, py_codec) == self._reading:
            return self._count.result()
        return physical_lines(path, encoding, py_codec)

    def __enter__(self) -> LinesAlongside:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


@dataclass(frozen=True)
class LineShapes:
    """What a small file's bytes say about its lines, beyond their count.

    ``lone_cr``: a carriage return without a line feed after it. DuckDB ends a record
    there too, so the file may hold more records than ``physical_lines`` counts.
    ``maybe_empty``: a data line holds nothing but separators, quotes and blanks. When
    every line is one record, those are the only lines a row of empty cells can come
    from; without any, there is no empty row to remove.
    """

    lone_cr: bool
    maybe_empty: bool


def line_shapes(
    path: Path, encoding: str, separator: str, quote: str, header_lines: int
) -> LineShapes | None:
    """``LineShapes`` of a file up to ``INLINE_BYTES`` in an ASCII-compatible encoding,
    its data lines being those after the first ``header_lines``; else None."""
    if encoding not in _ASCII_COMPATIBLE or path.stat().st_size > INLINE_BYTES:
        return None
    try:
        marks = separator.encode(encoding) + quote.encode(encoding)
    except UnicodeEncodeError:
        return None
    data = path.read_bytes()
    lone_cr = data.count(b"\r") != data.count(b"\r\n")
    lines = data.rstrip(b"\r\n").split(b"\n")[header_lines:]
    blank = b" \t\r\n\x0b\x0c" + marks  # every blank that trimming removes, too
    return LineShapes(lone_cr, any(not line.strip(blank) for line in lines))


def quoted_records(path: Path, encoding: str, py_codec: str, quote: str, header_lines: int) -> int:
    """Non-blank records after the first ``header_lines`` lines, framed by quote parity.

    Lines are read at most ``_LINE_PIECE`` characters at a time; a longer line counts as
    several records, which only sends the file to the census. -1 if ``quote`` cannot be
    written in the encoding (no record count can match it).
    """
    if encoding in _ASCII_COMPATIBLE:
        try:
            q = quote.encode(encoding)
        except UnicodeEncodeError:
            return -1
        with path.open("rb") as raw:
            pieces = iter(partial(raw.readline, _LINE_PIECE), b"")
            return _records(islice(pieces, header_lines, None), q, (b"\n", b"\r\n"))
    with path.open(encoding=py_codec, errors="replace", newline="") as text:
        lines = iter(partial(text.readline, _LINE_PIECE), "")
        return _records(islice(lines, header_lines, None), quote, ("\n", "\r\n"))


def _records(lines: Iterable[AnyStr], quote: AnyStr, blanks: tuple[AnyStr, AnyStr]) -> int:
    records = 0
    inside = continued = False
    for line in lines:
        if quote in line and line.count(quote) % 2:
            inside = not inside
        if inside:
            continued = True
        elif continued or line not in blanks:
            records += 1
            continued = False
    return records + inside  # a quote still open at the end: one last (broken) record
