"""The aiohttp application of the local server: middlewares, identity page, routes.

Middlewares, outermost first:

1. request id: take the client's ``X-Socrata-RequestId`` or mint 32 hex characters;
   every reply echoes it (set in ``on_response_prepare`` so that streamed replies and
   error replies carry it too);
2. errors: :class:`ApiError` and aiohttp's own ``HTTPException`` (404 unknown path,
   405, 413 …) become the JSON error body of ``errors.py``; anything else is logged with
   its traceback and answered as a 500 that names the request id, never the traceback;
   a read stopped by its time or memory budget is a 503 ``query_timeout`` or a 413
   ``query_out_of_memory`` that says which budget;
3. auth: resolves the caller (``auth.py``).

The SDK reads ``Content-Type`` on every reply and crashes without it (digest §2.8), so
a reply that reaches ``on_response_prepare`` without one is labelled before it leaves.
"""

from __future__ import annotations

import html
import importlib.resources
import logging
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from dsmsyncd.server.errors import ApiError, over_budget
from dsmsyncd.server.http import auth
from dsmsyncd.server.http.bodies import REQUEST_ID_HEADER, REQUEST_ID_KEY, json_reply, request_id
from dsmsyncd.server.http.routes import configs as routes_configs
from dsmsyncd.server.http.routes import revisions as routes_revisions
from dsmsyncd.server.http.routes import sources as routes_sources
from dsmsyncd.server.http.routes import views as routes_views
from dsmsyncd.server.ids import new_request_id
from dsmsyncd.server.state import STATE, ServerState
from dsmsyncd.server.storage.budget import QueryOutOfMemory, QueryTimeout

logger = logging.getLogger("dsmsyncd.server.app")

API_BASE = "/api/publishing/v1"
OPENAPI_PATH = f"{API_BASE}/openapi.json"
# Upload chunks are at most 4 MiB (state.PREFERRED_CHUNK_SIZE); leave room for
# single-shot uploads of modest files and for clients that ignore the preference.
CLIENT_MAX_SIZE = 1024 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _server_version() -> str:
    try:
        from importlib.metadata import version

        return version("dsmsyncd")
    except Exception:  # not installed (running from a source tree)
        return "0+unknown"


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get(REQUEST_ID_HEADER, "").strip()
    # Accept what the client sent if it is a sane token; it is echoed in a header.
    ok = 0 < len(incoming) <= 128 and all(c.isalnum() or c in "-_." for c in incoming)
    request[REQUEST_ID_KEY] = incoming if ok else new_request_id()
    return await handler(request)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = request_id(request)
    try:
        return await handler(request)
    except ApiError as exc:
        reply = json_reply(exc.body(rid), status=exc.status)
        if exc.status == 401:
            reply.headers[hdrs.WWW_AUTHENTICATE] = auth.REALM
        return reply
    except (QueryTimeout, QueryOutOfMemory) as exc:
        error = over_budget(exc)
        return json_reply(error.body(rid), status=error.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        from_router = request.match_info.http_exception is exc
        message = exc.reason
        if from_router and exc.status == 404:
            message = f"no such endpoint: {request.path}"
        elif from_router and exc.status == 405:
            message = f"method {request.method} is not allowed on {request.path}"
        elif exc.text and not exc.text.startswith(str(exc.status)):
            message = exc.text
        error = ApiError(exc.status, message)
        reply = json_reply(error.body(rid), status=exc.status)
        for name in (hdrs.ALLOW, hdrs.WWW_AUTHENTICATE, hdrs.RETRY_AFTER):
            if name in exc.headers:
                reply.headers[name] = exc.headers[name]
        return reply
    except Exception:
        logger.exception(
            "unhandled error on %s %s (request id %s)", request.method, request.path, rid
        )
        error = ApiError(500, f"internal error, request id {rid}")
        return json_reply(error.body(rid), status=500)


async def _label_reply(request: web.Request, response: web.StreamResponse) -> None:
    rid = request_id(request)
    if rid:
        response.headers[REQUEST_ID_HEADER] = rid
    if hdrs.CONTENT_TYPE not in response.headers:
        response.headers[hdrs.CONTENT_TYPE] = "application/octet-stream"


async def index(request: web.Request) -> web.Response:
    """A small identity page, so a person opening the URL knows what answered."""
    version = html.escape(_server_version())
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>dsmsyncd serve</title></head>"
        "<body><h1>dsmsyncd</h1>"
        f"<p>Local DSMAPI-compatible server, version {version}.</p>"
        f"<p>API base: <code>{API_BASE}</code></p>"
        f"<p><a href='{OPENAPI_PATH}'>OpenAPI description</a></p>"
        "</body></html>"
    )
    return web.Response(text=page, content_type="text/html")


async def openapi(request: web.Request) -> web.Response:
    text = importlib.resources.files("dsmsyncd.server").joinpath("openapi.json").read_text()
    return web.Response(text=text, content_type="application/json")


def create_app(state: ServerState) -> web.Application:
    app = web.Application(
        middlewares=[request_id_middleware, error_middleware, auth.auth_middleware],
        client_max_size=CLIENT_MAX_SIZE,
    )
    app[STATE] = state
    app.on_response_prepare.append(_label_reply)
    app.router.add_get("/", index)
    app.router.add_get(OPENAPI_PATH, openapi)
    auth.register(app)
    routes_configs.register(app)
    routes_revisions.register(app)
    routes_sources.register(app)
    routes_views.register(app)
    return app
