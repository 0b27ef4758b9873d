"""HTTP routes for input schemas, output schemas, their rows, errors and transforms.

Endpoints (digest §2.3 I1-I4, §2.4 O1-O5, O7; O6 ``build_from`` is ``configs.py``).
Every URL carries the source id, and the schema ids in it must belong to that source,
so a caller allowed to read one source cannot reach another's schemas by changing the
last number.

A transform POST (I2) is checked synchronously (a bad expression is a 400 that points
at the fault) and answered at once with the new, unfinished output schema; its rows
are computed in the background and ``completed_at`` says when they are there.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dsmsyncd.server.catalog import sources
from dsmsyncd.server.catalog.metastore import Doc, Kind
from dsmsyncd.server.catalog.users import creator_ref
from dsmsyncd.server.errors import ApiError, bad_field, not_found
from dsmsyncd.server.fields import is_digits
from dsmsyncd.server.http import access, auth
from dsmsyncd.server.http.bodies import json_reply, read_json_object, stream_reply, url_id
from dsmsyncd.server.http.paths import source_path
from dsmsyncd.server.http.represent.sources import (
    input_schema_envelope,
    output_schema_envelope,
    output_schema_resource,
    transform_envelope,
)
from dsmsyncd.server.jobs import materialize, output_schema, signals
from dsmsyncd.server.state import STATE, ServerState
from dsmsyncd.server.storage.rowstore import InputRef, OutputColumnPlan

DEFAULT_PAGE = 500
MAX_PAGE = 10_000


def _state(request: web.Request) -> ServerState:
    return request.app[STATE]


def _ids(request: web.Request, *names: str) -> list[int]:
    return [url_id(request, n, n) for n in names]


def input_schema_of(
    request: web.Request, *, write: bool = False, rows: bool = False
) -> tuple[Doc, Doc]:
    """The source and input schema named by the URL, if the caller may use them.

    ``rows``: the caller is about to read the source's tables, which cleanup may
    have removed (a 410 then, rather than a DuckDB error).
    """
    sid, isid = _ids(request, "sid", "isid")
    source = access.source_for(request, sid, write=write)
    if rows:
        sources.refuse_if_removed(source)
    schema = _state(request).meta.get(Kind.INPUT_SCHEMA, isid)
    if schema is None or int(schema["_source_id"]) != sid:
        raise not_found("input schema", f"{isid} of source {sid}")
    return source, schema


def output_schema_of(request: web.Request, *, rows: bool = False) -> tuple[Doc, Doc]:
    _source, schema = input_schema_of(request, rows=rows)
    (osid,) = _ids(request, "osid")
    doc = _state(request).meta.get(Kind.OUTPUT_SCHEMA, osid)
    if doc is None or int(doc["input_schema_id"]) != int(schema["id"]):
        raise not_found("output schema", f"{osid} of input schema {schema['id']}")
    return schema, doc


def _page(request: web.Request) -> tuple[int, int]:
    values = []
    for name, default in (("offset", 0), ("limit", DEFAULT_PAGE)):
        text = request.query.get(name, str(default))
        if not is_digits(text):
            raise ApiError(400, f"query parameter {name} must be a non-negative integer")
        values.append(int(text))
    return values[0], min(values[1], MAX_PAGE)


async def show_input_schema(request: web.Request) -> web.Response:
    """I1."""
    _source, schema = input_schema_of(request)
    return json_reply(input_schema_envelope(_state(request).meta, schema))


async def transform(request: web.Request) -> web.Response:
    """I2: a new output schema from a complete column list (digest §2.3.1)."""
    state = _state(request)
    source, schema = input_schema_of(request, write=True)
    user = auth.require_caller(request)
    body = await read_json_object(request)
    specs = output_schema.specs_from_request(body.get("output_columns"))
    sort_bys = _sort_bys(body.get("sort_bys"), state, schema)
    increment = request.query.get("increment_revision", "true").lower() not in ("false", "0")
    planned = output_schema.plan(
        specs,
        output_schema.column_inputs(schema),
        output_schema.compile_context(source),
        strict=True,
    )
    doc = output_schema.new_output_schema(state.meta, schema, planned, sort_bys, creator_ref(user))
    if increment:
        materialize.point_revision_at(state.meta, source, int(doc["id"]))
    materialize.start(state, doc, planned)
    return json_reply(output_schema_envelope(doc), status=201)


def _sort_bys(raw: Any, state: ServerState, schema: Doc) -> list[Any]:
    """Given sort_bys are checked for shape; absent ones carry over from the latest."""
    if raw is None:
        latest = _latest(state, schema)
        return list(latest.get("sort_bys") or []) if latest else []
    if not isinstance(raw, list):
        raise bad_field("sort_bys", "expected an array of {field_name, ascending}")
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("field_name"), str):
            raise bad_field(f"sort_bys[{index}]", 'expected {"field_name", "ascending"}')
    return raw


def _latest(state: ServerState, schema: Doc) -> Doc | None:
    docs = state.meta.children(Kind.OUTPUT_SCHEMA, schema["id"])
    return max(docs, key=lambda d: int(d["id"])) if docs else None


async def latest_output(request: web.Request) -> web.Response:
    """I3: the output schema with the highest id."""
    _source, schema = input_schema_of(request)
    latest = _latest(_state(request), schema)
    if latest is None:
        raise ApiError(404, f"input schema {schema['id']} has no output schema yet")
    return json_reply(output_schema_envelope(latest))


async def input_row_errors(request: web.Request) -> web.Response:
    """I4: rows the parser could not split into the right number of cells.

    An input schema whose parse counted none answers without DuckDB: its errors table
    was never made, and asking DuckDB for a missing table costs a search of the whole
    catalog for names like it (issue 9: it grows with every file the server keeps).
    """
    _source, schema = input_schema_of(request, rows=True)
    offset, limit = _page(request)
    if schema.get("num_row_errors") == 0:
        return json_reply([])
    page = await _state(request).rows.row_errors(schema["_table"], offset, limit)
    return json_reply(page)


async def show_output_schema(request: web.Request) -> web.Response:
    """O1."""
    _schema, doc = output_schema_of(request)
    return json_reply(output_schema_envelope(doc))


async def _finished(state: ServerState, doc: Doc) -> Doc:
    """Rows exist only once the schema is complete; wait for that (it is server work)."""
    if doc.get("completed_at") is not None:
        return doc
    done = await signals.wait_output_schema(state, int(doc["id"]))
    if done is None:
        raise not_found("output schema", doc["id"])
    return done


async def rows(request: web.Request) -> web.Response:
    """O2: ``[output schema, {"offset", "row"}, …]``."""
    state = _state(request)
    schema, doc = output_schema_of(request, rows=True)
    doc = await _finished(state, doc)
    offset, limit = _page(request)
    plans, inputs = output_schema.read_plans(doc, schema)
    page = await state.rows.rows_page(
        doc["_table"], plans, offset, limit, inputs=inputs, errors_only=False
    )
    return json_reply([output_schema_resource(doc), *page])


async def schema_errors(request: web.Request) -> web.StreamResponse:
    """O3/O4: the rows with errors, as JSON or (``Accept: text/csv``) a CSV download."""
    state = _state(request)
    schema, doc = output_schema_of(request, rows=True)
    doc = await _finished(state, doc)
    column = _error_column(request, doc)
    plans, inputs = output_schema.read_plans(doc, schema)
    if "text/csv" in request.headers.get("Accept", ""):
        return await _errors_csv(request, state, doc, plans, inputs, column)
    offset, limit = _page(request)
    page = await state.rows.rows_page(
        doc["_table"], plans, offset, limit, inputs=inputs, errors_only=True, column_index=column
    )
    return json_reply([output_schema_resource(doc), *page])


def _error_column(request: web.Request, doc: Doc) -> int | None:
    """The table index of the ``column_id`` filter's column, if one was given."""
    text = request.query.get("column_id")
    if text is None:
        return None
    ordered = sorted(doc["output_columns"], key=lambda c: c["position"])
    for index, col in enumerate(ordered):
        if str(col["id"]) == text:
            return index
    raise ApiError(400, f"column_id {text} is not a column of output schema {doc['id']}")


