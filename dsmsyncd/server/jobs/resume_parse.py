"""Picking background source work back up after the server restarts.

Parsing and transforming run as background tasks; a server stopped in the middle
leaves a source with bytes but no schema, or an output schema with no
``completed_at``, and the SDK would poll such a resource for hours (§3e). At startup
the work is started again from what the metastore says: both steps rebuild their
tables with ``CREATE OR REPLACE``, so repeating them is harmless. A url source whose
fetch was cut short is fetched again (its file is rewritten whole).
"""

from __future__ import annotations

import logging

from dsmsyncd.server.catalog import sources
from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore
from dsmsyncd.server.jobs import fetch_url, materialize, output_schema, parse, signals
from dsmsyncd.server.state import ServerState

logger = logging.getLogger("dsmsyncd.server.jobs.resume_parse")


def _fetch_cut_short(source: Doc) -> bool:
    """A url source whose fetch a stop interrupted: fetched again from the start."""
    return (
        source["source_type"].get("type") == "url"
        and not source.get("_path")
        and source.get("failed_at") is None
        and not sources.is_removed(source)
    )


def _without_output_schema(meta: MetaStore, source: Doc) -> list[Doc]:
    """Input schemas of a live source with no output schema: parsed, then stopped."""
    if source.get("failed_at") is not None or sources.is_removed(source):
        return []
    return [
        schema
        for schema in meta.children(Kind.INPUT_SCHEMA, source["id"])
        if not meta.children(Kind.OUTPUT_SCHEMA, schema["id"])
    ]


def resume(state: ServerState) -> int:
    """Restart unfinished parses and transforms; returns how many were restarted."""
    meta = state.meta
    restarted = 0
    for source in meta.all(Kind.SOURCE):
        if (
            source.get("_path")
            and source["parse_options"].get("parse_source", True)
            and source.get("failed_at") is None
            and not meta.children(Kind.INPUT_SCHEMA, source["id"])
        ):
            parse.start(state, source)
            restarted += 1
        elif _fetch_cut_short(source):
            fetch_url.start(state, source)
            restarted += 1
        elif bare := _without_output_schema(meta, source):
            parse.resume_first_output_schemas(state, source, bare)
            restarted += 1
    for doc in meta.all(Kind.OUTPUT_SCHEMA):
        if signals.is_finished(doc):
            continue
        owner = meta.get(Kind.SOURCE, doc["_source_id"])
        input_schema = meta.get(Kind.INPUT_SCHEMA, doc["input_schema_id"])
        if owner is None or input_schema is None:
            continue
        specs = [
            output_schema.spec_from_dict(col, col["transform"]["transform_expr"], index)
            for index, col in enumerate(doc["output_columns"])
        ]
        specs.sort(key=lambda s: s.position)
        planned = output_schema.plan(
            specs,
            output_schema.column_inputs(input_schema),
            output_schema.compile_context(owner),
            strict=False,
        )
        materialize.start(state, doc, planned)
        restarted += 1
    if restarted:
        logger.info("resumed %d unfinished parse/transform jobs", restarted)
    return restarted
