"""Getting a source's bytes in: the whole file in one body, or chunks and a commit.

Endpoints (digest §2.2 S3, S7-S9). ``POST /source/{id}`` is overloaded by
``Content-Type`` (§6.2): ``application/json`` is a parse-options update (``sources.py``),
anything else is the file itself. Bytes are checked per piece as they arrive, so an
oversized upload or one for a source that stopped is cut off mid-stream; once they are
complete, the parse starts (``jobs/parse.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from aiohttp import web

from dsmsyncd.server.catalog import sources
from dsmsyncd.server.catalog.metastore import Doc, Kind
from dsmsyncd.server.errors import ApiError, not_found
from dsmsyncd.server.fields import is_digits, optional_str
from dsmsyncd.server.http import access
from dsmsyncd.server.http.bodies import json_reply, read_json_object
from dsmsyncd.server.http.paths import source_path
from dsmsyncd.server.http.routes.sources import source_reply, update_options, url_source_id
from dsmsyncd.server.jobs import parse, short_wait
from dsmsyncd.server.state import STATE, ServerState
from dsmsyncd.server.storage import chunks, uploads

_READ_SIZE = 256 * 1024


async def post_source(request: web.Request) -> web.Response:
    """S3/S4: JSON is a parse-options update; any other body is the file."""
    if request.content_type == "application/json":
        return await update_options(request)
    return await upload_whole(request)


def _refuse_if_has_bytes(doc: Doc) -> None:
    if doc.get("_path"):
        raise ApiError(
            409,
            f"source {doc['id']} already has its bytes; create a new source to upload again",
            key="already_uploaded",
        )
    _refuse_if_stopped(doc, int(doc["id"]))


def _refuse_if_stopped(doc: Doc | None, sid: int) -> None:
    """Bytes for a cancelled (or otherwise failed), removed or deleted source are not taken."""
    if doc is None:
        raise not_found("source", sid)
    sources.refuse_if_removed(doc)
    if doc.get("failed_at") is not None:
        details = doc.get("failure_details") or {}
        raise ApiError(
            409,
            f"source {doc['id']} has stopped ({details.get('message', 'failed')}); "
            "create a new source to upload again",
            key=str(details.get("key") or "source_failed"),
        )


def _check_size(state: ServerState, end: int) -> None:
    """413 if a file reaching byte ``end`` would be over the configured limit."""
    limit = state.max_upload_bytes
    if limit is not None and end > limit:
        raise ApiError(
            413,
            f"the upload is larger than this server's limit of {limit} bytes "
            "(dsmsyncd serve --max-upload-bytes)",
            key="payload_too_large",
            data={"max_upload_bytes": limit},
        )


def _check_chunk_size(state: ServerState, length: int) -> None:
    """413 if one chunk is over the server's chunk limit (whatever the file's size)."""
    limit = state.max_chunk_bytes
    if length > limit:
        raise ApiError(
            413,
            f"a chunk may be at most {limit} bytes; this one is {length} or more: send the "
            f"file in chunks of the preferred_chunk_size ({state.preferred_chunk_size}) "
            "that initiate answers",
            key="chunk_too_large",
            data={"max_chunk_bytes": limit},
        )


async def _guarded(
    state: ServerState, sid: int, body: AsyncIterable[bytes], start: int, *, chunk: bool = False
) -> AsyncIterator[bytes]:
    """The request body, stopped as soon as it passes the size limit or the source stops.

    Checked per piece as it arrives, so an oversized or cancelled upload is cut off
    mid-stream instead of being written out first (``uploads`` then removes the
    partial file). ``start`` is where in the file the body begins (a chunk's offset);
    a ``chunk`` body is held to the chunk limit as well (it may not send a length).
    """
    end = start
    checked_at = -1  # the metastore's write count when the source was last read
    async for piece in body:
        end += len(piece)
        if chunk:
            _check_chunk_size(state, end - start)
        _check_size(state, end)
        if state.meta.writes != checked_at:  # a cancel or removal is a write
            checked_at = state.meta.writes
            _refuse_if_stopped(state.meta.get(Kind.SOURCE, sid), sid)
        yield piece


async def _refused_after_write(state: ServerState, sid: int) -> None:
    """Raise, after removing what a write left, if the source stopped while it ran.

    A cancel or a cleanup can land between the last piece and the rename into place;
    the bytes written then belong to nobody.
    """
    doc = state.meta.get(Kind.SOURCE, sid)
    try:
        _refuse_if_stopped(doc, sid)
    except ApiError:
        if doc is None or sources.is_removed(doc) or not doc.get("_path"):
            await uploads.remove(state.uploads_dir, sid)
        else:
            await uploads.remove_partial(state.uploads_dir, sid)
        raise


async def upload_whole(request: web.Request) -> web.Response:
    """S3: the whole file in one request body, streamed to disk."""
    state = request.app[STATE]
    sid = url_source_id(request)
    doc = access.source_for(request, sid, write=True)
    if request.content_length is not None:
        _check_size(state, request.content_length)
    async with state.upload_locks.lock(sid):
        doc = state.meta.get(Kind.SOURCE, sid) or doc
        _refuse_if_has_bytes(doc)
        body = _guarded(state, sid, request.content.iter_chunked(_READ_SIZE), 0)
        try:
            size = await uploads.write_whole(state.uploads_dir, sid, body)
        except OSError:
            await _refused_after_write(state, sid)
            raise
        await _refused_after_write(state, sid)
        doc = state.meta.get(Kind.SOURCE, sid) or doc
        name = sources.basename(request.headers.get("X-File-Name"))
        if name and doc["source_type"].get("type") == "upload":
            doc["source_type"]["filename"] = name
        if request.content_type != "application/octet-stream" or not doc.get("content_type"):
            doc["content_type"] = request.content_type
        parse.bytes_complete(state, doc, size)
    return source_reply(state, doc, status=201)


async def initiate(request: web.Request) -> web.Response:
    """S7: record the content type; answer the upload shape, un-enveloped (§6.4)."""
    state = request.app[STATE]
    doc = access.source_for(request, url_source_id(request), write=True)
    _refuse_if_has_bytes(doc)
    body = await read_json_object(request)
    content_type = optional_str(body, "content_type")
    if content_type:
        doc["content_type"] = content_type
        sources.save(state.meta, doc)
    return json_reply(
        {
            "preferred_chunk_size": state.preferred_chunk_size,
            "preferred_upload_parallelism": state.preferred_upload_parallelism,
        }
    )


def _int_param(request: web.Request, name: str) -> int:
    text = request.match_info[name]
    if not is_digits(text):
        raise ApiError(400, f"{name} must be a non-negative integer, not {text!r}")
    return int(text)


async def chunk(request: web.Request) -> web.Response:
    """S8: one chunk, written at its offset in the source's file; resending it replaces it."""
    state = request.app[STATE]
    sid = url_source_id(request)
    doc = access.source_for(request, sid, write=True)
    _refuse_if_has_bytes(doc)
    offset = _int_param(request, "byte_offset")
    _check_chunk_size(state, request.content_length or 0)
    _check_size(state, offset + (request.content_length or 0))
    body = _guarded(state, sid, request.content.iter_chunked(_READ_SIZE), offset, chunk=True)
    try:
        info = await chunks.write_chunk(
            state.uploads_dir, state.chunk_gates, sid, _int_param(request, "seq_num"), offset, body
        )
    except OSError:
        await _refused_after_write(state, sid)
        raise
    await _refused_after_write(state, sid)
    resource = {
        "seq_num": info.seq_num,
        "byte_offset": info.byte_offset,
        "end_byte_offset": info.end_byte_offset,
    }
    return json_reply({"resource": resource, "links": {}})


async def commit(request: web.Request) -> web.Response:
    """S9: check the chunks cover the file and rename it into place; a repeated commit of
    the same file is answered again. A small file is answered parsed
    (``jobs/short_wait.py``)."""
    state = request.app[STATE]
    sid = url_source_id(request)
    access.source_for(request, sid, write=True)
    last_seq = _int_param(request, "seq_num")
    total = _int_param(request, "byte_offset")
    async with state.upload_locks.lock(sid):
        doc = state.meta.get(Kind.SOURCE, sid)
        if doc is None:
            raise not_found("source", sid)
        if doc.get("_path") and doc.get("filesize") == total:
            return source_reply(state, doc)
        _refuse_if_has_bytes(doc)
        _check_size(state, total)
        size = await chunks.commit(state.uploads_dir, state.chunk_gates, sid, last_seq, total)
        await _refused_after_write(state, sid)
        # Re-read: a cancel may have marked the source while the commit waited.
        doc = state.meta.get(Kind.SOURCE, sid) or doc
        parse.bytes_complete(state, doc, size)
    if await short_wait.source_settled(state, sid):  # a small file: answer it parsed
        doc = state.meta.get(Kind.SOURCE, sid) or doc
    return source_reply(state, doc)


def register(app: web.Application) -> None:
    src = source_path("{sid}")
    router = app.router
    router.add_post(src, post_source)
    router.add_post(f"{src}/initiate", initiate)
    router.add_post(f"{src}/chunk/{{seq_num}}/{{byte_offset}}", chunk)
    router.add_post(f"{src}/chunk/{{seq_num}}/{{byte_offset}}/commit", commit)
