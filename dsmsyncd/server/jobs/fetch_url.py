"""Fetching the file of a ``url`` source (``{"type": "url", "url": ...}``), in the background.

The hosted service downloads such a file itself and then parses it like an upload; so
does this server: the body is streamed to the source's upload file (never held whole in
memory), and once complete the source goes through the same parse as an upload
(``parse.bytes_complete``). Every way a fetch can go wrong ends the source with
``failed_at`` and a ``failure_details`` that says which: ``url_fetch_failed`` (not a 200,
or the connection failed), ``url_too_large`` (past ``--url-fetch-max-bytes``, checked
on ``Content-Length`` and again while the bytes arrive), ``url_fetch_timeout`` (the
whole fetch took longer than ``--url-fetch-timeout``). A client polling the source never
waits on a fetch that will not finish.

SSRF policy. The local server is a staging tool that by default listens on loopback
for its own users, so it fetches what an authenticated dataset owner names, from any
host, private and loopback addresses included (a file served on the same machine is
a normal staging setup). What it refuses: schemes other than http and https (at
creation, ``catalog/sources.fetchable_url``), more than :data:`MAX_REDIRECTS`
redirects, and redirects to another scheme (aiohttp follows only http(s)). An
operator who exposes the server to people they do not trust should not do so: the
server is not meant to be a public service.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable

import aiohttp

from dsmsyncd.server.catalog import sources
from dsmsyncd.server.catalog.metastore import Doc, Kind
from dsmsyncd.server.jobs import parse
from dsmsyncd.server.state import ServerState
from dsmsyncd.server.storage import uploads

logger = logging.getLogger("dsmsyncd.server.jobs.fetch_url")

MAX_REDIRECTS = 5
_READ_SIZE = 256 * 1024


class _FetchRefused(Exception):
    """The fetch ended without the file; ``key`` and message go to ``failure_details``."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def start(state: ServerState, source: Doc) -> None:
    """Fetch a url source's file in the background (filed with the parses, so cleanup and
    shutdown wait for it like for a parse)."""
    source_id = int(source["id"])
    state.parses.start(source_id, fetch(state, source_id), label=f"{source_id}-url")


async def fetch(state: ServerState, source_id: int) -> None:
    """The file at the source's URL → its upload file → the parse; never raises for a
    bad URL (the source records why it failed)."""
    doc = state.meta.get(Kind.SOURCE, source_id)
    if doc is None or doc.get("failed_at") is not None or doc.get("_path"):
        return
    url = str(doc["source_type"]["url"])
    try:
        size, content_type = await _download(state, source_id, url)
    except _FetchRefused as exc:
        await _give_up(state, source_id, exc.key, exc.message)
        return
    except Exception as exc:  # anything unforeseen still ends the source, not the poller
        logger.exception("fetching url source %s failed", source_id)
        await _give_up(state, source_id, "url_fetch_failed", f"could not fetch {url}: {exc}")
        return
    if _stopped(state, source_id):
        await uploads.remove(state.uploads_dir, source_id)  # cancelled or discarded meanwhile
        return
    doc = state.meta.get(Kind.SOURCE, source_id) or doc
    doc["content_type"] = content_type
    parse.bytes_complete(state, doc, size)


async def _download(state: ServerState, source_id: int, url: str) -> tuple[int, str | None]:
    """Stream the body to the source's file; (size, content type without parameters)."""
    limit, seconds = state.url_fetch_max_bytes, state.url_fetch_timeout
    timeout = aiohttp.ClientTimeout(total=seconds)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, max_redirects=MAX_REDIRECTS) as resp,
        ):
            if resp.status != 200:
                raise _FetchRefused(
                    "url_fetch_failed",
                    f"fetching {url} answered HTTP {resp.status} {resp.reason or ''}".rstrip()
                    + "; a url source needs an address that answers 200 with the file",
                )
            if resp.content_length is not None and resp.content_length > limit:
                raise _too_large(url, limit, f"it announces {resp.content_length} bytes")
            pieces = resp.content.iter_chunked(_READ_SIZE)
            body = _capped(pieces, url, limit, lambda: _stopped(state, source_id))
            size = await uploads.write_whole(state.uploads_dir, source_id, body)
            return size, resp.content_type or None
    except TimeoutError as exc:
        raise _FetchRefused(
            "url_fetch_timeout",
            f"fetching {url} took longer than the server's limit of {seconds:g}s and was "
            "stopped; serve the file faster or ask the operator to raise "
            "dsmsyncd serve --url-fetch-timeout",
        ) from exc
    except aiohttp.TooManyRedirects as exc:
        raise _FetchRefused(
            "url_fetch_failed", f"fetching {url} was redirected more than {MAX_REDIRECTS} times"
        ) from exc
    except aiohttp.ClientError as exc:
        raise _FetchRefused("url_fetch_failed", f"could not fetch {url}: {exc}") from exc


def _too_large(url: str, limit: int, what: str) -> _FetchRefused:
    return _FetchRefused(
        "url_too_large",
        f"the file at {url} is larger than the server's limit of {limit} bytes ({what}); "
        "ask the operator to raise dsmsyncd serve --url-fetch-max-bytes",
    )


async def _capped(
    body: AsyncIterable[bytes], url: str, limit: int, stopped: Callable[[], bool]
) -> AsyncIterator[bytes]:
    """The body's pieces, cut off past ``limit`` bytes or once the source was stopped
    (cancelled, or its revision discarded): nobody waits for the rest."""
    seen = 0
    async for piece in body:
        seen += len(piece)
        if seen > limit:
            raise _too_large(url, limit, f"more than {limit} bytes arrived")
        if stopped():
            raise _FetchRefused("cancelled", f"the fetch of {url} was stopped")
        yield piece


def _stopped(state: ServerState, source_id: int) -> bool:
    doc = state.meta.get(Kind.SOURCE, source_id)
    return doc is None or doc.get("failed_at") is not None or sources.is_removed(doc)


async def _give_up(state: ServerState, source_id: int, key: str, message: str) -> None:
    """Fail the source (unless something failed it first) and remove what was written."""
    await uploads.remove(state.uploads_dir, source_id)
    doc = state.meta.get(Kind.SOURCE, source_id)
    if doc is not None and doc.get("failed_at") is None:
        sources.fail(state.meta, doc, key, message)
