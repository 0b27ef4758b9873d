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

from dsmsyncd.server.catalog.metastore import Doc, Kind
from dsmsyncd.server.catalog.views import dataset_table
from dsmsyncd.server.jobs import materialize, parse
from dsmsyncd.server.jobs.output_schema import ColumnSpec
from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.state import ServerState


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
            parse.input_column(meta, isid, field, display, position, soql_type, guessed=soql_type)
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
    typed = [(c["field_name"], SoqlType(c["soql_type"])) for c in input_columns]
    table = parse.input_table(int(source["id"]))
    total = await state.rows.snapshot(dataset_table(fourfour), table, typed)
    input_schema = parse.store_input_schema(
        meta, source, isid, input_columns, total, 0, {f: f for f, _ in typed}
    )
    doc, planned = materialize.create_first_output_schema(meta, source, input_schema, specs)
    materialize.start(state, doc, planned)


def soql_type_of(name: Any) -> str:
    try:
        return SoqlType(str(name)).value
    except ValueError:
        return SoqlType.TEXT.value