async def _errors_csv(
    request: web.Request,
    state: ServerState,
    doc: Doc,
    plans: list[OutputColumnPlan],
    inputs: InputRef,
    column: int | None,
) -> web.StreamResponse:
    headers = {
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="errors-{doc["id"]}.csv"',
    }
    chunks = state.rows.export_csv(
        doc["_table"], plans, inputs=inputs, errors_only=True, column_index=column
    )
    return await stream_reply(request, chunks, headers)


def _transform_of(request: web.Request, *, rows: bool = False) -> tuple[Doc, dict[str, Any], int]:
    """The output schema, the transform and its column's index, for a transform id."""
    sid, tid = _ids(request, "sid", "tid")
    source = access.source_for(request, sid)
    if rows:
        sources.refuse_if_removed(source)
    meta = _state(request).meta
    pointer = meta.get(Kind.TRANSFORM, tid)
    doc = meta.get(Kind.OUTPUT_SCHEMA, pointer["_output_schema_id"]) if pointer else None
    if pointer is None or doc is None or int(pointer["_source_id"]) != sid:
        raise not_found("transform", f"{tid} of source {sid}")
    ordered = sorted(doc["output_columns"], key=lambda c: c["position"])
    for index, col in enumerate(ordered):
        if col["transform"]["id"] == tid:
            return doc, col["transform"], index
    raise not_found("transform", tid)


async def validate_row_identifier(request: web.Request) -> web.Response:
    """O5: could this column be the row identifier? A bare ``{"valid": …}``."""
    state = _state(request)
    doc, _transform, index = _transform_of(request, rows=True)
    doc = await _finished(state, doc)
    result = await state.rows.validate_row_identifier(doc["_table"], index)
    return json_reply(result)


async def show_transform(request: web.Request) -> web.Response:
    """O7."""
    _doc, found, _index = _transform_of(request)
    sid = int(request.match_info["sid"])
    return json_reply(transform_envelope(sid, found))


def register(app: web.Application) -> None:
    src = source_path("{sid}")
    schema = f"{src}/schema/{{isid}}"
    router = app.router
    router.add_get(schema, show_input_schema)
    router.add_post(schema, transform)
    router.add_get(f"{schema}/output/latest", latest_output)
    router.add_get(f"{schema}/output/{{osid}}", show_output_schema)
    router.add_get(f"{schema}/errors", input_row_errors)
    router.add_get(f"{schema}/rows/{{osid}}", rows)
    router.add_get(f"{schema}/errors/{{osid}}", schema_errors)
    router.add_get(f"{src}/transform/{{tid}}", show_transform)
    router.add_get(f"{src}/transform/{{tid}}/validate_row_identifier", validate_row_identifier)
