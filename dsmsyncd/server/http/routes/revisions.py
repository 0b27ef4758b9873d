"""Revision endpoints R1-R8, R11, R12 of digest §2.1 (the archive listing R16 is
``archive.py``).

Every success is 200, 201 or 202 (the SDK treats anything else as an error). Reads
follow the dataset's visibility, writes need the dataset's owner (``access.py``).
"""

from __future__ import annotations

from aiohttp import web

from dsmsyncd.server.catalog import configs, revisions, sources, views
from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore
from dsmsyncd.server.errors import ApiError, bad_field, not_found
from dsmsyncd.server.fields import is_digits, optional_int
from dsmsyncd.server.http import access, auth
from dsmsyncd.server.http.bodies import json_reply, read_json_object, request_id, url_seq
from dsmsyncd.server.http.paths import API
from dsmsyncd.server.http.represent.revisions import (
    plan_envelope,
    revision_envelope,
    task_set_envelope,
)
from dsmsyncd.server.ids import unique_fourfour
from dsmsyncd.server.jobs import apply, cleanup, restore, short_wait
from dsmsyncd.server.state import STATE, ServerState


def _meta(request: web.Request) -> MetaStore:
    return request.app[STATE].meta


async def create_dataset(request: web.Request) -> web.Response:
    """R1: a new dataset (a private, unpublished view) and its revision 0."""
    user = auth.require_caller(request)
    body = await read_json_object(request)
    action = revisions.parse_action(body.get("action"))
    metadata = revisions.parse_metadata(body.get("metadata"))
    deleted_at = request.query.get("deleted_at")
    if deleted_at:
        try:
            deleted_at = views.parse_deleted_at(deleted_at)
        except ValueError as exc:
            raise bad_field("deleted_at", str(exc)) from exc
    meta = _meta(request)
    with meta.transaction():
        fourfour = unique_fourfour(lambda ff: meta.get(Kind.VIEW, ff) is not None)
        view = views.new_view(fourfour, user, metadata)
        if deleted_at:
            view["_deleted_at"] = deleted_at
        meta.put(Kind.VIEW, fourfour, view, owner=user["id"])
        revision = revisions.create(
            meta, fourfour, user, action=action, metadata=metadata, href=body.get("href")
        )
    return json_reply(revision_envelope(meta, revision), status=201)


async def list_revisions(request: web.Request) -> web.Response:
    """R2: newest first; ``?open=true`` keeps only revisions not yet closed."""
    fourfour = request.match_info["fourfour"]
    access.check_read(request, fourfour)
    meta = _meta(request)
    found = meta.children(Kind.REVISION, fourfour)
    open_filter = request.query.get("open", "").lower()
    if open_filter in ("true", "1"):
        found = [r for r in found if not revisions.is_closed(r)]
    elif open_filter in ("false", "0"):
        found = [r for r in found if revisions.is_closed(r)]
    found.sort(key=lambda r: int(r["revision_seq"]), reverse=True)
    return json_reply([revision_envelope(meta, r) for r in found])


async def create_revision(request: web.Request) -> web.Response:
    """R3: a revision on an existing dataset, with an action or an import config."""
    fourfour = request.match_info["fourfour"]
    user = access.check_write(request, fourfour)
    body = await read_json_object(request)
    meta = _meta(request)
    if "config" in body and body["config"] is not None:
        name = body["config"]
        if not isinstance(name, str):
            raise bad_field("config", "expected the name of an import config")
        revision = configs.open_revision(meta, fourfour, user, name)
    else:
        action = revisions.parse_action(body.get("action"))
        metadata = revisions.parse_metadata(body.get("metadata"))
        revision = revisions.create(
            meta, fourfour, user, action=action, metadata=metadata, href=body.get("href")
        )
    return json_reply(revision_envelope(meta, revision), status=201)


def _revision_for_read(request: web.Request) -> Doc:
    fourfour = request.match_info["fourfour"]
    access.check_read(request, fourfour)
    return revisions.get(_meta(request), fourfour, url_seq(request))


def _revision_for_write(request: web.Request) -> tuple[Doc, Doc]:
    fourfour = request.match_info["fourfour"]
    user = access.check_write(request, fourfour)
    return revisions.get(_meta(request), fourfour, url_seq(request)), user


async def show_revision(request: web.Request) -> web.Response:
    """R4."""
    return json_reply(revision_envelope(_meta(request), _revision_for_read(request)))


async def update_revision(request: web.Request) -> web.Response:
    """R5 (PUT and PATCH): metadata merge, output schema, notes, permission."""
    revision, _user = _revision_for_write(request)
    body = await read_json_object(request)
    if revisions.is_closed(revision):
        raise revisions.closed_error(revision)
    meta = _meta(request)
    revision = revisions.update(meta, revision, body)
    return json_reply(revision_envelope(meta, revision), status=202)


