"""Output tables, error pages, exports and dataset applies on a real DuckDB file."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.storage import soda_format, sql
from dsmsyncd.server.storage.datasets import DatasetRef
from dsmsyncd.server.storage.ingest import ParsedInput, ParseOptions
from dsmsyncd.server.storage.rowstore import (
    AppliedColumn,
    ApplyRefused,
    ApplyTarget,
    InputRef,
    OutputColumnPlan,
    RowStore,
)
from dsmsyncd.server.storage.soql import SelectedColumn, TranslatedQuery
from dsmsyncd.server.transforms import ColumnInput, CompiledExpression, compile_expression

_REVISION_IDS = itertools.count(1)


def target(output_table: str) -> ApplyTarget:
    """Apply ``output_table`` to dataset table ``ds`` as a revision of its own."""
    revision_id = next(_REVISION_IDS)
    return ApplyTarget("ds", output_table, revision_id=revision_id, task_set_id=revision_id)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RowStore]:
    rows = RowStore(tmp_path / "rows.duckdb", memory_limit="128MB", threads=2)
    yield rows
    rows.close()


def text(field: str, sql: str) -> OutputColumnPlan:
    compiled = CompiledExpression(sql, "NULL", SoqlType.TEXT, {}, (field,))
    return OutputColumnPlan(field, compiled)


def number(field: str, sql: str) -> OutputColumnPlan:
    """to_number over a text input column, failing like the real transform does."""
    error = (
        f"CASE WHEN {sql} <> '' AND TRY_CAST({sql} AS DOUBLE) IS NULL THEN "
        "json_object('type', 'type_conversion_failed', 'english', "
        f"'Unable to convert \"' || {sql} || '\" from text to number', "
        f"'data', json_object('value', {sql})) END"
    )
    compiled = CompiledExpression(
        f"TRY_CAST(NULLIF({sql}, '') AS DOUBLE)", error, SoqlType.NUMBER, {}, (field,)
    )
    return OutputColumnPlan(field, compiled)


async def load(store: RowStore, tmp_path: Path, data: bytes, table: str = "in1") -> ParsedInput:
    path = tmp_path / f"{table}.csv"
    path.write_bytes(data)
    [parsed] = await store.ingest_upload(
        path, table, ParseOptions(), content_type=None, filename=None
    )
    return parsed


def ref(parsed: ParsedInput, table: str = "in1") -> InputRef:
    return InputRef(table, {c.field_name: c.sql_name for c in parsed.columns})


async def prepared(
    store: RowStore, tmp_path: Path, data: bytes, name: str = "1"
) -> tuple[list[OutputColumnPlan], InputRef]:
    parsed = await load(store, tmp_path, data, f"in{name}")
    plan = [number("id", "c0"), text("name", "c1")]
    await store.materialize(f"in{name}", f"out{name}", plan)
    return plan, ref(parsed, f"in{name}")


ID_NAME = [AppliedColumn("id", SoqlType.NUMBER, 0), AppliedColumn("name", SoqlType.TEXT, 1)]


Select = list[tuple[str, str, SoqlType]]  # (SQL, output name, type)


async def read(
    store: RowStore,
    table: str,
    select: Select,
    where: str | None = None,
    order: list[str] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """A SODA read of ``table`` (JSON rows: nulls left out)."""
    columns = [SelectedColumn(name, sql, kind) for sql, name, kind in select]
    q = TranslatedQuery(columns, where, order or [], limit, offset)
    fields = [(name, kind) for _, name, kind in select]
    ref = DatasetRef(table, [(name, kind) for _, name, kind in select])
    return await store.dataset_rows(ref, q, lambda rows: soda_format.json_rows(rows, fields))


async def read_csv(
    store: RowStore, table: str, select: Select, order: list[str] | None = None
) -> bytes:
    columns = [SelectedColumn(name, sql, kind) for sql, name, kind in select]
    q = TranslatedQuery(columns, None, order or [], 100, 0)
    ref = DatasetRef(table, [(name, kind) for _, name, kind in select])
    names = [name for _, name, _ in select]
    return b"".join([c async for c in store.dataset_csv(ref, q, names, export=False)])


async def all_rows(store: RowStore, table: str = "ds") -> list[dict[str, Any]]:
    select = [('"id"', "id", SoqlType.NUMBER), ('"name"', "name", SoqlType.TEXT)]
    return await read(store, table, select)


async def test_materialize_counts_errors_per_column(store: RowStore, tmp_path: Path) -> None:
    parsed = await load(store, tmp_path, b"a,b\n1,x\nfoo,y\n3,\nbar,z\n")
    assert parsed.total_rows == 4
    stats = await store.materialize("in1", "out1", [number("a", "c0"), text("b", "c1")])
    assert (stats.total_rows, stats.error_rows, stats.column_error_counts) == (4, 2, [2, 0])


async def test_materialize_with_compiled_transforms(store: RowStore, tmp_path: Path) -> None:
    parsed = await load(store, tmp_path, b"a,b\n1,x\nfoo,y\n")
    inputs = {c.field_name: ColumnInput(f'"{c.sql_name}"', SoqlType.TEXT) for c in parsed.columns}
    plan = [
        OutputColumnPlan("a", compile_expression("to_number(`a`)", inputs)),
        OutputColumnPlan("b", compile_expression("`b`", inputs)),
    ]
    stats = await store.materialize("in1", "out1", plan)
    assert (stats.error_rows, stats.column_error_counts) == (1, [1, 0])
    page = await store.rows_page("out1", plan, 0, 10, inputs=ref(parsed), errors_only=True)
    assert page[0]["row"][0]["error"]["inputs"] == {"a": {"ok": "foo"}}
    assert page[0]["row"][1] == {"ok": "y"}


async def test_rows_page_cells_and_error_inputs(store: RowStore, tmp_path: Path) -> None:
    plan, inputs = await prepared(store, tmp_path, b"id,name\n1,x\nfoo,y\n3,\n")
    page = await store.rows_page("out1", plan, 0, 10, inputs=inputs, errors_only=False)
    assert page[0] == {"offset": 0, "row": [{"ok": "1"}, {"ok": "x"}]}
    assert page[2] == {"offset": 2, "row": [{"ok": "3"}, {"ok": ""}]}
    error = page[1]["row"][0]["error"]
    assert error["inputs"] == {"id": {"ok": "foo"}}
    assert error["message"]["type"] == "type_conversion_failed"
    assert error["message"]["english"] == 'Unable to convert "foo" from text to number'
    assert page[1]["row"][1] == {"ok": "y"}
    assert len(await store.rows_page("out1", plan, 1, 1, inputs=inputs, errors_only=False)) == 1


async def test_rows_page_errors_only_and_by_column(store: RowStore, tmp_path: Path) -> None:
    parsed = await load(store, tmp_path, b"a,b\n1,2\nx,3\n4,y\nz,w\n")
    plan = [number("a", "c0"), number("b", "c1")]
    await store.materialize("in1", "out1", plan)
    inputs = ref(parsed)
    errors = await store.rows_page("out1", plan, 0, 10, inputs=inputs, errors_only=True)
    assert [e["offset"] for e in errors] == [1, 2, 3]
    in_b = await store.rows_page(
        "out1", plan, 0, 10, inputs=inputs, errors_only=True, column_index=1
    )
    assert [e["offset"] for e in in_b] == [2, 3]
    assert in_b[0]["row"][0] == {"ok": "4"}


async def test_export_csv_rows_and_error_rows(store: RowStore, tmp_path: Path) -> None:
    plan, inputs = await prepared(store, tmp_path, b'id,name\n1,"a, b"\nfoo,y\n')
    rows = b"".join(
        [c async for c in store.export_csv("out1", plan, inputs=inputs, errors_only=False)]
    )
    assert rows.decode() == 'id,name\n1,"a, b"\nfoo,y\n'
    errors = b"".join(
        [c async for c in store.export_csv("out1", plan, inputs=inputs, errors_only=True)]
    )
    assert errors.decode().splitlines() == [
        "id,name,errors",
        'foo,y,"id: Unable to convert ""foo"" from text to number"',
    ]


async def test_export_csv_streams_in_batches(store: RowStore, tmp_path: Path) -> None:
    data = b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(5000))
    plan, inputs = await prepared(store, tmp_path, data)
    chunks = [c async for c in store.export_csv("out1", plan, inputs=inputs, errors_only=False)]
    assert len(chunks) > 2
    assert b"".join(chunks).count(b"\n") == 5001


async def test_validate_row_identifier(store: RowStore, tmp_path: Path) -> None:
    await prepared(store, tmp_path, b"id,name\n1,a\n2,a\nbad,b\n", "1")
    assert await store.validate_row_identifier("out1", 0) == {"valid": True}
    assert await store.validate_row_identifier("out1", 1) == {
        "valid": False,
        "reason": "duplicate",
        "what": "a",
        "where": 1,
    }
    await prepared(store, tmp_path, b"id,name\n1,a\n,b\n1,c\n", "2")
    assert await store.validate_row_identifier("out2", 0) == {
        "valid": False,
        "reason": "null",
        "what": None,
        "where": 1,
    }


async def test_apply_update_without_row_identifier_appends(store: RowStore, tmp_path: Path) -> None:
    await prepared(store, tmp_path, b"id,name\n1,a\nbad,b\n2,c\n")
    first = await store.apply(target("out1"), ID_NAME, "update", None)
    assert (first.created, first.updated, first.errors, first.total_rows_after) == (2, 0, 1, 2)
    again = await store.apply(target("out1"), ID_NAME, "update", None)
    assert (again.created, again.total_rows_after) == (2, 4)
    assert await all_rows(store) == [{"id": "1", "name": "a"}, {"id": "2", "name": "c"}] * 2


async def test_apply_update_with_row_identifier_upserts(store: RowStore, tmp_path: Path) -> None:
    await prepared(store, tmp_path, b"id,name\n1,a\n2,b\n", "1")
    await store.apply(target("out1"), ID_NAME, "update", "id")
    await prepared(store, tmp_path, b"id,name\n2,old\n3,c\n2,new\n,nobody\n", "2")
    stats = await store.apply(target("out2"), ID_NAME, "update", "id")
    assert (stats.created, stats.updated, stats.deleted, stats.errors) == (1, 1, 0, 1)
    assert stats.total_rows_after == 3
    assert await all_rows(store) == [
        {"id": "1", "name": "a"},
        {"id": "2", "name": "new"},
        {"id": "3", "name": "c"},
    ]


async def test_apply_replace_makes_dataset_the_new_rows(store: RowStore, tmp_path: Path) -> None:
    await prepared(store, tmp_path, b"id,name\n1,a\n2,b\n", "1")
    await store.apply(target("out1"), ID_NAME, "update", None)
    await prepared(store, tmp_path, b"id,name\n9,z\n", "2")
    stats = await store.apply(target("out2"), ID_NAME, "replace", None)
    assert (stats.created, stats.deleted, stats.total_rows_after) == (1, 2, 1)
    assert await all_rows(store) == [{"id": "9", "name": "z"}]


async def test_apply_of_an_output_counted_clean_tests_no_row(
    store: RowStore, tmp_path: Path
) -> None:
    """``error_rows=0`` (the output schema counted no error rows) writes what the
    tested apply writes, with and without a row identifier."""
    await prepared(store, tmp_path, b"id,name\n1,a\n2,b\n", "1")
    clean = replace(target("out1"), error_rows=0)
    stats = await store.apply(clean, ID_NAME, "replace", None)
    assert (stats.created, stats.errors, stats.total_rows_after) == (2, 0, 2)
    await prepared(store, tmp_path, b"id,name\n2,new\n3,c\n", "2")
    stats = await store.apply(replace(target("out2"), error_rows=0), ID_NAME, "update", "id")
    assert (stats.created, stats.updated, stats.errors, stats.total_rows_after) == (1, 1, 0, 3)
    assert await all_rows(store) == [
        {"id": "1", "name": "a"},
        {"id": "2", "name": "new"},
        {"id": "3", "name": "c"},
    ]


async def test_apply_delete_by_row_identifier(store: RowStore, tmp_path: Path) -> None:
    await prepared(store, tmp_path, b"id,name\n1,a\n2,b\n3,c\n", "1")
    await store.apply(target("out1"), ID_NAME, "update", "id")
    await prepared(store, tmp_path, b"id,name\n2,\n3,\n7,\n", "2")
    stats = await store.apply(target("out2"), ID_NAME, "delete", "id")
    assert (stats.deleted, stats.created, stats.total_rows_after) == (2, 0, 1)
    assert await all_rows(store) == [{"id": "1", "name": "a"}]


async def test_apply_delete_without_row_identifier_refused(store: RowStore, tmp_path: Path) -> None:
    await prepared(store, tmp_path, b"id,name\n1,a\n")
    with pytest.raises(ApplyRefused, match="row identifier"):
        await store.apply(target("out1"), ID_NAME, "delete", None)


async def test_apply_unknown_row_identifier_refused(store: RowStore, tmp_path: Path) -> None:
    await prepared(store, tmp_path, b"id,name\n1,a\n")
    with pytest.raises(ApplyRefused, match="nope"):
        await store.apply(target("out1"), ID_NAME, "update", "nope")


async def test_apply_schema_change_keeps_surviving_columns(store: RowStore, tmp_path: Path) -> None:
    await prepared(store, tmp_path, b"id,name\n1,a\n2,b\n", "1")
    await store.apply(target("out1"), ID_NAME, "update", "id")
    parsed = await load(store, tmp_path, b"id,score\n2,10\n3,20\n", "in2")
    plan = [text("id", "c0"), number("score", "c1")]
    await store.materialize("in2", "out2", plan)
    assert parsed.total_rows == 2
    columns = [AppliedColumn("id", SoqlType.TEXT, 0), AppliedColumn("score", SoqlType.NUMBER, 1)]
    stats = await store.apply(target("out2"), columns, "update", "id")
    assert (stats.created, stats.updated, stats.total_rows_after) == (1, 1, 3)
    select = [('"id"', "id", SoqlType.TEXT), ('"score"', "score", SoqlType.NUMBER)]
    rows = await read(store, "ds", select)
    assert rows == [
        {"id": "1"},
        {"id": "2", "score": "10"},
        {"id": "3", "score": "20"},
    ]
    with pytest.raises(Exception, match="name"):
        await read(store, "ds", [('"name"', "name", SoqlType.TEXT)])


async def test_apply_failure_rolls_back_schema_and_rows(store: RowStore, tmp_path: Path) -> None:
    await prepared(store, tmp_path, b"id,name\n1,a\n")
    await store.apply(target("out1"), ID_NAME, "update", "id")
    broken = [AppliedColumn("id", SoqlType.TEXT, 0), AppliedColumn("other", SoqlType.TEXT, 9)]
    with pytest.raises(Exception, match="v9"):
        await store.apply(target("out1"), broken, "replace", None)
    assert await all_rows(store) == [{"id": "1", "name": "a"}]


async def test_apply_duplicate_field_names_refused(store: RowStore, tmp_path: Path) -> None:
    await prepared(store, tmp_path, b"id,name\n1,a\n")
    twice = [AppliedColumn("id", SoqlType.NUMBER, 0), AppliedColumn("id", SoqlType.TEXT, 1)]
    with pytest.raises(ApplyRefused, match="unique"):
        await store.apply(target("out1"), twice, "update", None)


async def test_dataset_rows_where_order_paging_and_csv(store: RowStore, tmp_path: Path) -> None:
    await prepared(store, tmp_path, b"id,name\n3,c\n1,a\n2,b\n4,a\n")
    await store.apply(target("out1"), ID_NAME, "update", "id")
    select = [('"name"', "name", SoqlType.TEXT), ('"id"', "id", SoqlType.NUMBER)]
    rows = await read(store, "ds", select, '"id" > 1', ['"name" DESC'], 2, 1)
    assert rows == [{"name": "b", "id": "2"}, {"name": "a", "id": "4"}]
    csv = await read_csv(store, "ds", select, ['"id"'])
    assert csv.decode() == '"name","id"\n"a","1"\n"b","2"\n"c","3"\n"a","4"\n'
    assert await store.dataset_count("ds") == 4


async def test_dataset_reads_before_any_apply(store: RowStore) -> None:
    select = [('"x"', "x", SoqlType.TEXT)]
    assert await read(store, "never", select) == []
    assert await store.dataset_count("never") == 0
    assert await read_csv(store, "never", select) == b'"x"\n'


async def test_rowstore_reopen_keeps_data(tmp_path: Path) -> None:
    first = RowStore(tmp_path / "rows.duckdb")
    await prepared(first, tmp_path, b"id,name\n1,a\n")
    await first.apply(target("out1"), ID_NAME, "update", "id")
    first.close()
    with pytest.raises(RuntimeError, match="closed"):
        await first.dataset_count("ds")
    second = RowStore(tmp_path / "rows.duckdb")
    try:
        assert await all_rows(second) == [{"id": "1", "name": "a"}]
        assert len(await second.row_errors("in1", 0, 10)) == 0
    finally:
        second.close()


async def test_apply_of_a_revision_already_written_writes_nothing(
    store: RowStore, tmp_path: Path
) -> None:
    await prepared(store, tmp_path, b"id,name\n1,a\n2,b\n")
    once = target("out1")
    assert await store.applied(once.revision_id) is None
    first = await store.apply(once, ID_NAME, "update", None)
    again = await store.apply(once, ID_NAME, "update", None)
    assert again == first
    assert first.created == 2
    assert await store.applied(once.revision_id) == first
    assert len(await all_rows(store)) == 2


async def test_apply_of_a_revision_already_written_leaves_a_dropped_dataset_dropped(
    store: RowStore, tmp_path: Path
) -> None:
    # The apply makes a missing dataset table before it reads the apply log (one
    # statement for the log and the dataset's row ids); finding the revision written,
    # it rolls the table back with the rest.
    await prepared(store, tmp_path, b"id,name\n1,a\n")
    once = target("out1")
    first = await store.apply(once, ID_NAME, "update", None)
    await store.drop_tables("ds")

    assert await store.apply(once, ID_NAME, "update", None) == first
    assert not await store._run(sql.relation_exists, "ds")


async def test_materialize_replaces_an_earlier_output_of_either_kind(
    store: RowStore, tmp_path: Path
) -> None:
    # A materialisation resumed after a restart finds its earlier relation: a view is
    # replaced by a view, a table (random_* transforms) by a table, and each by the
    # other kind.
    await load(store, tmp_path, b"id,name\n1,a\n2,b\n")
    random = CompiledExpression(
        "CAST(random() AS VARCHAR)", "NULL", SoqlType.TEXT, {"function_name": "random_x"}, ()
    )
    kinds = []
    for plan in (
        [text("name", "c1")],
        [text("name", "upper(c1)")],
        [OutputColumnPlan("name", random)],
        [OutputColumnPlan("name", random)],
        [text("name", "c1")],
    ):
        stats = await store.materialize("in1", "out1", plan)
        assert stats.total_rows == 2
        kinds.append(await store._run(sql.relation_kind, "out1"))

    assert kinds == ["VIEW", "VIEW", "TABLE", "TABLE", "VIEW"]
    page = await store.rows_page(
        "out1", [text("name", "c1")], 0, 10, inputs=InputRef("in1", {}), errors_only=False
    )
    assert [item["row"] for item in page] == [[{"ok": "a"}], [{"ok": "b"}]]


async def test_rowstore_parallel_ingests(store: RowStore, tmp_path: Path) -> None:
    data = [b"id,name\n" + b"".join(b"%d,x\n" % i for i in range(n)) for n in (100, 200, 300)]
    parsed = await asyncio.gather(*(load(store, tmp_path, d, f"in{i}") for i, d in enumerate(data)))
    assert [p.total_rows for p in parsed] == [100, 200, 300]


async def test_drop_tables_removes_input_and_row_errors(store: RowStore, tmp_path: Path) -> None:
    await load(store, tmp_path, b"a,b\n1\n")
    assert len(await store.row_errors("in1", 0, 10)) == 1
    await store.drop_tables("in1")
    assert await store.row_errors("in1", 0, 10) == []
    assert await store.dataset_count("in1") == 0


async def test_apply_upsert_keeps_row_ids_of_updated_rows(store: RowStore, tmp_path: Path) -> None:
    """Updated rows keep their place in the default (row id) order; new rows go last."""
    await prepared(store, tmp_path, b"id,name\n1,a\n2,b\n3,c\n", "1")
    await store.apply(target("out1"), ID_NAME, "update", "id")
    await prepared(store, tmp_path, b"id,name\n4,d\n1,A\n", "2")
    stats = await store.apply(target("out2"), ID_NAME, "update", "id")
    assert (stats.created, stats.updated, stats.total_rows_after) == (1, 1, 4)
    assert await all_rows(store) == [
        {"id": "1", "name": "A"},
        {"id": "2", "name": "b"},
        {"id": "3", "name": "c"},
        {"id": "4", "name": "d"},
    ]


async def test_apply_upsert_updates_every_row_sharing_the_identifier(
    store: RowStore, tmp_path: Path
) -> None:
    await prepared(store, tmp_path, b"id,name\n1,a\n2,b\n1,c\n", "1")
    await store.apply(target("out1"), ID_NAME, "update", None)  # appended: id 1 twice
    await prepared(store, tmp_path, b"id,name\n1,z\n", "2")
    stats = await store.apply(target("out2"), ID_NAME, "update", "id")
    assert (stats.created, stats.updated, stats.total_rows_after) == (0, 1, 3)
    assert await all_rows(store) == [
        {"id": "1", "name": "z"},
        {"id": "2", "name": "b"},
        {"id": "1", "name": "z"},
    ]


def test_relations_are_looked_up_by_name_inside_a_transaction(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "lookups.duckdb"))
    con.execute("CREATE TABLE in_1 (__offset BIGINT, c0 VARCHAR)")
    con.execute("CREATE VIEW out_1 AS SELECT __offset, c0 AS v0, c0 AS e0 FROM in_1")
    con.execute("BEGIN TRANSACTION")
    assert sql.relation_kind(con, "in_1") == "TABLE"
    assert sql.relation_kind(con, "out_1") == "VIEW"
    assert sql.relation_kind(con, "in_2") is None
    assert not sql.table_exists(con, "out_1")
    assert sql.column_types(con, "out_1") == {
        "__offset": "BIGINT",
        "v0": "VARCHAR",
        "e0": "VARCHAR",
    }
    con.execute("COMMIT")  # the failed look-up of in_2 left the transaction usable
    sql.drop_relation_sql(con, "out_1")  # a view
    sql.drop_relation_sql(con, "in_1")  # a table
    sql.drop_relation_sql(con, "in_1")  # gone already: nothing to do
    assert sql.relation_kind(con, "out_1") is None
    assert sql.relation_kind(con, "in_1") is None
