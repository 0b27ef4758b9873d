"""Import configs, C1-C6 of digest §2.5: named recipes a sync opens revisions with.

A config is stored under its name (names are unique on the domain) in its wire shape,
with every default of §1.7 filled in at creation, so that what a client reads back is
exactly what a revision opened with the config will use. ``{name}`` in URLs is
percent-decoded by the router; links percent-encode it again.

``build_from`` (O6) lives with the sources routes and creates its config through
:func:`new_config`, so both paths validate and fill defaults the same way.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore, utcnow_iso
from dsmsyncd.server.errors import ApiError, bad_field, not_found
from dsmsyncd.server.http import auth
from dsmsyncd.server.http.bodies import envelope, json_reply, public, read_json_object
from dsmsyncd.server.http.represent.revisions import API, revision_envelope
from dsmsyncd.server.http.routes.revisions import open_with_config
from dsmsyncd.server.state import STATE
from dsmsyncd.server.transforms import ExpressionError
from dsmsyncd.server.transforms.limits import ExpressionLimitError
from dsmsyncd.server.transforms.parser import parse_expression

DATA_ACTIONS = ("update", "replace", "delete")

PARSE_OPTION_DEFAULTS: dict[str, Any] = {
    "header_count": 1,
    "column_header": 1,
    "encoding": None,
    "column_separator": ",",
    "quote_char": '"',
    "parse_source": True,
    "trim_whitespace": True,
    "remove_empty_rows": True,
}
_INT_OPTIONS = ("header_count", "column_header")
_BOOL_OPTIONS = ("parse_source", "trim_whitespace", "remove_empty_rows")
_TEXT_OPTIONS = ("column_separator", "quote_char")


def config_links(name: str) -> dict[str, str]:
    one = f"{API}/config/{quote(name, safe='')}"
    return {
        "show": one,
        "update": one,
        "delete": one,
        "list": f"{API}/config",
        "create_revision": f"{one}/revision/{{fourfour}}",
    }


def config_envelope(config: Doc) -> dict[str, Any]:
    return envelope(public(config), config_links(config["name"]))


def parse_options(raw: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """All eight parse options: ``raw`` over ``base`` over the defaults, type-checked."""
    if raw is not None and not isinstance(raw, dict):
        raise bad_field("parse_options", "expected an object or null")
    options = {**PARSE_OPTION_DEFAULTS, **(base or {}), **(raw or {})}
    for key in _INT_OPTIONS:
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad_field(f"parse_options.{key}", "expected a non-negative integer")
    for key in _BOOL_OPTIONS:
        if not isinstance(options[key], bool):
            raise bad_field(f"parse_options.{key}", "expected true or false")
    for key in _TEXT_OPTIONS:
        if not isinstance(options[key], str) or len(options[key]) != 1:
            raise bad_field(f"parse_options.{key}", "expected a single character")
    if options["encoding"] is not None and not isinstance(options["encoding"], str):
        raise bad_field("parse_options.encoding", "expected a string or null")
    return options


def columns(raw: Any) -> list[dict[str, Any]]:
    """Config columns with ``format``, ``description``, ``is_primary_key``, ``flags`` filled."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_field("columns", "expected an array of columns or null")
    out = []
    for index, col in enumerate(raw):
        where = f"columns[{index}]"
        if not isinstance(col, dict):
            raise bad_field(where, "expected an object")
        field_name = col.get("field_name")
        if not isinstance(field_name, str) or not field_name:
            raise bad_field(f"{where}.field_name", "expected a non-empty string")
        expr = col.get("transform_expr")
        if expr is not None and not isinstance(expr, str):
            raise bad_field(f"{where}.transform_expr", "expected a string")
        if expr is not None:
            _check_limits(f"{where}.transform_expr", expr)
        for key, kind in (("format", dict), ("flags", list)):
            if col.get(key) is not None and not isinstance(col[key], kind):
                raise bad_field(
                    f"{where}.{key}", f"expected {'an object' if kind is dict else 'an array'}"
                )
        out.append(
            {
                **col,
                "field_name": field_name,
                "display_name": col.get("display_name") or field_name,
                "transform_expr": expr if expr is not None else f"`{field_name}`",
                "format": col.get("format") or {},
                "description": col.get("description") or "",
                "is_primary_key": col.get("is_primary_key"),
                "flags": col.get("flags") or [],
            }
        )
    return out


