"""Type guesses in two scans (``ingest/guess.py``): the probe rows rule types out, the
sample decides; the answers must be the ones counting every test over the sample gives."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pytest

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.storage.ingest import guess
from dsmsyncd.server.storage.rowstore import RowStore
from tests.server.unit.ingesting import ingest_bytes


@pytest.fixture(autouse=True)
def two_probe_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Probe the first two rows only, so that a small file has cells after the probe."""
    monkeypatch.setattr("dsmsyncd.server.storage.ingest.guess.GUESS_PROBE_ROWS", 2)


async def guessed(store: RowStore, tmp_path: Path, rows: list[str]) -> list[SoqlType]:
    parsed = await ingest_bytes(store, tmp_path, "\n".join(rows).encode() + b"\n")
    return [c.guessed_type for c in parsed.columns]


async def test_guess_counts_the_cells_after_the_probe(store: RowStore, tmp_path: Path) -> None:
    """Every type fits the probe rows of its column; one later cell refuses it."""
    rows = [
        "flag,n,when,p",
        "true,1,2020-01-02,POINT (1 2)",
        "false,2.5,2020-01-03T04:05,point(3 4)",
        "true,-3,2020-01-04,POINT (5 6)",
        "maybe,x,soon,nowhere",
    ]
    assert await guessed(store, tmp_path, rows) == [SoqlType.TEXT] * 4
    rows[-1] = "false,4,2020-01-05,POINT (7 8)"
    assert await guessed(store, tmp_path, rows) == [
        SoqlType.CHECKBOX,
        SoqlType.NUMBER,
        SoqlType.CALENDAR_DATE,
        SoqlType.POINT,
    ]


async def test_guess_columns_blank_in_the_probe(store: RowStore, tmp_path: Path) -> None:
    """Blank probe cells rule nothing out; a column blank throughout is text."""
    rows = ["flag,n,none,mixed", ",,,", ",,,", "true,1,,true", "false,2,,7"]
    assert await guessed(store, tmp_path, rows) == [
        SoqlType.CHECKBOX,
        SoqlType.NUMBER,
        SoqlType.TEXT,
        SoqlType.TEXT,
    ]


async def test_guess_type_refused_in_the_probe_stays_refused(
    store: RowStore, tmp_path: Path
) -> None:
    """A number cell in the probe rules checkbox out even if later cells are booleans;
    the first type that every cell fits wins."""
    rows = ["a,b", "1,2020-01-02", "true,2020-01-03", "false,2020-01-04"]
    assert await guessed(store, tmp_path, rows) == [SoqlType.TEXT, SoqlType.CALENDAR_DATE]


# Cells that test the Python judgement of a small table (``_guess_small``) at its edges:
# signs, exponents, lengths around the short-text limit, whitespace RE2 and Python
# disagree on, line breaks, case folding and digits beyond ASCII.
_CELLS = {
    "number": [
        "1", "-2", "3.5", "+4", ".5", "1.", "1e3", "1E-2", " 7", "7 ", "-0", "00012", "1,000",
        "\t5", "\v5", "\x1c5", "5\n", "1234567890123456789", "12345678901234567890",
        "0.123456789012345678", "0.1234567890123456789", "-123456789012345678.5",
        "\u0661\u0662\u0663", "\u00a05", "1.5.2", "-", "NaN", "inf",
    ],
    "checkbox": ["true", "FALSE", "True", " true", "yes", "true\n", "\uff54rue", "tru\u0065"],
    "date": [
        "2020-01-02", "2020-13-45", "2020-01-02T03:04", "2020-01-02 03:04:05.123",
        "2020-1-2", "2020-01-02\n", "2020-01-02T03:04:05Z", "\u0662\u0660\u0662\u0660-01-02",
    ],
    "point": [
        "POINT (1 2)", "point(1.5 -2)", "POINT(1)", "\vpoint (1 2)", "POINT (1 2)\n",
        "\uff30\uff2f\uff29\uff2e\uff34 (1 2)", "po\u0131nt (1 2)", "PO\u0130NT (1 2)",
        "\x1cPOINT (1 2)",
    ],
    "text": ["abc", "row-1", "", "", "\u00e91", "a\nb", "\n", " "],
}  # fmt: skip


def _random_column(rng: random.Random, rows: int) -> list[str | None]:
    """Mostly one family of cells, some blanks and nulls, now and then an outlier."""
    family = rng.choice(list(_CELLS))
    pick = list(_CELLS[family][:4]) if rng.random() < 0.5 else list(_CELLS[family])
    cells: list[str | None] = []
    for _ in range(rows):
        roll = rng.random()
        if roll < 0.1:
            cells.append("" if roll < 0.07 else None)
        elif roll < 0.15:
            cells.append(rng.choice(rng.choice(list(_CELLS.values()))))
        else:
            cells.append(rng.choice(pick))
    return cells


def test_small_table_guesses_as_the_sql_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random small tables: the guess of a table no longer than the probe (judged in
    Python where sure) is the guess of the scans over the sample, which count every
    test in SQL."""
    monkeypatch.setattr(guess, "GUESS_PROBE_ROWS", 1_000)  # every table here is "small"
    rng = random.Random(9)
    con = duckdb.connect()
    compared = 0
    for n in range(250):
        width, rows = rng.randint(1, 6), rng.choice([1, 2, 5, 30, 200])
        columns = [_random_column(rng, rows) for _ in range(width)]
        table = f"t{n}"
        con.execute(f"CREATE TABLE {table} ({', '.join(f'c{i} VARCHAR' for i in range(width))})")
        marks = ", ".join("?" * width)
        con.executemany(f"INSERT INTO {table} VALUES ({marks})", list(zip(*columns, strict=True)))
        small = guess.guess_types(con, table, width, rows=rows)
        assert small == guess.guess_types(con, table, width), (n, columns)
        compared += width
    assert compared > 700
