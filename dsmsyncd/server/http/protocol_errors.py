"""Refusals that aiohttp makes before any route or middleware runs, answered as JSON.

A request line or header over ``MAX_LINE_BYTES``/``MAX_FIELD_BYTES``, more than
``MAX_HEADERS`` headers, a ``Content-Length`` that is not a number or bytes that are not
HTTP at all are refused by aiohttp's parser with a plain-text 400, and anything raised
past the middlewares with a plain-text 500. Every error of this server is the JSON
error of ``errors.py`` (a client reads its ``key`` and ``message``), so
:class:`JsonErrorRunner` serves the app with a connection handler that writes those
refusals as that body, keeping the status and aiohttp's own explanation. Found by sending the
server 20,000-byte headers and 5,000 headers (``tests/server/http/test_http_protocol_limits.py``).
"""

from __future__ import annotations

import json

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from dsmsyncd.server.errors import ApiError
from dsmsyncd.server.http.bodies import REQUEST_ID_HEADER
from dsmsyncd.server.ids import new_request_id

# aiohttp's own defaults, made explicit so that the README and the messages can name them.
MAX_LINE_BYTES = 8190  # the request line (method, path and query)
MAX_FIELD_BYTES = 8190  # one header line
MAX_HEADERS = 128

PARSER_LIMITS = {
    "max_line_size": MAX_LINE_BYTES,
    "max_field_size": MAX_FIELD_BYTES,
    "max_headers": MAX_HEADERS,
}

_HOW_TO_FIX = (
    f"the request line and each header may be at most {MAX_LINE_BYTES} bytes, and a request "
    f"may carry at most {MAX_HEADERS} headers"
)


class JsonErrorRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer aiohttp's own refusals as JSON errors.

    aiohttp builds those replies in ``RequestHandler.handle_error``, outside every
    middleware and before any route matched (so ``on_response_prepare`` does not run
    for them either); the one place to change them is that method, on the handler class
    its ``Server`` makes per connection.
    """

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer
        return server


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class _JsonErrorHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        response = super().handle_error(request, status, exc, message)
        if isinstance(response, web.Response) and isinstance(response.body, bytes):
            _rewrite_as_json(response, response.body.decode("utf-8", "replace").strip())
        return response


def _rewrite_as_json(response: web.Response, said: str) -> None:
    """Make the plain-text error ``response`` (aiohttp's words: ``said``) the JSON error."""
    if response.status == 400:
        message = f"the request is not valid HTTP: {said} ({_HOW_TO_FIX})"
        error = ApiError(400, message, key="malformed_request", data=dict(PARSER_LIMITS))
    else:
        error = ApiError(response.status, said.splitlines()[0] if said else response.reason)
    rid = new_request_id()
    response.body = json.dumps(error.body(rid), separators=(",", ":")).encode()
    response.content_type = "application/json"
    response.headers[REQUEST_ID_HEADER] = rid
