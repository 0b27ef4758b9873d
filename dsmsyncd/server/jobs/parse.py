"""What happens to a source after its bytes are complete, in the background.

upload bytes → ``RowStore.ingest`` into ``in_{source_id}`` → input schema document →
first output schema (from the revision's import config, else one guessed transform per
column) → ``RowStore.materialize`` into ``out_{output_schema_id}`` → counts and
``finished_at``/``completed_at`` → the revision's ``output_schema_id`` → the signal
that wakes whoever waits on the output schema.

Each step writes its result to the metastore as soon as it has it, in the order the SDK
polls for them (§3a: source ``schemas``, then ``output_schemas``, then
``completed_at``), so a poller sees progress rather than one jump at the end. A failure
is recorded on the resource it concerns (source ``failed_at`` for a file that cannot be
parsed, transform ``failed_at`` for an expression that cannot be compiled); nothing is
left waiting forever.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from dsmsyncd.server.catalog import sources as source_store
from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore, utcnow_iso
from dsmsyncd.server.http.auth import creator_ref
from dsmsyncd.server.jobs import output_schema as output_columns
from dsmsyncd.server.jobs import signals
from dsmsyncd.server.jobs.output_schema import ColumnSpec, PlannedColumn
from dsmsyncd.server.state import ServerState
from dsmsyncd.server.storage.ingest import InputColumnInfo, ParseOptions, UnparsableFile
from dsmsyncd.server.storage.rowstore import OutputColumnPlan, OutputStats
from dsmsyncd.server.storage.soql_types import SoqlType
from dsmsyncd.server.transforms import CompileContext

logger = logging.getLogger("dsmsyncd.server.jobs.parse")


def start(state: ServerState, source: Doc) -> None:
    """Parse a source whose bytes just became complete (blob sources are only stored)."""
    if not source["parse_options"].get("parse_source", True):
        mark_blob(state.meta, source)
        return
    state.spawn(parse_source(state, int(source["id"])), name=f"parse-source-{source['id']}")


def mark_blob(meta: MetaStore, source: Doc) -> None:
    """A "Files and Documents" upload: the revision publishes the bytes as they are."""
    revision = source_store.source_revision(meta, source)
    if revision is not None:
        revision["blob_id"] = source["id"]
        source_store.save_revision(meta, revision)


async def parse_source(state: ServerState, source_id: int) -> None:
    meta = state.meta
    source = meta.get(Kind.SOURCE, source_id)
    if source is None or source.get("_path") is None or _stopped(meta, source_id):
        return
    table = f"in_{source_id}"
    options = ParseOptions.from_json(source["parse_options"])
    config = source_config(meta, source)
    # An import config with columns decides the output schema: guessed types go unused.
    guess_types = not (config and config.get("columns"))
    try:
        await state.rows.drop_tables(table)  # a parse resumed after a restart starts clean
        parsed = await state.rows.ingest(
            Path(source["_path"]),
            table,
            options,
            content_type=source.get("content_type"),
            filename=source["source_type"].get("filename"),
            guess_types=guess_types,
        )
    except UnparsableFile as exc:
        _fail_source(meta, source_id, exc.message)
        return
    except Exception as exc:
        if _stopped(meta, source_id):
            return  # cleanup removed what it read from; nobody waits for this parse
        logger.exception("parsing source %s failed", source_id)
        _fail_source(meta, source_id, f"internal error while parsing: {exc}", key="internal_error")
        return
    if _stopped(meta, source_id):
        # Cancelled (or its revision discarded) while DuckDB was parsing: the thread
        # could not be interrupted, so its table is dropped now instead.
        await state.rows.drop_tables(table)
        return
    input_columns = []
    sql_names: dict[str, str] = {}
    isid = meta.next_id(Kind.INPUT_SCHEMA)
    for info in parsed.columns:
        sql_names[info.field_name] = info.sql_name
        input_columns.append(
            {
                "id": output_columns.column_id(meta),
                "input_schema_id": isid,
                "field_name": info.field_name,
                "display_name": info.display_name,
                "position": info.position,
                "soql_type": "text",
                "semantic_type": None,
                "guessed_soql_type": str(info.guessed_type),
                "guessed_subtypes": [],
            }
        )
    input_schema = store_input_schema(
        meta,
        source,
        isid,
        input_columns,
        parsed.total_rows,
        parsed.row_error_count,
        table,
        sql_names,
    )
    _finish_source(meta, source_id)
    specs = config_specs(meta, source) or guessed_specs(meta, source, parsed.columns)
    await first_output_schema(state, source, input_schema, specs)


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
        specs.append(
            ColumnSpec(
                field_name=info.field_name,
                display_name=info.display_name,
                position=info.position,
                is_primary_key=True if existing and existing.get("id") == row_id else None,
                transform_expr=output_columns.guessed_expression(info.field_name, soql_type),
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
    table: str,
    sql_names: dict[str, str],
) -> Doc:
    """Store an input schema; ``sql_names`` maps field names to the table's columns."""
    doc: Doc = {
        "id": isid,
        "name": None,
        "created_at": utcnow_iso(),
        "created_by": source["created_by"],
        "total_rows": total_rows,
        "num_row_errors": num_row_errors,
        "input_columns": input_columns,
        "output_schemas": [],
        "_table": table,
        "_source_id": source["id"],
        "_sql_names": sql_names,
    }
    return meta.put(Kind.INPUT_SCHEMA, isid, doc, parent=source["id"])


