"""The HTTP layer of the DSMAPI client: sessions, one request, errors, retries, polling.

TLS verification is always on (a custom CA bundle may be given), credentials are kept
out of every message and repr. Foreign exceptions are translated in exactly one place
(:meth:`Transport._send`), so callers only ever see the hierarchy of ``errors.py``.

One session, one connection pool (HTTP keep-alive, one ``SSLContext`` for every TLS
handshake) for the whole life of the client: a job's requests reuse the connections
its earlier requests opened, so a file pays the TCP and TLS handshakes once, not per
request (issue 9: at 50 ms round trip each fresh connection cost ~100 ms). Requests
differ only in whether they may be repeated (``retry.py``):

* idempotent ones (reads, chunks, commit, discard) are retried by the ``RetryPolicy``
  (:meth:`Transport.call`);
* non-idempotent ones (create a dataset, open a revision, create a source, transform,
  create a config, and **apply**) go through :meth:`Transport.call_once`: sent once,
  never resent by aiohttp. aiohttp resends a PUT or DELETE once when a reused
  connection drops (RFC 9110 calls them idempotent), which for ``PUT …/apply`` meant a
  second apply of a revision the server had already taken; the ``_never_resend``
  middleware, given to these requests alone, turns that drop into an error. A
  transport failure after such a request may have been sent raises
  ``OutcomeUnknown``, and the caller reads the resource to learn what happened
  before doing anything else.

An idle pooled connection is kept ``KEEPALIVE_S`` only, less than the idle timeout of
common servers (Apache's 5 s the shortest; nginx 75 s, load balancers 60 s, ours
60 s), so a connection is not reused after the server may have closed it for
idleness: a non-idempotent request then does not fail on a stale connection
(``OutcomeUnknown`` would be safe, but needless). A job's polls keep its connections
warm well within that.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Self, TypeVar

import aiohttp
from yarl import URL

from dsmsyncd import __version__
from dsmsyncd.dsmapi.chunk_payload import ChunkPayload, Pace
from dsmsyncd.dsmapi.errors import (
    DsmapiError,
    OutcomeUnknown,
    ServerError,
    TransportError,
    classify,
)
from dsmsyncd.dsmapi.retry import NO_RETRY, OnRetry, RetryPolicy, with_retries

T = TypeVar("T")

POLL_FIRST_S = 0.05
POLL_MAX_S = 0.5
KEEPALIVE_S = 4.0


class Credentials:
    """Basic (user/password or API key id/secret) or an OAuth token; never printed."""

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        app_token: str | None = None,
    ) -> None:
        # The header value only: aiohttp.BasicAuth is deprecated (warns) in aiohttp 3.14.
        self._basic = _basic_header(username, password or "") if username else None
        self._token = token
        self.app_token = app_token

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self._basic is not None:
            headers["Authorization"] = self._basic
        elif self._token:
            headers["Authorization"] = f"OAuth {self._token}"
        if self.app_token:
            headers["X-App-Token"] = self.app_token
        return headers

    def __repr__(self) -> str:
        kind = "basic" if self._basic else "token" if self._token else "anonymous"
        return f"Credentials({kind}, ********)"


def _basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def ssl_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """Verification is always on; a private CA (the local server's, a corporate one) is added."""
    context = ssl.create_default_context()
    if ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    return context


class Transport:
    """Sessions and single requests; :class:`DsmapiClient` adds the API's resources."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        ca_bundle: str | None = None,
        timeout_s: float = 300.0,
        retry: RetryPolicy | None = None,
        on_retry: OnRetry | None = None,
        max_connections: int = 32,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._retry = retry or RetryPolicy()
        self._on_retry = on_retry
        self._ssl = ssl_context(ca_bundle) if self.base_url.startswith("https") else False
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=30)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        # Paid before each slice of a chunk body: the daemon's shared upload rate limit.
        self.upload_pace: Pace | None = None

    async def __aenter__(self) -> Self:
        headers = {"User-Agent": f"dsmsyncd/{__version__}", **self._credentials.headers()}
        self._session = aiohttp.ClientSession(
            timeout=self._timeout,
            connector=aiohttp.TCPConnector(
                limit=self._max_connections, ssl=self._ssl, keepalive_timeout=KEEPALIVE_S
            ),
            headers=headers,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def warm(self, count: int) -> None:
        """Have ``count`` connections to the server in the pool: idle ones are taken
        and the rest opened, then all are put back, none having sent a request.

        A job's chunks go out in parallel, each on a connection of its own: opened
        when the first chunks are sent, each costs the TCP and TLS handshakes (two
        round trips, 300 ms at 150 ms) after ``initiate``, before its chunk. Warmed
        while the revision and its source are being created, they are ready when the
        chunks start (issue 9). Best effort: a connection that cannot be made now is
        made by its request, as without this.
        """
        connector = self._session.connector if self._session is not None else None
        if connector is None or count <= 0:
            return
        # The key the session's own requests pool under (its ssl argument is the
        # default, True: the context is the connector's), so they take these.
        request = aiohttp.ClientRequest("GET", URL(self.base_url), loop=asyncio.get_running_loop())
        opened = await asyncio.gather(
            *(connector.connect(request, [], self._timeout) for _ in range(count)),
            return_exceptions=True,
        )
        for connection in opened:
            if isinstance(connection, aiohttp.connector.Connection):
                connection.release()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None

    # -- transport -----------------------------------------------------------------

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}{path}"

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        data: bytes | memoryview | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        params: Mapping[str, str] | None = None,
        once: bool = False,
    ) -> Any:
        session = self._session
        if session is None:
            raise DsmapiError("the client is not open: use 'async with DsmapiClient(...)'")
        url = self.url(path)
        request_id = secrets.token_hex(16)
        headers = {"Accept": accept, "X-Socrata-RequestId": request_id}
        payload: bytes | ChunkPayload | None = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        elif data is not None:
            payload = ChunkPayload(data, content_type, self.upload_pace)
        try:
            async with session.request(
                method,
                url,
                data=payload,
                headers=headers,
                params=params,
                middlewares=(_never_resend,) if once else None,
            ) as response:
                raw = await response.read()
                if response.status in (200, 201, 202):
                    if "json" in (response.content_type or "") and raw:
                        return json.loads(raw)
                    return raw
                raise _server_error(method, url, response, raw, request_id)
        except ServerError:
            raise
        except aiohttp.ClientConnectorError as exc:  # no connection: nothing was sent
            raise TransportError(f"{method} failed: {exc}", url=url) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            what = f"{method} failed: {exc or type(exc).__name__}"
            raise (OutcomeUnknown if once else TransportError)(what, url=url) from exc

    async def call(self, method: str, path: str, *, retry: bool = True, **kw: Any) -> Any:
        """An idempotent request, retried by the policy unless ``retry`` is False."""
        policy = self._retry if retry else NO_RETRY
        return await with_retries(
            lambda: self._send(method, path, **kw), policy, on_retry=self._on_retry
        )

    async def call_once(self, method: str, path: str, **kw: Any) -> Any:
        """A non-idempotent request: sent once, never resent (on a pooled connection).

        Raises ``OutcomeUnknown`` when the transport failed after the request may have
        reached the server; the caller must read the resource before repeating it.
        """
        return await self._send(method, path, once=True, **kw)


async def _never_resend(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """Client middleware of non-idempotent requests: a dropped connection is reported,
    never retried. aiohttp resends PUT and DELETE once on ``ClientOSError`` or
    ``ServerDisconnectedError``; any other ``ClientError`` it re-raises as it is."""
    try:
        return await handler(request)
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
        raise _DroppedOnce(f"connection lost: {exc or type(exc).__name__}") from exc


class _DroppedOnce(aiohttp.ClientConnectionError):
    """Not one of the errors aiohttp's resend loop catches, on purpose."""


def _server_error(
    method: str, url: str, response: aiohttp.ClientResponse, raw: bytes, request_id: str
) -> ServerError:
    body: Any = None
    message = raw[:500].decode("utf-8", "replace") or response.reason or "no message"
    try:
        body = json.loads(raw)
        if isinstance(body, dict) and body.get("message"):
            message = str(body["message"])
    except ValueError:
        pass
    retry_after: float | None = None
    header = response.headers.get("Retry-After")
    if header and header.replace(".", "", 1).isdigit():
        retry_after = float(header)
    server_rid = response.headers.get("X-Socrata-RequestId") or (
        body.get("request_id") if isinstance(body, dict) else None
    )
    return classify(response.status)(
        response.status,
        message,
        method=method,
        url=url,
        request_id=server_rid or request_id,
        body=body,
        retry_after=retry_after,
    )


async def poll(
    fetch: Callable[[], Awaitable[Any]],
    parse: Callable[[Any], T],
    done: Callable[[T], bool],
    *,
    timeout_s: float,
    what: str,
    first: T | None = None,
) -> T:
    """Fetch until ``done``; the interval grows from 50 ms to 500 ms.

    Short first intervals let a small file publish in well under a second; the cap
    bounds the time lost after a long step ends (measured in bench/RESULTS.md) while
    keeping a job to two requests a second against a hosted server. ``first`` is the
    resource as a previous answer already showed it (a commit answers with the
    source): when it is done no request is sent, else polling starts one interval on.

    The interval runs from one request's start to the next's, not from an answer to
    the next request: over a long link the answer's round trip is part of the wait,
    so at 150 ms a poll capped at 500 ms looks every 500 ms, not every 650 (issue 9).
    Still one request at a time, never more than one per interval.
    """
    deadline = time.monotonic() + timeout_s
    interval = POLL_FIRST_S
    value = first
    asked = time.monotonic()
    while True:
        if value is not None:
            if done(value):
                return value
            if time.monotonic() > deadline:
                raise DsmapiError(f"timed out after {timeout_s:.0f}s waiting for {what}")
            await asyncio.sleep(max(0.0, asked + interval - time.monotonic()))
            interval = min(POLL_MAX_S, interval * 1.5)
        asked = time.monotonic()
        value = parse(await fetch())
