"""Import config endpoints C1-C6 of digest §2.5, and O6 (``build_from``).

``{name}`` in URLs is percent-decoded by the router; links percent-encode it again. The
documents and their rules are ``catalog/configs.py``; every config, posted or built from
an output schema, is made there by one function.
"""

from __future__ import annotations

from aiohttp import web

from dsmsyncd.server.catalog import configs
from dsmsyncd.server.catalog.metastore import Doc, Kind
from dsmsyncd.server.errors import not_found
from dsmsyncd.server.http import access, auth
from dsmsyncd.server.http.bodies import json_reply, read_json_object, url_id
from dsmsyncd.server.http.paths import API
from dsmsyncd.server.http.represent.configs import config_envelope
from dsmsyncd.server.http.represent.revisions import revision_envelope
from dsmsyncd.server.state import STATE


def _get(request: web.Request) -> Doc:
    return configs.get(request.app[STATE].meta, request.match_info["name"])


async def list_configs(request: web.Request) -> web.Response:
    """C1."""
    auth.require_caller(request)
    found = request.app[STATE].meta.all(Kind.CONFIG)
    return json_reply([config_envelope(c) for c in found])


async def create_config(request: web.Request) -> web.Response:
    """C2."""
    user = auth.require_caller(request)
    body = await read_json_object(request)
    config = configs.new_config(request.app[STATE].meta, body, user)
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
    updated = configs.update_config(request.app[STATE].meta, config, body)
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
    user = access.check_write(request, fourfour)
    meta = request.app[STATE].meta
    revision = configs.open_revision(meta, fourfour, user, config["name"])
    return json_reply(revision_envelope(meta, revision), status=201)


async def build_config(request: web.Request) -> web.Response:
    """O6: an import config from an output schema's columns and its source's options."""
    meta = request.app[STATE].meta
    user = auth.require_caller(request)
    osid = url_id(request, "osid", "osid")
    doc = meta.get(Kind.OUTPUT_SCHEMA, osid)
    if doc is None:
        raise not_found("output schema", osid)
    source = access.source_for(request, int(doc["_source_id"]))
    body = await read_json_object(request)
    config = configs.new_config(
        meta,
        {
            "name": body.get("name"),
            "data_action": body.get("data_action"),
            "parse_options": source["parse_options"],
            "columns": configs.columns_of(doc),
        },
        user,
    )
    return json_reply(config_envelope(config), status=201)


def register(app: web.Application) -> None:
    base = f"{API}/config"
    app.router.add_get(base, list_configs)
    app.router.add_post(base, create_config)
    app.router.add_get(f"{base}/{{name}}", show_config)
    app.router.add_patch(f"{base}/{{name}}", update_config)
    app.router.add_delete(f"{base}/{{name}}", delete_config)
    app.router.add_post(f"{base}/{{name}}/revision/{{fourfour}}", create_revision_from_config)
    app.router.add_post(f"{base}/build_from/{{osid}}", build_config)
