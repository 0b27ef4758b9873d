"""Malformed CSV files big enough for DuckDB to read them in parallel, and what they answer.

DuckDB splits a file of more than about 8 MB into parts read in parallel; on malformed
input its reader once dropped rows silently. The parser's own tests
(``tests/server/unit/test_ingest_malformed.py``) and the upload tests over HTTP
(``tests/server/http/test_http_sources_malformed.py``) use the same files and the same message.
"""

from __future__ import annotations

from pathlib import Path

from dsmsyncd.server.storage.ingest.census import RAW_KEEP

# Data lines of the big files: about 12 MB, past the size DuckDB reads in parallel.
BIG_LINES = 600_000
CELL_MB = 20


def unterminated_file(path: Path, lines: int = BIG_LINES) -> Path:
    """``lines`` data lines; the quote opened on data row 2 (line 3) is never closed."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write('id,name\n1,a\n2,"b\n')
        for i in range(3, lines + 1):
            out.write(f"{i},name {i:07d}\n")
    return path


def big_cell_file(path: Path, *, newlines: bool) -> Path:
    """A ``CELL_MB`` MB quoted cell on data row 2, between good rows."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write('id,body\n1,before\n2,"')
        piece = "x" * 99 + "\n" if newlines else "x" * 100
        for _ in range(CELL_MB * 10_000):
            out.write(piece)
        out.write('"\n3,after\n4,last\n')
    return path


def unterminated_message(first: int, last: int) -> str:
    return (
        f"Lines {first}-{last}: a quoted cell is never closed, so the rest of the file "
        f"({last - first + 1:,} lines) reads as one broken row: close the quote, or double "
        f"each quote inside a quoted cell (the first {RAW_KEEP:,} characters of the row "
        "are shown)"
    )
