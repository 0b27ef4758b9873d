"""Type guesses in two scans (``ingest/guess.py``): the probe rows rule types out, the
sample decides; the answers must be the ones counting every test over the sample gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsmsyncd.server.soql_types import SoqlType
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
