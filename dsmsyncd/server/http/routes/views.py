"""Core-API endpoints the SDK and readers touch: views and SODA row reads (§1.8, §2.6).

``GET /api/views/{ff}`` answers the raw view JSON (no envelope); ``DELETE`` removes the
whole dataset: its view, its rows and its revisions. Row reads (``/resource/{ff}.json``,
``.csv``, ``/id/{ff}``) take the SODA parameters ``$select $where $order $limit
$offset``, translated to SQL by ``storage/soql.py``; a query the translator refuses is a 400
that names the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import hdrs, web

from dsmsyncd.server.catalog import revisions, sources, views
from dsmsyncd.server.catalog.metastore import Doc, Kind
from dsmsyncd.server.errors import ApiError
from dsmsyncd.server.http import access, auth
from dsmsyncd.server.http.bodies import json_reply, stream_reply
from dsmsyncd.server.jobs import cleanup
from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.state import STATE
from dsmsyncd.server.storage.datasets import SelectItem
from dsmsyncd.server.storage.soql import QueryError, TranslatedQuery, translate_query
from dsmsyncd.server.storage.sql import ident
from dsmsyncd.server.transforms import ColumnInput

# Query parameters that are not part of the query: the app token is a throttling hint.
_IGNORED_PARAMS = frozenset({"$$app_token"})


async def show_view(request: web.Request) -> web.Response:
    fourfour = request.match_info["fourfour"]
    view = access.view_for_read(request, fourfour)
    return json_reply(views.view_wire(view, for_owner=access.is_owner(auth.caller(request), view)))


async def delete_view(request: web.Request) -> web.Response:
    """Remove the dataset; running apply jobs fail when they find it gone.

    The documents go at once; rows and uploaded files go in the background once the
    applies already running on the dataset have ended (``cleanup.remove_dataset``).
    """
    fourfour = request.match_info["fourfour"]
    access.view_for_write(request, fourfour)
    state = request.app[STATE]
    meta = state.meta
    with meta.transaction():
        found = [
            source
            for revision in meta.children(Kind.REVISION, fourfour)
            for source in sources.revision_sources(meta, fourfour, int(revision["revision_seq"]))
        ]
        revisions.delete_all(meta, fourfour)
        meta.delete(Kind.VIEW, fourfour)
        claimed = cleanup.claim(meta, found, f"dataset {fourfour} was deleted")
    state.spawn(
        cleanup.remove_dataset(state, fourfour, claimed), name=f"cleanup-dataset-{fourfour}"
    )
    return json_reply({"id": fourfour, "deleted": True})


def _columns(view: Doc) -> dict[str, ColumnInput]:
    out = {}
    for column in view.get("columns", []):
        try:
            soql_type = SoqlType(column.get("dataTypeName") or "text")
        except ValueError:
            soql_type = SoqlType.TEXT
        out[column["fieldName"]] = ColumnInput(ident(column["fieldName"]), soql_type)
    return out


def _translate(request: web.Request, view: Doc) -> TranslatedQuery:
    params: Mapping[str, str] = {k: v for k, v in request.query.items() if k not in _IGNORED_PARAMS}
    try:
        return translate_query(params, _columns(view))
    except QueryError as exc:
        data: dict[str, Any] = {"parameter": exc.parameter}
        if exc.limit is not None:
            data["limit"] = exc.limit
        raise ApiError(
            400,
            f"invalid {exc.parameter}: {exc.message}",
            key=exc.key or "query.compiler.malformed",
            data=data,
        ) from exc


def _select(query: TranslatedQuery) -> list[SelectItem]:
    return [(c.sql, c.name, c.soql_type) for c in query.select]


async def _read_rows(request: web.Request, fourfour: str, query: TranslatedQuery) -> list[Any]:
    rows = await request.app[STATE].rows.dataset_rows(
        views.dataset_table(fourfour),
        _select(query),
        query.where_sql,
        list(query.order_sql),
        query.limit,
        query.offset,
    )
    if query.aggregate and not rows:
        # A window count yields no row over no rows; SODA answers a count of "0".
        return [{query.select[0].name: "0"}]
    return rows


async def _rows_json(request: web.Request, fourfour: str) -> web.Response:
    view = access.view_for_read(request, fourfour)
    return json_reply(await _read_rows(request, fourfour, _translate(request, view)))


async def _rows_csv(request: web.Request, fourfour: str) -> web.StreamResponse:
    view = access.view_for_read(request, fourfour)
    query = _translate(request, view)
    if query.aggregate:
        (row,) = await _read_rows(request, fourfour, query)
        name = query.select[0].name
        return web.Response(
            body=f"{name}\n{row[name]}\n".encode(),
            headers={hdrs.CONTENT_TYPE: "text/csv; charset=utf-8"},
        )
    chunks = request.app[STATE].rows.dataset_csv(
        views.dataset_table(fourfour), _select(query), query.where_sql, list(query.order_sql)
    )
    return await stream_reply(request, chunks, {hdrs.CONTENT_TYPE: "text/csv; charset=utf-8"})


def _wants_csv(request: web.Request) -> bool:
    accept = request.headers.get(hdrs.ACCEPT, "")
    return "text/csv" in accept and "application/json" not in accept


async def resource_rows(request: web.Request) -> web.StreamResponse:
    """``/resource/{ff}.json``, ``/resource/{ff}.csv`` or ``/resource/{ff}`` + Accept."""
    name = request.match_info["name"]
    stem, _, extension = name.partition(".")
    if extension == "csv" or (not extension and _wants_csv(request)):
        return await _rows_csv(request, stem)
    if extension in ("", "json"):
        return await _rows_json(request, stem)
    raise ApiError(400, f"unsupported format '.{extension}'; use .json or .csv")


async def id_rows(request: web.Request) -> web.StreamResponse:
    """``/id/{ff}``: the row reads the SDK's tests use; same as ``.json``."""
    stem = request.match_info["name"].removesuffix(".json")
    return await _rows_json(request, stem)


async def rows_csv(request: web.Request) -> web.StreamResponse:
    return await _rows_csv(request, request.match_info["fourfour"])


def register(app: web.Application) -> None:
    view = "/api/views/{fourfour:[^/.]+}"
    app.router.add_get(view, show_view)
    app.router.add_get(view + ".json", show_view)
    app.router.add_delete(view, delete_view)
    app.router.add_get(view + "/rows.csv", rows_csv)
    app.router.add_get("/resource/{name}", resource_rows)
    app.router.add_get("/id/{name}", id_rows)
