"""Computing an output schema's rows in the background, and saying when they are there.

output schema document (``output_schema.py``) → ``RowStore.materialize`` into
``out_{output_schema_id}`` → counts and ``finished_at``/``completed_at`` → the signal
that wakes whoever waits on the output schema (``signals.py``). A transform that cannot
be computed is recorded on its column (``failed_at``), so the SDK's wait reports
failure instead of hanging (§3e).
"""

from __future__ import annotations

import logging

from dsmsyncd.server.catalog import revisions
from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore, utcnow_iso
from dsmsyncd.server.jobs import output_schema, signals
from dsmsyncd.server.jobs.output_schema import ColumnSpec, PlannedColumn
from dsmsyncd.server.state import ServerState
from dsmsyncd.server.storage.rowstore import OutputColumnPlan, OutputStats

logger = logging.getLogger("dsmsyncd.server.jobs.materialize")


async def first_output_schema(
    state: ServerState, source: Doc, input_schema: Doc, specs: list[ColumnSpec]
) -> None:
    """The output schema a parsed source starts with (its revision points at it)."""
    doc, planned = create_first_output_schema(state.meta, source, input_schema, specs)
    await materialize(state, doc, planned)


def create_first_output_schema(
    meta: MetaStore, source: Doc, input_schema: Doc, specs: list[ColumnSpec]
) -> tuple[Doc, list[PlannedColumn]]:
    inputs = output_schema.column_inputs(input_schema)
    context = output_schema.compile_context(source)
    planned = output_schema.plan(specs, inputs, context, strict=False)
    doc = output_schema.new_output_schema(meta, input_schema, planned, [], source["created_by"])
    point_revision_at(meta, source, int(doc["id"]))
    return doc, planned


def start(state: ServerState, doc: Doc, planned: list[PlannedColumn]) -> None:
    """Compute a new output schema's rows in the background."""
    state.materializations.start(int(doc["id"]), materialize(state, doc, planned))


def point_revision_at(meta: MetaStore, source: Doc, osid: int) -> None:
    """Make an output schema the one its (open) revision applies by default."""
    revision = revisions.of_source(meta, source)
    if revision is not None and not revisions.is_closed(revision):
        revision["output_schema_id"] = osid
        revisions.save(meta, revision)


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