async def discard_revision(request: web.Request) -> web.Response:
    """R6: close without applying; 201 with the revision.

    A revision already closed is answered as it is, with no error and no change: a
    discarded one stays discarded, an applied one stays applied with its data published
    (clients, the SDK's own examples among them, discard in a ``finally`` after
    applying). Only a revision whose apply is running is refused, since its outcome is
    not known yet. The discarded revision's files are kept for a restore
    (``jobs/cleanup.py``); its tables go at once.
    """
    revision, _user = _revision_for_write(request)
    meta = _meta(request)
    ref = revisions.ref(revision)
    if revisions.is_closed(revision):
        return json_reply(revision_envelope(meta, revision), status=201)
    if revisions.running_task_set(meta, revision) is not None:
        raise ApiError(
            409,
            f"revision {ref} is being applied; wait for the apply job to finish",
            key="apply_in_progress",
        )
    state = request.app[STATE]
    with meta.transaction():
        revision = revisions.close(meta, revision, discarded=True)
        found = sources.revision_sources(meta, revision["fourfour"], int(revision["revision_seq"]))
        sources.stop_unsettled(
            meta,
            found,
            "revision_discarded",
            f"revision {ref} was discarded before this source finished uploading "
            "and parsing; its work was stopped",
        )
        claimed = cleanup.claim(meta, found, f"revision {ref} was discarded")
    keep = cleanup.files_kept_until(revision, state.keep_discarded_seconds)
    state.spawn(_clean_after_discard(state, claimed, keep), name=f"cleanup-{ref}")
    return json_reply(revision_envelope(meta, revision), status=201)


async def _clean_after_discard(state: ServerState, claimed: list[int], keep: str | None) -> None:
    await cleanup.remove_sources(state, claimed, keep_files_until=keep)
    await cleanup.expire_kept_files(state)


async def apply_revision(request: web.Request) -> web.Response:
    """R7: start the apply job; 200 with the task set (finished, if it was quick:
    ``jobs/short_wait.py``)."""
    revision, user = _revision_for_write(request)
    body = await read_json_object(request)
    meta = _meta(request)
    if revisions.is_closed(revision):
        raise revisions.closed_error(revision)
    if revisions.running_task_set(meta, revision) is not None:
        raise ApiError(
            409,
            f"revision {revisions.ref(revision)} is already being applied",
            key="apply_in_progress",
        )
    osid = optional_int(body, "output_schema_id")
    if osid is not None:
        revisions.check_output_schema(meta, osid)
        revision["output_schema_id"] = osid
        revisions.save(meta, revision)
    osid = revision.get("output_schema_id")
    task_set = apply.new_task_set(meta, revision, osid, user, request_id(request))
    state = request.app[STATE]
    job = apply.start(state, revision, int(task_set["id"]))
    if await short_wait.task_settled(state, job):  # a small apply: answer it finished
        task_set = meta.get(Kind.TASK_SET, task_set["id"]) or task_set
    return json_reply(task_set_envelope(revision, task_set))


async def show_apply_job(request: web.Request) -> web.Response:
    """R8."""
    revision = _revision_for_read(request)
    raw_id = request.match_info["task_set_id"]
    task_set = _meta(request).get(Kind.TASK_SET, raw_id) if is_digits(raw_id) else None
    if task_set is None or task_set.get("id") not in (
        t["id"] for t in revisions.task_sets(_meta(request), revision)
    ):
        raise not_found("apply job", raw_id)
    return json_reply(task_set_envelope(revision, task_set))


async def show_plan(request: web.Request) -> web.Response:
    """R11: the steps an apply would take."""
    return json_reply(plan_envelope(_revision_for_read(request)))


async def restore_revision(request: web.Request) -> web.Response:
    """R12: a new open revision from an applied or discarded one (``jobs/restore.py``)."""
    revision, user = _revision_for_write(request)
    state = request.app[STATE]
    new = await restore.restore(state, revision, user)
    return json_reply(revision_envelope(state.meta, new), status=201)


def register(app: web.Application) -> None:
    base = f"{API}/revision"
    app.router.add_post(base, create_dataset)
    app.router.add_get(f"{base}/{{fourfour}}", list_revisions)
    app.router.add_post(f"{base}/{{fourfour}}", create_revision)
    one = f"{base}/{{fourfour}}/{{seq}}"
    app.router.add_get(one, show_revision)
    app.router.add_put(one, update_revision)
    app.router.add_patch(one, update_revision)
    app.router.add_delete(one, discard_revision)
    app.router.add_put(f"{one}/apply", apply_revision)
    app.router.add_get(f"{one}/apply/{{task_set_id}}", show_apply_job)
    app.router.add_get(f"{one}/plan", show_plan)
    app.router.add_post(f"{one}/restore", restore_revision)
    app.router.add_put(f"{one}/restore", restore_revision)
