"""Dataset tables of older versions gain the system timestamps when the store opens."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.storage import soda_format
from dsmsyncd.server.storage.datasets import DatasetRef
from dsmsyncd.server.storage.rowstore import RowStore
from dsmsyncd.server.storage.soql import translate_query
from dsmsyncd.server.transforms import ColumnInput


async def test_old_dataset_table_is_migrated_and_reads_system_fields(tmp_path: Path) -> None:
    path = tmp_path / "rows.duckdb"
    old = duckdb.connect(str(path))  # a data dir written before rows had timestamps
    old.execute('CREATE TABLE ds_abcd_1234 (__sid BIGINT, "name" VARCHAR)')
    old.execute("INSERT INTO ds_abcd_1234 VALUES (7, 'x'), (9, 'y')")
    old.execute("CREATE TABLE not_a_dataset (__sid BIGINT)")
    old.close()
    before = dt.datetime.now(dt.UTC)
    store = RowStore(path)
    try:
        query = translate_query(
            {"$select": ":id, :created_at = :updated_at AS same, name", "$order": ":id DESC"},
            {"name": ColumnInput('"name"', SoqlType.TEXT)},
        )
        fields = [(c.name, c.soql_type) for c in query.select]
        ref = DatasetRef("ds_abcd_1234", [("name", SoqlType.TEXT)])
        rows = await store.dataset_rows(ref, query, lambda r: soda_format.json_rows(r, fields))
        assert rows == [
            {":id": "row-000000000009", "same": True, "name": "y"},
            {":id": "row-000000000007", "same": True, "name": "x"},
        ]
        created = await store.dataset_rows(
            ref, translate_query({"$select": "min(:created_at)"}, {}), lambda r: r[0][0]
        )
        assert created >= before
    finally:
        store.close()
    check = duckdb.connect(str(path))
    columns = check.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE table_name IN "
        "('ds_abcd_1234', 'not_a_dataset') ORDER BY table_name, column_index"
    ).fetchall()
    check.close()
    assert columns == [
        ("ds_abcd_1234", "__sid"),
        ("ds_abcd_1234", "name"),
        ("ds_abcd_1234", "__created_at"),
        ("ds_abcd_1234", "__updated_at"),
        ("not_a_dataset", "__sid"),
    ]
