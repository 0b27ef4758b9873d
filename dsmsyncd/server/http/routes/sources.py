"""HTTP routes for sources: create, show, attach, parse options, and getting the bytes in.

Endpoints (digest §2.1 R9/R10/R13, §2.2 S1-S9). ``POST /source/{id}`` is overloaded by
``Content-Type`` (§6.2): ``application/json`` is a parse-options update, anything else
is the file itself. Schema and row endpoints live in ``routes_schemas.py``; the work
done once bytes are complete lives in ``processing.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from dsmsyncd.server.catalog import revisions
from dsmsyncd.server.catalog import sources as source_store
from dsmsyncd.server.catalog.metastore import Doc, Kind, utcnow_iso
from dsmsyncd.server.errors import ApiError, bad_field, not_found
from dsmsyncd.server.http import auth
from dsmsyncd.server.http.bodies import json_reply, optional_int, optional_str, read_json_object
from dsmsyncd.server.http.represent.sources import API, source_envelope
from dsmsyncd.server.http.routes import schemas as routes_schemas
from dsmsyncd.server.jobs import cleanup
from dsmsyncd.server.jobs import parse as processing
from dsmsyncd.server.jobs import resume_parse as processing_resume
from dsmsyncd.server.jobs import view_source as view_sources
from dsmsyncd.server.state import STATE, ServerState
from dsmsyncd.server.storage import uploads

LOCKS: web.AppKey[uploads.UploadLocks] = web.AppKey("dsmsyncd_upload_locks", uploads.UploadLocks)
_READ_SIZE = 256 * 1024


def _state(request: web.Request) -> ServerState:
    return request.app[STATE]


def _sid(request: web.Request) -> int:
    return source_store.parse_id(request.match_info["sid"], "source")


def _reply(state: ServerState, doc: Doc, status: int = 200) -> web.Response:
    return json_reply(source_envelope(state.meta, doc), status=status)


async def _create(
    request: web.Request, body: dict[str, Any], revision: Doc | None, user: Doc
) -> web.Response:
    state = _state(request)
    source_type = source_store.normalise_source_type(body.get("source_type"))
    config = processing.source_config_for_revision(state.meta, revision)
    base = (config or {}).get("parse_options") or None
    options = source_store.normalise_parse_options(body.get("parse_options"), base)
    if source_type["type"] == "view":
        fourfour = optional_str(source_type, "fourfour", where="source_type.")
        if fourfour is None:
            raise bad_field("source_type.fourfour", "a view source names its dataset")
        auth.view_for_read(request, fourfour)
        source_type["loaded"] = True
    doc = source_store.new_source(state.meta, user, source_type, options, revision)
    if source_type["type"] == "view":
        doc["finished_at"] = utcnow_iso()
        await view_sources.load(state, doc)
        source_store.save(state.meta, doc)
    return _reply(state, doc, status=201)


async def create_standalone(request: web.Request) -> web.Response:
    """S1: a source outside any revision, unless the body names one to join."""
    user = auth.require_caller(request)
    body = await read_json_object(request)
    revision = None
    fourfour = optional_str(body, "fourfour")
    if fourfour is not None:
        seq = optional_int(body, "revision_seq")
        if seq is None:
            raise bad_field("revision_seq", "needed with fourfour to attach to a revision")
        revision, user = source_store.open_revision_for_write(request, fourfour, seq)
    return await _create(request, body, revision, user)


async def create_on_revision(request: web.Request) -> web.Response:
    """R9: a source on an open revision of a dataset the caller owns."""
    fourfour = request.match_info["ff"]
    seq = revisions.parse_seq(request.match_info["seq"])
    revision, user = source_store.open_revision_for_write(request, fourfour, seq)
    body = await read_json_object(request)
    return await _create(request, body, revision, user)


async def list_on_revision(request: web.Request) -> web.Response:
    """R10: the revision's sources, oldest first."""
    state = _state(request)
    fourfour = request.match_info["ff"]
    seq = revisions.parse_seq(request.match_info["seq"])
    auth.view_for_write(request, fourfour)
    if revisions.find(state.meta, fourfour, seq) is None:
        raise not_found("revision", f"{fourfour}/{seq}")
    docs = source_store.revision_sources(state.meta, fourfour, seq)
    return json_reply([source_envelope(state.meta, d) for d in docs])


