"""What happens to a source after its bytes are complete, in the background.

upload bytes → ``RowStore.ingest`` into ``in_{source_id}`` → input schema document →
first output schema (from the revision's import config, else one guessed transform per
column), whose rows ``materialize.py`` then computes.

Each step writes its result to the metastore as soon as it has it, in the order the SDK
polls for them (§3a: source ``schemas``, then ``output_schemas``, then
``completed_at``), so a poller sees progress rather than one jump at the end. A file
that cannot be parsed is recorded on the source (``failed_at``); nothing is left
waiting forever.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dsmsyncd.server import pause_points
from dsmsyncd.server.catalog import configs, revisions, sources
from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore, utcnow_iso
from dsmsyncd.server.jobs import materialize, output_schema
from dsmsyncd.server.jobs.output_schema import ColumnSpec
from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.state import ServerState
from dsmsyncd.server.storage import uploads
from dsmsyncd.server.storage.ingest import (
    InputColumnInfo,
    ParsedInput,
    ParseOptions,
    UnparsableFile,
)

logger = logging.getLogger("dsmsyncd.server.jobs.parse")


def bytes_complete(state: ServerState, doc: Doc, size: int) -> None:
    """Record that a source's whole file is on disk (uploaded, fetched or copied), then
    parse it: the one place where a source's bytes become complete."""
    doc["_path"] = str(uploads.final_path(state.uploads_dir, int(doc["id"])))
    doc["filesize"] = size
    doc["finished_at"] = utcnow_iso()
    sources.save(state.meta, doc)
    start(state, doc)


def start(state: ServerState, source: Doc) -> None:
    """Parse a source whose bytes just became complete (blob sources are only stored)."""
    if not source["parse_options"].get("parse_source", True):
        mark_blob(state.meta, source)
        return
    source_id = int(source["id"])
    state.parses.start(source_id, parse_source(state, source_id))


def mark_blob(meta: MetaStore, source: Doc) -> None:
    """A "Files and Documents" upload: the revision publishes the bytes as they are."""
    revision = revisions.of_source(meta, source)
    if revision is not None:
        revision["blob_id"] = source["id"]
        revisions.save(meta, revision)


async def parse_source(state: ServerState, source_id: int) -> None:
    """Bytes → input tables and schemas → first output schemas and their rows; never
    raises for a bad file (the source records why it failed).

    Most files give one input schema; a geo file gives one per layer (digest §1.3: an
    input schema's ``name`` is its layer or sheet), created in file order, so the
    highest id, which the SDK picks, is the last layer.
    """
    meta = state.meta
    source = meta.get(Kind.SOURCE, source_id)
    if source is None or source.get("_path") is None or _stopped(meta, source_id):
        return
    parsed_inputs = await _ingest(state, source)
    if parsed_inputs is None:
        return
    input_schemas = [_store_parsed(meta, source, parsed) for parsed in parsed_inputs]
    _finish_source(meta, source_id)
    await pause_points.pause(pause_points.PARSE_BEFORE_OUTPUT_SCHEMA)
    for parsed, input_schema in zip(parsed_inputs, input_schemas, strict=True):
        specs = config_specs(meta, source) or guessed_specs(meta, source, parsed.columns)
        await materialize.first_output_schema(state, source, input_schema, specs)


def resume_first_output_schemas(state: ServerState, source: Doc, bare: list[Doc]) -> None:
    """Input schemas a stop left without their first output schema get it now (a client
    polls the source for an output schema, and would wait for one forever)."""
    state.parses.start(int(source["id"]), _first_output_schemas(state, source, bare))


async def _first_output_schemas(state: ServerState, source: Doc, bare: list[Doc]) -> None:
    for input_schema in bare:
        columns = [
            InputColumnInfo(
                field_name=col["field_name"],
                display_name=col["display_name"],
                position=col["position"],
                guessed_type=SoqlType(col["guessed_soql_type"]),
                sql_name=input_schema["_sql_names"][col["field_name"]],
                soql_type=SoqlType(col["soql_type"]),
            )
            for col in input_schema["input_columns"]
        ]
        specs = config_specs(state.meta, source) or guessed_specs(state.meta, source, columns)
        await materialize.first_output_schema(state, source, input_schema, specs)


def _store_parsed(meta: MetaStore, source: Doc, parsed: ParsedInput) -> Doc:
    """The input schema document of one parsed table."""
    isid = meta.next_id(Kind.INPUT_SCHEMA)
    columns = [
        input_column(
            meta,
            isid,
            info.field_name,
            info.display_name,
            info.position,
            str(info.soql_type),
            guessed=str(info.guessed_type),
        )
        for info in parsed.columns
    ]
    sql_names = {info.field_name: info.sql_name for info in parsed.columns}
    return store_input_schema(
        meta,
        source,
        isid,
        columns,
        parsed.total_rows,
        parsed.row_error_count,
        sql_names,
        table=parsed.table or input_table(int(source["id"])),
        name=parsed.name,
    )


