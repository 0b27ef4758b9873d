"""Revision endpoints R1-R8, R11, R12 of digest §2.1.

Every success is 200, 201 or 202 (the SDK treats anything else as an error). Reads
follow the dataset's visibility, writes need the dataset's owner (``auth.py``).
"""

from __future__ import annotations

from aiohttp import web

from dsmsyncd.server.catalog import revisions, views
from dsmsyncd.server.catalog import sources as source_store
from dsmsyncd.server.catalog.metastore import Doc, Kind, MetaStore
from dsmsyncd.server.errors import ApiError, bad_field, not_found
from dsmsyncd.server.http import auth
from dsmsyncd.server.http.bodies import (
    json_reply,
    optional_int,
    read_json_object,
    request_id,
)
from dsmsyncd.server.http.represent.revisions import (
    API,
    plan_steps,
    revision_envelope,
    task_set_envelope,
)
from dsmsyncd.server.http.routes import sources as routes_sources
from dsmsyncd.server.ids import unique_fourfour
from dsmsyncd.server.jobs import apply as apply_jobs
from dsmsyncd.server.jobs import cleanup
from dsmsyncd.server.jobs import resume_apply as apply_resume
from dsmsyncd.server.state import STATE


def _meta(request: web.Request) -> MetaStore:
    return request.app[STATE].meta


def _closed_error(revision: Doc) -> ApiError:
    ref = f"{revision['fourfour']}/{revision['revision_seq']}"
    return ApiError(
        409,
        f"revision {ref} is closed (applied or discarded); open a new revision",
        key="revision_closed",
    )


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
    auth.view_for_read(request, fourfour)
    meta = _meta(request)
    found = meta.children(Kind.REVISION, fourfour)
    open_filter = request.query.get("open", "").lower()
    if open_filter in ("true", "1"):
        found = [r for r in found if r.get("closed_at") is None]
    elif open_filter in ("false", "0"):
        found = [r for r in found if r.get("closed_at") is not None]
    found.sort(key=lambda r: int(r["revision_seq"]), reverse=True)
    return json_reply([revision_envelope(meta, r) for r in found])


async def create_revision(request: web.Request) -> web.Response:
    """R3: a revision on an existing dataset, with an action or an import config."""
    fourfour = request.match_info["fourfour"]
    _view, user = auth.view_for_write(request, fourfour)
    body = await read_json_object(request)
    meta = _meta(request)
    if "config" in body and body["config"] is not None:
        name = body["config"]
        if not isinstance(name, str):
            raise bad_field("config", "expected the name of an import config")
        revision = open_with_config(meta, fourfour, user, name)
    else:
        action = revisions.parse_action(body.get("action"))
        metadata = revisions.parse_metadata(body.get("metadata"))
        revision = revisions.create(
            meta, fourfour, user, action=action, metadata=metadata, href=body.get("href")
        )
    return json_reply(revision_envelope(meta, revision), status=201)


def open_with_config(meta: MetaStore, fourfour: str, user: Doc, name: str) -> Doc:
    """A revision whose action comes from import config ``name`` (R3, C6)."""
    config = meta.get(Kind.CONFIG, name)
    if config is None:
        raise not_found("import config", repr(name))
    action = {"type": config.get("data_action") or "update", "permission": None, "schema": None}
    return revisions.create(meta, fourfour, user, action=action, metadata={}, config=name)


def _revision_for_read(request: web.Request) -> Doc:
    fourfour = request.match_info["fourfour"]
    auth.view_for_read(request, fourfour)
    return revisions.get(_meta(request), fourfour, revisions.parse_seq(request.match_info["seq"]))


def _revision_for_write(request: web.Request) -> tuple[Doc, Doc]:
    fourfour = request.match_info["fourfour"]
    _view, user = auth.view_for_write(request, fourfour)
    seq = revisions.parse_seq(request.match_info["seq"])
    return revisions.get(_meta(request), fourfour, seq), user


async def show_revision(request: web.Request) -> web.Response:
    """R4."""
    return json_reply(revision_envelope(_meta(request), _revision_for_read(request)))


async def update_revision(request: web.Request) -> web.Response:
    """R5 (PUT and PATCH): metadata merge, output schema, notes, permission."""
    revision, _user = _revision_for_write(request)
    body = await read_json_object(request)
    if revision.get("closed_at") is not None:
        raise _closed_error(revision)
    meta = _meta(request)
    revision = revisions.update(meta, revision, body)
    return json_reply(revision_envelope(meta, revision), status=202)