async def download(request: web.Request) -> web.StreamResponse:
    """R13: the original bytes of a revision's source (by default its active one)."""
    state = _state(request)
    fourfour = request.match_info["ff"]
    seq = revisions.parse_seq(request.match_info["seq"])
    auth.view_for_write(request, fourfour)
    revision = revisions.find(state.meta, fourfour, seq)
    if revision is None:
        raise not_found("revision", f"{fourfour}/{seq}")
    candidates = source_store.revision_sources(state.meta, fourfour, seq)
    wanted = request.match_info.get("sid")
    if wanted is not None:
        candidates = [d for d in candidates if str(d["id"]) == wanted]
        if not candidates:
            raise not_found("source", f"{wanted} on revision {fourfour}/{seq}")
    with_bytes = [d for d in candidates if d.get("_path")]
    if not with_bytes:
        raise ApiError(404, f"revision {fourfour}/{seq} has no uploaded file", key="not_found")
    doc = _active(revision, with_bytes)
    cleanup.refuse_if_removed(doc)
    filename = doc["source_type"].get("filename") or f"source-{doc['id']}"
    return web.FileResponse(
        doc["_path"],
        headers={
            "Content-Type": doc.get("content_type") or "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


def _active(revision: Doc, docs: list[Doc]) -> Doc:
    for doc in docs:
        if doc["id"] == revision.get("blob_id"):
            return doc
    return docs[-1]


async def show(request: web.Request) -> web.Response:
    """S2."""
    doc = source_store.source_for(request, _sid(request))
    return _reply(_state(request), doc)


async def post_source(request: web.Request) -> web.Response:
    """S3/S4: JSON is a parse-options update; any other body is the file."""
    if request.content_type == "application/json":
        return await update_options(request)
    return await upload_whole(request)


async def update_options(request: web.Request) -> web.Response:
    """S4: new parse options; once bytes exist they make a new source, re-parsed."""
    state = _state(request)
    doc = source_store.source_for(request, _sid(request), write=True)
    body = await read_json_object(request)
    raw = body.get("parse_options", body)
    options = source_store.normalise_parse_options(raw, doc["parse_options"])
    if not doc.get("_path"):
        doc["parse_options"] = options
        return _reply(state, source_store.save(state.meta, doc))
    user = auth.require_caller(request)
    revision = source_store.source_revision(state.meta, doc)
    new = source_store.new_source(state.meta, user, dict(doc["source_type"]), options, revision)
    target = uploads.final_path(state.uploads_dir, int(new["id"]))
    await uploads.copy_bytes(Path(doc["_path"]), target)
    new.update(
        content_type=doc.get("content_type"),
        filesize=doc.get("filesize"),
        finished_at=utcnow_iso(),
        _path=str(target),
    )
    source_store.save(state.meta, new)
    processing.start(state, new)
    return _reply(state, new, status=201)


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
    cleanup.refuse_if_removed(doc)
    if doc.get("failed_at") is not None:
        details = doc.get("failure_details") or {}
        raise ApiError(
            409,
            f"source {doc['id']} has stopped ({details.get('message', 'failed')}); "
            "create a new source to upload again",
            key=str(details.get("key") or "source_failed"),
        )


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"the upload is larger than this server's limit of {limit} bytes "
        "(dsmsyncd serve --max-upload-bytes)",
        key="payload_too_large",
        data={"max_upload_bytes": limit},
    )


def _check_size(state: ServerState, end: int) -> None:
    """413 if a file reaching byte ``end`` would be over the configured limit."""
    limit = state.max_upload_bytes
    if limit is not None and end > limit:
        raise _too_large(limit)


async def _guarded(
    state: ServerState, sid: int, body: AsyncIterable[bytes], start: int
) -> AsyncIterator[bytes]:
    """The request body, stopped as soon as it passes the size limit or the source stops.

    Checked per piece as it arrives, so an oversized or cancelled upload is cut off
    mid-stream instead of being written out first (``uploads`` then removes the
    partial file). ``start`` is where in the file the body begins (a chunk's offset).
    """
    end = start
    async for piece in body:
        end += len(piece)
        _check_size(state, end)
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
        if doc is None or cleanup.is_removed(doc) or not doc.get("_path"):
            await uploads.remove(state.uploads_dir, sid)
        else:
            await uploads.remove_partial(state.uploads_dir, sid)
        raise


async def upload_whole(request: web.Request) -> web.Response:
    """S3: the whole file in one request body, streamed to disk."""
    state = _state(request)
    sid = _sid(request)
    doc = source_store.source_for(request, sid, write=True)
    if request.content_length is not None:
        _check_size(state, request.content_length)
    async with request.app[LOCKS].for_source(sid):
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
        name = source_store.basename(request.headers.get("X-File-Name"))
        if name and doc["source_type"].get("type") == "upload":
            doc["source_type"]["filename"] = name
        if request.content_type != "application/octet-stream" or not doc.get("content_type"):
            doc["content_type"] = request.content_type
        _bytes_complete(state, doc, size)
    return _reply(state, doc, status=201)


def _bytes_complete(state: ServerState, doc: Doc, size: int) -> None:
    doc["_path"] = str(uploads.final_path(state.uploads_dir, int(doc["id"])))
    doc["filesize"] = size
    doc["finished_at"] = utcnow_iso()
    source_store.save(state.meta, doc)
    processing.start(state, doc)


async def add_to_revision(request: web.Request) -> web.Response:
    """S5: attach a source to an open revision (both body forms of §6.3)."""
    state = _state(request)
    doc = source_store.source_for(request, _sid(request), write=True)
    body = await read_json_object(request)
    nested = body.get("revision")
    target: dict[str, Any] = nested if isinstance(nested, dict) else body
    fourfour = optional_str(target, "fourfour", where="revision.")
    seq = optional_int(target, "revision_seq", where="revision.")
    if fourfour is None or seq is None:
        raise bad_field("revision", 'expected {"revision": {"fourfour", "revision_seq"}}')
    revision, _user = source_store.open_revision_for_write(request, fourfour, seq)
    source_store.attach(state.meta, doc, revision)
    if doc.get("_path") and not doc["parse_options"].get("parse_source", True):
        processing.mark_blob(state.meta, doc)
    return _reply(state, doc, status=202)


async def load(request: web.Request) -> web.Response:
    """S6: view sources load when created, so this only reports the source."""
    doc = source_store.source_for(request, _sid(request), write=True)
    return _reply(_state(request), doc)


async def initiate(request: web.Request) -> web.Response:
    """S7: record the content type; answer the upload shape, un-enveloped (§6.4)."""
    state = _state(request)
    doc = source_store.source_for(request, _sid(request), write=True)
    _refuse_if_has_bytes(doc)
    body = await read_json_object(request)
    content_type = optional_str(body, "content_type")
    if content_type:
        doc["content_type"] = content_type
        source_store.save(state.meta, doc)
    return json_reply(
        {
            "preferred_chunk_size": state.preferred_chunk_size,
            "preferred_upload_parallelism": state.preferred_upload_parallelism,
        }
    )


def _int_param(request: web.Request, name: str) -> int:
    text = request.match_info[name]
    if not text.isdigit():
        raise ApiError(400, f"{name} must be a non-negative integer, not {text!r}")
    return int(text)


async def chunk(request: web.Request) -> web.Response:
    """S8: one chunk, streamed to its own file; resending it replaces it."""
    state = _state(request)
    sid = _sid(request)
    doc = source_store.source_for(request, sid, write=True)
    _refuse_if_has_bytes(doc)
    offset = _int_param(request, "byte_offset")
    _check_size(state, offset + (request.content_length or 0))
    body = _guarded(state, sid, request.content.iter_chunked(_READ_SIZE), offset)
    try:
        info = await uploads.write_chunk(
            state.uploads_dir, sid, _int_param(request, "seq_num"), offset, body
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
    """S9: join the chunks; a repeated commit of the same file is answered again."""
    state = _state(request)
    sid = _sid(request)
    source_store.source_for(request, sid, write=True)
    last_seq = _int_param(request, "seq_num")
    total = _int_param(request, "byte_offset")
    async with request.app[LOCKS].for_source(sid):
        doc = state.meta.get(Kind.SOURCE, sid)
        if doc is None:
            raise not_found("source", sid)
        if doc.get("_path") and doc.get("filesize") == total:
            return _reply(state, doc)
        _refuse_if_has_bytes(doc)
        _check_size(state, total)
        size = await uploads.commit(state.uploads_dir, sid, last_seq, total)
        await _refused_after_write(state, sid)
        # Re-read: a cancel may have marked the source while the chunks were joined.
        doc = state.meta.get(Kind.SOURCE, sid) or doc
        _bytes_complete(state, doc, size)
    return _reply(state, doc)


async def cancel(request: web.Request) -> web.Response:
    """S10 (the ``cancel`` link): stop an upload or parse that is still going on.

    The source is marked failed with ``failure_details.key == "cancelled"`` before
    anything else, so every in-flight chunk or body stops at its next piece and a
    running parse drops its table when it returns (``processing.parse_source``). Its
    chunks are then removed under the upload lock (after a commit that is joining
    them). A source already failed is answered as it is; one that finished is a 409.
    """
    state = _state(request)
    sid = _sid(request)
    doc = source_store.source_for(request, sid, write=True)
    if source_store.is_settled(state.meta, doc):
        raise ApiError(
            409,
            f"source {sid} has already finished; there is nothing to cancel",
            key="already_finished",
        )
    if doc.get("failed_at") is None:
        doc["failed_at"] = utcnow_iso()
        doc["failure_details"] = source_store.failure(
            "cancelled", f"source {sid} was cancelled by its owner"
        )
        source_store.save(state.meta, doc)
    async with request.app[LOCKS].for_source(sid):
        await uploads.remove_partial(state.uploads_dir, sid)
    return _reply(state, state.meta.get(Kind.SOURCE, sid) or doc)


def register(app: web.Application) -> None:
    """Attach the source routes and the schema routes to ``app``."""
    app[LOCKS] = uploads.UploadLocks()
    app.on_startup.append(processing_resume.on_startup)
    rev = f"{API}/revision/{{ff}}/{{seq}}"
    src = f"{API}/source/{{sid}}"
    router = app.router
    router.add_post(f"{API}/source", create_standalone)
    router.add_post(f"{rev}/source", create_on_revision)
    router.add_get(f"{rev}/source", list_on_revision)
    router.add_get(f"{rev}/source/download", download)
    router.add_get(f"{rev}/source/download/{{sid}}", download)
    router.add_get(src, show)
    router.add_post(src, post_source)
    router.add_patch(src, add_to_revision)
    router.add_post(f"{src}/options", update_options)
    router.add_put(f"{src}/load", load)
    router.add_post(f"{src}/initiate", initiate)
    router.add_post(f"{src}/chunk/{{seq_num}}/{{byte_offset}}", chunk)
    router.add_post(f"{src}/chunk/{{seq_num}}/{{byte_offset}}/commit", commit)
    router.add_post(f"{src}/cancel", cancel)
    routes_schemas.register(app)