def config_specs(meta: MetaStore, source: Doc) -> list[ColumnSpec]:
    """The output columns of the import config the source's revision was opened with."""
    config = source_config(meta, source)
    columns = (config or {}).get("columns") or []
    specs = []
    for index, col in enumerate(columns):
        if isinstance(col, dict) and isinstance(col.get("field_name"), str):
            expr = col.get("transform_expr") or f"`{col['field_name']}`"
            specs.append(output_columns.spec_from_dict(col, str(expr), index))
    specs.sort(key=lambda s: s.position)
    return specs


def source_config(meta: MetaStore, source: Doc) -> Doc | None:
    return source_config_for_revision(meta, source_store.source_revision(meta, source))


def source_config_for_revision(meta: MetaStore, revision: Doc | None) -> Doc | None:
    """The import config a revision was opened with, if it still exists."""
    name = (revision or {}).get("_config")
    return meta.get(Kind.CONFIG, name) if isinstance(name, str) else None


def config_from_output_schema(
    name: str, data_action: str, parse_options: dict[str, Any], doc: Doc, user: Doc, now: str
) -> Doc:
    """An import config (same shape as ``routes_configs``) that reproduces ``doc``."""
    ordered = sorted(doc["output_columns"], key=lambda c: c["position"])
    return {
        "name": name,
        "data_action": data_action,
        "parse_options": dict(parse_options),
        "columns": [
            {
                "field_name": c["field_name"],
                "display_name": c.get("display_name") or c["field_name"],
                "transform_expr": c["transform"]["transform_expr"],
                "format": c.get("format") or {},
                "description": c.get("description") or "",
                "is_primary_key": c.get("is_primary_key"),
                "flags": c.get("flags") or [],
            }
            for c in ordered
        ],
        "created_at": now,
        "updated_at": now,
        "created_by": creator_ref(user),
    }


def compile_context(source: Doc) -> CompileContext:
    created = dt.datetime.fromisoformat(source["created_at"]).replace(tzinfo=dt.UTC)
    return CompileContext(source_created_at=created)


async def first_output_schema(
    state: ServerState, source: Doc, input_schema: Doc, specs: list[ColumnSpec]
) -> None:
    """The output schema a parsed source starts with (its revision points at it)."""
    doc, planned = create_first_output_schema(state, source, input_schema, specs)
    await materialize(state, doc, planned)