async def discard_revision(request: web.Request) -> web.Response:
    """R6: close without applying. Discarding twice is harmless; an applied one is not."""
    revision, _user = _revision_for_write(request)
    meta = _meta(request)
    ref = f"{revision['fourfour']}/{revision['revision_seq']}"
    if revisions.was_applied(meta, revision):
        raise ApiError(
            409, f"revision {ref} has been applied and cannot be discarded", key="revision_applied"
        )
    if revisions.running_task_set(meta, revision) is not None:
        raise ApiError(
            409,
            f"revision {ref} is being applied; wait for the apply job to finish",
            key="apply_in_progress",
        )
    if revision.get("closed_at") is None:
        with meta.transaction():
            revision = revisions.close(meta, revision)
            sources = source_store.revision_sources(
                meta, revision["fourfour"], int(revision["revision_seq"])
            )
            source_store.stop_unsettled(
                meta,
                sources,
                "revision_discarded",
                f"revision {ref} was discarded before this source finished uploading "
                "and parsing; its work was stopped",
            )
            claimed = cleanup.claim(meta, sources, f"revision {ref} was discarded")
        if claimed:
            state = request.app[STATE]
            state.spawn(
                cleanup.remove_sources(state, claimed, request.app[routes_sources.LOCKS]),
                name=f"cleanup-{ref}",
            )
    return json_reply(revision_envelope(meta, revision), status=201)


async def apply_revision(request: web.Request) -> web.Response:
    """R7: start the apply job; 200 with the task set."""
    revision, user = _revision_for_write(request)
    body = await read_json_object(request)
    meta = _meta(request)
    ref = f"{revision['fourfour']}/{revision['revision_seq']}"
    if revision.get("closed_at") is not None:
        raise _closed_error(revision)
    if revisions.running_task_set(meta, revision) is not None:
        raise ApiError(409, f"revision {ref} is already being applied", key="apply_in_progress")
    osid = optional_int(body, "output_schema_id")
    if osid is not None:
        if meta.get(Kind.OUTPUT_SCHEMA, osid) is None:
            raise bad_field("output_schema_id", f"output schema {osid} does not exist")
        if revisions.output_schema_removed(meta, osid):
            raise bad_field("output_schema_id", f"output schema {osid}'s rows were removed")
        revision["output_schema_id"] = osid
        meta.put(Kind.REVISION, revision["id"], revision)
    osid = revision.get("output_schema_id")
    state = request.app[STATE]
    task_set = apply_jobs.new_task_set(meta, revision, osid, user, request_id(request))
    state.spawn(
        apply_jobs.run_apply(state, int(revision["id"]), int(task_set["id"])),
        name=f"apply-{ref}-{task_set['id']}",
    )
    return json_reply(task_set_envelope(revision, task_set))


async def show_apply_job(request: web.Request) -> web.Response:
    """R8."""
    revision = _revision_for_read(request)
    raw_id = request.match_info["task_set_id"]
    task_set = _meta(request).get(Kind.TASK_SET, raw_id) if raw_id.isdigit() else None
    if task_set is None or task_set.get("id") not in (
        t["id"] for t in revisions.task_sets(_meta(request), revision)
    ):
        raise not_found("apply job", raw_id)
    return json_reply(task_set_envelope(revision, task_set))


async def show_plan(request: web.Request) -> web.Response:
    """R11: the steps an apply would take."""
    revision = _revision_for_read(request)
    links = {"show": f"{API}/revision/{revision['fourfour']}/{revision['revision_seq']}/plan"}
    return json_reply({"resource": plan_steps(revision), "links": links})


async def restore_revision(request: web.Request) -> web.Response:
    """R12: only archived datasets can be restored, and this server keeps no archive."""
    revision, _user = _revision_for_write(request)
    raise ApiError(
        400,
        f"dataset {revision['fourfour']} is not enrolled in archival; "
        "this server keeps no earlier versions to restore",
        key="not_archived",
    )


def register(app: web.Application) -> None:
    # Applies a stopped server left running are settled before the first request.
    app.on_startup.append(apply_resume.on_startup)
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
