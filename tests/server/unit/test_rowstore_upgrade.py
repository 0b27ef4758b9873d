"""A data directory from before numbers were decimals opens, converted, and serves."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dsmsyncd.server.soql_types import NUMBER_SQL_TYPE, SoqlType
from dsmsyncd.server.storage import soda_format
from dsmsyncd.server.storage.datasets import DatasetRef
from dsmsyncd.server.storage.rowstore import RowStore
from dsmsyncd.server.storage.soql import SelectedColumn, TranslatedQuery


async def test_double_columns_become_exact_decimals_on_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rows.duckdb"
    old = duckdb.connect(str(path))
    old.execute('CREATE TABLE ds (__sid BIGINT, "n" DOUBLE, "t" VARCHAR)')
    old.execute(
        "INSERT INTO ds VALUES (1, 0.30000000000000004, 'a'), (2, 12345678901234567, 'b'), "
        "(3, 1e30, 'c'), (4, NULL, 'd'), (5, 2.5, 'e')"
    )
    old.close()
    store = RowStore(path, memory_limit="128MB", threads=1)
    try:
        fields = [("n", SoqlType.NUMBER), ("t", SoqlType.TEXT)]
        query = TranslatedQuery(
            [SelectedColumn(name, f'"{name}"', kind) for name, kind in fields], None, [], 10, 0
        )
        rows = await store.dataset_rows(
            DatasetRef("ds", fields), query, lambda rows: soda_format.json_rows(rows, fields)
        )
    finally:
        store.close()
    assert rows == [
        {"n": "0.30000000000000004", "t": "a"},
        {"n": "12345678901234568", "t": "b"},  # the double held this, not ...567
        {"t": "c"},  # beyond 20 integer digits: no exact decimal (JSON rows omit nulls)
        {"t": "d"},
        {"n": "2.5", "t": "e"},
    ]
    assert "table ds column n: 1 numbers beyond the decimal range became null" in caplog.text
    check = duckdb.connect(str(path))
    [(kind,)] = check.execute(
        "SELECT data_type FROM duckdb_columns() WHERE table_name = 'ds' AND column_name = 'n'"
    ).fetchall()
    check.close()
    assert kind == NUMBER_SQL_TYPE
