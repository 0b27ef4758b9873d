"""Reading requests (ids in the URL, JSON bodies) and writing JSON replies, the same way
in every route module."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from aiohttp import web

from dsmsyncd.server import json_depth
from dsmsyncd.server.errors import ApiError, not_found
from dsmsyncd.server.fields import is_digits, json_type
from dsmsyncd.server.json_depth import MAX_JSON_DEPTH

REQUEST_ID_HEADER = "X-Socrata-RequestId"
# The largest JSON body read (``client_max_size`` of the app): JSON bodies are read whole
# into memory, and the largest this API needs (an output schema or config of 100,000
# columns) is about 30 MiB. File bytes are streamed to disk and are not held to it.
MAX_JSON_BODY_BYTES = 64 * 1024 * 1024
REQUEST_ID_KEY: web.RequestKey[str] = web.RequestKey("dsmsyncd_request_id", str)
# One encoder for every reply: ``json.dumps`` with keywords builds a new one per call,
# which cost twice the encoding of a small reply (issue 9).
_REPLY_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def request_id(request: web.Request) -> str:
    """The id the request-id middleware gave this request (or the client's own)."""
    value: str = request.get(REQUEST_ID_KEY, "")
    return value


def url_id(request: web.Request, name: str, what: str) -> int:
    """The integer id in URL part ``name``; anything else names no ``what`` (404)."""
    text = request.match_info[name]
    if not is_digits(text):
        raise not_found(what, text)
    return int(text)


def url_seq(request: web.Request, name: str = "seq") -> int:
    """A revision sequence number from the URL (404 if it is not an integer)."""
    text = request.match_info[name]
    if not is_digits(text):
        raise ApiError(404, f"revision sequence number must be an integer, not {text!r}")
    return int(text)


def envelope(resource: Any, links: dict[str, Any]) -> dict[str, Any]:
    """The DSMAPI ``{"resource", "links"}`` envelope (digest §1.0)."""
    return {"resource": resource, "links": links}


def json_reply(data: Any, status: int = 200) -> web.Response:
    """A JSON reply; success statuses are only ever 200, 201 or 202 (digest §2.8)."""
    return web.Response(
        text=_REPLY_ENCODER.encode(data),
        status=status,
        content_type="application/json",
    )


async def stream_reply(
    request: web.Request, chunks: AsyncGenerator[bytes, None], headers: Mapping[str, str]
) -> web.StreamResponse:
    """Stream ``chunks`` as the reply body.

    The first two chunks (a header row, then the first batch of rows) are read before
    the reply starts, so a query that fails, runs over its time budget or needs too
    much memory while it starts answers a JSON error rather than a cut-off body.
    """
    async with contextlib.aclosing(chunks):
        first: list[bytes] = []
        async for chunk in chunks:
            first.append(chunk)
            if len(first) == 2:
                break
        reply = web.StreamResponse(headers=headers)
        await reply.prepare(request)
        for chunk in first:
            await reply.write(chunk)
        async for chunk in chunks:
            await reply.write(chunk)
    await reply.write_eof()
    return reply


async def read_json(request: web.Request) -> Any:
    """The parsed JSON body; an empty body reads as ``{}``.

    A body nested deeper than ``MAX_JSON_DEPTH`` is a 400 (``json_too_deep``; see
    ``json_depth``): 100,000 ``[`` made a 500.

    The SDK sends ``content-type: application/json`` with no body on several POSTs
    (commit, config ``create_revision``), so an empty body is not an error.
    """
    raw = await _read_bounded(request)
    if not raw.strip():
        return {}
    try:
        return json_depth.loads(raw)
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"request body is not UTF-8 text: {exc}", key="malformed_json") from exc
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            key="malformed_json",
        ) from exc
    except json_depth.TooDeep as exc:
        raise ApiError(
            400,
            f"request body is nested more than {MAX_JSON_DEPTH} arrays or objects deep; "
            "no request of this API needs that many, flatten it",
            key="json_too_deep",
            data={"limit": MAX_JSON_DEPTH},
        ) from exc


async def _read_bounded(request: web.Request) -> bytes:
    """The whole body, refused (413) as soon as it is known to be over the JSON limit:
    by its ``Content-Length`` before reading, or by aiohttp while a body without one
    arrives."""
    length = request.content_length
    if length is None or length <= MAX_JSON_BODY_BYTES:
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            length = None
    raise ApiError(
        413,
        f"a JSON request body may be at most {MAX_JSON_BODY_BYTES} bytes"
        + (f"; this one is {length}" if length is not None else "")
        + ": send fewer columns or values at once (file bytes go to the upload endpoints)",
        key="payload_too_large",
        data={"limit": MAX_JSON_BODY_BYTES},
    )


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The JSON body, which must be an object."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(
            400,
            f"request body must be a JSON object, not {json_type(body)}",
            key="malformed_json",
        )
    return body
