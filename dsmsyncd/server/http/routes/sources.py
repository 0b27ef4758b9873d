"""Source endpoints: create, show, attach, parse options, download and cancel.

Endpoints (digest §2.1 R9/R10/R13, §2.2 S1, S2, S4-S6, S10). Getting the bytes in (S3,
S7-S9) is ``uploads.py``; schema and row endpoints are ``schemas.py``; the work done
once bytes are complete is ``jobs/parse.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from dsmsyncd.server.catalog import configs, revisions, sources
from dsmsyncd.server.catalog.metastore import Doc, Kind, utcnow_iso
from dsmsyncd.server.errors import ApiError, bad_field, not_found
from dsmsyncd.server.fields import optional_int, optional_str
from dsmsyncd.server.http import access, auth
from dsmsyncd.server.http.bodies import json_reply, read_json_object, url_id, url_seq
from dsmsyncd.server.http.paths import API, revision_path, source_path
from dsmsyncd.server.http.represent.sources import source_envelope
from dsmsyncd.server.jobs import fetch_url, parse, view_source
from dsmsyncd.server.state import STATE, ServerState
from dsmsyncd.server.storage import uploads


def url_source_id(request: web.Request) -> int:
    return url_id(request, "sid", "source")


def source_reply(state: ServerState, doc: Doc, status: int = 200) -> web.Response:
    return json_reply(source_envelope(state.meta, doc), status=status)


async def _create(
    request: web.Request, body: dict[str, Any], revision: Doc | None, user: Doc
) -> web.Response:
    state = request.app[STATE]
    source_type = sources.normalise_source_type(body.get("source_type"))
    config = configs.of_revision(state.meta, revision)
    base = (config or {}).get("parse_options") or None
    options = sources.normalise_parse_options(body.get("parse_options"), base)
    if source_type["type"] == "view":
        fourfour = optional_str(source_type, "fourfour", where="source_type.")
        if fourfour is None:
            raise bad_field("source_type.fourfour", "a view source names its dataset")
        access.check_read(request, fourfour)
        source_type["loaded"] = True
    doc = sources.new_source(state.meta, user, source_type, options, revision)
    if source_type["type"] == "url":
        fetch_url.start(state, doc)
    elif source_type["type"] in sources.AGENT_SOURCE_TYPES:
        doc = sources.fail_agent_source(state.meta, doc)
    elif source_type["type"] == "view":
        doc["finished_at"] = utcnow_iso()
        await view_source.load(state, doc)
        sources.save(state.meta, doc)
    return source_reply(state, doc, status=201)


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
        revision, user = access.open_revision_for_write(request, fourfour, seq)
    return await _create(request, body, revision, user)


async def create_on_revision(request: web.Request) -> web.Response:
    """R9: a source on an open revision of a dataset the caller owns."""
    fourfour = request.match_info["ff"]
    seq = url_seq(request)
    revision, user = access.open_revision_for_write(request, fourfour, seq)
    body = await read_json_object(request)
    return await _create(request, body, revision, user)


async def list_on_revision(request: web.Request) -> web.Response:
    """R10: the revision's sources, oldest first."""
    state = request.app[STATE]
    fourfour = request.match_info["ff"]
    seq = url_seq(request)
    access.check_write(request, fourfour)
    revisions.get(state.meta, fourfour, seq)
    docs = sources.revision_sources(state.meta, fourfour, seq)
    return json_reply([source_envelope(state.meta, d) for d in docs])


async def download(request: web.Request) -> web.StreamResponse:
    """R13: the original bytes of a revision's source (by default its active one)."""
    state = request.app[STATE]
    fourfour = request.match_info["ff"]
    seq = url_seq(request)
    access.check_write(request, fourfour)
    revision = revisions.get(state.meta, fourfour, seq)
    candidates = sources.revision_sources(state.meta, fourfour, seq)
    wanted = request.match_info.get("sid")
    if wanted is not None:
        candidates = [d for d in candidates if str(d["id"]) == wanted]
        if not candidates:
            raise not_found("source", f"{wanted} on revision {fourfour}/{seq}")
    with_bytes = [d for d in candidates if d.get("_path")]
    if not with_bytes:
        raise ApiError(404, f"revision {fourfour}/{seq} has no uploaded file", key="not_found")
    doc = _active(revision, with_bytes)
    sources.refuse_if_removed(doc)
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
    doc = access.source_for(request, url_source_id(request))
    return source_reply(request.app[STATE], doc)


