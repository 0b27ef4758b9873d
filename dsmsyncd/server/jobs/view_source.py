"""``view`` sources: a dataset's own columns and rows as the input of a new revision.

The SDK edits column metadata of a published dataset by creating a view source and
POSTing a transform over it (digest §3b). Its schemas must exist in the create reply
("schemas come back at once"), so they are built while the request waits: input
columns typed as the dataset publishes them, one identity transform per column, the
row identifier kept. The rows are snapshotted into ``in_{source_id}`` (with the
``__offset`` ordinal every input table has), so later applies to the dataset do not
move the ground under this draft.
"""

from __future__ import annotations

from typing import Any

import duckdb

from dsmsyncd.server.catalog.metastore import Doc, Kind
from dsmsyncd.server.catalog.views import dataset_table
from dsmsyncd.server.jobs import output_schema as output_columns
from dsmsyncd.server.jobs import parse as processing
from dsmsyncd.server.jobs.output_schema import ColumnSpec
from dsmsyncd.server.state import ServerState
from dsmsyncd.server.storage.apply import table_exists
from dsmsyncd.server.storage.soql_types import SoqlType, duckdb_type
from dsmsyncd.server.storage.sql import ident
from dsmsyncd.server.storage.sql import table as qtable


async def load(state: ServerState, source: Doc) -> None:
    """Build the view source's input schema and first output schema, and start its rows."""
    meta = state.meta
    fourfour = source["source_type"]["fourfour"]
    view = meta.get(Kind.VIEW, fourfour) or {}
    columns = sorted(view.get("columns", []), key=lambda c: c.get("position", 0))
    isid = meta.next_id(Kind.INPUT_SCHEMA)
    input_columns: list[dict[str, Any]] = []
    specs: list[ColumnSpec] = []
    for position, col in enumerate(columns):
        field = str(col["fieldName"])
        soql_type = soql_type_of(col.get("dataTypeName"))
        display = col.get("name") or field
        input_columns.append(
            {
                "id": output_columns.column_id(meta),
                "input_schema_id": isid,
                "field_name": field,
                "display_name": display,
                "position": position,
                "soql_type": soql_type,
                "semantic_type": None,
                "guessed_soql_type": soql_type,
                "guessed_subtypes": [],
            }
        )
        specs.append(
            ColumnSpec(
                field_name=field,
                display_name=display,
                description=col.get("description") or "",
                position=position,
                is_primary_key=True if col.get("id") == view.get("rowIdentifierColumnId") else None,
                format=col.get("format") or {},
                transform_expr="`" + field.replace("`", "``") + "`",
            )
        )
    table = f"in_{source['id']}"
    typed = [(c["field_name"], c["soql_type"]) for c in input_columns]
    total = await state.rows._run(snapshot, dataset_table(fourfour), table, typed)
    input_schema = processing.store_input_schema(
        meta, source, isid, input_columns, total, 0, table, {f: f for f, _ in typed}
    )
    doc, planned = processing.create_first_output_schema(state, source, input_schema, specs)
    state.spawn(processing.materialize(state, doc, planned), name=f"materialize-{doc['id']}")


def soql_type_of(name: Any) -> str:
    try:
        return SoqlType(str(name)).value
    except ValueError:
        return SoqlType.TEXT.value


def snapshot(
    cur: duckdb.DuckDBPyConnection,
    dataset: str,
    input_table: str,
    columns: list[tuple[str, str]],
) -> int:
    """Copy a dataset's rows into an input table; an unpublished dataset gives none."""
    out = qtable(input_table)
    if not table_exists(cur, dataset):
        defs = "".join(f", {ident(f)} {duckdb_type(SoqlType(t))}" for f, t in columns)
        cur.execute(f"CREATE OR REPLACE TABLE {out} (__offset BIGINT{defs})")
        return 0
    present = {
        str(r[0])
        for r in cur.execute(
            "SELECT column_name FROM duckdb_columns() "
            "WHERE table_name = ? AND schema_name = 'main'",
            [dataset],
        ).fetchall()
    }
    cells = "".join(
        f", {ident(f)}"
        if f in present
        else f", CAST(NULL AS {duckdb_type(SoqlType(t))}) AS {ident(f)}"
        for f, t in columns
    )
    cur.execute(
        f"CREATE OR REPLACE TABLE {out} AS SELECT "
        f"(row_number() OVER (ORDER BY __sid)) - 1 AS __offset{cells} FROM {qtable(dataset)}"
    )
    row = cur.execute(f"SELECT count(*) FROM {out}").fetchone()
    return int(row[0]) if row else 0