def create_first_output_schema(
    state: ServerState, source: Doc, input_schema: Doc, specs: list[ColumnSpec]
) -> tuple[Doc, list[PlannedColumn]]:
    inputs = output_columns.column_inputs(input_schema)
    planned = output_columns.plan(specs, inputs, compile_context(source), strict=False)
    doc = output_columns.new_output_schema(
        state.meta, input_schema, planned, [], source["created_by"]
    )
    point_revision_at(state.meta, source, int(doc["id"]))
    return doc, planned


def start_materialize(
    state: ServerState,
    source: Doc,
    doc: Doc,
    planned: list[PlannedColumn],
    *,
    increment_revision: bool,
) -> None:
    """Compute a new output schema's rows in the background."""
    if increment_revision:
        point_revision_at(state.meta, source, int(doc["id"]))
    state.spawn(materialize(state, doc, planned), name=f"materialize-{doc['id']}")


def point_revision_at(meta: MetaStore, source: Doc, osid: int) -> None:
    """Make an output schema the one its (open) revision applies by default."""
    revision = source_store.source_revision(meta, source)
    if revision is not None and revision.get("closed_at") is None:
        revision["output_schema_id"] = osid
        source_store.save_revision(meta, revision)


async def materialize(state: ServerState, doc: Doc, planned: list[PlannedColumn]) -> None:
    """Compute an output schema's rows, then record its counts and completion."""
    meta = state.meta
    osid = int(doc["id"])
    plans = [OutputColumnPlan(p.spec.field_name, p.compiled) for p in planned]
    try:
        stats = await state.rows.materialize(doc["_input_table"], doc["_table"], plans)
    except Exception as exc:
        logger.exception("materialising output schema %s failed", osid)
        _finish_output_schema(meta, osid, None, f"internal error while transforming: {exc}")
    else:
        _finish_output_schema(meta, osid, stats, None)
    signals.output_schema_done(state, osid)


def _finish_output_schema(
    meta: MetaStore, osid: int, stats: OutputStats | None, internal: str | None
) -> None:
    doc = meta.get(Kind.OUTPUT_SCHEMA, osid)
    if doc is None:
        return
    now = utcnow_iso()
    counts = list(stats.column_error_counts) if stats is not None else []
    for index, col in enumerate(doc["output_columns"]):
        transform = col["transform"]
        if internal is not None and transform["failed_at"] is None:
            transform["failed_at"] = now
            transform["failure_details"] = {"message": internal, "type": "internal_error"}
        if transform["failed_at"] is None:
            transform["error_count"] = int(counts[index]) if index < len(counts) else 0
            transform["completed_at"] = transform["finished_at"] = now
    doc["error_count"] = int(stats.error_rows) if stats is not None else 0
    doc["total_rows"] = int(stats.total_rows) if stats is not None else 0
    doc["finished_at"] = doc["completed_at"] = now
    meta.put(Kind.OUTPUT_SCHEMA, osid, doc)


def _stopped(meta: MetaStore, source_id: int) -> bool:
    """Whether a source was cancelled, failed or cleaned up while work on it ran."""
    source = meta.get(Kind.SOURCE, source_id)
    return (
        source is None
        or source.get("failed_at") is not None
        or source.get("_removed_at") is not None
    )


def _fail_source(
    meta: MetaStore, source_id: int, message: str, key: str = "unparsable_file"
) -> None:
    source = meta.get(Kind.SOURCE, source_id)
    if source is None or source.get("failed_at") is not None:
        return  # the first failure (a cancel, say) is the one to report
    source["failed_at"] = utcnow_iso()
    source["failure_details"] = source_store.failure(key, message)
    source_store.save(meta, source)


def _finish_source(meta: MetaStore, source_id: int) -> None:
    source = meta.get(Kind.SOURCE, source_id)
    if source is not None and source.get("finished_at") is None:
        source["finished_at"] = utcnow_iso()
        source_store.save(meta, source)