async def _ingest(state: ServerState, source: Doc) -> list[ParsedInput] | None:
    """The parsed file in ``in_{id}`` (and ``in_{id}_{n}`` for further layers); None if
    the source failed or stopped meanwhile."""
    meta, source_id = state.meta, int(source["id"])
    table = input_table(source_id)
    # Columns given in advance decide the output schema: guessed types go unused.
    guess_types = not template_columns(meta, source)
    options = ParseOptions.from_json(source["parse_options"])
    try:
        # A parse resumed after a restart starts clean: ingest_upload drops the table.
        parsed = await state.rows.ingest_upload(
            Path(source["_path"]),
            table,
            options,
            content_type=source.get("content_type"),
            filename=source["source_type"].get("filename"),
            guess_types=guess_types,
        )
    except UnparsableFile as exc:
        _fail_source(meta, source_id, exc.message, key=exc.key)
        return None
    except Exception as exc:
        if _stopped(meta, source_id):
            return None  # cleanup removed what it read from; nobody waits for this parse
        logger.exception("parsing source %s failed", source_id)
        _fail_source(meta, source_id, f"internal error while parsing: {exc}", key="internal_error")
        return None
    if _stopped(meta, source_id):
        # Cancelled (or its revision discarded) while DuckDB was parsing: the thread
        # could not be interrupted, so its tables are dropped now instead.
        await state.rows.drop_tables(*(p.table or table for p in parsed))
        return None
    return parsed


def input_table(source_id: int) -> str:
    """The DuckDB table that holds a source's parsed (or snapshotted) rows."""
    return f"in_{source_id}"


def input_column(
    meta: MetaStore,
    input_schema_id: int,
    field_name: str,
    display_name: str,
    position: int,
    soql_type: str,
    *,
    guessed: str,
) -> dict[str, Any]:
    """One input column of an input schema, as the wire shows it (digest §1.3)."""
    return {
        "id": output_schema.column_id(meta),
        "input_schema_id": input_schema_id,
        "field_name": field_name,
        "display_name": display_name,
        "position": position,
        "soql_type": soql_type,
        "semantic_type": None,
        "guessed_soql_type": guessed,
        "guessed_subtypes": [],
    }


def guessed_specs(meta: MetaStore, source: Doc, columns: list[InputColumnInfo]) -> list[ColumnSpec]:
    """One transform per parsed column, fitted to the dataset the file goes into.

    A column the dataset already has keeps its published type (a file whose values
    no longer fit shows errors rather than silently retyping the column) and the
    dataset's row identifier stays the row identifier, so an update revision upserts.
    """
    view = meta.get(Kind.VIEW, source["_fourfour"]) if source.get("_fourfour") else None
    published = {c["fieldName"]: c for c in (view or {}).get("columns", [])}
    row_id = (view or {}).get("rowIdentifierColumnId")
    specs = []
    for info in columns:
        existing = published.get(info.field_name)
        soql_type = str(info.guessed_type)
        if existing is not None and existing.get("dataTypeName") in set(SoqlType):
            soql_type = str(existing["dataTypeName"])
        if info.soql_type is not SoqlType.TEXT:
            soql_type = "text"  # a typed input column (a geometry) is taken as it is
        specs.append(
            ColumnSpec(
                field_name=info.field_name,
                display_name=info.display_name,
                position=info.position,
                is_primary_key=True if existing and existing.get("id") == row_id else None,
                transform_expr=output_schema.guessed_expression(info.field_name, soql_type),
            )
        )
    return specs


def store_input_schema(
    meta: MetaStore,
    source: Doc,
    isid: int,
    input_columns: list[dict[str, Any]],
    total_rows: int | None,
    num_row_errors: int,
    sql_names: dict[str, str],
    *,
    table: str | None = None,
    name: str | None = None,
) -> Doc:
    """Store an input schema; ``sql_names`` maps field names to the table's columns."""
    doc: Doc = {
        "id": isid,
        "name": name,
        "created_at": utcnow_iso(),
        "created_by": source["created_by"],
        "total_rows": total_rows,
        "num_row_errors": num_row_errors,
        "input_columns": input_columns,
        "output_schemas": [],
        "_table": table or input_table(int(source["id"])),
        "_source_id": source["id"],
        "_sql_names": sql_names,
    }
    return meta.put(Kind.INPUT_SCHEMA, isid, doc, parent=source["id"])


def template_columns(meta: MetaStore, source: Doc) -> list[Any]:
    """The output columns a source's first output schema must have, if given in advance:
    a restored source's own (``jobs/restore.py``), else its revision's import config's."""
    own = source.get("_template_columns")
    if own:
        return list(own)
    config = configs.of_source(meta, source)
    return list((config or {}).get("columns") or [])


def config_specs(meta: MetaStore, source: Doc) -> list[ColumnSpec]:
    """The output columns given in advance (:func:`template_columns`), as specs."""
    columns = template_columns(meta, source)
    specs = []
    for index, col in enumerate(columns):
        if isinstance(col, dict) and isinstance(col.get("field_name"), str):
            expr = col.get("transform_expr") or f"`{col['field_name']}`"
            specs.append(output_schema.spec_from_dict(col, str(expr), index))
    specs.sort(key=lambda s: s.position)
    return specs


def _stopped(meta: MetaStore, source_id: int) -> bool:
    """Whether a source was cancelled, failed or cleaned up while work on it ran."""
    source = meta.get(Kind.SOURCE, source_id)
    return source is None or source.get("failed_at") is not None or sources.is_removed(source)


def _fail_source(
    meta: MetaStore, source_id: int, message: str, key: str = "unparsable_file"
) -> None:
    source = meta.get(Kind.SOURCE, source_id)
    if source is None or source.get("failed_at") is not None:
        return  # the first failure (a cancel, say) is the one to report
    sources.fail(meta, source, key, message)


def _finish_source(meta: MetaStore, source_id: int) -> None:
    source = meta.get(Kind.SOURCE, source_id)
    if source is not None and source.get("finished_at") is None:
        source["finished_at"] = utcnow_iso()
        sources.save(meta, source)
