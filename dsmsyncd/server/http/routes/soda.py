"""SODA row reads (digest §2.6, dev.socrata.com "Queries" and "Formats").

``/resource/{ff}.json``, ``.csv`` and ``.geojson`` (or no extension and an ``Accept``
header) and ``/id/{ff}`` take the SoQL parameters, translated to SQL by
``storage/soql.py``, and page every format with ``$limit``/``$offset``; a query the
translator refuses is a 400 that names the parameter. ``/api/views/{ff}/rows.csv`` is the
CSV export of the whole dataset (``?accessType=DOWNLOAD`` makes it an attachment).
Every read answers with the hosted headers (``represent/soda.py``) and a 304 when the
client's copy is current.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import hdrs, web

from dsmsyncd.server.catalog import views
from dsmsyncd.server.catalog.metastore import Doc
from dsmsyncd.server.errors import ApiError
from dsmsyncd.server.http import access
from dsmsyncd.server.http.bodies import stream_reply
from dsmsyncd.server.http.represent import soda
from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.state import STATE
from dsmsyncd.server.storage import soda_format
from dsmsyncd.server.storage.datasets import DatasetRef
from dsmsyncd.server.storage.soql import QueryError, TranslatedQuery, translate_query
from dsmsyncd.server.storage.sql import ident
from dsmsyncd.server.transforms import ColumnInput

# Query parameters that are not part of the query: the app token is a throttling hint.
_IGNORED_PARAMS = frozenset({"$$app_token"})
_ACCEPTED = {"application/vnd.geo+json": "geojson", "text/csv": "csv"}
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9_.-]+")


def _column_types(view: Doc) -> list[tuple[str, SoqlType]]:
    out = []
    for column in view.get("columns", []):
        try:
            soql_type = SoqlType(column.get("dataTypeName") or "text")
        except ValueError:
            soql_type = SoqlType.TEXT
        out.append((str(column["fieldName"]), soql_type))
    return out


def _dataset(view: Doc) -> DatasetRef:
    return DatasetRef(views.dataset_table(str(view["id"])), _column_types(view))


def _translate(params: Mapping[str, str], view: Doc) -> TranslatedQuery:
    columns = {f: ColumnInput(ident(f), t) for f, t in _column_types(view)}
    try:
        return translate_query(params, columns)
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


async def _read(request: web.Request, fourfour: str, fmt: str) -> web.StreamResponse:
    """One paged read in ``fmt`` (json, csv, geojson), with validators and a 304."""
    view = access.view_for_read(request, fourfour)
    params = {k: v for k, v in request.query.items() if k not in _IGNORED_PARAMS}
    query = _translate(params, view)
    ref = _dataset(view)
    rows = request.app[STATE].rows
    found = soda.validators(view, await rows.dataset_version(ref), fmt, params)
    fields = [(c.name, c.soql_type) for c in query.select]
    headers = {**found.headers(), **soda.field_headers(fields)}
    if soda.not_modified(request, found):
        return web.Response(status=304, headers=headers)
    headers[hdrs.CONTENT_TYPE] = soda.CONTENT_TYPES[fmt]
    if fmt == "csv":
        chunks = rows.dataset_csv(ref, query, [n for n, _ in fields], export=False)
        return await stream_reply(request, chunks, headers)
    shape = soda_format.geojson if fmt == "geojson" else soda_format.json_rows
    body = await rows.dataset_rows(ref, query, lambda found_rows: shape(found_rows, fields))
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), headers=headers)


def _wanted_format(request: web.Request) -> str:
    accept = request.headers.get(hdrs.ACCEPT, "")
    if "application/json" in accept:
        return "json"
    return next((fmt for mime, fmt in _ACCEPTED.items() if mime in accept), "json")


async def resource_rows(request: web.Request) -> web.StreamResponse:
    """``/resource/{ff}.json``, ``.csv``, ``.geojson`` or ``/resource/{ff}`` + Accept."""
    stem, _, extension = request.match_info["name"].partition(".")
    fmt = extension or _wanted_format(request)
    if fmt not in soda.CONTENT_TYPES:
        raise ApiError(400, f"unsupported format '.{extension}'; use .json, .csv or .geojson")
    return await _read(request, stem, fmt)


async def id_rows(request: web.Request) -> web.StreamResponse:
    """``/id/{ff}``: the row reads the SDK's tests use; same as ``.json``."""
    return await _read(request, request.match_info["name"].removesuffix(".json"), "json")


async def rows_csv(request: web.Request) -> web.StreamResponse:
    """The CSV export: every row and column, headed by the columns' display names."""
    fourfour = request.match_info["fourfour"]
    view = access.view_for_read(request, fourfour)
    ref = _dataset(view)
    query = _translate({}, view)
    rows = request.app[STATE].rows
    found = soda.validators(view, await rows.dataset_version(ref), "export", {})
    headers = found.headers()
    if soda.not_modified(request, found):
        return web.Response(status=304, headers=headers)
    headers[hdrs.CONTENT_TYPE] = soda.CONTENT_TYPES["csv"]
    if request.query.get("accessType", "").upper() == "DOWNLOAD":
        name = _UNSAFE_FILENAME.sub("_", str(view.get("name") or fourfour)).strip("_") or fourfour
        headers[hdrs.CONTENT_DISPOSITION] = f'attachment; filename="{name}.csv"'
    names = [str(c.get("name") or c["fieldName"]) for c in view.get("columns", [])]
    return await stream_reply(request, rows.dataset_csv(ref, query, names, export=True), headers)


def register(app: web.Application) -> None:
    app.router.add_get("/api/views/{fourfour:[^/.]+}/rows.csv", rows_csv)
    app.router.add_get("/resource/{name}", resource_rows)
    app.router.add_get("/id/{name}", id_rows)