def _check_limits(field: str, expr: str) -> None:
    """Refuse a transform over the expression limits now, not when a file arrives.

    Names and types can only be checked once a file's columns are known, so other
    faults still surface on the output schema then, as they always have.
    """
    try:
        parse_expression(expr)
    except ExpressionLimitError as exc:
        raise ApiError(
            400,
            f"invalid field '{field}': {exc}",
            key=exc.key,
            data={"field": field, "limit": exc.limit},
        ) from exc
    except ExpressionError:
        pass


def _data_action(raw: Any) -> str:
    if raw is None:
        return "update"
    if raw not in DATA_ACTIONS:
        raise bad_field("data_action", f"must be one of {', '.join(DATA_ACTIONS)}")
    return str(raw)


def _name(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise bad_field("name", "expected a non-empty string")
    return raw


def new_config(meta: MetaStore, body: dict[str, Any], user: Doc) -> Doc:
    """Validate and store a new config; 409 if the name is taken."""
    name = _name(body.get("name"))
    now = utcnow_iso()
    config: Doc = {
        "name": name,
        "data_action": _data_action(body.get("data_action")),
        "parse_options": parse_options(body.get("parse_options")),
        "columns": columns(body.get("columns")),
        "created_at": now,
        "updated_at": now,
        "created_by": auth.creator_ref(user),
    }
    if meta.get(Kind.CONFIG, name) is not None:
        raise ApiError(409, f"an import config named {name!r} already exists", key="conflict")
    return meta.put(Kind.CONFIG, name, config, owner=user["id"])


def _get(request: web.Request) -> Doc:
    name = request.match_info["name"]
    config = request.app[STATE].meta.get(Kind.CONFIG, name)
    if config is None:
        raise not_found("import config", repr(name))
    return config


async def list_configs(request: web.Request) -> web.Response:
    """C1."""
    auth.require_caller(request)
    found = request.app[STATE].meta.all(Kind.CONFIG)
    return json_reply([config_envelope(c) for c in found])


async def create_config(request: web.Request) -> web.Response:
    """C2."""
    user = auth.require_caller(request)
    body = await read_json_object(request)
    config = new_config(request.app[STATE].meta, body, user)
    return json_reply(config_envelope(config), status=201)


async def show_config(request: web.Request) -> web.Response:
    """C3."""
    auth.require_caller(request)
    return json_reply(config_envelope(_get(request)))


async def update_config(request: web.Request) -> web.Response:
    """C4: partial update; a new ``name`` renames the config."""
    auth.require_caller(request)
    config = _get(request)
    body = await read_json_object(request)
    meta = request.app[STATE].meta
    updated = dict(config)
    if "data_action" in body:
        updated["data_action"] = _data_action(body["data_action"])
    if "parse_options" in body:
        updated["parse_options"] = parse_options(body["parse_options"], config["parse_options"])
    if "columns" in body:
        updated["columns"] = columns(body["columns"])
    new_name = _name(body["name"]) if "name" in body else config["name"]
    updated["name"] = new_name
    updated["updated_at"] = utcnow_iso()
    with meta.transaction():
        if new_name != config["name"]:
            if meta.get(Kind.CONFIG, new_name) is not None:
                raise ApiError(
                    409, f"an import config named {new_name!r} already exists", key="conflict"
                )
            meta.delete(Kind.CONFIG, config["name"])
        meta.put(Kind.CONFIG, new_name, updated)
    return json_reply(config_envelope(updated), status=202)


async def delete_config(request: web.Request) -> web.Response:
    """C5."""
    auth.require_caller(request)
    config = _get(request)
    request.app[STATE].meta.delete(Kind.CONFIG, config["name"])
    return json_reply(config_envelope(config), status=201)


async def create_revision_from_config(request: web.Request) -> web.Response:
    """C6: the same as R3 with ``{"config": name}``."""
    config = _get(request)
    fourfour = request.match_info["fourfour"]
    _view, user = auth.view_for_write(request, fourfour)
    meta = request.app[STATE].meta
    revision = open_with_config(meta, fourfour, user, config["name"])
    return json_reply(revision_envelope(meta, revision), status=201)


def register(app: web.Application) -> None:
    base = f"{API}/config"
    app.router.add_get(base, list_configs)
    app.router.add_post(base, create_config)
    app.router.add_get(f"{base}/{{name}}", show_config)
    app.router.add_patch(f"{base}/{{name}}", update_config)
    app.router.add_delete(f"{base}/{{name}}", delete_config)
    app.router.add_post(f"{base}/{{name}}/revision/{{fourfour}}", create_revision_from_config)
