"""The aiohttp application of the local server: middlewares, identity page, every route
table and every startup hook, registered here and nowhere else.

Middlewares, outermost first:

1. request id: take the client's ``X-Socrata-RequestId`` or mint 32 hex characters;
   every reply echoes it (set in ``on_response_prepare`` so that streamed replies and
   error replies carry it too);
2. errors: :class:`ApiError` and aiohttp's own ``HTTPException`` (404 unknown path,
   405, 413 …) become the JSON error body of ``errors.py``; anything else is logged with
   its traceback and answered as a 500 that names the request id, never the traceback;
   a read stopped by its time or memory budget is a 503 ``query_timeout`` or a 413
   ``query_out_of_memory`` that says which budget;
3. auth: resolves the caller (``http/auth.py``).

At startup, before the first request: half-written whole-body uploads a killed server
left are removed (``storage/uploads.py``; a chunk cut short needs nothing, since the
journal of ``storage/chunks.py`` never counted it), applies that a stopped server left running are
settled (``jobs/resume_apply.py``), then unfinished parses and transforms are started
again (``jobs/resume_parse.py``); while it runs, files kept for restores expire
(``jobs/cleanup.py``).

An unknown path under ``/api/publishing/v1`` answers a JSON 404 ``not_implemented``
that names the method and path: the publishing API documents endpoints this server
does not serve (attachments, for one), and the client should learn which.

The SDK reads ``Content-Type`` on every reply and crashes without it (digest §2.8), so
a reply that reaches ``on_response_prepare`` without one is labelled before it leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import importlib.resources
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import hdrs, web

from dsmsyncd.server.errors import ApiError
from dsmsyncd.server.http import auth
from dsmsyncd.server.http.bodies import (
    MAX_JSON_BODY_BYTES,
    REQUEST_ID_HEADER,
    REQUEST_ID_KEY,
    json_reply,
    request_id,
)
from dsmsyncd.server.http.paths import API
from dsmsyncd.server.http.routes import (
    archive,
    configs,
    revisions,
    schemas,
    soda,
    sources,
    uploads,
    users,
    views,
)
from dsmsyncd.server.ids import new_request_id
from dsmsyncd.server.jobs import cleanup, resume_apply, resume_parse
from dsmsyncd.server.state import STATE, ServerState
from dsmsyncd.server.storage import uploads as uploads_store
from dsmsyncd.server.storage.budget import QueryOutOfMemory, QueryOutOfRange, QueryTimeout

logger = logging.getLogger("dsmsyncd.server.app")

OPENAPI_PATH = f"{API}/openapi.json"
# ``archive`` before ``revisions``: its ``{ff}/changes`` would match ``{ff}/{seq}`` too.
ROUTE_TABLES = (users, configs, archive, revisions, sources, uploads, schemas, views, soda)

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
    except (QueryTimeout, QueryOutOfMemory, QueryOutOfRange) as exc:
        error = _over_budget(exc)
        return json_reply(error.body(rid), status=error.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        from_router = request.match_info.http_exception is exc
        message = exc.reason
        key = None
        if from_router and exc.status == 404 and request.path.startswith(f"{API}/"):
            # Documented endpoints this server lacks land here too: say so, by name.
            message = (
                f"not implemented on the local server: {request.method} {request.path} "
                f"(the endpoints it serves are listed at {OPENAPI_PATH})"
            )
            key = "not_implemented"
        elif from_router and exc.status == 404:
            message = f"no such endpoint: {request.path}"
        elif from_router and exc.status == 405:
            message = f"method {request.method} is not allowed on {request.path}"
        elif exc.text and not exc.text.startswith(str(exc.status)):
            message = exc.text
        error = ApiError(exc.status, message, key=key)
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


def _over_budget(exc: QueryTimeout | QueryOutOfMemory | QueryOutOfRange) -> ApiError:
    """The reply to a read that its time or memory budget, or the number range, stopped."""
    if isinstance(exc, QueryOutOfRange):
        return ApiError(
            400,
            "the query computes a number beyond the local server's number range (20 digits "
            f"before the point, 18 after): {exc.detail}; narrow it ($where) or sum fewer rows",
            key="query.soql.number-out-of-range",
        )
    if isinstance(exc, QueryTimeout):
        return ApiError(
            503,
            f"the query ran longer than the server's time budget of {exc.budget:g}s and was "
            "cancelled; narrow it ($where, $limit, simpler expressions) or ask the operator "
            "to raise dsmsyncd serve --query-timeout",
            key="query_timeout",
            data={"budget_seconds": exc.budget},
        )
    return ApiError(
        413,
        f"the query needs more memory than the server's limit of {exc.memory_limit} and "
        "was cancelled; narrow it ($where, $limit, fewer columns) or ask the operator to "
        "raise dsmsyncd serve --memory-limit",
        key="query_out_of_memory",
        data={"memory_limit": exc.memory_limit},
    )


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
        f"<p>API base: <code>{API}</code></p>"
        f"<p><a href='{OPENAPI_PATH}'>OpenAPI description</a></p>"
        "</body></html>"
    )
    return web.Response(text=page, content_type="text/html")


async def openapi(request: web.Request) -> web.Response:
    text = importlib.resources.files("dsmsyncd.server").joinpath("openapi.json").read_text()
    return web.Response(text=text, content_type="application/json")


async def _resume_background_work(app: web.Application) -> None:
    state = app[STATE]
    removed = await asyncio.to_thread(uploads_store.remove_partial_writes, state.uploads_dir)
    if removed:
        logger.info("removed %d partial upload write(s) a stopped server left", removed)
    await resume_apply.resume(state)
    resume_parse.resume(state)


async def _sweep_kept_files(app: web.Application) -> AsyncIterator[None]:
    """Files kept for restores expire while the server runs; the sweep stops with it.

    Not a ``state.spawn`` task: shutdown drains those, and this one never ends.
    """
    sweep = asyncio.get_running_loop().create_task(cleanup.sweep_kept_files(app[STATE]))
    yield
    sweep.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sweep


def create_app(state: ServerState) -> web.Application:
    app = web.Application(
        middlewares=[request_id_middleware, error_middleware, auth.auth_middleware],
        client_max_size=MAX_JSON_BODY_BYTES,
    )
    app[STATE] = state
    app[auth.AUTH] = auth.Authenticator(state.meta)
    app.on_response_prepare.append(_label_reply)
    app.on_startup.append(_resume_background_work)
    app.cleanup_ctx.append(_sweep_kept_files)
    app.router.add_get("/", index)
    app.router.add_get(OPENAPI_PATH, openapi)
    for table in ROUTE_TABLES:
        table.register(app)
    return app