async def update_options(request: web.Request) -> web.Response:
    """S4: new parse options; once bytes exist they make a new source, re-parsed."""
    state = request.app[STATE]
    doc = access.source_for(request, url_source_id(request), write=True)
    body = await read_json_object(request)
    raw = body.get("parse_options", body)
    options = sources.normalise_parse_options(raw, doc["parse_options"])
    if not doc.get("_path"):
        doc["parse_options"] = options
        return source_reply(state, sources.save(state.meta, doc))
    user = auth.require_caller(request)
    revision = revisions.of_source(state.meta, doc)
    new = sources.new_source(state.meta, user, dict(doc["source_type"]), options, revision)
    target = uploads.final_path(state.uploads_dir, int(new["id"]))
    await uploads.copy_bytes(Path(doc["_path"]), target)
    new.update(
        content_type=doc.get("content_type"),
        filesize=doc.get("filesize"),
        finished_at=utcnow_iso(),
        _path=str(target),
    )
    sources.save(state.meta, new)
    parse.start(state, new)
    return source_reply(state, new, status=201)


async def add_to_revision(request: web.Request) -> web.Response:
    """S5: attach a source to an open revision (both body forms of §6.3)."""
    state = request.app[STATE]
    doc = access.source_for(request, url_source_id(request), write=True)
    body = await read_json_object(request)
    nested = body.get("revision")
    target: dict[str, Any] = nested if isinstance(nested, dict) else body
    fourfour = optional_str(target, "fourfour", where="revision.")
    seq = optional_int(target, "revision_seq", where="revision.")
    if fourfour is None or seq is None:
        raise bad_field("revision", 'expected {"revision": {"fourfour", "revision_seq"}}')
    revision, _user = access.open_revision_for_write(request, fourfour, seq)
    sources.attach(state.meta, doc, revision)
    if doc.get("_path") and not doc["parse_options"].get("parse_source", True):
        parse.mark_blob(state.meta, doc)
    return source_reply(state, doc, status=202)


async def load(request: web.Request) -> web.Response:
    """S6: view sources load when created, so this only reports the source."""
    doc = access.source_for(request, url_source_id(request), write=True)
    return source_reply(request.app[STATE], doc)


async def cancel(request: web.Request) -> web.Response:
    """S10 (the ``cancel`` link): stop an upload or parse that is still going on.

    The source is marked failed with ``failure_details.key == "cancelled"`` before
    anything else, so every in-flight chunk or body stops at its next piece and a
    running parse drops its table when it returns (``jobs/parse.py``). Its chunks are
    then removed under the upload lock (after a commit that is joining them). A source
    already failed is answered as it is; one that finished is a 409.
    """
    state = request.app[STATE]
    sid = url_source_id(request)
    doc = access.source_for(request, sid, write=True)
    if sources.is_settled(state.meta, doc):
        raise ApiError(
            409,
            f"source {sid} has already finished; there is nothing to cancel",
            key="already_finished",
        )
    if doc.get("failed_at") is None:
        sources.fail(state.meta, doc, "cancelled", f"source {sid} was cancelled by its owner")
    async with state.upload_locks.lock(sid):
        await uploads.remove_partial(state.uploads_dir, sid)
    return source_reply(state, state.meta.get(Kind.SOURCE, sid) or doc)


def register(app: web.Application) -> None:
    rev = revision_path("{ff}", "{seq}")
    src = source_path("{sid}")
    router = app.router
    router.add_post(f"{API}/source", create_standalone)
    router.add_post(f"{rev}/source", create_on_revision)
    router.add_get(f"{rev}/source", list_on_revision)
    router.add_get(f"{rev}/source/download", download)
    router.add_get(f"{rev}/source/download/{{sid}}", download)
    router.add_get(src, show)
    router.add_patch(src, add_to_revision)
    router.add_post(f"{src}/options", update_options)
    router.add_put(f"{src}/load", load)
    router.add_post(f"{src}/cancel", cancel)
