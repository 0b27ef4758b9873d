"""Async client for the publishing API v1 (DSMAPI), written from the protocol digest.

One ``aiohttp`` session per client, TLS verification always on (a custom CA bundle
may be given), credentials kept out of every message and repr. Foreign exceptions are
translated in exactly one place (:meth:`DsmapiClient._send`), so callers only ever
see the hierarchy of ``errors.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiohttp

from dsmsyncd import __version__
from dsmsyncd.dsmapi.errors import (
    DsmapiError,
    ResourceFailed,
    ServerError,
    TransportError,
    classify,
)
from dsmsyncd.dsmapi.models import (
    InputSchema,
    OutputSchema,
    Revision,
    Source,
    TaskSet,
    UploadPreferences,
)
from dsmsyncd.dsmapi.retry import NO_RETRY, OnRetry, RetryPolicy, with_retries

logger = logging.getLogger("dsmsyncd.dsmapi.client")

T = TypeVar("T")

API = "/api/publishing/v1"
POLL_FIRST_S = 0.05
POLL_MAX_S = 0.5


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


class DsmapiClient:
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

    async def __aenter__(self) -> DsmapiClient:
        self._session = aiohttp.ClientSession(
            timeout=self._timeout,
            connector=aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl),
            headers={"User-Agent": f"dsmsyncd/{__version__}", **self._credentials.headers()},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

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
    ) -> Any:
        if self._session is None:
            raise DsmapiError("the client is not open: use 'async with DsmapiClient(...)'")
        url = self.url(path)
        request_id = secrets.token_hex(16)
        headers = {"Accept": accept, "X-Socrata-RequestId": request_id}
        payload: bytes | memoryview | None = data
        if body is not None:
            payload = json.dumps(body).encode()
        if payload is not None:
            headers["Content-Type"] = content_type
        try:
            async with self._session.request(
                method, url, data=payload, headers=headers, params=params
            ) as response:
                raw = await response.read()
                if response.status in (200, 201, 202):
                    if "json" in (response.content_type or "") and raw:
                        return json.loads(raw)
                    return raw
                raise _server_error(method, url, response, raw, request_id)
        except ServerError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(f"{method} failed: {exc or type(exc).__name__}", url=url) from exc

    async def call(self, method: str, path: str, *, retry: bool = True, **kw: Any) -> Any:
        policy = self._retry if retry else NO_RETRY
        return await with_retries(
            lambda: self._send(method, path, **kw), policy, on_retry=self._on_retry
        )

    # -- revisions -------------------------------------------------------------------

    async def create_dataset(self, metadata: Mapping[str, Any]) -> Revision:
        """A new dataset: revision 0 on a freshly minted fourfour (not retried: not idempotent)."""
        body = {"action": {"type": "update"}, "metadata": dict(metadata)}
        return Revision.from_envelope(
            await self.call("POST", f"{API}/revision", body=body, retry=False)
        )

    async def open_revision(
        self,
        fourfour: str,
        action: str,
        *,
        permission: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Revision:
        body = {
            "metadata": dict(metadata or {}),
            "action": {"type": action, "permission": permission},
        }
        path = f"{API}/revision/{fourfour}"
        return Revision.from_envelope(await self.call("POST", path, body=body, retry=False))

    async def open_revision_with_config(self, fourfour: str, config: str) -> Revision:
        path = f"{API}/revision/{fourfour}"
        return Revision.from_envelope(
            await self.call("POST", path, body={"config": config}, retry=False)
        )

    async def get_revision(self, fourfour: str, seq: int) -> Revision:
        return Revision.from_envelope(await self.call("GET", f"{API}/revision/{fourfour}/{seq}"))

    async def list_revisions(self, fourfour: str, *, open_only: bool = False) -> list[Revision]:
        params = {"open": "true"} if open_only else None
        body = await self.call("GET", f"{API}/revision/{fourfour}", params=params)
        return [Revision.from_envelope(item) for item in body]

    async def list_sources(self, revision: Revision) -> list[Source]:
        """The sources attached to a revision (R10); used to recognise an orphan as ours."""
        path = revision.links.get("list_sources") or f"{revision.path}/source"
        return [Source.from_envelope(item) for item in await self.call("GET", path)]

    async def discard_revision(self, revision: Revision) -> None:
        await self.call("DELETE", revision.links.get("discard") or revision.path)

    async def apply(self, revision: Revision, output_schema_id: int | None) -> TaskSet:
        body = {} if output_schema_id is None else {"output_schema_id": output_schema_id}
        path = revision.links.get("apply") or f"{revision.path}/apply"
        return TaskSet.from_envelope(await self.call("PUT", path, body=body, retry=False))

    async def wait_for_task_set(
        self, revision: Revision, task_set: TaskSet, *, timeout_s: float = 3600
    ) -> TaskSet:
        if task_set.is_terminal:
            return task_set
        path = task_set.links.get("show") or f"{revision.path}/apply/{task_set.id}"
        return await _poll(
            lambda: self.call("GET", path),
            TaskSet.from_envelope,
            lambda t: t.is_terminal,
            timeout_s=timeout_s,
            what=f"apply job {task_set.id} of {revision.fourfour}",
        )

    # -- sources and upload --------------------------------------------------------------

    async def create_upload_source(
        self, revision: Revision, filename: str, parse_options: Mapping[str, Any] | None = None
    ) -> Source:
        body = {
            "source_type": {"type": "upload", "filename": filename},
            "parse_options": dict(parse_options or {}),
        }
        path = revision.links.get("create_source") or f"{revision.path}/source"
        return Source.from_envelope(await self.call("POST", path, body=body, retry=False))

    async def get_source(self, source_id: int) -> Source:
        return Source.from_envelope(await self.call("GET", f"{API}/source/{source_id}"))

    async def initiate_upload(self, source: Source, content_type: str) -> UploadPreferences:
        path = source.links.get("initiate") or f"{API}/source/{source.id}/initiate"
        body = await self.call("POST", path, body={"content_type": content_type})
        return UploadPreferences(
            chunk_size=int(body["preferred_chunk_size"]),
            parallelism=int(body["preferred_upload_parallelism"]),
        )

    def chunk_path(self, source: Source, seq: int, offset: int) -> str:
        template = (
            source.links.get("chunk")
            or f"{API}/source/{source.id}/chunk/{{seq_num}}/{{byte_offset}}"
        )
        return str(template).format(seq_num=seq, byte_offset=offset)

    async def upload_chunk(
        self, source: Source, seq: int, offset: int, data: bytes | memoryview
    ) -> None:
        """One chunk, retried on its own: the server treats a resent chunk as idempotent."""
        await self.call(
            "POST",
            self.chunk_path(source, seq, offset),
            data=data,
            content_type="application/octet-stream",
        )

    async def commit_upload(self, source: Source, last_seq: int, total: int) -> Source:
        template = (
            source.links.get("commit")
            or f"{API}/source/{source.id}/chunk/{{seq_num}}/{{byte_offset}}/commit"
        )
        path = str(template).format(seq_num=last_seq, byte_offset=total)
        return Source.from_envelope(await self.call("POST", path))

    async def wait_for_output_schema(
        self, source: Source, *, timeout_s: float = 3600
    ) -> OutputSchema:
        """Poll the source until parsed, then its newest output schema until completed."""
        parsed = await _poll(
            lambda: self.call("GET", f"{API}/source/{source.id}"),
            Source.from_envelope,
            lambda s: s.failed_at is not None or s.latest_output_schema() is not None,
            timeout_s=timeout_s,
            what=f"parsing of source {source.id}",
        )
        if parsed.failed_at is not None:
            details = parsed.failure_details or {}
            reason = details.get("message") if isinstance(details, dict) else None
            raise ResourceFailed(f"source {source.id}", str(reason or details), details=details)
        latest = parsed.latest_output_schema()
        assert latest is not None
        path = f"{API}/source/{source.id}/schema/{latest['input_schema_id']}/output/{latest['id']}"
        schema = await _poll(
            lambda: self.call("GET", path),
            OutputSchema.from_envelope,
            lambda o: o.completed_at is not None or bool(o.failed_transforms()),
            timeout_s=timeout_s,
            what=f"output schema {latest['id']}",
        )
        failed = schema.failed_transforms()
        if failed:
            column = failed[0]
            details = column["transform"].get("failure_details") or {}
            raise ResourceFailed(
                f"transform of column {column.get('field_name')}",
                str(details.get("message") or "the transform failed"),
                details=details,
            )
        return schema

    async def transform(
        self, source: Source, input_schema_id: int, output_columns: list[dict[str, Any]]
    ) -> OutputSchema:
        """A new output schema for the input schema: columns with their transform expressions."""
        path = f"{API}/source/{source.id}/schema/{input_schema_id}"
        body = {"output_columns": output_columns}
        return OutputSchema.from_envelope(await self.call("POST", path, body=body, retry=False))

    async def wait_for_schema_completion(
        self, source: Source, schema: OutputSchema, *, timeout_s: float = 3600
    ) -> OutputSchema:
        path = f"{API}/source/{source.id}/schema/{schema.input_schema_id}/output/{schema.id}"
        return await _poll(
            lambda: self.call("GET", path),
            OutputSchema.from_envelope,
            lambda o: o.completed_at is not None or bool(o.failed_transforms()),
            timeout_s=timeout_s,
            what=f"output schema {schema.id}",
        )

    async def error_rows(self, schema: OutputSchema, source_id: int, limit: int = 100) -> list[Any]:
        """Error rows as the server gives them (after the schema header), up to ``limit``."""
        path = schema.links.get("schema_errors") or (
            f"{API}/source/{source_id}/schema/{schema.input_schema_id}/errors/{schema.id}"
        )
        body = await self.call("GET", path, params={"limit": str(limit), "offset": "0"})
        return list(body[1:]) if isinstance(body, list) else []

    async def wait_for_input_schema(
        self, source: Source, input_schema_id: int, *, timeout_s: float = 3600
    ) -> InputSchema:
        """The input schema (I1) once loaded: its ``num_row_errors`` is then final."""
        path = _input_schema_link(source, "show", input_schema_id) or (
            f"{API}/source/{source.id}/schema/{input_schema_id}"
        )
        return await _poll(
            lambda: self.call("GET", path),
            InputSchema.from_envelope,
            lambda s: s.total_rows is not None,
            timeout_s=timeout_s,
            what=f"input schema {input_schema_id}",
        )

    async def input_row_errors(
        self, source: Source, input_schema_id: int, limit: int = 100
    ) -> list[Any]:
        """Rows the parser could not split (I4), ``{"offset", "error"}`` each, up to ``limit``."""
        path = _input_schema_link(source, "row_errors", input_schema_id) or (
            f"{API}/source/{source.id}/schema/{input_schema_id}/errors"
        )
        body = await self.call("GET", path, params={"limit": str(limit), "offset": "0"})
        return list(body) if isinstance(body, list) else []

    # -- configs and reads ---------------------------------------------------------------

    async def get_config(self, name: str) -> dict[str, Any]:
        body = await self.call("GET", f"{API}/config/{name}")
        return dict(body["resource"])

    async def create_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        body = await self.call("POST", f"{API}/config", body=dict(config), retry=False)
        return dict(body["resource"])

    async def current_user(self) -> dict[str, Any]:
        """The signed-in user (core API); its ``id`` is what ``created_by.user_id`` shows."""
        return dict(await self.call("GET", "/api/users/current.json"))

    async def get_view(self, fourfour: str) -> dict[str, Any]:
        return dict(await self.call("GET", f"/api/views/{fourfour}"))

    async def read_rows(self, fourfour: str, params: Mapping[str, str] | None = None) -> list[Any]:
        return list(await self.call("GET", f"/resource/{fourfour}.json", params=params))


def _input_schema_link(source: Source, name: str, input_schema_id: int) -> str | None:
    """A link of the source's ``input_schema_links`` templates, filled in (digest §1.0)."""
    templates = source.links.get("input_schema_links")
    template = templates.get(name) if isinstance(templates, dict) else None
    if not isinstance(template, str):
        return None
    return template.replace("{input_schema_id}", str(input_schema_id))


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


async def _poll(
    fetch: Callable[[], Awaitable[Any]],
    parse: Callable[[Any], T],
    done: Callable[[T], bool],
    *,
    timeout_s: float,
    what: str,
) -> T:
    """Fetch until ``done``; the interval grows from 50 ms to 500 ms.

    Short first intervals let a small file publish in well under a second; the cap
    bounds the time lost after a long step ends (measured in bench/RESULTS.md) while
    keeping a job to two requests a second against a hosted server.
    """
    deadline = time.monotonic() + timeout_s
    interval = POLL_FIRST_S
    while True:
        value = parse(await fetch())
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise DsmapiError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(interval)
        interval = min(POLL_MAX_S, interval * 1.5)
