"""A small output schema is written out as a table, a large one stays a view; the
two read the same, and a value that raises keeps the view's behaviour."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.storage import sql
from dsmsyncd.server.storage.output import TABLE_MAX_CELLS
from dsmsyncd.server.storage.rowstore import OutputColumnPlan, RowStore
from dsmsyncd.server.transforms import CompiledExpression
from tests.server.unit.test_rowstore import ID_NAME, load, number, ref, target, text

DATA = b"id,name\n1,a\nfoo,b\n3,\n,d\n5,e\n"


def kinds(path: Path, *names: str) -> list[str | None]:
    con = duckdb.connect(str(path))
    try:
        return [sql.relation_kind(con, name) for name in names]
    finally:
        con.close()


async def test_small_output_is_a_table_and_reads_as_the_view(tmp_path: Path) -> None:
    store = RowStore(tmp_path / "rows.duckdb", memory_limit="128MB", threads=2)
    parsed = await load(store, tmp_path, DATA)
    plan = [number("id", "c0"), text("name", "c1")]
    rows = parsed.total_rows
    assert rows == 5
    table = await store.materialize("in1", "out_table", plan, rows)
    view = await store.materialize("in1", "out_view", plan)  # rows unknown
    large = await store.materialize("in1", "out_large", plan, TABLE_MAX_CELLS // 2 + 1)
    assert table == view == large
    assert (table.total_rows, table.error_rows, table.column_error_counts) == (5, 1, [1, 0])
    for errors_only in (False, True):
        pages = [
            await store.rows_page(out, plan, 0, 10, inputs=ref(parsed), errors_only=errors_only)
            for out in ("out_table", "out_view")
        ]
        assert pages[0] == pages[1]
        exports = [
            b"".join(
                [c async for c in store.export_csv(out, plan, inputs=ref(parsed), errors_only=True)]
            )
            for out in ("out_table", "out_view")
        ]
        assert exports[0] == exports[1]
        assert (
            exports[0]
            == b'id,name,errors\nfoo,b,"id: Unable to convert ""foo"" from text to number"\n'
        )
    for column, expected in ((0, {"reason": "null", "where": 3}), (1, {"valid": True})):
        checks = [await store.validate_row_identifier(o, column) for o in ("out_table", "out_view")]
        assert checks[0] == checks[1]
        assert expected.items() <= checks[0].items()
    applied = await store.apply(target("out_table"), ID_NAME, "update", None)
    assert (applied.created, applied.errors) == (4, 1)
    store.close()
    path = tmp_path / "rows.duckdb"
    assert kinds(path, "out_table", "out_view", "out_large") == ["TABLE", "VIEW", "VIEW"]


def raising(field: str, sql_text: str) -> OutputColumnPlan:
    """A transform whose value raises on a cell that is not an integer, with no error."""
    compiled = CompiledExpression(
        f"CAST({sql_text} AS INTEGER)", "NULL", SoqlType.NUMBER, {}, (field,)
    )
    return OutputColumnPlan(field, compiled)


async def test_a_value_that_raises_keeps_the_view(tmp_path: Path) -> None:
    """The table would fail where the view counts; the output becomes the view."""
    store = RowStore(tmp_path / "rows.duckdb", memory_limit="128MB", threads=2)
    parsed = await load(store, tmp_path, DATA)
    plan = [raising("id", "c0"), text("name", "c1")]
    small = await store.materialize("in1", "out_small", plan, parsed.total_rows)
    view = await store.materialize("in1", "out_view", plan)
    assert small == view
    assert (small.total_rows, small.error_rows, small.column_error_counts) == (5, 0, [0, 0])
    for out in ("out_small", "out_view"):
        with pytest.raises(
            duckdb.ConversionException, match="Could not convert string 'foo' to INT32"
        ):
            await store.rows_page(out, plan, 0, 10, inputs=ref(parsed), errors_only=False)
    store.close()
    assert kinds(tmp_path / "rows.duckdb", "out_small", "out_view") == ["VIEW", "VIEW"]


async def test_a_random_output_is_a_table_at_any_size(tmp_path: Path) -> None:
    """Every read of a random value must agree, so it is written out even when large."""
    store = RowStore(tmp_path / "rows.duckdb", memory_limit="128MB", threads=2)
    await load(store, tmp_path, DATA)
    compiled = CompiledExpression(
        "random()", "NULL", SoqlType.NUMBER, {"function_name": "random_number"}, ()
    )
    plan = [OutputColumnPlan("r", compiled)]
    await store.materialize("in1", "out_random", plan)
    store.close()
    assert kinds(tmp_path / "rows.duckdb", "out_random") == ["TABLE"]
