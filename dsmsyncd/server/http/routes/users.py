"""``GET /api/users/current(.json)``: who the credentials sign in as (the core API)."""

from __future__ import annotations

from aiohttp import web

from dsmsyncd.server.catalog.metastore import public
from dsmsyncd.server.http.auth import require_caller
from dsmsyncd.server.http.bodies import json_reply


async def current_user(request: web.Request) -> web.Response:
    return json_reply(public(require_caller(request)))


def register(app: web.Application) -> None:
    app.router.add_get("/api/users/current.json", current_user)
    app.router.add_get("/api/users/current", current_user)
